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
