"""Board presets for FPGA builds: platform, the configuration that fits, the target clock.

Every board is an amaranth-boards platform class plus what the Focus build needs to know about it:
``config``, the :class:`~focus.FocusConfig` overrides of the largest configuration that fits the
device (the default configuration where it fits); ``target_mhz``, the clock the accelerator runs
at, made by a PLL from the board's oscillator (see :mod:`focus.fpga.clocks`); and, for devices the
design cannot fit at all, ``refuse``, checked before place and route (see
:func:`focus.fpga.build.build`).

Sizes, from the vendors' data sheets: LFE5U-12F 12K LUTs / 28 DSP (18x18) / 32 block RAMs,
25F 24K / 28 / 56, 45F 44K / 72 / 108, 85F 84K / 156 / 208; LFE5UM5G-85F as the 85F; GW2A-18 20K
LUTs / 48 multipliers (18x18) / 46 block RAMs; iCE40UP5K 5280 cells / 8 DSPs (16x16) / 30 block RAMs.
The default configuration needs 64 multipliers in the array, 32 in SIC's engines plus SIC's
threshold and ranking products (docs/sic.md), so only the 85F parts take it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import import_module

from ..config import FocusConfig

__all__ = ["Board", "BOARDS", "get_board", "board_config"]


@dataclass(frozen=True)
class Board:
    name: str
    platform: str                 # "amaranth_boards.module:Class"
    family: str                   # "ecp5", "ice40", "gowin": which toolchain builds it
    device: str
    oscillator_mhz: float
    target_mhz: float
    description: str
    config: dict = field(default_factory=dict)   # FocusConfig overrides of the preset
    flash_board: str = ""         # openFPGALoader's -b name
    refuse: str | None = None     # why the design cannot fit, when it cannot
    constraint_mhz: float | None = None   # place and route's goal when above target_mhz (at_clock)
    # ECP5: nextpnr's placer and router, and the placement seed, measured per board to route the
    # preset (docs/fpga.md, "The whole board design"); ``focus fpga build --seed`` overrides the seed
    nextpnr_opts: str = "--placer static --router router1"
    seed: int = 1
    # ECP5: the sites of the resets' global buffers, {"por_reset": bel, "accel_reset": bel}
    # (focus.fpga.clocks.global_buffer); nextpnr's packer picks when a reset has none
    buffer_bels: dict = field(default_factory=dict)

    def platform_class(self):
        module, _, name = self.platform.partition(":")
        return getattr(import_module(module), name)

    @property
    def goal_mhz(self) -> float:
        """The frequency place and route aim at: ``target_mhz``, or ``constraint_mhz`` above it."""
        return max(self.target_mhz, self.constraint_mhz or 0)

    def at_clock(self, mhz: float | None) -> "Board":
        """This board with the accelerator's clock at ``mhz`` (``None``: unchanged); ``ValueError``
        naming the clocks its PLL settings allow (:func:`focus.fpga.clocks.clock_choices`). Place
        and route still aim at the board's ``goal_mhz`` when ``mhz`` is below it (``constraint_mhz``), so
        a slower clock gets the same placement effort and a margin, not a looser design. Above the
        board's goal, place and route aim at ``mhz`` itself."""
        if mhz is None or mhz == self.target_mhz:
            return self
        from .clocks import clock_choices
        choices = clock_choices(self.family, self.oscillator_mhz)
        if self.refuse is None and mhz not in choices:
            raise ValueError(f"clock_mhz={mhz:g}: {self.name} has PLL settings for "
                             + ", ".join(f"{c:g}" for c in choices) + " MHz")
        return replace(self, target_mhz=mhz, constraint_mhz=self.goal_mhz if mhz < self.goal_mhz else None)

    def make_platform(self, **kwargs):
        """An instance of the platform class, with the project's toolchain fix-ups
        (:func:`focus.fpga.build.prepare_platform`)."""
        from .build import prepare_platform
        return prepare_platform(self, self.platform_class()(**kwargs))


# A small job shape for boards whose memories or multipliers cannot take the default 4x8x8 grid
# of 64-wide tokens: 4x4 arrays on 4-element vectors (the SIC window and the contract unchanged).
_SMALL = dict(rows=4, cols=4, vector_size=4, hidden=32, out_features=96, frames=4, height=8, width=8,
              tile_frames=2, sic_multipliers=4, score_width=8)

# The whole design on the two 85F boards: router1 stalled on it, router2 converges, and with
# --tmg-ripup it also rips up the nets that miss the clock. Its timing rip-up needs a constraint
# it can nearly meet: on the ULX3S-85F against 100 MHz it was still at 400 overused wires after 30
# iterations; against 62.5 it converges at one seed and not at another, against 70 it converged
# at seed 2, the only seed tried (docs/fpga.md, "The whole board design").
_ROUTER2_TIMING = "--placer static --router router2 --tmg-ripup"

BOARDS: dict[str, Board] = {b.name: b for b in [
    # 4x4 with 4 SIC multipliers synthesizes to 32 MULT18X18D (the 12F and 25F have 28); a 4x3
    # array with 2 SIC multipliers to 26, and 35 DP16KD (the 12F has 32); a 4x2 array to 22 and 27
    # The 12F, 25F and 45F presets run at 40 MHz, a clock their builds meet (51 to 57 MHz on the
    # current netlist: the element-serial SIC's running best compares two cross products in one
    # cycle; before its multiply-accumulate was registered on both sides, 38.6 to 55 by seed);
    # place and route still aim at 100 MHz (constraint_mhz), as with --clock-mhz.
    Board("ulx3s-12f", "amaranth_boards.ulx3s:ULX3S_12F_Platform", "ecp5", "LFE5U-12F", 25, 40,
          "Radiona ULX3S with the LFE5U-12F: a 4x2 array, element-serial SIC with 2 multipliers "
          "(22 of 28 DSPs, 27 of 32 block RAMs; a 4x3 array with 8-bit scores needs 35), at 40 MHz",
          config=dict(_SMALL, cols=2, sic_multipliers=2), flash_board="ulx3s", constraint_mhz=100),
    Board("ulx3s-25f", "amaranth_boards.ulx3s:ULX3S_25F_Platform", "ecp5", "LFE5U-25F", 25, 40,
          "Radiona ULX3S with the LFE5U-25F: a 4x3 array, element-serial SIC with 2 multipliers "
          "(26 of 28 DSPs, 36 of 56 block RAMs), at 40 MHz",
          config=dict(_SMALL, cols=3, sic_multipliers=2, score_width=16), flash_board="ulx3s",
          constraint_mhz=100),
    Board("ulx3s-45f", "amaranth_boards.ulx3s:ULX3S_45F_Platform", "ecp5", "LFE5U-45F", 25, 40,
          "Radiona ULX3S with the LFE5U-45F: an 8x6 array with an element-serial SIC (68 of 72 DSPs; "
          "8x8 synthesizes to 84), at 40 MHz",
          config=dict(sic_multipliers=8, cols=6), flash_board="ulx3s", constraint_mhz=100,
          # placement seed 3: 53.82 MHz on the current netlist; on the ones before 47.27 (the
          # running best its worst path), 45.12, 38.58, missed (its multiply-accumulate in one
          # cycle), 42.29, 40.99 and 44.81, where seeds 1 and 2 gave 39.29, missed, and 40.24
          seed=3),
    # The 85F runs at 100 MHz, the goal: router2 --tmg-ripup with its alternate weights
    # (--router2-alt-weights) against 101.5 MHz, placement seed 2 (100.18 MHz, legal at iteration
    # 475). Seed 2 was the best of 12 seeds placed on the current netlist (`focus fpga seeds`:
    # estimates 58.88 to 86.02 MHz, seed 2's 86.02; the old seed 10 72.82). On the netlist before
    # (the link without its GARBAGE answer) seed 10 gave 100.67 MHz, the best of a 20-seed sweep;
    # with router2's default weights that placement reached 96.87 against 97. Before, at 90 MHz:
    # seed 12, default weights, against 91.5 (91.87 MHz). The 1.5 MHz margin covers a route that
    # ends with no failing arc yet misses by a few register inputs (docs/fpga.md, "The whole
    # board design").
    Board("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", "LFE5U-85F", 25, 100,
          "Radiona ULX3S with the LFE5U-85F: the default configuration (8x8 array, 4-engine SIC), "
          "at 100 MHz",
          flash_board="ulx3s", nextpnr_opts=_ROUTER2_TIMING + " --router2-alt-weights", seed=2,
          constraint_mhz=101.5),
    # The ECPIX-5 at placement seed 3: 106.76 MHz on the current netlist (placement estimates:
    # seed 1 99.81, seed 3 99.94, seed 2 77.08, whose route diverged: 1,607 overused wires at
    # router2's 52nd iteration, 17 minutes). Seed 2 gave 109.57, 125.47, 118.26, 117.08 and
    # 104.93 MHz on the five netlists before; seed 1 126.42 on an earlier one, then stopped
    # converging (2,719 overused wires at router2's 64th iteration).
    Board("ecpix5-85f", "amaranth_boards.ecpix5:ECPIX585Platform", "ecp5", "LFE5UM5G-85F", 100, 100,
          "LambdaConcept ECPIX-5 with the LFE5UM5G-85F: the default configuration at 100 MHz, from its oscillator",
          flash_board="ecpix5", nextpnr_opts=_ROUTER2_TIMING, seed=3),
    # The Tang's scatter has 4 lanes, not the 8 that sic_pace_sparsity asks for: with 8 (and the
    # scatter's forwarding registers) HeAP found no legal placement (7,668 flip-flops with 4 lanes,
    # 10,639 with 8). On this preset 4 lanes cost no cycles: the element-serial SIC takes II = 16
    # cycles a vector, 16 * 128 = 2,048 a tile-chunk, and 4 lanes scatter its P = 48 passes in at
    # most 48 * ceil(128 / 4) = 1,536 even when no token is zero (tests/test_fpga_build.py checks it).
    Board("tang-primer-20k", "amaranth_boards.tang_primer_20k:TangPrimer20kDockPlatform", "gowin",
          "GW2A-LV18PG256C8/I7", 27, 100,
          "Sipeed Tang Primer 20K (dock): a 4x2 array, element-serial SIC with 2 multipliers, a 4-lane "
          "scatter, rPLL 27 -> 100 MHz (22 of 48 multipliers, 19 of 46 block RAMs, 332 of 648 LUT RAMs; "
          "the 4x4 preset's 525 LUT RAMs, and 8 scatter lanes, did not place)",
          config=dict(_SMALL, cols=2, sic_multipliers=2, scatter_lanes=4), flash_board="tangprimer20k"),
    Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", "iCE40UP5K", 12, 12,
          "1BitSquared iCEBreaker (iCE40UP5K): too small for any Focus configuration; the build stops "
          "before place and route and says what is short",
          config=dict(_SMALL, rows=2, cols=2, vector_size=2, hidden=16, out_features=32, frames=2,
                      height=4, width=4, sic_multipliers=1),
          flash_board="icebreaker",
          refuse="ice40"),
]}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise KeyError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None


def board_config(board: Board | str, **overrides) -> FocusConfig:
    """The preset configuration of ``board``, with ``overrides`` (FocusConfig fields) on top."""
    board = get_board(board) if isinstance(board, str) else board
    return FocusConfig(**{**board.config, **overrides})
