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

from amaranth.hdl import Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, enum, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..sim.sic import mean_reciprocals, mean_shift
from ..plans import MAP_DEPTH, REPRESENTATIVE_DEPTH, emit_steps
from .similarity import SimilarityComparator, wide_product
from .streams import CreditQueue, Framing, MapBeat, Vector, VectorBeat
from .util import CollisionFreeReadPort, equals, index_range
from .window import WindowHistory

__all__ = ["SimilarityConcentrator", "GroupTable", "GroupUpdate", "BankState", "TileCounters", "sum_shape"]


class BankState(enum.Enum, shape=2):
    """What a group-table bank holds."""
    FREE = 0        #: nothing: a tile-chunk may start filling it
    FILLING = 1     #: the groups of the tile-chunk being resolved
    FULL = 2        #: a complete tile-chunk, waiting for or being read by the emitter


def sum_shape(cfg: FocusConfig) -> Shape:
    """Signed running sum of one element over a group of up to ``tile_tokens`` members."""
    return Shape.cast(range(cfg.tile_tokens * cfg.data_min, cfg.tile_tokens * cfg.data_max + 1))


def TileCounters(cfg: FocusConfig) -> data.StructLayout:
    """Per tile-chunk: roots, vectors that matched a candidate, zero vectors (they add up to
    ``tile_tokens``), ``base``, the unique index of the tile-chunk's first root (so the scatter
    addresses the array's output rows with ``index - base``), and ``end``, the framing of the
    tile-chunk's last vector (``end.chunk`` always set)."""
    count = range(cfg.tile_tokens + 1)
    return data.StructLayout({"unique": count, "similar": count, "zero": count,
                              "base": range(cfg.tokens + 1), "end": Framing})


class SimilarityConcentrator(wiring.Component):
    """SIC for one stream of K-chunks: unique vectors, similarity map and counters, bit-exact with
    :func:`focus.sim.sic.concentrate` (docs/semantics.md).

    Input
      ``vectors`` (In stream of :func:`~focus.hdl.streams.VectorBeat`): a **job** is ``cfg.tiles *
      cfg.chunks`` tile-chunks, tile-major (tile 0 chunk 0, tile 0 chunk 1, ..., tile 1 chunk 0, ...);
      a tile-chunk is the ``cfg.tile_tokens`` vectors of one chunk of one tile in raster order
      (frame, row, column), framed (docs/streams.md): ``end.chunk`` on its last vector, ``end.tile``
      on the last of a tile's last chunk, ``end.job`` on the job's last vector. Pruned tokens arrive
      as zero vectors (all elements 0). Jobs follow each other back to back. The resolver takes
      tile-chunk, tile and job boundaries from the flags; the comparator's own raster counters
      (window presence at image edges and tile starts) assume whole tile-chunks.
    Outputs
      ``map`` (:func:`~focus.hdl.streams.MapBeat`): one beat per input vector, in input order: its
        unique index per the contract (roots numbered per chunk in stream order over the whole
        job), -1 for a zero vector; ``end`` copied from the vector.
      ``counters`` (:func:`TileCounters`): one beat per tile-chunk, after its last map beat, with
        the tile-chunk's ``end``.
      ``representatives`` (:func:`~focus.hdl.streams.VectorBeat`): per tile-chunk, its unique
        vectors in unique order (``cfg.representative``: the rounded mean of the group by
        reciprocal multiplication, or the root), after the tile-chunk's last vector has been
        resolved; the final one carries the tile-chunk's ``end``. A tile-chunk without unique
        vectors (all zero) sends none, so its flags appear only on ``map`` and ``counters``.
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
            "vectors": In(stream.Signature(VectorBeat(cfg))),
            "map": Out(stream.Signature(MapBeat(cfg))),
            "counters": Out(stream.Signature(TileCounters(cfg))),
            "representatives": Out(stream.Signature(VectorBeat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C, tile_tokens = cfg.chunks, cfg.tile_tokens

        m.submodules.comparator = comparator = SimilarityComparator(cfg)
        wiring.connect(m, wiring.flipped(self.vectors), comparator.vectors)
        result = comparator.results

        # ---------------------------------------------------------------- output queues
        m.submodules.map_queue = map_queue = fifo.SyncFIFO(width=MapBeat(cfg).size, depth=MAP_DEPTH)
        m.submodules.counters_queue = counters_queue = fifo.SyncFIFO(width=TileCounters(cfg).size, depth=2)
        wiring.connect(m, map_queue.r_stream, wiring.flipped(self.map))
        wiring.connect(m, counters_queue.r_stream, wiring.flipped(self.counters))

        # ---------------------------------------------------------------- resolver
        # boundaries come from the vectors' framing: ``first`` after an end.chunk, the chunk index
        # (for the per-chunk base) restarts after end.tile, the bases restart after end.job
        end = result.payload.end
        first = Signal(init=1)                            # the vector resolved next starts a tile-chunk
        first_tile = Signal(init=1)                       # ... in the job's first tile
        chunk = Signal(index_range(C))
        last = Signal()
        m.d.comb += last.eq(end.chunk)
        unique, similar, zero = (Signal(range(tile_tokens + 1), name=n) for n in ("unique", "similar", "zero"))
        bank = Signal()                                   # group-table bank of the current tile-chunk
        bank_free = Signal()

        consume, others_ready = Signal(), Signal()        # others: map, counters and bank ready
        m.d.comb += consume.eq(result.valid & result.ready)
        is_zero = result.payload.zero
        is_member = Signal()
        is_root = Signal()
        m.d.comb += [is_member.eq(~is_zero & (result.payload.best != 0)),
                     is_root.eq(~is_zero & equals(result.payload.best, 0))]

        # group ids (tile-chunk local) of the window's candidates, in the same delay-line shape
        id_width = max(1, (tile_tokens - 1).bit_length())
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
        # (depth at least 2: a one-row memory has no address bits)
        m.submodules.bases = bases = memory.Memory(shape=base_shape, depth=max(C, 2), init=[])
        base_write = bases.write_port()
        # The read (next chunk) and the write (this chunk) share an address only when C == 1; a
        # transparent read there only: elsewhere the bypass multiplexer would sit on the base path
        base_read = bases.read_port(transparent_for=(base_write,) if C == 1 else ())
        base = Signal(base_shape)
        m.d.comb += base.eq(Mux(first_tile, 0, base_read.data))
        next_chunk = Signal(index_range(C))
        m.d.comb += next_chunk.eq(Mux(end.tile, 0, chunk + 1))

        # Each count plus one comes from its register alone and the verdict only selects: the
        # verdict (the verdict queue's LUT-RAM read, then its decode) into an adder's carry chain
        # was late on a ULX3S-85F build at 85 MHz (``similar``, 11.93 ns)
        unique_total = Signal(range(tile_tokens + 1))
        similar_total = Signal.like(similar)
        zero_total = Signal.like(zero)
        for total, count, verdict in ((unique_total, unique, is_root), (similar_total, similar, is_member),
                                      (zero_total, zero, is_zero)):
            plus_one = Signal.like(total, name=f"{count.name}_plus_one")
            m.d.comb += [plus_one.eq(count + 1), total.eq(Mux(verdict, plus_one, count))]
        counts = Signal(TileCounters(cfg))
        m.d.comb += [
            counts.unique.eq(unique_total), counts.similar.eq(similar_total),
            counts.zero.eq(zero_total), counts.base.eq(base), counts.end.eq(end),
        ]
        # the map entry and the counters beat are queued in the cycle after the verdict is taken,
        # from registers, so no adder follows the candidates' id multiplexer in the verdict's cycle;
        # a queue's room counts the beat in the register (map_room, counters_room)
        resolved = Signal(data.StructLayout({"valid": 1, "last": 1, "zero": 1, "base": base_shape,
                                             "group": id_width, "end": Framing, "counts": TileCounters(cfg)}))
        m.d.sync += [resolved.valid.eq(consume), resolved.last.eq(consume & last), resolved.zero.eq(is_zero),
                     resolved.base.eq(base), resolved.group.eq(group), resolved.end.eq(end),
                     resolved.counts.eq(counts)]
        entry = Signal(MapBeat(cfg))
        map_room, counters_room = Signal(name="map_room"), Signal(name="counters_room")
        m.d.comb += [
            entry.index.eq(Mux(resolved.zero, -1, resolved.base + resolved.group)), entry.end.eq(resolved.end),
            map_queue.w_en.eq(resolved.valid), map_queue.w_data.eq(entry),
            counters_queue.w_en.eq(resolved.last), counters_queue.w_data.eq(resolved.counts),
            map_room.eq(map_queue.w_level + resolved.valid < MAP_DEPTH),
            counters_room.eq(counters_queue.w_level + resolved.last < counters_queue.depth),
            # (base + unique) + is_root: one carry chain after the verdict, not two
            base_write.addr.eq(chunk), base_write.data.eq((base + unique) + is_root),
            base_write.en.eq(consume & last),
            base_read.addr.eq(next_chunk), base_read.en.eq(consume & last),
        ]
        with m.If(consume):
            m.d.sync += first.eq(last)
            with m.If(last):
                m.d.sync += [unique.eq(0), similar.eq(0), zero.eq(0), bank.eq(~bank), chunk.eq(next_chunk)]
                with m.If(end.tile):
                    m.d.sync += first_tile.eq(end.job)
            with m.Else():
                m.d.sync += [unique.eq(unique_total), similar.eq(similar_total), zero.eq(zero_total)]

        # ---------------------------------------------------------------- group table
        m.submodules.groups = groups = GroupTable(cfg)
        wiring.connect(m, groups.representatives, wiring.flipped(self.representatives))
        update = groups.update
        m.d.comb += [
            bank_free.eq(Mux(bank, groups.free[1], groups.free[0])),
            others_ready.eq(map_room & (~last | counters_room) & (~first | bank_free)),
            update.valid.eq(result.valid & others_ready),
            result.ready.eq(others_ready & update.ready),
            update.payload.bank.eq(bank), update.payload.root.eq(is_root), update.payload.member.eq(is_member),
            update.payload.first.eq(first), update.payload.end.eq(end), update.payload.group.eq(group),
            update.payload.vector.eq(result.payload.vector), update.payload.unique.eq(unique_total),
        ]
        return m


def GroupUpdate(cfg: FocusConfig) -> data.StructLayout:
    """What the resolver tells the group table about one vector (``end.chunk``: the tile-chunk's last)."""
    return data.StructLayout({
        "bank": 1, "first": 1, "end": Framing, "root": 1, "member": 1,
        "group": index_range(cfg.tile_tokens),         # tile-chunk local unique index
        "vector": Vector(cfg),
        "unique": range(cfg.tile_tokens + 1),          # with end.chunk: the tile-chunk's root count
    })


class GroupTable(wiring.Component):
    """Per-group state of two tile-chunks (ping-pong banks) and the representatives' output.

    ``update`` (In stream of :func:`GroupUpdate`, one beat per vector in stream order) writes the
    vector's group into bank ``bank``: a root creates its entry, a member adds to it, a zero vector
    changes nothing. ``mean``: per group the element sums and the member count; a vector is written
    ``steps = vector_size / cfg.sic_mean_lanes`` lanes at a time, one step per cycle, and
    ``update.ready`` is low during a vector's steps but the last. Each step is a read-modify-write
    over three cycles: the bank word (and at the first step the count) is read in the step's cycle,
    registered in the next, and the sum written in the one after; a step whose word one of the two
    steps ahead of it is still writing takes that step's sum instead of the stale read, so members of
    one group on consecutive vectors add up for every ``steps``. ``root``: the root's vector, one
    cycle, always ready.

    After an update with ``end.chunk`` the bank holds a complete tile-chunk of ``unique`` groups
    (``mean``: it reads FULL from the cycle the last step writes, so the emitter's first read, a
    cycle later at the earliest, sees every sum) and the emitter reads it out, in unique order, onto
    ``representatives`` (:func:`~focus.hdl.streams.VectorBeat`, the update's ``end`` on the final
    one), one bank read per cycle: ``mean`` computes ``((2*(s + n*2^(d-1)) + n) * m[n]) >> S``
    minus ``2^(d-1)`` per element with ``m`` a ROM of ``tile_tokens + 1`` reciprocals
    (docs/semantics.md), ``cfg.sic_mean_lanes`` multipliers (each product as DSP-wide chunk
    products, registered, then their sum), ``steps`` cycles per representative; ``root`` sends the
    stored vector, one a cycle. SIC's representative leaves ``focus.sim.sic_cycles.EMIT_DELAY``
    cycles after its last bank read (8 for ``mean``, 2 for ``root``). ``free[b]`` is
    high while bank ``b`` holds nothing: an update with ``first`` may only go to a free bank (the
    resolver checks). A bank is free again in the cycle after its last entry was read. Exact
    timing: :mod:`focus.sim.sic_cycles`.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "update": In(stream.Signature(GroupUpdate(cfg))),
            "free": Out(2),
            "representatives": Out(stream.Signature(VectorBeat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        V, tile_tokens = cfg.vector_size, cfg.tile_tokens
        mean = cfg.representative == "mean"
        steps = emit_steps(cfg)                           # bank words per group (mean), 1 (root)
        lanes = V // steps

        m.submodules.queue = queue = CreditQueue(VectorBeat(cfg), REPRESENTATIVE_DEPTH)
        wiring.connect(m, queue.r_stream, wiring.flipped(self.representatives))

        state = [Signal(BankState, name=f"bank{b}_state") for b in range(2)]
        count = [Signal(range(tile_tokens + 1), name=f"bank{b}_count") for b in range(2)]
        ends = [Signal(Framing, name=f"bank{b}_end") for b in range(2)]   # the tile-chunk's framing
        m.d.comb += [self.free[b].eq(state[b] == BankState.FREE) for b in range(2)]

        # ---------------------------------------------------------------- update sequencer
        busy = Signal()                                   # a vector is being written
        current = Signal(GroupUpdate(cfg))
        step = Signal(index_range(steps))
        last_step = Signal()
        m.d.comb += [last_step.eq(equals(step, steps - 1)), self.update.ready.eq(~busy | last_step)]
        with m.If(self.update.valid & self.update.ready):
            m.d.sync += [busy.eq(1), current.eq(self.update.payload), step.eq(0)]
        with m.Elif(busy):
            with m.If(last_step):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += step.eq(step + 1)
        for b in range(2):
            with m.If(busy & current.first & equals(step, 0) & (current.bank == b)):
                m.d.sync += state[b].eq(BankState.FILLING)

        # ---------------------------------------------------------------- emitter control
        emit_bank, emit_active = Signal(), Signal()
        emit_u = Signal(index_range(tile_tokens))
        emit_g = Signal(index_range(steps))
        emit_count = Signal(range(tile_tokens + 1))
        issue, issue_last_g, issue_last_u = Signal(), Signal(), Signal()
        # a representative takes credit at its first bank read (it needs a queue entry when done)
        m.d.comb += [
            issue.eq(emit_active & (emit_g.any() | queue.admit)),
            queue.start.eq(issue & equals(emit_g, 0)),
            issue_last_g.eq(equals(emit_g, steps - 1)), issue_last_u.eq(emit_u == emit_count - 1),
        ]
        waiting = Signal()
        waiting_count = Signal(range(tile_tokens + 1))
        m.d.comb += [waiting.eq(Mux(emit_bank, state[1], state[0]) == BankState.FULL),
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
                    m.d.sync += state[b].eq(BankState.FREE)

        # the final representative of a bank carries the bank's framing, the others none
        e1 = Signal(data.StructLayout({"valid": 1, "bank": 1, "g": index_range(steps), "last_g": 1, "end": Framing}))
        m.d.sync += [e1.valid.eq(issue), e1.bank.eq(emit_bank), e1.g.eq(emit_g), e1.last_g.eq(issue_last_g),
                     e1.end.eq(Mux(issue_last_u, Mux(emit_bank, ends[1].as_value(), ends[0].as_value()), 0))]
        for b in range(2):
            with m.If(busy & current.end.chunk & (current.bank == b)):
                m.d.sync += ends[b].eq(current.end)

        if not mean:
            return self._roots(m, current, busy, state, count, emit_u, issue, emit_bank, e1, queue)

        # ---------------------------------------------------------------- mean: sums and counts
        # A step is a read-modify-write over three cycles: U0 (the sequencer's cycle) reads the bank
        # word and, at the vector's first step, the group's count; U1 registers what was read (the
        # block RAM's output is slow: only the bank's multiplexer follows it in its own cycle); U2
        # adds the lanes and writes. The read in U0 misses the writes of the two steps ahead of it
        # (in U1 and U2 at the time): U1 notes whether either is to the same word of the same bank,
        # and U2 then adds to that step's sum (``written``, the write of the previous cycle, or
        # ``written2``, of the one before) instead of the stale read, so consecutive members of one
        # group add up for every ``steps``.
        sums_shape = data.ArrayLayout(sum_shape(cfg), lanes)
        count_shape = range(tile_tokens + 1)
        step_layout = data.StructLayout({"valid": 1, "bank": 1, "write": 1, "first_step": 1, "last": 1, "root": 1,
                                         "addr": range(tile_tokens * steps), "group": index_range(tile_tokens),
                                         "x": data.ArrayLayout(signed(cfg.data_width), lanes),
                                         "unique": range(tile_tokens + 1)})
        g1, g2 = Signal(step_layout, name="g1"), Signal(step_layout, name="g2")    # the step in U1, in U2
        addr = Signal(range(tile_tokens * steps))
        m.d.comb += addr.eq(current.group * steps + step)
        m.d.sync += [
            g1.valid.eq(busy), g1.bank.eq(current.bank), g1.write.eq(current.root | current.member),
            g1.first_step.eq(equals(step, 0)), g1.last.eq(current.end.chunk & last_step), g1.root.eq(current.root),
            g1.addr.eq(addr), g1.group.eq(current.group), g1.unique.eq(current.unique),
            g2.eq(g1),
        ]
        if steps == 1:
            m.d.sync += g1.x.eq(current.vector)
        else:
            with m.Switch(step):
                for g in range(steps):
                    with (m.Case(g) if g < steps - 1 else m.Default()):
                        m.d.sync += [g1.x[i].eq(current.vector[g * lanes + i]) for i in range(lanes)]

        # U2: the step's new sums (and count, at a vector's first step), written to its bank
        read_sums, read_count = Signal(sums_shape, name="read_sums"), Signal(count_shape, name="read_count")
        from_written, from_written2 = Signal(name="from_written"), Signal(name="from_written2")
        old_sums, new_sums = Signal(sums_shape, name="old_sums"), Signal(sums_shape, name="new_sums")
        old_count, new_count = Signal(count_shape, name="old_count"), Signal(count_shape, name="new_count")
        writes = Signal()
        m.d.comb += writes.eq(g2.valid & g2.write)
        written_layout = data.StructLayout({"valid": 1, "bank": 1, "addr": range(tile_tokens * steps),
                                            "sums": sums_shape, "count": count_shape})
        written, written2 = Signal(written_layout, name="written"), Signal(written_layout, name="written2")
        m.d.sync += [written.valid.eq(writes), written.bank.eq(g2.bank), written.addr.eq(g2.addr),
                     written.sums.eq(new_sums), written.count.eq(new_count), written2.eq(written)]
        m.d.comb += [
            old_sums.eq(Mux(from_written, written.sums, Mux(from_written2, written2.sums, read_sums))),
            old_count.eq(Mux(from_written, written.count, Mux(from_written2, written2.count, read_count))),
            new_count.eq(Mux(g2.root, 1, old_count + 1)),
        ]
        m.d.comb += [new_sums[i].eq(Mux(g2.root, g2.x[i], old_sums[i] + g2.x[i])) for i in range(lanes)]

        sum_reads, count_reads = [], []
        for b in range(2):
            sums = memory.Memory(shape=sums_shape, depth=max(tile_tokens * steps, 2), init=[],
                                 attrs={"no_rw_check": 1})
            counts = memory.Memory(shape=count_shape, depth=max(tile_tokens, 2), init=[], attrs={"no_rw_check": 1})
            m.submodules[f"sums{b}"], m.submodules[f"counts{b}"] = sums, counts
            sum_write, count_write = sums.write_port(), counts.write_port()
            # a read of the word written at the same edge is replaced by ``written2`` (below)
            sum_read = CollisionFreeReadPort(m, sums, sum_write)
            count_read = CollisionFreeReadPort(m, counts, count_write)
            mine = busy & (current.bank == b)
            emitting = issue & (emit_bank == b)
            m.d.comb += [
                sum_read.addr.eq(Mux(mine, addr, emit_u * steps + emit_g)),
                sum_read.en.eq(mine | emitting),
                count_read.addr.eq(Mux(mine, current.group, emit_u)),
                count_read.en.eq((mine & equals(step, 0)) | (emitting & equals(emit_g, 0))),
                sum_write.addr.eq(g2.addr), sum_write.data.eq(new_sums),
                sum_write.en.eq(writes & (g2.bank == b)),
                count_write.addr.eq(g2.group), count_write.data.eq(new_count),
                count_write.en.eq(writes & g2.first_step & (g2.bank == b)),
            ]
            # the emitter's first read of this bank comes a cycle after FULL: after the last write
            with m.If(g1.valid & g1.last & (g1.bank == b)):
                m.d.sync += [state[b].eq(BankState.FULL), count[b].eq(g1.unique)]
            sum_reads.append(sum_read)
            count_reads.append(count_read)

        # U1: the word as read, and whether the step in U2 (written next cycle) or the write of this
        # cycle is to the same word (the same step of the same group, so at a first step the same
        # count as well): in U2 those are ``written`` and ``written2``
        m.d.sync += [
            read_sums.eq(Mux(g1.bank, sum_reads[1].data, sum_reads[0].data)),
            read_count.eq(Mux(g1.bank, count_reads[1].data, count_reads[0].data)),
            from_written.eq(writes & (g2.bank == g1.bank) & (g2.addr == g1.addr)),
            from_written2.eq(written.valid & (written.bank == g1.bank) & (written.addr == g1.addr)),
        ]

        # ---------------------------------------------------------------- mean: the emitter's arithmetic
        # E1: this step's sums; at a group's first step its count n, and the look-up of m[n]
        d = cfg.data_width
        shift = mean_shift(cfg)
        m.submodules.reciprocals = reciprocals = memory.Memory(
            shape=unsigned(shift), depth=tile_tokens + 1, init=[int(v) for v in mean_reciprocals(cfg)])
        rom = reciprocals.read_port()
        e1_count = Signal(range(tile_tokens + 1))
        m.d.comb += [e1_count.eq(Mux(e1.bank, count_reads[1].data, count_reads[0].data)),
                     rom.addr.eq(e1_count), rom.en.eq(e1.valid & equals(e1.g, 0))]
        e2 = Signal(data.StructLayout({"valid": 1, "g": index_range(steps), "last_g": 1, "end": Framing,
                                       "sums": sums_shape}))
        members = Signal(range(tile_tokens + 1))          # n of the group being emitted
        m.d.sync += [e2.valid.eq(e1.valid), e2.g.eq(e1.g), e2.last_g.eq(e1.last_g), e2.end.eq(e1.end),
                     e2.sums.eq(Mux(e1.bank, sum_reads[1].data, sum_reads[0].data))]
        with m.If(e1.valid & equals(e1.g, 0)):
            m.d.sync += members.eq(e1_count)

        # E2: x = 2*(s + n*2^(d-1)) + n (offset binary, never negative), registered with m[n] (the
        # block RAM's output is slow: registered before it reaches a multiplier); E2b, E2c: x * m[n]
        # as products of m[n]'s 18-bit chunks (one DSP block each), operands and products
        # registered; E2d: their sum
        x_width = (tile_tokens * ((1 << (d + 1)) - 1)).bit_length()
        bias = 1 << (d - 1)
        e2b = Signal(data.StructLayout({"valid": 1, "g": index_range(steps), "last_g": 1, "end": Framing,
                                        "x": data.ArrayLayout(unsigned(x_width), lanes),
                                        "reciprocal": unsigned(shift)}))
        m.d.sync += [e2b.valid.eq(e2.valid), e2b.g.eq(e2.g), e2b.last_g.eq(e2.last_g), e2b.end.eq(e2.end),
                     e2b.reciprocal.eq(rom.data)]
        m.d.sync += [e2b.x[i].eq((((e2.sums[i] + members * bias) << 1) + members).as_unsigned())
                     for i in range(lanes)]
        products = [wide_product(m, e2b.reciprocal, e2b.x[i], f"product_{i}", platform=platform)
                    for i in range(lanes)]
        step_meta = data.StructLayout({"valid": 1, "g": index_range(steps), "last_g": 1, "end": Framing})
        e2c, e2d, e3 = Signal(step_meta, name="e2c"), Signal(step_meta, name="e2d"), Signal(step_meta, name="e3")
        m.d.sync += [e2c.valid.eq(e2b.valid), e2c.g.eq(e2b.g), e2c.last_g.eq(e2b.last_g), e2c.end.eq(e2b.end),
                     e2d.eq(e2c), e3.eq(e2d)]

        # E3: r = (x*m[n] >> S) - 2^(d-1) into the vector being assembled; E4: queue it
        assembly = Signal(Vector(cfg))
        e4_valid, e4_end = Signal(), Signal(Framing)
        m.d.sync += [e4_valid.eq(e3.valid & e3.last_g), e4_end.eq(e3.end)]
        for g in range(steps):
            with m.If(e3.valid & equals(e3.g, g)):
                m.d.sync += [assembly[g * lanes + i].eq((products[i] >> shift) - bias) for i in range(lanes)]
        m.d.comb += [queue.w_stream.payload.data.eq(assembly), queue.w_stream.payload.end.eq(e4_end),
                     queue.w_stream.valid.eq(e4_valid)]
        return m

    def _roots(self, m, current, busy, state, count, emit_u, issue, emit_bank, e1, queue):
        """``root``: each bank stores the roots' vectors; the emitter sends them as they are."""
        cfg = self.cfg
        reads = []
        for b in range(2):
            table = memory.Memory(shape=Vector(cfg), depth=max(cfg.tile_tokens, 2), init=[])
            m.submodules[f"roots{b}"] = table
            write, read = table.write_port(), table.read_port()
            mine = busy & (current.bank == b)
            m.d.comb += [
                write.addr.eq(current.group), write.data.eq(current.vector), write.en.eq(mine & current.root),
                read.addr.eq(emit_u), read.en.eq(issue & (emit_bank == b)),
            ]
            with m.If(mine & current.end.chunk):
                m.d.sync += [state[b].eq(BankState.FULL), count[b].eq(current.unique)]
            reads.append(read)
        m.d.comb += [queue.w_stream.payload.data.eq(Mux(e1.bank, reads[1].data, reads[0].data)),
                     queue.w_stream.payload.end.eq(e1.end), queue.w_stream.valid.eq(e1.valid)]
        return m
