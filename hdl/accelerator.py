"""The Focus accelerator: SEC, SIC, the pass buffer, the systolic array and the scatter accumulator
joined into one design that runs a concentrated GEMM job end to end.

Block diagram (every arrow a valid/ready stream of the vocabulary in docs/streams.md)::

    scores ─► SEC ─► mask ─┬──────────────────────────────────────────────────────► mask
                           ▼ keep map
    tokens ────────► zero the pruned ─┬─► SIC ────────────┬─► PassBuffer ─► activations ─► SystolicArray ◄─ weights
                                      └─► DenseBypass ────┘   (2 tiles)  ─► members ──┐        │ partials
                                                                                     ▼        ▼
                                                                              ScatterAccumulator ─► results

The top only connects the blocks and keeps the job's bookkeeping (command, keep map, counters,
done beat); every block takes its boundaries from the streams' framing. See
:class:`FocusAccelerator` for the contract and docs/accelerator.md for the design notes.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, enum, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .passbuffer import N_TILES_WIDTH, PassBuffer
from .scatter import ScatterAccumulator
from .sec import SecMask, SecScore, SecStatus, SemanticConcentrator
from .sic import SimilarityConcentrator, TileCounters
from .streams import MapBeat, ResultBeat, VectorBeat, WeightRow
from .systolic import SystolicArray
from .util import equals, index_range

__all__ = ["JobMode", "JobStatus", "JobCommand", "JobCounters", "JobDone", "DenseBypass", "FocusAccelerator",
           "COUNTER_NAMES", "COUNTER_WIDTH"]

#: Width of every job counter.
COUNTER_WIDTH = 32

#: The job counters, in the order of :func:`JobCounters` (docs/accelerator.md defines each).
COUNTER_NAMES = ("cycles", "sec_cycles", "sic_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input",
                 "drain", "scatter_busy", "row_adds", "unique", "similar", "zero")


class JobMode(enum.Enum, shape=1):
    """How a job runs."""
    FOCUS = 0       #: SIC concentrates; the array computes unique vectors only
    DENSE = 1       #: SIC bypassed: every vector its own group (the same hardware, no concentration)


class JobStatus(enum.Enum, shape=2):
    """How a job ended (the ``status`` of its done beat)."""
    OK = 0          #: outputs delivered
    BAD_K = 1       #: ``k`` above the token count: nothing else of the job was taken
    BAD_LENGTH = 2  #: SEC: the scores ended mid-row; no tokens were taken
    BAD_N_TILES = 3  #: ``n_tiles`` 0 (a job must have at least one N-tile): nothing else of the job was taken


def JobCommand(cfg: FocusConfig) -> data.StructLayout:
    """A job descriptor: ``k`` (SEC keep count, 0 = SEC off, 1 .. ``cfg.tokens``), ``n_tiles`` (the
    job's N-tiles, ``ceil(N / cols)``, at least 1: 0 is refused, ``BAD_N_TILES``) and ``mode`` (:class:`JobMode`)."""
    return data.StructLayout({"k": unsigned(cfg.tokens.bit_length() + 1), "n_tiles": N_TILES_WIDTH,
                              "mode": JobMode})


JobCounters = data.StructLayout({name: COUNTER_WIDTH for name in COUNTER_NAMES})

#: The beat that ends every job.
JobDone = data.StructLayout({"status": JobStatus, "counters": JobCounters})


class DenseBypass(wiring.Component):
    """What SIC would send if nothing merged: every vector its own group.

    ``vectors`` (In :func:`~focus.hdl.streams.VectorBeat`, framed tile-chunks) becomes
    ``representatives`` (the vector itself), ``map`` (index = the vector's position in its
    tile-chunk, zero vectors included) and ``counters`` (``unique = tile_tokens``, ``base = 0``, the
    tile-chunk's ``end``), one vector a cycle, through two-entry queues (so no output's ``valid``
    waits on another's ``ready``).
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "vectors": In(stream.Signature(VectorBeat(cfg))),
            "representatives": Out(stream.Signature(VectorBeat(cfg))),
            "map": Out(stream.Signature(MapBeat(cfg))),
            "counters": Out(stream.Signature(TileCounters(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        queues = {}
        for name in ("representatives", "map", "counters"):
            port = getattr(self, name)
            q = fifo.SyncFIFO(width=port.payload.shape().size, depth=2)
            m.submodules[f"{name}_queue"] = queues[name] = q
            wiring.connect(m, q.r_stream, wiring.flipped(port))
        vin = self.vectors
        end = vin.payload.end
        position = Signal(index_range(cfg.tile_tokens))
        m.d.comb += vin.ready.eq(queues["representatives"].w_rdy & queues["map"].w_rdy & queues["counters"].w_rdy)
        take = vin.valid & vin.ready
        entry = Signal(MapBeat(cfg))
        counts = Signal(TileCounters(cfg))
        m.d.comb += [
            entry.index.eq(position), entry.end.eq(end),
            counts.unique.eq(cfg.tile_tokens), counts.base.eq(0), counts.end.eq(end),
            queues["representatives"].w_data.eq(vin.payload), queues["representatives"].w_en.eq(take),
            queues["map"].w_data.eq(entry), queues["map"].w_en.eq(take),
            queues["counters"].w_data.eq(counts), queues["counters"].w_en.eq(take & end.chunk),
        ]
        with m.If(take):
            m.d.sync += position.eq(Mux(end.chunk, 0, position + 1))
        return m


class FocusAccelerator(wiring.Component):
    """One Focus job: optional SEC, then per tile SIC (or dense), the array on the unique vectors
    and the scatter, overlapped; bit-exact with :mod:`focus.sim` (docs/semantics.md).

    Let ``T = cfg.tokens``, ``TT = cfg.tile_tokens``, ``C = cfg.chunks``, ``R = cfg.rows``,
    ``P = n_tiles``.

    Ports and stream order
      ``command``  In :func:`JobCommand`, one per job, taken when the previous job has ended.
                   ``k > T``: the job ends with ``BAD_K``, else ``n_tiles = 0`` with ``BAD_N_TILES`` (its
                   done beat two cycles on, every counter 0) and takes nothing else.
      ``scores``   In, SEC's score stream (only when ``k > 0``): ``heads x text`` rows of ``T``
                   scores, several per beat (:class:`~focus.hdl.sec.SemanticConcentrator`).
      ``mask``     Out, SEC's mask (only when ``k > 0``), ascending token order; the top keeps it
                   as a keep map and zeroes the pruned tokens' vectors on their way to SIC.
      ``tokens``   In :func:`~focus.hdl.streams.VectorBeat`: the job's ``T x C`` vectors
                   tile-major, chunk-minor, raster order within a tile-chunk, framed
                   (``end.chunk``/``tile``/``job``, docs/streams.md). Taken after SEC has finished.
      ``weights``  In :func:`~focus.hdl.streams.WeightRow`: per tile, ``for nt in range(P): for c
                   in range(C): for r in range(R):`` row ``W[c*R + r, nt*cols : nt*cols + cols]``
                   (``cols`` columns, zero beyond N and beyond K): every weight tile once per tile.
      ``results``  Out :func:`~focus.hdl.streams.ResultBeat`: per tile, per N-tile ``nt``, the
                   tile's ``TT`` output rows in raster order, columns ``nt*cols .. nt*cols+cols-1``;
                   ``end.chunk`` and ``end.tile`` on each block's last row, ``end.job`` on the
                   job's last.
      ``done``     Out :data:`JobDone`: one beat per job, offered two cycles after its last
                   result's handshake (after the command's for a refused one): the status and the
                   job's counters (docs/accelerator.md).
    Modes
      ``FOCUS``: SIC concentrates each tile-chunk; the array makes ``P`` passes over its ``U``
      unique vectors (``max(U, 1)``), the scatter adds each partial row into all member rows.
      ``DENSE``: :class:`DenseBypass` instead of SIC: ``U = TT`` every tile-chunk, the same
      pass buffer, array and scatter. Outputs equal the golden model's ``outputs``
      (``outputs_dense`` in dense mode).
    Overlap
      SIC (or the bypass) fills one pass-buffer bank with tile ``n + 1`` while the array and the
      scatter replay tile ``n`` from the other; the scatter adds pass ``i`` while the array
      computes pass ``i + 1`` and emits N-tile block ``nt`` while accumulating ``nt + 1``.
    Reset
      Synchronous; abandons the job (every block forgets its state); the next beat on ``command``
      starts a new job.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "command": In(stream.Signature(JobCommand(cfg))),
            "scores": In(stream.Signature(SecScore(cfg))),
            "mask": Out(stream.Signature(SecMask(cfg))),
            "tokens": In(stream.Signature(VectorBeat(cfg))),
            "weights": In(stream.Signature(WeightRow(cfg))),
            "results": Out(stream.Signature(ResultBeat(cfg))),
            "done": Out(stream.Signature(JobDone)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.sec = sec = SemanticConcentrator(cfg)
        m.submodules.sic = sic = SimilarityConcentrator(cfg)
        m.submodules.dense = dense = DenseBypass(cfg)
        m.submodules.passes = passes = PassBuffer(cfg)
        m.submodules.array = array = SystolicArray(cfg)
        m.submodules.scatter = scatter = ScatterAccumulator(cfg)

        # ---------------------------------------------------------------- fixed connections
        wiring.connect(m, wiring.flipped(self.weights), array.weights)
        wiring.connect(m, passes.activations, array.activations)
        wiring.connect(m, passes.members, scatter.members)
        wiring.connect(m, array.results, scatter.partials)
        wiring.connect(m, scatter.results, wiring.flipped(self.results))

        # ---------------------------------------------------------------- job
        job = Signal(JobCommand(cfg))
        command = self.command
        with m.FSM(name="job_state") as fsm:
            with m.State("IDLE"):
                m.d.comb += command.ready.eq(1)
                with m.If(command.valid):
                    m.d.sync += job.eq(command.payload)
                    with m.If(command.payload.k > cfg.tokens):
                        m.next = "REFUSE_SETTLE"
                    with m.Elif(command.payload.n_tiles == 0):
                        m.next = "NO_TILES_SETTLE"
                    with m.Elif(command.payload.k.any()):
                        m.next = "SEC_START"
                    with m.Else():
                        m.next = "RUN"
            with m.State("SEC_START"):
                m.d.comb += [sec.jobs.valid.eq(1), sec.jobs.payload.k.eq(job.k)]
                with m.If(sec.jobs.ready):
                    m.next = "SEC"
            with m.State("SEC"):
                with m.If(sec.status.valid):
                    m.d.comb += sec.status.ready.eq(1)
                    with m.If(sec.status.payload.status == SecStatus.OK):
                        m.next = "RUN"
                    with m.Else():
                        m.next = "BAD_SCORES_SETTLE"
            with m.State("RUN"):
                with m.If(self.results.valid & self.results.ready & self.results.payload.end.job):
                    m.next = "DONE_SETTLE"
            for state, status in (("REFUSE", JobStatus.BAD_K), ("NO_TILES", JobStatus.BAD_N_TILES),
                                  ("BAD_SCORES", JobStatus.BAD_LENGTH), ("DONE", JobStatus.OK)):
                with m.State(f"{state}_SETTLE"):    # the counters take in the job's last events
                    m.next = state
                with m.State(state):                # the done beat, then the next command
                    m.d.comb += [self.done.valid.eq(1), self.done.payload.status.eq(status)]
                    with m.If(self.done.ready):
                        m.next = "IDLE"
        running = fsm.ongoing("RUN")
        in_sec = fsm.ongoing("SEC_START") | fsm.ongoing("SEC")
        dense_mode = job.mode == JobMode.DENSE
        m.d.comb += passes.n_tiles.eq(job.n_tiles)

        # ---------------------------------------------------------------- SEC and the keep map
        wiring.connect(m, wiring.flipped(self.scores), sec.scores)
        wiring.connect(m, sec.mask, wiring.flipped(self.mask))
        lanes = cfg.cols
        words = -(-cfg.tokens // lanes)
        m.submodules.keep_map = keep_map = memory.Memory(shape=lanes, depth=max(words, 2), init=[])
        keep_write = keep_map.write_port()
        mask_word = Signal(index_range(words))
        mask_take = self.mask.valid & self.mask.ready
        m.d.comb += [keep_write.addr.eq(mask_word), keep_write.data.eq(self.mask.payload.keep),
                     keep_write.en.eq(mask_take)]
        with m.If(mask_take):
            m.d.sync += mask_word.eq(Mux(self.mask.payload.last, 0, mask_word + 1))

        # ---------------------------------------------------------------- tokens: zero the pruned
        # position of the next token in the keep map (word, bit): the top's own count of its input
        tokens = self.tokens
        word, bit = Signal(index_range(words)), Signal(index_range(lanes))
        tile_word, tile_bit = Signal(index_range(words)), Signal(index_range(lanes))
        next_word = Mux(equals(bit, lanes - 1), word + 1, word)
        next_bit = Mux(equals(bit, lanes - 1), 0, bit + 1)
        staged = Signal(VectorBeat(cfg))
        staged_valid = Signal()
        staged_bit = Signal(index_range(lanes))
        staged_ready = Signal()
        keep_read = keep_map.read_port()
        advance = Signal()
        tokens_done = Signal()            # the job's last token has been taken
        m.d.comb += [
            advance.eq(~staged_valid | staged_ready),
            tokens.ready.eq(running & ~tokens_done & advance),
            keep_read.addr.eq(word), keep_read.en.eq(advance),
        ]
        take = tokens.valid & tokens.ready
        with m.If(advance):
            m.d.sync += [staged_valid.eq(take), staged.eq(tokens.payload), staged_bit.eq(bit)]
        with m.If(take):
            end = tokens.payload.end
            with m.If(end.job):
                m.d.sync += [word.eq(0), bit.eq(0), tile_word.eq(0), tile_bit.eq(0)]
            with m.Elif(end.tile):
                m.d.sync += [word.eq(next_word), bit.eq(next_bit), tile_word.eq(next_word), tile_bit.eq(next_bit)]
            with m.Elif(end.chunk):
                m.d.sync += [word.eq(tile_word), bit.eq(tile_bit)]
            with m.Else():
                m.d.sync += [word.eq(next_word), bit.eq(next_bit)]
        kept = Signal()
        m.d.comb += kept.eq(~job.k.any() | keep_read.data.bit_select(staged_bit, 1))
        vector = Signal(VectorBeat(cfg))
        m.d.comb += [vector.data.eq(Mux(kept, staged.data, 0)), vector.end.eq(staged.end)]

        # ---------------------------------------------------------------- SIC or dense into the pass buffer
        # The outputs are routed by a flip-flop copy of the mode (one cycle behind the command; SIC
        # and the bypass answer a vector a cycle later at the earliest), not by the job register's
        # high-fanout net: the pass buffer's map writer starts at it.
        route_dense = Signal()
        m.d.sync += route_dense.eq(dense_mode)
        with m.If(dense_mode):
            m.d.comb += [dense.vectors.valid.eq(staged_valid), dense.vectors.payload.eq(vector),
                         staged_ready.eq(dense.vectors.ready)]
        with m.Else():
            m.d.comb += [sic.vectors.valid.eq(staged_valid), sic.vectors.payload.eq(vector),
                         staged_ready.eq(sic.vectors.ready)]
        with m.If(route_dense):
            for name in ("representatives", "map", "counters"):
                source, sink = getattr(dense, name), getattr(passes, name)
                m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload), source.ready.eq(sink.ready)]
        with m.Else():
            for name in ("representatives", "map", "counters"):
                source, sink = getattr(sic, name), getattr(passes, name)
                m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload), source.ready.eq(sink.ready)]

        # ---------------------------------------------------------------- counters
        # Each counter adds a registered increment every cycle: what happened in cycle t (a beat
        # taken anywhere in the design) is counted at the end of cycle t + 1, so no handshake of a
        # block reaches a counter's carry chain in the cycle it happens. The command's acceptance
        # zeroes the increments of its own cycle and clears the counters in the next one through
        # one flip-flop copy per counter (``kept_clear_*``, a gate in front of the counter's adder,
        # not one net into the reset or enable pins of all COUNTERS x COUNTER_WIDTH flip-flops).
        # Every end state waits one cycle (``*_SETTLE``) before its done beat, so the beat carries
        # the job's counts, its last cycle included, exactly as if they were counted in place.
        counters = Signal(JobCounters)
        m.d.comb += self.done.payload.counters.eq(counters)
        start = command.valid & command.ready
        acts = array.activations
        acts_take = acts.valid & acts.ready
        acts_finished = Signal()          # the job's last activation has gone into the array
        sic_active = Signal()             # from the first token to the last counters beat
        tile_counts = passes.counters
        counts_take = tile_counts.valid & tile_counts.ready
        members_take = scatter.members.valid & scatter.members.ready
        array_idle = running & ~acts_take & ~acts_finished
        weights_missing = array.weights.ready & ~array.weights.valid
        c = tile_counts.payload
        focus_counts = counts_take & ~dense_mode
        # row_adds counts one cycle later still: the taken beat's slot flags are registered, then
        # added up (the members beat comes out of the pass buffer's queue, a LUT RAM read, and its
        # handshake and the flags' sum were late on an 85 MHz ULX3S-85F build, 11.91 ns). The
        # job's last members beat is taken cycles before its last result, so the done beat still
        # counts every row addition.
        taken_slots = Signal(len(scatter.members.payload.slots), name="taken_slots")
        m.d.sync += taken_slots.eq(Mux(members_take & ~start, Cat(slot.valid for slot in scatter.members.payload.slots), 0))
        increments = {
            "cycles": running | in_sec,
            "sec_cycles": in_sec,
            "array_busy": running & acts_take,
            "drain": running & ~acts_take & acts_finished,
            "wait_input": array_idle & acts.valid & weights_missing,
            "wait_scatter": array_idle & acts.valid & ~weights_missing,
            "wait_sic": array_idle & ~acts.valid,
            "sic_cycles": running & (sic_active | take),
            "scatter_busy": running & members_take,
            "row_adds": sum(taken_slots),
            "unique": Mux(focus_counts, c.unique, Mux(counts_take, cfg.tile_tokens, 0)),
            "similar": Mux(focus_counts, c.similar, 0),
            "zero": Mux(focus_counts, c.zero, 0),
        }
        assert set(increments) == set(COUNTER_NAMES)
        for name in COUNTER_NAMES:
            clear = Signal(name=f"kept_clear_{name}")
            increment = Signal.like(Value.cast(increments[name]), name=f"increment_{name}")
            m.d.sync += [clear.eq(start), increment.eq(Mux(start, 0, increments[name]))]
            value = getattr(counters, name)
            m.d.sync += value.eq(Mux(clear, 0, value) + increment)
        with m.If(start):
            m.d.sync += [acts_finished.eq(0), sic_active.eq(0)]
        with m.If(take):
            m.d.sync += sic_active.eq(1)
        with m.If(take & tokens.payload.end.job):
            m.d.sync += tokens_done.eq(1)
        with m.If(start):
            m.d.sync += tokens_done.eq(0)
        with m.If(counts_take & tile_counts.payload.end.job):
            m.d.sync += sic_active.eq(0)
        with m.If(acts_take & acts.payload.end.job):
            m.d.sync += acts_finished.eq(1)
        return m
