"""The host link's frame format, in plain Python: constants, CRC, frame encoding and decoding, and
the byte layout of every beat. The gateware (:mod:`focus.fpga.link`) and the host library
(:mod:`focus.fpga.host`) both take their numbers from here; docs/link.md is the prose version.

A frame, in either direction::

    0xA5 | command | length (2 bytes, LE) | payload (length bytes) | CRC-16 (2 bytes, LE)

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, not reflected, no final
XOR; check value 0x29B1 for ``b"123456789"``) over command, length and payload (not the sync
byte), sent low byte first.

A beat of a stream is its payload bits as the stream layout packs them (docs/streams.md: the first
field in the low bits), zero-padded to whole bytes, little-endian. An upload frame carries whole
beats, back to back; a download frame carries one beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from ..config import FocusConfig

__all__ = ["SYNC", "VERSION", "MAGIC", "Command", "Reply", "ErrorCode", "crc16", "encode_frame",
           "FrameDecoder", "Frame", "BeatSizes", "beat_sizes", "JOB_BYTES", "IDENTIFY_BYTES",
           "identify_payload", "parse_identify", "Identity", "job_payload", "DEFAULT_MAX_PAYLOAD"]

SYNC = 0xA5
VERSION = 2
MAGIC = b"FOCS"
#: Bytes of a JOB payload: k (u32), n_tiles (u16), mode (u8), reserved (u8, 0).
JOB_BYTES = 8
#: Upload payload limit a board top offers unless told otherwise (the device's frame buffer).
DEFAULT_MAX_PAYLOAD = 256
#: Largest payload the host accepts from the device (a sanity bound for resynchronisation).
HOST_MAX_PAYLOAD = 4096


class Command:
    """Host-to-device commands."""
    IDENTIFY = 0x01   #: no payload; reply IDENTIFY
    RESET = 0x02      #: no payload; resets the accelerator, aborts an upload in progress; reply ACK
    JOB = 0x03        #: JOB_BYTES payload (:func:`job_payload`); reply ACK once the accelerator took it
    SCORES = 0x04     #: whole score beats; reply ACK once the accelerator took every beat
    TOKENS = 0x05     #: whole token beats; likewise
    WEIGHTS = 0x06    #: whole weight-row beats; likewise
    UPLOADS = (0x04, 0x05, 0x06)
    NAMES = {0x01: "IDENTIFY", 0x02: "RESET", 0x03: "JOB", 0x04: "SCORES", 0x05: "TOKENS", 0x06: "WEIGHTS"}


class Reply:
    """Device-to-host frames."""
    ACK = 0x80        #: payload: the command acknowledged (1 byte)
    IDENTIFY = 0x81   #: payload: :func:`identify_payload`
    ERROR = 0x8F      #: payload: error code, the command it concerns (0 when unknown)
    MASK = 0x90       #: payload: one SEC mask beat
    RESULT = 0x91     #: payload: one result beat
    DONE = 0x92       #: payload: one done beat (status, counters)
    NAMES = {0x80: "ACK", 0x81: "IDENTIFY", 0x8F: "ERROR", 0x90: "MASK", 0x91: "RESULT", 0x92: "DONE"}


class ErrorCode:
    """The code of an ERROR reply. Every error drops the frame it concerns (nothing of it reached
    the accelerator) and the parser hunts for the next sync byte."""
    BAD_CRC = 1       #: the CRC did not match
    BAD_LENGTH = 2    #: length over the device's limit, not whole beats, or wrong for the command
    UNKNOWN = 3       #: unknown command
    TIMEOUT = 4       #: the frame stopped arriving (no byte for the frame timeout): truncated
    BAD_VALUE = 5     #: a JOB field out of range (k or n_tiles too wide, n_tiles 0, mode > 1)
    BUSY = 6          #: a frame other than IDENTIFY or RESET came while an upload was being delivered
    #: bytes outside a frame (command 0): the first byte other than the sync byte after a frame that
    #: ended without an error; the rest until the next sync byte are skipped without an answer
    GARBAGE = 7
    NAMES = {1: "BAD_CRC", 2: "BAD_LENGTH", 3: "UNKNOWN", 4: "TIMEOUT", 5: "BAD_VALUE", 6: "BUSY", 7: "GARBAGE"}


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continuing from ``crc``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_frame(command: int, payload: bytes = b"") -> bytes:
    """The bytes of one frame."""
    if not 0 <= command <= 0xFF:
        raise ValueError(f"command={command} is not a byte")
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes: at most 65535")
    body = bytes([command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "little")


@dataclass(frozen=True)
class Frame:
    command: int
    payload: bytes

    @property
    def name(self) -> str:
        return Reply.NAMES.get(self.command, Command.NAMES.get(self.command, f"0x{self.command:02x}"))


class FrameDecoder:
    """Bytes in, frames out: hunts for the sync byte, skips what is not a frame. ``feed`` returns the
    complete frames; a frame with a bad CRC or an absurd length is dropped and counted in ``dropped``
    (the decoder then hunts again from the byte after that sync byte)."""

    def __init__(self, max_payload: int = HOST_MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.dropped = 0
        self.skipped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                self.skipped += len(self.buffer)
                self.buffer.clear()
                return frames
            if start:
                self.skipped += start
                del self.buffer[:start]
            if len(self.buffer) < 4:
                return frames
            length = int.from_bytes(self.buffer[2:4], "little")
            if length > self.max_payload:
                self.dropped += 1
                del self.buffer[:1]
                continue
            if len(self.buffer) < 6 + length:
                return frames
            body = bytes(self.buffer[1:4 + length])
            crc = int.from_bytes(self.buffer[4 + length:6 + length], "little")
            if crc16(body) != crc:
                self.dropped += 1
                del self.buffer[:1]
                continue
            frames.append(Frame(body[0], body[3:]))
            del self.buffer[:6 + length]


@dataclass(frozen=True)
class BeatSizes:
    """Bits and bytes of every stream's beat for one configuration."""
    bits: dict        # stream name -> payload bits
    bytes: dict       # stream name -> bytes on the link (bits padded to whole bytes)


def beat_sizes(cfg: FocusConfig) -> BeatSizes:
    """The beat widths of the accelerator's streams (docs/streams.md), from the configuration alone
    (the gateware checks that its layouts agree)."""
    from ..hdl.accelerator import COUNTER_NAMES, COUNTER_WIDTH
    d, L = cfg.data_width, cfg.cols
    bits = {
        "scores": cfg.sec_lanes * cfg.score_width + 1,          # SecScore: scores, last
        "tokens": cfg.vector_size * d + 3,                      # VectorBeat: data, end
        "weights": L * d,                                       # WeightRow
        "results": L * cfg.acc_width + 3,                       # ResultBeat: data, end
        "mask": cfg.sec_lanes + 1,                              # SecMask: keep, last
        "done": 2 + COUNTER_WIDTH * len(COUNTER_NAMES),         # JobDone: status, counters
    }
    return BeatSizes(bits, {name: ceil(b / 8) for name, b in bits.items()})


def job_payload(k: int, n_tiles: int, mode: int) -> bytes:
    """A JOB frame's payload."""
    return k.to_bytes(4, "little") + n_tiles.to_bytes(2, "little") + bytes([mode, 0])


#: Bytes of an IDENTIFY reply before the digest.
IDENTIFY_BYTES = 20


@dataclass(frozen=True)
class Identity:
    """What an IDENTIFY reply says about the bitstream."""
    version: int
    max_payload: int         # largest upload payload the device takes, bytes
    clk_freq: int            # the design's clock, Hz
    baud: int                # the UART's nominal baud rate
    frame_timeout: int       # clock cycles without a byte after which a partial frame is dropped
    digest: str              # cfg.digest() of the configuration the bitstream was built for

    @property
    def frame_timeout_s(self) -> float:
        return self.frame_timeout / self.clk_freq


def identify_payload(identity: Identity) -> bytes:
    """magic "FOCS", version u8, reserved u8, max_payload u16, clk_freq u32, baud u32,
    frame_timeout u32 (cycles), then the digest as ASCII (its length is the rest of the frame)."""
    return (MAGIC + bytes([identity.version, 0]) + identity.max_payload.to_bytes(2, "little")
            + identity.clk_freq.to_bytes(4, "little") + identity.baud.to_bytes(4, "little")
            + identity.frame_timeout.to_bytes(4, "little") + identity.digest.encode("ascii"))


def parse_identify(payload: bytes) -> Identity:
    if len(payload) < IDENTIFY_BYTES or payload[:4] != MAGIC:
        raise ValueError(f"not a Focus IDENTIFY reply: {payload[:24].hex()}")
    u = lambda lo, hi: int.from_bytes(payload[lo:hi], "little")     # noqa: E731
    return Identity(version=payload[4], max_payload=u(6, 8), clk_freq=u(8, 12), baud=u(12, 16),
                    frame_timeout=u(16, 20), digest=payload[IDENTIFY_BYTES:].decode("ascii", "replace"))
