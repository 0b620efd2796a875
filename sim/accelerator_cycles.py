"""Cycle model of the accelerator top (:class:`focus.hdl.accelerator.FocusAccelerator`): its done
beat's counters for a job, composed from the blocks' cycle models.

A pure function of the configuration, the job's mode and SEC use, and the golden model's counts
per tile-chunk: ``U`` (unique vectors), the non-zero tokens of every scatter lane (the members
beats, :func:`focus.sim.scatter.member_beats`) and the job's ``unique``/``similar``/``zero``. It
assumes what focus-run and the benchmark arrange (:func:`focus.tb.cocotb_accelerator.run_full_rate`):
one job from reset, every input offering its next beat on every edge from the command's, every
output always ready. Edges are numbered from the command handshake (edge 0); an event "at edge
``e``" is a handshake (or a flag sampled) at that rising edge.

Composition: each block keeps its own model, given per-beat arrival times and asked when its
consumer takes each beat.

``SEC``  (:func:`focus.sim.sec_cycles.job_cycles`): takes its descriptor at edge 1 and its status
         at ``e_s = 1 + job_cycles``; the first RUN edge is ``t0 = e_s + 1`` (``t0 = 1`` without SEC).
         ``sec_cycles = e_s``.
stage    the top zeroes pruned tokens in a one-beat register: token ``i`` is taken at
         ``tok[i] = max(tok[i-1] + 1, v[i-1])`` (``tok[0] = t0``) and offered downstream at
         ``tok[i] + 1``; ``v[i]`` is its handshake into SIC or the bypass.
SIC      (:func:`focus.sim.sic_cycles.sic_cycles`, edge 0 of that model = ``t0 + 1``): the
         stage offers every vector in time, so only the consumer (the pass buffer's writers, below)
         can hold it back, through SIC's output queues' credit.
bypass   (dense mode; :class:`~focus.hdl.accelerator.DenseBypass`, no block model before this
         one): three two-entry queues, so ``v[i] = max(tok[i] + 1, v[i-1] + 1, map[i-2] + 1,
         rep[i-2] + 1, counters[n-2] + 1)`` (vector ``i`` of tile-chunk ``n``); each beat is offered
         the edge after ``v``.
writers  (:class:`~focus.hdl.passbuffer.PassBuffer`, no block model before this one): the map
         writer takes a beat when offered unless the tile's bank still holds tile ``n - 2``
         (``F[n]``); the counters/representatives writer takes tile-chunk ``n``'s counters beat
         and its first representative from ``K[n-1] + 1``, where ``K[n] = max(counters[n],
         last representative of n) + 1`` is the edge at which ``n`` reads complete. Tile-chunk
         ``n`` is ready for the readers from ``RC[n] = max(last map beat + 2, K[n] + 1)``.
readers  (pass buffer) one per stream, each issuing a beat per edge into a four-entry credit
         queue, passes in :func:`focus.plans.tile_passes` order (tile 0 is the job's first):
         ``issue[j] = max(issue[j-1] + 1, take[j-4] + 1, RC[tile-chunk]`` (N-tile 0's passes, and
         the interleaved N-tiles' of tile 0), ``start[tile])``, ``start[n] = max(last issue of tile n-1 + 2, RC[first chunk] + 1)``;
         an activation and a members beat are offered ``issue + 3``. The bank of tile
         ``n`` is released when both readers have issued its last beat: ``F[n+2] = max(last issues)
         + 2``.
array    (:class:`focus.sim.array_model.ArrayTimeline`): activation ``j`` moves at
         ``max(offered, previous + 1, commit of its pass, partial[j - D] + 1)``, ``D = rows + cols
         + 5`` the result queue's credit; its partial row is offered ``rows + cols + 4`` later.
scatter  (:class:`focus.sim.scatter_cycles.ScatterTimeline`) with those partial rows and the
         members reader's beats as arrivals; the last result row's handshake ``E`` ends the job.

``F`` couples a tile to the replay of tile ``n - 2``: the model iterates (producer, then replay)
from ``F = 0`` until ``F`` no longer changes (every round settles two more tiles).

Counters, over RUN edges ``t0 .. E`` (``cycles = E``): ``array_busy`` the activation handshakes;
``drain = E - (last activation handshake)``; before that, an edge on which no activation is
offered is ``wait_sic`` and one on which it is offered and not taken ``wait_input`` once the
job's last weight tile has been committed (the weights port is then ready with nothing to offer)
and ``wait_scatter`` before; ``sic_cycles = (last counters handshake) - t0 + 1``;
``scatter_busy`` the members handshakes; ``row_adds``, ``unique``, ``similar``, ``zero`` from the
golden model's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from ..config import FocusConfig
from ..plans import PASS_QUEUE_DEPTH, array_fifo_depth, interleaved_n_tiles, tile_passes
from .array_model import ARRAY_RESULT_LATENCY, ArrayTimeline
from .job import Job
from .scatter_cycles import ScatterTimeline
from .sec_cycles import job_cycles as sec_job_cycles
from .sic_cycles import sic_cycles

__all__ = ["JobCounts", "AcceleratorTiming", "job_counts", "accelerator_cycles",
           "ACTIVATION_DELAY", "MEMBERS_DELAY", "BYPASS_DEPTH"]

#: Edges from a pass-buffer reader's issue to its activation being offered (memory read, read
#: data registered, queue).
ACTIVATION_DELAY = 3
#: Edges from a pass-buffer reader's issue to its members beat being offered (memory read, read
#: data registered, queue).
MEMBERS_DELAY = 3
#: Entries of each of the dense bypass's output queues.
BYPASS_DEPTH = 2

#: The done beat's counters, in :data:`focus.hdl.accelerator.COUNTER_NAMES` order.
COUNTER_NAMES = ("cycles", "sec_cycles", "sic_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input",
                 "drain", "scatter_busy", "row_adds", "unique", "similar", "zero")


@dataclass(frozen=True)
class JobCounts:
    """What the cycle model needs of a job: per tile-chunk (stream order) the unique vectors ``U``,
    the non-zero tokens ``Z`` and the members beats ``max(1, max_l Z_l)``; the N-tiles ``P``, the
    SEC score rows (0: SEC off) and the job's ``unique``/``similar``/``zero`` counters."""
    unique: tuple[int, ...]
    nonzero: tuple[int, ...]
    member_beats: tuple[int, ...]
    n_tiles: int
    sec_rows: int
    totals: dict


def job_counts(cfg: FocusConfig, job: Job, mode: str = "focus", n_out: int | None = None) -> JobCounts:
    """:class:`JobCounts` of ``job`` in ``mode`` from the golden model's unique indices
    (``n_out``: output columns, default the job's)."""
    from .accelerator import tile_chunk_counts
    if mode not in ("focus", "dense"):
        raise ValueError(f"mode={mode!r} is not allowed: focus or dense")
    TT, C, L = cfg.tile_tokens, cfg.chunks, cfg.scatter_lane_count
    U, Z = tile_chunk_counts(cfg, job, mode)
    beats = []
    for k in range(cfg.tiles):
        for c in range(C):
            if mode == "dense":
                live = np.ones(TT, dtype=bool)
            else:
                live = np.asarray(job.unique_index[c, k * TT:(k + 1) * TT]) >= 0
            beats.append(max(1, max(int(live[l::L].sum()) for l in range(L))))
    n_out = np.asarray(job.weights).shape[1] if n_out is None else n_out
    sec_rows = int(np.asarray(job.scores).shape[0] * np.asarray(job.scores).shape[1]) if job.pruned else 0
    if mode == "focus":
        totals = {key: int(job.counters[key]) for key in ("unique", "similar", "zero")}
    else:
        totals = {"unique": cfg.tokens * C, "similar": 0, "zero": 0}
    return JobCounts(tuple(int(u) for u in U), tuple(int(z) for z in Z), tuple(beats), ceil(n_out / cfg.cols),
                     sec_rows, totals)


@dataclass
class AcceleratorTiming:
    """The done beat's ``counters`` and the handshake edges behind them (edge 0: the command)."""
    counters: dict
    tokens: list = field(default_factory=list)          # token handshakes (the stage's input)
    map: list = field(default_factory=list)             # map beats into the pass buffer
    tile_counters: list = field(default_factory=list)   # counters beats into the pass buffer
    representatives: list = field(default_factory=list)
    activations: list = field(default_factory=list)     # activation handshakes (array input)
    members: list = field(default_factory=list)         # members handshakes (scatter input)
    partials: list = field(default_factory=list)        # partial-row handshakes (scatter input)
    results: list = field(default_factory=list)         # result-row handshakes
    rounds: int = 1                                     # iterations over the bank release times


class _Writers:
    """The pass buffer's two writers, taking a producer's beats (absolute edges)."""

    def __init__(self, cfg: FocusConfig, unique, free):
        self.TT, self.C = cfg.tile_tokens, cfg.chunks
        self.unique, self.free = unique, free
        n = len(unique)
        self.map = [0] * (n * self.TT)
        self.counters = [None] * n
        self.reps = [[] for _ in range(n)]
        self.complete = [None] * n                    # K[n]: the edge tile-chunk n reads complete

    def _complete(self, n):
        if n < 0:
            return -1
        if self.complete[n] is None:
            last = self.reps[n][-1] if self.unique[n] else -1
            if self.counters[n] is None or len(self.reps[n]) < self.unique[n]:
                raise RuntimeError(f"tile-chunk {n} is not written yet")
            self.complete[n] = max(self.counters[n], last) + 1
        return self.complete[n]

    def take_map(self, i, edge):
        edge = max(edge, self.free[i // (self.TT * self.C)])
        self.map[i] = edge
        return edge

    def take_counters(self, n, edge):
        edge = max(edge, self.free[n // self.C], self._complete(n - 1) + 1)
        self.counters[n] = edge
        return edge

    def take_rep(self, n, edge):
        edge = max(edge, self.free[n // self.C])
        if not self.reps[n]:
            edge = max(edge, self._complete(n - 1) + 1)
        self.reps[n].append(edge)
        return edge

    def ready(self, n):
        """RC[n]: the first edge at which the readers see tile-chunk n written."""
        return max(self.map[(n + 1) * self.TT - 1] + 2, self._complete(n) + 1)


class _ShiftedConsumer:
    """The writers seen from :func:`~focus.sim.sic_cycles.sic_cycles`, whose edge 0 is ``offset``."""

    def __init__(self, writers: _Writers, offset: int):
        self.w, self.offset = writers, offset

    def map(self, i, edge):
        return self.w.take_map(i, edge + self.offset) - self.offset

    def counters(self, n, edge):
        return self.w.take_counters(n, edge + self.offset) - self.offset

    def representative(self, q, n, edge):
        return self.w.take_rep(n, edge + self.offset) - self.offset


def _produce(cfg: FocusConfig, counts: JobCounts, mode: str, t0: int, free) -> tuple[_Writers, list]:
    """SIC (or the bypass) into the pass buffer's writers; returns the writers and token edges."""
    TT = cfg.tile_tokens
    n_chunks = len(counts.unique)
    unique = counts.unique if mode == "focus" else (TT,) * n_chunks
    writers = _Writers(cfg, unique, free)
    total = n_chunks * TT
    tokens, v = [0] * total, [0] * total
    if mode == "focus":
        timing = sic_cycles(cfg, list(unique), consumer=_ShiftedConsumer(writers, t0 + 1))
        v = [a + t0 + 1 for a in timing.inputs]
        for i in range(total):
            tokens[i] = t0 if i == 0 else max(tokens[i - 1] + 1, v[i - 1])
    else:
        maps, reps = [0] * total, [0] * total
        for i in range(total):
            n, position = divmod(i, TT)
            tokens[i] = t0 if i == 0 else max(tokens[i - 1] + 1, v[i - 1])
            edge = max(tokens[i] + 1, v[i - 1] + 1 if i else 0)
            if i >= BYPASS_DEPTH:
                edge = max(edge, maps[i - BYPASS_DEPTH] + 1, reps[i - BYPASS_DEPTH] + 1)
            if n >= BYPASS_DEPTH:
                edge = max(edge, writers.counters[n - BYPASS_DEPTH] + 1)
            v[i] = edge
            maps[i] = writers.take_map(i, max(edge + 1, maps[i - 1] + 1 if i else 0))
            reps[i] = writers.take_rep(n, max(edge + 1, reps[i - 1] + 1 if i else 0))
            if position == TT - 1:
                previous = writers.counters[n - 1] if n else -1
                writers.take_counters(n, max(edge + 1, previous + 1))
    return writers, tokens


def _replay(cfg: FocusConfig, counts: JobCounts, writers: _Writers, timing: AcceleratorTiming):
    """The pass buffer's readers, the array and the scatter over the job's passes; returns the
    bank release edges ``F`` they imply and the array (for its commits)."""
    TT, C, R, cols = cfg.tile_tokens, cfg.chunks, cfg.rows, cfg.cols
    P = counts.n_tiles
    depth = array_fifo_depth(cfg)
    latency = ARRAY_RESULT_LATENCY(R, cols)
    array, scatter = ArrayTimeline(R, cols), ScatterTimeline(cfg)
    acts, acts_offered, members = [], [], []
    a_issue, s_issue = [], []
    a_last = s_last = None
    free = [0] * cfg.tiles
    for tile in range(cfg.tiles):
        first = tile * C
        start = writers.ready(first) + 1
        a_start = max(start, a_last + 2 if a_last is not None else 0)
        s_start = max(start, s_last + 2 if s_last is not None else 0)
        # a job's first tile interleaves its first N-tiles (the RTL's ``pairing``)
        interleaved = interleaved_n_tiles(P, job_first=tile == 0)
        for nt, c in tile_passes(P, C, job_first=tile == 0):
            n = first + c
            ready = writers.ready(n) if nt == 0 or nt < interleaved else 0
            rows = max(counts.unique[n], 1)
            for u in range(rows):
                j = len(acts)
                issue = max(ready, a_start, a_issue[-1] + 1 if a_issue else 0,
                            acts[j - PASS_QUEUE_DEPTH] + 1 if j >= PASS_QUEUE_DEPTH else 0)
                a_issue.append(issue)
                offered = issue + ACTIVATION_DELAY
                acts_offered.append(offered)
                credit = scatter.partials[j - depth] + 1 if j >= depth else 0
                x = array.take(max(offered, credit), u == rows - 1)
                acts.append(x)
                scatter.partial(x + latency, u == rows - 1)
            for k in range(counts.member_beats[n]):
                j = len(members)
                issue = max(ready, s_start, s_issue[-1] + 1 if s_issue else 0,
                            members[j - PASS_QUEUE_DEPTH] + 1 if j >= PASS_QUEUE_DEPTH else 0)
                s_issue.append(issue)
                members.append(scatter.member(issue + MEMBERS_DELAY, k == counts.member_beats[n] - 1,
                                              end_tile=c == C - 1, swap=nt < interleaved))
        a_last, s_last = a_issue[-1], s_issue[-1]
        if tile + 2 < cfg.tiles:
            free[tile + 2] = max(a_last, s_last) + 2
    timing.activations, timing.members = acts, members
    timing.partials, timing.results = scatter.partials, scatter.results
    return free, array, acts_offered


def accelerator_cycles(cfg: FocusConfig, job: Job | JobCounts, mode: str = "focus",
                       n_out: int | None = None) -> AcceleratorTiming:
    """The counters (and handshake edges) of ``job`` in ``mode`` ("focus" or "dense") run alone
    from reset at full rate (see the module docstring). ``job``: a :class:`~focus.sim.job.Job`
    (``n_out`` output columns, default its weights') or its :class:`JobCounts`."""
    counts = job if isinstance(job, JobCounts) else job_counts(cfg, job, mode, n_out)
    if len(counts.unique) != cfg.tiles * cfg.chunks:
        raise ValueError(f"{len(counts.unique)} tile-chunks, the configuration has {cfg.tiles * cfg.chunks}")
    e_s = 1 + sec_job_cycles(cfg, counts.sec_rows) if counts.sec_rows else 0
    t0 = e_s + 1
    free = [0] * cfg.tiles
    for rounds in range(1, cfg.tiles + 3):
        writers, tokens = _produce(cfg, counts, mode, t0, free)
        timing = AcceleratorTiming(counters={}, rounds=rounds)
        new_free, array, offered = _replay(cfg, counts, writers, timing)
        if new_free == free:
            break
        free = [max(a, b) for a, b in zip(free, new_free)]
    else:
        raise RuntimeError("the bank release times did not settle")   # cannot happen: each round settles two tiles
    timing.tokens, timing.map, timing.tile_counters = tokens, writers.map, writers.counters
    timing.representatives = [e for reps in writers.reps for e in reps]

    acts = timing.activations
    end = timing.results[-1]
    last_commit = array.commit(len(array.ends) - 1)
    wait_sic = wait_scatter = wait_input = 0
    previous = t0 - 1
    for x, o in zip(acts, offered):
        head = max(o, previous + 1)              # the first edge this activation is offered
        wait_sic += head - previous - 1
        waiting = x - head                       # offered, not taken: edges head .. x - 1
        late = max(0, x - max(head, last_commit))
        wait_input += late
        wait_scatter += waiting - late
        previous = x
    P = counts.n_tiles
    c = {
        "cycles": end, "sec_cycles": e_s, "sic_cycles": writers.counters[-1] - t0 + 1,
        "array_busy": len(acts), "wait_sic": wait_sic, "wait_scatter": wait_scatter, "wait_input": wait_input,
        "drain": end - acts[-1], "scatter_busy": len(timing.members), "row_adds": P * sum(counts.nonzero),
        **counts.totals,
    }
    timing.counters = {name: int(c[name]) for name in COUNTER_NAMES}
    return timing
