"""Pack rows of integer lanes into wide payload integers and back, with NumPy.

A stream payload that is an ``ArrayLayout`` of ``lanes`` signed ``width``-bit elements is, in the
generated Verilog, one ``lanes * width``-bit vector with lane 0 in the low bits. Testbenches move
thousands of such beats (a 32-column INT32 result row is 1024 bits), so these helpers work on whole
arrays: byte-aligned widths go through ``tobytes``/``frombuffer``, others through shifts.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pack_lanes", "unpack_lanes"]


def pack_lanes(rows: np.ndarray, width: int, ends=None) -> list[int]:
    """One payload integer per row of ``rows`` (beats x lanes, signed or unsigned values); with
    ``ends`` (one framing code per beat, :mod:`focus.framing`) the code sits above the lanes, as
    in a framed beat (``data`` then ``end``)."""
    if ends is not None:
        lanes = np.asarray(rows).shape[1]
        return [value | (int(end) << (lanes * width)) for value, end in zip(pack_lanes(rows, width), ends, strict=True)]
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 2:
        raise ValueError(f"rows must be beats x lanes, not shape {rows.shape}")
    beats, lanes = rows.shape
    if width <= 62:
        unsigned = rows & ((1 << width) - 1)
    else:
        unsigned = rows.astype(object) & ((1 << width) - 1)
    if width in (8, 16, 32, 64):
        raw = unsigned.astype(f"<u{width // 8}").tobytes()
        size = lanes * width // 8
        return [int.from_bytes(raw[i * size:(i + 1) * size], "little") for i in range(beats)]
    out = []
    for row in unsigned.tolist():
        value = 0
        for lane in reversed(row):
            value = (value << width) | int(lane)
        out.append(value)
    return out


def unpack_lanes(values: list[int], lanes: int, width: int, signed: bool = True) -> np.ndarray:
    """Rows (beats x lanes, int64) from payload integers: the low ``lanes * width`` bits of each."""
    if width > 64:
        raise ValueError(f"width={width}: lanes wider than 64 bits do not fit int64")
    beats = len(values)
    total = lanes * width
    mask = (1 << total) - 1
    if width in (8, 16, 32, 64):
        size = total // 8
        raw = b"".join((int(v) & mask).to_bytes(size, "little") for v in values)
        kind = "i" if signed else "u"
        return np.frombuffer(raw, dtype=f"<{kind}{width // 8}").reshape(beats, lanes).astype(np.int64)
    out = np.empty((beats, lanes), dtype=np.int64)
    lane_mask, top = (1 << width) - 1, 1 << (width - 1)
    for i, value in enumerate(values):
        value = int(value)
        for j in range(lanes):
            lane = (value >> (j * width)) & lane_mask
            out[i, j] = lane - (1 << width) if signed and lane & top else lane
    return out
