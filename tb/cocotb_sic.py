"""cocotb tests of :class:`focus.hdl.sic.SimilarityConcentrator` against the golden model's
exported test vectors (``focus-sim export`` files, docs/export-format.md).

Run from pytest by tests/test_sic_rtl.py. Parameters (``tb_context``): ``exports``, a list of
``.npz`` files written by :func:`focus.sim.export.write` for the configuration the design was
built for; they are sent as consecutive jobs. Every map entry, every counter of every tile-chunk
and every representative is compared with the file, exactly, and nothing more may come out.
"""

from __future__ import annotations

import json

import cocotb
from cocotb.triggers import RisingEdge, gather

from focus.hdl.sic import TileCounters
from focus.hdl.streams import MapBeat, VectorBeat
from focus.sim.sic_cycles import sic_cycles
from focus.tb.runner import tb_context
from focus.tb.sic_jobs import SicBeats, export_beats
from focus.tb.streams import (StreamMonitor, StreamSink, StreamSource, first_difference, make_rng, pack, reset_dut,
                             start_clock, unpack)


class SicBench:
    def __init__(self, dut, idle=0.0, stall=0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.rng = make_rng()
        self.layouts = {"vectors": VectorBeat(self.cfg), "map": MapBeat(self.cfg),
                        "counters": TileCounters(self.cfg), "representatives": VectorBeat(self.cfg)}
        start_clock(dut)
        self.source = StreamSource(dut, "vectors", self.rng, idle=idle)
        self.inputs = StreamMonitor(dut, "vectors")
        self.sinks = {name: StreamSink(dut, name, self.rng, stall=stall)
                      for name in ("map", "counters", "representatives")}
        self.jobs = [export_beats(self.cfg, path) for path in self.params["exports"]]

    def send(self, job: SicBeats):
        self.source.send(pack(self.layouts["vectors"], v) for v in job.vectors)

    def clear(self):
        self.source.clear()
        self.inputs.clear()
        for sink in self.sinks.values():
            sink.clear()

    def got(self):
        """Decoded output beats so far, per stream, in the shape of :class:`SicBeats`."""
        V = self.cfg.vector_size
        maps = [unpack(self.layouts["map"], b) for b in self.sinks["map"].beats]
        counters = [unpack(self.layouts["counters"], b) for b in self.sinks["counters"].beats]
        reps = [unpack(self.layouts["representatives"], b) for b in self.sinks["representatives"].beats]
        return ([(int(e.index), e.end.as_bits()) for e in maps],
                [(int(e.unique), int(e.similar), int(e.zero), int(e.base), e.end.as_bits()) for e in counters],
                [([int(e.data[i]) for i in range(V)], e.end.as_bits()) for e in reps])

    async def collect(self, jobs):
        for name, attr in (("map", "map"), ("counters", "counters"), ("representatives", "representatives")):
            await self.sinks[name].wait_for(sum(len(getattr(job, attr)) for job in jobs))

    def check(self, jobs):
        maps, counters, reps = self.got()
        want_maps = [e for job in jobs for e in job.map]
        want_counters = [e for job in jobs for e in job.counters]
        want_reps = [e for job in jobs for e in job.representatives]
        assert counters == want_counters, first_difference("counters", counters, want_counters)
        assert maps == want_maps, first_difference("map", maps, want_maps)
        assert reps == want_reps, first_difference("representatives", reps, want_reps)

    async def expect_nothing_more(self, cycles=100):
        await gather(*(sink.expect_nothing_more(cycles) for sink in self.sinks.values()))

    async def run(self, jobs):
        """Send ``jobs`` back to back, wait for all their beats, check them, then check nothing more comes."""
        for job in jobs:
            self.send(job)
        await self.collect(jobs)
        self.check(jobs)
        await self.expect_nothing_more()


@cocotb.test(timeout_time=400, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.4, 0.5), (0.0, 0.8)]))
async def outputs_equal_golden_under_backpressure(dut, idle, stall):
    """Every export, sent as consecutive jobs without a reset in between (unique indices restart
    at each job), with random idle input cycles and random backpressure on all three outputs
    (0.8: the output queues fill and the comparator's credit stops the input). Without any idle
    or stall cycles the outputs are checked by handshake_cycles_equal_cycle_model."""
    tb = SicBench(dut, idle, stall)
    await reset_dut(dut)
    await tb.run(tb.jobs)


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def reset_mid_tile_then_next_job_is_exact(dut):
    """Reset while the second tile-chunk is half resolved (representatives of the first pending,
    outputs backed up), then a whole job: only its beats come out, all exact."""
    tb = SicBench(dut, idle=0.2, stall=0.4)
    await reset_dut(dut)
    first, last = tb.jobs[0], tb.jobs[-1]
    tb.send(first)
    tile_tokens = tb.cfg.tile_tokens
    stop = min(len(first.map) - 1, tile_tokens + tile_tokens // 2)
    while len(tb.sinks["map"].beats) < stop:
        await RisingEdge(dut.clk)
    await reset_dut(dut)
    tb.clear()
    await tb.run([last])


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def handshake_cycles_equal_cycle_model(dut):
    """Input always valid, outputs always ready: every handshake on every stream happens in the
    cycle focus.sim.sic_cycles predicts (cycle 0 = the first input handshake)."""
    tb = SicBench(dut)
    await reset_dut(dut)
    ports = {"vectors": "inputs", "map": "map", "counters": "counters", "representatives": "representatives"}
    seen = {"vectors": tb.inputs.cycles, **{name: sink.cycles for name, sink in tb.sinks.items()}}
    jobs = tb.jobs
    await tb.run(jobs)
    model = sic_cycles(tb.cfg, [u for job in jobs for u in job.unique])
    start = seen["vectors"][0]
    for name, field in ports.items():
        got = [c - start for c in seen[name]]
        want = getattr(model, field)
        assert got == want, first_difference(f"{name} handshake cycle", got, want)
    last = max(seen["map"][-1], seen["counters"][-1], *seen["representatives"][-1:]) - start
    measured = {"vectors": len(seen["vectors"]), "cycles": last + 1,
                "cycles_per_vector": (last + 1) / len(seen["vectors"]),
                "input_interval": (seen["vectors"][-1] - start) / max(1, len(seen["vectors"]) - 1),
                "unique": sum(u for job in jobs for u in job.unique), "model_cycles": model.cycles}
    cocotb.log.info(f"measured {measured}")
    if "report" in tb.params:                         # benchmarks/sic.py reads the measurement here
        with open(tb.params["report"], "w") as f:
            json.dump(measured, f)
