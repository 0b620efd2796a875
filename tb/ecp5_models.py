"""Simulation models of the ECP5 primitives the gateware instantiates (``focus-gen --target ecp5``).

Yosys ships no simulation model of the MULT18X18D, so :data:`MULT18X18D_MODEL` is ours, written
from Lattice's description of the block (FPGA-TN-02205, "ECP5 and ECP5-5G sysDSP Usage Guide"): an
18 x 18 multiplier whose ``A`` and ``B`` operands are each signed when ``SIGNEDA``/``SIGNEDB`` is
high, with optional input registers (``REG_INPUTA_CLK``/``REG_INPUTB_CLK``) and an optional output
register (``REG_OUTPUT_CLK``) on the rising edge of the selected clock, loaded while the selected
clock enable is high and cleared by the selected reset (``RESETMODE = "SYNC"``). It models only
what :func:`focus.hdl.dsp.registered_product` uses: clock and reset 0, enable 0 left unconnected
(a CIB clock enable reads high when undriven, so the model has no ``CE0`` port and loads every
cycle: an instance that connects one fails to elaborate), no pipeline
register, no cascade or shift input (``SOURCEB_MODE = "B_SHIFT"``, the default, with ``SOURCEB``
low), no ``C`` input; any other selection stops the simulation at time zero.

With it, the testbenches run the ECP5 Verilog (the DSP blocks' registers in place of the fabric's)
and check it against the same golden model as the portable Verilog: that is how a wrong operand
or register choice at a call site is caught without a board.
"""

from __future__ import annotations

from pathlib import Path

from ..files import write_atomic

__all__ = ["MULT18X18D_MODEL", "model_sources"]


def _ports(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


_PARAMETERS = {
    **{f"REG_{reg}_{field}": default
       for reg in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
       for field, default in (("CLK", "NONE"), ("CE", "CE0"), ("RST", "RST0"))},
    "CLK0_DIV": "ENABLED", "CLK1_DIV": "ENABLED", "CLK2_DIV": "ENABLED", "CLK3_DIV": "ENABLED",
    "HIGHSPEED_CLK": "NONE", "GSR": "ENABLED", "CAS_MATCH_REG": "FALSE", "SOURCEB_MODE": "B_SHIFT",
    "MULT_BYPASS": "DISABLED", "RESETMODE": "SYNC",
}

_INPUTS = (_ports("A", 18) + _ports("B", 18) + _ports("C", 18) + ["SIGNEDA", "SIGNEDB", "SOURCEA", "SOURCEB"]
           + ["CLK0", "RST0"])   # the instances leave CE0 (high when undriven) and clock, enable, reset 1-3 unconnected

MULT18X18D_MODEL = "\n".join([
    "// MULT18X18D simulation model (focus.tb.ecp5_models): see that module's docstring.",
    "module MULT18X18D #(",
    ",\n".join(f'    parameter {name} = "{value}"' for name, value in _PARAMETERS.items()),
    ") (",
    "    input " + ", ".join(_INPUTS) + ",",
    "    output " + ", ".join(_ports("P", 36)),
    ");",
    "    wire [17:0] a = {" + ", ".join(reversed(_ports("A", 18))) + "};",
    "    wire [17:0] b = {" + ", ".join(reversed(_ports("B", 18))) + "};",
    "    reg [17:0] a_r, b_r;",
    "    reg sa_r, sb_r;",
    "    reg [35:0] p_r;",
    "    initial begin",
    '        if ((REG_INPUTA_CLK != "NONE" && (REG_INPUTA_CLK != "CLK0" || REG_INPUTA_CE != "CE0" || REG_INPUTA_RST != "RST0"))',
    '            || (REG_INPUTB_CLK != "NONE" && (REG_INPUTB_CLK != "CLK0" || REG_INPUTB_CE != "CE0" || REG_INPUTB_RST != "RST0"))',
    '            || (REG_OUTPUT_CLK != "NONE" && (REG_OUTPUT_CLK != "CLK0" || REG_OUTPUT_CE != "CE0" || REG_OUTPUT_RST != "RST0"))',
    '            || REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE" || MULT_BYPASS != "DISABLED"',
    '            || RESETMODE != "SYNC" || SOURCEB_MODE != "B_SHIFT" || SOURCEB) begin',
    '            $display("MULT18X18D model: unsupported register configuration in %m");',
    "            $finish;",
    "        end",
    "    end",
    "    always @(posedge CLK0) begin",
    "        if (RST0) begin a_r <= 18'd0; b_r <= 18'd0; sa_r <= 1'b0; sb_r <= 1'b0; end",
    "        else begin a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB; end",
    "    end",
    '    wire [17:0] a_in = (REG_INPUTA_CLK == "NONE") ? a : a_r;',
    '    wire [17:0] b_in = (REG_INPUTB_CLK == "NONE") ? b : b_r;',
    '    wire sa = (REG_INPUTA_CLK == "NONE") ? SIGNEDA : sa_r;',
    '    wire sb = (REG_INPUTB_CLK == "NONE") ? SIGNEDB : sb_r;',
    "    wire [35:0] a_ext = sa ? {{18{a_in[17]}}, a_in} : {18'd0, a_in};",
    "    wire [35:0] b_ext = sb ? {{18{b_in[17]}}, b_in} : {18'd0, b_in};",
    "    wire [35:0] product = a_ext * b_ext;",
    "    always @(posedge CLK0) begin",
    "        if (RST0) p_r <= 36'd0;",
    "        else p_r <= product;",
    "    end",
    '    wire [35:0] p = (REG_OUTPUT_CLK == "NONE") ? product : p_r;',
    "    assign {" + ", ".join(reversed(_ports("P", 36))) + "} = p;",
    "endmodule",
    "",
])


def model_sources(folder: Path) -> list[Path]:
    """The model files, written into ``folder`` (once; rewritten when the model changes)."""
    path = Path(folder) / "ecp5_models.v"
    if not path.exists() or path.read_text() != MULT18X18D_MODEL:
        write_atomic(path, MULT18X18D_MODEL)
    return [path]
