"""Streaming signed multiply-accumulate."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig

__all__ = ["MacOperands", "MultiplyAccumulator"]


def MacOperands(cfg: FocusConfig) -> data.StructLayout:
    """Payload of one operand beat: ``a`` and ``b`` signed ``cfg.data_width``; ``last`` ends a job."""
    return data.StructLayout({
        "a": signed(cfg.data_width),
        "b": signed(cfg.data_width),
        "last": 1,
    })


class MultiplyAccumulator(wiring.Component):
    """Dot product of a stream of signed operand pairs, one result per job.

    A job is a run of operand beats ending with ``last = 1``; its result is ``sum(a * b)`` over the
    job as a signed ``cfg.acc_width`` integer, wrapping modulo ``2**acc_width`` (the configuration
    guarantees that ``cfg.hidden`` terms never wrap).

    Ports
      ``operands``  In stream of :func:`MacOperands`.
      ``sums``      Out stream of ``signed(cfg.acc_width)``, one beat per job, in job order.

    Timing
      Initiation interval 1 while ``sums`` is not blocked. The product is registered (stage 1), then
      added (stage 2): a job's sum is valid 2 cycles after the handshake of its ``last`` beat. While
      a finished sum waits for ``sums.ready``, the pipeline holds and ``operands.ready`` is low.
    Reset
      Synchronous; drops a job in progress and a pending sum.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__({
            "operands": In(stream.Signature(MacOperands(cfg))),
            "sums": Out(stream.Signature(signed(cfg.acc_width))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        operands, sums = self.operands, self.sums

        product = Signal(signed(2 * cfg.data_width))
        product_valid = Signal()
        product_last = Signal()
        partial = Signal(signed(cfg.acc_width))     # sum of the job's products so far

        advance = Signal()
        m.d.comb += [
            advance.eq(~sums.valid | sums.ready),   # the output slot is free or being emptied
            operands.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [
                product_valid.eq(operands.valid),
                product.eq(operands.payload.a * operands.payload.b),
                product_last.eq(operands.payload.last),
                sums.valid.eq(product_valid & product_last),
            ]
            with m.If(product_valid):
                total = partial + product
                with m.If(product_last):
                    m.d.sync += [sums.payload.eq(total), partial.eq(0)]
                with m.Else():
                    m.d.sync += partial.eq(total)
        return m
