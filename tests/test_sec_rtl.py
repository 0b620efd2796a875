"""The semantic concentrator as Verilog, in cocotb, against the golden model focus.sim.sec."""

import pytest

from focus import FocusConfig
from focus.tb.runner import SIMULATORS, run_cocotb

CONFIGS = {
    # The default configuration: 256 tokens, 16-bit scores, four 4-bit digits (fewer random jobs:
    # each takes ~2000 cycles).
    "default": (FocusConfig(), {"heads": 2, "text": 2, "randoms": 1}),
    # 30 tokens, 7-bit scores in digits of 3, 3 and 1 bits.
    "t30-w7-r3": (FocusConfig(frames=2, height=3, width=5, tile_frames=1, score_width=7, sec_radix_bits=3),
                  {"heads": 2, "text": 3, "randoms": 6}),
}


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_sec_masks_equal_golden_top_k(simulator, name):
    cfg, params = CONFIGS[name]
    run_cocotb("sec", "focus.tb.cocotb_sec", cfg, simulator=simulator, params=params)
