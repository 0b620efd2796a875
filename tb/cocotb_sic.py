"""cocotb tests of :class:`focus.hdl.sic.SimilarityConcentrator` against the golden model's
exported test vectors (``focus-sim export`` files, docs/export-format.md).

Run from pytest by tests/test_sic_rtl.py. Parameters (``tb_context``): ``exports``, a list of
``.npz`` files written by :func:`focus.sim.export.write` for the configuration the design was
built for; they are sent as consecutive jobs. Every map entry, every counter of every tile-chunk
and every representative is compared with the file, exactly, and nothing more may come out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import cocotb
from cocotb.triggers import ClockCycles, RisingEdge

from focus.framing import end_codes, end_fields
from focus.hdl.sic import TileCounters
from focus.hdl.streams import MapBeat, VectorBeat
from focus.sim import export
from focus.sim.sic_cycles import sic_cycles, unique_per_tile_chunk
from focus.tb.runner import tb_context
from focus.tb.streams import StreamSink, StreamSource, make_rng, pack, reset_dut, start_clock, unpack


@dataclass
class ExpectedJob:
    """One exported job as beats: what goes in and what must come out, in stream order."""

    vectors: list[dict]                              # framed beats: tile-major, chunk-minor, raster order
    map: list[tuple[int, int]]                       # (unique index, framing code)
    counters: list[tuple[int, int, int, int, int]]   # (unique, similar, zero, base, framing code) per tile-chunk
    representatives: list[tuple[list[int], int]]     # (vector, framing code)
    unique: list[int]                                # roots per tile-chunk (for the cycle model)


def expected_job(cfg, path) -> ExpectedJob:
    """Read an export and lay it out in the order the hardware streams it (see the SIC docstring)."""
    job = export.read(path)
    if job.cfg != cfg:
        raise AssertionError(f"{path} was exported for configuration {job.cfg.digest()}, "
                             f"the design is built for {cfg.digest()}")
    V, N = cfg.vector_size, cfg.tile_tokens
    out = ExpectedJob([], [], [], [], [])
    base = [0] * cfg.chunks
    ends = iter(end_codes([1] * (cfg.tiles * cfg.chunks), cfg.chunks))       # one per tile-chunk
    for k in range(cfg.tiles):
        tokens = range(k * N, (k + 1) * N)
        for c in range(cfg.chunks):
            end = next(ends)
            index = job.unique_index[c, k * N:(k + 1) * N]
            for n, t in enumerate(tokens):
                code = end if n == N - 1 else 0
                out.vectors.append({"data": job.tokens[t, c * V:(c + 1) * V].tolist(), "end": end_fields(code)})
                out.map.append((int(index[n]), code))
            unique = len(set(index[index >= 0].tolist()))
            similar = int((job.best[c, k * N:(k + 1) * N] > 0).sum())
            zero = int((index < 0).sum())
            out.counters.append((unique, similar, zero, base[c], end))
            reps = job.chunk("representatives", c)[base[c]:base[c] + unique]
            out.representatives += [(rep.tolist(), end if i == unique - 1 else 0) for i, rep in enumerate(reps)]
            base[c] += unique
    out.unique = unique_per_tile_chunk(cfg, job)
    assert [u for u, *_ in out.counters] == out.unique
    # per tile-chunk counters add up to the golden model's per-chunk counters in the file, so the
    # hardware's counters, compared beat by beat with these, equal the golden model's
    n = len(out.counters)
    for key, position in (("unique", 0), ("similar", 1), ("zero", 2)):
        sums = [sum(out.counters[i][position] for i in range(c, n, cfg.chunks)) for c in range(cfg.chunks)]
        assert sums == list(job.counters[f"{key}_per_chunk"]), (key, sums, job.counters[f"{key}_per_chunk"])
    for c in range(cfg.chunks):
        assert base[c] == job.unique_offsets[c + 1] - job.unique_offsets[c]
    return out


class SicBench:
    def __init__(self, dut, idle=0.0, stall=0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.rng = make_rng()
        self.layouts = {"vectors": VectorBeat(self.cfg), "map": MapBeat(self.cfg),
                        "counters": TileCounters(self.cfg), "representatives": VectorBeat(self.cfg)}
        start_clock(dut)
        self.source = StreamSource(dut, "vectors", self.rng, idle=idle)
        self.sinks = {name: StreamSink(dut, name, self.rng, stall=stall)
                      for name in ("map", "counters", "representatives")}
        self.jobs = [expected_job(self.cfg, path) for path in self.params["exports"]]

    def send(self, job: ExpectedJob):
        self.source.send(pack(self.layouts["vectors"], v) for v in job.vectors)

    def clear(self):
        self.source.clear()
        for sink in self.sinks.values():
            sink.clear()

    def got(self):
        """Decoded output beats so far, per stream, in the shape of :class:`ExpectedJob`."""
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
        assert counters == want_counters, _first_difference("counters", counters, want_counters)
        assert maps == want_maps, _first_difference("map", maps, want_maps)
        assert reps == want_reps, _first_difference("representatives", reps, want_reps)

    async def expect_nothing_more(self, cycles=100):
        before = {name: len(sink.beats) for name, sink in self.sinks.items()}
        await ClockCycles(self.dut.clk, cycles)
        after = {name: len(sink.beats) for name, sink in self.sinks.items()}
        assert after == before, f"beats nobody asked for: {before} -> {after}"


def _first_difference(name, got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"{name}[{i}]: got {g}, expected {w} ({len(got)} beats, {len(want)} expected)"
    return f"{name}: got {len(got)} beats, expected {len(want)}"


@cocotb.test(timeout_time=400, timeout_unit="ms")
@cocotb.parametrize((("idle", "stall"), [(0.4, 0.5), (0.0, 0.8)]))
async def outputs_equal_golden_under_backpressure(dut, idle, stall):
    """Every export, sent as consecutive jobs without a reset in between (unique indices restart
    at each job), with random idle input cycles and random backpressure on all three outputs
    (0.8: the output queues fill and the comparator's credit stops the input). Without any idle
    or stall cycles the outputs are checked by handshake_cycles_equal_cycle_model."""
    tb = SicBench(dut, idle, stall)
    await reset_dut(dut)
    for job in tb.jobs:
        tb.send(job)
    await tb.collect(tb.jobs)
    tb.check(tb.jobs)
    await tb.expect_nothing_more()


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def reset_mid_tile_then_next_job_is_exact(dut):
    """Reset while the second tile-chunk is half resolved (representatives of the first pending,
    outputs backed up), then a whole job: only its beats come out, all exact."""
    tb = SicBench(dut, idle=0.2, stall=0.4)
    await reset_dut(dut)
    first, last = tb.jobs[0], tb.jobs[-1]
    tb.send(first)
    N = tb.cfg.tile_tokens
    stop = min(len(first.map) - 1, N + N // 2)
    while len(tb.sinks["map"].beats) < stop:
        await RisingEdge(dut.clk)
    await reset_dut(dut)
    tb.clear()
    tb.send(last)
    await tb.collect([last])
    tb.check([last])
    await tb.expect_nothing_more()


@cocotb.test(timeout_time=400, timeout_unit="ms")
async def handshake_cycles_equal_cycle_model(dut):
    """Input always valid, outputs always ready: every handshake on every stream happens in the
    cycle focus.sim.sic_cycles predicts (cycle 0 = the first input handshake)."""
    tb = SicBench(dut)
    await reset_dut(dut)
    ports = {"vectors": "inputs", "map": "map", "counters": "counters", "representatives": "representatives"}
    seen = {name: [] for name in ports}
    jobs = tb.jobs

    async def monitor():
        cycle = 0
        while True:
            await RisingEdge(dut.clk)
            for name in ports:
                if getattr(dut, f"{name}__valid").value and getattr(dut, f"{name}__ready").value:
                    seen[name].append(cycle)
            cycle += 1

    cocotb.start_soon(monitor())
    for job in jobs:
        tb.send(job)
    await tb.collect(jobs)
    tb.check(jobs)
    model = sic_cycles(tb.cfg, [u for job in jobs for u in job.unique])
    start = seen["vectors"][0]
    for name, field in ports.items():
        got = [c - start for c in seen[name]]
        want = getattr(model, field)
        assert got == want, _first_difference(f"{name} handshake cycle", got, want)
    last = max(seen["map"][-1], seen["counters"][-1], *seen["representatives"][-1:]) - start
    measured = {"vectors": len(seen["vectors"]), "cycles": last + 1,
                "cycles_per_vector": (last + 1) / len(seen["vectors"]),
                "input_interval": (seen["vectors"][-1] - start) / max(1, len(seen["vectors"]) - 1),
                "unique": sum(u for job in jobs for u in job.unique), "model_cycles": model.cycles}
    cocotb.log.info(f"measured {measured}")
    if "report" in tb.params:                         # benchmarks/sic.py reads the measurement here
        with open(tb.params["report"], "w") as f:
            json.dump(measured, f)
