"""focus-run: run one exported job on the accelerator's Verilog (Verilator) and check it.

Reads JOB.npz (written by `focus-sim export`, docs/export-format.md), elaborates the accelerator top
for the file's configuration (cached under build/rtl/ and build/sim/: the first run of a
configuration takes a minute or more, later ones seconds), runs the job through it in cocotb with
every stream at full rate, compares every output with the file (`outputs`, or `outputs_dense` with
--mode dense), and writes RESULT.npz (docs/export-format.md, "Result files (focus-run)").

Exit status: 0 the outputs match (RESULT.npz written); 1 they do not, or the simulation failed
(nothing written; the message names the first differing token and column, and the simulator's raw
output stays in build/run/ for inspection); 2 the input was refused: a missing, corrupt,
wrong-version or inconsistent file, or --config/--set that differ from the file's configuration
(one line on stderr, nothing written).

Examples:
  focus-sim export --set frames=4 --set height=16 --set width=16 --out-features 64 --out build/export/big.npz
  focus-run build/export/big.npz --out build/run/big.npz
  focus-run build/export/big.npz --out build/run/big-dense.npz --mode dense
  focus-run build/export/big.npz --out build/run/big.npz --compare-dense
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

from ..cli import add_config_arguments, load_config
from ..config import ConfigError, FocusConfig
from ..files import atomic_open, build_root, out_refused, output_to, write_refused
from ..sim import export
from ..sim.accelerator import AcceleratorStreams, accelerator_streams, outputs_from_results
from ..sim.checks import InputError

__all__ = ["main", "RESULT_FORMAT", "RESULT_VERSION", "RunError", "load_job", "check_config", "run_job_rtl",
           "check_run", "dense_estimate", "write_result", "CYCLE_PARTS"]

RESULT_FORMAT = "focus-run-result"
RESULT_VERSION = 1

#: Where the cycles of a job go (they add up to ``cycles``; docs/export-format.md).
CYCLE_PARTS = ("sec_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input", "drain")

#: Highest n_tiles the top's command takes (focus.hdl.passbuffer.N_TILES_WIDTH bits).
_MAX_N_TILES = (1 << 16) - 1


class RunError(Exception):
    """The job could not be run or checked; ``status`` is the exit status (1 or 2)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------------------------ input

def load_job(path: str | os.PathLike):
    """The job in ``path``, checked: readable, this format version, shapes agree with its
    configuration, and its golden outputs agree with its own tokens, weights and partial products.
    Raises :class:`RunError` with status 2."""
    try:
        job = export.read(path)            # any unreadable or damaged file is an ExportError (InputError)
    except InputError as err:
        raise RunError(str(err), 2) from None
    _check_consistent(path, job)
    return job


def check_config(path, job, config: str | None, assignments: list[str]) -> None:
    """``--config FILE`` (else the file's configuration) with ``--set`` applied must equal the
    job's configuration; raises :class:`RunError` (status 2) naming every differing field."""
    try:
        given = load_config(config, assignments, base=job.cfg)
    except (ConfigError, OSError) as err:
        raise RunError(str(err), 2) from None
    if given != job.cfg:
        want, found = given.to_dict(), job.cfg.to_dict()
        diff = ", ".join(f"{k}={want[k]!r} (file: {found[k]!r})" for k in want if want[k] != found.get(k))
        raise RunError(f"{path}: --config/--set differ from the file's configuration: {diff}", 2)


def _check_consistent(path, job) -> None:
    """The top must take the job (its N-tile count), and the golden outputs must follow from the
    file's own arrays (:func:`focus.sim.export.check_consistent`, which focus-sim show and focus fpga
    run share)."""
    N = job.weights.shape[1]
    if ceil(N / job.cfg.cols) > _MAX_N_TILES:
        raise RunError(f"{path}: {N} output columns need {ceil(N / job.cfg.cols)} N-tiles; the top takes at most "
                       f"{_MAX_N_TILES}", 2)
    try:
        export.check_consistent(job, path)
    except InputError as err:
        raise RunError(str(err), 2) from None


# ------------------------------------------------------------------------------------ running

@dataclass
class RtlRun:
    """What came out of one run of a job on the top."""
    mode: str
    streams: AcceleratorStreams
    outputs: np.ndarray             # T x N
    result_ends: list
    mask: np.ndarray                # words x cols, 0/1
    status: str
    counters: dict
    wall_s: float                   # seconds of simulation (the cocotb test)
    raw: Path                       # the testbench's output file
    cpu_s: float = 0.0              # CPU seconds of the simulator process (start-up included)


def run_job_rtl(path: str | os.PathLike, job, mode: str, *, log: Path | None = None) -> RtlRun:
    """Run ``job`` (read from ``path``) in ``mode`` on the accelerator's Verilog (Verilator) with no
    idle or stall cycles. The Verilog and the simulator build are cached. Raises :class:`RunError`
    (status 1) when the simulation fails or hangs."""
    from .cocotb_accelerator import RUN_TEST
    from .runner import SimulatorUnavailable, run_cocotb

    cfg = job.cfg
    streams = accelerator_streams(cfg, job, mode)
    folder = build_root() / "run"
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / f"{Path(path).stem}-{mode}-{cfg.digest()}.raw.npz"
    raw.unlink(missing_ok=True)
    params = {"run": {"path": str(Path(path).resolve()), "mode": mode, "out": str(raw)}}
    where = f"; build and simulator output in {log}" if log else ""
    try:
        with output_to(log):
            test_dir = run_cocotb("accelerator", "focus.tb.cocotb_accelerator", cfg, params=params, testcase=RUN_TEST)
    except SimulatorUnavailable as err:
        raise RunError(f"no simulator: {err}", 2) from None
    except AssertionError as err:
        raise RunError(f"the simulation failed: {str(err).splitlines()[0]}{where}", 1) from None
    if not raw.exists():
        raise RunError(f"the simulation wrote no output; results in {test_dir}{where}", 1)
    with np.load(raw, allow_pickle=False) as f:
        rows, ends, mask = f["results"], f["result_ends"].tolist(), f["mask"]
        status, counters, wall = str(f["status"]), json.loads(str(f["counters"])), float(f["wall_s"])
        cpu = float(f["cpu_s"])
    N = job.weights.shape[1]
    try:
        outputs = outputs_from_results(cfg, rows, N)
    except ValueError as err:
        raise RunError(f"{mode}: {err} (raw output in {raw})", 1) from None
    return RtlRun(mode, streams, outputs, ends, mask, status, counters, wall, raw, cpu)


def check_run(run: RtlRun, job) -> None:
    """Raise :class:`RunError` (status 1) naming the first difference between ``run`` and the file."""
    expected = job.outputs if run.mode == "focus" else job.outputs_dense
    where = f" (raw output in {run.raw})"
    if run.status != "OK":
        raise RunError(f"{run.mode}: the job ended with status {run.status}{where}", 1)
    bad = np.argwhere(run.outputs != expected)
    if bad.size:
        t, n = bad[0]
        raise RunError(f"{run.mode}: {len(bad)} outputs differ; the first at token {t}, column {n}: "
                       f"got {run.outputs[t, n]}, expected {expected[t, n]}{where}", 1)
    if run.result_ends != list(run.streams.result_ends):
        i = next(i for i, (a, b) in enumerate(zip(run.result_ends, run.streams.result_ends)) if a != b)
        raise RunError(f"{run.mode}: result framing differs at beat {i}{where}", 1)
    want_mask = run.streams.mask
    if run.mask.shape != want_mask.shape or (run.mask != want_mask).any():
        raise RunError(f"{run.mode}: the SEC keep mask differs from the file's kept tokens{where}", 1)
    for key, value in run.streams.counters.items():
        if run.counters[key] != value:
            raise RunError(f"{run.mode}: counter {key} is {run.counters[key]}, the golden model says {value}{where}", 1)


def dense_estimate(cfg: FocusConfig, streams: AcceleratorStreams) -> int:
    """Cycles of the job with SIC bypassed, from the array's cycle model: every tile-chunk a pass of
    ``tile_tokens`` vectors per N-tile (the array never waits), plus SEC's cycles when SEC runs."""
    from ..sim.array_model import array_cycles
    from ..sim.sec_cycles import job_cycles
    passes = [cfg.tile_tokens] * (cfg.tiles * streams.command["n_tiles"] * cfg.chunks)
    cycles = array_cycles(passes, cfg.rows, cfg.cols)
    if streams.command["k"]:
        cycles += job_cycles(cfg, len(streams.scores) // cfg.sec_words)
    return cycles


# ------------------------------------------------------------------------------------ output

def write_result(out: Path, job, run: RtlRun, source: str, summary: dict) -> None:
    """RESULT.npz (docs/export-format.md, "Result files (focus-run)"), atomically."""
    arrays = {
        "format": np.array(RESULT_FORMAT), "format_version": np.array(RESULT_VERSION, dtype=np.int64),
        "outputs": np.asarray(run.outputs, np.int64),
        "counters": np.array(json.dumps(run.counters, sort_keys=True)),
        "mode": np.array(run.mode), "status": np.array(run.status),
        "config": np.array(job.cfg.to_json()), "source": np.array(source),
        "summary": np.array(json.dumps(summary, sort_keys=True)),
    }
    if run.streams.command["k"]:
        arrays["kept"] = np.flatnonzero(run.mask.reshape(-1)[:job.cfg.tokens]).astype(np.int64)
    with atomic_open(out, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def table(run: RtlRun, summary: dict) -> str:
    c = run.counters
    cycles = c["cycles"]
    lines = [f"{'cycles':24s} {cycles:>10d}",
             f"{'dense cycles':24s} {summary['dense_cycles']:>10d}   ({summary['dense_source']})",
             f"{'speed-up':24s} {summary['speedup']:>10.2f}x",
             f"{'array utilisation':24s} {summary['utilisation']:>10.1%}   (array_busy / cycles)",
             "where the cycles went:"]
    for name in CYCLE_PARTS:
        lines.append(f"  {name:22s} {c[name]:>10d}   {c[name] / max(cycles, 1):6.1%}")
    lines.append("other counters:")
    for name in ("sic_cycles", "scatter_busy", "row_adds", "unique", "similar", "zero"):
        lines.append(f"  {name:22s} {c[name]:>10d}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main

def _fail(message: str, status: int) -> int:
    print(f"focus-run: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focus-run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", metavar="JOB.npz", help="a focus-sim export file")
    parser.add_argument("--out", required=True, metavar="RESULT.npz", help="where to write the result")
    parser.add_argument("--mode", choices=["focus", "dense"], default="focus",
                        help="focus: SIC concentrates; dense: SIC bypassed, checked against outputs_dense "
                             "(default %(default)s)")
    parser.add_argument("--compare-dense", action="store_true",
                        help="also run the job in dense mode on the RTL for the dense cycle count "
                             "(default: the array cycle model's estimate)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the build and simulator output (default: into build/run/<job>.log)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    add_config_arguments(parser, default="the file's configuration. The run uses the file's configuration; "
                                         "--config and --set only assert it: --config FILE with each --set applied "
                                         "in order (or, without --config, the file's configuration with each --set "
                                         "applied) must equal it, else the run is refused naming every differing field",
                         set_help="FIELD=VALUE applied on top of --config (or of the file's configuration); the "
                                  "result must equal the file's configuration (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("FOCUS_WAVES", "0")      # a failing run is not repeated with waveforms

    from tqdm import tqdm
    stages = ["read", "elaborate", "simulate", "check", "write"]
    modes = [args.mode] + (["dense"] if args.compare_dense and args.mode != "dense" else [])
    bar = tqdm(total=len(stages) + len(modes) - 1, unit="step", leave=False,
               disable=True if args.quiet else None, file=sys.stderr)
    try:
        bar.set_description("read")
        job = load_job(args.job)
        if args.config is not None or args.set:
            check_config(args.job, job, args.config, args.set)
        refusal = out_refused(args.out)
        if refusal:
            raise RunError(refusal, 2)
        bar.update()
        from ..gen.elaborate import cached_verilog
        bar.set_description(f"elaborate ({job.cfg.tokens} tokens, config {job.cfg.digest()})")
        started = time.perf_counter()
        cached_verilog(job.cfg, "accelerator")
        bar.update()
        log = None if args.verbose else build_root() / "run" / f"{Path(args.job).stem}.log"
        if log is not None:
            log.unlink(missing_ok=True)                # this run's output only
        runs = {}
        for mode in modes:
            bar.set_description(f"build and simulate ({mode})")
            runs[mode] = run_job_rtl(args.job, job, mode, log=log)
            bar.update()
            check_run(runs[mode], job)
        total = time.perf_counter() - started
        bar.set_description("check")
        bar.update()
        run = runs[args.mode]
        cycles = run.counters["cycles"]
        if "dense" in runs:
            dense, source = runs["dense"].counters["cycles"], "dense run on the RTL"
        else:
            dense, source = dense_estimate(job.cfg, run.streams), "estimate: array cycle model"
        summary = {"cycles": cycles, "dense_cycles": dense, "dense_source": source,
                   "speedup": dense / max(cycles, 1), "utilisation": run.counters["array_busy"] / max(cycles, 1),
                   "simulation_s": round(run.wall_s, 3), "simulation_cpu_s": round(run.cpu_s, 3),
                   "build_and_simulation_s": round(total, 3)}
        bar.set_description("write")
        try:
            write_result(Path(args.out), job, run, str(args.job), summary)
        except OSError as err:
            raise RunError(write_refused(args.out, err), 2) from None
        bar.update()
    except RunError as err:
        bar.close()
        return _fail(str(err), err.status)
    bar.close()
    if not args.quiet:
        cfg = job.cfg
        print(f"{args.job}: {cfg.tokens} tokens, hidden {cfg.hidden}, N {job.weights.shape[1]}, mode {args.mode}"
              f"{', SEC keeps ' + str(run.streams.command['k']) if run.streams.command['k'] else ''}: outputs match")
        print(table(run, summary))
        print(f"simulation {run.wall_s:.1f} s ({cycles / max(run.wall_s, 1e-9):,.0f} cycles/s; simulator process "
              f"{run.cpu_s:.1f} s CPU); with elaboration and build {total:.1f} s")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
