"""The accelerator top as Verilog, in cocotb (Verilator, and Icarus when present), against the golden
model's exported jobs (tb/cocotb_accelerator.py).

Default tier, one build of the default configuration (4 frames of 8 x 8 tokens, hidden 64, vector
8, threshold 9/10, tiles of 2 frames) and one of a MiniLM-width configuration (hidden 384):

* real clips (``bikes`` without SEC, ``bikes`` with SEC pruning to 2/5 of the tokens in the top)
  and planted duplicates, in focus and dense mode, back to back: results bit-exact with their
  framing, the SEC mask, the counters unique/similar/zero, and ``array_busy + wait_sic +
  wait_scatter + wait_input + drain (+ sec_cycles) == cycles``; once at full rate and once with
  random idle cycles on every input and stalls on every output;
* dense mode equals NumPy's integer matmul: the files' ``outputs_dense`` are checked against
  ``tokens @ weights`` here, and the RTL against ``outputs_dense`` in the bench;
* robustness: jobs that change ``k`` and the mode back to back, an all-zero job, a command with
  ``k > tokens`` and ``n_tiles = 0`` (status BAD_K, BAD_N_TILES, then the next job runs), a reset in the middle of a job;
* all-MiniLM-L6-v2's QKV and FFN-up GEMMs (layer 1) with SEC scores from its text-to-image
  attention, pruned in the top: the first 20 output columns in the default tier, every column (1152
  and 1536) with ``FOCUS_SLOW=all`` (about 9 minutes of simulation).

``slow``: more clips (the first, which CI's subset runs, and the second on the default build), thresholds and
configurations (other grids, the root representative, other SIC and scatter throughput settings,
5 columns), under random backpressure.
"""

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import export
from focus.sim.gemm import wrap
from focus.tb.runner import run_cocotb
from focus.tb.sic_jobs import MINILM, accelerator_export_folder, export_clip, export_planted, minilm_exports

from simulators import SIMULATORS

DEFAULT = FocusConfig()                 # 4 x 8 x 8 tokens, hidden 64, vector 8, 9/10, tiles of 2 frames


def clip_exports(cfg, name, clips=("bikes",), *, planted=True):
    """Each clip without SEC (focus and dense) and with SEC pruning to 2/5 in the top (focus and
    dense), then planted duplicates (focus)."""
    out = accelerator_export_folder(cfg, name)
    exports = []
    for clip in clips:
        exports.append({"path": str(export_clip(cfg, clip, out / f"{clip}.npz", keep_ratio=None)),
                        "modes": ["focus", "dense"]})
        exports.append({"path": str(export_clip(cfg, clip, out / f"{clip}-sec.npz", keep_ratio="2/5")),
                        "modes": ["focus", "dense"]})
    if planted:
        exports.append({"path": str(export_planted(cfg, out / "planted.npz")), "modes": ["focus"]})
    return exports


def check_dense_is_numpy_matmul(exports):
    """The files' dense outputs are NumPy's integer matmul of their tokens and weights (wrapped to
    acc_width), so the RTL's dense results, equal to them, are too."""
    for e in exports:
        job = export.read(e["path"])
        want = wrap(np.asarray(job.tokens, np.int64) @ np.asarray(job.weights, np.int64), job.cfg.acc_width)
        assert np.array_equal(job.outputs_dense, want), e["path"]


def run(cfg, exports, testcase, simulator="verilator"):
    run_cocotb("accelerator", "focus.tb.cocotb_accelerator", cfg, simulator=simulator,
               params={"exports": exports}, testcase=testcase)


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_clip_jobs_back_to_back_equal_golden_model(simulator):
    exports = clip_exports(DEFAULT, "default")
    check_dense_is_numpy_matmul(exports)
    run(DEFAULT, exports, "exports_back_to_back_exact", simulator)


@pytest.mark.rtl
def test_clip_jobs_equal_golden_model_under_random_backpressure():
    run(DEFAULT, clip_exports(DEFAULT, "default"), "exports_under_random_backpressure")


@pytest.mark.rtl
def test_jobs_that_change_k_and_mode_back_to_back_are_exact():
    run(DEFAULT, clip_exports(DEFAULT, "default"), "k_and_mode_change_between_jobs")


@pytest.mark.rtl
def test_all_zero_job_gives_zero_outputs():
    run(DEFAULT, clip_exports(DEFAULT, "default"), "all_zero_job_gives_zero_outputs")


@pytest.mark.rtl
def test_bad_commands_end_with_bad_k_or_bad_n_tiles_and_the_next_job_runs():
    run(DEFAULT, clip_exports(DEFAULT, "default"), "bad_commands_end_with_bad_k_or_bad_n_tiles_and_next_job_runs")


@pytest.mark.rtl
def test_reset_mid_job_leaves_next_jobs_exact():
    run(DEFAULT, clip_exports(DEFAULT, "default"), "reset_mid_job_then_next_job_exact")


@pytest.mark.rtl
def test_minilm_gemms_with_sec_equal_golden_model():
    exports = minilm_exports(MINILM)
    check_dense_is_numpy_matmul(exports)
    run(MINILM, exports, "exports_back_to_back_exact")


@pytest.mark.slow(subset=False, reason="about 9 minutes of simulation: FOCUS_SLOW=all runs it")
@pytest.mark.rtl
def test_whole_minilm_gemms_with_sec_equal_golden_model():
    """Every output column of the QKV (1152) and FFN-up (1536) GEMMs, focus and dense."""
    exports = minilm_exports(MINILM, columns=None)
    check_dense_is_numpy_matmul(exports)
    run(MINILM, exports, "exports_back_to_back_exact")


# The first (what CI's subset runs) and the second reuse the default build; the others build their own.
SWEEP = [
    ("default-carphone", DEFAULT, ("carphone_pristine",)),
    ("default-bigbuckbunny", DEFAULT, ("bigbuckbunny",)),
    ("8x6x10-root-19_20", FocusConfig(frames=8, height=6, width=10, tile_frames=4, hidden=32,
                                      representative="root", threshold="19/20"), ("carphone_pristine",)),
    ("4x8x8-full-4_5", FocusConfig(threshold="4/5", sic_multipliers=64, scatter_lanes=3), ("bigbuckbunny",)),
    ("4x8x8-engines2-cols5", FocusConfig(cols=5, sic_multipliers=16), ("bikes", "carphone_pristine")),
    ("8x6x10-serial8-lanes1", FocusConfig(frames=8, height=6, width=10, tile_frames=2, hidden=32,
                                          sic_multipliers=8, scatter_lanes=1), ("bigbuckbunny",)),
]


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("name,cfg,clips", SWEEP, ids=[name for name, _, _ in SWEEP])
def test_more_clips_and_configurations_equal_golden_model(name, cfg, clips):
    run(cfg, clip_exports(cfg, name, clips), "exports_under_random_backpressure")


@pytest.mark.rtl
@pytest.mark.parametrize("testcase", ["exports_back_to_back_exact", "reset_mid_job_then_next_job_exact"])
def test_ecp5_verilog_with_dsp_registers_equals_golden_model(testcase):
    """The accelerator as a board build synthesizes it (the array's, SIC's and the means'
    multipliers as MULT18X18D blocks holding their operand and product registers, which are not
    reset; simulated with focus.tb.ecp5_models): outputs and counters bit-exact, like the portable
    Verilog's, back to back and after a reset in the middle of a job."""
    exports = clip_exports(DEFAULT, "default")
    run_cocotb("accelerator", "focus.tb.cocotb_accelerator", DEFAULT, params={"exports": exports},
               testcase=testcase, target="ecp5")
