"""Similarity concentrator (SIC): the comparator, the group table, the representatives, the map.

Block diagram (one clock domain, credit or ready/valid between the parts)::

    vectors ─► SimilarityComparator ─► resolver ─┬─► map queue ───────────────► map
                (history, norms,       (group ids,│
                 7 candidates, best)    counters) ├─► counters queue ──────────► counters
                                                  └─► group table ─► emitter ─► representatives
                                                      (2 banks:       (mean by reciprocal,
                                                       ping-pong)      or the root)

See :class:`SimilarityConcentrator` for the contract and docs/sic.md for the design notes.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..sim.sic import mean_reciprocals, mean_shift
from .similarity import SimilarityComparator, Vector
from .util import equals, index_range
from .window import WindowHistory

__all__ = ["SimilarityConcentrator", "GroupTable", "GroupUpdate", "MapEntry", "Representative", "TileCounters",
           "index_shape", "sum_shape", "MAP_DEPTH", "REPRESENTATIVE_DEPTH"]

#: Entries of the map output queue.
MAP_DEPTH = 4
#: Entries of the representatives output queue (covers the emitter's pipeline at one beat a cycle).
REPRESENTATIVE_DEPTH = 6

FREE, FILLING, FULL = 0, 1, 2


def _signed_bits(lo: int, hi: int) -> int:
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


def index_shape(cfg: FocusConfig):
    """Signed unique index: 0 .. tokens-1, or -1 for a zero vector."""
    return signed(_signed_bits(-1, cfg.tokens - 1))


def sum_shape(cfg: FocusConfig):
    """Signed running sum of one element over a group of up to ``tile_tokens`` members."""
    return signed(_signed_bits(cfg.tile_tokens * cfg.data_min, cfg.tile_tokens * cfg.data_max))


def MapEntry(cfg: FocusConfig) -> data.StructLayout:
    """One similarity-map entry: the vector's unique index (job-wide per chunk, -1 for a zero vector);
    ``last`` marks the tile-chunk's final vector."""
    return data.StructLayout({"index": index_shape(cfg), "last": 1})


def Representative(cfg: FocusConfig) -> data.StructLayout:
    """One unique vector as the array computes with it; ``last`` marks the tile-chunk's final one."""
    return data.StructLayout({"vector": Vector(cfg), "last": 1})


def TileCounters(cfg: FocusConfig) -> data.StructLayout:
    """Per tile-chunk: roots, vectors that matched a candidate, zero vectors (they add up to
    ``tile_tokens``) and ``base``, the unique index of the tile-chunk's first root (so the scatter
    addresses the array's output rows with ``index - base``)."""
    count = range(cfg.tile_tokens + 1)
    return data.StructLayout({"unique": count, "similar": count, "zero": count,
                              "base": range(cfg.tokens + 1)})


class SimilarityConcentrator(wiring.Component):
    """SIC for one stream of K-chunks: unique vectors, similarity map and counters, bit-exact with
    :func:`focus.sim.sic.concentrate` (docs/semantics.md).

    Input
      ``vectors`` (In stream of :func:`focus.hdl.similarity.Vector`): a **job** is ``cfg.tiles *
      cfg.chunks`` tile-chunks, tile-major (tile 0 chunk 0, tile 0 chunk 1, ..., tile 1 chunk 0, ...);
      a tile-chunk is the ``cfg.tile_tokens`` vectors of one chunk of one tile in raster order
      (frame, row, column). Pruned tokens arrive as zero vectors (all elements 0). Jobs follow each
      other back to back; the block counts positions itself (no framing bits).
    Outputs
      ``map`` (:func:`MapEntry`): one beat per input vector, in input order: its unique index per
        the contract (roots numbered per chunk in stream order over the whole job), -1 for a zero
        vector.
      ``counters`` (:func:`TileCounters`): one beat per tile-chunk, after its last map beat.
      ``representatives`` (:func:`Representative`): per tile-chunk, its unique vectors in unique
        order (``cfg.representative``: the rounded mean of the group by reciprocal multiplication,
        or the root), after the tile-chunk's last vector has been resolved; ``last`` on the final
        one. A tile-chunk without unique vectors (all zero) sends none; its counters say so.
    Throughput and latency
      The comparator's initiation interval ``cfg.sic_interval`` (1 at full rate); the
      representatives of a tile-chunk stream out at ``vector_size / cfg.sic_mean_lanes`` cycles each
      (``root``: 1) while the next tile-chunk is being concentrated. Exact cycle counts:
      :mod:`focus.sim.sic_cycles`.
    Buffering
      Two group-table banks (ping-pong): tile-chunk ``n`` fills one while the other is read out for
      tile-chunk ``n - 1``. Tile-chunk ``n + 1`` waits (its first vector is not resolved) until the
      representatives of ``n - 1`` have all been read from their bank.
    Reset
      Synchronous; drops every vector, map entry, counter and representative in flight; the next
      vector is the first of a new job.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "vectors": In(stream.Signature(Vector(cfg))),
            "map": Out(stream.Signature(MapEntry(cfg))),
            "counters": Out(stream.Signature(TileCounters(cfg))),
            "representatives": Out(stream.Signature(Representative(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        V, C, N = cfg.vector_size, cfg.chunks, cfg.tile_tokens
        vec = Vector(cfg)

        m.submodules.comparator = comparator = SimilarityComparator(cfg)
        wiring.connect(m, wiring.flipped(self.vectors), comparator.vectors)
        result = comparator.results

        # ---------------------------------------------------------------- output queues
        m.submodules.map_queue = map_queue = fifo.SyncFIFO(width=MapEntry(cfg).size, depth=MAP_DEPTH)
        m.submodules.counters_queue = counters_queue = fifo.SyncFIFO(width=TileCounters(cfg).size, depth=2)
        for port, queue in ((self.map, map_queue), (self.counters, counters_queue)):
            m.d.comb += [port.valid.eq(queue.r_rdy), port.payload.eq(queue.r_data), queue.r_en.eq(port.ready)]

        # ---------------------------------------------------------------- resolver
        position = Signal(index_range(N))                       # of the vector being resolved, in its tile-chunk
        chunk = Signal(index_range(C))
        tile = Signal(index_range(cfg.tiles))
        first, last = Signal(), Signal()
        m.d.comb += [first.eq(equals(position, 0)), last.eq(equals(position, N - 1))]
        unique, similar, zero = (Signal(range(N + 1), name=n) for n in ("unique", "similar", "zero"))
        bank = Signal()                                   # group-table bank of the current tile-chunk
        bank_free = Signal()

        consume = Signal()
        m.d.comb += [
            result.ready.eq(map_queue.w_rdy & (~last | counters_queue.w_rdy) & (~first | bank_free)),
            consume.eq(result.valid & result.ready),
        ]
        is_zero = result.payload.zero
        is_member = Signal()
        is_root = Signal()
        m.d.comb += [is_member.eq(~is_zero & (result.payload.best != 0)),
                     is_root.eq(~is_zero & equals(result.payload.best, 0))]

        # group ids (tile-chunk local) of the window's candidates, in the same delay-line shape
        id_width = max(1, (N - 1).bit_length())
        m.submodules.ids = ids = WindowHistory(cfg, id_width)
        matched_id = Signal(id_width)
        with m.Switch(result.payload.best):
            for i, (index, *_) in enumerate(cfg.candidates):
                with (m.Case(index) if i < len(cfg.candidates) - 1 else m.Default()):
                    m.d.comb += matched_id.eq(ids.taps[i])
        group = Signal(id_width)
        m.d.comb += [
            group.eq(Mux(is_member, matched_id, unique)),
            ids.advance.eq(consume), ids.record.eq(group),
        ]

        # base: unique index of the tile-chunk's first root; per chunk, 0 in the job's first tile
        base_shape = unsigned(max(1, cfg.tokens.bit_length()))
        m.submodules.bases = bases = memory.Memory(shape=base_shape, depth=max(C, 2), init=[])   # depth 1 has no address bits
        base_write = bases.write_port()
        base_read = bases.read_port(transparent_for=(base_write,))
        base = Signal(base_shape)
        m.d.comb += base.eq(Mux(equals(tile, 0), 0, base_read.data))
        next_chunk = Signal(index_range(C))
        m.d.comb += next_chunk.eq(Mux(equals(chunk, C - 1), 0, chunk + 1))

        unique_total = Signal(range(N + 1))
        m.d.comb += unique_total.eq(unique + is_root)
        entry = Signal(MapEntry(cfg))
        counts = Signal(TileCounters(cfg))
        m.d.comb += [
            entry.index.eq(Mux(is_zero, -1, base + group)), entry.last.eq(last),
            map_queue.w_en.eq(consume), map_queue.w_data.eq(entry),
            counts.unique.eq(unique_total), counts.similar.eq(similar + is_member),
            counts.zero.eq(zero + is_zero), counts.base.eq(base),
            counters_queue.w_en.eq(consume & last), counters_queue.w_data.eq(counts),
            base_write.addr.eq(chunk), base_write.data.eq(base + unique_total),
            base_write.en.eq(consume & last),
            base_read.addr.eq(next_chunk), base_read.en.eq(consume & last),
        ]
        with m.If(consume):
            with m.If(last):
                m.d.sync += [position.eq(0), unique.eq(0), similar.eq(0), zero.eq(0), bank.eq(~bank),
                             chunk.eq(next_chunk)]
                with m.If(equals(chunk, C - 1)):
                    m.d.sync += tile.eq(Mux(equals(tile, cfg.tiles - 1), 0, tile + 1))
            with m.Else():
                m.d.sync += [position.eq(position + 1), unique.eq(unique_total),
                             similar.eq(similar + is_member), zero.eq(zero + is_zero)]

        # ---------------------------------------------------------------- group table
        m.submodules.groups = groups = GroupTable(cfg)
        m.d.comb += bank_free.eq(Mux(bank, groups.free[1], groups.free[0]))
        wiring.connect(m, groups.representatives, wiring.flipped(self.representatives))
        m.d.sync += [
            groups.update.valid.eq(consume), groups.update.bank.eq(bank), groups.update.root.eq(is_root),
            groups.update.member.eq(is_member), groups.update.first.eq(first), groups.update.last.eq(last),
            groups.update.group.eq(group), groups.update.vector.eq(result.payload.vector),
            groups.update.unique.eq(unique_total),
        ]
        return m


def GroupUpdate(cfg: FocusConfig) -> data.StructLayout:
    """What the resolver tells the group table about one vector (``valid`` marks a vector)."""
    return data.StructLayout({
        "valid": 1, "bank": 1, "first": 1, "last": 1, "root": 1, "member": 1,
        "group": index_range(cfg.tile_tokens),         # tile-chunk local unique index
        "vector": Vector(cfg),
        "unique": range(cfg.tile_tokens + 1),          # with last: the tile-chunk's root count
    })


class GroupTable(wiring.Component):
    """Per-group state of two tile-chunks (ping-pong banks) and the representatives' output.

    ``update`` (In :func:`GroupUpdate`, no handshake: one vector per cycle at most) writes the
    group of one vector into bank ``update.bank``: a root creates its entry, a member adds to it
    (``mean``: element sums and member count, a read-modify-write in 2 cycles whose read port is
    transparent, so members of one group on consecutive cycles add up; ``root``: the root vector,
    members change nothing). With ``last`` the bank holds a complete tile-chunk of ``unique``
    groups and the emitter reads it out, groups in unique order, onto ``representatives``
    (:func:`Representative`, ``last`` on the final one): ``mean``: ``((2*(s + n*2^(d-1)) + n) *
    m[n]) >> S`` minus ``2^(d-1)`` per element with ``m`` a ROM of ``tile_tokens + 1`` reciprocals
    (docs/semantics.md), ``cfg.sic_mean_lanes`` multipliers, ``vector_size / sic_mean_lanes``
    cycles per representative, 5 cycles from the bank read to the queue; ``root``: the stored
    vector, one a cycle, 2 cycles. ``free[b]`` is high while bank ``b`` holds nothing: an update
    with ``first`` may only go to a free bank. A bank is free again in the cycle after its last
    entry was read.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "update": In(GroupUpdate(cfg)),
            "free": Out(2),
            "representatives": Out(stream.Signature(Representative(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        V, N = cfg.vector_size, cfg.tile_tokens
        update = self.update

        m.submodules.queue = queue = fifo.SyncFIFO(width=Representative(cfg).size, depth=REPRESENTATIVE_DEPTH)
        m.d.comb += [self.representatives.valid.eq(queue.r_rdy), self.representatives.payload.eq(queue.r_data),
                     queue.r_en.eq(self.representatives.ready)]

        state = [Signal(2, name=f"bank{b}_state") for b in range(2)]
        count = [Signal(range(N + 1), name=f"bank{b}_count") for b in range(2)]
        m.d.comb += [self.free[b].eq(equals(state[b], FREE)) for b in range(2)]
        for b in range(2):
            with m.If(update.valid & update.first & (update.bank == b)):
                m.d.sync += state[b].eq(FILLING)

        # emitter control: which bank, which group, which lanes of it
        steps = V // cfg.sic_mean_lanes if cfg.representative == "mean" else 1
        emit_bank, emit_active = Signal(), Signal()
        emit_u = Signal(index_range(N))
        emit_g = Signal(index_range(steps))
        emit_count = Signal(range(N + 1))
        outstanding = Signal(range(REPRESENTATIVE_DEPTH + 1))      # representatives issued, not yet taken
        issue, taken, issue_last_g, issue_last_u = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            issue.eq(emit_active & (emit_g.any() | (outstanding != REPRESENTATIVE_DEPTH))),
            taken.eq(self.representatives.valid & self.representatives.ready),
            issue_last_g.eq(equals(emit_g, steps - 1)), issue_last_u.eq(emit_u == emit_count - 1),
        ]
        m.d.sync += outstanding.eq(outstanding + (issue & equals(emit_g, 0)) - taken)
        waiting = Signal()
        waiting_count = Signal(range(N + 1))
        m.d.comb += [waiting.eq(Mux(emit_bank, state[1], state[0]) == FULL),
                     waiting_count.eq(Mux(emit_bank, count[1], count[0]))]
        release = Signal()                                # the emit bank's last read is issued (or none)
        with m.If(~emit_active & waiting):
            with m.If(equals(waiting_count, 0)):
                m.d.comb += release.eq(1)
            with m.Else():
                m.d.sync += [emit_active.eq(1), emit_u.eq(0), emit_g.eq(0), emit_count.eq(waiting_count)]
        with m.If(issue):
            with m.If(issue_last_g):
                m.d.sync += [emit_g.eq(0), emit_u.eq(emit_u + 1)]
                with m.If(issue_last_u):
                    m.d.comb += release.eq(1)
                    m.d.sync += emit_active.eq(0)
            with m.Else():
                m.d.sync += emit_g.eq(emit_g + 1)
        with m.If(release):
            m.d.sync += emit_bank.eq(~emit_bank)
            for b in range(2):
                with m.If(emit_bank == b):
                    m.d.sync += state[b].eq(FREE)

        e1 = Signal(data.StructLayout({"valid": 1, "bank": 1, "g": index_range(steps), "last_g": 1, "last_u": 1}))
        m.d.sync += [e1.valid.eq(issue), e1.bank.eq(emit_bank), e1.g.eq(emit_g),
                     e1.last_g.eq(issue_last_g), e1.last_u.eq(issue_last_u)]

        # the two banks: updates read/write the filling bank, the emitter reads the full one
        if cfg.representative == "mean":
            entry = data.StructLayout({"sums": data.ArrayLayout(sum_shape(cfg), V), "count": range(N + 1)})
        else:
            entry = Vector(cfg)
        g1 = Signal(GroupUpdate(cfg))
        m.d.sync += g1.eq(update)
        reads = []
        for b in range(2):
            table = memory.Memory(shape=entry, depth=max(N, 2), init=[])
            m.submodules[f"bank{b}"] = table
            write = table.write_port()
            mine = update.valid & (update.bank == b)
            if cfg.representative == "mean":
                # read-modify-write: read in the update's cycle, write one cycle later
                read = table.read_port(transparent_for=(write,))
                m.d.comb += [
                    read.addr.eq(Mux(mine, update.group, emit_u)),
                    read.en.eq(mine | (issue & (emit_bank == b))),
                    write.addr.eq(g1.group),
                    write.en.eq(g1.valid & (g1.root | g1.member) & (g1.bank == b)),
                    write.data.count.eq(Mux(g1.root, 1, read.data.count + 1)),
                ]
                m.d.comb += [write.data.sums[i].eq(Mux(g1.root, g1.vector[i], read.data.sums[i] + g1.vector[i]))
                             for i in range(V)]
                done = g1
            else:
                read = table.read_port()
                m.d.comb += [
                    read.addr.eq(emit_u), read.en.eq(issue & (emit_bank == b)),
                    write.addr.eq(update.group), write.data.eq(update.vector), write.en.eq(mine & update.root),
                ]
                done = update
            with m.If(done.valid & done.last & (done.bank == b)):
                m.d.sync += [state[b].eq(FULL), count[b].eq(done.unique)]
            reads.append(read)
        e1_entry = Signal(entry)
        m.d.comb += e1_entry.eq(Mux(e1.bank, reads[1].data, reads[0].data))

        if cfg.representative == "root":
            rep = Signal(Representative(cfg))
            m.d.comb += [rep.vector.eq(e1_entry), rep.last.eq(e1.last_u),
                         queue.w_en.eq(e1.valid), queue.w_data.eq(rep)]
            return m

        # mean. E1: the entry of group u; this step's lanes; look up m[n]
        d = cfg.data_width
        lanes = V // steps
        shift = mean_shift(cfg)
        m.submodules.reciprocals = reciprocals = memory.Memory(
            shape=unsigned(shift), depth=N + 1, init=[int(v) for v in mean_reciprocals(cfg)])
        rom = reciprocals.read_port()
        m.d.comb += [rom.addr.eq(e1_entry.count), rom.en.eq(e1.valid)]
        e2 = Signal(data.StructLayout({"valid": 1, "g": index_range(steps), "last_g": 1, "last_u": 1,
                                       "count": range(N + 1), "sums": data.ArrayLayout(sum_shape(cfg), lanes)}))
        m.d.sync += [e2.valid.eq(e1.valid), e2.g.eq(e1.g), e2.last_g.eq(e1.last_g), e2.last_u.eq(e1.last_u),
                     e2.count.eq(e1_entry.count)]
        if steps == 1:
            m.d.sync += [e2.sums[i].eq(e1_entry.sums[i]) for i in range(lanes)]
        else:
            with m.Switch(e1.g):
                for g in range(steps):
                    with (m.Case(g) if g < steps - 1 else m.Default()):
                        m.d.sync += [e2.sums[i].eq(e1_entry.sums[g * lanes + i]) for i in range(lanes)]

        # E2: x = 2*(s + n*2^(d-1)) + n (offset binary, never negative), times m[n]
        x_width = (N * ((1 << (d + 1)) - 1)).bit_length()
        bias = 1 << (d - 1)
        e3 = Signal(data.StructLayout({"valid": 1, "g": index_range(steps), "last_g": 1, "last_u": 1,
                                       "products": data.ArrayLayout(unsigned(x_width + shift), lanes)}))
        m.d.sync += [e3.valid.eq(e2.valid), e3.g.eq(e2.g), e3.last_g.eq(e2.last_g), e3.last_u.eq(e2.last_u)]
        for i in range(lanes):
            x = Signal(unsigned(x_width), name=f"x_{i}")
            m.d.comb += x.eq((((e2.sums[i] + e2.count * bias) << 1) + e2.count).as_unsigned())
            m.d.sync += e3.products[i].eq(x * rom.data)

        # E3: r = (x*m[n] >> S) - 2^(d-1) into the vector being assembled; E4: queue it
        assembly = Signal(Vector(cfg))
        e4_valid, e4_last = Signal(), Signal()
        m.d.sync += [e4_valid.eq(e3.valid & e3.last_g), e4_last.eq(e3.last_u)]
        for g in range(steps):
            with m.If(e3.valid & equals(e3.g, g)):
                m.d.sync += [assembly[g * lanes + i].eq((e3.products[i] >> shift) - bias) for i in range(lanes)]
        rep = Signal(Representative(cfg))
        m.d.comb += [rep.vector.eq(assembly), rep.last.eq(e4_last), queue.w_en.eq(e4_valid), queue.w_data.eq(rep)]
        return m
