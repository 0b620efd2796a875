"""GEMM sequencer: an M x K x N integer matrix product on the systolic array, K-chunks accumulated
in an output buffer."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .systolic import ActivationVector, ArrayResult, ResultRow, SystolicArray, WeightRow

__all__ = ["GemmCommand", "GemmResult", "GemmSequencer", "N_TILES_WIDTH"]

#: Width of the ``n_tiles`` field of a command: up to 65535 N-tiles per job.
N_TILES_WIDTH = 16


def GemmCommand(cfg: FocusConfig) -> data.StructLayout:
    """A GEMM job: ``rows`` = M (0 to ``cfg.tile_tokens``), ``k_chunks`` = ceil(K / ``cfg.rows``)
    (0 to ``cfg.chunks``), ``n_tiles`` = ceil(N / ``cfg.cols``), all unsigned."""
    return data.StructLayout({
        "rows": range(cfg.tile_tokens + 1),
        "k_chunks": range(cfg.chunks + 1),
        "n_tiles": N_TILES_WIDTH,
    })


def GemmResult(cfg: FocusConfig) -> data.StructLayout:
    """Result beat: ``data`` (:func:`~focus.hdl.systolic.ResultRow`, ``cfg.cols`` signed
    ``cfg.acc_width`` sums) and ``last``, set on the final beat of a job."""
    return ArrayResult(cfg)


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
                       accepted and does nothing (no result beats).
      ``weights``      In stream of :func:`~focus.hdl.systolic.WeightRow`:
                       ``for nt in range(NT): for kc in range(KC): for r in range(R):`` the beat
                       ``W[kc*R + r, nt*C : nt*C + C]``; rows beyond K and columns beyond N must be
                       zero. Weights are not tied to a command: the next job's first tiles may be
                       sent early (up to three tiles are taken ahead).
      ``activations``  In stream of :func:`~focus.hdl.systolic.ActivationVector`:
                       ``for nt in range(NT): for kc in range(KC): for m in range(M):`` the beat
                       ``A[m, kc*R : kc*R + R]``. Lanes beyond K may hold anything (their weights
                       are zero). Taken only while a job is running.
      ``results``      Out stream of :func:`GemmResult`: ``for nt in range(NT): for m in range(M):``
                       the beat ``Y[m, nt*C : nt*C + C]`` (columns beyond N are zero); ``last`` on
                       the job's final beat.

    Timing (no backpressure, every source valid)
      Initiation interval 1: passes run back to back when ``M >= max(R, R + C - 2)``
      (:mod:`focus.sim.array_model` gives the exact cycle count for any shape). A result beat is
      delivered ``R + C + 5`` edges after the handshake of the last activation it depends on.
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
        self.result_latency = cfg.rows + cfg.cols + 5
        super().__init__({
            "command": In(stream.Signature(GemmCommand(cfg))),
            "weights": In(stream.Signature(WeightRow(cfg))),
            "activations": In(stream.Signature(ActivationVector(cfg))),
            "results": Out(stream.Signature(GemmResult(cfg))),
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
            empty = ~p.rows.any() | ~p.k_chunks.any() | ~p.n_tiles.any()
            m.d.sync += [shape.eq(p), busy.eq(~empty), feeding.eq(~empty)]

        # ---------------------------------------------------------------- activations -> array
        m_in = Signal(range(cfg.tile_tokens))
        k_in = Signal(range(cfg.chunks))
        n_in = Signal(N_TILES_WIDTH)
        row_last = m_in == shape.rows - 1
        m.d.comb += [
            array.activations.valid.eq(acts.valid & feeding),
            array.activations.payload.data.eq(acts.payload),
            array.activations.payload.last.eq(row_last),
            acts.ready.eq(array.activations.ready & feeding),
        ]
        with m.If(acts.valid & acts.ready):
            m.d.sync += m_in.eq(m_in + 1)
            with m.If(row_last):
                m.d.sync += [m_in.eq(0), k_in.eq(k_in + 1)]
                with m.If(k_in == shape.k_chunks - 1):
                    m.d.sync += [k_in.eq(0), n_in.eq(n_in + 1)]
                    with m.If(n_in == shape.n_tiles - 1):
                        m.d.sync += [n_in.eq(0), feeding.eq(0)]

        # ---------------------------------------------------------------- array -> accumulator
        # Stage A is the array's result stream; taking a beat reads its buffer row. Stage B adds
        # the row read (or 0 for the first chunk) and either writes the sum back or, for the last
        # chunk, loads it into the output register. The whole pipeline advances together.
        m.submodules.buffer = buffer = Memory(shape=ResultRow(cfg), depth=cfg.tile_tokens, init=[])
        wr = buffer.write_port()
        rd = buffer.read_port(transparent_for=(wr,))

        m_out = Signal(range(cfg.tile_tokens))
        k_out = Signal(range(cfg.chunks))
        n_out = Signal(N_TILES_WIDTH)
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
        b_end = Signal(reset_less=True)
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
                b_end.eq(final_chunk & (n_out == shape.n_tiles - 1) & (m_out == shape.rows - 1)),
                results.valid.eq(b_valid & b_final),
                results.payload.data.eq(sums),
                results.payload.last.eq(b_end),
            ]
        with m.If(take):
            m.d.sync += m_out.eq(m_out + 1)
            with m.If(m_out == shape.rows - 1):
                m.d.sync += [m_out.eq(0), k_out.eq(k_out + 1)]
                with m.If(final_chunk):
                    m.d.sync += [k_out.eq(0), n_out.eq(n_out + 1)]
        with m.If(results.valid & results.ready & results.payload.last):
            m.d.sync += [busy.eq(0), n_out.eq(0)]
        return m
