"""The similarity concentrator as Verilog, in cocotb, against the golden model's exported vectors.

Each case builds the design for one configuration and runs tb/cocotb_sic.py on a list of exports
(``focus-sim export`` of real clips with SEC-pruned tokens, and random tokens with planted
duplicates) sent as consecutive jobs: exact map, counters and representatives under random
backpressure on every stream, a reset mid-tile followed by an exact job, and every handshake in
the cycle the cycle model predicts.

Default tier: one build per throughput setting kind (Verilator): the default (4 engines, 2 cycles
per vector), 2 engines, full rate and one element-serial engine, both representatives; the default
on Icarus as well with its first export; the ECP5 Verilog (DSP blocks with their registers) with
one element-serial engine (full rate and 2 engines with ``FOCUS_SLOW=all``). ``FOCUS_SLOW=all``
only: real clips x thresholds 0.8/0.9/0.95 x two grids, Verilator, the throughput settings and
representatives in rotation.
"""

import pytest

from focus import FocusConfig
from focus.files import build_root
from focus.tb.runner import run_cocotb
from focus.tb.sic_jobs import export_clip, export_planted

from simulators import SIMULATORS


def exports(cfg, name, sources):
    """Write the exports of ``sources`` for ``cfg`` and return their paths. A source is
    ``"planted:SEED"`` or a clip name (SEC keeps 4/5 of the tokens; the rest are zero vectors)."""
    folder = build_root() / "export" / "sic" / f"{name}-{cfg.digest()}"
    paths = []
    for source in sources:
        kind, _, arg = source.partition(":")
        path = folder / f"{source.replace(':', '-')}.npz"
        if kind == "planted":
            export_planted(cfg, path, seed=int(arg or 0))
        else:
            export_clip(cfg, kind, path)
        paths.append(str(path))
    return paths


GRID_4x8x8 = dict(frames=4, height=8, width=8)           # 2 tiles of 2 frames: 2048 vectors a job
GRID_8x6x10 = dict(frames=8, height=6, width=10)

# sic_multipliers: the default (0: 4 engines of 8, 2 cycles per vector), 2 engines (4 cycles),
# full rate (1 cycle), one engine of 8 multipliers (8 cycles), one multiplier (64 cycles)
DEFAULT_RULE, ENGINES_2, FULL, ONE_ENGINE, SERIAL = 0, 16, 64, 8, 1

CASES = {
    "default-mean-4x8x8": (FocusConfig(**GRID_4x8x8, tile_frames=2), ["bikes", "planted:0"]),
    "engines2-mean-8x6x10": (FocusConfig(**GRID_8x6x10, tile_frames=2, hidden=32, sic_multipliers=ENGINES_2),
                             ["bigbuckbunny", "planted:3"]),
    "full-mean-4x8x8": (FocusConfig(**GRID_4x8x8, tile_frames=2, sic_multipliers=FULL, threshold="4/5"),
                        ["bigbuckbunny", "planted:1"]),
    "serial8-root-8x6x10": (FocusConfig(**GRID_8x6x10, tile_frames=1, hidden=32, representative="root",
                                        threshold="19/20", sic_multipliers=ONE_ENGINE),
                            ["carphone_pristine", "planted:2"]),
}
verilator, icarus = SIMULATORS
DEFAULT = [pytest.param(name, "verilator", None, id=f"{name}-verilator", marks=verilator.marks) for name in CASES]
DEFAULT.append(pytest.param("default-mean-4x8x8", "icarus", 1, id="default-mean-4x8x8-icarus", marks=icarus.marks))


@pytest.mark.rtl
@pytest.mark.parametrize("name,simulator,jobs", DEFAULT)
def test_sic_equals_golden_exports(name, simulator, jobs):
    cfg, sources = CASES[name]
    run_cocotb("sic", "focus.tb.cocotb_sic", cfg, simulator=simulator,
               params={"exports": exports(cfg, name, sources[:jobs])})


SETTINGS = [("default", DEFAULT_RULE, "mean"), ("engines2", ENGINES_2, "root"), ("full", FULL, "root"),
            ("serial8", ONE_ENGINE, "mean"), ("default", DEFAULT_RULE, "root"), ("serial1", SERIAL, "mean")]
SWEEP = []
for threshold in ("9/10", "4/5", "19/20"):
    for grid_name, grid in (("8x6x10", dict(GRID_8x6x10, tile_frames=4)), ("4x8x8", dict(GRID_4x8x8, tile_frames=2))):
        for clip in ("bikes", "carphone_pristine", "bigbuckbunny"):
            SWEEP.append((clip, threshold, grid_name, grid))
# rotate the settings, shifted by one per threshold so that each clip and grid meets several settings
SWEEP = [(*case, *SETTINGS[(i + i // 6) % len(SETTINGS)]) for i, case in enumerate(SWEEP)]


@pytest.mark.rtl
@pytest.mark.slow(subset=False, reason="its own builds, a minute each; the default tier runs real clips in "
                                       "every throughput setting: FOCUS_SLOW=all runs the sweep")
@pytest.mark.parametrize("clip,threshold,grid_name,grid,setting,multipliers,representative", SWEEP,
                         ids=[f"{c}-{t.replace('/', '_')}-{g}-{s}-{r}" for c, t, g, _, s, _, r in SWEEP])
def test_sic_equals_golden_on_real_clips(clip, threshold, grid_name, grid, setting, multipliers, representative):
    cfg = FocusConfig(**grid, threshold=threshold, sic_multipliers=multipliers, representative=representative)
    name = f"{clip}-{grid_name}"
    run_cocotb("sic", "focus.tb.cocotb_sic", cfg, params={"exports": exports(cfg, name, [clip])})


# One element-serial engine calls the DSP blocks from its own sites (the default's engines,
# threshold units, tournaments and mean emitter run as ECP5 Verilog in the accelerator's test);
# full rate and 2 engines with FOCUS_SLOW=all.
ECP5_CASES = ["serial8-root-8x6x10",
              pytest.param("full-mean-4x8x8", marks=pytest.mark.slow(
                  subset=False, reason="95 s in CI, its own build: FOCUS_SLOW=all runs it")),
              pytest.param("engines2-mean-8x6x10", marks=pytest.mark.slow(
                  subset=False, reason="the default's engines: FOCUS_SLOW=all runs it"))]


@pytest.mark.rtl
@pytest.mark.parametrize("name", ECP5_CASES)
def test_sic_ecp5_verilog_with_dsp_registers_equals_golden_exports(name):
    """The Verilog a board build synthesizes (every multiplier a MULT18X18D with its input and
    output registers where the call site gives them, simulated with focus.tb.ecp5_models) is as
    exact as the portable Verilog: a wrong operand or register choice at a call site fails here."""
    cfg, sources = CASES[name]
    run_cocotb("sic", "focus.tb.cocotb_sic", cfg, params={"exports": exports(cfg, name, sources[:1])},
               target="ecp5")
