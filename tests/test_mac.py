"""MultiplyAccumulator in Amaranth's simulator: exact sums, backpressure, reset mid-job, latency."""

import random
from functools import partial

import numpy as np
import pytest

from focus import FocusConfig
from focus.hdl.mac import MultiplyAccumulator
from focus.tb.amaranth_sim import WithReset, check_stream_rules, get, put, simulate

CONFIGS = {
    "int8": FocusConfig(),
    "int4": FocusConfig(data_width=4, acc_width=12, hidden=16, vector_size=4, rows=4, cols=4, scatter_lanes=4),
    "int16": FocusConfig(data_width=16, acc_width=37, hidden=32, vector_size=8),
}


def random_jobs(cfg, rng, count):
    lo, hi = cfg.data_min, cfg.data_max
    jobs = [([lo] * cfg.hidden, [lo] * cfg.hidden), ([lo] * cfg.hidden, [hi] * cfg.hidden), ([hi], [hi])]
    for _ in range(count):
        n = rng.randint(1, cfg.hidden)
        jobs.append(([rng.randint(lo, hi) for _ in range(n)], [rng.randint(lo, hi) for _ in range(n)]))
    return jobs


def beats(jobs):
    return [{"a": x, "b": y, "last": int(i == len(a) - 1)} for a, b in jobs for i, (x, y) in enumerate(zip(a, b))]


def dot(a, b):
    return int(np.dot(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)))


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.6), (0.5, 0.5)])
def test_sums_equal_numpy_under_backpressure(name, idle, stall):
    cfg = CONFIGS[name]
    rng = random.Random(f"{name}{idle}{stall}")
    dut = MultiplyAccumulator(cfg)
    jobs = random_jobs(cfg, rng, 12)
    got = []

    async def producer(ctx):
        await put(ctx, dut.operands, beats(jobs), rng, idle)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.sums, len(jobs), rng, stall))
        for _ in range(20):                       # nothing more comes out
            await ctx.tick()
            assert not ctx.get(dut.sums.valid)

    simulate(dut, [producer, consumer], [partial(check_stream_rules, port=dut.sums)], name=f"mac_{name}")
    assert got == [dot(a, b) for a, b in jobs]


def test_reset_mid_job_leaves_next_job_exact():
    cfg = CONFIGS["int8"]
    rng = random.Random(7)
    dut = MultiplyAccumulator(cfg)
    top = WithReset(dut)
    first, second = random_jobs(cfg, rng, 3), random_jobs(cfg, rng, 5)
    got, reset_done = [], []

    async def producer(ctx):
        # The first job completes with its sum left waiting (ready low); the second is half sent
        # and its next beat is on the bus when reset comes.
        await put(ctx, dut.operands, beats(first)[: cfg.hidden + 1], rng, 0.2)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.sums.valid) and not ctx.get(dut.operands.ready)
        ctx.set(dut.operands.payload, beats(first)[cfg.hidden + 1])
        ctx.set(dut.operands.valid, 1)
        ctx.set(top.cd.rst, 1)
        await ctx.tick()
        ctx.set(top.cd.rst, 0)
        ctx.set(dut.operands.valid, 0)
        assert not ctx.get(dut.sums.valid)
        reset_done.append(True)
        await put(ctx, dut.operands, beats(second), rng, 0.2)

    async def consumer(ctx):
        while not reset_done:
            await ctx.tick()
        got.extend(await get(ctx, dut.sums, len(second), rng, 0.3))

    simulate(top, [producer, consumer], name="mac_reset")
    assert got == [dot(a, b) for a, b in second]


def test_sum_valid_two_cycles_after_last_pair():
    cfg = CONFIGS["int4"]
    dut = MultiplyAccumulator(cfg)

    async def bench(ctx):
        ctx.set(dut.sums.ready, 1)
        ctx.set(dut.operands.valid, 1)
        for i in range(3):
            ctx.set(dut.operands.payload, {"a": i + 1, "b": -2, "last": int(i == 2)})
            await ctx.tick()                      # pair i taken at this edge
        ctx.set(dut.operands.valid, 0)
        assert not ctx.get(dut.sums.valid)        # cycle after the last pair: product registered
        await ctx.tick()
        assert ctx.get(dut.sums.valid) and ctx.get(dut.sums.payload) == -12

    simulate(dut, [bench], name="mac_latency")
