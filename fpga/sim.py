"""The board top in simulation: its Verilog on Verilator (cocotb), the UART pins driven and read by
cocotbext-uart, and the *same* host library (:class:`focus.fpga.host.FocusLink`) on the other end.

How the host code reaches the simulated line: the cocotb test starts the host code in a thread
with ``cocotb.task.bridge``; the host's transport (:class:`SimTransport`) turns each ``write`` and
``read`` into a coroutine run in the simulator's context with ``cocotb.task.resume``, so the
simulation advances only while the host waits on the line (and the host code runs unchanged:
``write`` queues bytes on the ``uart_rx`` pin and returns when they are on the wire, ``read``
returns what ``uart_tx`` sent, or nothing after a short stretch of simulated time). The
transport's ``clock()`` is the simulation time, so host timeouts and the link time are in
simulated seconds at :data:`SIM_CLK_FREQ`.

Bit time: ``SIM_DIVISOR`` = 8 clock cycles (100 MHz clock, 12.5 Mbaud) keeps simulations short;
the gateware is the same as on a board, only ``clk_freq``, ``baud`` and ``frame_timeout`` differ.

From pytest or a script, :func:`run_board` builds and runs one of the cocotb tests below through
:func:`focus.tb.runner.run_cocotb` (top ``board``); ``focus fpga run --sim`` uses
:func:`simulate_job`.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import numpy as np

from ..config import FocusConfig
from ..files import atomic_open, build_root

__all__ = ["read_link_result", "SIM_CLK_FREQ", "SIM_DIVISOR", "SIM_BAUD", "SIM_FRAME_TIMEOUT", "SIM_HOST_TIMEOUT", "SimTransport",
           "run_board", "simulate_job", "board_params"]

SIM_CLK_PERIOD_NS = 10
SIM_CLK_FREQ = 1_000_000_000 // SIM_CLK_PERIOD_NS
SIM_DIVISOR = 8
SIM_BAUD = SIM_CLK_FREQ // SIM_DIVISOR
#: 64 byte times: a frame whose bytes come back to back never trips it.
SIM_FRAME_TIMEOUT = 64 * 10 * SIM_DIVISOR
#: Host timeout in simulated seconds (500 000 cycles, far above any quiet stretch of a small job).
SIM_HOST_TIMEOUT = 5e-3


def board_params() -> dict:
    """The BoardTop parameters of the simulation (``top_params`` for run_cocotb)."""
    return {"clk_freq": SIM_CLK_FREQ, "baud": SIM_BAUD, "frame_timeout": SIM_FRAME_TIMEOUT}


class SimTransport:
    """A byte transport on the simulated UART pins, for host code running in a ``bridge`` thread."""

    def __init__(self, dut, baud: int = SIM_BAUD, poll_bytes: int = 16):
        from cocotbext.uart import UartSink, UartSource
        self.source = UartSource(dut.uart_rx, baud=baud)
        self.sink = UartSink(dut.uart_tx, baud=baud)
        for log in (self.source.log, self.sink.log):
            log.setLevel(logging.WARNING)            # not a line per byte
        self.poll_ns = int(poll_bytes * 10 * 1e9 / baud)

    # coroutines, run in the simulator
    async def _write(self, data: bytes):
        await self.source.write(data)
        await self.source.wait()

    async def _read(self, n: int) -> bytes:
        if self.sink.empty():
            await self.sink.wait(timeout=self.poll_ns, timeout_unit="ns")
        return bytes(self.sink.read_nowait(min(n, self.sink.count())))

    # the transport interface, called from the host thread
    def write(self, data: bytes) -> None:
        from cocotb.task import resume
        resume(self._write)(bytes(data))

    def read(self, n: int) -> bytes:
        from cocotb.task import resume
        return resume(self._read)(n)

    def clock(self) -> float:
        from cocotb.utils import get_sim_time
        return get_sim_time("sec")


# ---------------------------------------------------------------------------------------- cocotb

async def _start(dut):
    """Clock, reset, and a transport on the pins."""
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles
    dut.uart_rx.value = 1
    Clock(dut.clk, SIM_CLK_PERIOD_NS, unit="ns", impl="gpi").start()     # the clock in C: a few times faster
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 3)
    return SimTransport(dut)


def _save_run(path: str, run, identity) -> None:
    arrays = {"outputs": run.outputs, "result_ends": np.asarray(run.result_ends, np.int64), "mask": run.mask,
              "status": np.array(run.status), "counters": np.array(json.dumps(run.counters, sort_keys=True)),
              "link": np.array(json.dumps({"link_time": run.link_time, "bytes_sent": run.bytes_sent,
                                           "bytes_received": run.bytes_received, "frames": run.frames,
                                           "clk_freq": identity.clk_freq, "baud": identity.baud}))}
    if run.kept is not None:
        arrays["kept"] = run.kept
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _cocotb_tests():
    """The cocotb tests (defined only inside a simulator run, where cocotb is initialised)."""
    import cocotb
    from cocotb.task import bridge

    from ..sim.export import read as read_job
    from ..tb.runner import tb_context
    from .host import DeviceError, FocusLink
    from .protocol import Command, ErrorCode, Reply, beat_sizes, encode_frame, job_payload

    @cocotb.test()
    async def run_jobs(dut):
        """params: jobs = [[job.npz, mode, out.npz], ...]: run them back to back, save what came back."""
        cfg, params = tb_context()
        transport = await _start(dut)

        def host():
            link = FocusLink(transport, timeout=SIM_HOST_TIMEOUT)
            identity = link.identify()
            assert identity.digest == cfg.digest(), identity
            for job_path, mode, out in params["jobs"]:
                job = read_job(job_path)
                run = link.run_job(job.cfg, job, mode)
                _save_run(out, run, identity)

        await bridge(host)()

    @cocotb.test()
    async def link_fuzz(dut):
        """Broken frames and garbage get error answers, nothing hangs, and the job after them is
        exact. params: job, mode, seed, rounds; the answers seen go to params["out"] (JSON)."""
        cfg, params = tb_context()
        transport = await _start(dut)
        rng = random.Random(params.get("seed", 1))
        log = []

        def host():
            link = FocusLink(transport, timeout=SIM_HOST_TIMEOUT)
            identity = link.identify()
            job = read_job(params["job"])
            quiet = 2 * identity.frame_timeout_s

            def answers(what):
                """Every frame until the line is quiet for longer than the frame timeout."""
                seen = []
                last = transport.clock()
                while transport.clock() - last <= quiet:
                    data = transport.read(4096)
                    if data:
                        seen += link.decoder.feed(data)
                        last = transport.clock()
                entry = {"case": what, "answers": [(f.name, f.payload.hex()) for f in seen]}
                log.append(entry)
                return seen

            def errors(seen):
                return [f.payload[0] for f in seen if f.command == Reply.ERROR]

            for round_ in range(params.get("rounds", 1)):
                # corrupt CRC
                frame = bytearray(encode_frame(Command.IDENTIFY))
                frame[-1] ^= 1 << rng.randrange(8)
                transport.write(bytes(frame))
                assert errors(answers(f"{round_}: corrupt CRC")) == [ErrorCode.BAD_CRC]
                # a flipped payload byte
                frame = bytearray(encode_frame(Command.WEIGHTS, bytes(rng.randrange(256) for _ in range(16))))
                frame[4 + rng.randrange(16)] ^= 0x10
                transport.write(bytes(frame))
                assert errors(answers(f"{round_}: corrupt payload")) == [ErrorCode.BAD_CRC]
                # truncated frame: header and part of the payload, then silence
                frame = encode_frame(Command.SCORES, bytes(40))
                transport.write(frame[:rng.randrange(2, len(frame) - 1)])
                assert errors(answers(f"{round_}: truncated")) == [ErrorCode.TIMEOUT]
                # wrong lengths: over the limit, not whole beats, a JOB of 7 bytes, IDENTIFY with payload
                transport.write(encode_frame(Command.TOKENS, bytes(identity.max_payload + 1)))
                seen = answers(f"{round_}: over the limit")
                assert errors(seen)[:1] == [ErrorCode.BAD_LENGTH], seen
                link.resync()
                transport.write(encode_frame(Command.WEIGHTS, bytes(7)) + encode_frame(Command.JOB, bytes(7))
                                + encode_frame(Command.IDENTIFY, b"x"))
                assert errors(answers(f"{round_}: wrong lengths")) == [ErrorCode.BAD_LENGTH] * 3
                # unknown command, and a JOB with n_tiles 0
                transport.write(encode_frame(0x7E, b"abc") + encode_frame(Command.JOB, job_payload(0, 0, 0)))
                assert errors(answers(f"{round_}: unknown, bad value")) == [ErrorCode.UNKNOWN, ErrorCode.BAD_VALUE]
                # random bytes (no sync byte) after good frames: one GARBAGE answer a stretch
                noise = bytes(rng.choice([b for b in range(256) if b != 0xA5]) for _ in range(rng.randrange(1, 40)))
                identify = encode_frame(Command.IDENTIFY)
                transport.write(identify + noise + identify + noise + identify)
                seen = answers(f"{round_}: noise")
                assert [f.command for f in seen] == [Reply.IDENTIFY, Reply.ERROR] * 2 + [Reply.IDENTIFY], seen
                assert errors(seen) == [ErrorCode.GARBAGE] * 2
                # random bytes, sync bytes and short lengths among them: whatever the answers, the link recovers
                transport.write(bytes(rng.choice([0xA5, 0, 1, 2, rng.randrange(256)]) for _ in range(rng.randrange(1, 200))))
                answers(f"{round_}: random")
                link.resync()
            # a job abandoned after a few tokens (run_job resets the accelerator first) ...
            n_tiles = -(-job.weights.shape[1] // job.cfg.cols)
            link.request(Command.JOB, job_payload(0, n_tiles, 0))
            link.request(Command.TOKENS, bytes(3 * beat_sizes(job.cfg).bytes["tokens"]))
            log.append({"case": "abandoned job", "answers": []})
            # ... and the next good job is exact
            run = link.run_job(job.cfg, job, params["mode"])
            _save_run(params["out_job"], run, identity)
            try:                        # and the link still answers
                link.request(Command.IDENTIFY)
            except DeviceError:
                raise AssertionError("IDENTIFY refused after the job") from None

        await bridge(host)()
        with atomic_open(params["out"], "w") as fh:
            json.dump(log, fh, indent=1)

    return run_jobs, link_fuzz


import cocotb as _cocotb  # noqa: E402

if _cocotb.is_simulation:                     # imported by a cocotb run: define its tests
    run_jobs, link_fuzz = _cocotb_tests()


# ---------------------------------------------------------------------------------------- runner

def run_board(cfg: FocusConfig, testcase: str, params: dict, *, seed: int | None = None) -> Path:
    """Build the board top for ``cfg`` (simulation parameters) and run cocotb test ``testcase``.
    The model is built at g++'s default optimisation whatever its size: a job through the UART is
    hundreds of thousands of cycles, five times faster than at ``-O0`` (focus.tb.toolchain)."""
    from ..tb.runner import run_cocotb
    return run_cocotb("board", "focus.fpga.sim", cfg, params=params, top_params=board_params(),
                      testcase=testcase, seed=seed, optimize=True)


def simulate_job(path: str | os.PathLike, job, mode: str, *, out_dir: Path | None = None) -> dict:
    """Run ``job`` (read from ``path``) through the simulated board; returns what came back
    (``outputs``, ``result_ends``, ``mask``, ``kept``, ``status``, ``counters``, ``link``)."""
    out_dir = out_dir or build_root() / "fpga-sim"
    out = Path(out_dir) / f"{Path(path).stem}-{mode}-{job.cfg.digest()}.link.npz"
    out.unlink(missing_ok=True)
    run_board(job.cfg, "run_jobs", {"jobs": [[str(Path(path).resolve()), mode, str(out)]]})
    return read_link_result(out)


def read_link_result(path: str | os.PathLike) -> dict:
    """What one simulated job brought back over the link, as :func:`simulate_job` returns it, from the
    file the ``run_jobs`` test wrote."""
    with np.load(path, allow_pickle=False) as f:
        result = {key: f[key] for key in f.files}
    result["status"] = str(result["status"])
    result["counters"] = json.loads(str(result["counters"]))
    result["link"] = json.loads(str(result["link"]))
    return result
