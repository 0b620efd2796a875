"""Registered multipliers, and the DSP blocks that hold their registers on ECP5.

Every multiplier in the design is registered on both sides: ``p <= a * b`` where ``a`` and ``b``
are registers. Written that way in fabric, an ECP5 build keeps those registers in slices and the
DSP block's inputs and outputs are routed to them; with 144 of the LFE5U-85F's 156 DSP blocks in
use the placer cannot keep every block beside its registers, and the routing to a block 80
columns away is most of a 14 ns path (docs/fpga.md). The MULT18X18D has its own input and output
registers: with them the multiply itself is register to register inside the block, and what is
routed is a register's output to a register's input.

:func:`registered_product` is the one way the gateware multiplies two signals. On a platform whose
``family`` is ``"ecp5"`` (Amaranth's Lattice platforms, or :class:`Target` for generated Verilog)
it instantiates a MULT18X18D with the registers the call site can give it; elsewhere (simulation,
other vendors) it writes the same registers in fabric. The cycle behaviour is the same either way,
which is what the simulations check; tests/test_dsp.py checks the instance against a model of the
MULT18X18D's documented registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Const, Instance, Signal, Value, signed, unsigned

__all__ = ["Target", "registered_product", "uses_ecp5_dsp", "DSP_WIDTH"]

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


def registered_product(m, platform, a: Value, b: Value, *, name: str,
                       a_next: Value | None = None, b_next: Value | None = None) -> Signal:
    """``a * b`` registered: the returned signal (full width, signed if either operand is) holds
    the product of ``a`` and ``b`` as they were in the previous cycle. ``a`` and ``b`` must be
    registers (or constants), so that this is a register-to-register multiply.

    ``a_next``/``b_next``: what ``a``/``b`` load at every clock edge (their register's input,
    loaded unconditionally: no enable, and not reset in a way that matters to the product). When
    both are given and the target is ECP5, the DSP block's input registers are loaded from them
    (copies of ``a`` and ``b`` inside the block) and its output register is the product; otherwise
    only the output register is in the block. Operands wider than 18 bits (17 for an unsigned one
    beside a signed one) are multiplied in fabric: the product register is the same.

    The DSP block's registers are not reset; nor is the fabric version's product register
    (``reset_less``), so that both behave alike after a reset."""
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

    registered_inputs = a_next is not None and b_next is not None
    port_a, port_b = (a_next, b_next) if registered_inputs else (a, b)
    if is_signed:
        port_a, port_b = port_a.as_signed() if a_shape.signed else port_a.as_unsigned(), \
            port_b.as_signed() if b_shape.signed else port_b.as_unsigned()
    a18, b18 = Signal(DSP_WIDTH, name=f"{name}_dsp_a"), Signal(DSP_WIDTH, name=f"{name}_dsp_b")
    product36 = Signal(2 * DSP_WIDTH, name=f"{name}_dsp_p")
    m.d.comb += [a18.eq(port_a), b18.eq(port_b)]   # sign- or zero-extended to 18 bits
    input_clock = "CLK0" if registered_inputs else "NONE"
    params = {
        "p_REG_INPUTA_CLK": input_clock, "p_REG_INPUTA_CE": "CE0", "p_REG_INPUTA_RST": "RST0",
        "p_REG_INPUTB_CLK": input_clock, "p_REG_INPUTB_CE": "CE0", "p_REG_INPUTB_RST": "RST0",
        "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE",
        "p_REG_OUTPUT_CLK": "CLK0", "p_REG_OUTPUT_CE": "CE0", "p_REG_OUTPUT_RST": "RST0",
        "p_GSR": "DISABLED", "p_RESETMODE": "SYNC", "p_MULT_BYPASS": "DISABLED",
        "p_SOURCEB_MODE": "B_INPUT", "p_CAS_MATCH_REG": "FALSE", "p_HIGHSPEED_CLK": "NONE",
        "p_CLK0_DIV": "ENABLED", "p_CLK1_DIV": "ENABLED", "p_CLK2_DIV": "ENABLED", "p_CLK3_DIV": "ENABLED",
    }
    ports = {f"i_A{i}": a18[i] for i in range(DSP_WIDTH)}
    ports.update({f"i_B{i}": b18[i] for i in range(DSP_WIDTH)})
    ports.update({f"i_C{i}": Const(0, 1) for i in range(DSP_WIDTH)})
    ports.update({f"o_P{i}": product36[i] for i in range(2 * DSP_WIDTH)})
    ports.update({
        "i_SIGNEDA": Const(int(is_signed), 1), "i_SIGNEDB": Const(int(is_signed), 1),
        "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
        "i_CLK0": ClockSignal("sync"), "i_CE0": Const(1, 1), "i_RST0": Const(0, 1),
        **{f"i_{pin}{k}": Const(0, 1) for pin in ("CLK", "CE", "RST") for k in (1, 2, 3)},
    })
    m.submodules[f"{name}_dsp"] = Instance("MULT18X18D", **params, **ports)
    m.d.comb += p.eq(product36[:width])   # the product's bits; the sign is in ``p``'s shape
    return p
