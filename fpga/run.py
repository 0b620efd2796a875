"""focus fpga run: run an exported job on a Focus board over its UART link (or on the board top's
simulation) and check it against the golden model.

  focus fpga run JOB.npz --port /dev/ttyUSB1 --out RESULT.npz
  focus fpga run JOB.npz --sim --out RESULT.npz [--mode dense]

JOB.npz is a `focus-sim export` file. The board must run a bitstream built for the job's
configuration: the host asks the bitstream for its configuration digest first and refuses the job
when it differs (nothing of the job is sent). --sim builds the board top (accelerator, link and
UART) for the job's configuration, runs its Verilog on Verilator and drives its UART pins with the
same host code (docs/link.md; the first run of a configuration builds for a minute or more).

The report: the accelerator's cycles and where they went, the speed-up over dense (the array cycle
model's estimate for the job with SIC bypassed), the time at the board clock, and the link time.
RESULT.npz holds the keys focus-run writes (outputs, kept when SEC ran, counters as JSON, mode,
status, config, source, summary); only the summary's fields differ (docs/link.md).

Exit status: 0 the outputs match; 1 they do not, or the link failed (no answer in time, a port
that fails once open); 2 bad input (one line on stderr, nothing written): a missing, corrupt,
wrong-version or inconsistent file or more than 65535 N-tiles (the checks of focus-run, made before
anything is built or sent), an --out that cannot be written, a --port that cannot be opened, or a
bitstream built for another configuration.

--sim runs at a fixed 12.5 Mbaud with a 5 ms (simulated) host timeout: --baud and --timeout apply
to --port only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..files import output_to

__all__ = ["main", "check_outputs", "focus_estimate", "RESULT_FORMAT", "RESULT_VERSION"]

RESULT_FORMAT = "focus-run-result"
RESULT_VERSION = 1


class _Failure(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def focus_estimate(job, command: dict) -> int:
    """Cycles of the concentrated job when the array never waits (its cycle model over every tile-chunk's
    ``max(U, 1)`` unique vectors per N-tile), as the dense estimate counts them: an input-bound run (a
    UART) is measured against this too."""
    from ..sim.array_model import array_cycles
    cfg = job.cfg
    TT = cfg.tile_tokens
    passes = []
    for tile in range(cfg.tiles):
        uniques = [len({int(u) for u in job.unique_index[c, tile * TT:(tile + 1) * TT] if u >= 0})
                   for c in range(cfg.chunks)]
        passes += [max(u, 1) for u in uniques] * command["n_tiles"]
    return array_cycles(passes, cfg.rows, cfg.cols)


def check_outputs(job, mode: str, streams, got: dict) -> None:
    """Raise :class:`_Failure` (status 1) at the first difference from the golden model."""
    if got["status"] != "OK":
        raise _Failure(f"{mode}: the job ended with status {got['status']}", 1)
    expected = np.asarray(job.outputs if mode == "focus" else job.outputs_dense, np.int64)
    outputs = np.asarray(got["outputs"], np.int64)
    if outputs.shape != expected.shape:
        raise _Failure(f"{mode}: outputs of shape {outputs.shape}, expected {expected.shape}", 1)
    bad = np.argwhere(outputs != expected)
    if len(bad):
        t, n = bad[0]
        raise _Failure(f"{mode}: {len(bad)} outputs differ; the first at token {t}, column {n}: "
                       f"got {outputs[t, n]}, expected {expected[t, n]}", 1)
    if list(got["result_ends"]) != list(streams.result_ends):
        raise _Failure(f"{mode}: the result beats' framing differs from the stream contract", 1)
    if streams.command["k"]:
        if not np.array_equal(np.asarray(got["kept"]), np.asarray(job.kept)):
            raise _Failure(f"{mode}: the SEC keep mask differs from the file's kept tokens", 1)
    for key, value in streams.counters.items():
        if got["counters"][key] != value:
            raise _Failure(f"{mode}: counter {key} is {got['counters'][key]}, the golden model says {value}", 1)


def _report(cfg, got: dict, summary: dict) -> str:
    c = got["counters"]
    cycles = c["cycles"]
    lines = [f"{'cycles':24s} {cycles:>12d}",
             f"{'dense cycles':24s} {summary['dense_cycles']:>12d}   (estimate: array cycle model)",
             f"{'speed-up over dense':24s} {summary['speedup']:>12.3g}x   (dense estimate / cycles"
             + (f"; the link feeds the accelerator: {c['wait_input'] / cycles:.0%} of the cycles waited on "
                f"input)" if c["wait_input"] * 2 > cycles else ")"),
             f"{'array-bound speed-up':24s} {summary['model_speedup']:>12.2f}x   (dense / focus estimate, "
             f"{summary['focus_estimate_cycles']} cycles: the job when the inputs keep pace)",
             f"{'time at the board clock':24s} {summary['accelerator_s'] * 1e6:>12.1f} us   "
             f"({cycles} cycles at {summary['clk_freq'] / 1e6:g} MHz)",
             f"{'link time':24s} {summary['link_s'] * 1e3:>12.3f} ms   ({summary['bytes_sent']} bytes up, "
             f"{summary['bytes_received']} down at {summary['baud']} baud{', simulated' if summary['simulated'] else ''})",
             "where the cycles went:"]
    for name in ("sec_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input", "drain"):
        lines.append(f"  {name:22s} {c[name]:>12d}   {c[name] / max(cycles, 1):6.1%}")
    lines.append("other counters:")
    for name in ("sic_cycles", "scatter_busy", "row_adds", "unique", "similar", "zero"):
        lines.append(f"  {name:22s} {c[name]:>12d}")
    return "\n".join(lines)


def _write(out: Path, job, mode: str, got: dict, source: str, summary: dict) -> None:
    from ..files import atomic_open
    arrays = {
        "format": np.array(RESULT_FORMAT), "format_version": np.array(RESULT_VERSION, dtype=np.int64),
        "outputs": np.asarray(got["outputs"], np.int64),
        "counters": np.array(json.dumps(got["counters"], sort_keys=True)),
        "mode": np.array(mode), "status": np.array(got["status"]),
        "config": np.array(job.cfg.to_json()), "source": np.array(source),
        "summary": np.array(json.dumps(summary, sort_keys=True)),
    }
    if got.get("kept") is not None:
        arrays["kept"] = np.asarray(got["kept"], np.int64)
    with atomic_open(out, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _on_board(args, job) -> dict:
    from .host import ConfigMismatch, FocusLink, LinkError, open_serial
    try:
        port = open_serial(args.port, args.baud)
    except LinkError as err:         # no pyserial
        raise _Failure(f"link: {err}", 1) from None
    except OSError as err:           # the port cannot be opened: bad input
        raise _Failure(f"{args.port}: {err}", 2) from None
    try:
        with port, FocusLink(port, baud=args.baud, timeout=args.timeout) as link:
            identity = link.identify()
            try:
                link.check_config(job.cfg)
            except ConfigMismatch as err:
                raise _Failure(str(err), 2) from None
            run = link.run_job(job.cfg, job, args.mode)
    except LinkError as err:
        raise _Failure(f"link: {err}", 1) from None
    except OSError as err:           # the port failed once open (unplugged, a write timed out): the link failed
        raise _Failure(f"link: {args.port}: {err}", 1) from None
    return {"outputs": run.outputs, "result_ends": run.result_ends, "kept": run.kept, "status": run.status,
            "counters": run.counters, "link": {"link_time": run.link_time, "bytes_sent": run.bytes_sent,
                                               "bytes_received": run.bytes_received, "clk_freq": identity.clk_freq,
                                               "baud": identity.baud}}


def _in_simulation(args, job) -> dict:
    from ..files import build_root
    from .sim import simulate_job
    log = None if args.verbose else build_root() / "fpga-sim" / f"{Path(args.job).stem}-{args.mode}.log"
    if log is not None and not args.quiet:
        print(f"building and simulating the board top for configuration {job.cfg.digest()} "
              f"(output in {log}) ...", file=sys.stderr)
    try:
        with output_to(log):
            got = simulate_job(args.job, job, args.mode)
    except AssertionError as err:
        raise _Failure(f"simulation: {err}", 1) from None
    got["kept"] = got.get("kept")
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focus fpga run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", metavar="JOB.npz", help="a focus-sim export file")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="PORT", help="the board's serial port, e.g. /dev/ttyUSB1 or COM4")
    where.add_argument("--sim", action="store_true",
                       help="run the board top's Verilog on Verilator through its UART pins instead")
    parser.add_argument("--out", required=True, metavar="RESULT.npz", help="where to write the result")
    parser.add_argument("--mode", choices=["focus", "dense"], default="focus",
                        help="focus: SIC concentrates; dense: SIC bypassed, checked against outputs_dense "
                             "(default %(default)s)")
    parser.add_argument("--baud", type=int, default=115_200,
                        help="--port: the port's baud rate, the bitstream's (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="--port: seconds without a byte from the board before giving up (default %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="--sim: show the build and simulator output (default: into "
                             "$FOCUS_BUILD_DIR/fpga-sim/<job>-<mode>.log, FOCUS_BUILD_DIR defaulting to build)")
    parser.add_argument("--quiet", action="store_true", help="no report")
    args = parser.parse_args(argv)

    from ..files import out_refused, write_refused
    from ..sim.accelerator import accelerator_streams
    from ..tb.run import RunError, dense_estimate, load_job

    try:
        try:                        # refused before anything is built or sent (exit 2, one line)
            job = load_job(args.job)        # focus-run's checks: readable, consistent, N-tiles the top takes
        except RunError as err:
            raise _Failure(str(err), err.status) from None
        refusal = out_refused(args.out)
        if refusal:
            raise _Failure(refusal, 2)
        streams = accelerator_streams(job.cfg, job, args.mode)
        got = _in_simulation(args, job) if args.sim else _on_board(args, job)
        check_outputs(job, args.mode, streams, got)
    except _Failure as err:
        print(f"focus fpga run: error: {err}", file=sys.stderr)
        return err.status
    cfg = job.cfg
    link = got["link"]
    cycles = got["counters"]["cycles"]
    dense = dense_estimate(cfg, streams)
    focus = focus_estimate(job, streams.command) if args.mode == "focus" else dense
    summary = {"cycles": cycles, "dense_cycles": dense, "dense_source": "estimate: array cycle model",
               "speedup": dense / max(cycles, 1),
               "focus_estimate_cycles": focus,
               "model_speedup": dense / max(focus, 1), "utilisation": got["counters"]["array_busy"] / max(cycles, 1),
               "clk_freq": link["clk_freq"], "baud": link["baud"], "accelerator_s": cycles / link["clk_freq"],
               "link_s": link["link_time"], "bytes_sent": link["bytes_sent"],
               "bytes_received": link["bytes_received"], "simulated": bool(args.sim)}
    try:
        _write(Path(args.out), job, args.mode, got, str(args.job), summary)
    except OSError as err:
        print(f"focus fpga run: error: {write_refused(args.out, err)}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"{args.job}: {args.mode} job, {cfg.tokens} tokens, configuration {cfg.digest()}: outputs match "
              f"the golden model")
        print(_report(cfg, got, summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
