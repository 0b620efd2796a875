"""cocotb tests of :class:`focus.hdl.sec.SemanticConcentrator` against the golden model ``focus.sim.sec``.

Run from pytest by tests/test_sec_rtl.py. Parameters (``tb_context``): ``heads``/``text`` bound the
random job shapes, ``randoms`` is the number of uniformly random jobs added to the corner cases. :class:`SecBench` is reused by tb/cocotb_sec_workload.py.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, gather

from focus.hdl.sec import SecDone, SecJob, SecMask, SecScore
from focus.sim.sec_cycles import job_cycles, selection_cycles
from focus.tb.runner import tb_context
from focus.tb.sec_jobs import BAD_LENGTH, OK, expect, mask_words, mixed_cases, score_beats
from focus.tb.streams import StreamMonitor, StreamSink, StreamSource, make_rng, pack, reset_dut, start_clock, unpack


class SecBench:
    """Drivers on ``jobs`` and ``scores``, a monitor on ``jobs`` (the descriptor handshake edges),
    sinks on ``mask`` and ``status``."""

    def __init__(self, dut, idle=0.0, stall=0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.rng = make_rng()
        self.job_layout, self.score_layout = SecJob(self.cfg), SecScore(self.cfg)
        self.mask_layout = SecMask(self.cfg)
        start_clock(dut)
        self.jobs = StreamSource(dut, "jobs", self.rng, idle=idle)
        self.scores = StreamSource(dut, "scores", self.rng, idle=idle)
        self.mask = StreamSink(dut, "mask", self.rng, stall=stall)
        self.status = StreamSink(dut, "status", self.rng, stall=stall)
        self.job_monitor = StreamMonitor(dut, "jobs")

    @property
    def job_edges(self) -> list[int]:
        """Edge of each descriptor handshake."""
        return self.job_monitor.cycles

    @property
    def status_marks(self) -> list[tuple[int, int]]:
        """(edge, mask beats up to that edge) of each status handshake."""
        return [(edge, sum(1 for m in self.mask.cycles if m <= edge)) for edge in self.status.cycles]

    def clear(self):
        for port in (self.jobs, self.scores, self.mask, self.status, self.job_monitor):
            port.clear()

    def send(self, cases):
        self.jobs.send(pack(self.job_layout, {"k": c.k}) for c in cases)
        self.scores.send(pack(self.score_layout, {"scores": lanes, "last": last})
                         for c in cases for lanes, last in score_beats(self.cfg, c))

    async def run(self, cases):
        """Send ``cases``, wait for every status beat, check each job against its expectation."""
        self.send(cases)
        await self.status.wait_for(len(cases))
        await self.expect_nothing_more()
        self.check(cases)

    def check(self, cases):
        N = self.cfg.sec_words
        statuses = [unpack(SecDone, b).status.value for b in self.status.beats]
        assert len(statuses) == len(cases), f"{len(statuses)} status beats for {len(cases)} jobs"
        masks = [unpack(self.mask_layout, b) for b in self.mask.beats]
        start = 0
        for case, status, (_, seen) in zip(cases, statuses, self.status_marks):
            assert status == case.status, f"{case.name}: status {status}, expected {case.status}"
            beats = masks[start:seen]
            start = seen
            if case.status == OK:
                assert [int(b.last) for b in beats] == [0] * (N - 1) + [1], f"{case.name}: last misplaced"
                assert [int(b.keep) for b in beats] == mask_words(self.cfg, case.keep), \
                    f"{case.name}: mask differs from focus.sim.sec.top_k"
            else:
                assert beats == [], f"{case.name}: invalid job emitted {len(beats)} mask beats"
        assert start == len(masks), "mask beats after the last status beat"

    async def expect_nothing_more(self, cycles=None):
        cycles = cycles or 3 * self.cfg.tokens + 50
        await gather(self.mask.expect_nothing_more(cycles), self.status.expect_nothing_more(cycles))

    def cases(self, randoms=None):
        randoms = self.params.get("randoms", 4) if randoms is None else randoms
        return mixed_cases(self.cfg, self.rng, randoms, max_heads=self.params.get("heads", 2),
                           max_text=self.params.get("text", 3))


@cocotb.test(timeout_time=40, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.5], stall=[0.0, 0.5])
async def masks_equal_golden_top_k_under_backpressure(dut, idle, stall):
    """Random scores, many ties, all equal, k = 1, k = all, one-digit differences, invalid k and a
    ragged job, back to back, against focus.sim.sec."""
    tb = SecBench(dut, idle, stall)
    await reset_dut(dut)
    await tb.run(tb.cases())


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def reset_mid_job_leaves_next_job_exact(dut):
    """Reset at random points of a job (accumulating, selecting, holding mask or status beats), with
    random idle and stall; then the next jobs are exact and nothing of the old job leaks."""
    tb = SecBench(dut, idle=0.3, stall=0.4)
    await reset_dut(dut)
    cfg = tb.cfg
    for trial in range(4):
        old = tb.cases(randoms=1)[:2]
        tb.send(old)
        span = sum(job_cycles(cfg, c.rows) for c in old)
        await ClockCycles(dut.clk, tb.rng.randint(1, span))
        await reset_dut(dut, cycles=tb.rng.randint(1, 3))
        tb.clear()
        await tb.run(tb.cases(randoms=1)[:3])
        tb.clear()


@cocotb.test(timeout_time=40, timeout_unit="ms")
async def cycles_equal_the_model(dut):
    """With a source that never idles and sinks that never stall, each job takes exactly
    focus.sim.sec_cycles.job_cycles edges from descriptor to status, whatever k and the scores;
    an invalid job answers one edge after its last score."""
    tb = SecBench(dut)
    await reset_dut(dut)
    cases = tb.cases(randoms=2)
    await tb.run(cases)
    for case, start, (end, _) in zip(cases, tb.job_edges, tb.status_marks):
        if case.status == BAD_LENGTH:
            want = len(case.beats) + selection_cycles(tb.cfg, valid=False)
        else:
            want = job_cycles(tb.cfg, case.rows, valid=case.status == OK)
        assert end - start == want, f"{case.name}: {end - start} cycles, the model says {want}"
