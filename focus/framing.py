"""Framing flags as integers, for the golden model and testbenches (no Amaranth).

The gateware's :data:`focus.hdl.streams.Framing` layout packs ``end.chunk``, ``end.tile`` and
``end.job`` into three bits, chunk lowest; a framed payload is its data with those three bits
above it (docs/streams.md). :func:`end_codes` gives the code of every beat of a job.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["END_CHUNK", "END_TILE", "END_JOB", "end_codes", "end_fields"]

END_CHUNK, END_TILE, END_JOB = 1, 2, 4


def end_codes(lengths: Iterable[int], chunks_per_tile: int) -> list[int]:
    """Framing code of every beat of a job of tile-chunks with ``lengths`` beats each (stream
    order; ``chunks_per_tile`` consecutive tile-chunks make a tile). A tile-chunk of length 0 has no
    beat, so its flags are not carried (streams that skip empty tile-chunks say so)."""
    lengths = list(lengths)
    if chunks_per_tile < 1 or len(lengths) % chunks_per_tile:
        raise ValueError(f"{len(lengths)} tile-chunks are not whole tiles of {chunks_per_tile}")
    codes: list[int] = []
    last_beat = max((i for i, n in enumerate(lengths) if n), default=-1)
    for i, n in enumerate(lengths):
        if not n:
            continue
        end = END_CHUNK
        if i % chunks_per_tile == chunks_per_tile - 1:
            end |= END_TILE
        if i == last_beat:
            end |= END_JOB
        codes += [0] * (n - 1) + [end]
    return codes


def end_fields(code: int) -> dict:
    """``{"chunk": .., "tile": .., "job": ..}`` of a code (the Framing layout's field values)."""
    return {"chunk": code & 1, "tile": code >> 1 & 1, "job": code >> 2 & 1}
