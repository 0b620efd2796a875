"""The accelerator top in Amaranth's simulator, on small configurations: focus and dense jobs
exact against the golden model under random backpressure, back-to-back jobs that change the mode,
a job of zero vectors, a refused command, and a reset in the middle of a job."""

import random
from dataclasses import replace
from functools import partial

import numpy as np
import pytest

from focus import FocusConfig
from focus.framing import end_fields
from focus.hdl.accelerator import COUNTER_NAMES, FocusAccelerator, JobStatus
from focus.hdl.util import poisoned_collisions
from focus.sim.accelerator import accelerator_streams, cycle_bound, tile_chunk_counts
from focus.sim.job import run_job
from focus.tb.amaranth_sim import HandshakeEdges, WithReset, across_reset, check_stream_rules, get, put, simulate
from focus.tb.sic_jobs import planted_tokens

SMALL = {
    "4x4-lanes3": FocusConfig(rows=4, vector_size=4, cols=4, hidden=8, out_features=8, frames=2, height=3, width=4,
                              tile_frames=1, scatter_lanes=3, sic_multipliers=0),
    "2x3-root": FocusConfig(rows=2, vector_size=2, cols=3, hidden=6, out_features=7, frames=4, height=2, width=2,
                            tile_frames=2, representative="root", scatter_lanes=0),
}


def make_job(cfg, seed, *, zero=False, n=None, keep=None):
    """A job of planted tokens; with ``keep``, SEC (random scores, 2 heads x 3 text tokens, ties
    likely) prunes all but ``keep`` tokens in the top."""
    tokens = np.zeros((cfg.tokens, cfg.hidden), np.int64) if zero else planted_tokens(cfg, seed)
    rng = np.random.default_rng(seed)
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, n or cfg.out_features))
    weights[0, 0] = cfg.data_min
    if keep is None:
        return run_job(cfg, tokens, weights)
    scores = rng.integers(0, 8, (2, 3, cfg.tokens))
    return run_job(cfg, tokens, weights, scores=scores, keep=keep, prune=True)


def drivers(dut, streams, rng, idle):
    """One testbench per input stream, sending ``streams`` (AcceleratorStreams) in order."""
    async def command(ctx):
        await put(ctx, dut.command, [s.command for s in streams], rng, idle)

    async def tokens(ctx):
        await put(ctx, dut.tokens, [{"data": row, "end": end_fields(e)} for s in streams
                                    for row, e in zip(s.tokens.tolist(), s.token_ends)], rng, idle)

    async def weights(ctx):
        await put(ctx, dut.weights, [row for s in streams for row in s.weights.tolist()], rng, idle)

    async def scores(ctx):
        await put(ctx, dut.scores, [{"scores": row, "last": last} for s in streams
                                    for row, last in zip(s.scores.tolist(), s.score_last)], rng, idle)
    return [command, tokens, weights, scores]


def as_results(beats):
    return [([int(x) for x in b.data], b.end.as_bits()) for b in beats]


def expected_results(streams):
    return [(row, e) for s in streams for row, e in zip(s.results.tolist(), s.result_ends)]


def run(cfg, streams, *, seed=0, idle=0.3, stall=0.3, name="accelerator", edges=()):
    """Runs ``streams`` back to back on the top with random gaps (``idle``) and stalls (``stall``);
    checks the stream rules on every output, that no result or done beat comes after the last job's,
    and the SEC keep mask. Returns ``(results, expected results, done beats)``, and a fourth item
    when ``edges`` names ports: their :class:`HandshakeEdges`."""
    dut = FocusAccelerator(cfg)
    rng = random.Random(seed)
    want = expected_results(streams)
    want_mask = [row for s in streams for row in s.mask.tolist()]
    got, done, mask = [], [], []
    recorder = HandshakeEdges(**{port: getattr(dut, port) for port in edges})

    async def results(ctx):
        got.extend(await get(ctx, dut.results, len(want), rng, stall))

    async def masks(ctx):
        beats = await get(ctx, dut.mask, len(want_mask), rng, stall)
        mask.extend([[int(b.keep) >> i & 1 for i in range(cfg.cols)] for b in beats])

    async def dones(ctx):
        done.extend(await get(ctx, dut.done, len(streams), rng, stall))
        for _ in range(50):
            await ctx.tick()
            assert not ctx.get(dut.results.valid) and not ctx.get(dut.done.valid), "a beat nobody asked for"

    simulate(dut, [*drivers(dut, streams, rng, idle), results, dones, masks],
             [*(partial(check_stream_rules, port=p) for p in (dut.results, dut.done, dut.mask)), recorder.process],
             name=name, timeout_cycles=50_000)
    assert mask == want_mask, "SEC keep mask"
    return (as_results(got), want, done, recorder) if edges else (as_results(got), want, done)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.4, 0.4)])
def test_focus_and_dense_jobs_equal_golden_model_under_backpressure(name, idle, stall):
    cfg = SMALL[name]
    first, second = make_job(cfg, 1), make_job(cfg, 2, n=cfg.cols + 1)
    streams = [accelerator_streams(cfg, first, "focus"), accelerator_streams(cfg, second, "dense"),
               accelerator_streams(cfg, second, "focus")]
    got, want, done = run(cfg, streams, seed=hash((name, idle)) & 0xffff, idle=idle, stall=stall)
    assert got == want
    for beat, s, job, mode in zip(done, streams, (first, second, second), ("focus", "dense", "focus")):
        assert beat.status == JobStatus.OK
        counters = {k: int(getattr(beat.counters, k)) for k in COUNTER_NAMES}
        for key, value in s.counters.items():
            assert counters[key] == value, key
        assert counters["array_busy"] + counters["wait_sic"] + counters["wait_scatter"] + counters["wait_input"] \
            + counters["drain"] == counters["cycles"]
        # the array takes every tile-chunk's unique vectors (one zero vector for none) once per N-tile,
        # the scatter adds every non-zero vector's row once per N-tile; no run beats the bound
        U, Z = tile_chunk_counts(cfg, job, mode)
        P = s.command["n_tiles"]
        assert counters["array_busy"] == P * int(np.maximum(U, 1).sum())
        assert counters["row_adds"] == P * int(Z.sum())
        assert counters["cycles"] >= cycle_bound(cfg, job, mode)


@pytest.mark.parametrize("name", SMALL)
def test_sec_prunes_in_the_top_and_jobs_change_k_and_mode(name):
    cfg = SMALL[name]
    jobs = [make_job(cfg, 11, keep=cfg.tokens // 3), make_job(cfg, 12, keep=1), make_job(cfg, 13)]
    streams = [accelerator_streams(cfg, jobs[0], "focus"), accelerator_streams(cfg, jobs[1], "dense"),
               accelerator_streams(cfg, jobs[2], "focus"), accelerator_streams(cfg, jobs[0], "dense")]
    assert [s.command["k"] for s in streams] == [cfg.tokens // 3, 1, 0, cfg.tokens // 3]
    got, want, done = run(cfg, streams, seed=5, idle=0.3, stall=0.3, name=f"accelerator_sec_{name}")
    assert got == want
    assert [beat.status for beat in done] == [JobStatus.OK] * 4
    assert int(done[0].counters.sec_cycles) > 0 and int(done[2].counters.sec_cycles) == 0


@pytest.mark.parametrize("name", SMALL)
def test_all_zero_job_gives_zero_outputs(name):
    cfg = SMALL[name]
    streams = [accelerator_streams(cfg, make_job(cfg, 0, zero=True), "focus")]
    got, want, done = run(cfg, streams, idle=0.2, stall=0.2)
    assert got == want and all(v == 0 for row, _ in got for v in row)
    assert int(done[0].counters.zero) == cfg.tokens * cfg.chunks


def test_refused_command_ends_with_bad_k_and_zero_counters_and_the_next_job_runs():
    """A command with k above the token count is refused between two jobs: BAD_K, and its done
    beat's counters are all 0 (it ran nothing), not the previous job's; the next job is exact."""
    cfg = SMALL["4x4-lanes3"]
    good = accelerator_streams(cfg, make_job(cfg, 5), "focus")
    got, want, done = run(cfg, [good, refused(good, k=cfg.tokens + 1), good], seed=4, idle=0.2, stall=0.2,
                          name="accelerator_refused_after_job")
    assert [beat.status for beat in done] == [JobStatus.OK, JobStatus.BAD_K, JobStatus.OK]
    assert int(done[0].counters.cycles) > 0
    assert all(int(getattr(done[1].counters, name)) == 0 for name in COUNTER_NAMES)
    assert got == want


def refused(streams, **command):
    """``streams`` as a job the top refuses: the command changed by ``command``, no tokens, weights,
    results or mask; the scores as given."""
    empty = np.zeros((0, streams.tokens.shape[1]), np.int64)
    return replace(streams, command=dict(streams.command, **command), tokens=empty, token_ends=[],
                   weights=np.zeros((0, streams.weights.shape[1]), np.int64), results=np.zeros((0, 0), np.int64),
                   result_ends=[], mask=np.zeros((0, streams.mask.shape[1]), np.int64))


def test_every_end_of_a_job_offers_its_done_beat_two_cycles_on_and_bad_scores_count_only_sec():
    """Jobs back to back, every output always ready: a finished job's done beat comes two edges
    after its last result (``DONE_SETTLE``, then ``DONE``), a refused command's two edges after the
    command (``k > T``: ``BAD_K``; ``n_tiles = 0``: ``BAD_N_TILES``; every counter 0), a score stream
    that ends mid-row gives ``BAD_LENGTH`` with ``cycles = sec_cycles > 0`` and every other counter 0;
    the jobs after each are exact."""
    cfg = SMALL["4x4-lanes3"]
    assert cfg.tokens > cfg.cols                                    # a score row is several beats
    plain = accelerator_streams(cfg, make_job(cfg, 21), "focus")
    pruned = accelerator_streams(cfg, make_job(cfg, 22, keep=cfg.tokens // 2), "focus")
    beats_per_row = -(-cfg.tokens // cfg.cols)
    cut = beats_per_row + 2                                         # ends inside the second row
    ragged = replace(refused(pruned), scores=pruned.scores[:cut], score_last=[0] * (cut - 1) + [1])
    streams = [plain, refused(plain, k=cfg.tokens + 1), ragged, pruned, refused(plain, n_tiles=0), plain]
    got, want, done, edges = run(cfg, streams, seed=3, idle=0.0, stall=0.0, name="accelerator_done_timing",
                                 edges=("command", "results", "done"))
    assert got == want
    assert [beat.status for beat in done] == [JobStatus.OK, JobStatus.BAD_K, JobStatus.BAD_LENGTH,
                                              JobStatus.OK, JobStatus.BAD_N_TILES, JobStatus.OK]
    counters = [{k: int(getattr(beat.counters, k)) for k in COUNTER_NAMES} for beat in done]
    assert all(value == 0 for index in (1, 4) for value in counters[index].values())
    assert counters[2]["cycles"] == counters[2]["sec_cycles"] >= cut
    assert all(value == 0 for key, value in counters[2].items() if key not in ("cycles", "sec_cycles"))
    for index in (0, 5):
        assert counters[index] == counters[0] and counters[index]["cycles"] > 0
    # the job's last result, per finished job: the results of jobs 0, 3 and 5 end at these beats
    ends = np.cumsum([len(s.result_ends) for s in streams]) - 1
    for index in (0, 3, 5):
        assert edges["done"][index] == edges["results"][ends[index]] + 2
    for index in (1, 4):
        assert edges["done"][index] == edges["command"][index] + 2


def test_reset_mid_job_then_next_job_exact():
    cfg = SMALL["4x4-lanes3"]
    abandoned = accelerator_streams(cfg, make_job(cfg, 7), "focus")
    streams = [accelerator_streams(cfg, make_job(cfg, 8), "focus"), accelerator_streams(cfg, make_job(cfg, 9), "dense")]
    dut = FocusAccelerator(cfg)
    top = WithReset(dut)
    rng = random.Random(4)
    state = {"reset": False}
    got, done = [], []
    first, second = drivers(dut, [abandoned], rng, 0.0), drivers(dut, streams, rng, 0.2)
    ports = (dut.command, dut.tokens, dut.weights, dut.scores)

    async def driver(ctx, index):
        await across_reset(ctx, ports[index], first[index], second[index], lambda: state["reset"])

    async def controller(ctx):
        early = await get(ctx, dut.results, cfg.tile_tokens + 3, rng, 0.3)     # into the second block
        assert len(early) == cfg.tile_tokens + 3
        await top.pulse(ctx, dut.results)
        state["reset"] = True
        got.extend(await get(ctx, dut.results, len(expected_results(streams)), rng, 0.3))

    async def dones(ctx):
        while not state["reset"]:
            await ctx.tick()
        done.extend(await get(ctx, dut.done, 2, rng, 0.3))

    simulate(top, [partial(driver, index=i) for i in range(4)] + [controller, dones], name="accelerator_reset",
             timeout_cycles=20_000)
    assert as_results(got) == expected_results(streams)
    assert [beat.status for beat in done] == [JobStatus.OK, JobStatus.OK]


@pytest.mark.parametrize("name", SMALL)
def test_jobs_never_use_a_block_ram_read_of_the_row_written_at_the_same_edge(name):
    """The ECP5 builds leave such reads undefined (focus.hdl.util.CollisionFreeReadPort: the
    scatter's partial banks, the pass buffer, SIC's sums, counts and window lines): with those
    reads poisoned, focus and dense jobs stay exact and their counters equal the model."""
    with poisoned_collisions():
        test_focus_and_dense_jobs_equal_golden_model_under_backpressure(name, 0.4, 0.4)
