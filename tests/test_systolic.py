"""SystolicArray and GemmSequencer in Amaranth's simulator: exact against NumPy under random
backpressure, a blocked result stream absorbed without loss, a reset in the middle of a job, and
cycle counts equal to the cycle model."""

import random
from functools import partial

import numpy as np
import pytest

from focus import FocusConfig
from focus.framing import END_CHUNK, end_fields
from focus.hdl.gemm import GemmSequencer
from focus.hdl.systolic import SystolicArray
from focus.sim.array_model import array_cycles, gemm_cycles
from focus.sim.gemm_streams import gemm_reference, gemm_streams, random_operands
from focus.tb.amaranth_sim import (HandshakeEdges, WithReset, across_reset, check_stream_rules, get, put,
                                   put_across_reset, simulate)


def config(rows, cols, data_width=8, acc_width=32):
    return FocusConfig(rows=rows, vector_size=rows, cols=cols, hidden=3 * rows, data_width=data_width,
                       acc_width=acc_width, frames=1, tile_frames=1, height=4, width=4, scatter_lanes=1)


CONFIGS = {
    "4x3": config(4, 3),
    "2x5-int4-acc10": config(2, 5, data_width=4, acc_width=10),
    "3x2-int16-acc35": config(3, 2, data_width=16, acc_width=35),
    "1x1": config(1, 1),
}


# ---------------------------------------------------------------------------------- array passes

def random_passes(cfg, rng, nprng, lengths):
    """Weight tiles, activation beats (with last) and the expected result beats for passes of the
    given lengths."""
    lo, hi = cfg.data_min, cfg.data_max
    tiles, acts, expected = [], [], []
    for length in lengths:
        W = nprng.integers(lo, hi + 1, size=(cfg.rows, cfg.cols))
        X = nprng.integers(lo, hi + 1, size=(length, cfg.rows))
        X[0, 0], W[0, 0] = lo, lo                                   # an extreme product in each pass
        Y = gemm_reference(X, W, cfg.acc_width)
        tiles += W.tolist()
        ends = [END_CHUNK if i == length - 1 else 0 for i in range(length)]
        acts += [{"data": row, "end": end_fields(end)} for row, end in zip(X.tolist(), ends)]
        expected += list(zip(Y.tolist(), ends))
    return tiles, acts, expected


def as_rows(beats):
    """(row, framing code) of each result beat."""
    return [([int(x) for x in beat.data], beat.end.as_bits()) for beat in beats]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.7), (0.5, 0.5)])
def test_array_passes_equal_numpy_under_backpressure(name, idle, stall):
    cfg = CONFIGS[name]
    rng = random.Random(f"{name}{idle}{stall}")
    nprng = np.random.default_rng(rng.getrandbits(32))
    dut = SystolicArray(cfg)
    lengths = [1, 1, 2, 1, cfg.rows + cfg.cols + 2, 3, 1, 9, 1]
    tiles, acts, expected = random_passes(cfg, rng, nprng, lengths)
    got = []

    async def weights(ctx):
        await put(ctx, dut.weights, tiles, rng, idle)

    async def activations(ctx):
        await put(ctx, dut.activations, acts, rng, idle)

    async def results(ctx):
        got.extend(await get(ctx, dut.results, len(expected), rng, stall))
        for _ in range(30):
            await ctx.tick()
            assert not ctx.get(dut.results.valid), "a result nobody sent a vector for"

    simulate(dut, [weights, activations, results], [partial(check_stream_rules, port=dut.results)],
             name=f"array_{name}")
    assert as_rows(got) == expected


def test_blocked_results_stop_activations_after_fifo_depth_and_lose_nothing():
    cfg = CONFIGS["4x3"]
    rng = random.Random(1)
    nprng = np.random.default_rng(1)
    dut = SystolicArray(cfg)
    tiles, acts, expected = random_passes(cfg, rng, nprng, [30])
    taken = []

    async def weights(ctx):
        await put(ctx, dut.weights, tiles, rng, 0.0)

    async def activations(ctx):
        await put(ctx, dut.activations, acts, rng, 0.0)

    async def results(ctx):
        ctx.set(dut.results.ready, 0)
        for _ in range(200):                       # results blocked for 200 cycles
            _, _, valid, ready = await ctx.tick().sample(dut.activations.valid, dut.activations.ready)
            if valid and ready:
                taken.append(1)
        assert len(taken) == dut.fifo_depth, "the array took more vectors than it can hold results for"
        assert not ctx.get(dut.activations.ready)
        taken.append(await get(ctx, dut.results, len(expected), rng, 0.3))

    simulate(dut, [weights, activations, results], [partial(check_stream_rules, port=dut.results)],
             name="array_blocked")
    assert as_rows(taken[-1]) == expected


def test_array_reset_mid_pass_leaves_next_passes_exact():
    cfg = CONFIGS["4x3"]
    rng = random.Random(21)
    nprng = np.random.default_rng(21)
    dut = SystolicArray(cfg)
    top = WithReset(dut)
    old_tiles, old_acts, old_expected = random_passes(cfg, rng, nprng, [9, 1, 12, 3])
    tiles, acts, expected = random_passes(cfg, rng, nprng, [2, 1, 10, 1, 5])
    state = {"reset": False}
    early, got = [], []

    async def driver(ctx, port, first, second):
        await put_across_reset(ctx, port, first, second, rng, lambda: state["reset"])

    async def controller(ctx):
        early.extend(await get(ctx, dut.results, 11, rng, 0.3))     # into the third pass
        await top.pulse(ctx, dut.results)
        state["reset"] = True
        got.extend(await get(ctx, dut.results, len(expected), rng, 0.3))
        for _ in range(30):
            await ctx.tick()
            assert not ctx.get(dut.results.valid)

    simulate(top, [partial(driver, port=dut.weights, first=old_tiles, second=tiles),
                   partial(driver, port=dut.activations, first=old_acts, second=acts), controller],
             [partial(check_stream_rules, port=dut.results)], name="array_reset")
    assert as_rows(early) == old_expected[:11]
    assert as_rows(got) == expected


@pytest.mark.parametrize("name", ["4x3", "2x5-int4-acc10", "1x1"])
def test_array_cycles_equal_model(name):
    cfg = CONFIGS[name]
    R, C = cfg.rows, cfg.cols
    rng = random.Random(name)
    nprng = np.random.default_rng(2)
    # back to back, waiting for a bank, waiting for weights, and mixed
    for lengths in ([R + C] * 4, [max(1, R + C - 4)] * 4, [1] * 5, [1, R + C + 3, 2, R, 7, 1]):
        dut = SystolicArray(cfg)
        tiles, acts, expected = random_passes(cfg, rng, nprng, lengths)
        edges = HandshakeEdges(weights=dut.weights, results=dut.results)

        async def weights(ctx):
            await put(ctx, dut.weights, tiles, rng, 0.0)

        async def activations(ctx):
            await put(ctx, dut.activations, acts, rng, 0.0)

        async def results(ctx):
            await get(ctx, dut.results, len(expected), rng, 0.0)

        simulate(dut, [weights, activations, results], [edges.process], name=f"array_cycles_{name}")
        measured = edges.span("weights", "results")
        assert measured == array_cycles(lengths, R, C), f"passes {lengths}"


# ---------------------------------------------------------------------------------- GEMM

def gemm_jobs(cfg, nprng):
    R, C = cfg.rows, cfg.cols
    shapes = [(1, 1, 1), (3, max(1, R - 1), C + 1), (cfg.tile_tokens, 2 * R + 1, 2 * C), (5, cfg.hidden, 3 * C - 1)]
    jobs = []
    for M, K, N in shapes:
        A, W = random_operands(nprng, M, K, N, cfg.data_width)
        jobs.append(gemm_streams(A, W, R, C, cfg.acc_width, pad=nprng, data_width=cfg.data_width))
    for kind in ("max", "min"):
        A, W = random_operands(nprng, 2, cfg.hidden, C, cfg.data_width, kind)
        jobs.append(gemm_streams(A, W, R, C, cfg.acc_width))
    return jobs


def gemm_drivers(dut, jobs, rng, idle, commands=None):
    commands = commands or [j.command for j in jobs]

    async def command(ctx):
        await put(ctx, dut.command, commands, rng, idle)

    async def weights(ctx):
        await put(ctx, dut.weights, [r for j in jobs for r in j.weights.tolist()], rng, idle)

    async def activations(ctx):
        await put(ctx, dut.activations, [{"data": r, "end": end_fields(e)} for j in jobs
                                         for r, e in zip(j.activations.tolist(), j.activation_ends)], rng, idle)

    return [command, weights, activations]


def expected_gemm(jobs):
    return [(row, end) for j in jobs for row, end in zip(j.results.tolist(), j.result_ends)]


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.4, 0.6)])
def test_gemm_equals_numpy_under_backpressure(name, idle, stall):
    cfg = CONFIGS[name]
    rng = random.Random(f"gemm{name}{idle}{stall}")
    dut = GemmSequencer(cfg)
    jobs = gemm_jobs(cfg, np.random.default_rng(rng.getrandbits(32)))
    # an empty job between the first two: accepted, no results
    commands = [jobs[0].command, {"m": 0, "k_chunks": 2, "n_tiles": 1}] + [j.command for j in jobs[1:]]
    expected = expected_gemm(jobs)
    got = []

    async def results(ctx):
        got.extend(await get(ctx, dut.results, len(expected), rng, stall))
        for _ in range(40):
            await ctx.tick()
            assert not ctx.get(dut.results.valid)

    simulate(dut, [*gemm_drivers(dut, jobs, rng, idle, commands), results],
             [partial(check_stream_rules, port=dut.results)], name=f"gemm_{name}")
    assert as_rows(got) == expected


def test_gemm_reset_mid_job_leaves_next_job_exact():
    cfg = CONFIGS["4x3"]
    rng = random.Random(11)
    nprng = np.random.default_rng(11)
    dut = GemmSequencer(cfg)
    top = WithReset(dut)
    A, W = random_operands(nprng, cfg.tile_tokens, 3 * cfg.rows, 3 * cfg.cols, cfg.data_width)
    abandoned = gemm_streams(A, W, cfg.rows, cfg.cols, cfg.acc_width)
    jobs = gemm_jobs(cfg, nprng)
    state = {"reset": False}
    early, got = [], []

    # The abandoned job is driven without idle cycles, so every wait of put() is a ready wait,
    # which raises DomainReset when the reset comes; then the driver drops its beat.
    first = gemm_drivers(dut, [abandoned], rng, 0.0)
    second = gemm_drivers(dut, jobs, rng, 0.2)

    async def driver(ctx, index, port):
        await across_reset(ctx, port, first[index], second[index], lambda: state["reset"])

    async def controller(ctx):
        early.extend(await get(ctx, dut.results, 5, rng, 0.3))
        await top.pulse(ctx, dut.results)
        state["reset"] = True
        got.extend(await get(ctx, dut.results, len(expected_gemm(jobs)), rng, 0.3))
        for _ in range(40):
            await ctx.tick()
            assert not ctx.get(dut.results.valid)

    ports = (dut.command, dut.weights, dut.activations)
    simulate(top, [partial(driver, index=i, port=p) for i, p in enumerate(ports)] + [controller],
             name="gemm_reset")
    assert as_rows(early) == expected_gemm([abandoned])[:5]
    assert as_rows(got) == expected_gemm(jobs)


@pytest.mark.parametrize("name", ["4x3", "2x5-int4-acc10"])
def test_gemm_cycles_equal_model(name):
    cfg = CONFIGS[name]
    R, C = cfg.rows, cfg.cols
    rng = random.Random(name)
    nprng = np.random.default_rng(3)
    for M, K, N in [(1, 1, 1), (R + C, 2 * R, 3 * C), (2, 3 * R, 2 * C), (cfg.tile_tokens, R + 1, C)]:
        dut = GemmSequencer(cfg)
        A, W = random_operands(nprng, M, K, N, cfg.data_width)
        job = gemm_streams(A, W, R, C, cfg.acc_width)
        edges = HandshakeEdges(command=dut.command, results=dut.results)

        async def results(ctx):
            await get(ctx, dut.results, len(job.results), rng, 0.0)

        simulate(dut, [*gemm_drivers(dut, [job], rng, 0.0), results], [edges.process], name=f"gemm_cycles_{name}")
        assert edges.span("command", "results") == gemm_cycles(M, N, K, R, C), (M, K, N)
