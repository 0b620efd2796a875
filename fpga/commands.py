"""focus fpga: the board commands under one subcommand.

  focus fpga boards                 the boards and their presets          (focus.fpga.cli_build)
  focus fpga build --board NAME     build a board's bitstream and report  (focus.fpga.cli_build)
  focus fpga flash --board NAME     program a board with openFPGALoader   (focus.fpga.cli_build)
  focus fpga seeds --board NAME     rank placement seeds by estimated MHz (focus.fpga.cli_build)
  focus fpga run JOB.npz --port PORT | --sim --out RESULT.npz
                                    run a job over the UART link, or on the board top in simulation
                                                                          (focus.fpga.run)

Each takes --help.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["main", "SUBCOMMANDS"]

#: Board subcommand -> module whose ``main(argv)`` runs it (with the subcommand name first for
#: ``cli_build``, which parses boards/build/flash/seeds itself).
SUBCOMMANDS = {"boards": "focus.fpga.cli_build", "build": "focus.fpga.cli_build",
               "flash": "focus.fpga.cli_build", "seeds": "focus.fpga.cli_build", "run": "focus.fpga.run"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"focus fpga: unknown subcommand {name!r}; one of {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module_name = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        print(f"focus fpga {name}: not built yet ({module_name} is not in this installation)", file=sys.stderr)
        return 2
    return module.main(rest if name == "run" else argv) or 0


if __name__ == "__main__":
    sys.exit(main())
