"""focus.hdl.util.CollisionFreeReadPort: a synchronous read port that reads like Amaranth's, and
whose block-RAM mapping on ECP5 has no read-first emulation."""

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from focus.gen.resources import _RUN_YOSYS
from focus.hdl.util import CollisionFreeReadPort, poisoned_collisions
from focus.tb.amaranth_sim import simulate

WIDTH, DEPTH = 36, 256          # one DP16KD on ECP5


class TwoReads(wiring.Component):
    """One write port; ``plain`` is Amaranth's synchronous read port, ``free`` the
    collision-free one, on two memories written alike."""

    def __init__(self, collision_free_only=False):
        self.collision_free_only = collision_free_only
        super().__init__({"waddr": In(8), "wdata": In(WIDTH), "wen": In(1), "raddr": In(8), "ren": In(1),
                          "plain": Out(WIDTH), "free": Out(WIDTH)})

    def elaborate(self, platform):
        m = Module()
        mems = {}
        for name in ("free",) if self.collision_free_only else ("plain", "free"):
            mems[name] = mem = memory.Memory(shape=WIDTH, depth=DEPTH, init=[], attrs={"no_rw_check": 1})
            m.submodules[name] = mem
            write = mem.write_port()
            read = CollisionFreeReadPort(m, mem, write) if name == "free" else mem.read_port()
            m.d.comb += [write.addr.eq(self.waddr), write.data.eq(self.wdata), write.en.eq(self.wen),
                         read.addr.eq(self.raddr), read.en.eq(self.ren), getattr(self, name).eq(read.data)]
        return m


def run(poison):
    """Random writes and reads, a third of them at the row written in the same cycle: per cycle
    (read enabled, collides, plain, free)."""
    rng = random.Random(3)
    with poisoned_collisions() if poison else _nothing():
        dut = TwoReads()
        seen = []

        async def bench(ctx):
            for _ in range(300):
                waddr = rng.randrange(8)
                raddr = waddr if rng.random() < 0.35 else rng.randrange(8)
                wen, ren = rng.random() < 0.7, rng.random() < 0.8
                ctx.set(dut.waddr, waddr)
                ctx.set(dut.wdata, rng.getrandbits(WIDTH))
                ctx.set(dut.wen, wen)
                ctx.set(dut.raddr, raddr)
                ctx.set(dut.ren, ren)
                await ctx.tick()
                seen.append((ren, wen and ren and waddr == raddr, ctx.get(dut.plain), ctx.get(dut.free)))

        simulate(dut, [bench], name=f"collision_free_read_{poison}")
    return seen


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_collision_free_port_reads_exactly_like_a_synchronous_port():
    seen = run(poison=False)
    assert sum(collides for _, collides, _, _ in seen) > 30      # collisions happen, and read first
    assert [plain for _, _, plain, _ in seen] == [free for _, _, _, free in seen]


def test_poisoned_collisions_invert_exactly_the_reads_that_meet_a_write():
    mask, poisoned = (1 << WIDTH) - 1, False
    for enabled, collides, plain, free in run(poison=True):
        poisoned = collides if enabled else poisoned              # a disabled read holds its data
        assert free == (plain ^ mask if poisoned else plain)


def test_a_memory_without_no_rw_check_is_refused():
    without = SimpleNamespace(attrs={})           # what a memory.Memory(...) without attrs has
    with pytest.raises(ValueError, match="no_rw_check"):
        CollisionFreeReadPort(None, without, None)


def ecp5_cells(dut, tmp_path):
    tmp_path.mkdir()
    Path(tmp_path, "top.il").write_text(rtlil.convert(dut, name="top"))
    script = "read_rtlil top.il; synth_ecp5 -top top -json out.json"
    subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-p", script], cwd=tmp_path, check=True,
                   capture_output=True)
    return json.loads(Path(tmp_path, "out.json").read_text())["modules"]["top"]["cells"].values()


def test_ecp5_block_ram_read_is_the_ram_alone_without_read_first_emulation(tmp_path):
    """On ECP5 the collision-free read is a DP16KD and nothing else; Amaranth's synchronous read of
    the same memory gets Yosys's read-first emulation: registers delaying the write and a bypass
    multiplexer on every read bit."""
    free = [c["type"] for c in ecp5_cells(TwoReads(collision_free_only=True), tmp_path / "free")
            if c["type"] != "VLO" and c["type"] != "VHI"]
    assert free == ["DP16KD"]
    both = [c["type"] for c in ecp5_cells(TwoReads(), tmp_path / "both")]
    assert both.count("DP16KD") == 2
    assert both.count("LUT4") >= WIDTH and both.count("TRELLIS_FF") >= WIDTH
