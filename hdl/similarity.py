"""SIC's similarity comparator: each vector's best candidate in the causal window, exactly.

:class:`SimilarityComparator` takes the vectors of a run of tile-chunks in raster order and, for
each, finds the candidate it merges with under docs/semantics.md:

    dot = a . b,  na = a . a,  nb = b . b                                (exact integers)
    b passes  <=>  present  and  dot > 0  and  dot^2 * Q^2 > T^2 * na * nb
    best = the passing candidate with the largest cosine; scanning in index order, j replaces the
           best i only if dot_j^2 * nb_i > dot_i^2 * nb_j (strictly): a tie keeps the lower index.

All products are exact (Amaranth widens every product), so there is no rounding anywhere.

Each vector needs ``S = cfg.sic_slots`` dot products, its **slots**: slot 0 is its own norm
``a . a``, slot ``s >= 1`` its dot product with candidate ``s - 1`` of ``cfg.candidates`` (index
order). One parameterised datapath covers every throughput setting ``cfg.sic_multipliers``
(see :class:`focus.FocusConfig`): ``P = cfg.sic_engines`` dot-product engines of ``W``
multipliers each work on the slots ``g*P .. g*P + P - 1`` of slot group ``g``, ``E = V / W``
cycles per group, ``G = S / P`` groups: initiation interval ``cfg.sic_interval = G * E``.

engines (``P >= 2``, ``W = V``, ``E = 1``; ``P = S`` is full rate)
    The window history is :class:`focus.hdl.window.WindowHistory` twice: one of vectors (advanced
    when a vector leaves the sequencer, so all K candidates' vectors are flop outputs while it is
    there; each engine picks its slot's with a ``G``-way multiplexer) and one of norms (advanced
    when a vector's norm comes out of engine 0, its taps then being the candidates' norms, held for
    the later groups). Products are registered, then summed in two stages.
element-serial (``P = 1``, ``W = M`` divides ``V``)
    ``M`` multipliers and an accumulator visit the norm, then candidates 1..K, ``V / M`` cycles
    each, with up to three register stages between the elements' selection and the accumulator
    (:attr:`focus.plans.ComparatorPlan.mac_stages`: the selection, the DSP blocks' input and
    output registers). The history is one memory of ``H*W + W + 1`` records (vector and norm),
    written once the norm is known and read once per candidate.

Behind the engines, ``P`` threshold units (7 stages: operands, the operands again, products,
constant multiples in three, the test) test the group's candidates, a registered tournament in
index order picks the group's best (the left, lower index, keeps a tie); with ``G = 2`` groups one
more tournament level between the held first winner and the second picks the vector's, with
``G > 2`` a running best carries it across the groups (the earlier group keeps a tie): the
comparison is an exact total preorder, so this equals the in-order scan, within a cycle and across
cycles. Each tournament level takes five cycles: the cross products ``sq * nb`` (the operands
registered again, 18-bit chunks of ``sq`` times ``nb``, then their sum), the compare, then the
selection. 100 MHz on ECP5 needs those registers: every multiplier is a DSP block whose input and
output registers are its own (:mod:`focus.hdl.dsp`), fed by a register with no logic between.
(The running best of the slow ``G > 2`` settings still compares in one cycle.)

Presence of each candidate (image edge, earlier tile) comes from the comparator's own position
counters: it counts ``width``, ``height`` and ``tile_frames``, so its input must be whole
tile-chunks, each in raster order, back to back (the order the accelerator streams them).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..plans import THRESHOLD_STAGES, TOURNAMENT_STAGES, WIDE_PRODUCT_STAGES, comparator_depth, comparator_plan
from .dsp import registered_product, staged_product
from .streams import CreditQueue, Framing, Vector, VectorBeat
from .util import equals, index_range
from .window import WindowHistory

__all__ = ["ComparatorResult", "SimilarityComparator", "norm_shape", "dot_shape", "wide_product"]


def norm_shape(cfg: FocusConfig):
    """Unsigned width of ``a . a``: at most ``vector_size * 2**(2*data_width - 2)``."""
    return unsigned((cfg.vector_size << (2 * cfg.data_width - 2)).bit_length())


def dot_shape(cfg: FocusConfig):
    """Signed width of ``a . b`` over one vector."""
    return signed(cfg.dot_width(cfg.vector_size))


def ComparatorResult(cfg: FocusConfig) -> data.StructLayout:
    """Per vector: the vector itself and its framing, ``best`` candidate index (0: none passed),
    ``zero`` (all elements 0)."""
    return data.StructLayout({
        "vector": Vector(cfg),
        "end": Framing,
        "best": range(8),
        "zero": 1,
    })


def _verdict_layout():
    return data.StructLayout({"best": range(8), "zero": 1})


#: Width of the chunks a wide product is cut into (an ECP5 DSP block multiplies 18 x 18 bits).
_CHUNK = 18


def wide_product(m, a, b, name, *, platform=None):
    """``a * b`` (unsigned registers; ``b`` may be an integer) in ``WIDE_PRODUCT_STAGES`` (3) stages: ``a``'s
    18-bit chunks and ``b`` registered again, their products (one DSP block each, which holds both
    registers on ECP5: :func:`focus.hdl.dsp.staged_product`), then the products' sum. A product
    wider than one DSP block is otherwise two blocks and an adder in one cycle."""
    if isinstance(b, int):
        b = Const(b, unsigned(max(b.bit_length(), 1)))
    parts = [staged_product(m, platform, a[lo:lo + _CHUNK], b, name=f"{name}_part{k}")
             for k, lo in enumerate(range(0, len(a), _CHUNK))]
    out = Signal(unsigned(len(a) + len(b)), name=name)
    m.d.sync += out.eq(sum(part << (_CHUNK * k) for k, part in enumerate(parts)))
    return out


def _tournament(m, entries, flags, prefix, platform=None):
    """Best of ``entries`` (dicts of ``pass``, ``index``, ``sq``, ``nb`` registers) in index order: a
    tree of pairs where the right (higher index) wins only if it passes and the left does not, or
    ``sq_r * nb_l > sq_l * nb_r`` (the left keeps a tie). Each level is
    :data:`~focus.plans.TOURNAMENT_STAGES` (5) register stages: the two cross products
    (:func:`wide_product`: operands, chunk products, their sum), the compare (a registered
    ``right wins`` flag), then the selection it drives. ``flags`` are delayed alongside. Returns
    the winner and the delayed flags, ``5 * ceil(log2(len(entries)))`` cycles later."""
    level = 0
    while len(entries) > 1:
        level += 1
        nxt = []
        for i in range(0, len(entries), 2):
            pair = entries[i:i + 2]
            name = f"{prefix}{level}"
            out = {key: Signal.like(value, name=f"{name}_{key}_{i // 2}") for key, value in pair[0].items()}
            def delayed(entry, side, stages, first=0):
                for stage in range(first, first + stages):
                    copy = {key: Signal.like(value, name=f"{name}_{side}{stage}_{key}_{i // 2}")
                            for key, value in entry.items()}
                    m.d.sync += [copy[key].eq(entry[key]) for key in copy]
                    entry = copy
                return entry
            if len(pair) == 1:
                held = delayed(pair[0], "h", TOURNAMENT_STAGES - 1)
                m.d.sync += [out[key].eq(held[key]) for key in out]
            else:
                # Each side held until the selection; its copy from the cross products' cycle
                # goes into the compare.
                left_at_cross = delayed(pair[0], "l", WIDE_PRODUCT_STAGES)
                right_at_cross = delayed(pair[1], "r", WIDE_PRODUCT_STAGES)
                left = delayed(left_at_cross, "l", TOURNAMENT_STAGES - 1 - WIDE_PRODUCT_STAGES, WIDE_PRODUCT_STAGES)
                right = delayed(right_at_cross, "r", TOURNAMENT_STAGES - 1 - WIDE_PRODUCT_STAGES, WIDE_PRODUCT_STAGES)
                cross_r = wide_product(m, pair[1]["sq"], pair[0]["nb"], f"{name}_cross_r_{i // 2}",
                                       platform=platform)
                cross_l = wide_product(m, pair[0]["sq"], pair[1]["nb"], f"{name}_cross_l_{i // 2}",
                                       platform=platform)
                # The compare is registered on its own: the selection below fans its one bit out
                # to every bit of the winner, which is too much after a wide carry chain.
                right_wins = Signal(name=f"{name}_right_wins_{i // 2}")
                m.d.sync += right_wins.eq(right_at_cross["pass"]
                                          & (~left_at_cross["pass"] | (cross_r > cross_l)))
                m.d.sync += out["pass"].eq(left["pass"] | right["pass"])
                m.d.sync += [out[key].eq(Mux(right_wins, right[key], left[key])) for key in ("index", "sq", "nb")]
            nxt.append(out)
        entries = nxt
        for stage in range(TOURNAMENT_STAGES):
            copies = tuple(Signal.like(f, name=f"{prefix}{level}_{stage}_flag{n}") for n, f in enumerate(flags))
            m.d.sync += [d.eq(f) for d, f in zip(copies, flags)]
            flags = copies
    return entries[0], flags


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
      Initiation interval ``cfg.sic_interval`` (``sic_slots * vector_size / sic_multipliers``; 1 at
      full rate). Latency :func:`focus.plans.comparator_latency` cycles from the input
      handshake to the result, when the output is ready. ``results.ready`` low stalls the input once
      the internal queue (sized to the pipeline) is full; the datapath itself never stalls (credit
      flow control).
    Reset
      Synchronous; forgets every vector in flight and the window history (positions restart at
      the first vector of a tile-chunk).
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "vectors": In(stream.Signature(VectorBeat(cfg))),
            "results": Out(stream.Signature(ComparatorResult(cfg))),
        })

    def _queues(self, m, depth):
        """The two output queues: framed vectors (written on entry) and verdicts (written when
        decided, with the credit: a vector enters only while both have room for everything in
        flight). ``results`` pairs their heads."""
        cfg = self.cfg
        m.submodules.vector_queue = vq = fifo.SyncFIFO(width=VectorBeat(cfg).size, depth=depth)
        # The verdicts leave from a register (a buffered queue, one more cycle): SIC's resolver
        # decodes ``best`` into its group-id multiplexer and writes the id into its window history
        # in the same cycle, and that chain started at the queue's LUT-RAM read, placed away from
        # the resolver (the critical path nextpnr reported for an 88.5 MHz ULX3S-85F build,
        # 11.44 ns).
        m.submodules.verdict_queue = bq = CreditQueue(_verdict_layout(), depth, buffered=True)
        enter, take = Signal(), Signal()
        beat = data.View(VectorBeat(cfg), vq.r_data)
        m.d.comb += [
            self.results.valid.eq(bq.r_stream.valid),
            self.results.payload.vector.eq(beat.data),
            self.results.payload.end.eq(beat.end),
            self.results.payload.best.eq(bq.r_stream.payload.best),
            self.results.payload.zero.eq(bq.r_stream.payload.zero),
            take.eq(self.results.valid & self.results.ready),
            vq.r_en.eq(take), bq.r_stream.ready.eq(self.results.ready),
            bq.start.eq(enter),
        ]
        return vq, bq, enter, bq.admit

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        plan = comparator_plan(cfg)
        V, K = cfg.vector_size, len(cfg.candidates)
        P, W, E, G = plan.engines, plan.width, plan.sub_cycles, plan.groups
        t, vec, nshape = cfg.threshold, Vector(cfg), norm_shape(cfg)
        tq, qq = t.numerator ** 2, t.denominator ** 2
        nbits = nshape.width
        vq, bq, enter, room = self._queues(m, comparator_depth(cfg))

        def slot_candidate(g, p):
            """Candidate (position in ``cfg.candidates``) of engine ``p`` in group ``g``; None: own norm."""
            s = g * P + p
            return None if s == 0 else s - 1

        def by_group(selector, statements):
            """``statements(g)`` (combinational) for the group ``g`` that ``selector`` names."""
            if G == 1:
                m.d.comb += statements(0)
                return
            with m.Switch(selector):
                for g in range(G):
                    with (m.Case(g) if g < G - 1 else m.Default()):
                        m.d.comb += statements(g)

        # ---------------------------------------------------------------- sequencer
        # holds a vector for G groups of E cycles; takes the next straight from the input in the
        # last cycle of the current one (or when idle)
        busy = Signal()
        group = Signal(index_range(G))
        sub = Signal(index_range(E))
        cur_x, cur_present = Signal(vec), Signal(K)
        last_group, last_sub, at_end, load = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            # (constant when there is one group or one sub-cycle: no counter logic before ``ready``)
            last_group.eq(1 if G == 1 else equals(group, G - 1)), last_sub.eq(1 if E == 1 else equals(sub, E - 1)),
            at_end.eq(busy & last_group & last_sub),
            self.vectors.ready.eq(room & (~busy | at_end)),
            load.eq(self.vectors.valid & self.vectors.ready),
            enter.eq(load), vq.w_en.eq(load), vq.w_data.eq(self.vectors.payload),
        ]
        pos = _Position(m, cfg, load, "in")
        with m.If(load):
            m.d.sync += [busy.eq(1), group.eq(0), sub.eq(0),
                         cur_x.eq(self.vectors.payload.data), cur_present.eq(pos.present)]
        with m.Elif(at_end):
            m.d.sync += busy.eq(0)
        with m.Elif(busy):
            with m.If(last_sub):
                m.d.sync += [sub.eq(0), group.eq(group + 1)]
            with m.Else():
                m.d.sync += sub.eq(sub + 1)

        # what each engine's group result carries to the threshold units
        fields = {"valid": 1, "first": 1, "last": 1, "group": index_range(G),
                  "cand": P, "present": P, "index": data.ArrayLayout(range(8), P)}
        if plan.by_address:
            fields["nb"] = nshape                         # the candidate's norm, read with its vector
        meta = data.StructLayout(fields)
        meta_a = Signal(meta)                             # in the sequencer's cycle
        m.d.comb += [meta_a.valid.eq(busy & last_sub), meta_a.first.eq(equals(group, 0)),
                     meta_a.last.eq(last_group), meta_a.group.eq(group)]

        def lane_meta(g):
            out = []
            for p in range(P):
                j = slot_candidate(g, p)
                if j is not None:
                    out += [meta_a.cand[p].eq(1), meta_a.present[p].eq(cur_present[j]),
                            meta_a.index[p].eq(cfg.candidates[j][0])]
            return out
        by_group(group, lane_meta)

        # ---------------------------------------------------------------- history and operands
        operand = [Signal(vec, name=f"operand_{p}") for p in range(P)]   # the other vector of each engine
        if plan.by_address:
            # element-serial: one memory row per vector (vector, norm), written once the norm is
            # known; candidate g's row is read in the last cycle of group g (for group g + 1)
            offsets = cfg.candidate_offsets
            D = max(offsets) + 1                          # records the window reaches back, and this one
            cur_addr, free_addr = Signal(range(D)), Signal(range(D))
            with m.If(load):
                m.d.sync += [cur_addr.eq(free_addr), free_addr.eq(Mux(equals(free_addr, D - 1), 0, free_addr + 1))]
            record = data.StructLayout({"vector": vec, "norm": nshape})
            m.submodules.history = history = memory.Memory(shape=record, depth=D, init=[])
            hw, hr = history.write_port(), history.read_port()
            acc = Signal(dot_shape(cfg))                  # the dot product of the group in progress
            dv = Signal(meta)                             # acc holds the group's dot product
            m.d.comb += [
                # acc holds the norm while the vector is still in the sequencer (plan.mac_stages)
                hw.en.eq(dv.valid & dv.first),
                hw.addr.eq(cur_addr), hw.data.vector.eq(cur_x), hw.data.norm.eq(acc[:nbits]),
                hr.en.eq(busy & last_sub & ~last_group),
            ]
            with m.Switch(group):
                for g in range(K):
                    with (m.Case(g) if g < K - 1 else m.Default()):
                        off = offsets[g]
                        m.d.comb += hr.addr.eq(Mux(cur_addr >= off, cur_addr - off, cur_addr + (D - off)))
            m.d.comb += [operand[0].eq(Mux(equals(group, 0), cur_x, hr.data.vector)),
                         meta_a.nb.eq(hr.data.norm)]

            # M multipliers on elements sub*M .. sub*M + M - 1, accumulated over the group
            a_part = Signal(data.ArrayLayout(signed(cfg.data_width), W))
            b_part = Signal(data.ArrayLayout(signed(cfg.data_width), W))

            def select_part(e):
                return ([a_part[i].eq(cur_x[e * W + i]) for i in range(W)] +
                        [b_part[i].eq(operand[0][e * W + i]) for i in range(W)])
            if E == 1:
                m.d.comb += select_part(0)
            else:
                with m.Switch(sub):
                    for e in range(E):
                        with (m.Case(e) if e < E - 1 else m.Default()):
                            m.d.comb += select_part(e)
            # plan.mac_stages register stages between the selection and the accumulator, the
            # sequencer's flags and the group's meta delayed alongside
            d = plan.mac_stages
            if d:
                a_reg = Signal(data.ArrayLayout(signed(cfg.data_width), W), name="a_reg", reset_less=True)
                b_reg = Signal(data.ArrayLayout(signed(cfg.data_width), W), name="b_reg", reset_less=True)
                m.d.sync += [a_reg.eq(a_part), b_reg.eq(b_part)]
            if d == 0:
                products = [a_part[i] * b_part[i] for i in range(W)]
            elif d == 1:
                products = [a_reg[i] * b_reg[i] for i in range(W)]
            elif d == 2:
                products = [registered_product(m, platform, a_reg[i], b_reg[i], name=f"mac_product_{i}",
                                               a_next=a_part[i], b_next=b_part[i]) for i in range(W)]
            else:
                products = [staged_product(m, platform, a_reg[i], b_reg[i], name=f"mac_product_{i}")
                            for i in range(W)]
            acc_en, acc_clear, acc_meta = busy, equals(sub, 0), meta_a
            for stage in range(d):
                regs = (Signal(name=f"mac_en_{stage}"), Signal(name=f"mac_clear_{stage}"),
                        Signal(meta, name=f"mac_meta_{stage}"))
                m.d.sync += [r.eq(v) for r, v in zip(regs, (acc_en, acc_clear, acc_meta))]
                acc_en, acc_clear, acc_meta = regs
            with m.If(acc_en):
                m.d.sync += acc.eq(Mux(acc_clear, 0, acc) + sum(products))
            dots = [acc]
            m.d.sync += dv.eq(acc_meta)
        else:
            # engines: every candidate's vector is a tap of the vector history while this vector is
            # in the sequencer; the vector enters the history when it leaves the sequencer
            m.submodules.history = history = WindowHistory(cfg, vec.size)
            m.d.comb += [history.advance.eq(at_end), history.record.eq(cur_x)]

            def operands(g):
                out = []
                for p in range(P):
                    j = slot_candidate(g, p)
                    out.append(operand[p].eq(cur_x if j is None else history.taps[j]))
                return out
            by_group(group, operands)
            products = [[Signal(signed(2 * cfg.data_width), name=f"product_{p}_{i}") for i in range(V)]
                        for p in range(P)]
            dots = [Signal(dot_shape(cfg), name=f"dot_{p}") for p in range(P)]
            # the multipliers' operands are registered twice (the group's multiplexer sits in front
            # of the first registers; the second, one per multiplier, can sit beside its DSP block),
            # then the products, registered twice the same way, then their sum in two stages: sums
            # of ``part`` products (half the adder tree's levels, rounded up), then their total
            x_reg = Signal(vec, name="x_reg")
            operand_reg = [Signal(vec, name=f"operand_reg_{p}") for p in range(P)]
            m.d.sync += [x_reg.eq(cur_x)] + [r.eq(o) for r, o in zip(operand_reg, operand)]
            x_dsp = [Signal(vec, name=f"x_dsp_{p}") for p in range(P)]
            operand_dsp = [Signal(vec, name=f"operand_dsp_{p}") for p in range(P)]
            m.d.sync += [r.eq(x_reg) for r in x_dsp] + [r.eq(o) for r, o in zip(operand_dsp, operand_reg)]
            products_out = [[Signal(signed(2 * cfg.data_width), name=f"product_out_{p}_{i}") for i in range(V)]
                            for p in range(P)]
            part = 1 << ((V - 1).bit_length() + 1) // 2
            partials = [[Signal(dot_shape(cfg), name=f"partial_{p}_{j}") for j in range(-(-V // part))]
                        for p in range(P)]
            metas = [Signal(meta, name=f"meta_{n}") for n in range(5)]
            dv = Signal(meta)
            m.d.sync += [metas[0].eq(meta_a)] + [metas[n].eq(metas[n - 1]) for n in range(1, 5)] + [dv.eq(metas[4])]
            for p in range(P):
                m.d.comb += [products[p][i].eq(registered_product(m, platform, x_dsp[p][i], operand_dsp[p][i],
                                                                  name=f"product_reg_{p}_{i}",
                                                                  a_next=x_reg[i], b_next=operand_reg[p][i]))
                             for i in range(V)]
                m.d.sync += [products_out[p][i].eq(products[p][i]) for i in range(V)]
                m.d.sync += [partial.eq(sum(products_out[p][j * part:(j + 1) * part]))
                             for j, partial in enumerate(partials[p])]
                m.d.sync += dots[p].eq(sum(partials[p]))

        # ---------------------------------------------------------------- norms at the dot stage
        # dv: the group's dot products are in ``dots``; in group 0, engine 0's is the own norm
        na, na_held = Signal(nshape), Signal(nshape)
        m.d.comb += na.eq(Mux(dv.first, dots[0][:nbits], na_held))
        with m.If(dv.valid & dv.first):
            m.d.sync += na_held.eq(dots[0][:nbits])
        nb = [Signal(nshape, name=f"nb_{p}") for p in range(P)]
        if plan.by_address:
            m.d.comb += nb[0].eq(dv.nb)
        else:
            # the norm history advances when a vector's norm comes out; its taps are then the
            # candidates' norms, held for the vector's later groups
            m.submodules.norm_history = norms = WindowHistory(cfg, nbits)
            m.d.comb += [norms.advance.eq(dv.valid & dv.first), norms.record.eq(dots[0][:nbits])]
            cand_nb = [norms.taps[j] for j in range(K)]
            if G > 1:
                held = [Signal(nshape, name=f"nb_held_{j}") for j in range(K)]
                with m.If(dv.valid & dv.first):
                    m.d.sync += [held[j].eq(norms.taps[j]) for j in range(K)]
                cand_nb = [Mux(dv.first, norms.taps[j], held[j]) for j in range(K)]

            def lane_nb(g):
                return [nb[p].eq(cand_nb[j]) for p in range(P) if (j := slot_candidate(g, p)) is not None]
            by_group(dv.group, lane_nb)

        # ---------------------------------------------------------------- threshold units
        # THRESHOLD_STAGES (7) register stages, each short enough for 100 MHz on ECP5: the
        # operands (the norms' multiplexers, the positive magnitude of the dot product); the
        # operands again (the DSP blocks' input registers on ECP5); the two 18x18 products; the
        # constant products Q^2 * dot^2 and T^2 * na * nb (three stages, wide_product: every
        # DSP block is fed by a register); their compare.
        lanes = range(P) if G > 1 else range(1, P)        # full rate: engine 0 only ever has the norm
        flags = (dv.valid, dv.first, dv.last, equals(na, 0))
        stages = []
        for stage in range(THRESHOLD_STAGES):
            regs = tuple(Signal(name=f"q{stage}_{n}") for n in ("valid", "first", "last", "zero"))
            m.d.sync += [r.eq(f) for r, f in zip(regs, flags)]
            stages.append(regs)
            flags = regs
        entries = []
        for p in lanes:
            def reg(shape, name):
                return Signal(shape, name=f"{name}_{p}")
            # stage 0: operands
            pos0, mag0 = reg(1, "q0_pos"), reg(unsigned(len(dots[p]) - 1), "q0_mag")
            na0, nb0, index0 = reg(nshape, "q0_na"), reg(nshape, "q0_nb"), reg(range(8), "q0_index")
            m.d.sync += [
                pos0.eq(dv.cand[p] & dv.present[p] & (dots[p] > 0)),
                mag0.eq(Mux(dots[p] > 0, dots[p].as_unsigned()[:len(dots[p]) - 1], 0)),
                na0.eq(na), nb0.eq(nb[p]), index0.eq(dv.index[p]),
            ]
            # stage 1: the multipliers' operands (nb also goes on to the tournament)
            pos1, mag1, na1 = reg(1, "q1_pos"), Signal.like(mag0, name=f"q1_mag_{p}"), reg(nshape, "q1_na")
            nb1, index1 = reg(nshape, "q1_nb"), reg(range(8), "q1_index")
            m.d.sync += [pos1.eq(pos0), mag1.eq(mag0), na1.eq(na0), nb1.eq(nb0), index1.eq(index0)]
            # stage 2: dot^2 (0 unless dot > 0) and na * nb
            pos2, sq2, nn2 = reg(1, "q2_pos"), reg(unsigned(2 * nbits), "q2_sq"), reg(unsigned(2 * nbits), "q2_nn")
            nb2, index2 = reg(nshape, "q2_nb"), reg(range(8), "q2_index")
            m.d.sync += [pos2.eq(pos1), nb2.eq(nb1), index2.eq(index1)]
            m.d.comb += [sq2.eq(registered_product(m, platform, mag1, mag1, name=f"q2_sq_reg_{p}", a_next=mag0, b_next=mag0)),
                         nn2.eq(registered_product(m, platform, na1, nb1, name=f"q2_nn_reg_{p}", a_next=na0, b_next=nb0))]
            # stages 3 to 5: the constant products (chunked and staged: see wide_product)
            lhs5 = wide_product(m, sq2, qq, f"q3_lhs_{p}", platform=platform)
            rhs5 = wide_product(m, nn2, tq, f"q3_rhs_{p}", platform=platform)
            pos5, sq5, nb5, index5 = pos2, sq2, nb2, index2
            for stage in range(3, 3 + WIDE_PRODUCT_STAGES):   # beside the constant products
                regs = (reg(1, f"q{stage}_pos"), Signal.like(sq2, name=f"q{stage}_sq_{p}"),
                        reg(nshape, f"q{stage}_nb"), reg(range(8), f"q{stage}_index"))
                m.d.sync += [r.eq(v) for r, v in zip(regs, (pos5, sq5, nb5, index5))]
                pos5, sq5, nb5, index5 = regs
            # stage 6: the test
            entry = {"pass": Signal(name=f"q6_pass_{p}"), "index": Signal(range(8), name=f"q6_index_{p}"),
                     "sq": Signal.like(sq2, name=f"q6_sq_{p}"), "nb": Signal(nshape, name=f"q6_nb_{p}")}
            m.d.sync += [entry["pass"].eq(pos5 & (lhs5 > rhs5)),
                         entry["index"].eq(index5), entry["sq"].eq(sq5), entry["nb"].eq(nb5)]
            entries.append(entry)
        valid, first, last, zero = stages[-1]

        # ---------------------------------------------------------------- best of the group
        winner, (valid, first, last, zero) = _tournament(m, entries, (valid, first, last, zero), "t", platform)

        # ---------------------------------------------------------------- best of the vector
        verdict = Signal(_verdict_layout())
        if G == 2:
            # two groups (the default setting): the first group's winner is held, then one more
            # tournament level (TOURNAMENT_STAGES cycles) between it and the second's; the earlier keeps a tie
            held = {key: Signal.like(value, name=f"group_best_{key}") for key, value in winner.items()}
            with m.If(valid):
                m.d.sync += [held[key].eq(winner[key]) for key in held]
            winner, (valid, zero) = _tournament(m, [held, winner], (valid & last, zero), "g", platform)
        if G <= 2:
            m.d.comb += [verdict.best.eq(Mux(winner["pass"], winner["index"], 0)), bq.w_stream.valid.eq(valid)]
        else:
            # more groups (slow settings, one group a cycle or slower): a running best over the
            # groups, in index order (an earlier group keeps a tie), compared in one cycle
            best, best_sq, best_nb = Signal(range(8)), Signal.like(winner["sq"]), Signal(nshape)
            takes, new_best = Signal(), Signal(range(8))
            m.d.comb += [
                takes.eq(winner["pass"] & (first | equals(best, 0) |
                                           (winner["sq"] * best_nb > best_sq * winner["nb"]))),
                new_best.eq(Mux(takes, winner["index"], Mux(first, 0, best))),
                verdict.best.eq(new_best), bq.w_stream.valid.eq(valid & last),
            ]
            with m.If(valid):
                m.d.sync += best.eq(new_best)
                with m.If(takes):
                    m.d.sync += [best_sq.eq(winner["sq"]), best_nb.eq(winner["nb"])]
        m.d.comb += [verdict.zero.eq(zero), bq.w_stream.payload.eq(verdict)]
        return m
