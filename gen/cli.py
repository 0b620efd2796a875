"""focus-gen: elaborate Focus components to Verilog for one configuration.

With no arguments it writes every registered top for the embedded default configuration to
build/verilog/<config digest>/, next to config.json, the configuration it came from.

Examples:
  focus-gen                                   every top, default configuration
  focus-gen --list                            the tops that can be generated
  focus-gen --top mac --set data_width=16 --set acc_width=40
  focus-gen --config my.json --out rtl/ --lint
  focus-gen --top accelerator --target ecp5   for Yosys synth_ecp5: multipliers as registered MULT18X18Ds
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..cli import add_config_arguments, config_from_args
from ..files import build_root, write_atomic
from .elaborate import TARGETS, verilog
from .tops import TOPS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focus-gen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--top", action="append", choices=sorted(TOPS), metavar="NAME",
                        help="top to generate (repeatable; default: all of %(choices)s)")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (default: $FOCUS_BUILD_DIR/verilog/<config digest>/, "
                             "<config digest>-<target>/ with --target; FOCUS_BUILD_DIR defaults to build)")
    parser.add_argument("--lint", action="store_true",
                        help="also run verilator --lint-only -Wall on each file (the project's waivers apply; "
                             "portable Verilog only, not with --target)")
    parser.add_argument("--target", choices=TARGETS,
                        help="Verilog for this device family's primitives (ecp5: the multipliers' registers inside "
                             "MULT18X18D blocks, for synthesis with Yosys/nextpnr; default: portable Verilog, "
                             "what the simulations run)")
    parser.add_argument("--list", action="store_true", help="list the tops and exit")
    parser.add_argument("--print-config", action="store_true", help="print the configuration JSON and exit")
    args = parser.parse_args(argv)

    if args.list:
        for name, top in sorted(TOPS.items()):
            print(f"{name:12s} {top.summary}")
        return 0
    cfg = config_from_args(parser, args)
    if args.print_config:
        print(cfg.to_json(indent=2))
        return 0

    if args.lint and args.target:
        parser.error("--lint checks portable Verilog; it cannot be combined with --target")
    out = Path(args.out) if args.out else build_root() / "verilog" / (cfg.digest() + (f"-{args.target}" if args.target else ""))
    tops = args.top or sorted(TOPS)
    # Elaborate everything into a scratch folder first: a failure leaves nothing half-written in `out`.
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for name in tops:
            start = time.perf_counter()
            (scratch / f"{name}.v").write_text(verilog(cfg, name, target=args.target))
            print(f"{name}.v  ({time.perf_counter() - start:.2f} s)", file=sys.stderr)
        (scratch / "config.json").write_text(cfg.to_json(indent=2) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(scratch.iterdir()):
            write_atomic(out / path.name, path.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    status = 0
    if args.lint:
        from ..tb.toolchain import lint
        for name in tops:
            result = lint(out / f"{name}.v")
            if result.returncode:
                status = 1
                print(f"lint: {name}.v has warnings\n{result.stderr}", file=sys.stderr)
            else:
                print(f"lint: {name}.v clean", file=sys.stderr)
    for name in tops:
        print(out / f"{name}.v")
    return status


if __name__ == "__main__":
    sys.exit(main())
