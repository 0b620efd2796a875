"""The GEMM sequencer and its systolic array as Verilog, in cocotb (Verilator, and Icarus when
present): exact against NumPy integer matmul under random backpressure, after a reset in the middle of
a job, and cycle for cycle against the cycle model; after synth_ecp5, each column keeps its own
weight shift and commit enable flip-flops."""

import pytest

from focus import FocusConfig
from focus.tb.runner import run_cocotb

from simulators import SIMULATORS


def array_config(rows, cols, data_width=8, acc_width=32, height=8, width=8):
    """rows x cols array; K up to 3 chunks (hidden = 3 * rows); M up to height * width tokens."""
    return FocusConfig(rows=rows, vector_size=rows, cols=cols, hidden=3 * rows, data_width=data_width,
                       acc_width=acc_width, frames=1, tile_frames=1, height=height, width=width,
                       scatter_lanes=1)


def shapes(cfg):
    """[M, K, N] jobs: K and N smaller than, equal to and larger than the array (not multiples
    of it), M from 1 to the buffer depth."""
    R, C = cfg.rows, cfg.cols
    return [
        [1, 1, 1],
        [3, max(1, R // 2), max(1, C - 3)],             # K and N smaller than the array
        [R + C, R, C],                                    # exactly one tile
        [7, 2 * R + 1, 2 * C + 1],                        # K and N larger, not multiples
        [cfg.tile_tokens, cfg.hidden, C + 1],             # the deepest M, the longest K
        [2, cfg.hidden - 1, 3 * C],                       # passes shorter than the array: weight-bound
    ]


def cycle_shapes(cfg):
    """Back-to-back passes, passes that wait for a bank, and passes that wait for weights."""
    R, C = cfg.rows, cfg.cols
    return [[1, 1, 1], [R + C, 2 * R, 2 * C], [max(1, R + C - 4), 3 * R, 2 * C], [max(1, R - 1), 2 * R, 2 * C],
            [cfg.tile_tokens, 2 * R, 3 * C]]


CONFIGS = {
    "4x8": array_config(4, 8),
    "8x4": array_config(8, 4),
    "8x8": array_config(8, 8),
    "4x8-int4-acc11": array_config(4, 8, data_width=4, acc_width=11),
    "4x4-int16-acc36": array_config(4, 4, data_width=16, acc_width=36),
}


def run(cfg, simulator):
    run_cocotb("gemm", "focus.tb.cocotb_gemm", cfg, simulator=simulator,
               params={"shapes": shapes(cfg), "cycle_shapes": cycle_shapes(cfg)})


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", CONFIGS)
def test_gemm_rtl_equals_numpy_and_cycle_model(name, simulator):
    run(CONFIGS[name], simulator)


# Large arrays: the first parameter set (16x16 on Verilator) runs in CI; the 32x32 (99 s in CI,
# most of it the model's build) with FOCUS_SLOW=all.
LARGE = [
    pytest.param("16x16", "verilator", id="16x16-verilator"),
    pytest.param("32x32", "verilator", id="32x32-verilator"),
    *[pytest.param(name, sim.values[0], id=f"{name}-icarus", marks=sim.marks)
      for name in ("16x16", "32x32") for sim in SIMULATORS[1:]],
]
LARGE_CONFIGS = {"16x16": array_config(16, 16), "32x32": array_config(32, 32)}


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name,simulator", LARGE)
def test_large_gemm_rtl_equals_numpy_and_cycle_model(name, simulator):
    run(LARGE_CONFIGS[name], simulator)


def test_each_column_keeps_its_own_weight_shift_and_commit_enables_through_synthesis():
    # one flip-flop copy per column of weights.ready (the shift enable's gate) and of each bank's
    # commit, not one per array as opt_merge would leave them
    from focus.hdl.util import KEEP_COPIES

    from synthesis import distinct_bits, synthesized

    cfg = array_config(2, 3, data_width=4, acc_width=12, height=2, width=2)
    for script, copies in ((KEEP_COPIES, cfg.cols), ("proc", 1)):
        _, nets = synthesized("systolic:SystolicArray", cfg, script)
        for name in ("w_ready", "commit0", "commit1"):
            assert len(distinct_bits(nets, rf"kept_{name}_?\d+")) == copies, (script, name)
