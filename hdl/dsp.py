"""Registered multipliers, and the DSP blocks that hold their registers on ECP5.

Every multiplier in the design is registered on both sides: ``p <= a * b`` where ``a`` and ``b``
are registers. Written that way in fabric, an ECP5 build keeps those registers in slices and the
DSP block's inputs and outputs are routed to them; with 144 of the LFE5U-85F's 156 DSP blocks in
use the placer cannot keep every block beside its registers, and the routing to a block 80
columns away is most of a 14 ns path (docs/fpga.md). The MULT18X18D has its own input and output
registers: with them the multiply itself is register to register inside the block, and what is
routed is a register's output to a register's input.

:func:`registered_product` (operands whose register inputs can feed the block) and
:func:`staged_product` (operands registered once more) are how the array, SIC's engines,
threshold units, tournaments, mean emitter and element-serial multiply-accumulate multiply. (The
running best of SIC's slowest settings still multiplies in a fabric expression, and so does the
element-serial multiply-accumulate of a window too small to leave it the register stages.) On
a platform whose ``family`` is ``"ecp5"`` (Amaranth's Lattice platforms, or :class:`Target` for
generated Verilog) they instantiate a MULT18X18D holding the input and output registers; elsewhere
(simulation, other vendors) they write the same registers in fabric. The cycle behaviour is the
same either way: the ECP5 Verilog is simulated with a model of the block
(:mod:`focus.tb.ecp5_models`) against the same golden model as the portable Verilog
(tests/test_sic_rtl.py, tests/test_accelerator_rtl.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Const, Instance, Signal, Value, signed, unsigned

__all__ = ["Target", "registered_product", "staged_product", "uses_ecp5_dsp", "DSP_WIDTH"]

#: Operand width of an ECP5 DSP multiplier (MULT18X18D: 18 x 18 bits, 36-bit product).
DSP_WIDTH = 18


@dataclass(frozen=True)
class Target:
    """The device family generated Verilog is for, standing in for a platform when there is none
    (``focus-gen --target ecp5``, the out-of-context timing flow). Only ``family`` is read."""
    family: str


def uses_ecp5_dsp(platform) -> bool:
    """Whether multipliers elaborated for ``platform`` are ECP5 MULT18X18D instances."""
    return getattr(platform, "family", None) == "ecp5"


def registered_product(m, platform, a: Value, b: Value, *, name: str, a_next: Value, b_next: Value) -> Signal:
    """``a * b`` registered: the returned signal (full width, signed if either operand is) holds
    the product of ``a`` and ``b`` as they were in the previous cycle. ``a`` and ``b`` are
    registers (or constants) that load ``a_next``/``b_next`` at every clock edge (no enable, and no
    reset that matters to the product).

    On ECP5 the DSP block's input registers load ``a_next`` and ``b_next`` (copies of ``a`` and
    ``b``: the fabric's are then unused unless something else reads them) and its output register
    is the product. Operands wider than 18 bits (17 for an unsigned one beside a signed one) are
    multiplied in fabric: the product register is the same. The block's registers are not reset;
    nor is the fabric's product register (``reset_less``), so that both behave alike after a
    reset."""
    a_shape, b_shape = a.shape(), b.shape()
    is_signed = a_shape.signed or b_shape.signed
    width = a_shape.width + b_shape.width
    p = Signal(signed(width) if is_signed else unsigned(width), name=name, reset_less=True)

    def operand_bits(shape):
        # an unsigned operand beside a signed one is zero-extended into a signed 18-bit port
        return shape.width + (1 if is_signed and not shape.signed else 0)

    if not uses_ecp5_dsp(platform) or max(operand_bits(a_shape), operand_bits(b_shape)) > DSP_WIDTH:
        m.d.sync += p.eq(a * b)
        return p

    port_a, port_b = a_next, b_next
    if is_signed:
        port_a, port_b = port_a.as_signed() if a_shape.signed else port_a.as_unsigned(), \
            port_b.as_signed() if b_shape.signed else port_b.as_unsigned()
    a18, b18 = Signal(DSP_WIDTH, name=f"{name}_dsp_a"), Signal(DSP_WIDTH, name=f"{name}_dsp_b")
    product36 = Signal(2 * DSP_WIDTH, name=f"{name}_dsp_p")
    m.d.comb += [a18.eq(port_a), b18.eq(port_b)]   # sign- or zero-extended to 18 bits
    params = {
        "p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTA_CE": "CE0", "p_REG_INPUTA_RST": "RST0",
        "p_REG_INPUTB_CLK": "CLK0", "p_REG_INPUTB_CE": "CE0", "p_REG_INPUTB_RST": "RST0",
        "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE",
        "p_REG_OUTPUT_CLK": "CLK0", "p_REG_OUTPUT_CE": "CE0", "p_REG_OUTPUT_RST": "RST0",
        "p_GSR": "DISABLED", "p_RESETMODE": "SYNC", "p_MULT_BYPASS": "DISABLED",
        # SOURCEB_MODE stays "B_SHIFT" (SOURCEB low selects the B input), as in Yosys's own
        # mapping: Project Trellis's ecppack has no bits for "B_INPUT" and stops on it
        "p_CAS_MATCH_REG": "FALSE", "p_HIGHSPEED_CLK": "NONE",
        "p_CLK0_DIV": "ENABLED", "p_CLK1_DIV": "ENABLED", "p_CLK2_DIV": "ENABLED", "p_CLK3_DIV": "ENABLED",
    }
    ports = {f"i_A{i}": a18[i] for i in range(DSP_WIDTH)}
    ports.update({f"i_B{i}": b18[i] for i in range(DSP_WIDTH)})
    ports.update({f"i_C{i}": Const(0, 1) for i in range(DSP_WIDTH)})
    ports.update({f"o_P{i}": product36[i] for i in range(2 * DSP_WIDTH)})
    ports.update({
        "i_SIGNEDA": Const(int(is_signed), 1), "i_SIGNEDB": Const(int(is_signed), 1),
        "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
        # Clock and reset 0 only. nextpnr-ecp5 routes every constant on a DSP block's clock,
        # enable, reset, SIGNED and SOURCE pins from one LUT across the chip, while it leaves an
        # unconnected one alone. An unconnected enable reads high: the DSP's CE pins are CIB
        # clock-enable signals, whose undriven state is 1 (nextpnr's ecp5/pack.cc relies on that
        # for the block RAMs' CE pins, "Default state is 1"), so CE0 stays unconnected. RST0 must
        # be low, so it is routed. On the ULX3S-85F (144 blocks) this took router1 from a tail of
        # about 300 arcs it did not finish in 40 minutes to a full route in 15 (docs/fpga.md).
        # CLK1-3, CE1-3 and RST1-3 are unused.
        "i_CLK0": ClockSignal("sync"), "i_RST0": Const(0, 1),
    })
    m.submodules[f"{name}_dsp"] = Instance("MULT18X18D", **params, **ports)
    m.d.comb += p.eq(product36[:width])   # the product's bits; the sign is in ``p``'s shape
    return p


def staged_product(m, platform, a: Value, b: Value, *, name: str) -> Signal:
    """``a * b`` two cycles later: ``a`` and ``b`` (registers, or constants) are registered again,
    then multiplied into the product register. On ECP5 the second registers are the DSP block's
    input registers, so what is routed to the block is a register's output, with no logic before
    it, and the route gets a whole cycle. (:func:`registered_product` saves that cycle where the
    operands' own register inputs can feed the block directly.)"""
    a_r = Signal(a.shape(), name=f"{name}_a", reset_less=True)
    m.d.sync += a_r.eq(a)
    if isinstance(b, Const):
        b_r = b
    else:
        b_r = Signal(b.shape(), name=f"{name}_b", reset_less=True)
        m.d.sync += b_r.eq(b)
    return registered_product(m, platform, a_r, b_r, name=name, a_next=a, b_next=b)
