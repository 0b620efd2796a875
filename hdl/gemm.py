"""GEMM sequencer: an M x K x N integer matrix product on the systolic array, K-chunks accumulated
in an output buffer."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .streams import Framing, ResultBeat, ResultRow, VectorBeat, WeightRow
from .systolic import SystolicArray

__all__ = ["GemmCommand", "GemmSequencer", "N_TILES_WIDTH"]

#: Width of the ``n_tiles`` field of a command: up to 65535 N-tiles per job.
N_TILES_WIDTH = 16


def GemmCommand(cfg: FocusConfig) -> data.StructLayout:
    """A GEMM job: ``m`` = M, the rows of A (0 to ``cfg.tile_tokens``), ``k_chunks`` =
    ceil(K / ``cfg.rows``) (0 to ``cfg.chunks``), ``n_tiles`` = ceil(N / ``cfg.cols``), all unsigned."""
    return data.StructLayout({
        "m": range(cfg.tile_tokens + 1),
        "k_chunks": range(cfg.chunks + 1),
        "n_tiles": N_TILES_WIDTH,
    })


class GemmSequencer(wiring.Component):
    """``Y = A @ W`` for ``A`` (M x K) and ``W`` (K x N), signed ``cfg.data_width`` integers, exact
    in signed ``cfg.acc_width`` (the configuration guarantees no overflow for K <= ``cfg.hidden``).

    The matrices are cut into K-chunks of ``R = cfg.rows`` and N-tiles of ``C = cfg.cols``, zero
    padded: ``KC = ceil(K / R)`` chunks, ``NT = ceil(N / C)`` tiles. Each (N-tile, K-chunk) pair is
    one pass of :class:`~focus.hdl.systolic.SystolicArray` over the M rows; the passes of an N-tile
    are summed in an output buffer of ``cfg.tile_tokens`` rows x ``C`` accumulators (so M is at most
    ``cfg.tile_tokens``, a tile of tokens), and the last pass of the N-tile adds its partial sums to
    the buffer on the way out. Nothing is re-sent: the caller streams each operand in the order the
    passes use it.

    Ports and stream order
      ``command``      In stream of :func:`GemmCommand`: one beat per job. Accepted only when the
                       previous job has delivered its last result. A job with a zero field is
                       accepted and does nothing (no result beats, no activations).
      ``weights``      In stream of :func:`~focus.hdl.streams.WeightRow`:
                       ``for nt in range(NT): for kc in range(KC): for r in range(R):`` the beat
                       ``W[kc*R + r, nt*C : nt*C + C]``; rows beyond K and columns beyond N must be
                       zero. Weights are not tied to a command: the next job's first tiles may be
                       sent early (up to three tiles are taken ahead).
      ``activations``  In stream of :func:`~focus.hdl.streams.VectorBeat`:
                       ``for nt in range(NT): for kc in range(KC): for m in range(M):`` the beat
                       ``A[m, kc*R : kc*R + R]``. Lanes beyond K may hold anything (their weights
                       are zero). Framing (docs/streams.md): ``end.chunk`` on the last row of every
                       pass (``m = M-1``), ``end.tile`` also when ``kc = KC-1`` (the N-tile's K
                       reduction is complete), ``end.job`` also on the job's last beat; they must
                       agree with the command. Taken only while a job is running; the job stops
                       taking activations after the beat with ``end.job``.
      ``results``      Out stream of :func:`~focus.hdl.streams.ResultBeat`: ``for nt in range(NT):
                       for m in range(M):`` the beat ``Y[m, nt*C : nt*C + C]`` (columns beyond N
                       are zero); ``end.chunk`` and ``end.tile`` on the last row of every N-tile,
                       ``end.job`` on the job's final beat.

    Timing (no backpressure, every source valid)
      Initiation interval 1: passes run back to back when ``M >= max(R, R + C - 2)``
      (:mod:`focus.sim.array_model` gives the exact cycle count for any shape). A result beat is
      delivered ``R + C + 6`` edges after the handshake of the last activation it depends on.
      Between jobs the array drains (the next command waits for the last result).

    Backpressure
      ``results`` may stall at any time: the accumulator holds, the array's output FIFO fills and
      then ``activations.ready`` falls; nothing is lost or repeated.

    Reset
      Synchronous; abandons the job in progress, its buffered sums and any weights taken ahead.
      The next job starts with a command and its first weight tile.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        #: Edges from the handshake of a job's last activation to the handshake of its last result.
        self.result_latency = cfg.rows + cfg.cols + 6
        super().__init__({
            "command": In(stream.Signature(GemmCommand(cfg))),
            "weights": In(stream.Signature(WeightRow(cfg))),
            "activations": In(stream.Signature(VectorBeat(cfg))),
            "results": Out(stream.Signature(ResultBeat(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.array = array = SystolicArray(cfg)
        wiring.connect(m, wiring.flipped(self.weights), array.weights)
        command, acts, results = self.command, self.activations, self.results

        # ---------------------------------------------------------------- job
        shape = Signal(GemmCommand(cfg))
        busy = Signal()                  # a job is running: from its command to its last result
        feeding = Signal()               # ... and still taking activations
        m.d.comb += command.ready.eq(~busy)
        with m.If(command.valid & command.ready):
            p = command.payload
            # (x.any() rather than x != 0: Amaranth writes x == 0 as !x, which Verilator's lint rejects)
            empty = ~p.m.any() | ~p.k_chunks.any() | ~p.n_tiles.any()
            m.d.sync += [shape.eq(p), busy.eq(~empty), feeding.eq(~empty)]

        # ---------------------------------------------------------------- activations -> array
        # the activations' framing is the array's: end.chunk ends a pass
        m.d.comb += [
            array.activations.valid.eq(acts.valid & feeding),
            array.activations.payload.eq(acts.payload),
            acts.ready.eq(array.activations.ready & feeding),
        ]
        with m.If(acts.valid & acts.ready & acts.payload.end.job):
            m.d.sync += feeding.eq(0)

        # ---------------------------------------------------------------- array -> accumulator
        # Stage A is the array's result stream; taking a beat reads its buffer row. Stage B adds
        # the row read (or 0 for the first chunk) and either writes the sum back or, for the last
        # chunk, loads it into the output register. The whole pipeline advances together.
        m.submodules.buffer = buffer = Memory(shape=ResultRow(cfg), depth=cfg.tile_tokens, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port(transparent_for=(wr,))

        m_out = Signal(range(cfg.tile_tokens))
        k_out = Signal(range(cfg.chunks))
        advance = Signal()
        take = Signal()
        m.d.comb += [
            advance.eq(~results.valid | results.ready),
            array.results.ready.eq(advance),
            take.eq(array.results.valid & advance),
            rd.addr.eq(m_out),
            rd.en.eq(advance),
        ]

        b_valid = Signal()
        b_data = Signal(ResultRow(cfg), reset_less=True)
        b_addr = Signal(range(cfg.tile_tokens), reset_less=True)
        b_first = Signal(reset_less=True)
        b_final = Signal(reset_less=True)
        b_end = Signal(Framing, reset_less=True)
        sums = Signal(ResultRow(cfg))
        for n in range(cfg.cols):
            m.d.comb += sums[n].eq(Mux(b_first, 0, rd.data[n]) + b_data[n])
        m.d.comb += [
            wr.addr.eq(b_addr),
            wr.data.eq(sums),
            wr.en.eq(advance & b_valid & ~b_final),
        ]

        final_chunk = k_out == shape.k_chunks - 1
        with m.If(advance):
            m.d.sync += [
                b_valid.eq(take),
                b_data.eq(array.results.payload.data),
                b_addr.eq(m_out),
                b_first.eq(~k_out.any()),
                b_final.eq(final_chunk),
                b_end.eq(array.results.payload.end),
                results.valid.eq(b_valid & b_final),
                results.payload.data.eq(sums),
                results.payload.end.eq(b_end),
            ]
        # the output buffer's addressing follows the results' framing: a row per beat, a pass per
        # end.chunk, the N-tile's K-chunks counted against the command
        with m.If(take):
            m.d.sync += m_out.eq(m_out + 1)
            with m.If(array.results.payload.end.chunk):
                m.d.sync += [m_out.eq(0), k_out.eq(k_out + 1)]
                with m.If(final_chunk):
                    m.d.sync += k_out.eq(0)
        with m.If(results.valid & results.ready & results.payload.end.job):
            m.d.sync += busy.eq(0)
        return m
