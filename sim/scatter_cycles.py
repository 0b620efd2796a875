"""Cycle model of the scatter accumulator (:class:`focus.hdl.scatter.ScatterAccumulator`).

A pure function of the configuration and, per pass, of the partial-row count (``max(U, 1)``) and
the members-beat count (``max(1, max_l Z_l)``). It assumes both inputs always offer a beat and
``results`` is always ready. Edge 0 is the first ``partials`` handshake. Passes are numbered in
stream order; every ``cfg.chunks``-th pass (the one with ``end.tile``) ends an N-tile **block**.

``p[i]`` first / ``P[i]`` last partial handshake of pass i, ``m[i]`` / ``M[i]`` first / last
members handshake, ``e[k]`` / ``E[k]`` first / last emission read of block k (one per cycle,
``tile_tokens`` of them)::

    p[i] = max(P[i-1] + 1, M[i-2] + 1)          partial bank i mod 2 is free again
    P[i] = p[i] + rows[i] - 1
    m[i] = max(M[i-1] + 1, P[i] + 1,            the pass's partial rows are all in its bank
               E[k-2] + 1 if i is block k's first pass)   accumulator set k mod 2 is emitted
    M[i] = m[i] + beats[i] - 1
    e[k] = max(M[last pass of k] + DONE_DELAY, E[k-1] + 1)
    result handshake = emission read + RESULT_DELAY

:data:`RESULT_DELAY` and :data:`DONE_DELAY` are the RTL's pipeline depths; its results queue has
``focus.plans.SCATTER_QUEUE_DEPTH = RESULT_DELAY + 1`` entries, so the emission runs at one row a
cycle; the cycle-exact tests hold the RTL to this model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import FocusConfig

__all__ = ["RESULT_DELAY", "DONE_DELAY", "ScatterTiming", "scatter_cycles"]

#: Edges from an emission read to the handshake of its results beat: the registered accumulator
#: read (1), the registered selection of the lane's row (1), then the output queue (1).
RESULT_DELAY = 3
#: Edges from the members handshake with ``end.tile`` to the block's first emission read: the
#: beat's accumulator read (1), its registered add and write (1), then the set reads as complete (1).
DONE_DELAY = 3


@dataclass(frozen=True)
class ScatterTiming:
    """Handshake edges of every beat of a job, edge 0 = the first ``partials`` handshake."""
    partials: list[int]
    members: list[int]
    results: list[int]

    @property
    def cycles(self) -> int:
        """Edges from the first partials handshake to the last results handshake, inclusive."""
        return self.results[-1] + 1 if self.results else 0


def scatter_cycles(cfg: FocusConfig, partial_rows: list[int], member_beats: list[int]) -> ScatterTiming:
    """Predicted handshake edges for passes of ``partial_rows[i]`` rows and ``member_beats[i]``
    beats (see the module docstring). The pass count must be a whole number of blocks
    (``cfg.chunks`` passes each)."""
    if len(partial_rows) != len(member_beats) or len(partial_rows) % cfg.chunks:
        raise ValueError(f"{len(partial_rows)} passes with {len(member_beats)} member counts: "
                         f"need equal counts, a multiple of chunks={cfg.chunks}")
    if min(partial_rows, default=1) < 1 or min(member_beats, default=1) < 1:
        raise ValueError("every pass has at least one partial row and one members beat")
    C, T = cfg.chunks, cfg.tile_tokens
    partials, members, results = [], [], []
    P, M, E = [], [], []                     # last partial, last members beat per pass; last read per block
    for i, (rows, beats) in enumerate(zip(partial_rows, member_beats)):
        start = max(P[-1] + 1 if P else 0, M[i - 2] + 1 if i >= 2 else 0)
        partials += range(start, start + rows)
        P.append(start + rows - 1)
        block = i // C
        start = max(M[-1] + 1 if M else 0, P[i] + 1)
        if i % C == 0 and block >= 2:
            start = max(start, E[block - 2] + 1)
        members += range(start, start + beats)
        M.append(start + beats - 1)
        if i % C == C - 1:
            first = max(M[i] + DONE_DELAY, E[-1] + 1 if E else 0)
            results += (first + t + RESULT_DELAY for t in range(T))
            E.append(first + T - 1)
    return ScatterTiming(partials, members, results)
