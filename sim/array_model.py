"""Cycle model of the systolic array (:class:`focus.hdl.systolic.SystolicArray`) and the GEMM
sequencer (:class:`focus.hdl.gemm.GemmSequencer`). Pure functions of the shape; no simulation.

Conditions: every input stream offers its next beat in every cycle, ``results`` is always ready,
and the first command and the first weight beat are taken on the same clock edge, edge 0.

What the model encodes (each rule is a sentence of the RTL's docstrings), with ``R = rows``,
``C = cols`` and edges numbered from 0:

* Weight tile ``t`` (``R`` beats, one per edge) is *committed* into bank ``t % 2`` at edge ``c[t]``:
  ``c[0] = R``; ``c[t] = c[t-1] + R`` for ``t >= 1`` (the staging chain refills right after a
  commit), and for ``t >= 2`` not before ``E[t-2] + R + C - 1`` (pass ``t - 2`` used that bank and
  its last vector makes its last multiply ``R + C - 1`` edges after its handshake).
* Pass ``t`` takes its ``M_t`` vectors on consecutive edges ``S[t] .. E[t] = S[t] + M_t - 1``, where
  ``S[0] = c[0]`` and ``S[t] = max(E[t-1] + 1, c[t])`` (a vector may be taken on the commit edge of
  its tile).
* A result leaves the array ``R + C + 4`` edges after its vector's handshake, and the GEMM
  sequencer ``R + C + 6`` edges after (its accumulator adds two register stages).

So passes run back to back exactly when every pass after the first two has at least
``max(R, R + C - 2)`` vectors.

``cycles`` counts clock cycles from the first input handshake to the last result handshake,
inclusive: ``last_edge - 0 + 1``. The ideal is one vector per cycle on a full array:
``M * N * K / (R * C)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Sequence

__all__ = ["ArraySchedule", "ArrayTimeline", "array_schedule", "array_cycles", "gemm_cycles", "gemm_passes",
           "ideal_cycles", "ARRAY_RESULT_LATENCY", "GEMM_RESULT_LATENCY"]


def ARRAY_RESULT_LATENCY(rows: int, cols: int) -> int:
    """Edges from a vector's handshake to its result's handshake on the array's ``results``."""
    return rows + cols + 4


def GEMM_RESULT_LATENCY(rows: int, cols: int) -> int:
    """Edges from a vector's handshake to its result's handshake on the GEMM sequencer's ``results``."""
    return rows + cols + 6


@dataclass(frozen=True)
class ArraySchedule:
    """Handshake edges of each pass: ``commits[t]``, ``starts[t]``, ``ends[t]`` (first and last
    vector of pass ``t``)."""
    commits: tuple[int, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]


class ArrayTimeline:
    """The array's recurrences one vector at a time, for a feeder that is not always ready.

    :meth:`take` returns the handshake edge of the next vector given the earliest edge it may move
    (when it is offered, and any credit the caller models): ``max(earliest, previous + 1,
    commits[t])`` for a vector of pass ``t``. Commits follow the module docstring (weights offered
    on every edge from edge 0). :func:`array_schedule` is this with every vector offered at edge 0.
    """

    def __init__(self, rows: int, cols: int):
        if rows < 1 or cols < 1:
            raise ValueError(f"rows={rows}, cols={cols}: the array needs at least one row and column")
        self.rows, self.cols = rows, cols
        self.commits: list[int] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._last = None                    # handshake of the previous vector
        self._open = False                   # a pass has started and not ended

    def commit(self, t: int) -> int:
        """Commit edge of weight tile ``t`` (tiles ``< t`` committed, passes ``<= t - 2`` ended)."""
        while len(self.commits) <= t:
            n = len(self.commits)
            if n == 0:
                c = self.rows
            else:
                c = self.commits[n - 1] + self.rows
                if n >= 2:
                    c = max(c, self.ends[n - 2] + self.rows + self.cols - 1)
            self.commits.append(c)
        return self.commits[t]

    def take(self, earliest: int, last: bool) -> int:
        """Handshake edge of the next vector (``last``: it ends its pass)."""
        t = len(self.ends)
        edge = max(earliest, self.commit(t))
        if self._last is not None:
            edge = max(edge, self._last + 1)
        if not self._open:
            self.starts.append(edge)
            self._open = True
        self._last = edge
        if last:
            self.ends.append(edge)
            self._open = False
        return edge


def array_schedule(pass_rows: Sequence[int], rows: int, cols: int) -> ArraySchedule:
    """When each pass of ``pass_rows[t]`` vectors is committed, starts and ends (see module doc)."""
    if rows < 1 or cols < 1:
        raise ValueError(f"rows={rows}, cols={cols}: the array needs at least one row and column")
    if not pass_rows or any(m < 1 for m in pass_rows):
        raise ValueError(f"pass_rows={list(pass_rows)!r}: at least one pass, each of at least one vector")
    timeline = ArrayTimeline(rows, cols)
    for m in pass_rows:
        for v in range(m):
            timeline.take(0, v == m - 1)
    return ArraySchedule(tuple(timeline.commits), tuple(timeline.starts), tuple(timeline.ends))


def array_cycles(pass_rows: Sequence[int], rows: int, cols: int) -> int:
    """Cycles of :class:`~focus.hdl.systolic.SystolicArray` for passes of ``pass_rows`` vectors,
    from the first weight handshake to the last result handshake, inclusive."""
    return array_schedule(pass_rows, rows, cols).ends[-1] + ARRAY_RESULT_LATENCY(rows, cols) + 1


def gemm_passes(M: int, N: int, K: int, rows: int, cols: int) -> list[int]:
    """The passes of an M x K x N GEMM: one of M vectors per (N-tile, K-chunk)."""
    for name, value in (("M", M), ("N", N), ("K", K)):
        if value < 1:
            raise ValueError(f"{name}={value}: a GEMM dimension must be at least 1")
    return [M] * (ceil(N / cols) * ceil(K / rows))


def gemm_cycles(M: int, N: int, K: int, rows: int, cols: int) -> int:
    """Cycles of :class:`~focus.hdl.gemm.GemmSequencer` for one M x K x N job, from the command
    handshake (edge 0, with the first weight beat) to the last result handshake, inclusive."""
    schedule = array_schedule(gemm_passes(M, N, K, rows, cols), rows, cols)
    return schedule.ends[-1] + GEMM_RESULT_LATENCY(rows, cols) + 1


def ideal_cycles(M: int, N: int, K: int, rows: int, cols: int) -> float:
    """``M * N * K / (rows * cols)``: every PE busy in every cycle."""
    return M * N * K / (rows * cols)
