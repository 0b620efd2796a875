"""The accelerator top's composed cycle model (focus.sim.accelerator_cycles) against the Verilated
top, and its own consistency.

RTL (one job from reset at full rate through focus-run's entry, :func:`focus.tb.run.run_job_rtl`):
every counter of the done beat equals the model exactly, no tolerance. On the default build: bikes
without SEC (focus and dense), bikes with SEC pruning to 2/5 in the top (focus and dense), planted
duplicates (focus), an all-zero job (focus) and bikes at N = 192 (24 N-tiles: the benchmark's
default point, focus and dense). On the MiniLM-width build (hidden 384, 2 frames of 4 x 4 tokens,
:data:`focus.tb.sic_jobs.MINILM`): all-MiniLM-L6-v2's QKV and FFN-up GEMMs of layer 1 (their first
20 columns: 3 N-tiles) with SEC scores from its attention pruning to 2/5 in the top (focus and
dense). ``FOCUS_SLOW=all``: a 4-tile configuration with 2 scatter lanes, where the pass buffer's
banks also hold SIC and the bypass back (its own build).

Pure Python: the counter names are the top's, the counters partition the cycles, dense jobs keep
the array busy from the first activation on, no job beats the throughput bound, and the model's
block timelines are the block models'.
"""

from pathlib import Path

import numpy as np
import pytest

from focus import FocusConfig
from focus.files import build_root
from focus.sim import export
from focus.sim.accelerator import cycle_bound, dense_ideal_cycles
from focus.sim.accelerator_cycles import COUNTER_NAMES, accelerator_cycles, job_counts
from focus.sim.array_model import array_schedule
from focus.sim.job import run_job
from focus.sim.sec_cycles import job_cycles
from focus.sim.video import clip_tokens
from focus.tb.sic_jobs import MINILM, export_clip, export_planted, minilm_exports

DEFAULT = FocusConfig()
#: 4 tiles (8 frames), 2 scatter lanes: the scatter and the banks' release set the pace.
FOUR_TILES = FocusConfig(frames=8, scatter_lanes=2)
PARTS = ("sec_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input", "drain")


def jobs(cfg: FocusConfig) -> dict[str, Path]:
    """Exported jobs (cached by configuration): bikes (N = cols), bikes with SEC keeping 2/5,
    planted duplicates, all-zero tokens, and bikes at N = cfg.out_features."""
    out = build_root() / "export" / "accelerator-cycles" / cfg.digest()
    paths = {"bikes": out / "bikes.npz", "bikes-sec": out / "bikes-sec.npz", "planted": out / "planted.npz",
             "zero": out / "zero.npz", "bikes-wide": out / "bikes-wide.npz"}
    if all(p.exists() for p in paths.values()):
        return paths
    export_clip(cfg, "bikes", paths["bikes"], keep_ratio=None)
    export_clip(cfg, "bikes", paths["bikes-sec"], keep_ratio="2/5")
    export_planted(cfg, paths["planted"])
    weights = export.read(paths["bikes"]).weights
    export.write(paths["zero"], run_job(cfg, np.zeros((cfg.tokens, cfg.hidden), np.int64), weights))
    rng = np.random.default_rng([0, 1])
    wide = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, cfg.out_features))
    export.write(paths["bikes-wide"], run_job(cfg, clip_tokens(cfg, "bikes", seed=0).tokens, wide))
    return paths


def check_rtl_equals_model(path: Path | str, mode: str):
    """Run the job exported to ``path`` in ``mode`` on the top built for its configuration: outputs
    bit-exact, every counter equal to the model's."""
    from focus.tb.run import check_run, run_job_rtl
    job = export.read(path)
    run = run_job_rtl(path, job, mode)
    check_run(run, job)                                    # outputs bit-exact, status OK
    model = accelerator_cycles(job.cfg, job, mode).counters
    assert run.counters == model, {k: (run.counters[k], model[k]) for k in model if run.counters[k] != model[k]}


RTL_JOBS = [("bikes", "focus"), ("bikes", "dense"), ("bikes-sec", "focus"), ("bikes-sec", "dense"),
            ("planted", "focus"), ("zero", "focus"), ("bikes-wide", "focus"), ("bikes-wide", "dense")]


@pytest.mark.rtl
@pytest.mark.parametrize("name,mode", RTL_JOBS, ids=[f"{n}-{m}" for n, m in RTL_JOBS])
def test_rtl_counters_equal_cycle_model(name, mode):
    check_rtl_equals_model(jobs(DEFAULT)[name], mode)


@pytest.mark.rtl
def test_rtl_counters_equal_cycle_model_on_minilm_gemms_with_sec():
    """MiniLM's QKV and FFN-up GEMMs (layer 1, 20 columns: 3 N-tiles, hidden 384) with SEC scores
    from its attention pruning to 2/5 in the top, focus and dense, on the MiniLM-width build."""
    for e in minilm_exports(MINILM):
        job = export.read(e["path"])
        assert job.pruned and job.tokens_before_sec is not None and job.kept is not None
        for mode in ("focus", "dense"):
            check_rtl_equals_model(e["path"], mode)


FOUR_TILE_JOBS = [("bikes", "focus"), ("bikes", "dense"), ("planted", "focus"), ("bikes-sec", "focus"),
                  ("bikes-wide", "focus"), ("bikes-wide", "dense")]


@pytest.mark.rtl
@pytest.mark.slow(subset=False, reason="its own build and six jobs, about 3 minutes: FOCUS_SLOW=all runs it")
def test_rtl_counters_equal_cycle_model_on_four_tiles_with_two_lanes():
    for name, mode in FOUR_TILE_JOBS:
        check_rtl_equals_model(jobs(FOUR_TILES)[name], mode)


# ------------------------------------------------------------------------------------ pure Python

def test_counter_names_are_the_tops():
    from focus.hdl.accelerator import COUNTER_NAMES as TOP
    assert COUNTER_NAMES == TOP


MODEL_JOBS = [(cfg, name, mode) for cfg in (DEFAULT, FOUR_TILES) for name in ("bikes", "bikes-sec", "planted", "zero")
              for mode in ("focus", "dense")]


@pytest.mark.parametrize("cfg,name,mode", MODEL_JOBS,
                         ids=[f"{c.tiles}tiles-{n}-{m}" for c, n, m in MODEL_JOBS])
def test_counters_partition_the_cycles(cfg, name, mode):
    job = export.read(jobs(cfg)[name])
    c = accelerator_cycles(cfg, job, mode).counters
    assert sum(c[p] for p in PARTS) == c["cycles"]
    assert (c["sec_cycles"] > 0) == job.pruned
    if job.pruned:
        assert c["sec_cycles"] == 1 + job_cycles(cfg, job.scores.shape[0] * job.scores.shape[1])
    counts = job_counts(cfg, job, mode)
    assert c["array_busy"] == counts.n_tiles * sum(max(u, 1) for u in counts.unique)
    assert c["scatter_busy"] == counts.n_tiles * sum(counts.member_beats)


@pytest.mark.parametrize("cfg", [DEFAULT, FOUR_TILES], ids=["2tiles", "4tiles"])
def test_dense_job_keeps_the_array_busy_after_the_first_activation(cfg):
    """Dense passes (tile_tokens vectors each) are long enough to hide every weight commit
    (array_schedule runs them back to back) and the bypass writes a tile-chunk about as fast as
    the array reads it: from the first activation to the last the array misses at most one cycle
    per tile-chunk (the pass buffer's writer closing a tile-chunk, a reader starting a tile), never
    waits for the scatter or the weights, and does the dense ideal's work."""
    job = export.read(jobs(cfg)["bikes-wide"])
    t = accelerator_cycles(cfg, job, "dense")
    c = t.counters
    assert c["array_busy"] == dense_ideal_cycles(cfg, job)
    passes = [cfg.tile_tokens] * (cfg.tiles * job_counts(cfg, job, "dense").n_tiles * cfg.chunks)
    schedule = array_schedule(passes, cfg.rows, cfg.cols)
    assert schedule.ends[-1] - schedule.starts[0] + 1 == len(passes) * cfg.tile_tokens
    assert c["wait_scatter"] == c["wait_input"] == 0
    gaps = np.diff(t.activations) - 1
    assert gaps.max() <= 1 and gaps.sum() <= cfg.tiles * cfg.chunks
    assert c["wait_sic"] == t.activations[0] - 1 + gaps.sum()


@pytest.mark.parametrize("cfg,name,mode", MODEL_JOBS,
                         ids=[f"{c.tiles}tiles-{n}-{m}" for c, n, m in MODEL_JOBS])
def test_no_job_beats_the_throughput_bound(cfg, name, mode):
    job = export.read(jobs(cfg)[name])
    c = accelerator_cycles(cfg, job, mode).counters
    assert c["cycles"] - c["sec_cycles"] >= cycle_bound(cfg, job, mode)


def test_all_zero_job_sends_one_vector_a_pass():
    job = export.read(jobs(DEFAULT)["zero"])
    c = accelerator_cycles(DEFAULT, job, "focus").counters
    assert c["array_busy"] == c["scatter_busy"] == DEFAULT.tiles * DEFAULT.chunks
    assert (c["unique"], c["zero"], c["row_adds"]) == (0, DEFAULT.tokens * DEFAULT.chunks, 0)
