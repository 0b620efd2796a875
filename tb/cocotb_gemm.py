"""cocotb tests of :class:`focus.hdl.gemm.GemmSequencer` (and the systolic array inside it) against
NumPy integer matmul and the cycle model :mod:`focus.sim.array_model`.

Run from pytest by tests/test_systolic_rtl.py. Parameters (``tb_context()``):

``shapes``        list of ``[M, K, N]`` jobs; each is run with random operands (extremes included),
                  and the set is followed by two extreme jobs (all-minimum operands: the largest
                  positive sums; minimum times maximum: the most negative) at ``K = cfg.hidden``.
``cycle_shapes``  list of ``[M, K, N]`` jobs whose cycle count is measured without backpressure and
                  must equal :func:`focus.sim.array_model.gemm_cycles`.

Cycles are counted on rising edges of ``clk``: from the edge that takes the command (the first
weight beat is taken on the same edge) to the edge that takes the job's last result, inclusive.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout

from focus.hdl.gemm import GemmCommand
from focus.sim.array_model import gemm_cycles
from focus.sim.gemm_streams import GemmStreams, gemm_streams, random_operands
from focus.tb.lanes import pack_lanes, unpack_lanes
from focus.tb.runner import tb_context
from focus.tb.streams import StreamMonitor, StreamSink, StreamSource, make_rng, pack, reset_dut, start_clock

PORTS_IN = ("command", "weights", "activations")


class GemmBench:
    """Drivers and monitors on the three input streams and a sink on ``results``."""

    def __init__(self, dut, idle: float = 0.0, stall: float = 0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.rng = make_rng()
        self.nprng = np.random.default_rng(self.rng.getrandbits(32))
        self.idle, self.stall = idle, stall
        start_clock(dut)
        self.sources = {port: StreamSource(dut, port, self.rng, idle=idle) for port in PORTS_IN}
        self.inputs = {port: StreamMonitor(dut, port) for port in PORTS_IN}
        self.sink = StreamSink(dut, "results", self.rng, stall=stall)

    @property
    def first_in(self) -> int | None:
        """Edge of the first input handshake since the last clear."""
        return min((m.cycles[0] for m in self.inputs.values() if m.cycles), default=None)

    @property
    def last_out(self) -> int | None:
        """Edge of the latest result handshake since the last clear."""
        return self.sink.cycles[-1] if self.sink.cycles else None

    async def restart(self):
        """Reset the design, let it settle, and forget the previous job's results and edges."""
        await reset_dut(self.dut)
        await ClockCycles(self.dut.clk, 3)
        self.sink.clear()
        for monitor in self.inputs.values():
            monitor.clear()

    def job(self, M: int, K: int, N: int, kind: str = "random") -> GemmStreams:
        A, W = random_operands(self.nprng, M, K, N, self.cfg.data_width, kind)
        return gemm_streams(A, W, self.cfg.rows, self.cfg.cols, self.cfg.acc_width,
                            pad=self.nprng, data_width=self.cfg.data_width)

    def send(self, job: GemmStreams | dict):
        """Queue a job (or a bare command dict for an empty job) on the input streams, all in the
        same time step so that the drivers start on the same edge."""
        cfg = self.cfg
        command = job if isinstance(job, dict) else job.command
        self.sources["command"].send([pack(GemmCommand(cfg), command)])
        if not isinstance(job, dict):
            self.sources["weights"].send(pack_lanes(job.weights, cfg.data_width))
            self.sources["activations"].send(pack_lanes(job.activations, cfg.data_width, job.activation_ends))

    def results(self) -> tuple[np.ndarray, list[int]]:
        """Result rows received so far and their framing codes."""
        cfg = self.cfg
        data_bits = cfg.cols * cfg.acc_width
        rows = unpack_lanes(self.sink.beats, cfg.cols, cfg.acc_width)
        return rows, [beat >> data_bits for beat in self.sink.beats]

    def cycle_budget(self, jobs) -> int:
        """A generous bound on the cycles ``jobs`` may take under this bench's idle/stall odds."""
        cfg = self.cfg
        model = sum(gemm_cycles(j.command["m"], j.command["n_tiles"] * cfg.cols,
                                j.command["k_chunks"] * cfg.rows, cfg.rows, cfg.cols)
                    for j in jobs if not isinstance(j, dict))
        slowdown = 1 / ((1 - self.idle) * (1 - self.stall))
        return int(4 * model * slowdown) + 500

    async def run(self, jobs) -> None:
        """Send ``jobs``, wait (bounded) for every result, check them exactly, then check that
        nothing more arrives."""
        expected = [j.results for j in jobs if not isinstance(j, dict)]
        ends = [end for j in jobs if not isinstance(j, dict) for end in j.result_ends]
        for j in jobs:
            self.send(j)
        budget = self.cycle_budget(jobs)
        await with_timeout(self.sink.wait_for(len(ends)), budget * 10, "ns")
        rows, got_ends = self.results()
        want = np.concatenate(expected)
        assert rows.shape == want.shape, f"got {rows.shape[0]} result rows, expected {want.shape[0]}"
        bad = np.argwhere(rows != want)
        assert bad.size == 0, (f"{len(bad)} wrong sums; first at row {bad[0][0]} column {bad[0][1]}: "
                               f"got {rows[tuple(bad[0])]}, expected {want[tuple(bad[0])]}")
        assert got_ends == ends, "framing flags (end.chunk/tile/job) misplaced on the results"
        await self.expect_nothing_more()

    async def expect_nothing_more(self, cycles: int = 100):
        await self.sink.expect_nothing_more(cycles)
        assert all(s.idle_now for s in self.sources.values()), "an input stream still has beats queued"


def standard_jobs(tb: GemmBench) -> list:
    """The parameter shapes, an empty job, and the two extreme jobs."""
    cfg = tb.cfg
    jobs = [tb.job(*shape) for shape in tb.params["shapes"]]
    jobs.insert(1, {"m": 0, "k_chunks": 1, "n_tiles": 1})          # empty job: no results
    jobs.append(tb.job(3, cfg.hidden, cfg.cols + 1, "max"))
    jobs.append(tb.job(2, cfg.hidden, cfg.cols - 1 or 1, "min"))
    return jobs


@cocotb.test(timeout_time=200, timeout_unit="ms")
@cocotb.parametrize(idle=[0.0, 0.5], stall=[0.0, 0.6])
async def products_match_numpy_under_backpressure(dut, idle, stall):
    tb = GemmBench(dut, idle, stall)
    await reset_dut(dut)
    await tb.run(standard_jobs(tb))


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def reset_mid_job_leaves_next_job_exact(dut):
    tb = GemmBench(dut, idle=0.2, stall=0.4)
    await reset_dut(dut)
    cfg = tb.cfg
    big = tb.job(cfg.tile_tokens, 2 * cfg.rows + 1, 2 * cfg.cols + 1)
    tb.send(big)
    # Reset once results are coming out and activations of later passes are still queued.
    while len(tb.sink.beats) < 3 or not tb.sources["activations"].queue:
        await RisingEdge(dut.clk)
    assert tb.sources["activations"].queue, "the job finished before the reset; make it bigger"
    await reset_dut(dut)
    for source in tb.sources.values():
        source.clear()
    tb.sink.clear()
    await ClockCycles(dut.clk, 5)
    assert not tb.sink.beats, "results of the abandoned job came out after the reset"
    await tb.run(standard_jobs(tb)[:3] + [tb.job(cfg.rows + cfg.cols, cfg.hidden, 2 * cfg.cols)])


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def cycles_equal_model_without_backpressure(dut):
    tb = GemmBench(dut)
    cfg = tb.cfg
    report = []
    for M, K, N in tb.params["cycle_shapes"]:
        await tb.restart()
        job = tb.job(M, K, N)
        await tb.run([job])
        measured = tb.last_out - tb.first_in + 1
        model = gemm_cycles(M, N, K, cfg.rows, cfg.cols)
        report.append((M, K, N, measured, model))
        dut._log.info(f"M={M} K={K} N={N}: measured {measured} cycles, model {model}")
        assert measured == model, f"M={M} K={K} N={N}: measured {measured} cycles, model says {model}"
