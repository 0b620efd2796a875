"""Weight-stationary systolic array: one K-chunk x N-tile weight tile per pass over a stream of
activation vectors, double-buffered weights, results out in order."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from ..plans import array_fifo_depth
from .pe import PECell, pe_cell
from .skew import InputSkew, OutputDeskew
from .streams import CreditQueue, Framing, ResultBeat, VectorBeat, WeightRow

__all__ = ["SystolicArray"]


class SystolicArray(wiring.Component):
    """A ``cfg.rows`` x ``cfg.cols`` weight-stationary systolic array.

    Function
      A *pass* multiplies a stream of activation vectors by one weight tile ``W`` (``rows`` x
      ``cols``): for each activation beat ``x`` (``rows`` elements) one result beat ``y`` with
      ``y[n] = sum_k x[k] * W[k][n]``, signed, wrapping modulo ``2**cfg.acc_width``. Results leave
      in activation order, ``end`` copied. Passes follow each other without a gap; pass ``p`` uses
      the ``p``-th weight tile received.

    Ports
      ``weights``      In stream of :func:`~focus.hdl.streams.WeightRow`. A tile is ``rows`` beats,
                       beat ``k`` = row ``k`` of ``W`` (the K index within the chunk), tiles in pass
                       order.
      ``activations``  In stream of :func:`~focus.hdl.streams.VectorBeat`; ``end.chunk`` ends a
                       pass (a pass is one tile-chunk's vectors, docs/streams.md). A pass has at
                       least one beat.
      ``results``      Out stream of :func:`~focus.hdl.streams.ResultBeat`, one beat per activation
                       beat, in order, ``end`` copied from it.

    Structure
      PE ``(k, n)`` holds ``W[k][n]`` (:class:`~focus.hdl.pe.ProcessingElement`'s logic, placed
      with :func:`~focus.hdl.pe.pe_cell` into this one flat module). Activations enter row ``k``
      skewed by ``k`` cycles (:class:`~focus.hdl.skew.InputSkew`) and move right one PE per cycle; partial sums move down one row per cycle; column ``n`` leaves the bottom row ``n``
      cycles after column 0 and is realigned by :class:`~focus.hdl.skew.OutputDeskew`. The grid is
      free-running (no enable): a valid bit and ``end`` travel in a separate ``rows + cols + 2``
      stage pipeline beside it.

    Weights: staging plus two banks
      Weight beats shift up a per-column staging chain. When the chain holds a whole tile it is
      *committed* (copied in one cycle) into the next bank, alternating between bank 0 and 1; the
      bank a vector uses travels with it through the array, so consecutive passes on different
      banks overlap in the grid. A commit into bank ``b`` waits until the previous pass on ``b``
      has been fully accepted and its last vector has made its last multiply (``rows + cols - 1``
      cycles after that vector's handshake). While a tile waits, ``weights.ready`` is low; the
      next tile streams in right after a commit. So up to three tiles are held (two banks and the
      chain), and the array runs passes back to back whenever a pass has at least
      ``max(rows, rows + cols - 2)`` vectors; shorter passes wait for a bank or for weights (see
      :mod:`focus.sim.array_model`). The weight shift and commit enables reach every PE of a column
      from that column's own flip-flops (``weights.ready`` and the commit are registered, loaded
      from the next state); activations, banks and sums move only between neighbours.

    Timing (edges counted from the activation handshake, no backpressure)
      The first vector of a pass is accepted at the earliest on the edge its tile is committed,
      which is at the earliest the edge after the tile's last weight beat. A result beat enters the
      output FIFO ``rows + cols + 2`` edges after its vector's handshake and can be taken from
      ``results`` ``rows + cols + 4`` edges after it (:attr:`result_latency`). Initiation interval 1.

    Backpressure
      The grid never stalls. Results go through a :class:`~focus.hdl.streams.CreditQueue` of
      :attr:`fifo_depth` ``= rows + cols + 5`` entries (:func:`focus.plans.array_fifo_depth`); an
      activation is accepted only while fewer than that many accepted vectors have not left
      through ``results``, so a full queue stops ``activations.ready`` instead of losing a result,
      and with ``results.ready`` held high the credit never limits throughput.

    Reset
      Synchronous. Drops queued results, vectors in flight, committed and partly loaded tiles: the
      next job starts by sending its first weight tile again. Datapath registers are not reset.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        #: Edges from an activation handshake to the earliest handshake of its result on ``results``.
        self.result_latency = cfg.rows + cfg.cols + 4
        #: Output FIFO entries, which is also the number of vectors that may be in flight.
        self.fifo_depth = array_fifo_depth(cfg)
        super().__init__({
            "weights": In(stream.Signature(WeightRow(cfg))),
            "activations": In(stream.Signature(VectorBeat(cfg))),
            "results": Out(stream.Signature(ResultBeat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, C = cfg.rows, cfg.cols
        weights, acts, results = self.weights, self.activations, self.results

        # ---------------------------------------------------------------- control
        # ``commit`` and ``weights.ready`` depend on the state alone (the chain's fill, the banks'
        # loaded and drain counts), so each is a flip-flop loaded from the state's next values
        # (``*_next``), and the PEs' shift
        # and commit enables come from one flip-flop copy per column (``kept_*``, kept apart in
        # synthesis by focus.hdl.util.KEEP_COPIES): one net each drove every PE's weight registers
        # (on the ULX3S-85F the shift enable, a handshake into 512 clock enables, 13.09 ns).
        staged = Signal(range(R + 1))            # weight rows in the staging chain
        wbank = Signal()                         # bank the next commit writes
        abank = Signal()                         # bank the current pass reads
        loaded = [Signal(name=f"loaded{b}") for b in range(2)]          # committed, pass not finished
        drain = [Signal(range(R + C), name=f"drain{b}") for b in range(2)]  # last user still in the grid
        commit = Signal()                        # staged == R and bank wbank is free
        w_ready = Signal(init=1)                 # staged < R or commit
        m.submodules.queue = queue = CreditQueue(ResultBeat(cfg), self.fifo_depth, buffered=True)
        w_take = Signal()
        a_take = Signal()
        a_last = Signal()
        bank_ok = Signal()

        m.d.comb += [
            weights.ready.eq(w_ready),
            w_take.eq(weights.valid & weights.ready),
            bank_ok.eq(Mux(abank, loaded[1], loaded[0]) | (commit & (wbank == abank))),
            acts.ready.eq(bank_ok & queue.admit),
            queue.start.eq(a_take),
            a_take.eq(acts.valid & acts.ready),
            a_last.eq(a_take & acts.payload.end.chunk),
        ]
        staged_next, wbank_next = Signal.like(staged), Signal()
        loaded_next = [Signal(name=f"loaded{b}_next") for b in range(2)]
        drain_next = [Signal.like(drain[b], name=f"drain{b}_next") for b in range(2)]
        m.d.comb += [staged_next.eq(staged), wbank_next.eq(wbank),
                     *(loaded_next[b].eq(loaded[b]) for b in range(2)),
                     *(drain_next[b].eq(drain[b]) for b in range(2))]
        with m.If(commit):
            m.d.comb += [staged_next.eq(w_take), wbank_next.eq(~wbank)]
        with m.Elif(w_take):
            m.d.comb += staged_next.eq(staged + 1)
        with m.If(a_last):
            m.d.sync += abank.eq(~abank)
        for b in range(2):
            with m.If(commit & (wbank == b)):
                m.d.comb += loaded_next[b].eq(1)
            with m.If(a_last & (abank == b)):                      # wins over a same-cycle commit
                m.d.comb += [loaded_next[b].eq(0), drain_next[b].eq(R + C - 2)]
            with m.Elif(drain[b].any()):
                m.d.comb += drain_next[b].eq(drain[b] - 1)
        m.d.sync += [staged.eq(staged_next), wbank.eq(wbank_next),
                     *(loaded[b].eq(loaded_next[b]) for b in range(2)),
                     *(drain[b].eq(drain_next[b]) for b in range(2))]
        # (x.any() rather than x != 0: Amaranth writes x == 0 as !x, which Verilator's lint rejects)
        full_next, commit_next, w_ready_next = Signal(), Signal(), Signal()
        m.d.comb += [
            full_next.eq(staged_next == R),
            commit_next.eq(full_next & Mux(wbank_next, ~loaded_next[1] & ~drain_next[1].any(),
                                           ~loaded_next[0] & ~drain_next[0].any())),
            w_ready_next.eq(~full_next | commit_next),
        ]
        m.d.sync += [commit.eq(commit_next), w_ready.eq(w_ready_next)]
        w_shift, commit0, commit1 = [], [], []
        for n in range(C):
            shift_ok = Signal(init=1, name=f"kept_w_ready{n}")
            commits = Signal(name=f"kept_commit0_{n}"), Signal(name=f"kept_commit1_{n}")
            m.d.sync += [shift_ok.eq(w_ready_next),
                         commits[0].eq(commit_next & ~wbank_next), commits[1].eq(commit_next & wbank_next)]
            shift = Signal(name=f"w_shift{n}")
            m.d.comb += shift.eq(weights.valid & shift_ok)
            w_shift.append(shift)
            commit0.append(commits[0])
            commit1.append(commits[1])

        # ---------------------------------------------------------------- grid
        m.submodules.skew = skew = InputSkew(cfg)
        m.submodules.deskew = deskew = OutputDeskew(cfg)
        for k in range(R):
            lane = Signal(skew.vector[k].shape(), name=f"in_lane{k}", reset_less=True)
            m.d.sync += [
                lane.a.eq(Mux(a_take, acts.payload.data[k], 0)),
                lane.bank.eq(abank),
            ]
            m.d.comb += skew.vector[k].eq(lane)

        # The grid: one flat module of pe_cell()s (see focus.hdl.pe for why not PE submodules).
        # Weights shift up each column from the port below the bottom row, so that after a whole
        # tile row k holds beat k.
        grid = [[PECell.create(cfg, f"pe_{k}_{n}") for n in range(C)] for k in range(R)]
        for k in range(R):
            for n in range(C):
                left = grid[k][n - 1] if n else None
                pe_cell(m, grid[k][n],
                        a_in=left.a if left else skew.skewed[k].a,
                        bank_in=left.bank if left else skew.skewed[k].bank,
                        psum_in=grid[k - 1][n].psum if k else 0,
                        w_in=grid[k + 1][n].staged if k < R - 1 else weights.payload[n],
                        w_shift=w_shift[n], commit0=commit0[n], commit1=commit1[n], platform=platform)
        for n in range(C):
            m.d.comb += deskew.skewed[n].eq(grid[R - 1][n].psum)

        # A vector accepted at edge e is in the input register in cycle e, in PE (k, n) in cycle
        # e + k + n, its column n sum leaves the bottom row in cycle e + R + n + 2 (weight and
        # product registers, then the psum) and the de-skew in cycle e + R + C + 1: the valid/end
        # pipeline has R + C + 2 stages.
        valid, end = a_take, acts.payload.end
        for stage in range(R + C + 2):
            valid_r = Signal(name=f"valid_d{stage}")
            end_r = Signal(Framing, name=f"end_d{stage}")
            m.d.sync += [valid_r.eq(valid), end_r.eq(end)]
            valid, end = valid_r, end_r

        # ---------------------------------------------------------------- output queue
        m.d.comb += [
            queue.w_stream.payload.data.eq(deskew.vector),
            queue.w_stream.payload.end.eq(end),
            queue.w_stream.valid.eq(valid),              # never full: see the credit above
        ]
        wiring.connect(m, queue.r_stream, wiring.flipped(results))
        return m
