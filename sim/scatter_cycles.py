"""Cycle model of the scatter accumulator (:class:`focus.hdl.scatter.ScatterAccumulator`).

A pure function of the configuration and, per pass, of the partial-row count (``max(U, 1)``) and
the members-beat count (``max(1, max_l Z_l)``). It assumes both inputs always offer a beat and
``results`` is always ready. Edge 0 is the first ``partials`` handshake. Passes are numbered in
stream order; every ``cfg.chunks``-th pass (the one with ``end.tile``) ends an N-tile **block**
(:class:`ScatterTimeline` also takes interleaved blocks: passes flagged ``end.tile`` and ``swap``).

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

__all__ = ["RESULT_DELAY", "DONE_DELAY", "ScatterTiming", "ScatterTimeline", "scatter_cycles"]

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


class ScatterTimeline:
    """The recurrences above one beat at a time, for inputs that are not always offered.

    Call :meth:`partial` for each partial row of pass ``i`` (``last`` on its final row), then
    :meth:`member` for each of its members beats, pass after pass; each takes the earliest edge the
    beat may move (when it is offered) and returns its handshake edge, ``max(earliest, ...)`` with
    the terms of the module docstring. A block's emission is scheduled at its last members beat.
    :func:`scatter_cycles` is this with every beat offered at edge 0.

    The set rule, as the RTL applies it: the lanes accumulate into one set and switch after a pass
    with ``end.tile`` (a block's last) or ``swap``; a set that holds a block takes no beat until
    the block's last emission read. Without ``swap`` this is the docstring's ``E[k-2] + 1`` on a
    block's first pass.
    """

    def __init__(self, cfg: FocusConfig):
        self.chunks, self.tile_tokens = cfg.chunks, cfg.tile_tokens
        self.partials: list[int] = []
        self.members: list[int] = []
        self.results: list[int] = []
        self.P: list[int] = []           # last partial per pass
        self.M: list[int] = []           # last members beat per pass
        self.E: list[int] = []           # last emission read per block
        self.aset = 0                    # the set the lanes accumulate into
        self.free = [0, 0]               # per set: the first edge it takes a beat (after its block's emission)

    def partial(self, earliest: int, last: bool) -> int:
        i = len(self.P)                                  # the pass this row belongs to
        edge = max(earliest, self.partials[-1] + 1 if self.partials else 0,
                   self.M[i - 2] + 1 if i >= 2 else 0)
        self.partials.append(edge)
        if last:
            self.P.append(edge)
        return edge

    def member(self, earliest: int, last: bool, *, end_tile: bool | None = None, swap: bool = False) -> int:
        """``end_tile``: the pass ends its block (default: every ``cfg.chunks``-th pass); ``swap``:
        the next pass goes to the other set (both read on the pass's ``last`` beat)."""
        i = len(self.M)
        if i >= len(self.P):
            raise ValueError(f"members beat of pass {i} before its last partial row")
        edge = max(earliest, self.members[-1] + 1 if self.members else 0, self.P[i] + 1, self.free[self.aset])
        self.members.append(edge)
        if last:
            self.M.append(edge)
            if end_tile is None:
                end_tile = i % self.chunks == self.chunks - 1
            if end_tile:
                first = max(edge + DONE_DELAY, self.E[-1] + 1 if self.E else 0)
                self.results += (first + t + RESULT_DELAY for t in range(self.tile_tokens))
                self.E.append(first + self.tile_tokens - 1)
                self.free[self.aset] = self.E[-1] + 1
            if end_tile or swap:
                self.aset ^= 1
        return edge


def scatter_cycles(cfg: FocusConfig, partial_rows: list[int], member_beats: list[int],
                   block_ends: list[bool] | None = None, swaps: list[bool] | None = None) -> ScatterTiming:
    """Predicted handshake edges for passes of ``partial_rows[i]`` rows and ``member_beats[i]``
    beats (see the module docstring). The pass count must be a whole number of blocks
    (``cfg.chunks`` passes each). ``block_ends``/``swaps``: per pass its ``end.tile`` and ``swap``
    (default: every ``cfg.chunks``-th pass ends a block, no swap)."""
    if len(partial_rows) != len(member_beats) or len(partial_rows) % cfg.chunks:
        raise ValueError(f"{len(partial_rows)} passes with {len(member_beats)} member counts: "
                         f"need equal counts, a multiple of chunks={cfg.chunks}")
    if min(partial_rows, default=1) < 1 or min(member_beats, default=1) < 1:
        raise ValueError("every pass has at least one partial row and one members beat")
    n = len(partial_rows)
    block_ends = [i % cfg.chunks == cfg.chunks - 1 for i in range(n)] if block_ends is None else block_ends
    swaps = [False] * n if swaps is None else swaps
    timeline = ScatterTimeline(cfg)
    for rows, beats, end, swap in zip(partial_rows, member_beats, block_ends, swaps):
        for u in range(rows):
            timeline.partial(0, u == rows - 1)
        for k in range(beats):
            timeline.member(0, k == beats - 1, end_tile=end, swap=swap)
    return ScatterTiming(timeline.partials, timeline.members, timeline.results)
