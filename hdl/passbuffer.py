"""The pass buffer: one tile's concentrated form (representatives and map), replayed once per N-tile.

Between SIC and the array/scatter pair. It holds, per bank, one whole tile's compressed form:
for every K-chunk the representatives and the map, split into the scatter's lanes. While the array
and the scatter work through bank ``n mod 2`` (tile ``n``), SIC fills the other bank with tile
``n + 1``.

See :class:`PassBuffer` for the contract; docs/accelerator.md for why the loop order keeps a tile's
compressed form rather than a tile x N accumulator.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..plans import FIRST_TILE_GROUP, PASS_QUEUE_DEPTH, lane_rows
from .scatter import MemberBeat
from .sic import TileCounters
from .streams import CreditQueue, Framing, MapBeat, Vector, VectorBeat, index_shape
from .util import CollisionFreeReadPort, equals, index_range

__all__ = ["PassBuffer", "N_TILES_WIDTH"]

#: Width of the ``n_tiles`` input: up to 65535 N-tiles (passes over each tile-chunk) per job.
N_TILES_WIDTH = 16


class PassBuffer(wiring.Component):
    """Two banks of a tile's concentrated form; each tile replayed as ``n_tiles x chunks`` passes.

    ``C = cfg.chunks``, ``T = cfg.tile_tokens``, ``L = cfg.scatter_lane_count`` lanes, ``D =
    ceil(T / L)`` tokens per lane.

    Inputs (from SIC, or in dense mode from :class:`DenseBypass`), a tile's K-chunks in order
      ``counters``         :func:`~focus.hdl.sic.TileCounters`, one per tile-chunk: ``unique`` (how
                           many ``representatives`` beats belong to it) and ``base`` (the unique
                           index of its first root); ``end.tile`` ends the tile.
      ``representatives``  :func:`~focus.hdl.streams.VectorBeat`: per tile-chunk its ``unique``
                           vectors in unique order (none when ``unique = 0``); counted by
                           ``counters``, so its framing is not used. They may come before their
                           tile-chunk's counters beat (the dense bypass), at most ``T`` of them.
      ``map``              :func:`~focus.hdl.streams.MapBeat`: one per token of the tile-chunk in
                           raster order, ``end.chunk`` on its last, ``end.tile``/``end.job`` as on
                           the tile's last chunk. Only the index's sign is tested for a zero
                           vector (-1; no other index may be negative).
      ``n_tiles``          In, the job's N-tiles ``P = ceil(N / cols)``; held while a job runs.
    Outputs, per tile one **pass** per ``(nt, c)`` in :func:`focus.plans.tile_passes` order
    (``for nt in range(P): for c in range(C)``, except in a job's first tile, which interleaves
    N-tiles 0 and 1 chunk by chunk when ``P > 1``)
      ``activations``  :func:`~focus.hdl.streams.VectorBeat` to the array: the tile-chunk's
                       ``U = unique`` representatives in unique order (one zero vector when
                       ``U = 0``); ``end.chunk`` on the pass's last, ``end.tile`` also when ``c =
                       C-1``, ``end.job`` also when ``nt = P-1`` of the job's last tile.
      ``members``      :func:`~focus.hdl.scatter.MemberBeat` to the scatter: the tile-chunk's map
                       split into lanes (lane ``l``: the non-zero tokens ``t`` with ``t mod L = l`` in raster
                       order, slot ``row = t // L``, ``group = index - base``),
                       ``max(1, max_l Z_l)`` beats with the same ``end`` on the last: exactly
                       :func:`focus.sim.scatter.member_beats`; ``swap`` on the interleaved passes
                       (the scatter's next pass goes to the other accumulator set).
    Storage
      Representatives: one memory of ``2 * C * T`` vectors (bank, chunk, unique index). Lanes:
      ``L`` memories of ``2 * C * D`` entries (``row``, ``index``), each lane's list written in
      order. Per bank and chunk in flip-flops: ``U``, ``base``, the lane lengths and the pass's
      beat count. A bank is written by two independent writers (map side; counters and
      representatives side) and replayed by two independent readers (activations, members); a
      tile-chunk may be replayed for the first N-tile (the first two, interleaved, in a job's
      first tile) as soon as both writers have finished it (so those passes overlap SIC's work on
      the tile's later chunks), the later N-tiles once the whole tile is written; the bank is free
      again when both readers have finished.
    Timing
      Each reader issues one beat per cycle into a :class:`~focus.hdl.streams.CreditQueue` of
      ``PASS_QUEUE_DEPTH`` (activations and members alike: memory read, read data registered,
      then queue): passes follow each other without a gap, and a
      tile-chunk's map is closed (its lengths written into the tables) the cycle after its last map
      beat. A reader issues a tile's first beat at the earliest one edge after the tile's first
      tile-chunk is ready for the readers (both writers done with it, the map closed) and two edges
      after its own last issue of the previous tile; an activation and a members beat are offered
      three edges after their issue (:mod:`focus.sim.accelerator_cycles`, ``start`` and ``RC``). The
      writers take one beat per cycle.
    Reset
      Synchronous; empties both banks and forgets the tile in progress.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        self.lanes = cfg.scatter_lane_count
        self.lane_rows = lane_rows(cfg.tile_tokens, self.lanes)
        super().__init__({
            "counters": In(stream.Signature(TileCounters(cfg))),
            "representatives": In(stream.Signature(VectorBeat(cfg))),
            "map": In(stream.Signature(MapBeat(cfg))),
            "n_tiles": In(N_TILES_WIDTH),
            "activations": Out(stream.Signature(VectorBeat(cfg))),
            "members": Out(stream.Signature(MemberBeat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C, T, L, D = cfg.chunks, cfg.tile_tokens, self.lanes, self.lane_rows
        count_shape = range(T + 1)
        len_shape = range(D + 1)

        # per bank: written by the map side / the representatives side, read by each reader
        map_done = Signal(2)
        map_done_next = Signal(2)            # its value after this edge (assigned by both writers of it)
        reps_done = Signal(2)
        reps_done_next = Signal(2)           # its value after this edge (assigned by both writers of it)
        acts_done = Signal(2)
        members_done = Signal(2)
        job_last = Signal(2)                 # the bank's tile is the job's last
        # chunks of each bank written by both sides: the first N-tile's passes over a tile may start
        # on its first chunks while SIC is still concentrating the later ones
        # ready_chunks[b] = min(map chunks closed, representative chunks complete) in bank b, a
        # flip-flop: the compare and select in front of the readers' issue, into their positions'
        # enables, was late on a 75 MHz ULX3S-85F build (13.26 ns). It is kept without the two
        # counts: each grows by at most one a cycle (``map_chunk_closed``, ``reps_chunk_done``), so
        # the minimum grows by one when both do, or when the one that is behind does; which is
        # behind is the sign of a registered difference ``lead`` (map less representatives). The
        # counts' next values, compared and selected into it, were late on an 87.5 MHz build
        # (11.18 ns, seven LUTs).
        ready_chunks = Array(Signal(range(C + 1), name=f"ready_chunks{b}") for b in range(2))
        lead = [Signal(range(-C, C + 1), name=f"lead{b}") for b in range(2)]
        map_chunk_closed = Signal(2)
        reps_chunk_done = Signal(2)
        release = Signal(2)                  # both readers are done with the bank: it is free

        # per bank and chunk, in flip-flops
        def table(shape, name):
            return Array(Array(Signal(shape, name=f"{name}_{b}_{c}") for c in range(C)) for b in range(2))
        last_u_t = table(index_range(T), "last_u")       # max(U, 1) - 1: the activations' last index
        empty_t = table(1, "empty")                      # U = 0: the pass is one zero vector
        base_t = table(range(cfg.tokens + 1), "base")
        last_beat_t = table(index_range(D), "last_beat")
        lens_t = table(data.ArrayLayout(len_shape, L), "lens")

        # ---------------------------------------------------------------- map writer
        m_bank = Signal()
        m_chunk = Signal(index_range(C))
        lane = Signal(L, init=1)             # one-hot: the lane of the next map beat
        row = Signal(index_range(D))
        lens = Signal(data.ArrayLayout(len_shape, L))
        longest = Signal(len_shape)
        # at_top[l]: lane l's list is as long as the longest; a live token in such a lane makes the
        # longest grow by one (no L-way compare of lengths in the take's cycle)
        at_top = Signal(L, init=(1 << L) - 1)
        entry = data.StructLayout({"row": index_range(D), "index": index_shape(cfg)})
        lane_mems = []
        for l in range(L):
            mem = memory.Memory(shape=entry, depth=max(2 * C * D, 2), init=[], attrs={"no_rw_check": 1})
            m.submodules[f"lane{l}"] = mem
            lane_mems.append(mem)
        lane_writes = [mem.write_port() for mem in lane_mems]

        mp = self.map
        # ``map_open`` is ``~map_done[m_bank]`` as it will be after the edge, registered, so
        # ``map.ready`` is a flip-flop: the select of ``map_done`` by ``m_bank``, through SIC's
        # map queue into the lane lengths, was late on a 75 MHz ULX3S-85F build (13.55 ns).
        map_open = Signal(init=1)
        m_bank_next = Signal()
        m.d.comb += [m_bank_next.eq(m_bank), map_done_next.eq(map_done)]
        m.d.sync += [m_bank.eq(m_bank_next), map_done.eq(map_done_next)]
        m.d.comb += mp.ready.eq(map_open)
        take = mp.valid & mp.ready
        # map_open's next value: the writer's bank, or the other one after a tile's last beat, is
        # open when it is not done or is released now; both are selected by that beat alone (the
        # select by the bank's next value of the done bits' next values was seven LUTs from the
        # producer's queue level to map.ready, 11.25 ns on an 87.5 MHz ULX3S-85F build)
        take_tile = Signal()
        m.d.comb += take_tile.eq(take & mp.payload.end.chunk & mp.payload.end.tile)
        m.d.sync += map_open.eq(Mux(take_tile, ~map_done.bit_select(~m_bank, 1) | release.bit_select(~m_bank, 1),
                                    ~map_done.bit_select(m_bank, 1) | release.bit_select(m_bank, 1)))
        # The beat's payload comes from its producer's queue (an asynchronous LUT-RAM read, then the
        # top's SIC/dense multiplexer), so it enters the writer's state last and through one select:
        # every value the state may load is computed from registers alone (``*_live``: after a
        # non-zero token), and the beat's ``live`` bit, the index's sign (the producers send -1 for
        # a zero vector and never another negative index), picks between them and the state as it
        # is. (A compare of the whole index, then the lane's ``at_top`` select, the growth and the
        # lengths' multiplexers were the worst paths of an 80 MHz ULX3S-85F build, 12.39 ns.)
        live = Signal()
        m.d.comb += live.eq(~mp.payload.index[-1])
        top_hit = Signal()                   # the beat's lane is at the top
        m.d.comb += top_hit.eq((at_top & lane).any())
        lens_live = Signal.like(lens)
        at_top_live = Signal.like(at_top)
        longest_live = Signal(len_shape)
        m.d.comb += longest_live.eq(Mux(top_hit, longest + 1, longest))
        for l in range(L):
            lens_plus = Signal(len_shape, name=f"lens_plus{l}")
            reaches_top = Signal(name=f"reaches_top{l}")
            m.d.comb += [lens_plus.eq(lens[l] + 1), reaches_top.eq(lens_plus == longest)]
            m.d.comb += [
                lens_live[l].eq(Mux(lane[l], lens_plus, lens[l])),
                at_top_live[l].eq(Mux(top_hit, lane[l], Mux(lane[l], reaches_top, at_top[l]))),
                lane_writes[l].addr.eq((m_bank * C + m_chunk) * D + lens[l]),
                lane_writes[l].data.row.eq(row),
                lane_writes[l].data.index.eq(mp.payload.index),
                lane_writes[l].en.eq(take & live & lane[l]),
            ]
        lens_next = Signal.like(lens)
        longest_next = Signal(len_shape)
        m.d.comb += [lens_next.eq(Mux(live, lens_live, lens)), longest_next.eq(Mux(live, longest_live, longest))]
        # a finished tile-chunk's lengths go into the tables one cycle after its last map beat
        # (the "close"), and only then may the readers replay it
        close = Signal(data.StructLayout({"valid": 1, "bank": 1, "chunk": index_range(C),
                                          "lens": data.ArrayLayout(len_shape, L), "longest": len_shape}))
        m.d.sync += close.valid.eq(take & mp.payload.end.chunk)
        # the rest of close loads in every cycle (it matters only after a beat that sets close.valid):
        # no enable from the handshake (that enable was 10.53 ns on an 87.5 MHz ULX3S-85F build)
        m.d.sync += [close.bank.eq(m_bank), close.chunk.eq(m_chunk), close.lens.eq(lens_next),
                     close.longest.eq(longest_next)]
        with m.If(take):
            m.d.sync += [lens.eq(lens_next), longest.eq(longest_next), at_top.eq(Mux(live, at_top_live, at_top)),
                         lane.eq(lane.rotate_left(1))]
            with m.If(lane[L - 1]):
                m.d.sync += row.eq(row + 1)
            with m.If(mp.payload.end.chunk):
                m.d.sync += [
                    lens.eq(0), longest.eq(0), at_top.eq((1 << L) - 1), lane.eq(1), row.eq(0),
                    m_chunk.eq(m_chunk + 1),
                ]
                with m.If(mp.payload.end.tile):
                    m.d.sync += m_chunk.eq(0)
                    m.d.comb += m_bank_next.eq(~m_bank)
                    for b in range(2):
                        with m.If(m_bank == b):
                            m.d.sync += job_last[b].eq(mp.payload.end.job)
                            m.d.comb += map_done_next[b].eq(1)
        # the members reader's last beat index: max(1, longest) - 1
        close_last_beat = Signal(index_range(D))
        m.d.comb += close_last_beat.eq(Mux(close.longest.any(), close.longest - 1, 0))
        with m.If(close.valid):
            m.d.sync += [lens_t[close.bank][close.chunk].eq(close.lens),
                         last_beat_t[close.bank][close.chunk].eq(close_last_beat)]
            for b in range(2):
                with m.If(close.bank == b):
                    m.d.comb += map_chunk_closed[b].eq(1)

        # ---------------------------------------------------------------- counters + representatives writer
        # Representatives are written at (bank, chunk, u) as they come; the tile-chunk is complete
        # once its counters beat has been taken and ``unique`` representatives have arrived. SIC
        # sends the counters first; the dense bypass sends them with the last vector, after the
        # representatives: a tile-chunk takes at most ``T`` representatives before its counters.
        r_bank = Signal()
        r_chunk = Signal(index_range(C))
        seen = Signal()                       # the current tile-chunk's counters beat was taken
        r_u = Signal(range(T + 1))
        r_unique = Signal(count_shape)
        r_end_tile = Signal()
        m.submodules.reps = reps = memory.Memory(shape=Vector(cfg), depth=2 * C * T, init=[],
                                                 attrs={"no_rw_check": 1})
        reps_write = reps.write_port()
        counters, rep_in = self.counters, self.representatives
        # The handshake and the tables' write enables start at flip-flops: ``writable`` is
        # ``~reps_done[r_bank]`` registered (loaded from both signals' next values) and ``r_slot`` is
        # the one-hot of ``(r_bank, r_chunk)``, bit ``r_bank * C + r_chunk``. A select of
        # ``reps_done`` by ``r_bank`` and a decode of ``r_bank``/``r_chunk`` into the enables were
        # the only late inputs of a 75 MHz ULX3S-85F build (13.45 ns, five LUTs deep).
        writable = Signal(init=1)
        r_slot = Signal(2 * C, init=1)
        r_bank_next = Signal()
        m.d.comb += [r_bank_next.eq(r_bank), reps_done_next.eq(reps_done)]
        m.d.sync += [reps_done.eq(reps_done_next), writable.eq(~reps_done_next.bit_select(r_bank_next, 1))]
        complete = Signal()
        counters_take = Signal()
        m.d.comb += [
            complete.eq(seen & (r_u == r_unique)),
            counters.ready.eq(writable & ~seen),
            counters_take.eq(counters.valid & counters.ready),
            rep_in.ready.eq(writable & ~complete & Mux(seen, r_u < r_unique, r_u < T)),
            reps_write.addr.eq((r_bank * C + r_chunk) * T + r_u),
            reps_write.data.eq(rep_in.payload.data),
            reps_write.en.eq(rep_in.valid & rep_in.ready),
        ]
        # The tables follow the counters payload at the writer's slot until the beat is taken (and
        # hold it after): their enables are flip-flops alone (``writable``, ``seen``, ``r_slot``),
        # not the producer's ``valid`` through the handshake (that path, into 2 x C x 3 entries'
        # enables, was the latest group of an 87.5 MHz ULX3S-85F build, 11.47 ns). The slot's
        # entries are not read before its tile-chunk is complete, a cycle after the take at the
        # earliest, and the readers' ``registered_lookup`` reloads its entry every cycle.
        c = counters.payload
        for b in range(2):
            for ch in range(C):
                with m.If(writable & ~seen & r_slot[b * C + ch]):
                    m.d.sync += [last_u_t[b][ch].eq(Mux(c.unique.any(), c.unique - 1, 0)),
                                 empty_t[b][ch].eq(~c.unique.any()), base_t[b][ch].eq(c.base)]
        with m.If(counters_take):
            m.d.sync += [r_unique.eq(c.unique), r_end_tile.eq(c.end.tile), seen.eq(1)]
        with m.If(rep_in.valid & rep_in.ready):
            m.d.sync += r_u.eq(r_u + 1)
        with m.If(complete):
            m.d.sync += [seen.eq(0), r_u.eq(0), r_chunk.eq(r_chunk + 1), r_slot.eq(r_slot.rotate_left(1))]
            for b in range(2):
                with m.If(r_bank == b):
                    m.d.comb += reps_chunk_done[b].eq(1)
            with m.If(r_end_tile):
                m.d.sync += [r_chunk.eq(0), r_slot.eq(Mux(r_bank, 1, 1 << C))]
                m.d.comb += r_bank_next.eq(~r_bank)
                for b in range(2):
                    with m.If(r_bank == b):
                        m.d.comb += reps_done_next[b].eq(1)
        m.d.sync += r_bank.eq(r_bank_next)

        # ---------------------------------------------------------------- readers
        # P - 1, P > 1 and P = 2, registered: n_tiles is held while a job runs and first read a
        # tile-chunk later
        last_n_tile = Signal(N_TILES_WIDTH)
        several = Signal()
        two = Signal()
        m.d.sync += [last_n_tile.eq(self.n_tiles - 1), several.eq(self.n_tiles[1:].any()), two.eq(self.n_tiles == 2)]
        assert FIRST_TILE_GROUP == 2, "the readers interleave N-tiles 0 and 1 (one bit of nt)"

        class Position:
            """A reader's position (N-tile ``nt``, chunk ``c``): ``chunk``, whether it is replaying
            ``bank``, whether its tile is a job's first (``first``, set when it finishes a job's
            last tile) and whether it is interleaving N-tiles 0 and 1 there (``pairing``, from the
            tile's start to the pass ``(1, C-1)``: :func:`focus.plans.tile_passes`; ``odd`` is
            ``nt`` then). ``nt`` itself is kept as what the reader's steps need, in flip-flops:
            ``later`` (``nt > 0`` and not pairing, so the pass's tile-chunk is written: the whole
            tile is), ``left`` (``P - 1 - nt``) and ``at_last`` (``nt = P - 1``). Computed from
            ``nt`` (``nt.any()``, a 16-input OR, and a 16-bit compare with ``P - 1``), they were on
            the latest paths of an 87.5 MHz ULX3S-85F build, seven LUTs into the reader's issue,
            its position's enables and its last-index register."""

            def __init__(self, name, bank):
                self.bank = bank
                self.active = Signal(name=f"{name}_active")
                self.odd = Signal(name=f"{name}_odd")
                self.chunk = Signal(index_range(C), name=f"{name}_chunk")
                self.first = Signal(init=1, name=f"{name}_first")
                self.pairing = Signal(name=f"{name}_pairing")
                self.later = Signal(name=f"{name}_later")
                self.left = Signal(N_TILES_WIDTH, name=f"{name}_left")
                self.at_last = Signal(name=f"{name}_at_last")

        def registered_lookup(name, table_t, pos, step, write=None):
            """``table_t[bank][chunk]`` of the reader's position, as a register.

            The reader's last-beat compare then starts at a flip-flop instead of a 16-way table
            multiplexer (on the ECPIX-5 that multiplexer and compare, into the clock enables of
            the reader's position, was the worst path). The register follows the position: on
            ``step`` (the pass's last beat issued) it loads the next position's entry, otherwise
            the current one's, so it is right in every cycle the reader may issue, provided the
            table's entry was written before. ``write``, ``(valid, bank, chunk, value)`` of a
            table write in this cycle, is forwarded into the register; without it the entry must
            be written at least one cycle before the position becomes ready.
            """
            bank, chunk = pos.bank, pos.chunk
            last_chunk = equals(chunk, C - 1)
            wraps = last_chunk & pos.at_last
            # interleaving, N-tile 0's pass is followed by N-tile 1's over the same chunk
            next_chunk = Mux(pos.pairing & ~pos.odd, chunk, Mux(last_chunk, 0, chunk + 1))
            current = Signal.like(table_t[0][0], name=f"{name}_entry")
            following = Signal.like(table_t[0][0], name=f"{name}_next_entry")
            m.d.comb += [current.eq(table_t[bank][chunk]),
                         following.eq(Mux(wraps, table_t[~bank][0], table_t[bank][next_chunk]))]
            if write is not None:
                w_valid, w_bank, w_chunk, w_value = write
                with m.If(w_valid & (w_bank == bank) & (w_chunk == chunk)):
                    m.d.comb += current.eq(w_value)
                with m.If(w_valid & (w_bank == (bank ^ wraps)) & (w_chunk == next_chunk)):
                    m.d.comb += following.eq(w_value)
            entry = Signal.like(current, name=f"{name}_last")
            m.d.sync += entry.eq(Mux(step, following, current))
            return entry

        def advance(name, pos, issue, last_in_pass, done):
            """Step a reader after issuing its pass's beat (in :func:`focus.plans.tile_passes`
            order); at the tile's last, mark ``done``."""
            bank, chunk = pos.bank, pos.chunk
            last_chunk = equals(chunk, C - 1)
            with m.If(issue & last_in_pass):
                with m.If(pos.pairing & ~pos.odd):           # (0, c) -> (1, c)
                    m.d.sync += [pos.odd.eq(1), pos.left.eq(last_n_tile - 1), pos.at_last.eq(two)]
                with m.Elif(~last_chunk):                    # (1, c) -> (0, c + 1); (nt, c) -> (nt, c + 1)
                    m.d.sync += chunk.eq(chunk + 1)
                    with m.If(pos.pairing):
                        m.d.sync += [pos.odd.eq(0), pos.left.eq(last_n_tile), pos.at_last.eq(~several)]
                with m.Else():                               # the N-tile's last chunk: the next N-tile
                    m.d.sync += [chunk.eq(0), pos.odd.eq(0), pos.pairing.eq(0), pos.later.eq(1),
                                 pos.left.eq(pos.left - 1), pos.at_last.eq(equals(pos.left, 1))]
                    with m.If(pos.at_last):
                        m.d.sync += [pos.later.eq(0), pos.active.eq(0), bank.eq(~bank),
                                     pos.first.eq(job_last.bit_select(bank, 1))]
                        for b in range(2):
                            with m.If(bank == b):
                                m.d.sync += done[b].eq(1)
            # (activation: the position is (0, 0); P may be a new job's)
            with m.If(~pos.active & ready_chunks[bank].any() & ~done.bit_select(bank, 1)):
                m.d.sync += [pos.active.eq(1), pos.pairing.eq(pos.first & several),
                             pos.left.eq(last_n_tile), pos.at_last.eq(~several)]
            end = Signal(Framing, name=f"{name}_end")
            m.d.comb += [end.chunk.eq(last_in_pass), end.tile.eq(last_in_pass & last_chunk),
                         end.job.eq(last_in_pass & last_chunk & pos.at_last & job_last.bit_select(bank, 1))]
            return end

        # activations: representatives of (bank, chunk), one zero vector for an empty tile-chunk
        a_pos = Position("acts", Signal(name="a_bank"))
        a_bank, a_chunk = a_pos.bank, a_pos.chunk
        a_u = Signal(index_range(T))
        m.submodules.acts_queue = a_queue = CreditQueue(VectorBeat(cfg), PASS_QUEUE_DEPTH)
        a_empty = Signal()
        m.d.comb += a_empty.eq(empty_t[a_bank][a_chunk])
        a_issue, a_last = Signal(), Signal()
        # last_u_t is written with the counters beat, at least a cycle before the chunk is ready
        a_last_u = registered_lookup("acts", last_u_t, a_pos, a_issue & a_last)
        # a pass needs its tile-chunk written when it is N-tile 0's or interleaved
        m.d.comb += [a_issue.eq(a_pos.active & a_queue.admit & (a_pos.later | (a_chunk < ready_chunks[a_bank]))),
                     a_last.eq(a_u == a_last_u),
                     a_queue.start.eq(a_issue)]
        reps_read = CollisionFreeReadPort(m, reps, reps_write)
        m.d.comb += [reps_read.addr.eq((a_bank * C + a_chunk) * T + a_u), reps_read.en.eq(a_issue)]
        a_end = advance("acts", a_pos, a_issue, a_last, acts_done)
        with m.If(a_issue):
            m.d.sync += a_u.eq(Mux(a_last, 0, a_u + 1))
        # a1: the memory read; a2: its data registered as it leaves the block RAM (through the zero
        # select into the queue's storage it reached 11.88 ns on the ULX3S-85F, 54 inputs late)
        a1_valid, a1_zero, a1_end = Signal(), Signal(), Signal(Framing)
        m.d.sync += [a1_valid.eq(a_issue), a1_zero.eq(a_empty), a1_end.eq(a_end)]
        a2_valid, a2_zero, a2_end = Signal(), Signal(), Signal(Framing)
        a2_data = Signal.like(reps_read.data)
        m.d.sync += [a2_valid.eq(a1_valid), a2_zero.eq(a1_zero), a2_end.eq(a1_end), a2_data.eq(reps_read.data)]
        m.d.comb += [
            a_queue.w_stream.valid.eq(a2_valid),
            a_queue.w_stream.payload.data.eq(Mux(a2_zero, 0, a2_data)),
            a_queue.w_stream.payload.end.eq(a2_end),
        ]
        wiring.connect(m, a_queue.r_stream, wiring.flipped(self.activations))

        # members: lane lists of (bank, chunk), max(1, longest) beats
        s_pos = Position("members", Signal(name="s_bank"))
        s_bank, s_chunk = s_pos.bank, s_pos.chunk
        s_j = Signal(index_range(D + 1))
        m.submodules.members_queue = s_queue = CreditQueue(MemberBeat(cfg), PASS_QUEUE_DEPTH)
        s_issue, s_last = Signal(), Signal()
        # last_beat_t is written in the cycle the chunk becomes ready (the close): forwarded
        s_last_beat = registered_lookup("members", last_beat_t, s_pos, s_issue & s_last,
                                        write=(close.valid, close.bank, close.chunk, close_last_beat))
        m.d.comb += [s_issue.eq(s_pos.active & s_queue.admit & (s_pos.later | (s_chunk < ready_chunks[s_bank]))),
                     s_last.eq(s_j == s_last_beat),
                     s_queue.start.eq(s_issue)]
        s_end = advance("members", s_pos, s_issue, s_last, members_done)
        with m.If(s_issue):
            m.d.sync += s_j.eq(Mux(s_last, 0, s_j + 1))
        s1_valid, s1_end, s1_swap = Signal(), Signal(Framing), Signal()
        s1_lens = Signal(data.ArrayLayout(len_shape, L))
        s1_j = Signal.like(s_j)
        s1_base = Signal(range(cfg.tokens + 1))
        m.d.sync += [s1_valid.eq(s_issue), s1_end.eq(s_end), s1_swap.eq(s_pos.pairing), s1_base.eq(base_t[s_bank][s_chunk]),
                     s1_lens.eq(lens_t[s_bank][s_chunk]), s1_j.eq(s_j)]
        # s2: the lane lists' read data registered before the subtraction of the base
        s2 = Signal(data.StructLayout({"valid": 1, "end": Framing, "swap": 1, "slot_valid": L, "base": range(cfg.tokens + 1),
                                       "entries": data.ArrayLayout(entry, L)}))
        m.d.sync += [s2.valid.eq(s1_valid), s2.end.eq(s1_end), s2.swap.eq(s1_swap), s2.base.eq(s1_base)]
        m.d.sync += [s2.slot_valid[l].eq(s1_j < s1_lens[l]) for l in range(L)]
        beat = s_queue.w_stream.payload
        for l in range(L):
            read = CollisionFreeReadPort(m, lane_mems[l], lane_writes[l])
            m.d.comb += [read.addr.eq((s_bank * C + s_chunk) * D + s_j), read.en.eq(s_issue)]
            m.d.sync += s2.entries[l].eq(read.data)
            m.d.comb += [beat.slots[l].valid.eq(s2.slot_valid[l]),
                         beat.slots[l].row.eq(s2.entries[l].row),
                         beat.slots[l].group.eq(s2.entries[l].index - s2.base)]
        m.d.comb += [s_queue.w_stream.valid.eq(s2.valid), beat.end.eq(s2.end), beat.swap.eq(s2.swap)]
        wiring.connect(m, s_queue.r_stream, wiring.flipped(self.members))

        # ---------------------------------------------------------------- release
        for b in range(2):
            m.d.comb += release[b].eq(acts_done[b] & members_done[b])
            with m.If(release[b]):
                m.d.sync += [acts_done[b].eq(0), members_done[b].eq(0)]
                m.d.comb += [map_done_next[b].eq(0), reps_done_next[b].eq(0)]
        for b in range(2):
            # (a released bank is not written in the cycle it is released: its tile was whole)
            closed, done = map_chunk_closed[b], reps_chunk_done[b]
            grows = (closed & done) | (closed & lead[b][-1]) | (done & (lead[b] > 0))
            with m.If(release[b]):
                m.d.sync += [ready_chunks[b].eq(0), lead[b].eq(0)]
            with m.Else():
                m.d.sync += [ready_chunks[b].eq(ready_chunks[b] + grows), lead[b].eq(lead[b] + closed - done)]
        return m
