"""cocotb tests of :class:`focus.hdl.mac.MultiplyAccumulator` against NumPy integer dot products.

Run from pytest by tests/test_mac_rtl.py (``run_cocotb("mac", "focus.tb.cocotb_mac", cfg)``).
"""

from __future__ import annotations

import cocotb
import numpy as np
from amaranth.hdl import signed
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from focus.hdl.mac import MacOperands
from focus.tb.runner import tb_context
from focus.tb.streams import StreamMonitor, StreamSink, StreamSource, make_rng, pack, reset_dut, start_clock, unpack


def make_jobs(cfg, rng, count):
    """Random jobs of 1..hidden pairs, plus the signed extremes: the largest and smallest sums."""
    lo, hi = cfg.data_min, cfg.data_max
    nprng = np.random.default_rng(rng.getrandbits(32))
    jobs = [(np.full(cfg.hidden, lo), np.full(cfg.hidden, lo)),     # largest positive sum
            (np.full(cfg.hidden, lo), np.full(cfg.hidden, hi)),     # most negative sum
            (np.array([hi]), np.array([hi]))]
    for _ in range(count):
        n = rng.randint(1, cfg.hidden)
        jobs.append((nprng.integers(lo, hi + 1, n), nprng.integers(lo, hi + 1, n)))
    return jobs


def operand_beats(layout, jobs):
    for a, b in jobs:
        for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
            yield pack(layout, {"a": x, "b": y, "last": int(i == len(a) - 1)})


def expected_sums(jobs):
    return [int(np.dot(a.astype(np.int64), b.astype(np.int64))) for a, b in jobs]


class MacBench:
    def __init__(self, dut, idle=0.0, stall=0.0):
        self.dut = dut
        self.cfg, _ = tb_context()
        self.rng = make_rng()
        self.layout = MacOperands(self.cfg)
        self.result_shape = signed(self.cfg.acc_width)
        start_clock(dut)
        self.source = StreamSource(dut, "operands", self.rng, idle=idle)
        self.operands = StreamMonitor(dut, "operands")
        self.sink = StreamSink(dut, "sums", self.rng, stall=stall)

    def sums(self):
        return [unpack(self.result_shape, bits) for bits in self.sink.beats]

    async def run(self, jobs):
        """Send ``jobs``, wait for their sums, compare them with NumPy, then check nothing more comes."""
        self.source.send(operand_beats(self.layout, jobs))
        await self.sink.wait_for(len(jobs))
        assert self.sums() == expected_sums(jobs)
        await self.sink.expect_nothing_more(50)


@cocotb.test(timeout_time=2, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.5], stall=[0.0, 0.5])
async def sums_match_numpy_under_backpressure(dut, idle, stall):
    tb = MacBench(dut, idle, stall)
    await reset_dut(dut)
    await tb.run(make_jobs(tb.cfg, tb.rng, 20))


@cocotb.test(timeout_time=2, timeout_unit="ms")
async def reset_mid_job_leaves_next_job_exact(dut):
    tb = MacBench(dut, idle=0.2, stall=0.3)
    await reset_dut(dut)
    interrupted = make_jobs(tb.cfg, tb.rng, 4)
    tb.source.send(operand_beats(tb.layout, interrupted))
    while tb.source.sent < tb.cfg.hidden + 5:            # well inside the second job
        await RisingEdge(dut.clk)
    await reset_dut(dut)
    tb.source.clear()
    tb.sink.clear()
    await tb.run(make_jobs(tb.cfg, tb.rng, 6))


@cocotb.test(timeout_time=1, timeout_unit="ms")
async def one_pair_per_cycle_and_two_cycle_latency(dut):
    """Without idling or stalls a job of n pairs is taken in n consecutive cycles and its sum is
    valid 2 cycles after the last pair's handshake."""
    tb = MacBench(dut)
    await reset_dut(dut)
    jobs = make_jobs(tb.cfg, tb.rng, 0)[:1]             # hidden pairs of (min, min)
    n = len(jobs[0][0])
    tb.source.send(operand_beats(tb.layout, jobs))
    await ReadOnly()                                   # the monitors have seen this edge (in reset)
    first = tb.operands.cycle                          # the next edge: the source offers pair 0 there
    await tb.sink.wait_for(1)
    # Pair i is offered from edge first + i and taken at the next edge; the sum is offered from
    # 2 edges after the last pair's handshake and taken at once (ready is always high).
    assert tb.operands.cycles == list(range(first + 1, first + 1 + n)), "pairs were not taken one per cycle"
    assert tb.sink.cycles == [first + n + 2], f"sum taken at edge {tb.sink.cycles}, expected {first + n + 2}"
    assert tb.sums() == expected_sums(jobs)
    await tb.sink.expect_nothing_more(50)


@cocotb.test(timeout_time=1, timeout_unit="ms", expect_error=AssertionError)
async def monitor_fails_the_test_when_a_pending_beat_changes(dut):
    """A check of the testbench itself: the test breaks the handshake rules on ``operands`` (a beat
    offered while ready is low changes before its handshake), and the StreamMonitor on that port
    must fail the test with AssertionError. Setup problems raise RuntimeError, which does not count."""
    tb = MacBench(dut, stall=1.0)                       # sums are never taken
    await reset_dut(dut)
    tb.source.send(operand_beats(tb.layout, make_jobs(tb.cfg, tb.rng, 0)[2:]))     # one pair, last
    await ClockCycles(dut.clk, 10)
    if dut.operands__ready.value or not tb.source.idle_now:
        raise RuntimeError("the finished sum waits, so operands.ready should be low")
    tb.source.queue.append(pack(tb.layout, {"a": 1, "b": 1, "last": 1}))
    while not tb.source.valid.value:                   # offered, and not taken: ready is low
        await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    tb.source.payload.value = pack(tb.layout, {"a": 2, "b": 1, "last": 1})      # breaks the rule
    await ClockCycles(dut.clk, 3)
    raise RuntimeError("the StreamMonitor on operands did not notice the changed payload")


@cocotb.test(timeout_time=1, timeout_unit="ms", expect_error=AssertionError)
async def expect_nothing_more_fails_when_a_beat_comes(dut):
    """A check of the testbench itself: a job sent behind the sink's back makes a sum nobody
    asked for, and expect_nothing_more must fail the test with AssertionError."""
    tb = MacBench(dut)
    await reset_dut(dut)
    tb.source.send(operand_beats(tb.layout, make_jobs(tb.cfg, tb.rng, 0)[2:]))     # one pair, last
    await tb.sink.expect_nothing_more(20)
    raise RuntimeError("expect_nothing_more did not notice the sum")
