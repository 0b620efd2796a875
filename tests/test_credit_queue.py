"""CreditQueue: the output queue with credit flow control behind every never-stalling pipeline
(the array, SIC's comparator and emitter, the pass buffer's readers, the scatter; hdl/streams.py)."""

import random

import pytest

from amaranth.hdl import unsigned

from focus.hdl.streams import CreditQueue
from focus.tb.amaranth_sim import WithReset, simulate


async def _run_pipeline(ctx, dut, rng, *, items, latency, start_rate, ready_rate, first_id=0, reset_at=None, top=None):
    """Start items while ``admit`` allows, write each ``latency`` cycles after its start, take them
    with random ``ready``; check ``admit`` against the count of started, not yet taken items in
    every cycle. Returns the ids taken, in order (and stops at cycle ``reset_at`` with a reset)."""
    in_flight = []                 # (write cycle, id) of started items not yet written
    outstanding = 0
    next_id, taken = first_id, []
    cycle = 0
    while len(taken) < items:
        assert ctx.get(dut.admit) == (outstanding < dut.depth), (
            f"cycle {cycle}: admit {ctx.get(dut.admit)} with {outstanding} of {dut.depth} outstanding")
        if reset_at is not None and cycle == reset_at:
            ctx.set(dut.start, 0)
            ctx.set(dut.w_stream.valid, 0)
            ctx.set(dut.r_stream.ready, 0)
            await top.pulse(ctx, dut.r_stream)
            assert ctx.get(dut.admit), "no credit after a reset"
            return taken
        start = next_id < first_id + items and ctx.get(dut.admit) and rng.random() < start_rate
        ctx.set(dut.start, start)
        if start:
            in_flight.append((cycle + latency, next_id))
            next_id += 1
        writing = bool(in_flight) and in_flight[0][0] == cycle
        ctx.set(dut.w_stream.valid, writing)
        if writing:
            assert ctx.get(dut.w_stream.ready), "the queue refused a write the credit had room for"
            ctx.set(dut.w_stream.payload, in_flight.pop(0)[1])
        ready = rng.random() < ready_rate
        ctx.set(dut.r_stream.ready, ready)
        take = ready and ctx.get(dut.r_stream.valid)
        if take:
            taken.append(ctx.get(dut.r_stream.payload))
        outstanding += start - take
        await ctx.tick()
        cycle += 1
    return taken


@pytest.mark.parametrize("depth,latency,buffered", [
    (1, 0, False), (2, 1, False), (5, 3, False), (8, 8, False), (1, 0, True), (3, 1, True), (5, 0, True), (8, 8, True)])
def test_admit_follows_the_credit_and_items_leave_once_in_order(depth, latency, buffered):
    """``admit`` equals ``outstanding < depth`` in every cycle, whatever the rates and latency."""
    dut = CreditQueue(unsigned(16), depth, buffered=buffered)
    got = []

    async def bench(ctx):
        for seed, (start_rate, ready_rate) in enumerate([(1.0, 1.0), (0.7, 0.4), (0.3, 0.9), (1.0, 0.2)]):
            got.append(await _run_pipeline(ctx, dut, random.Random(seed), items=150, latency=latency,
                                           start_rate=start_rate, ready_rate=ready_rate, first_id=1000 * seed))
            for _ in range(latency + 3):
                await ctx.tick()

    simulate(dut, [bench], name=f"credit_queue_{depth}_{latency}_{int(buffered)}")
    assert got == [list(range(1000 * seed, 1000 * seed + 150)) for seed in range(4)]


def test_full_rate_with_ready_held_high_when_the_depth_covers_the_latency():
    depth, latency = 6, 4                  # latency + the queue's own read latency (1) < depth
    dut = CreditQueue(unsigned(8), depth)
    starts = []

    async def bench(ctx):
        ctx.set(dut.r_stream.ready, 1)
        pending = []
        for cycle in range(60):
            admit = ctx.get(dut.admit)
            starts.append(admit)
            ctx.set(dut.start, admit)
            if admit:
                pending.append(cycle + latency)
            writing = bool(pending) and pending[0] == cycle
            ctx.set(dut.w_stream.valid, writing)
            if writing:
                pending.pop(0)
            await ctx.tick()

    simulate(dut, [bench], name="credit_queue_rate")
    assert all(starts)


@pytest.mark.parametrize("buffered", [False, True], ids=["fifo", "buffered"])
def test_a_reset_in_the_middle_restores_the_credit_and_drops_the_items(buffered):
    dut = CreditQueue(unsigned(16), 4, buffered=buffered)
    top = WithReset(dut)
    after = []

    async def bench(ctx):
        await _run_pipeline(ctx, dut, random.Random(3), items=100, latency=2, start_rate=0.9, ready_rate=0.3,
                            reset_at=37, top=top)
        for _ in range(4):
            assert not ctx.get(dut.r_stream.valid), "an item from before the reset came out"
            await ctx.tick()
        after.extend(await _run_pipeline(ctx, dut, random.Random(4), items=60, latency=2, start_rate=0.8,
                                         ready_rate=0.5, first_id=500))

    simulate(top, [bench], name=f"credit_queue_reset_{int(buffered)}")
    assert after == list(range(500, 560))


def test_a_buffered_queue_of_depth_two_is_refused():
    """Its FIFO refuses a write while its only entry moves to the output register, within the credit."""
    with pytest.raises(ValueError, match="depth 2"):
        CreditQueue(unsigned(8), 2, buffered=True)
