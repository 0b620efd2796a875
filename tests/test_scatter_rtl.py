"""The scatter accumulator as Verilog, in cocotb, against the golden model focus.sim.scatter and
the cycle model focus.sim.scatter_cycles; after synth_ecp5, each accumulator memory group keeps its
own read address and select flip-flops."""

import pytest

from focus import FocusConfig
from focus.tb.runner import run_cocotb

from simulators import SIMULATORS
from synthesis import distinct_bits, synthesized

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
    cells, _ = synthesized("scatter:ScatterAccumulator", cfg, script_after_read)
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


def test_each_accumulator_column_group_keeps_its_own_use_and_forward_selects_through_synthesis():
    # stage 3's use and forward selects: one flip-flop per (lane, column group) each, not one per
    # lane as opt_merge would leave them
    from focus.hdl.scatter import ACC_GROUP_COLUMNS
    from focus.hdl.util import KEEP_COPIES

    def select_bits(script):
        _, nets = synthesized("scatter:ScatterAccumulator", CFG, script)
        return distinct_bits(nets, r"kept_(use[01]_\d+|forward\d+)_\d+")

    groups = -(-CFG.cols // ACC_GROUP_COLUMNS)
    assert len(select_bits(KEEP_COPIES)) == 3 * CFG.scatter_lane_count * groups
    assert len(select_bits("proc")) == 3 * CFG.scatter_lane_count
