"""The scatter accumulator as Verilog, in cocotb, against the golden model focus.sim.scatter and
the cycle model focus.sim.scatter_cycles."""

import pytest

from focus import FocusConfig
from focus.tb.runner import run_cocotb

from simulators import SIMULATORS

# 15 tokens a tile in 3 lanes of 5 rows (plus one lane short), 3 K-chunks, 2 N-tiles of 3 columns,
# INT4 with an accumulator 9 bits wider than the sums need (the results are sign-extended).
CFG = FocusConfig(rows=2, vector_size=2, hidden=6, cols=3, out_features=6, frames=2, tile_frames=1,
                  height=3, width=5, data_width=4, acc_width=19, scatter_lanes=3)


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_scatter_results_and_cycles_equal_the_models(simulator):
    run_cocotb("scatter", "focus.tb.cocotb_scatter", CFG, simulator=simulator, params={"tiles": 2})


def _lut_ram_read_addresses(cfg, script_after_read):
    """Distinct read-address buses of the LUT RAMs of the scatter accumulator after synth_ecp5."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from amaranth.back import rtlil

    from focus.gen.resources import _RUN_YOSYS
    from focus.hdl.scatter import ScatterAccumulator

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "scatter.il").write_text(rtlil.convert(ScatterAccumulator(cfg), name="scatter"))
        script = f"read_rtlil scatter.il; {script_after_read}; synth_ecp5 -top scatter -json out.json"
        subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-p", script], cwd=tmp, check=True,
                       capture_output=True)
        cells = json.loads(Path(tmp, "out.json").read_text())["modules"]["scatter"]["cells"].values()
    return {tuple(c["connections"]["RAD"]) for c in cells if c["type"] == "TRELLIS_DPR16X4"}


def test_each_accumulator_memory_keeps_its_own_read_address_register_through_synthesis():
    # LUT RAM is read through a fabric register: one per ACC_GROUP_COLUMNS columns of a lane, not
    # one per lane that Yosys's opt_merge would make of the copies without focus.hdl.util.KEEP_COPIES
    from focus.hdl.scatter import ACC_GROUP_COLUMNS
    from focus.hdl.util import KEEP_COPIES

    groups = -(-CFG.cols // ACC_GROUP_COLUMNS)
    assert groups > 1
    merged, kept = _lut_ram_read_addresses(CFG, "proc"), _lut_ram_read_addresses(CFG, KEEP_COPIES)
    assert len(kept) - len(merged) == 2 * CFG.scatter_lane_count * (groups - 1)
