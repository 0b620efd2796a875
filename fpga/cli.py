"""focus: every Focus tool under one command.

Subcommands (each takes --help; `focus gen ARGS` is `focus-gen ARGS`, and so on):
  gen    elaborate components to Verilog for a configuration (focus-gen)
  sim    golden model: export test vectors, show them, compression reports (focus-sim)
  run    run an exported job on the accelerator's Verilog in Verilator and check it (focus-run)
  demo   the end-to-end demonstration (focus.tb.demo)
  fpga   FPGA boards: boards, build, flash, seeds, run (focus.fpga.commands)

Examples:
  focus gen --top accelerator --lint
  focus sim export --frames 4 --height 8 --width 8 --out build/export/bikes.npz
  focus run build/export/bikes.npz --out build/run/bikes.npz

This module is the package's top layer: it imports the others only when a subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main", "COMMANDS"]

#: Subcommand -> (module holding ``main(argv)``, one-line summary).
COMMANDS = {
    "gen": ("focus.gen.cli", "elaborate components to Verilog (focus-gen)"),
    "sim": ("focus.sim.cli", "golden model: export, show, report (focus-sim)"),
    "run": ("focus.tb.run", "run an exported job on the accelerator in Verilator (focus-run)"),
    "demo": ("focus.tb.demo", "the end-to-end demonstration"),
    "fpga": ("focus.fpga.commands", "FPGA boards: boards, build, flash, seeds, run over the UART link or --sim"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND",
                        help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("args", nargs="*", metavar="ARGS", help="the subcommand's arguments (see focus COMMAND --help)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    if not argv:
        parser.error(f"a COMMAND is required: one of {', '.join(COMMANDS)}")
    if argv[0].startswith("-"):
        parser.parse_args(argv[:1])         # --help prints the help and exits; another option is an error
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        parser.error(f"argument COMMAND: invalid choice: {name!r} (choose from {', '.join(COMMANDS)})")
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise                           # a dependency of the subcommand is missing: show it
        print(f"focus {name}: not built yet ({module_name} is not in this installation)", file=sys.stderr)
        return 2
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
