"""The ``sync`` clock domain of a board top: the board oscillator through a PLL to the target clock.

:func:`add_sync_domain` is what every board top calls: it requests the platform's default clock,
multiplies it to ``target_mhz`` with the family's PLL (ECP5 ``EHXPLLL``, Gowin ``rPLL``; none when
the oscillator already runs at the target) and holds ``sync`` in reset until the PLL has locked
and 17 more cycles have passed (16 counted, one in the flip-flop that drives the reset). The
reset leaves that flip-flop onto a global clock network (:func:`global_buffer`): on ECP5 it then
reaches every flip-flop's LSR pin in under 2 ns wherever the placer put it, where a fabric net
across the chip took up to 7 ns at speed grade 6. The PLL settings are those YoWASP's ``ecppll`` and Apycula's
``gowin_pll`` compute for the pair of frequencies (kept in :data:`PLLS`, so building needs neither).
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import io

__all__ = ["PLLS", "add_sync_domain", "clock_choices", "global_buffer", "pll_output_mhz"]

#: (family, oscillator MHz, target MHz) -> PLL parameters.
PLLS = {
    # yowasp-ecppll -i 25 -o F (every one exact; VCO 560 to 630 MHz; 40 MHz for the small ULX3S
    # parts, whose slowest SIC path meets 40 but not 50)
    ("ecp5", 25, 100): dict(CLKI_DIV=1, CLKFB_DIV=4, CLKOP_DIV=6, CLKOP_CPHASE=2),
    ("ecp5", 25, 95): dict(CLKI_DIV=5, CLKFB_DIV=19, CLKOP_DIV=6, CLKOP_CPHASE=3),
    ("ecp5", 25, 90): dict(CLKI_DIV=5, CLKFB_DIV=18, CLKOP_DIV=7, CLKOP_CPHASE=3),
    ("ecp5", 25, 85): dict(CLKI_DIV=5, CLKFB_DIV=17, CLKOP_DIV=7, CLKOP_CPHASE=3),
    ("ecp5", 25, 80): dict(CLKI_DIV=5, CLKFB_DIV=16, CLKOP_DIV=7, CLKOP_CPHASE=3),
    ("ecp5", 25, 75): dict(CLKI_DIV=1, CLKFB_DIV=3, CLKOP_DIV=8, CLKOP_CPHASE=4),
    ("ecp5", 25, 70): dict(CLKI_DIV=5, CLKFB_DIV=14, CLKOP_DIV=9, CLKOP_CPHASE=4),
    ("ecp5", 25, 62.5): dict(CLKI_DIV=2, CLKFB_DIV=5, CLKOP_DIV=10, CLKOP_CPHASE=4),
    ("ecp5", 25, 60): dict(CLKI_DIV=5, CLKFB_DIV=12, CLKOP_DIV=10, CLKOP_CPHASE=4),
    ("ecp5", 25, 50): dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, CLKOP_CPHASE=5),
    ("ecp5", 25, 40): dict(CLKI_DIV=5, CLKFB_DIV=8, CLKOP_DIV=15, CLKOP_CPHASE=7),
    # yowasp-ecppll -i 100 -o F (ECPIX-5 below its oscillator's 100 MHz)
    ("ecp5", 100, 75): dict(CLKI_DIV=4, CLKFB_DIV=3, CLKOP_DIV=8, CLKOP_CPHASE=4),
    ("ecp5", 100, 60): dict(CLKI_DIV=5, CLKFB_DIV=3, CLKOP_DIV=10, CLKOP_CPHASE=4),
    ("ecp5", 100, 50): dict(CLKI_DIV=2, CLKFB_DIV=1, CLKOP_DIV=12, CLKOP_CPHASE=5),
    # gowin_pll -d "GW2A-18 C8/I7" -i 27 -o F: 100.29 MHz (VCO 802.3), 75 and 60 exact, 50.14 MHz
    ("gowin", 27, 100): dict(IDIV_SEL=6, FBDIV_SEL=25, ODIV_SEL=8),
    ("gowin", 27, 75): dict(IDIV_SEL=8, FBDIV_SEL=24, ODIV_SEL=8),
    ("gowin", 27, 60): dict(IDIV_SEL=8, FBDIV_SEL=19, ODIV_SEL=16),
    ("gowin", 27, 50): dict(IDIV_SEL=6, FBDIV_SEL=12, ODIV_SEL=16),
}


def clock_choices(family: str, oscillator_mhz: float) -> list[float]:
    """The clocks (MHz) a board of ``family`` with this oscillator can run at: the oscillator's own
    and those :data:`PLLS` has settings for."""
    return sorted({oscillator_mhz, *(t for f, o, t in PLLS if f == family and o == oscillator_mhz)})


def pll_output_mhz(family: str, oscillator_mhz: float, target_mhz: float) -> float:
    """The frequency the PLL really makes (Gowin: 100.29 MHz for 100 from 27)."""
    if oscillator_mhz == target_mhz:
        return target_mhz
    p = PLLS[(family, oscillator_mhz, target_mhz)]
    if family == "ecp5":
        return oscillator_mhz / p["CLKI_DIV"] * p["CLKFB_DIV"]
    return oscillator_mhz * (p["FBDIV_SEL"] + 1) / (p["IDIV_SEL"] + 1)


def global_buffer(m: Module, family: str, signal: Signal, name: str, bel: str | None = None) -> Signal:
    """``signal`` through a global clock buffer of ``family`` (ECP5: a ``DCCA``, which nextpnr-ecp5
    routes on one of the eight global networks that can reach fabric pins, LSR and LUT inputs
    included), for a high-fanout reset. Other families: ``signal`` itself. ``signal`` should be a
    flip-flop's output, so that the only routing before the global network is to the buffer.

    ``bel`` (ECP5) places the buffer on that site (nextpnr's ``BEL`` attribute, e.g.
    ``"X67/Y0/TDCC3"``); without it nextpnr's packer picks the first free one. The top edge's
    sites of the 85F all sit at X67/Y0, so the choice among them leaves the placement as it is
    and changes only which fabric entrance the buffer's input is routed to: at some placements
    router2 cannot reach one of them (``Board.buffer_bels``, docs/fpga.md)."""
    if family != "ecp5":
        return signal
    out = Signal(name=f"{name}_global")
    m.submodules[f"{name}_dcc"] = Instance("DCCA", i_CLKI=signal, i_CE=1, o_CLKO=out,
                                           **({"a_BEL": bel} if bel else {}))
    return out


def add_sync_domain(m: Module, platform, family: str, oscillator_mhz: float, target_mhz: float,
                    constraint_mhz: float | None = None, reset_bel: str | None = None) -> None:
    """Add ``sync`` at ``target_mhz`` to ``m`` (see the module docstring). ``constraint_mhz``, when
    given, is the frequency place and route is asked for instead of the PLL's (a tighter goal than
    the clock the design runs at). ``reset_bel``: the site of the reset's global buffer
    (:func:`global_buffer`)."""
    m.domains.sync = sync = ClockDomain("sync")
    clk_pin = platform.request(platform.default_clk, dir="-")
    m.submodules.clk_buffer = clk_buffer = io.Buffer("i", clk_pin)
    osc = clk_buffer.i
    locked = Signal()
    if oscillator_mhz == target_mhz:
        m.d.comb += [ClockSignal("sync").eq(osc), locked.eq(1)]
    else:
        key = (family, oscillator_mhz, target_mhz)
        if key not in PLLS:
            raise ValueError(f"no PLL settings for {family} from {oscillator_mhz} MHz to {target_mhz} MHz; "
                             f"known: {sorted(PLLS)}")
        p = PLLS[key]
        clk_out = Signal()
        if family == "ecp5":
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{oscillator_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{target_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_CLKI_DIV=p["CLKI_DIV"], p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=osc, o_CLKOP=clk_out, i_CLKFB=clk_out,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        elif family == "gowin":
            m.submodules.pll = Instance(
                "rPLL",
                p_FCLKIN=f"{oscillator_mhz:.1f}", p_IDIV_SEL=p["IDIV_SEL"], p_FBDIV_SEL=p["FBDIV_SEL"],
                p_ODIV_SEL=p["ODIV_SEL"],
                i_CLKIN=osc, o_CLKOUT=clk_out, o_LOCK=locked, i_RESET=0, i_RESET_P=0, i_CLKFB=0,
                i_FBDSEL=0, i_IDSEL=0, i_ODSEL=0, i_PSDA=0, i_DUTYDA=0, i_FDLY=0)
        else:
            raise ValueError(f"family={family!r}: no PLL for this family")
        m.d.comb += ClockSignal("sync").eq(clk_out)
        made = pll_output_mhz(family, oscillator_mhz, target_mhz)
        platform.add_clock_constraint(clk_out, max(made, constraint_mhz or 0) * 1e6)
    # reset: held until the PLL locks, then 16 cycles (a counter in the new domain) and one more
    # in the flip-flop that drives it through a global buffer
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += ClockSignal("por").eq(ClockSignal("sync"))
    count = Signal(5)
    with m.If(~locked):
        m.d.por += count.eq(0)
    with m.Elif(~count[4]):
        m.d.por += count.eq(count + 1)
    held = Signal(init=1)
    m.d.por += held.eq(~count[4])
    m.d.comb += sync.rst.eq(global_buffer(m, family, held, "por_reset", reset_bel))
