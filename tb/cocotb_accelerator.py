"""cocotb tests of the accelerator top (:class:`focus.hdl.accelerator.FocusAccelerator`) on jobs
exported by the golden model (``focus-sim export`` files, docs/export-format.md).

Run from pytest by tests/test_accelerator_rtl.py and, for one job, by ``focus-run``
(:mod:`focus.tb.run`). Every expected value comes from :func:`focus.sim.accelerator.accelerator_streams`:
result rows with their framing, the SEC keep mask, and the counters ``unique``, ``similar``, ``zero``.

Parameters (``tb_context()``):

``exports``  list of ``{"path": FILE.npz, "modes": ["focus", "dense", ...]}``: every (file, mode)
             pair is one job; the tests send them back to back, in this order (export-major) or
             mode-major with the exports reversed, so ``k`` (0 for a file without SEC pruning) and
             the mode change from job to job.
``run``      for :func:`run_one_job` only: ``{"path": FILE.npz, "mode": "focus"|"dense",
             "out": FILE.npz}``.

Every job must end with a done beat of status OK whose counters satisfy
``array_busy + wait_sic + wait_scatter + wait_input + drain + sec_cycles == cycles`` (the top counts
the SEC phase in ``cycles`` and ``sec_cycles`` only, so for a job without SEC this is the sum
without ``sec_cycles``), ``sec_cycles > 0`` exactly when SEC ran, and nothing more may come out.
Each wait is bounded by :func:`cycle_budget`, and every test by ``timeout_time``: a hang fails.

The tests drive the inputs with :class:`~focus.tb.streams.StreamSource` and take the outputs with
:class:`~focus.tb.streams.StreamSink` (which also checks the handshake rules); :func:`run_one_job`,
focus-run's entry, drives one job at full rate from a single coroutine (:func:`run_full_rate`),
which leaves the simulation's time to the model.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, gather, with_timeout
from cocotb.utils import get_sim_time

from focus.files import atomic_open
from focus.hdl.accelerator import COUNTER_NAMES, JobCommand, JobDone, JobStatus
from focus.sim import export
from focus.sim.accelerator import AcceleratorStreams, accelerator_streams
from focus.sim.job import run_job
from focus.tb.lanes import pack_lanes, unpack_lanes
from focus.tb.runner import tb_context
from focus.tb.streams import (StreamSink, StreamSource, first_difference, make_rng, pack, port_signals, reset_dut, start_clock,
                              unpack)

__all__ = ["AcceleratorBench", "cycle_budget", "run_full_rate", "input_beats", "decode_results", "decode_masks",
           "decode_dones", "RUN_TEST"]

INPUTS = ("command", "scores", "tokens", "weights")
OUTPUTS = ("results", "mask", "done")

#: The cocotb test focus-run runs (``testcase=``).
RUN_TEST = "run_one_job"

CLOCK_NS = 10


def cycle_budget(cfg, s: AcceleratorStreams, idle: float = 0.0, stall: float = 0.0) -> int:
    """A generous bound on the cycles job ``s`` may take: four times a dense, nothing-overlapped
    count of its work (every pass at full tile length plus the array's fill, every token at SIC's
    interval, every result, SEC's passes), slowed down by the idle and stall odds."""
    P, C, TT = s.command["n_tiles"], cfg.chunks, cfg.tile_tokens
    work = (cfg.tiles * P * C * (TT + cfg.rows + cfg.cols + 8) + len(s.tokens) * max(1, cfg.sic_interval)
            + len(s.results) + len(s.weights) + len(s.scores) + (cfg.sec_passes + 2) * (cfg.sec_words + 20))
    return int(4 * work / ((1 - idle) * (1 - stall))) + 2000


@dataclass
class Done:
    """A received done beat."""
    status: JobStatus
    counters: dict


def decode_results(cfg, beats: list[int]) -> tuple[np.ndarray, list[int]]:
    """Result rows (beats x cols, int64) and their framing codes."""
    rows = unpack_lanes(beats, cfg.cols, cfg.acc_width) if beats else np.zeros((0, cfg.cols), np.int64)
    return rows, [beat >> (cfg.cols * cfg.acc_width) for beat in beats]


def decode_masks(cfg, beats: list[int]) -> tuple[np.ndarray, list[int]]:
    """Mask words (words x cols, 0/1 per token) and their ``last`` bits."""
    cols = cfg.cols
    bits = np.array([[beat >> i & 1 for i in range(cols)] for beat in beats], dtype=np.int64).reshape(-1, cols)
    return bits, [beat >> cols & 1 for beat in beats]


def decode_dones(beats: list[int]) -> list[Done]:
    out = []
    for beat in beats:
        value = unpack(JobDone, beat)
        out.append(Done(value.status, {name: int(getattr(value.counters, name)) for name in COUNTER_NAMES}))
    return out


def input_beats(cfg, s: AcceleratorStreams) -> dict[str, list[int]]:
    """The payload integers of job ``s`` on every input stream."""
    return {"command": [pack(JobCommand(cfg), s.command)],
            "scores": pack_lanes(s.scores, cfg.score_width, s.score_last) if len(s.scores) else [],
            "tokens": pack_lanes(s.tokens, cfg.data_width, s.token_ends),
            "weights": pack_lanes(s.weights, cfg.data_width)}


async def run_full_rate(dut, inputs: dict[str, list[int]], budget_cycles: int) -> dict[str, list[int]]:
    """Drive one job with every input offering its next beat in every cycle and every output always
    ready, from one coroutine (a few times faster than a driver and a sink per stream); returns the
    beats of every output up to and including the first done beat. Call it out of reset, with the
    clock running and nothing else driving the ports. Fails after ``budget_cycles`` without a done beat."""
    sources = {port: (port_signals(dut, port), beats) for port, beats in inputs.items()}
    sinks = [(port, *port_signals(dut, port)) for port in OUTPUTS]
    got = {port: [] for port in OUTPUTS}
    position = dict.fromkeys(inputs, 0)
    active = []
    for port, ((valid, _, payload), beats) in sources.items():
        if beats:
            payload.value, valid.value = beats[0], 1
            active.append(port)
        else:
            valid.value = 0
    for _, _, ready, _ in sinks:
        ready.value = 1
    edge = RisingEdge(dut.clk)
    for _ in range(budget_cycles):
        await edge
        for port in list(active):
            (valid, ready, payload), beats = sources[port]
            if ready.value:                          # our valid was high: the beat moved at this edge
                position[port] += 1
                if position[port] < len(beats):
                    payload.value = beats[position[port]]
                else:
                    valid.value = 0
                    active.remove(port)
        for port, valid, _, payload in sinks:
            if valid.value:
                got[port].append(int(payload.value))
        if got["done"]:
            return got
    raise AssertionError(f"hang: no done beat after {budget_cycles} cycles; results so far {len(got['results'])}, "
                         f"inputs taken {position}")


class AcceleratorBench:
    """Sources on command/scores/tokens/weights (idle with probability ``idle``), sinks on
    results/mask/done (ready withheld with probability ``stall``)."""

    def __init__(self, dut, idle: float = 0.0, stall: float = 0.0):
        self.dut = dut
        self.cfg, self.params = tb_context()
        self.idle, self.stall = idle, stall
        self.rng = make_rng()
        self.command_layout = JobCommand(self.cfg)
        start_clock(dut, CLOCK_NS)
        self.sources = {port: StreamSource(dut, port, self.rng, idle=idle) for port in INPUTS}
        self.sinks = {port: StreamSink(dut, port, self.rng, stall=stall) for port in OUTPUTS}
        self._jobs: dict = {}

    # ------------------------------------------------------------------ jobs
    def job(self, path: str):
        if path not in self._jobs:
            self._jobs[path] = export.read(path)
        return self._jobs[path]

    def streams(self, path: str, mode: str) -> AcceleratorStreams:
        return accelerator_streams(self.cfg, self.job(path), mode)

    def export_jobs(self) -> list[AcceleratorStreams]:
        """Every (export, mode) pair of the ``exports`` parameter, export-major."""
        return [self.streams(e["path"], mode) for e in self.params["exports"] for mode in e["modes"]]

    def zero_job(self, mode: str = "focus") -> AcceleratorStreams:
        """A job whose every token is zero (the first export's weights), through the golden model."""
        weights = self.job(self.params["exports"][0]["path"]).weights
        tokens = np.zeros((self.cfg.tokens, self.cfg.hidden), np.int64)
        return accelerator_streams(self.cfg, run_job(self.cfg, tokens, weights), mode)

    # ------------------------------------------------------------------ driving
    def send_command(self, command: dict):
        self.sources["command"].send([pack(self.command_layout, command)])

    def send(self, s: AcceleratorStreams):
        """Queue job ``s`` on every input stream (in one time step, so the drivers start together)."""
        for port, beats in input_beats(self.cfg, s).items():
            self.sources[port].send(beats)

    def clear(self):
        """Forget queued input beats and received output beats (after a reset)."""
        for source in self.sources.values():
            source.clear()
        for sink in self.sinks.values():
            sink.clear()

    # ------------------------------------------------------------------ receiving
    def results(self) -> tuple[np.ndarray, list[int]]:
        """Result rows received so far (beats x cols, int64) and their framing codes."""
        return decode_results(self.cfg, self.sinks["results"].beats)

    def masks(self) -> tuple[np.ndarray, list[int]]:
        """Mask words received so far (words x cols, 0/1 per token) and their ``last`` bits."""
        return decode_masks(self.cfg, self.sinks["mask"].beats)

    def dones(self) -> list[Done]:
        return decode_dones(self.sinks["done"].beats)

    async def wait_done(self, count: int, budget_cycles: int):
        """Wait for ``count`` done beats in total, at most ``budget_cycles`` cycles."""
        try:
            await with_timeout(self.sinks["done"].wait_for(count), budget_cycles * CLOCK_NS, "ns")
        except SimTimeoutError:
            got = len(self.sinks["done"].beats)
            raise AssertionError(f"hang: {got} of {count} done beats after {budget_cycles} cycles "
                                 f"(at {get_sim_time('ns')} ns); results so far {len(self.sinks['results'].beats)}, "
                                 f"mask {len(self.sinks['mask'].beats)}") from None

    # ------------------------------------------------------------------ checking
    def check(self, jobs: list[AcceleratorStreams], statuses: list[JobStatus] | None = None):
        """Results, framing, mask and done beats of ``jobs`` (sent back to back) exactly as expected.
        ``statuses``: every done beat's status, refused commands (which send no streams and are not
        in ``jobs``) included; the ``OK`` ones belong to ``jobs`` in order, and their counters are
        checked. A refused command's done beat has every counter 0."""
        rows, ends = self.results()
        want = np.concatenate([s.results for s in jobs]) if jobs else np.zeros((0, self.cfg.cols), np.int64)
        want_ends = [e for s in jobs for e in s.result_ends]
        assert rows.shape == want.shape, f"got {rows.shape[0]} result rows, expected {want.shape[0]}"
        bad = np.argwhere(rows != want)
        if bad.size:
            beat, col = bad[0]
            job, first = _job_of(jobs, "results", beat)
            raise AssertionError(f"{len(bad)} wrong sums; first in result beat {beat} (job {job}, its beat "
                                 f"{beat - first}) column {col}: got {rows[beat, col]}, expected {want[beat, col]}")
        assert ends == want_ends, first_difference("result framing", ends, want_ends)

        bits, last = self.masks()
        want_bits = np.concatenate([s.mask for s in jobs]).reshape(-1, self.cfg.cols)
        want_last = [int(i == len(s.mask) - 1) for s in jobs for i in range(len(s.mask))]
        assert bits.shape == want_bits.shape, f"got {len(bits)} mask words, expected {len(want_bits)}"
        assert (bits == want_bits).all(), f"SEC keep mask differs in word {np.argwhere(bits != want_bits)[0][0]}"
        assert last == want_last, first_difference("mask last", last, want_last)

        dones = self.dones()
        statuses = statuses or [JobStatus.OK] * len(jobs)
        assert [d.status for d in dones] == statuses, f"done statuses {[d.status for d in dones]}, expected {statuses}"
        assert statuses.count(JobStatus.OK) == len(jobs), "every job that runs ends OK"
        for d, status in zip(dones, statuses):
            if status != JobStatus.OK:
                assert not any(d.counters.values()), f"a {status.name} done beat with counters {d.counters}"
        for i, (d, s) in enumerate(zip([d for d, st in zip(dones, statuses) if st == JobStatus.OK], jobs)):
            c = d.counters
            for key, value in s.counters.items():
                assert c[key] == value, f"job {i}: counter {key} = {c[key]}, golden model {value}"
            parts = c["array_busy"] + c["wait_sic"] + c["wait_scatter"] + c["wait_input"] + c["drain"]
            assert parts + c["sec_cycles"] == c["cycles"], \
                f"job {i}: array_busy + wait_* + drain ({parts}) + sec_cycles ({c['sec_cycles']}) != cycles ({c['cycles']})"
            assert (c["sec_cycles"] > 0) == (s.command["k"] > 0), f"job {i}: sec_cycles {c['sec_cycles']}, k {s.command['k']}"
            assert c["array_busy"] > 0, f"job {i}: the array took no activations"

    async def expect_nothing_more(self, cycles: int = 100):
        await gather(*(sink.expect_nothing_more(cycles) for sink in self.sinks.values()))
        busy = [port for port, source in self.sources.items() if not source.idle_now]
        assert not busy, f"input beats the design never took: {', '.join(busy)}"

    async def run(self, jobs: list[AcceleratorStreams]):
        """Send ``jobs`` back to back, wait (bounded) for their done beats, check everything, then
        check that nothing more comes."""
        for s in jobs:
            self.send(s)
        await self.wait_done(len(jobs), sum(cycle_budget(self.cfg, s, self.idle, self.stall) for s in jobs))
        await ClockCycles(self.dut.clk, 2)
        self.check(jobs)
        await self.expect_nothing_more()
        self.log(jobs)

    def log(self, jobs):
        for s, d in zip(jobs, self.dones()):
            c = d.counters
            cocotb.log.info(f"k={s.command['k']} n_tiles={s.command['n_tiles']} mode={s.command['mode']}: "
                            + ", ".join(f"{name} {c[name]}" for name in COUNTER_NAMES))


def _job_of(jobs, field, index):
    first = 0
    for i, s in enumerate(jobs):
        n = len(getattr(s, field))
        if index < first + n:
            return i, first
        first += n
    return len(jobs), first


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def exports_back_to_back_exact(dut):
    """Every (export, mode) job back to back, every input offered and every output taken in every
    cycle: results bit-exact with their framing, SEC mask, counters."""
    tb = AcceleratorBench(dut)
    await reset_dut(dut)
    await tb.run(tb.export_jobs())


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def exports_under_random_backpressure(dut):
    """The same jobs with random idle cycles on every input (0.3) and random stalls on every output
    (0.5)."""
    tb = AcceleratorBench(dut, 0.3, 0.5)
    await reset_dut(dut)
    await tb.run(tb.export_jobs())


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def k_and_mode_change_between_jobs(dut):
    """The jobs mode-major with the exports reversed (each consecutive pair changes the mode or
    ``k``), then a zero job in each mode, under random idle and stall cycles."""
    tb = AcceleratorBench(dut, 0.2, 0.3)
    await reset_dut(dut)
    exports = tb.params["exports"][::-1]
    modes = sorted({m for e in exports for m in e["modes"]}, key=["dense", "focus"].index)
    jobs = [tb.streams(e["path"], m) for m in modes for e in exports if m in e["modes"]]
    await tb.run(jobs + [tb.zero_job("focus"), tb.zero_job("dense")])


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def all_zero_job_gives_zero_outputs(dut):
    """A job whose every vector is zero: every output zero, every vector counted as zero."""
    tb = AcceleratorBench(dut, 0.2, 0.2)
    await reset_dut(dut)
    job = tb.zero_job("focus")
    await tb.run([job])
    rows, _ = tb.results()
    assert not rows.any(), "a zero job produced a non-zero output"
    cfg = tb.cfg
    assert tb.dones()[0].counters["zero"] == cfg.tokens * cfg.chunks
    assert tb.dones()[0].counters["unique"] == 0


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def bad_commands_end_with_bad_k_or_bad_n_tiles_and_next_job_runs(dut):
    """Commands with k = tokens + 1, and with n_tiles = 0 (and nothing else), end at once with BAD_K
    and BAD_N_TILES; the next job is exact."""
    tb = AcceleratorBench(dut, 0.2, 0.3)
    await reset_dut(dut)
    good = tb.export_jobs()[0]
    tb.send_command(dict(good.command, k=tb.cfg.tokens + 1))
    tb.send_command(dict(good.command, k=0, n_tiles=0))
    tb.send(good)
    await tb.wait_done(3, cycle_budget(tb.cfg, good, tb.idle, tb.stall) + 300)
    await ClockCycles(dut.clk, 2)
    tb.check([good], [JobStatus.BAD_K, JobStatus.BAD_N_TILES, JobStatus.OK])
    await tb.expect_nothing_more()


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def reset_mid_job_then_next_job_exact(dut):
    """Reset once results of the first job are coming out while its later tokens or weights are still
    queued, clear every queue, check nothing leaks, then run every export job: all exact."""
    tb = AcceleratorBench(dut, 0.2, 0.4)
    await reset_dut(dut)
    jobs = tb.export_jobs()
    first = jobs[-1]
    tb.send(first)
    stop = min(len(first.results) - 1, 3)
    await with_timeout(_wait_beats(tb, "results", stop), cycle_budget(tb.cfg, first, tb.idle, tb.stall) * CLOCK_NS, "ns")
    assert tb.sources["weights"].queue or tb.sources["tokens"].queue, "the job finished its inputs before the reset"
    await reset_dut(dut)
    tb.clear()
    await ClockCycles(dut.clk, 5)
    assert not any(sink.beats for sink in tb.sinks.values()), "a beat of the abandoned job came out after the reset"
    await tb.run(jobs)


async def _wait_beats(tb, port, count):
    while len(tb.sinks[port].beats) < count:
        await RisingEdge(tb.dut.clk)


def _run_params() -> dict | None:
    """The ``run`` parameter, read without tb_context (this module is also imported outside a simulator)."""
    try:
        return json.loads(os.environ.get("FOCUS_TB_PARAMS", "{}")).get("run")
    except (ValueError, AttributeError):
        return None


@cocotb.skipif(_run_params() is None, reason="focus-run's entry: needs the 'run' parameter")
@cocotb.test(timeout_time=60_000, timeout_unit="ms")
async def run_one_job(dut):
    """One job at full rate (:func:`run_full_rate`: no idle or stall cycles); writes what came out
    to ``run["out"]`` (an ``.npz``: ``results`` beats x cols and ``result_ends``, ``mask`` words x
    cols of 0/1, ``status`` (name), ``counters`` (JSON), ``sim_time_ns``, ``wall_s``: seconds this
    test took, ``cpu_s``: CPU seconds of the simulator process so far). Checks nothing but that the job ended: focus-run compares."""
    started = time.perf_counter()
    cfg, params = tb_context()
    run = params["run"]
    s = accelerator_streams(cfg, export.read(run["path"]), run["mode"])
    inputs = input_beats(cfg, s)
    start_clock(dut, CLOCK_NS)
    for port in INPUTS:
        port_signals(dut, port)[0].value = 0
    await reset_dut(dut)
    got = await run_full_rate(dut, inputs, cycle_budget(cfg, s))
    rows, ends = decode_results(cfg, got["results"])
    bits, _ = decode_masks(cfg, got["mask"])
    (done,) = decode_dones(got["done"])
    with atomic_open(run["out"], "wb") as fh:
        np.savez(fh, results=rows, result_ends=np.asarray(ends, np.int64), mask=bits,
                 status=np.array(done.status.name), counters=np.array(json.dumps(done.counters)),
                 sim_time_ns=np.array(int(get_sim_time("ns"))), wall_s=np.array(time.perf_counter() - started), cpu_s=np.array(time.process_time()))
    cocotb.log.info(", ".join(f"{name} {done.counters[name]}" for name in COUNTER_NAMES))
