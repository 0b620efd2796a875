"""Every benchmark script starts as a person runs it (``python benchmarks/NAME.py --help``).

Run as scripts, they have benchmarks/ first on sys.path, so a script named like a standard-library
module (array.py, as the systolic benchmark once was) would shadow it for every script.
"""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_script_shows_its_help(script, tmp_path):
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--quick" in result.stdout


def test_no_benchmark_script_shadows_a_standard_library_module():
    assert not {p.stem for p in BENCHMARKS} & sys.stdlib_module_names
