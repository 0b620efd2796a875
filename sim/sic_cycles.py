"""Cycle model of the SIC hardware (focus.hdl.sic): when every beat of a job moves.

A pure function of the configuration and of the job's unique-vector count per tile-chunk (which
the golden model gives, :func:`unique_per_tile_chunk`). It assumes what the benchmark and the
cycle-exact testbench arrange: the input always offers a vector and every output is always ready.
Cycle 0 is the cycle of the first input handshake.

The recurrences follow the RTL's structure. The RTL is built from the structural plan in
:mod:`focus.plans` (comparator engines, latency, queue depths, group-table steps); this model
predicts from the same plan, and from the two delays below, when every beat must move, and the
cycle-exact tests check the RTL against that prediction:

``a[i]``  input handshake of vector i (stream order over the job).
``r[i]``  the resolver takes vector i's verdict from the comparator (its map entry, and after a
          tile-chunk's last vector the counters beat, are registered, queued one cycle later and
          leave two cycles later: :data:`QUEUE_DELAY`).

The comparator (:func:`focus.plans.comparator_plan`) holds a vector for ``II = cfg.sic_interval`` cycles, takes
the next straight from the input in the last of them, offers its verdict ``L =
focus.plans.comparator_latency(cfg)`` cycles after the handshake and admits a vector only while fewer than
``comparator_depth(cfg)`` are inside it or waiting in its output queue::

    a[i] = max(a[i-1] + II, r[i-depth] + 1)
    r[i] = max(a[i] + L, r[i-1] + steps, gate[i])

``steps`` (:func:`focus.plans.emit_steps`) is how many cycles the group table spends writing one vector
(``vector_size / cfg.sic_mean_lanes`` for ``mean``, one for ``root``); the resolver hands it one
vector at a time. ``gate[i]`` is the ping-pong: the first vector of tile-chunk n waits until the
bank it will fill (bank n mod 2) has been read out for tile-chunk n-2 (``release[n-2] + 1``).

The bank of tile-chunk n reads as full ``steps + FULL_DELAY`` cycles after its last vector's ``r``
(``steps + 2`` for ``mean``: the last step reads in cycle ``r + steps``, the read is registered, and
its write two cycles later is the cycle the bank reads full, a cycle before the emitter's first
read; 2 for ``root``: one write); the emitter starts
it at ``s[n] = max(full[n], emitter free)``, issues one bank read per cycle (``steps`` per
representative), and a representative leaves the queue ``EMIT_DELAY`` cycles after its last read.
The bank is released at its last read (at ``s[n]`` when it holds no group) and the emitter takes the
next bank one cycle later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FocusConfig
from ..plans import MAP_DEPTH, REPRESENTATIVE_DEPTH, comparator_depth, comparator_latency, emit_steps

__all__ = ["FULL_DELAY", "EMIT_DELAY", "QUEUE_DELAY", "SicTiming", "AlwaysReady", "sic_cycles", "unique_per_tile_chunk"]

#: Cycles from the resolver taking a vector's verdict until its map beat (and, for a tile-chunk's
#: last vector, the counters beat) leaves: a register, then the output queue.
QUEUE_DELAY = 2

#: Cycles from the resolver taking a tile-chunk's last vector until its bank reads as full, beyond
#: the group table's ``steps`` (``mean``: the last step's read, registered, then written in the cycle
#: the bank reads full; ``root``: one write).
FULL_DELAY = {"mean": 2, "root": 1}
#: Cycles from a representative's last bank read until it leaves the output queue.
EMIT_DELAY = {"mean": 8, "root": 2}


@dataclass
class SicTiming:
    """Cycle of every handshake of a job (cycle 0: the first input handshake)."""

    inputs: list[int]            # input handshake per vector
    map: list[int]               # map beat per vector
    counters: list[int]          # counters beat per tile-chunk
    representatives: list[int]   # representative beats, tile-chunk after tile-chunk

    @property
    def cycles(self) -> int:
        """Cycles from the first input handshake to the last output beat, inclusive."""
        return max(self.map[-1], self.counters[-1], *(self.representatives[-1:] or [0])) + 1

    @property
    def cycles_per_vector(self) -> float:
        return self.cycles / len(self.inputs)

    @property
    def input_interval(self) -> float:
        """Mean cycles between input handshakes (the sustained initiation interval)."""
        n = len(self.inputs)
        return (self.inputs[-1] - self.inputs[0]) / (n - 1) if n > 1 else 0.0


def unique_per_tile_chunk(cfg: FocusConfig, result) -> list[int]:
    """Roots of each tile-chunk in stream order (tile-major, chunk-minor), from a golden
    :class:`focus.sim.sic.SicResult`."""
    counts = []
    tokens = np.arange(cfg.tokens)
    for k in range(cfg.tiles):
        span = slice(k * cfg.tile_tokens, (k + 1) * cfg.tile_tokens)
        for c in range(cfg.chunks):
            roots = (result.root[c, span] == tokens[span]) & (result.unique_index[c, span] >= 0)
            counts.append(int(roots.sum()))
    return counts


class AlwaysReady:
    """A consumer that takes every beat when it is offered (the default of :func:`sic_cycles`)."""

    def map(self, i: int, edge: int) -> int:
        return edge

    def counters(self, n: int, edge: int) -> int:
        return edge

    def representative(self, q: int, n: int, edge: int) -> int:
        return edge


def sic_cycles(cfg: FocusConfig, unique: list[int], consumer=None) -> SicTiming:
    """Handshake cycles of one job whose tile-chunks have ``unique`` roots each (stream order).

    ``consumer`` (default :class:`AlwaysReady`) is asked, beat by beat and in each stream's order,
    when a beat offered at a cycle is taken: ``map(i, t)``, ``counters(n, t)`` (tile-chunk ``n``)
    and ``representative(q, n, t)`` (the job's ``q``-th, of tile-chunk ``n``) return the handshake
    cycle, at least ``t``. Counters beat ``n`` is asked after every representative of tile-chunk
    ``n - 1``, and tile-chunk ``n``'s representatives after counters beat ``n - 1``. A late consumer holds SIC back through its output queues' credit: the resolver
    takes vector ``i`` only after map beat ``i - MAP_DEPTH`` has left, a tile-chunk's last vector
    only after counters beat ``n - 2`` has left, and the emitter reads representative ``q`` only
    after representative ``q - REPRESENTATIVE_DEPTH`` has left (the bank read after ``s[n] + u *
    steps`` takes its queue entry). With an always-ready consumer
    these never bind and the recurrences are those of the module docstring.
    """
    consumer = consumer or AlwaysReady()
    TT = cfg.tile_tokens
    n_chunks = len(unique)
    total = n_chunks * TT
    ii = cfg.sic_interval
    latency, depth = comparator_latency(cfg), comparator_depth(cfg)
    steps = emit_steps(cfg)
    full_delay = steps + FULL_DELAY[cfg.representative]
    emit_delay = EMIT_DELAY[cfg.representative]

    a, r = [0] * total, [0] * total
    maps = [0] * total          # map handshakes
    counters: list[int] = []    # counters handshakes, filled by counters_until
    release = [0] * n_chunks
    reps: list[int] = []
    emitter_free = 0            # first cycle the emitter may start a bank
    emitted = 0                 # tile-chunks the emitter has finished

    def emit_until(limit_chunk: int):
        """Run the emitter over tile-chunks [emitted, limit_chunk), whose banks are complete."""
        nonlocal emitter_free, emitted
        while emitted < limit_chunk:
            n = emitted
            start = max(r[(n + 1) * TT - 1] + full_delay, emitter_free)
            if unique[n] == 0:
                release[n] = start
                emitter_free = start + 1
            else:
                read = start                     # the edge before the next representative's first bank read
                for u in range(unique[n]):
                    q = len(reps)
                    if q >= REPRESENTATIVE_DEPTH:    # its first read takes a queue entry
                        read = max(read, reps[q - REPRESENTATIVE_DEPTH])
                    offered = max(read + steps + emit_delay, reps[-1] + 1 if reps else 0)
                    reps.append(consumer.representative(q, n, offered))
                    read += steps
                release[n] = read
                emitter_free = release[n] + 1
            emitted += 1

    def counters_until(limit_chunk: int):
        """Counters handshakes of tile-chunks [len(counters), limit_chunk), all resolved."""
        while len(counters) < limit_chunk:
            n = len(counters)
            emit_until(n)                        # the consumer sees tile-chunk n - 1's representatives first
            offered = max(r[(n + 1) * TT - 1] + QUEUE_DELAY, counters[-1] + 1 if counters else 0)
            counters.append(consumer.counters(n, offered))

    for i in range(total):
        n, position = divmod(i, TT)
        if i:
            a[i] = max(a[i - 1] + ii, r[i - depth] + 1 if i >= depth else 0)
        r[i] = max(a[i] + latency, r[i - 1] + steps if i else 0)
        if position == 0 and n >= 2:
            emit_until(n - 1)                    # the bank of tile-chunk n-2 must be read out
            r[i] = max(r[i], release[n - 2] + 1)
        if i >= MAP_DEPTH:                       # map queue credit
            r[i] = max(r[i], maps[i - MAP_DEPTH] + 1)
        if position == TT - 1 and n >= 2:        # counters queue credit (two entries)
            counters_until(n - 1)
            r[i] = max(r[i], counters[n - 2] + 1)
        maps[i] = consumer.map(i, max(r[i] + QUEUE_DELAY, maps[i - 1] + 1 if i else 0))
    counters_until(n_chunks)
    emit_until(n_chunks)

    return SicTiming(inputs=a, map=maps, counters=counters, representatives=reps)
