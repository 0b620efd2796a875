"""The host side of the link: run exported jobs on a board (or on its simulation) over a byte transport.

A *transport* is any object with ``write(data: bytes)`` and ``read(n: int) -> bytes`` (up to ``n``
bytes; fewer, or none, once its own short read timeout passes): a ``serial.Serial`` opened with a
``timeout``, or :class:`focus.fpga.sim.SimTransport` on the simulated UART pins. It may offer
``clock()`` (seconds, for link timeouts and the link time; default ``time.monotonic``).

Flow control (docs/link.md): one request frame at a time; the host waits for the device's answer
(ACK, IDENTIFY or ERROR) before it sends the next one, and the device acknowledges an upload only
once the accelerator has taken its last beat. MASK, RESULT and DONE frames come whenever the
accelerator produces them and are collected while waiting.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..config import FocusConfig
from .protocol import (VERSION, Command, ErrorCode, Frame, FrameDecoder, Identity, Reply, beat_sizes,
                       encode_frame, job_payload, parse_identify)

__all__ = ["FocusLink", "LinkError", "LinkTimeout", "DeviceError", "ConfigMismatch", "LinkRun", "open_serial",
           "pack_beats", "unpack_beats"]


class LinkError(RuntimeError):
    """The link or the device misbehaved."""


class LinkTimeout(LinkError):
    """No byte came from the device for the link timeout while an answer was due."""


class DeviceError(LinkError):
    """The device answered a frame with an ERROR frame."""

    def __init__(self, code: int, command: int):
        self.code, self.command = code, command
        super().__init__(f"the device refused a {Command.NAMES.get(command, f'0x{command:02x}')} frame: "
                         f"{ErrorCode.NAMES.get(code, f'error {code}')}")


class ConfigMismatch(LinkError):
    """The job was made for another configuration than the bitstream's."""


def open_serial(port: str, baud: int):
    """A pyserial port (the ``fpga`` extra) with a short read timeout, as a transport."""
    try:
        import serial
    except ImportError:
        raise LinkError("pyserial is not installed: pip install 'focus-accel[fpga]' (or pyserial)") from None
    return serial.Serial(port, baudrate=baud, timeout=0.05, write_timeout=10)


def pack_beats(values, nbytes: int) -> bytes:
    """Payload integers as ``nbytes`` little-endian bytes each, back to back."""
    return b"".join(int(v).to_bytes(nbytes, "little") for v in values)


def unpack_beats(payloads) -> list[int]:
    return [int.from_bytes(p, "little") for p in payloads]


@dataclass
class LinkRun:
    """What a job returned over the link."""
    mode: str
    outputs: np.ndarray              # T x N int64
    result_ends: list                # framing code of each result beat
    mask: np.ndarray                 # SEC keep words (words x cols, 0/1); empty without SEC
    kept: np.ndarray | None          # kept tokens, ascending, when SEC ran
    status: str                      # JobStatus name of the done beat
    counters: dict                   # every counter of the done beat
    link_time: float                 # seconds from the JOB frame to the DONE frame (transport clock)
    bytes_sent: int = 0
    bytes_received: int = 0
    frames: dict = field(default_factory=dict)   # request frames sent, by command name


class FocusLink:
    """A connection to a board running :class:`focus.fpga.top.BoardTop`.

    ``port`` is a serial port name (opened with pyserial at ``baud``) or a transport object.
    ``timeout`` (seconds of the transport's clock) is how long the host waits for a byte while an
    answer is due: every byte that arrives (results stream while an upload waits) restarts it.
    """

    def __init__(self, port, *, baud: int = 115_200, timeout: float = 5.0, progress=None):
        self.transport = open_serial(port, baud) if isinstance(port, str) else port
        self._owned = isinstance(port, str)
        self.timeout = timeout
        self.clock = getattr(self.transport, "clock", time.monotonic)
        self.decoder = FrameDecoder()
        self.frames: deque[Frame] = deque()      # asynchronous frames (mask, results, done) not yet used
        self.identity: Identity | None = None
        self.progress = progress                 # called with (bytes sent, bytes to send) during a job
        self.bytes_sent = self.bytes_received = 0
        self.garbage_reports = 0                 # GARBAGE answers seen: noise reached the device

    # ------------------------------------------------------------------ bytes and frames
    def close(self):
        if self._owned:
            self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, command: int, payload: bytes = b""):
        """Send one frame (no waiting)."""
        frame = encode_frame(command, payload)
        self.transport.write(frame)
        self.bytes_sent += len(frame)

    def _read_some(self) -> bytes:
        """What the transport has (a pyserial port: what is waiting, else wait for one byte up to its
        read timeout, so no read waits for a full buffer)."""
        waiting = getattr(self.transport, "in_waiting", None)
        return bytes(self.transport.read(max(1, waiting) if isinstance(waiting, int) else 4096))

    def _poll(self, deadline_from: float) -> bool:
        """Read what is there; True when something came. Raises LinkTimeout after ``timeout``
        seconds since ``deadline_from`` without a byte."""
        data = self._read_some()
        if data:
            self.bytes_received += len(data)
            for frame in self.decoder.feed(bytes(data)):
                if self._is_garbage_report(frame):    # noise reached the device: answers none of ours
                    self.garbage_reports += 1
                else:
                    self.frames.append(frame)
            return True
        if self.clock() - deadline_from > self.timeout:
            raise LinkTimeout(f"no byte from the device for {self.timeout:g} s")
        return False

    @staticmethod
    def _is_garbage_report(frame: Frame) -> bool:
        """An ERROR frame answering bytes outside a frame: :meth:`_poll` counts it in
        ``garbage_reports`` and does not queue it: it answers none of our frames."""
        return frame.command == Reply.ERROR and frame.payload[:1] == bytes([ErrorCode.GARBAGE])

    def _answer(self, what: str) -> Frame:
        """Wait for the next ACK, IDENTIFY or ERROR frame; other frames stay queued."""
        last = self.clock()
        while True:
            for index, frame in enumerate(self.frames):
                if frame.command in (Reply.ACK, Reply.IDENTIFY, Reply.ERROR):
                    del self.frames[index]
                    return frame
            try:
                if self._poll(last):
                    last = self.clock()
            except LinkTimeout:
                raise LinkTimeout(f"no answer to {what}: no byte from the device for {self.timeout:g} s "
                                  f"(is the board programmed and the port right?)") from None

    def request(self, command: int, payload: bytes = b"") -> Frame:
        """Send a frame and return its answer; an ERROR answer raises :class:`DeviceError`."""
        self.send(command, payload)
        answer = self._answer(Command.NAMES.get(command, hex(command)))
        if answer.command == Reply.ERROR:
            raise DeviceError(answer.payload[0], answer.payload[1] if len(answer.payload) > 1 else 0)
        if answer.command == Reply.ACK and (len(answer.payload) != 1 or answer.payload[0] != command):
            raise LinkError(f"the device acknowledged {answer.payload.hex()} when {Command.NAMES[command]} was due")
        return answer

    def resync(self) -> list[Frame]:
        """Recover from a broken exchange: wait until the line has been quiet for longer than the
        device's frame timeout (its parser then hunts for a sync byte), drop what came, reset."""
        quiet = 2 * (self.identity.frame_timeout_s if self.identity else 0.05)
        seen = []
        last = self.clock()
        while self.clock() - last <= quiet:
            data = self._read_some()
            if data:
                self.bytes_received += len(data)
                seen += self.decoder.feed(bytes(data))
                last = self.clock()
        seen += list(self.frames)
        self.frames.clear()
        self.decoder = FrameDecoder()
        self.reset()
        return seen

    # ------------------------------------------------------------------ commands
    def identify(self) -> Identity:
        """Ask the bitstream what it is (protocol version, configuration digest, limits)."""
        answer = self.request(Command.IDENTIFY)
        if answer.command != Reply.IDENTIFY:
            raise LinkError(f"IDENTIFY was answered with {answer.name}")
        identity = parse_identify(answer.payload)
        if identity.version != VERSION:
            raise LinkError(f"the bitstream speaks link protocol version {identity.version}, this host "
                            f"version {VERSION}: rebuild the bitstream with this version of focus")
        self.identity = identity
        return self.identity

    def reset(self):
        """Reset the accelerator (abandons a job) and forget frames of earlier jobs."""
        self.request(Command.RESET)
        self.frames.clear()

    def check_config(self, cfg: FocusConfig) -> Identity:
        identity = self.identity or self.identify()
        if identity.digest != cfg.digest():
            raise ConfigMismatch(f"the job was made for configuration {cfg.digest()}, the bitstream is built "
                                 f"for {identity.digest}: build the bitstream for the job's configuration "
                                 f"(or export the job for the bitstream's)")
        return identity

    def run_job(self, cfg: FocusConfig, job, mode: str = "focus") -> LinkRun:
        """Run an exported job (``focus.sim.export.read``) and return what the board computed.

        The configuration digest must equal the bitstream's (else :class:`ConfigMismatch`, before
        any job frame is sent). Order: RESET, JOB, the SEC scores, then per tile its tokens and its
        weights (the order the accelerator takes them in, so an acknowledgement is never waiting
        for a later frame), each frame acknowledged before the next; then the DONE frame.
        """
        from ..hdl.accelerator import COUNTER_NAMES, COUNTER_WIDTH, JobStatus
        from ..sim.accelerator import accelerator_streams, outputs_from_results
        from ..tb.lanes import pack_lanes, unpack_lanes

        identity = self.check_config(cfg)
        streams = accelerator_streams(cfg, job, mode)
        if streams.command["k"] > cfg.tokens:
            raise LinkError(f"k={streams.command['k']} is above the token count {cfg.tokens}")
        sizes = beat_sizes(cfg)
        self.reset()
        sent_before, received_before = self.bytes_sent, self.bytes_received
        frames_sent: dict[str, int] = {}

        scores = pack_lanes(streams.scores, cfg.score_width) if len(streams.scores) else []
        scores = [v | (last << (cfg.sec_lanes * cfg.score_width)) for v, last in zip(scores, streams.score_last)]
        tokens = pack_lanes(streams.tokens, cfg.data_width, streams.token_ends)
        weights = pack_lanes(streams.weights, cfg.data_width)
        per_tile_tokens = cfg.chunks * cfg.tile_tokens
        per_tile_weights = len(weights) // cfg.tiles
        uploads = [(Command.SCORES, scores, sizes.bytes["scores"])]
        for tile in range(cfg.tiles):
            uploads.append((Command.TOKENS, tokens[tile * per_tile_tokens:(tile + 1) * per_tile_tokens],
                            sizes.bytes["tokens"]))
            uploads.append((Command.WEIGHTS, weights[tile * per_tile_weights:(tile + 1) * per_tile_weights],
                            sizes.bytes["weights"]))
        total = sum(len(beats) * nbytes for _, beats, nbytes in uploads)
        done_bytes = 0

        start = self.clock()
        self.request(Command.JOB, job_payload(streams.command["k"], streams.command["n_tiles"],
                                              streams.command["mode"]))
        frames_sent["JOB"] = 1
        for command, beats, nbytes in uploads:
            per_frame = max(1, identity.max_payload // nbytes)
            for first in range(0, len(beats), per_frame):
                chunk = beats[first:first + per_frame]
                self.request(command, pack_beats(chunk, nbytes))
                name = Command.NAMES[command]
                frames_sent[name] = frames_sent.get(name, 0) + 1
                done_bytes += len(chunk) * nbytes
                if self.progress:
                    self.progress(done_bytes, total)

        # collect until DONE
        last = self.clock()
        while not any(f.command == Reply.DONE for f in self.frames):
            try:
                if self._poll(last):
                    last = self.clock()
            except LinkTimeout:
                got = sum(f.command == Reply.RESULT for f in self.frames)
                raise LinkTimeout(f"the job did not finish: {got} of {len(streams.results)} result beats and no "
                                  f"DONE frame, then no byte for {self.timeout:g} s") from None
        link_time = self.clock() - start
        frames = list(self.frames)
        self.frames.clear()
        done_index = next(i for i, f in enumerate(frames) if f.command == Reply.DONE)
        leftover = frames[done_index + 1:]
        frames = frames[:done_index + 1]
        for f in frames:
            if f.command not in (Reply.RESULT, Reply.MASK, Reply.DONE):
                raise LinkError(f"unexpected {f.name} frame during the job")
        self.frames.extend(leftover)

        def payloads(command, nbytes):
            chosen = [f.payload for f in frames if f.command == command]
            if any(len(p) != nbytes for p in chosen):
                raise LinkError(f"a {Reply.NAMES[command]} frame of the wrong length")
            return unpack_beats(chosen)

        done = payloads(Reply.DONE, sizes.bytes["done"])[0]
        status = JobStatus(done & 3).name
        counters = {name: done >> (2 + i * COUNTER_WIDTH) & ((1 << COUNTER_WIDTH) - 1)
                    for i, name in enumerate(COUNTER_NAMES)}
        results = payloads(Reply.RESULT, sizes.bytes["results"])
        data_bits = cfg.cols * cfg.acc_width
        rows = unpack_lanes(results, cfg.cols, cfg.acc_width) if results else np.zeros((0, cfg.cols), np.int64)
        ends = [v >> data_bits & 7 for v in results]
        n = np.asarray(job.weights).shape[1]
        if status == "OK" and len(results) != len(streams.results):
            raise LinkError(f"{len(results)} result beats came, the job has {len(streams.results)}")
        outputs = outputs_from_results(cfg, rows, n) if status == "OK" else np.zeros((cfg.tokens, n), np.int64)
        masks = payloads(Reply.MASK, sizes.bytes["mask"])
        mask = np.array([[v >> i & 1 for i in range(cfg.sec_lanes)] for v in masks], dtype=np.int64).reshape(-1, cfg.sec_lanes)
        kept = np.flatnonzero(mask.reshape(-1)[:cfg.tokens]).astype(np.int64) if streams.command["k"] else None
        return LinkRun(mode=mode, outputs=outputs, result_ends=ends, mask=mask, kept=kept, status=status,
                       counters=counters, link_time=link_time, bytes_sent=self.bytes_sent - sent_before,
                       bytes_received=self.bytes_received - received_before, frames=frames_sent)

