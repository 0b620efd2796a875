"""Processing element of the weight-stationary systolic array."""

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .dsp import registered_product

__all__ = ["PECell", "pe_cell", "ProcessingElement"]


@dataclass(frozen=True)
class PECell:
    """The registers of one processing element (none is reset)."""
    a: Signal          # activation, forwarded to the right
    bank: Signal       # weight bank of that activation, forwarded with it
    weight: Signal     # the weight of bank ``bank_in``, registered beside ``a`` (the multiplier's input)
    product: Signal    # the multiplier's output register (in the DSP block on ECP5)
    psum: Signal       # partial sum, to the PE below
    staged: Signal     # staging register of the weight shift chain, to the PE above
    bank0: Signal
    bank1: Signal

    @classmethod
    def create(cls, cfg: FocusConfig, name: str = "pe") -> "PECell":
        data, acc = signed(cfg.data_width), signed(cfg.acc_width)
        return cls(
            a=Signal(data, name=f"{name}_a", reset_less=True),
            bank=Signal(name=f"{name}_bank", reset_less=True),
            weight=Signal(data, name=f"{name}_weight", reset_less=True),
            product=Signal(signed(2 * cfg.data_width), name=f"{name}_product"),
            psum=Signal(acc, name=f"{name}_psum", reset_less=True),
            staged=Signal(data, name=f"{name}_staged", reset_less=True),
            bank0=Signal(data, name=f"{name}_bank0", reset_less=True),
            bank1=Signal(data, name=f"{name}_bank1", reset_less=True),
        )


def pe_cell(m: Module, cell: PECell, *, a_in: Value, bank_in: Value, psum_in: Value,
            w_in: Value, w_shift: Value, commit0: Value, commit1: Value, platform=None) -> PECell:
    """Add the logic of one processing element, with registers ``cell``, to ``m``; return ``cell``.

    This is the one definition of a PE: :class:`ProcessingElement` wraps it as a component (for
    unit tests and for use on its own), :class:`~focus.hdl.systolic.SystolicArray` calls it for
    every grid position directly, so the grid is one flat module (elaborating 1024 PE submodules
    takes Amaranth about twice as long). See :class:`ProcessingElement` for the contract.
    ``platform``: the multiplier is :func:`~focus.hdl.dsp.registered_product`, its input registers
    (copies of ``a`` and ``weight``) and product register in the DSP block on ECP5.
    """
    weight_next = Mux(bank_in, cell.bank1, cell.bank0)
    m.d.sync += [
        cell.a.eq(a_in),
        cell.bank.eq(bank_in),
        cell.weight.eq(weight_next),
        cell.psum.eq(psum_in + cell.product),
    ]
    m.d.comb += cell.product.eq(registered_product(m, platform, cell.a, cell.weight, name=f"{cell.product.name}_reg",
                                                   a_next=a_in, b_next=weight_next))
    with m.If(w_shift):
        m.d.sync += cell.staged.eq(w_in)
    with m.If(commit0):
        m.d.sync += cell.bank0.eq(cell.staged)
    with m.If(commit1):
        m.d.sync += cell.bank1.eq(cell.staged)
    return cell


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell: ``psum_out = psum_in + a * w``, pipelined, with two weight banks.

    The array is free-running: a PE has no handshake and no clock enable on its data path; whether a
    value is meaningful is tracked outside the grid (:class:`focus.hdl.systolic.SystolicArray`).

    Data path (``a``: signed ``cfg.data_width``; ``psum``: signed ``cfg.acc_width``)
      ``a_in``/``bank_in`` during cycle ``c`` are registered to ``a_out``/``bank_out`` (seen by the
      right-hand neighbour in cycle ``c + 1``); weight bank ``bank_in`` is read in cycle ``c`` into
      the weight register beside ``a``. The two registers feed the multiplier, whose product is
      registered for cycle ``c + 2``. The PE below must present the matching ``psum_in`` in cycle
      ``c + 2``; ``psum_out = psum_in + product`` is registered for cycle ``c + 3``, wrapping modulo
      ``2**acc_width``. So a PE adds 1 cycle of latency to ``a`` and, given the 1-cycle skew between
      rows, a partial sum moves down one row per cycle. The multiplier has registers on both sides
      (the bank select is in front of the weight register, not of the multiplier: 100 MHz on ECP5
      needs it, see docs/fpga.md); the psum register is the accumulator.
    Weights
      ``w_out`` is the staging register, one link of a shift chain per column: while ``w_shift`` is
      high it loads ``w_in`` (the staging register of the PE below, or the weight port for the
      bottom row). ``commit[b]`` copies the staging register into bank ``b`` (both bits may be set).
      A multiply in cycle ``c`` uses the bank as it is during cycle ``c``: a commit at the edge that
      ends cycle ``c`` is seen from cycle ``c + 1`` on.
    Reset
      None of these registers is reset (``reset_less``): after a reset the array's control ignores
      whatever is in flight and reloads a bank before using it.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        data, acc = signed(cfg.data_width), signed(cfg.acc_width)
        super().__init__({
            "a_in": In(data), "bank_in": In(1), "psum_in": In(acc),
            "a_out": Out(data), "bank_out": Out(1), "psum_out": Out(acc),
            "w_in": In(data), "w_shift": In(1), "w_out": Out(data),
            "commit": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        cell = pe_cell(m, PECell.create(self.cfg), a_in=self.a_in, bank_in=self.bank_in, psum_in=self.psum_in,
                       w_in=self.w_in, w_shift=self.w_shift,
                       commit0=self.commit[0], commit1=self.commit[1], platform=platform)
        m.d.comb += [
            self.a_out.eq(cell.a), self.bank_out.eq(cell.bank),
            self.psum_out.eq(cell.psum), self.w_out.eq(cell.staged),
        ]
        return m
