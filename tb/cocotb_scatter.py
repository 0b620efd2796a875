"""cocotb tests of :class:`focus.hdl.scatter.ScatterAccumulator` on the generated Verilog, against
the golden model ``focus.sim.scatter`` and the cycle model ``focus.sim.scatter_cycles``.

Run from pytest by tests/test_scatter_rtl.py. Parameters (``tb_context``): ``tiles`` per job.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from focus.hdl.scatter import MemberBeat
from focus.hdl.streams import ResultBeat
from focus.sim.scatter import MAP_KINDS, random_job
from focus.sim.scatter_cycles import scatter_cycles
from focus.tb.runner import tb_context
from focus.tb.streams import StreamMonitor, StreamSink, StreamSource, make_rng, pack, reset_dut, start_clock, unpack


class ScatterBench:
    """Sources on ``partials`` and ``members``, a sink on ``results``, and monitors that record the
    edge of every input handshake (the sink records its own)."""

    def __init__(self, dut, idle=0.0, stall=0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.rng = make_rng()
        self.nprng = np.random.default_rng(self.rng.getrandbits(32))
        self.result_layout, self.member_layout = ResultBeat(self.cfg), MemberBeat(self.cfg)
        start_clock(dut)
        self.partials = StreamSource(dut, "partials", self.rng, idle=idle)
        self.members = StreamSource(dut, "members", self.rng, idle=idle)
        self.results = StreamSink(dut, "results", self.rng, stall=stall)
        self.taken = {"partials": StreamMonitor(dut, "partials"), "members": StreamMonitor(dut, "members")}

    def edges(self) -> dict[str, list[int]]:
        """Handshake edges of each stream since the last :meth:`clear`."""
        return {"partials": self.taken["partials"].cycles, "members": self.taken["members"].cycles,
                "results": self.results.cycles}

    def clear(self):
        for port in (self.partials, self.members, self.results, *self.taken.values()):
            port.clear()

    def job(self, kinds=MAP_KINDS, interleave=False):
        return random_job(self.cfg, self.nprng, self.params.get("tiles", 2), kinds, interleave_first_tile=interleave)

    def send(self, jobs):
        self.partials.send(pack(self.result_layout, b) for job in jobs for b in job.partials)
        self.members.send(pack(self.member_layout, b) for job in jobs for b in job.members)

    def received(self) -> list[dict]:
        out = []
        for bits in self.results.beats:
            beat = unpack(self.result_layout, bits)
            out.append({"data": [int(x) for x in beat.data],
                        "end": {"chunk": int(beat.end.chunk), "tile": int(beat.end.tile), "job": int(beat.end.job)}})
        return out

    async def run(self, jobs):
        """Send ``jobs``, wait for every result row, check them and that nothing more comes."""
        self.send(jobs)
        expected = [beat for job in jobs for beat in job.results]
        await self.results.wait_for(len(expected))
        await self.results.expect_nothing_more(4 * self.cfg.tile_tokens + 20)
        assert self.received() == expected, "results differ from focus.sim.scatter"
        d = self.dut
        assert d.busy_cycles.value.to_unsigned() == len(jobs[-1].members)
        assert d.row_adds.value.to_unsigned() == jobs[-1].row_adds


@cocotb.test(timeout_time=20, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.5], stall=[0.0, 0.6])
async def results_equal_golden_under_backpressure(dut, idle, stall):
    """Three jobs back to back (planted groups, zero tokens, empty, one-group and all-distinct
    tile-chunks, extreme partials; the last with its first tile's first two N-tiles interleaved,
    as the top sends them) against focus.sim.scatter, with random idle and backpressure."""
    tb = ScatterBench(dut, idle, stall)
    await reset_dut(dut)
    await tb.run([tb.job(), tb.job(MAP_KINDS[::-1]), tb.job(interleave=True)])


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def reset_mid_job_leaves_next_job_exact(dut):
    """Reset at random points of a job, with random idle and stall; the next job is exact and
    nothing of the old one leaks."""
    tb = ScatterBench(dut, idle=0.3, stall=0.4)
    await reset_dut(dut)
    for _ in range(3):
        old = tb.job()
        tb.send([old])
        await ClockCycles(dut.clk, tb.rng.randint(1, 2 * len(old.partials) + len(old.results)))
        await reset_dut(dut, cycles=tb.rng.randint(1, 3))
        tb.clear()
        await tb.run([tb.job()])
        tb.clear()


@cocotb.test(timeout_time=20, timeout_unit="ms")
async def handshake_cycles_equal_cycle_model(dut):
    """With sources that never idle and a sink that never stalls, every handshake of every stream
    falls on the edge focus.sim.scatter_cycles predicts."""
    tb = ScatterBench(dut)
    await reset_dut(dut)
    for kinds, interleave in ((MAP_KINDS, False), (("distinct",), False), (("empty",), False), (MAP_KINDS, True)):
        job = tb.job(kinds, interleave)
        await tb.run([job])
        model = scatter_cycles(tb.cfg, job.partial_rows, job.member_counts, job.block_ends, job.swaps)
        edges = tb.edges()
        origin = edges["partials"][0]
        measured = {name: [e - origin for e in cycles] for name, cycles in edges.items()}
        assert measured == {"partials": model.partials, "members": model.members, "results": model.results}
        tb.clear()
