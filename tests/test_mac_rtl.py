"""The multiply-accumulate block as Verilog, in cocotb, against NumPy."""

import pytest

from focus import FocusConfig
from focus.tb import toolchain
from focus.tb.runner import SimulatorUnavailable, run_cocotb

from simulators import SIMULATORS


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("cfg", [
    FocusConfig(),
    FocusConfig(data_width=4, acc_width=12, hidden=16, vector_size=4, rows=4, cols=4, scatter_lanes=4),
], ids=["int8", "int4"])
def test_mac_sums_equal_numpy_dot_products(simulator, cfg):
    run_cocotb("mac", "focus.tb.cocotb_mac", cfg, simulator=simulator)


def test_runner_reports_a_missing_simulator_by_name(monkeypatch):
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(SimulatorUnavailable, match="Icarus Verilog .iverilog. is not on PATH"):
        run_cocotb("mac", "focus.tb.cocotb_mac", FocusConfig(), simulator="icarus")
