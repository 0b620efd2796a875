"""The stream vocabulary: payload layouts every block of the accelerator shares (docs/streams.md).

One vector layout, one result-row layout, one map entry, and one set of framing flags whose
meaning is the same on every stream that carries them:

``end.chunk``
    the beat is the last of a **tile-chunk** (one K-chunk of one tile: SIC's unit of work, and the
    array's pass over it);
``end.tile``
    ... and that tile-chunk is the last chunk of its tile (the K reduction of the tile is complete);
``end.job``
    ... and that tile is the last of the job.

So ``end.job`` implies ``end.tile``, which implies ``end.chunk``. A stream that replays a tile's
chunks once per N-tile (the accelerator's pass buffer) marks ``end.tile`` on the last chunk of each
replay. Blocks take their framing from these flags, not from counting another block's positions.

:class:`CreditQueue` is the one "accept only while the output queue has room for everything in
flight" helper: a pipeline that cannot stall puts its results into it. :class:`StreamRegister` is
the one register slice: put between two blocks, no combinational path crosses it.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, Value, signed
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig

__all__ = ["Framing", "Vector", "WeightRow", "ResultRow", "VectorBeat", "ResultBeat", "index_shape",
           "MapBeat", "CreditQueue", "StreamRegister"]

#: End-of-unit flags carried by every framed stream (see the module docstring).
Framing = data.StructLayout({"chunk": 1, "tile": 1, "job": 1})


def Vector(cfg: FocusConfig) -> data.ArrayLayout:
    """One K-chunk of one token: ``cfg.vector_size`` (= ``cfg.rows``) signed ``cfg.data_width``
    elements, element 0 in the low bits. SIC's input and output vector and the array's activation."""
    return data.ArrayLayout(signed(cfg.data_width), cfg.vector_size)


def WeightRow(cfg: FocusConfig) -> data.ArrayLayout:
    """One row of a weight tile: ``cfg.cols`` signed ``cfg.data_width`` weights, column 0 in the low bits."""
    return data.ArrayLayout(signed(cfg.data_width), cfg.cols)


def ResultRow(cfg: FocusConfig) -> data.ArrayLayout:
    """One row of results: ``cfg.cols`` signed ``cfg.acc_width`` sums, column 0 in the low bits."""
    return data.ArrayLayout(signed(cfg.acc_width), cfg.cols)


def VectorBeat(cfg: FocusConfig) -> data.StructLayout:
    """A framed vector: ``data`` (:func:`Vector`) and ``end`` (:data:`Framing`)."""
    return data.StructLayout({"data": Vector(cfg), "end": Framing})


def ResultBeat(cfg: FocusConfig) -> data.StructLayout:
    """A framed result row: ``data`` (:func:`ResultRow`) and ``end`` (:data:`Framing`)."""
    return data.StructLayout({"data": ResultRow(cfg), "end": Framing})


def index_shape(cfg: FocusConfig) -> Shape:
    """Signed unique index of a vector: 0 .. ``cfg.tokens - 1``, or -1 for a zero vector."""
    return Shape.cast(range(-1, cfg.tokens))


def MapBeat(cfg: FocusConfig) -> data.StructLayout:
    """A framed similarity-map entry: ``index`` (:func:`index_shape`, the vector's unique index,
    -1 for a zero vector) and ``end`` (:data:`Framing`)."""
    return data.StructLayout({"index": index_shape(cfg), "end": Framing})


class CreditQueue(wiring.Component):
    """An output queue for a pipeline that never stalls, with credit flow control.

    A pipeline *starts* an item (``start`` high for one cycle) only while ``admit`` is high; some
    cycles later it writes the item into ``w_stream`` (``w_stream.ready`` is then always high: the
    credit guarantees room). The queue holds up to ``depth`` items and offers them on ``r_stream``
    in order. ``admit`` is high while fewer than ``depth`` started items have not yet been taken
    from ``r_stream``; so with ``r_stream.ready`` held high, a pipeline of latency ``L`` runs at full
    rate when ``depth`` covers ``L`` plus the queue's own read latency.

    ``buffered=True`` uses :class:`~amaranth.lib.fifo.SyncFIFOBuffered` (registered read data, one
    more cycle from write to read), else :class:`~amaranth.lib.fifo.SyncFIFO`. A buffered queue has
    depth 1 or at least 3 (``ValueError`` for 2: that FIFO can refuse a write the credit allows).

    Reset: synchronous; forgets every item and all credit.
    """

    def __init__(self, shape, depth: int, *, buffered: bool = False):
        if buffered and depth == 2:
            # SyncFIFOBuffered(depth=2) is a 1-entry FIFO before its output register and refuses a
            # write in the cycle its first item moves into that register: a write the credit
            # allows would be lost (tests/test_credit_queue.py)
            self._MustUse__silence = True          # (no "created but never used" warning on the error)
            raise ValueError("CreditQueue: a buffered queue of depth 2 can refuse a write within its credit; "
                             "use depth 1 or at least 3")
        self.depth = depth
        self.buffered = buffered
        self._shape = shape
        super().__init__({
            "start": In(1),
            "admit": Out(1),
            "w_stream": In(stream.Signature(shape)),
            "r_stream": Out(stream.Signature(shape)),
        })

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        queue_class = fifo.SyncFIFOBuffered if self.buffered else fifo.SyncFIFO
        m.submodules.queue = queue = queue_class(width=width, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.w_stream), queue.w_stream)
        wiring.connect(m, queue.r_stream, wiring.flipped(self.r_stream))
        outstanding = Signal(range(self.depth + 1))          # started, not yet taken
        taken = self.r_stream.valid & self.r_stream.ready
        m.d.sync += outstanding.eq(outstanding + self.start - taken)
        m.d.comb += self.admit.eq(outstanding != self.depth)
        return m


class StreamRegister(wiring.Component):
    """A register slice (a two-entry skid buffer): ``output`` carries ``input``'s beats in order,
    unchanged, at up to one beat per cycle.

    ``output.valid``, ``output.payload`` and ``input.ready`` (the inverse of one flip-flop) are
    flip-flop outputs: no combinational path crosses the slice in either direction, so it cuts a
    long valid/ready path between two blocks (a board build puts one on every stream between the
    host link and the accelerator). A beat taken at edge ``e`` can be offered on ``output`` from
    cycle ``e + 1`` (the earliest handshake is edge ``e + 1``); with ``output.ready`` held high it
    takes a beat every cycle. When ``output`` stalls it takes one more beat into its skid register
    and then holds ``input.ready`` low.

    For timing, each ``SEGMENT_BITS`` of the payload has its own flip-flop copies of the output's
    valid and the skid's full flag (``kept_*``, kept apart in synthesis by
    :data:`focus.hdl.util.KEEP_COPIES`), which drive that segment's enables and multiplexer alone,
    and the skid register follows the input while it is empty (its enable is the copy of "not
    full", not ``output.ready`` and ``input.valid``): on a wide slice one enable net spanned
    hundreds of flip-flops (on the ULX3S-85F the done slice's 418, 13.5 ns).

    Reset: synchronous; forgets both beats it may hold.
    """

    #: Payload bits per copy of the control flip-flops.
    SEGMENT_BITS = 64

    def __init__(self, shape):
        super().__init__({"input": In(stream.Signature(shape)), "output": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        into, out = self.input, self.output
        width = Shape.cast(into.payload.shape()).width
        payload_in, payload_out = Value.cast(into.payload), Value.cast(out.payload)
        skid = Signal(width, name="skid")

        def control(valid, full, bits=None):
            """The slice's next state, on ``valid`` and ``full`` (the output's valid and the skid's
            full flag, or a segment's copies of them) and the payload ``bits`` they control."""
            with m.If(out.ready | ~valid):                   # the output register moves on
                with m.If(full):
                    m.d.sync += [valid.eq(1), full.eq(0)]
                    if bits is not None:
                        m.d.sync += payload_out[bits].eq(skid[bits])
                with m.Else():
                    m.d.sync += valid.eq(into.valid)
                    if bits is not None:
                        m.d.sync += payload_out[bits].eq(payload_in[bits])
            with m.Elif(into.valid & ~full):                 # it holds: the new beat waits in the skid
                m.d.sync += full.eq(1)
            if bits is not None:
                with m.If(~full):
                    m.d.sync += skid[bits].eq(payload_in[bits])

        skid_full = Signal()
        m.d.comb += into.ready.eq(~skid_full)
        control(out.valid, skid_full)
        for index, first in enumerate(range(0, width, self.SEGMENT_BITS)):
            control(Signal(name=f"kept_valid{index}"), Signal(name=f"kept_full{index}"),
                    slice(first, min(first + self.SEGMENT_BITS, width)))
        return m
