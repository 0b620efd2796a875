"""A stand-in board top for build tests and fmax/resource figures: the accelerator with every
input stream driven by an LFSR and every output folded into the LEDs.

Private: the real board top is :class:`focus.fpga.top.BoardTop` (the UART host link); this one
only exists so that :func:`focus.fpga.build.build` can place and route the whole accelerator before
(and independently of) it. Nothing is optimised away: every input bit of every stream (payload and
``valid``) comes from a free-running 64-bit LFSR (rotated differently per port), every output's
``ready`` too, and every output bit (payload and ``valid``) is XOR-reduced into a register per
port whose bits drive the LEDs. The streams' rules are not kept (payloads change while waiting):
the design is exercised, not used.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In
from amaranth.build import ResourceError

from ..config import FocusConfig
from .clocks import add_sync_domain

__all__ = ["StimulusTop", "board_leds"]

#: Fibonacci LFSR of 64 bits, taps 64, 63, 61, 60 (maximal length).
_TAPS = (63, 62, 60, 59)


def board_leds(platform, count: int = 8) -> list:
    """Output pins for up to ``count`` LEDs: ``led`` 0.., else the ``rgb_led`` channels."""
    pins = []
    for i in range(count):
        try:
            pins.append(platform.request("led", i, dir="-"))
        except ResourceError:
            break
    if not pins:
        for i in range(count):
            try:
                rgb = platform.request("rgb_led", i, dir="-")
            except ResourceError:
                break
            pins += [rgb.r, rgb.g, rgb.b]
    return pins[:count]


class StimulusTop(Elaboratable):
    """``core`` (default: :class:`focus.hdl.accelerator.FocusAccelerator` of ``cfg``) between an LFSR
    and the LEDs, clocked at ``target_mhz`` from the board oscillator (see the module docstring)."""

    def __init__(self, cfg: FocusConfig, *, family: str, oscillator_mhz: float, target_mhz: float, core=None):
        self.cfg = cfg
        self.family, self.oscillator_mhz, self.target_mhz = family, oscillator_mhz, target_mhz
        self.core = core

    def elaborate(self, platform):
        from ..hdl.accelerator import FocusAccelerator
        m = Module()
        if platform is not None:
            add_sync_domain(m, platform, self.family, self.oscillator_mhz, self.target_mhz)
        m.submodules.core = core = self.core if self.core is not None else FocusAccelerator(self.cfg)

        lfsr = Signal(64, init=0xACE1_2026_F0C5_0001)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[_TAPS[0]] ^ lfsr[_TAPS[1]] ^ lfsr[_TAPS[2]] ^ lfsr[_TAPS[3]]))

        def bits(width, salt):
            rot = lfsr.rotate_left((salt * 17) % 64)
            return Cat(*[rot] * (-(-width // 64)))[:width]

        folds = []
        for salt, (name, member) in enumerate(core.signature.members.items()):
            port = getattr(core, name)
            if member.is_port:
                pairs = [(member.flow, port)]
            else:                               # a stream: its valid, ready and payload (the port's
                pairs = [(sub.flow, getattr(port, field))       # signature is the core's view)
                         for field, sub in port.signature.members.items()]
            for n, (flow, sig) in enumerate(pairs):
                sig = Value.cast(sig)
                if flow == In:                  # an input of the core: from the LFSR
                    m.d.comb += sig.eq(bits(len(sig), salt * 5 + n))
                else:                           # an output: folded
                    folds.append(sig)

        # every output bit reaches a LED: one XOR-reduced bit per port, registered, then folded
        folded = Signal(len(folds), name="folded")
        m.d.sync += folded.eq(folded ^ Cat(*[f.xor() for f in folds]))
        leds = Signal(8, name="leds")
        m.d.comb += leds.eq(Cat(*[Cat(*[folded[j] for j in range(i, len(folds), 8)]).xor() for i in range(8)]))
        if platform is not None:
            for i, pin in enumerate(board_leds(platform)):
                m.submodules[f"led_{i}"] = buf = io.Buffer("o", pin)
                m.d.comb += buf.o.eq(leds[i])
        return m
