"""SIC's similarity comparator: each vector's best candidate in the causal window, exactly.

:class:`SimilarityComparator` takes the vectors of a run of tile-chunks in raster order and, for
each, finds the candidate it merges with under docs/semantics.md:

    dot = a . b,  na = a . a,  nb = b . b                                (exact integers)
    b passes  <=>  present  and  dot > 0  and  dot^2 * Q^2 > T^2 * na * nb
    best = the passing candidate with the largest cosine; scanning in index order, j replaces the
           best i only if dot_j^2 * nb_i > dot_i^2 * nb_j (strictly): a tie keeps the lower index.

All products are exact (Amaranth widens every product), so there is no rounding anywhere. A
vector's own norm is computed once, when it arrives, and kept beside it in the history. The
throughput is ``cfg.sic_multipliers`` (see :class:`focus.FocusConfig`):

full rate (``cfg.sic_full_rate``)
    The norm and the K candidates' dot products each have ``vector_size`` multipliers; the window
    history is :class:`focus.hdl.window.WindowHistory` (all K candidates at once). The threshold
    tests run in parallel and a registered tournament picks the best (left, i.e. lower index, wins
    ties: the same result as the in-order scan because the comparison is an exact total preorder).
    Initiation interval 1.
time-shared
    ``M = cfg.sic_lanes`` multipliers (``M`` divides ``vector_size``) visit the vector's own norm,
    then candidates 1..K, ``vector_size / M`` cycles each: ``cfg.sic_interval = (K+1)*V/M``
    cycles per vector. The history is one memory of ``H*W + W + 1`` records (vector and norm),
    read once per candidate; one threshold unit and one running argmax follow the multipliers.

Presence of each candidate (image edge, earlier tile) comes from the comparator's own position
counters: it counts ``width``, ``height`` and ``tile_frames``, so its input must be whole
tile-chunks, each in raster order, back to back (the order the accelerator streams them).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..sim.sic_cycles import SHARED_DEPTH, comparator_depth
from .util import equals, index_range
from .window import WindowHistory, candidate_offsets

__all__ = ["Vector", "ComparatorResult", "SimilarityComparator", "norm_shape", "dot_shape"]


def Vector(cfg: FocusConfig) -> data.ArrayLayout:
    """One SIC vector: ``vector_size`` signed ``data_width`` elements, element 0 in the low bits."""
    return data.ArrayLayout(signed(cfg.data_width), cfg.vector_size)


def norm_shape(cfg: FocusConfig):
    """Unsigned width of ``a . a``: at most ``vector_size * 2**(2*data_width - 2)``."""
    return unsigned((cfg.vector_size << (2 * cfg.data_width - 2)).bit_length())


def dot_shape(cfg: FocusConfig):
    """Signed width of ``a . b`` over one vector."""
    return signed(cfg.dot_width(cfg.vector_size))


def ComparatorResult(cfg: FocusConfig) -> data.StructLayout:
    """Per vector: the vector itself, ``best`` candidate index (0: none passed), ``zero`` (all elements 0)."""
    return data.StructLayout({
        "vector": Vector(cfg),
        "best": range(8),
        "zero": 1,
    })


def _verdict_layout():
    return data.StructLayout({"best": range(8), "zero": 1})


def _square_if_positive(m, dot, name):
    """``dot**2`` when ``dot > 0``, else 0 (the pass test ignores it then)."""
    magnitude = Signal(unsigned(len(dot) - 1), name=f"{name}_mag")
    m.d.comb += magnitude.eq(Mux(dot > 0, dot.as_unsigned()[:len(dot) - 1], 0))
    return magnitude * magnitude


class _Position:
    """Raster position (column, row, frame within the tile) of the next vector to enter, and the
    presence of each candidate for it."""

    def __init__(self, m: Module, cfg: FocusConfig, advance, name: str):
        self.col = Signal(index_range(cfg.width), name=f"{name}_col")
        self.row = Signal(index_range(cfg.height), name=f"{name}_row")
        self.frame = Signal(index_range(cfg.tile_frames), name=f"{name}_frame")
        with m.If(advance):
            with m.If(equals(self.col, cfg.width - 1)):
                m.d.sync += self.col.eq(0)
                with m.If(equals(self.row, cfg.height - 1)):
                    m.d.sync += self.row.eq(0)
                    with m.If(equals(self.frame, cfg.tile_frames - 1)):
                        m.d.sync += self.frame.eq(0)
                    with m.Else():
                        m.d.sync += self.frame.eq(self.frame + 1)
                with m.Else():
                    m.d.sync += self.row.eq(self.row + 1)
            with m.Else():
                m.d.sync += self.col.eq(self.col + 1)
        bits = []
        for _, df, dh, dw in cfg.candidates:
            term = Const(1)
            if df:
                term = term & (self.frame != 0)
            if dh:
                term = term & (self.row != 0)
            if dw:
                term = term & (self.col != 0)
            bits.append(term)
        self.present = Signal(len(bits), name=f"{name}_present")
        m.d.comb += self.present.eq(Cat(*bits))


class SimilarityComparator(wiring.Component):
    """Best window candidate of every vector of a stream of tile-chunks (docs/semantics.md, SIC).

    Ports
      ``vectors``  In stream of :func:`Vector`: whole tile-chunks (``cfg.tile_tokens`` vectors each)
                   in raster order, back to back; a zero vector is one with all elements 0.
      ``results``  Out stream of :func:`ComparatorResult`, one per vector, in input order:
                   ``best`` in 1..7 (the candidate index, ``df*4 + dh*2 + dw``) or 0, ``zero``.
    Timing
      Initiation interval ``cfg.sic_interval``: 1 at full rate, ``(K+1) * V / M`` time-shared.
      Latency :func:`focus.sim.sic_cycles.comparator_latency` cycles from the input handshake to
      the result, when the output is ready. ``results.ready`` low stalls the input once the internal queue (sized to the
      pipeline) is full; the datapath itself never stalls (credit flow control).
    Reset
      Synchronous; forgets every vector in flight and the window history (positions restart at
      the first vector of a tile-chunk).
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "vectors": In(stream.Signature(Vector(cfg))),
            "results": Out(stream.Signature(ComparatorResult(cfg))),
        })

    # ------------------------------------------------------------------ shared plumbing

    def _queues(self, m, depth):
        """Credit counter and the two output queues: vectors (written on entry) and verdicts
        (written when decided). ``results`` pairs their heads."""
        cfg = self.cfg
        m.submodules.vector_queue = vq = fifo.SyncFIFO(width=Vector(cfg).size, depth=depth)
        m.submodules.verdict_queue = bq = fifo.SyncFIFO(width=_verdict_layout().size, depth=depth)
        outstanding = Signal(range(depth + 1))            # entered, not yet taken from results
        enter, take = Signal(), Signal()
        verdict = data.View(_verdict_layout(), bq.r_data)
        m.d.comb += [
            self.results.valid.eq(bq.r_rdy),
            self.results.payload.vector.eq(vq.r_data),
            self.results.payload.best.eq(verdict.best),
            self.results.payload.zero.eq(verdict.zero),
            take.eq(self.results.valid & self.results.ready),
            vq.r_en.eq(take), bq.r_en.eq(take),
        ]
        m.d.sync += outstanding.eq(outstanding + enter - take)
        room = Signal()
        m.d.comb += room.eq(outstanding != depth)
        return vq, bq, enter, room

    def _tq_qq(self):
        t = self.cfg.threshold
        return t.numerator ** 2, t.denominator ** 2

    def elaborate(self, platform):
        if self.cfg.sic_full_rate:
            return self._elaborate_full_rate()
        return self._elaborate_time_shared()

    # ------------------------------------------------------------------ full rate

    def _elaborate_full_rate(self):
        m = Module()
        cfg = self.cfg
        V, K = cfg.vector_size, len(cfg.candidates)
        tq, qq = self._tq_qq()
        vec = Vector(cfg)
        nshape = norm_shape(cfg)
        depth = comparator_depth(cfg)
        vq, bq, enter, room = self._queues(m, depth)

        m.d.comb += [
            self.vectors.ready.eq(room),
            enter.eq(self.vectors.valid & self.vectors.ready),
            vq.w_en.eq(enter), vq.w_data.eq(self.vectors.payload),
        ]
        pos = _Position(m, cfg, enter, "in")

        # s1: the vector and its candidates' presence; squares of its elements
        s1_valid = Signal()
        s1_x = Signal(vec)
        s1_present = Signal(K)
        m.d.sync += [s1_valid.eq(enter), s1_x.eq(self.vectors.payload), s1_present.eq(pos.present)]
        # s2: squares registered
        s2_valid, s2_x, s2_present = Signal(), Signal(vec), Signal(K)
        s2_sq = [Signal(unsigned(2 * cfg.data_width), name=f"s2_sq_{i}") for i in range(V)]
        m.d.sync += [s2_valid.eq(s1_valid), s2_x.eq(s1_x), s2_present.eq(s1_present)]
        m.d.sync += [s2_sq[i].eq(s1_x[i] * s1_x[i]) for i in range(V)]
        # s3: the norm; the vector enters the history here, and reads its candidates
        s3_valid, s3_x, s3_present = Signal(), Signal(vec), Signal(K)
        s3_na = Signal(nshape)
        m.d.sync += [s3_valid.eq(s2_valid), s3_x.eq(s2_x), s3_present.eq(s2_present), s3_na.eq(sum(s2_sq))]

        record = data.StructLayout({"vector": vec, "norm": nshape})
        m.submodules.history = history = WindowHistory(cfg, record.size)
        m.d.comb += [history.advance.eq(s3_valid), history.record.eq(Cat(s3_x.as_value(), s3_na))]
        # s4: vector, norm and the K candidates' records
        s4_valid, s4_x, s4_present, s4_na = Signal(), Signal(vec), Signal(K), Signal(nshape)
        s4_cand = [Signal(record, name=f"s4_cand_{j}") for j in range(K)]
        m.d.sync += [s4_valid.eq(s3_valid), s4_x.eq(s3_x), s4_present.eq(s3_present), s4_na.eq(s3_na)]
        m.d.sync += [s4_cand[j].eq(history.taps[j]) for j in range(K)]
        # s5: the K*V element products
        s5_valid, s5_present, s5_na = Signal(), Signal(K), Signal(nshape)
        s5_nb = [Signal(nshape, name=f"s5_nb_{j}") for j in range(K)]
        s5_prod = [[Signal(signed(2 * cfg.data_width), name=f"s5_prod_{j}_{i}") for i in range(V)]
                   for j in range(K)]
        m.d.sync += [s5_valid.eq(s4_valid), s5_present.eq(s4_present), s5_na.eq(s4_na)]
        for j in range(K):
            m.d.sync += s5_nb[j].eq(s4_cand[j].norm)
            m.d.sync += [s5_prod[j][i].eq(s4_x[i] * s4_cand[j].vector[i]) for i in range(V)]
        # s6: dot products
        s6_valid, s6_present, s6_na = Signal(), Signal(K), Signal(nshape)
        s6_nb = [Signal(nshape, name=f"s6_nb_{j}") for j in range(K)]
        s6_dot = [Signal(dot_shape(cfg), name=f"s6_dot_{j}") for j in range(K)]
        m.d.sync += [s6_valid.eq(s5_valid), s6_present.eq(s5_present), s6_na.eq(s5_na)]
        for j in range(K):
            m.d.sync += [s6_nb[j].eq(s5_nb[j]), s6_dot[j].eq(sum(s5_prod[j]))]
        # s7: dot^2 and na*nb
        s7_valid, s7_zero = Signal(), Signal()
        s7_pos = Signal(K)
        s7_sq = [Signal(unsigned(2 * nshape.width), name=f"s7_sq_{j}") for j in range(K)]
        s7_nn = [Signal(unsigned(2 * nshape.width), name=f"s7_nn_{j}") for j in range(K)]
        s7_nb = [Signal(nshape, name=f"s7_nb_{j}") for j in range(K)]
        m.d.sync += [s7_valid.eq(s6_valid), s7_zero.eq(equals(s6_na, 0))]
        for j in range(K):
            m.d.sync += [
                s7_pos[j].eq(s6_present[j] & (s6_dot[j] > 0)),
                s7_sq[j].eq(_square_if_positive(m, s6_dot[j], f"s6_dot_{j}")),
                s7_nn[j].eq(s6_na * s6_nb[j]),
                s7_nb[j].eq(s6_nb[j]),
            ]
        # s8: the threshold test, exact
        s8_valid, s8_zero = Signal(), Signal()
        entries = []
        for j, (index, *_) in enumerate(cfg.candidates):
            entry = {"pass": Signal(name=f"s8_pass_{j}"), "index": Signal(range(8), name=f"s8_index_{j}"),
                     "sq": Signal.like(s7_sq[j], name=f"s8_sq_{j}"), "nb": Signal(nshape, name=f"s8_nb_{j}")}
            m.d.sync += [
                entry["pass"].eq(s7_pos[j] & (s7_sq[j] * qq > s7_nn[j] * tq)),
                entry["index"].eq(index), entry["sq"].eq(s7_sq[j]), entry["nb"].eq(s7_nb[j]),
            ]
            entries.append(entry)
        m.d.sync += [s8_valid.eq(s7_valid), s8_zero.eq(s7_zero)]
        # tournament: pairs in index order, the left (lower index) keeps a tie; one level a cycle
        valid, zero, level = s8_valid, s8_zero, 0
        while len(entries) > 1:
            level += 1
            nxt = []
            for p in range(0, len(entries), 2):
                pair = entries[p:p + 2]
                out = {key: Signal.like(value, name=f"t{level}_{key}_{p // 2}") for key, value in pair[0].items()}
                if len(pair) == 1:
                    m.d.sync += [out[key].eq(pair[0][key]) for key in out]
                else:
                    left, right = pair
                    right_wins = Signal(name=f"t{level}_right_wins_{p // 2}")
                    m.d.comb += right_wins.eq(right["pass"] & (~left["pass"] |
                                              (right["sq"] * left["nb"] > left["sq"] * right["nb"])))
                    m.d.sync += out["pass"].eq(left["pass"] | right["pass"])
                    m.d.sync += [out[key].eq(Mux(right_wins, right[key], left[key]))
                                 for key in ("index", "sq", "nb")]
                nxt.append(out)
            entries = nxt
            next_valid, next_zero = Signal(name=f"t{level}_valid"), Signal(name=f"t{level}_zero")
            m.d.sync += [next_valid.eq(valid), next_zero.eq(zero)]
            valid, zero = next_valid, next_zero
        winner = entries[0]
        verdict = Signal(_verdict_layout())
        m.d.comb += [
            verdict.best.eq(Mux(winner["pass"], winner["index"], 0)),
            verdict.zero.eq(zero),
            bq.w_en.eq(valid), bq.w_data.eq(verdict),
        ]
        return m

    # ------------------------------------------------------------------ time-shared

    def _elaborate_time_shared(self):
        m = Module()
        cfg = self.cfg
        V, K, M = cfg.vector_size, len(cfg.candidates), cfg.sic_lanes
        E = V // M                                        # cycles per dot product
        tq, qq = self._tq_qq()
        vec = Vector(cfg)
        nshape = norm_shape(cfg)
        offsets = candidate_offsets(cfg)
        D = max(offsets) + 1                              # records the window reaches back, and this one
        depth = SHARED_DEPTH
        vq, bq, enter, room = self._queues(m, depth)

        busy = Signal()
        slot = Signal(range(K + 1))                       # 0: own norm; s: candidate s (index order)
        sub = Signal(index_range(E))                      # which M elements
        cur_x, cur_present = Signal(vec), Signal(K)
        cur_addr = Signal(range(D))                       # history row of the current vector
        free_addr = Signal(range(D))                      # history row of the next vector
        at_end = Signal()
        load = Signal()
        # the sequencer takes the next vector straight from the input in its last cycle (or idle)
        m.d.comb += [
            at_end.eq(busy & (slot == K) & equals(sub, E - 1)),
            self.vectors.ready.eq(room & (~busy | at_end)),
            load.eq(self.vectors.valid & self.vectors.ready),
            enter.eq(load), vq.w_en.eq(load), vq.w_data.eq(self.vectors.payload),
        ]
        pos = _Position(m, cfg, load, "in")
        with m.If(load):
            m.d.sync += [
                busy.eq(1), slot.eq(0), sub.eq(0),
                cur_x.eq(self.vectors.payload), cur_present.eq(pos.present), cur_addr.eq(free_addr),
                free_addr.eq(Mux(equals(free_addr, D - 1), 0, free_addr + 1)),
            ]
        with m.Elif(at_end):
            m.d.sync += busy.eq(0)
        with m.Elif(busy):
            with m.If(equals(sub, E - 1)):
                m.d.sync += [sub.eq(0), slot.eq(slot + 1)]
            with m.Else():
                m.d.sync += sub.eq(sub + 1)

        # history: one row per vector (vector, norm), written once the norm is known
        record = data.StructLayout({"vector": vec, "norm": nshape})
        m.submodules.history = history = memory.Memory(shape=record, depth=D, init=[])
        hw, hr = history.write_port(), history.read_port()
        acc = Signal(signed(dot_shape(cfg).width))        # dot product of the slot in progress
        m.d.comb += [
            hw.en.eq(busy & (slot == 1) & equals(sub, 0)),    # acc holds the norm in this cycle
            hw.addr.eq(cur_addr),
            hw.data.vector.eq(cur_x), hw.data.norm.eq(acc[:nshape.width]),
        ]
        # read candidate slot+1's row during the last cycle of slot (so it is there for its slot)
        cand_index, cand_present = Signal(range(8)), Signal()     # of the candidate in slot
        with m.Switch(slot):
            for s in range(K):
                with (m.Case(s) if s < K - 1 else m.Default()):
                    off = offsets[s]
                    m.d.comb += hr.addr.eq(Mux(cur_addr >= off, cur_addr - off, cur_addr + (D - off)))
        with m.Switch(slot):
            for s, (index, *_) in enumerate(cfg.candidates, start=1):
                with (m.Case(s) if s < K else m.Default()):
                    m.d.comb += [cand_index.eq(index), cand_present.eq(cur_present[s - 1])]
        m.d.comb += hr.en.eq(busy & equals(sub, E - 1) & (slot != K))

        # the M shared multipliers: own elements times own elements (slot 0) or the candidate's
        a_part = Signal(data.ArrayLayout(signed(cfg.data_width), M))
        b_part = Signal(data.ArrayLayout(signed(cfg.data_width), M))

        def select_part(e):
            return ([a_part[i].eq(cur_x[e * M + i]) for i in range(M)] +
                    [b_part[i].eq(Mux(equals(slot, 0), cur_x[e * M + i], hr.data.vector[e * M + i])) for i in range(M)])
        if E == 1:
            m.d.comb += select_part(0)
        else:
            with m.Switch(sub):
                for e in range(E):
                    with (m.Case(e) if e < E - 1 else m.Default()):
                        m.d.comb += select_part(e)
        partial = sum(a_part[i] * b_part[i] for i in range(M))
        with m.If(busy):
            m.d.sync += acc.eq(Mux(equals(sub, 0), 0, acc) + partial)

        # post-processing, one slot at a time. q0: the slot's dot product is in acc.
        q0_valid, q0_slot, q0_nb, q0_present = Signal(), Signal(range(K + 1)), Signal(nshape), Signal()
        q0_index = Signal(range(8))
        m.d.sync += [
            q0_valid.eq(busy & equals(sub, E - 1)), q0_slot.eq(slot),
            q0_nb.eq(hr.data.norm), q0_present.eq(cand_present), q0_index.eq(cand_index),
        ]
        na = Signal(nshape)                               # own norm of the vector in post-processing
        with m.If(q0_valid & equals(q0_slot, 0)):
            m.d.sync += na.eq(acc[:nshape.width])
        q1_valid, q1_pos, q1_first, q1_last, q1_zero = Signal(), Signal(), Signal(), Signal(), Signal()
        q1_index = Signal(range(8))
        q1_sq = Signal(unsigned(2 * nshape.width))
        q1_nn = Signal(unsigned(2 * nshape.width))
        q1_nb = Signal(nshape)
        m.d.sync += [
            q1_valid.eq(q0_valid & (q0_slot != 0)),
            q1_pos.eq(q0_present & (acc > 0)),
            q1_sq.eq(_square_if_positive(m, acc, "acc")),
            q1_nn.eq(na * q0_nb), q1_nb.eq(q0_nb),
            q1_first.eq(q0_slot == 1), q1_last.eq(q0_slot == K), q1_zero.eq(equals(na, 0)),
            q1_index.eq(q0_index),
        ]
        q2_valid, q2_pass, q2_first, q2_last, q2_zero = Signal(), Signal(), Signal(), Signal(), Signal()
        q2_index, q2_sq, q2_nb = Signal(range(8)), Signal.like(q1_sq), Signal(nshape)
        m.d.sync += [
            q2_valid.eq(q1_valid), q2_pass.eq(q1_pos & (q1_sq * qq > q1_nn * tq)),
            q2_first.eq(q1_first), q2_last.eq(q1_last), q2_zero.eq(q1_zero),
            q2_index.eq(q1_index), q2_sq.eq(q1_sq), q2_nb.eq(q1_nb),
        ]
        # running argmax over the vector's candidates, in index order
        best, best_sq, best_nb = Signal(range(8)), Signal.like(q1_sq), Signal(nshape)
        takes = Signal()
        m.d.comb += takes.eq(q2_pass & (q2_first | equals(best, 0) | (q2_sq * best_nb > best_sq * q2_nb)))
        new_best = Signal(range(8))
        m.d.comb += new_best.eq(Mux(takes, q2_index, Mux(q2_first, 0, best)))
        with m.If(q2_valid):
            m.d.sync += best.eq(new_best)
            with m.If(takes):
                m.d.sync += [best_sq.eq(q2_sq), best_nb.eq(q2_nb)]
        verdict = Signal(_verdict_layout())
        m.d.comb += [
            verdict.best.eq(new_best), verdict.zero.eq(q2_zero),
            bq.w_en.eq(q2_valid & q2_last), bq.w_data.eq(verdict),
        ]
        return m
