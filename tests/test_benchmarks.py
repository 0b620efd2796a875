"""Every benchmark script starts as a person runs it (``python benchmarks/NAME.py --help``), and
(slow tier) its ``--quick`` run writes build/benchmarks/NAME.md and NAME.json that parse.

Run as scripts, they have benchmarks/ first on sys.path, so a script named like a standard-library
module (array.py, as the systolic benchmark once was) would shadow it for every script.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from focus.files import build_root

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_script_shows_its_help(script, tmp_path):
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "--quick" in result.stdout


def test_no_benchmark_script_shadows_a_standard_library_module():
    assert not {p.stem for p in BENCHMARKS} & sys.stdlib_module_names


def markdown_tables(text: str) -> list[list[list[str]]]:
    """The pipe tables of a Markdown text, each a list of rows of cells (the separator row dropped).
    Raises AssertionError on a table whose rows differ in cell count or lack a separator row."""
    tables, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if rows:
            assert len(rows) >= 2 and all(set(cell) <= set("-: ") for cell in rows[1]), f"not a table: {rows[:2]}"
            assert all(len(row) == len(rows[0]) for row in rows), f"ragged table under {rows[0]}"
            tables.append([rows[0], *rows[2:]])
            rows = []
    return tables


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_benchmark_quick_run_writes_reports_that_parse(script):
    out = build_root() / "benchmarks"
    markdown, data = out / f"{script.stem}.md", out / f"{script.stem}.json"
    for path in (markdown, data):
        path.unlink(missing_ok=True)
    result = subprocess.run([sys.executable, str(script), "--quick"], cwd=ROOT, capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0, f"{script.name} --quick failed:\n{result.stderr[-4000:]}"
    assert json.loads(data.read_text())
    text = markdown.read_text()
    assert text.startswith("# ") and f"benchmarks/{script.name}" in text
    tables = markdown_tables(text)
    assert tables and all(len(table) >= 2 for table in tables), "a report table has no rows"


def load_script(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fpga_report_update_rewrites_the_committed_report_from_its_json(tmp_path):
    """``benchmarks/fpga.py --update`` measuring nothing keeps every row: the committed Markdown
    comes back from the committed JSON, so rows refreshed one board at a time stay generated."""
    committed = ROOT / "docs" / "benchmarks"
    (tmp_path / "fpga.json").write_text((committed / "fpga.json").read_text())
    assert load_script("fpga").main(["--update", "--blocks", "", "--boards", "", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "fpga.md").read_text() == (committed / "fpga.md").read_text()


def test_fpga_report_update_replaces_measured_rows_in_place_and_appends_new_ones():
    merged = load_script("fpga")._merged
    old = {"blocks": [{"top": "sic", "fmax_mhz": 1}, {"top": "sec", "fmax_mhz": 2}],
           "boards": [{"board": "a", "fmax_mhz": 1}, {"board": "b", "fmax_mhz": 2}]}
    blocks, boards = merged(old, [{"top": "sec", "fmax_mhz": 3}],
                            [{"board": "c", "fmax_mhz": 4}, {"board": "a", "fmax_mhz": 9}])
    assert [(b["top"], b["fmax_mhz"]) for b in blocks] == [("sic", 1), ("sec", 3)]
    assert [(b["board"], b["fmax_mhz"]) for b in boards] == [("a", 9), ("b", 2), ("c", 4)]


def test_fpga_report_update_refuses_to_keep_blocks_of_another_configuration(tmp_path, capsys):
    report = json.loads((ROOT / "docs" / "benchmarks" / "fpga.json").read_text())
    report["config_digest"] = "000000000000"
    (tmp_path / "fpga.json").write_text(json.dumps(report))
    assert load_script("fpga").main(["--update", "--blocks", "", "--boards", "", "--out", str(tmp_path)]) == 2
    assert "000000000000" in capsys.readouterr().err and not (tmp_path / "fpga.md").exists()
