"""Scatter accumulator: adds each array pass's partial rows into the accumulator rows of the
groups' member tokens, over a tile's K-chunks, and emits the tile's N-tile block.

Block diagram (``L`` lanes, two partial banks, two accumulator sets of ``L`` banks)::

    partials ─► partial banks ═══ L read ports ══╗
                (2 x tile_tokens rows, ping-pong)  ║  lane l: acc[set][l][row] += partial[group]
    members ──────────────────────────────────────╨─► accumulator set 0 / set 1 (ping-pong by N-tile)
                                                         │ one row per cycle, token order
                                                         ▼
                                                  results queue ─► results

See :class:`ScatterAccumulator` for the contract and :mod:`focus.sim.scatter` for the golden model.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..plans import SCATTER_QUEUE_DEPTH, lane_rows
from .streams import CreditQueue, Framing, ResultBeat
from .util import CollisionFreeReadPort, equals, index_range

__all__ = ["MemberSlot", "MemberBeat", "PartialRow", "AccumulatorRow", "ScatterAccumulator", "COUNTER_WIDTH"]

#: Width of the ``busy_cycles`` and ``row_adds`` counters.
COUNTER_WIDTH = 32

#: Columns per accumulator memory (each with its own read address register) when a lane has at
#: most ``LUT_RAM_ROWS`` rows; deeper lanes keep one memory per lane with a synchronous read port
#: (block RAM registers its read address inside the block).
ACC_GROUP_COLUMNS = 2
#: Depth of an ECP5 LUT RAM (DPR16X4).
LUT_RAM_ROWS = 16
#: Lanes per group of the emission's first multiplexer stage: the row of the read's lane and set
#: among a group's lanes is selected and registered, then the group's on the way into the queue.
EMISSION_GROUP_LANES = 4


def MemberSlot(cfg: FocusConfig) -> data.StructLayout:
    """One lane's slot of a members beat: ``valid``, ``row`` (the token's accumulator row in its lane,
    ``t // L``) and ``group`` (its tile-chunk local group index, the partial row to add). ``row``
    and ``group`` are at least one bit wide (:func:`~focus.hdl.util.index_range`)."""
    rows = lane_rows(cfg.tile_tokens, cfg.scatter_lane_count)
    return data.StructLayout({"valid": 1, "row": index_range(rows), "group": index_range(cfg.tile_tokens)})


def MemberBeat(cfg: FocusConfig) -> data.StructLayout:
    """A members beat: ``slots`` (``cfg.scatter_lane_count`` x :func:`MemberSlot`, lane 0 in the
    low bits), ``end`` (:data:`~focus.hdl.streams.Framing`) and ``swap`` (1 on every beat of a pass
    whose next pass accumulates into the other set although this one has no ``end.tile``:
    interleaved N-tile blocks). :func:`focus.sim.scatter.member_beats` builds them from a
    tile-chunk's map."""
    return data.StructLayout({"slots": data.ArrayLayout(MemberSlot(cfg), cfg.scatter_lane_count),
                              "end": Framing, "swap": 1})


def PartialRow(cfg: FocusConfig) -> data.ArrayLayout:
    """A partial row as the partial banks store it: ``cfg.cols`` signed ``cfg.dot_width(vector_size)``
    values (one K-chunk dot product each), sign-extended to ``acc_width`` when read."""
    return data.ArrayLayout(signed(cfg.dot_width(cfg.vector_size)), cfg.cols)


def AccumulatorRow(cfg: FocusConfig) -> data.ArrayLayout:
    """An accumulator row as the accumulator banks store it: ``cfg.cols`` signed
    ``cfg.acc_width_needed`` (``dot_width(hidden)``) sums. A token gets at most one partial per
    K-chunk of its tile, so its sum is a ``hidden``-term dot product and fits; results are
    sign-extended to ``acc_width``."""
    return data.ArrayLayout(signed(cfg.acc_width_needed), cfg.cols)


class ScatterAccumulator(wiring.Component):
    """Scatter-adds the array's partial rows into per-token accumulators and emits each tile's
    N-tile blocks; bit-exact with :func:`focus.sim.scatter.scatter_block`.

    Stream order (the accelerator top's loop): per tile, per N-tile (the job's ``n_tiles``), per
    K-chunk: one **pass**; the passes of two N-tile blocks may interleave (the top's first tile of a
    job, :func:`focus.plans.tile_passes`), as long as the blocks complete in order and ``swap``
    says when the next pass belongs to the other block. ``L = cfg.scatter_lane_count`` lanes, ``T = cfg.tile_tokens`` tokens a
    tile, ``R = ceil(T / L)`` accumulator rows per lane; lane ``l`` owns the tokens ``t`` with
    ``t mod L == l``, in row ``t // L``.

    Ports
      ``partials``   In stream of :func:`~focus.hdl.streams.ResultBeat`: per pass ``max(U, 1)`` rows,
                     row ``u`` = group ``u``'s partial result (a pass with ``U = 0`` sends one dummy
                     row). ``end.chunk`` on the pass's last row; nothing else of ``end`` is used. The
                     values must be ``vector_size``-term dot products of ``data_width`` values: the
                     banks keep their low ``cfg.dot_width(vector_size)`` bits (sign-extended when
                     read). At most ``T`` rows a pass.
      ``members``    In stream of :func:`MemberBeat`: the pass's map, lane-split
                     (:func:`focus.sim.scatter.member_beats`), ``max(1, max_l Z_l)`` beats, the last
                     with the pass's ``end`` flags (``end.chunk``; ``end.tile`` on the pass of each
                     N-tile's last chunk; ``end.job`` on the job's last pass). Slot ``l`` adds
                     partial row ``group`` into lane ``l``'s accumulator row ``row`` of the
                     lanes' set: the other set after each pass with ``end.tile`` or ``swap``.
      ``results``    Out stream of :func:`~focus.hdl.streams.ResultBeat`: after each pass with
                     ``end.tile``, the block: ``T`` rows in token order (raster within the tile),
                     row ``t`` = the sum over the N-tile's passes of partial row ``group`` of ``t``
                     (0 if ``t`` had no valid slot), signed ``acc_width`` (exact: the sum of one
                     partial per K-chunk is a ``hidden``-term dot product, which the banks hold in
                     ``cfg.acc_width_needed`` bits, :func:`AccumulatorRow`); ``end.chunk`` and
                     ``end.tile`` on the block's last row, ``end.job`` too if its pass had it.
      ``busy_cycles``, ``row_adds``  Out, ``COUNTER_WIDTH`` bits: members beats taken (cycles the
                     lanes worked) and valid slots among them (token-row additions) in the current
                     job; they restart at the first beat after one with ``end.job`` (so after a job
                     they hold its totals until the next job begins), wrap, and clear on reset.
                     Over a job ``row_adds`` is ``n_tiles`` times docs/semantics.md's scatter
                     rows (each N-tile adds every non-zero vector's ``cols``-wide row once).

    Partial banks
      One memory of ``2T`` rows of :func:`PartialRow`: pass ``i`` is written into half ``i mod 2``
      (row ``u`` at ``u`` plus ``T`` for half 1), one row per cycle, while the lanes read pass
      ``i - 1`` from the other half. It has one write port and ``L`` synchronous read ports, one per
      lane (synthesis replicates it ``L`` times: ``L`` copies of ``2T x cols x dot_width``).
      ``partials.ready`` is low while the half the next row goes to still holds a pass the lanes
      have not finished; a half is free again the cycle after its pass's last members beat.
    Accumulators
      Two sets (ping-pong by N-tile block: block ``k`` in set ``k mod 2``), each ``L`` lanes of ``R`` rows of
      :func:`AccumulatorRow` (``cols x acc_width_needed``), one write port and one read port each,
      the read transparent to the write. With ``R <= LUT_RAM_ROWS`` (LUT RAM, read through a
      fabric register) a lane is ``ceil(cols / ACC_GROUP_COLUMNS)`` memories side by side, each
      read through its own copy of the registered read address and an asynchronous read, and
      written through its own copies of stage 3's write address and enable, so a copy per few
      columns sits by its RAMs; deeper lanes: one memory each, a synchronous read port.
      Plus per set a flip-flop bit per token, "touched": an
      untouched row reads as 0, so nothing is ever cleared in the memories; an emission's last read
      clears its set's bits (in the next edge, before the lanes can use them).
    Lanes
      A members beat is taken when its pass is complete in its partial half and its accumulator set
      is not holding an unemitted block. Edge ``n`` (the handshake): each valid slot reads its
      partial row (read port ``l``); edge ``n + 1``: the partial row (block-RAM read data) is
      registered, the slot reads its accumulator row in both sets and registers the row's touched
      bit; edge ``n + 2``: the row to add is registered: ``touched ? acc : 0``, or, when the
      previous beat writes the same set and row in this edge, that beat's sum (forwarded: the
      memory does not hold it yet), and the row is marked touched; edge ``n + 3``: the sum
      ``row + partial`` (one adder per lane, shared by the sets) is written. The read port's
      transparency to the write of its own edge, the forwarding and the touched bit's forwarding
      make updates of one row on consecutive beats (across passes) add up. One beat per cycle,
      ``L`` read-modify-writes.
    Emission
      A block is complete ``DONE_DELAY`` edges after its ``end.tile`` members beat: the edge its
      last sums are written, in which the emission's first read address is registered (the read
      sees the memory after it). Then one accumulator row per cycle is read (``T`` reads, token
      order: lane ``t mod L``, row ``t // L``) while the lanes accumulate the next block into the
      other set; each read reaches ``results`` ``RESULT_DELAY`` edges later (the read; per group
      of ``EMISSION_GROUP_LANES`` lanes, the row of the read's lane and set registered; then the
      read's group's row into the queue) through a queue of
      ``focus.plans.SCATTER_QUEUE_DEPTH`` with credit, so backpressure on ``results`` stalls the
      reads, never loses a row. The lanes stall only when both sets hold blocks. Exact timing:
      :mod:`focus.sim.scatter_cycles`.
    Reset
      Synchronous: forgets every partial, members beat, touched bit, block and queued result and
      the counters; the next beats are the first of a new job. Memories are not reset.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        self.lanes = cfg.scatter_lane_count
        self.lane_rows = lane_rows(cfg.tile_tokens, self.lanes)
        super().__init__({
            "partials": In(stream.Signature(ResultBeat(cfg))),
            "members": In(stream.Signature(MemberBeat(cfg))),
            "results": Out(stream.Signature(ResultBeat(cfg))),
            "busy_cycles": Out(COUNTER_WIDTH),
            "row_adds": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        T, L, R, cols = cfg.tile_tokens, self.lanes, self.lane_rows, cfg.cols
        partials, members = self.partials, self.members

        # ---------------------------------------------------------------- partial banks
        m.submodules.partial_banks = banks = memory.Memory(
            shape=PartialRow(cfg), depth=2 * T, init=[],
            # the lanes read a half only while the writer cannot write it (a read in the same cycle
            # as a write to the same row is discarded): synthesis needs no collision logic
            attrs={"no_rw_check": 1})
        bank_write = banks.write_port()
        bank_reads = [CollisionFreeReadPort(m, banks, bank_write) for _ in range(L)]
        full = [Signal(name=f"partial_full{b}") for b in range(2)]     # half b holds a pass not yet read
        wbank = Signal()                                               # half the next partial row goes to
        rbank = Signal()                                               # half the lanes read
        w_row = Signal(index_range(T))
        p_take = Signal()
        m.d.comb += [
            partials.ready.eq(~Mux(wbank, full[1], full[0])),
            p_take.eq(partials.valid & partials.ready),
            bank_write.addr.eq(Mux(wbank, w_row + T, w_row)),
            bank_write.en.eq(p_take),
        ]
        m.d.comb += [bank_write.data[i].eq(partials.payload.data[i]) for i in range(cols)]
        with m.If(p_take):
            with m.If(partials.payload.end.chunk):
                m.d.sync += [w_row.eq(0), wbank.eq(~wbank)]
            with m.Else():
                m.d.sync += w_row.eq(w_row + 1)

        # ---------------------------------------------------------------- accumulator sets
        acc_row = AccumulatorRow(cfg)
        # With R <= LUT_RAM_ROWS (LUT RAM, whose read address is a routed fabric register) a set's
        # lane is ceil(cols / ACC_GROUP_COLUMNS) memories side by side, each read through its own
        # copy of the registered read address (``kept_acc_raddr*``, kept apart in synthesis by
        # focus.hdl.util.KEEP_COPIES) and an asynchronous read: together the transparent synchronous
        # read port they stand for. A copy per few columns can sit by its RAMs, where one per lane
        # reached across the lane's cols x acc bits (on the ULX3S-85F a 9.6 ns route). Deeper lanes:
        # one memory each with a synchronous read port (block RAM holds its read address inside).
        lut_ram = R <= LUT_RAM_ROWS
        groups = ([range(c, min(c + ACC_GROUP_COLUMNS, cols)) for c in range(0, cols, ACC_GROUP_COLUMNS)]
                  if lut_ram else [range(cols)])
        acc_raddr = [[Signal(range(max(R, 2)), name=f"acc_raddr{s}_{l}") for l in range(L)] for s in range(2)]
        acc_rdata = [[Signal(acc_row, name=f"acc_rdata{s}_{l}") for l in range(L)] for s in range(2)]
        acc_writes = [[[] for _ in range(L)] for _ in range(2)]      # (write port, its columns)
        touched = [[Signal(R, name=f"touched{s}_{l}") for l in range(L)] for s in range(2)]
        for s in range(2):
            for l in range(L):
                for g, columns in enumerate(groups):
                    acc = memory.Memory(shape=data.ArrayLayout(acc_row.elem_shape, len(columns)),
                                        depth=max(R, 2), init=[])
                    m.submodules[f"acc{s}_{l}_{g}"] = acc
                    write = acc.write_port()
                    acc_writes[s][l].append((write, columns))
                    if lut_ram:
                        read = acc.read_port(domain="comb")
                        address = Signal.like(acc_raddr[s][l], name=f"kept_acc_raddr{s}_{l}_{g}",
                                              reset_less=True)
                        m.d.sync += address.eq(acc_raddr[s][l])
                        m.d.comb += read.addr.eq(address)
                    else:
                        read = acc.read_port(transparent_for=(write,))
                        m.d.comb += read.addr.eq(acc_raddr[s][l])
                    m.d.comb += [acc_rdata[s][l][c].eq(read.data[i]) for i, c in enumerate(columns)]
        held = [Signal(name=f"held{s}") for s in range(2)]            # set s holds a block not yet emitted
        held_job = [Signal(name=f"held_job{s}") for s in range(2)]    # ... which ends the job
        complete = [Signal(name=f"complete{s}") for s in range(2)]    # ... whose last beat has written
        aset = Signal()                                                # set the lanes accumulate into

        # ---------------------------------------------------------------- lanes: stage 0 (reads)
        m_take = Signal()
        m.d.comb += [
            members.ready.eq(Mux(rbank, full[1], full[0]) & ~Mux(aset, held[1], held[0])),
            m_take.eq(members.valid & members.ready),
        ]
        slots = members.payload.slots
        for l in range(L):
            m.d.comb += [bank_reads[l].addr.eq(Mux(rbank, slots[l].group + T, slots[l].group))]
        with m.If(m_take & members.payload.end.chunk):
            m.d.sync += rbank.eq(~rbank)
            for b in range(2):
                with m.If(rbank == b):
                    m.d.sync += full[b].eq(0)
            with m.If(members.payload.end.tile | members.payload.swap):
                m.d.sync += aset.eq(~aset)
        for b in range(2):                                             # after the release: same-cycle wins
            with m.If(p_take & partials.payload.end.chunk & (wbank == b)):
                m.d.sync += full[b].eq(1)

        # ---------------------------------------------------------------- lanes: stage 1 (accumulator reads)
        s1 = Signal(data.StructLayout({"valid": 1, "set": 1, "end": Framing,
                                       "slots": data.ArrayLayout(data.StructLayout(
                                           {"valid": 1, "row": index_range(R)}), L)}))
        m.d.sync += [s1.valid.eq(m_take), s1.set.eq(aset), s1.end.eq(members.payload.end)]
        m.d.sync += [s1.slots[l].valid.eq(slots[l].valid & m_take) for l in range(L)]
        m.d.sync += [s1.slots[l].row.eq(slots[l].row) for l in range(L)]

        # ---------------------------------------------------------------- lanes: stage 2 (accumulator rows)
        # The partial banks' block-RAM read data is registered; the accumulator row read in stage 1
        # is registered too, as the row the adder starts from (``old``), so no path runs from a
        # memory read through the adder into a memory write (on the ULX3S-85F that read-add-write
        # was the largest group of late paths, 1,165 LUT-RAM write-data inputs, 13.75 ns).
        s2 = Signal(data.StructLayout({"valid": 1, "set": 1, "end": Framing,
                                       "slots": data.ArrayLayout(data.StructLayout(
                                           {"row": index_range(R), "write": 2}), L),
                                       "partials": data.ArrayLayout(PartialRow(cfg), L)}))
        m.d.sync += [s2.valid.eq(s1.valid), s2.set.eq(s1.set), s2.end.eq(s1.end)]
        m.d.sync += [s2.slots[l].row.eq(s1.slots[l].row) for l in range(L)]
        m.d.sync += [s2.partials[l].eq(bank_reads[l].data) for l in range(L)]
        # Per lane and set, registered selects: ``write`` (the slot writes set s), ``use`` (the slot
        # adds set s's row: it writes s and the row is touched, looked up here with the row stage 2
        # marks in the same cycle forwarded) and ``forward`` (stage 3 writes the slot's set and row
        # in the cycle stage 2 registers it: the row to add is stage 3's sum, which the memory does
        # not hold yet). ``use`` and ``forward`` have one flip-flop copy per memory column group
        # (``kept_use*``, ``kept_forward*``, kept apart in synthesis like the address copies), each
        # driving its group's ``old`` bits alone: one per lane drove the lane's ``cols x acc`` bits
        # (on the ULX3S-85F a 11.4 ns route, the worst path of the 75 MHz build).
        selects = []                                       # per lane, per group: (use[0], use[1], forward)
        for l in range(L):
            slot = s1.slots[l]
            forward, use = [], []
            for s in range(2):
                writes = slot.valid & (s1.set == s)
                marking = s2.slots[l].write[s] & (s2.slots[l].row == slot.row)
                forward.append(writes & marking)
                use.append(writes & (touched[s][l].bit_select(slot.row, 1) | marking))
                m.d.sync += s2.slots[l].write[s].eq(writes)
            lane_selects = []
            for g in range(len(groups)):
                copies = (Signal(name=f"kept_use0_{l}_{g}"), Signal(name=f"kept_use1_{l}_{g}"),
                          Signal(name=f"kept_forward{l}_{g}"))
                m.d.sync += [copy.eq(value) for copy, value in zip(copies, (*use, forward[0] | forward[1]))]
                lane_selects.append(copies)
            selects.append(lane_selects)

        # ---------------------------------------------------------------- lanes: stage 3 (add, write)
        s3 = Signal(data.StructLayout({"partials": data.ArrayLayout(PartialRow(cfg), L),
                                       "old": data.ArrayLayout(acc_row, L)}))
        m.d.sync += [s3.partials[l].eq(s2.partials[l]) for l in range(L)]
        # One adder per lane, shared by the two sets: stage 3's row plus its partial, written into
        # the set stage 3 writes. Stage 2's row to add is that sum when forwarded, else its set's
        # row as read (0 for an untouched row).
        for l in range(L):
            total = Signal(acc_row, name=f"lane_sum{l}")
            m.d.comb += [total[i].eq(s3.old[l][i] + s3.partials[l][i]) for i in range(cols)]
            for columns, (use0, use1, forward) in zip(groups, selects[l]):
                for c in columns:
                    read = (acc_rdata[0][l][c].as_unsigned() & use0.replicate(acc_row.elem_shape.width)
                            | acc_rdata[1][l][c].as_unsigned() & use1.replicate(acc_row.elem_shape.width))
                    m.d.sync += s3.old[l][c].eq(Mux(forward, total[c], read))
            # Stage 3's write address and enable: one flip-flop copy per memory (``kept_acc_w*``,
            # kept apart in synthesis like the read addresses), so each sits by its RAMs. One per
            # lane drove every memory of the lane in both sets (on the ULX3S-85F a 13.55 ns route,
            # the worst path of the 70 MHz build).
            for s in range(2):
                for g, (write, columns) in enumerate(acc_writes[s][l]):
                    address = Signal.like(s2.slots[l].row, name=f"kept_acc_waddr{s}_{l}_{g}", reset_less=True)
                    enable = Signal(name=f"kept_acc_wen{s}_{l}_{g}")
                    m.d.sync += [address.eq(s2.slots[l].row), enable.eq(s2.slots[l].write[s])]
                    m.d.comb += [write.addr.eq(address), write.en.eq(enable)]
                    m.d.comb += [write.data[i].eq(total[c]) for i, c in enumerate(columns)]
        # a set holds a block from stage 1 of its end.tile beat (no beat of the next block may enter
        # it), and the block is complete (may be emitted) from stage 2: that beat's sums are written
        # in the next edge, the one that registers the emission's first read address, so the read
        # sees them
        with m.If(s1.valid & s1.end.tile):
            for s in range(2):
                with m.If(s1.set == s):
                    m.d.sync += [held[s].eq(1), held_job[s].eq(s1.end.job)]
        with m.If(s2.valid & s2.end.tile):
            for s in range(2):
                with m.If(s2.set == s):
                    m.d.sync += complete[s].eq(1)

        # ---------------------------------------------------------------- emission
        m.submodules.queue = queue = CreditQueue(ResultBeat(cfg), SCATTER_QUEUE_DEPTH)
        wiring.connect(m, queue.r_stream, wiring.flipped(self.results))
        eset = Signal()                                                # set being emitted
        e_token = Signal(index_range(T))
        e_lane = Signal(index_range(L))
        e_row = Signal(index_range(R))
        issue, e_last = Signal(), Signal()
        m.d.comb += [
            issue.eq(Mux(eset, complete[1], complete[0]) & queue.admit),
            e_last.eq(equals(e_token, T - 1)),
            queue.start.eq(issue),
        ]
        # The emission's last read frees its set (``held``, ``complete``) and marks it ``clearing``:
        # its touched bits clear in the next edge, from that flip-flop. The lanes write the set
        # at the earliest three edges after the last read (a members beat taken in the next edge,
        # then stages 1 and 2), and look its touched bits up two edges after it: both see the
        # clear. (The read's handshake decoded into the touched bits' inputs was late on a 75 MHz
        # ULX3S-85F build, 13.16 ns.)
        clearing = [Signal(name=f"clearing{s}") for s in range(2)]
        m.d.sync += [clearing[s].eq(0) for s in range(2)]
        with m.If(issue):
            with m.If(e_last):
                m.d.sync += [e_token.eq(0), e_lane.eq(0), e_row.eq(0), eset.eq(~eset)]
                for s in range(2):
                    with m.If(eset == s):
                        m.d.sync += [held[s].eq(0), complete[s].eq(0), clearing[s].eq(1)]
            with m.Else():
                m.d.sync += e_token.eq(e_token + 1)
                with m.If(equals(e_lane, L - 1)):
                    m.d.sync += [e_lane.eq(0), e_row.eq(e_row + 1)]
                with m.Else():
                    m.d.sync += e_lane.eq(e_lane + 1)

        # Touched bits: ``clearing`` clears a set's, lane writes set bits (written after the clear;
        # a set is never written in a cycle its ``clearing`` is high, see above).
        for s in range(2):
            with m.If(clearing[s]):
                m.d.sync += [touched[s][l].eq(0) for l in range(L)]
            for l in range(L):
                with m.If(s2.slots[l].write[s]):
                    m.d.sync += touched[s][l].bit_select(s2.slots[l].row, 1).eq(1)

        # accumulator read addresses: the emission owns a held set, the lanes the other
        for s in range(2):
            for l in range(L):
                m.d.comb += acc_raddr[s][l].eq(Mux(held[s], e_row, s1.slots[l].row))

        # e1 (the read's edge): the emitted lane's group and touched bit, and per group of
        # EMISSION_GROUP_LANES lanes a one-hot of the set and the lane within the group
        # (``kept_e_pick*``, kept apart in synthesis), the selects of that group's reads alone.
        # e2: per group, the row of the read's lane and set among the group's 2 x 4 reads,
        # registered; then the row of the read's group, or 0 for an untouched row, into the
        # queue. One L-way multiplexer per set before the register reached across every lane's
        # memories (the late inputs of the ULX3S-85F at seed 5 and of the ECPIX-5 at seed 4).
        lane_groups = [range(g, min(g + EMISSION_GROUP_LANES, L)) for g in range(0, L, EMISSION_GROUP_LANES)]
        assert EMISSION_GROUP_LANES & (EMISSION_GROUP_LANES - 1) == 0, "a power of two"
        split = EMISSION_GROUP_LANES.bit_length() - 1                   # lane bits within a group
        within, group = (e_lane[:split], e_lane[split:]) if len(lane_groups) > 1 else (e_lane, 0)
        e1 = Signal(data.StructLayout({"valid": 1, "group": index_range(len(lane_groups)), "touched": 1,
                                       "last": 1, "job": 1}))
        e_touched = Signal()
        m.d.comb += e_touched.eq(Mux(eset, Array(touched[1])[e_lane], Array(touched[0])[e_lane])
                                 .bit_select(e_row, 1))
        m.d.sync += [e1.valid.eq(issue), e1.group.eq(group), e1.touched.eq(e_touched),
                     e1.last.eq(e_last), e1.job.eq(Mux(eset, held_job[1], held_job[0]))]
        e2 = Signal.like(e1)
        e2_rows = Signal(data.ArrayLayout(acc_row, len(lane_groups)))
        m.d.sync += e2.eq(e1)
        for g, lanes in enumerate(lane_groups):
            # the group's 2 x len(lanes) reads selected by a one-hot register (set, lane within the
            # group): an AND-OR of the reads, two LUTs deep, where a lane multiplexer then a set
            # multiplexer were three (on an 87.5 MHz ULX3S-85F build 11.36 ns, the largest group
            # of late inputs)
            stride = 1 << len(within)
            pick = Signal(2 * stride, name=f"kept_e_pick{g}")
            m.d.sync += pick.eq(Const(1, 2 * stride) << Cat(within, eset))
            row = 0
            for s in range(2):
                for i, l in enumerate(lanes):
                    row = row | (acc_rdata[s][l].as_value() & pick[s * stride + i].replicate(acc_row.size))
            m.d.sync += e2_rows[g].eq(row)
        selected = Signal(acc_row)
        beat = Signal(ResultBeat(cfg))
        m.d.comb += selected.eq(Array(e2_rows)[e2.group].as_value())
        m.d.comb += [beat.data[i].eq(Mux(e2.touched, selected[i], 0)) for i in range(cols)]   # sign-extends
        m.d.comb += [
            beat.end.chunk.eq(e2.last), beat.end.tile.eq(e2.last), beat.end.job.eq(e2.last & e2.job),
            queue.w_stream.valid.eq(e2.valid),
            queue.w_stream.payload.eq(beat),
        ]

        # ---------------------------------------------------------------- counters
        fresh = Signal(init=1)                                         # the next beat starts a job
        adds = Signal(range(L + 1))
        m.d.comb += adds.eq(sum(slots[l].valid for l in range(L)))
        with m.If(m_take):
            m.d.sync += [
                fresh.eq(members.payload.end.job),
                self.busy_cycles.eq(Mux(fresh, 0, self.busy_cycles) + 1),
                self.row_adds.eq(Mux(fresh, 0, self.row_adds) + adds),
            ]
        return m
