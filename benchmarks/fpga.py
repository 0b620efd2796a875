"""FPGA benchmark: each block's fmax on ECP5 out of context, and each board build's resources and
fmax, written to docs/benchmarks/fpga.md and fpga.json.

    .venv/bin/python benchmarks/fpga.py [--blocks systolic,sec,...] [--boards ulx3s-85f,...] [--out DIR] [--quick]

Blocks: ``focus.gen.timing.fmax``: Yosys ``synth_ecp5 -abc9`` then nextpnr-ecp5 ``--out-of-context
--freq 100`` on the LFE5U-85F (CABGA381), default configuration, seed 1. Boards:
``focus.fpga.build.build`` of each board's preset (the board top, a PLL to the preset's clock), fmax of the
``sync`` clock and the used LUTs, flip-flops, DSP blocks and block RAMs from nextpnr's report.
Every result is cached (build/timing/, build/fpga/), so a rerun after a change redoes only what
changed. ``--quick``: the small ``mac`` block only, no board, into build/benchmarks/. ``--update``:
keep the rows of the existing fpga.json for the blocks and boards this run does not measure (a
whole-board build takes up to 20 minutes, so one board can be measured again on its own); kept
block rows must be of the current default configuration (board rows carry their own
``config_digest``), and a row is replaced, never dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from focus import FocusConfig
from focus.files import build_root, write_atomic
from focus.gen.timing import fmax

ROOT = Path(__file__).resolve().parent.parent
# the blocks of the committed table; the whole accelerator is measured as a board build (with
# its PLL and link)
BLOCKS = ("systolic", "gemm", "sec", "sic", "scatter", "passbuffer")
BOARDS = ("ulx3s-85f",)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", default=",".join(BLOCKS), help="generator tops to time (default: %(default)s)")
    parser.add_argument("--boards", default=",".join(BOARDS), help="boards to build (default: %(default)s; '' for none)")
    parser.add_argument("--out", help="output folder (default: docs/benchmarks/, or build/benchmarks/ with --quick)")
    parser.add_argument("--quick", action="store_true", help="the mac block only, no board build, written under build/")
    parser.add_argument("--reuse", action="store_true",
                        help="take each board's newest finished build under build/fpga/ instead of building")
    parser.add_argument("--update", action="store_true",
                        help="keep the existing report's rows for the blocks and boards not measured in this run")
    args = parser.parse_args(argv)
    blocks = ["mac"] if args.quick else [b for b in args.blocks.split(",") if b]
    boards = [] if args.quick else [b for b in args.boards.split(",") if b]
    out = Path(args.out) if args.out else (build_root() / "benchmarks" if args.quick else ROOT / "docs" / "benchmarks")

    cfg = FocusConfig()
    block_rows = []
    for top in blocks:
        r = fmax(cfg, top)
        print(f"{top}: {r['fmax_mhz']} MHz", file=sys.stderr, flush=True)
        block_rows.append({"top": top, "fmax_mhz": r["fmax_mhz"], "met": r["met"], "resources": r["resources"],
                           "critical_path": {k: r["critical_path"][k] for k in ("logic_ns", "routing_ns", "from", "to")},
                           "synth_s": r["synth_s"], "pnr_s": r["pnr_s"]})
    board_rows = []
    if boards:
        from focus.fpga.build import BoardTooSmall, build
        for name in boards:
            if args.reuse:
                done = sorted((build_root() / "fpga").glob(f"{name}-*/report.json"), key=lambda p: p.stat().st_mtime)
                if done:
                    board_rows.append(json.loads(done[-1].read_text()))
                    continue
            try:
                report = build(name, progress=lambda m: print(m, file=sys.stderr, flush=True))
            except BoardTooSmall as err:
                board_rows.append({"board": name, "refused": str(err)})
                continue
            board_rows.append(report)
    if args.update and (out / "fpga.json").exists():
        old = json.loads((out / "fpga.json").read_text())
        kept = [r["top"] for r in old.get("blocks", []) if r["top"] not in blocks]
        if kept and old.get("config_digest") != cfg.digest():
            print(f"--update: the report's blocks {', '.join(kept)} were measured on configuration "
                  f"{old.get('config_digest')}, the default is now {cfg.digest()}; measure them again "
                  f"(--blocks {','.join(kept)})", file=sys.stderr)
            return 2
        block_rows, board_rows = _merged(old, block_rows, board_rows)

    write_atomic(out / "fpga.json", json.dumps({"device": "LFE5U-85F", "package": "CABGA381", "target_mhz": 100,
                                                "config_digest": cfg.digest(), "blocks": block_rows,
                                                "boards": board_rows}, indent=1) + "\n")
    lines = ["# FPGA: fmax and resources", "",
             "Generated by `benchmarks/fpga.py`; see docs/fpga.md. Blocks: Yosys `synth_ecp5 -abc9` and",
             "nextpnr-ecp5 out of context at 100 MHz on the LFE5U-85F (CABGA381), default configuration,",
             "seed 1. `resources` are nextpnr's used cells.", "",
             "| block | fmax (MHz) | 100 MHz | LUT/COMB | FF | DSP | critical path (logic + routing ns) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in block_rows:
        res, cp = r["resources"], r["critical_path"]
        lines.append(f"| {r['top']} | {r['fmax_mhz']} | {'met' if r['met'] else 'no'} | "
                     f"{res.get('TRELLIS_COMB', 0)} | {res.get('TRELLIS_FF', 0)} | {res.get('MULT18X18D', 0)} | "
                     f"{cp['logic_ns']} + {cp['routing_ns']}: `{cp['from']}` to `{cp['to']}` |")
    if board_rows:
        lines += ["", "## Boards", "",
                  "| board | device | fmax (MHz) | target | LUT | FF | DSP | BRAM | build time (s) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in board_rows:
            if "refused" in r:
                lines.append(f"| {r['board']} | refused: {r['refused']} | | | | | | | |")
                continue
            res = r["resources"]
            lines.append(f"| {r['board']} | {r['device']} | {r['fmax_mhz']} | {r['target_mhz']} | {res['lut']} | "
                         f"{res['ff']} | {res['dsp']} | {res['bram']} | {r['seconds']} |")
    write_atomic(out / "fpga.md", "\n".join(lines) + "\n")
    print(f"wrote {out / 'fpga.md'} and fpga.json")
    return 0


def _merged(old: dict, block_rows: list, board_rows: list) -> tuple[list, list]:
    """The old report's rows in their order, each replaced by this run's row of the same block or
    board; rows new to the report go last."""
    def merge(old_rows, new_rows, key):
        new = {r[key]: r for r in new_rows}
        rows = [new.pop(r[key], r) for r in old_rows]
        return rows + list(new.values())
    return merge(old.get("blocks", []), block_rows, "top"), merge(old.get("boards", []), board_rows, "board")


if __name__ == "__main__":
    sys.exit(main())
