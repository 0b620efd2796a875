"""StreamRegister: the register slice between the host link and the accelerator (hdl/streams.py)."""

import random
from functools import partial

import pytest

from amaranth.hdl import unsigned

from focus.hdl.streams import StreamRegister
from focus.tb.amaranth_sim import WithReset, check_stream_rules, get, put, simulate


@pytest.mark.parametrize("width", [16, 2 * StreamRegister.SEGMENT_BITS + 22], ids=["one-segment", "three-segments"])
def test_every_beat_passes_once_in_order_under_random_valid_and_ready(width):
    """Also across segments: each segment's copies of the control flip-flops keep its bits in step."""
    dut = StreamRegister(unsigned(width))
    rng = random.Random(7)
    beats = [rng.randrange(1 << width) for _ in range(600)]
    got = []

    async def source(ctx):
        await put(ctx, dut.input, beats, rng, idle=0.4)

    async def sink(ctx):
        got.extend(await get(ctx, dut.output, len(beats), random.Random(8), stall=0.4))

    simulate(dut, [source, sink], [partial(check_stream_rules, port=dut.output)], name="stream_register_random")
    assert got == beats


def test_takes_a_beat_every_cycle_while_the_output_is_ready():
    dut = StreamRegister(unsigned(8))
    edges = []

    async def bench(ctx):
        ctx.set(dut.output.ready, 1)
        ctx.set(dut.input.valid, 1)
        for cycle in range(40):
            ctx.set(dut.input.payload, cycle)
            _, _, out_valid, out_payload, in_ready = await ctx.tick().sample(
                dut.output.valid, dut.output.payload, dut.input.ready)
            assert in_ready
            if out_valid:
                edges.append((cycle, out_payload))

    simulate(dut, [bench], name="stream_register_rate")
    # offered from the cycle after it was taken: beat c handshakes at edge c + 1
    assert edges == [(c + 1, c) for c in range(39)]


def test_no_combinational_path_crosses_it():
    """``input.ready`` does not follow ``output.ready``, nor ``output.valid`` ``input.valid``,
    within a cycle."""
    dut = StreamRegister(unsigned(8))

    async def bench(ctx):
        ctx.set(dut.output.ready, 0)
        ctx.set(dut.input.valid, 1)
        for _ in range(3):                 # fill the output and the skid register
            await ctx.tick()
        assert not ctx.get(dut.input.ready) and ctx.get(dut.output.valid)
        ctx.set(dut.output.ready, 1)
        assert not ctx.get(dut.input.ready)
        ctx.set(dut.output.ready, 0)
        ctx.set(dut.input.valid, 0)
        assert ctx.get(dut.output.valid)

    simulate(dut, [bench], name="stream_register_comb")


def test_a_reset_forgets_the_beats_it_holds():
    dut = StreamRegister(unsigned(8))
    top = WithReset(dut)
    got, after_reset = [], []

    async def source(ctx):
        ctx.set(dut.input.valid, 1)
        for value in (1, 2):               # one in the output register, one in the skid register
            ctx.set(dut.input.payload, value)
            await ctx.tick().until(dut.input.ready)
        ctx.set(dut.input.valid, 0)
        await ctx.tick()
        assert not ctx.get(dut.input.ready)
        await top.pulse(ctx, dut.output)
        assert ctx.get(dut.input.ready)
        after_reset.append(True)
        await put(ctx, dut.input, [7, 8, 9], random.Random(1), idle=0.3)

    async def sink(ctx):
        ctx.set(dut.output.ready, 0)
        await ctx.tick().until(dut.output.valid)      # the first beat, never taken
        while not after_reset:
            await ctx.tick()
        got.extend(await get(ctx, dut.output, 3, random.Random(2), stall=0.3))
        for _ in range(5):
            await ctx.tick()
            assert not ctx.get(dut.output.valid), "a beat from before the reset came out"

    simulate(top, [source, sink], name="stream_register_reset")
    assert got == [7, 8, 9]
