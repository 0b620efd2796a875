"""focus-sim: the Focus golden model on real workloads; test vectors and compression reports.

Subcommands:
  export   one job (tokens from a clip, weights, SEC scores) through the integer contract, written
           as a versioned .npz test-vector file (docs/export-format.md)
  show     print what an exported file holds, after the checks focus-run makes (format, version,
           shapes, and that the golden outputs follow from the file's own arrays)
  report   run the real MiniLM workload (or read an exported file) and write a compression report:
           a Markdown table per layer, a JSON file, and a plot of which tokens merged per frame

Examples:
  focus-sim export --clip bikes --frames 4 --height 8 --width 8 --hidden 64 --vector-size 8 \\
                   --threshold 9/10 --tile-frames 2 --seed 0 --out build/export/bikes.npz
  focus-sim show build/export/bikes.npz
  focus-sim report                               MiniLM on bikes, default grid (about a minute)
  focus-sim report --from build/export/bikes.npz
"""

from __future__ import annotations

import os

# The model's matrices are small: BLAS threads mostly contend (4x slower on a busy 2-core machine).
# One thread unless the caller chose otherwise; this must run before NumPy loads BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from ..cli import add_config_arguments, config_from_args  # noqa: E402
from ..config import FocusConfig  # noqa: E402
from ..files import build_root, out_refused, write_refused  # noqa: E402
from .checks import InputError  # noqa: E402
from .video import CLIPS  # noqa: E402

__all__ = ["main"]


class _Bars:
    """A progress callback ``(stage, done, total)`` drawing one tqdm bar per stage (quiet off a TTY)."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.bars = quiet, {}

    def __call__(self, stage: str, done: int, total: int):
        from tqdm import tqdm
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="step", leave=False,
                                          disable=True if self.quiet else None)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self):
        for bar in self.bars.values():
            bar.close()


def _shape_arguments(parser: argparse.ArgumentParser):
    g = parser.add_argument_group("grid and SIC (shortcuts for --set FIELD=VALUE: applied after --config, "
                                  "before every --set)")
    g.add_argument("--frames", type=int, metavar="F", help="frames in the grid")
    g.add_argument("--height", type=int, metavar="H", help="token rows per frame")
    g.add_argument("--width", type=int, metavar="W", help="token columns per frame")
    g.add_argument("--hidden", type=int, metavar="D", help="token width (elements)")
    g.add_argument("--vector-size", type=int, metavar="V", help="SIC vector / K-chunk size (also sets rows)")
    g.add_argument("--threshold", metavar="T/Q", help="cosine threshold, e.g. 9/10")
    g.add_argument("--tile-frames", type=int, metavar="TF", help="frames per tile")
    g.add_argument("--representative", choices=["mean", "root"], help="group representative")


def _config(parser: argparse.ArgumentParser, args, base: FocusConfig | None = None) -> FocusConfig:
    shortcuts = []
    for name, field in (("frames", "frames"), ("height", "height"), ("width", "width"), ("hidden", "hidden"),
                        ("vector_size", "vector_size"), ("vector_size", "rows"), ("threshold", "threshold"),
                        ("tile_frames", "tile_frames"), ("representative", "representative")):
        value = getattr(args, name, None)
        if value is not None:
            shortcuts.append(f"{field}={value}")
    return config_from_args(parser, args, base=base, overrides=shortcuts)


# ------------------------------------------------------------------------------------------ export

def _export(parser, args) -> int:
    from . import export, sec
    from .job import run_job
    from .video import clip_tokens

    cfg = _config(parser, args)
    out = Path(args.out) if args.out else build_root() / "export" / f"{args.clip}-{cfg.digest()}.npz"
    refusal = out_refused(out)
    if refusal:
        parser.error(refusal)
    if args.out_features is not None:
        most = _GEMM_OUTPUTS[args.gemm] if args.source == "minilm" else None
        if args.out_features < 1 or (most is not None and args.out_features > most):
            allowed = (f"from 1 to {most} (MiniLM GEMM {args.gemm} has {most} output columns; the first N are taken)"
                       if most is not None else "a positive number of weight columns")
            parser.error(f"--out-features={args.out_features} is not allowed: {allowed}")
    bars = _Bars(args.quiet)
    try:
        rng = np.random.default_rng([args.seed, 1])
        meta = {"tool": "focus-sim export", "clip": args.clip, "start": args.start, "stride": args.stride,
                "seed": args.seed, "patch": args.patch, "source": args.source}
        bars("tokens", 0, 1)
        if args.source == "clip":
            video = clip_tokens(cfg, args.clip, start=args.start, stride=args.stride, seed=args.seed, patch=args.patch)
            tokens, scale = video.tokens, video.scale
            n_out = cfg.cols if args.out_features is None else args.out_features
            weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, n_out))
            meta.update(frame_indices=video.frame_indices.tolist(), weights="random")
        else:
            tokens, weights, scale = _minilm_gemm(cfg, args)
            meta.update(frame_indices=[args.start + i * args.stride for i in range(cfg.frames)],
                        weights=f"minilm layer {args.layer} {args.gemm}", gemm=args.gemm, layer=args.layer,
                        prompt=args.prompt)
        meta["scale"] = scale
        bars("tokens", 1, 1)
        scores, meta["scores"] = _scores(cfg, args, rng, bars)
        keep = None
        if scores is not None:
            if args.keep is not None and not 1 <= args.keep <= cfg.tokens:
                parser.error(f"--keep={args.keep} is not allowed: an integer from 1 to the token count {cfg.tokens}")
            keep = sec.keep_count(cfg.tokens, args.keep_ratio) if args.keep is None else args.keep
        elif args.prune or args.keep is not None:
            parser.error("--prune and --keep need SEC scores: use --scores auto, minilm or random")
        meta["keep"] = keep
        job = run_job(cfg, tokens, weights, scores=scores, keep=keep, prune=args.prune,
                      neighbourhood=args.neighbourhood, meta=meta, progress=bars)
        bars("write", 0, 1)
        try:
            export.write(out, job, partials=not args.no_partials)
        except OSError as err:
            raise InputError(write_refused(out, err)) from None
        bars("write", 1, 1)
    except InputError as err:
        bars.close()
        parser.error(str(err))
    bars.close()
    c = job.counters
    print(f"{out}: {cfg.tokens} tokens x {cfg.chunks} chunks, unique {c['unique']}, similar {c['similar']}, "
          f"zero {c['zero']}, sparsity {c['sparsity']:.3f}, compression {_times(c['compression'])}"
          f"{', kept ' + str(len(job.kept)) if job.kept is not None else ''}", file=sys.stderr)
    print(out)
    return 0


#: Input and output widths of all-MiniLM-L6-v2's GEMMs (hidden 384, FFN 1536; QKV fused).
_GEMM_INPUTS = {"qkv": 384, "attn_out": 384, "ffn_up": 384, "ffn_down": 1536}
_GEMM_OUTPUTS = {"qkv": 1152, "attn_out": 384, "ffn_up": 1536, "ffn_down": 384}


def _times(x) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _minilm_gemm(cfg, args):
    from . import minilm
    widths = _GEMM_INPUTS
    if cfg.hidden != widths[args.gemm]:
        raise InputError(f"--source minilm --gemm {args.gemm} takes {widths[args.gemm]}-element inputs; "
                         f"set --hidden {widths[args.gemm]} (hidden={cfg.hidden})")
    tokens, weights, scale = minilm.gemm_inputs(cfg, args.clip, layer=args.layer, site=args.gemm, prompt=args.prompt,
                                                start=args.start, stride=args.stride, seed=args.seed, patch=args.patch)
    return tokens, weights if args.out_features is None else weights[:, :args.out_features], scale


def _scores(cfg, args, rng, bars):
    choice = args.scores
    if choice == "auto":
        from . import minilm
        choice = "minilm" if minilm.fits(cfg, args.prompt) else "random"
    if choice == "none":
        return None, None
    if choice == "random":
        return (rng.integers(0, 1 << cfg.score_width, (4, 8, cfg.tokens), dtype=np.int64),
                "random (4 heads, 8 text tokens)")
    from . import minilm
    scores = minilm.attention_scores(cfg, args.clip, prompt=args.prompt, layer=args.layer, start=args.start,
                                     stride=args.stride, seed=args.seed, patch=args.patch, progress=bars)
    return scores, f"minilm layer {args.layer}, prompt {args.prompt!r}"


# ------------------------------------------------------------------------------------------ show

def _refuse(parser: argparse.ArgumentParser, err) -> None:
    """A refused input file: one line on stderr (no usage: the command line was fine), exit 2."""
    parser.exit(2, f"{parser.prog}: error: {err}\n")


def _show(parser, args) -> int:
    from . import export
    try:
        job = export.read(args.file)
        export.check_consistent(job, args.file)
    except InputError as err:
        _refuse(parser, err)
    cfg, c = job.cfg, job.counters
    print(f"{args.file}: {export.FORMAT} version {export.FORMAT_VERSION}, config {cfg.digest()}")
    print(f"  grid {cfg.frames}x{cfg.height}x{cfg.width} = {cfg.tokens} tokens, hidden {cfg.hidden}, "
          f"vector {cfg.vector_size} ({cfg.chunks} chunks), tiles of {cfg.tile_frames} frames, "
          f"threshold {cfg.threshold}, {cfg.representative} representative, {job.neighbourhood}")
    print(f"  weights {job.weights.shape[0]}x{job.weights.shape[1]}; unique {c.get('unique')}, similar "
          f"{c.get('similar')}, zero {c.get('zero')}; sparsity {c.get('sparsity', 0):.4f}; "
          f"MACs {c.get('dense_macs')} dense, {c.get('concentrated_macs')} concentrated "
          f"({_times(c.get('compression'))})")
    if job.scores is not None:
        print(f"  SEC scores {'x'.join(map(str, job.scores.shape))}, kept {len(job.kept)}"
              f"{' (pruned before SIC)' if job.pruned else ''}")
    for key, value in sorted(job.meta.items()):
        print(f"  {key}: {value}")
    return 0


# ------------------------------------------------------------------------------------------ report

def _report(parser, args) -> int:
    from . import report
    bars = _Bars(args.quiet)
    out = Path(args.out) if args.out else None
    try:
        if args.from_file:
            try:
                paths = report.report_file(args.from_file, out_dir=out)
            except InputError as err:              # the file is refused: one line, nothing written
                bars.close()
                _refuse(parser, err)
        else:
            cfg = _config(parser, args, base=report.default_config())
            paths = report.report_minilm(cfg, clip=args.clip, prompt=args.prompt, start=args.start,
                                         stride=args.stride, seed=args.seed, patch=args.patch,
                                         sec=not args.no_sec, sites=report.sites(args.no_query_sic),
                                         sweep=not args.no_sweep, out_dir=out, progress=bars)
    except InputError as err:
        bars.close()
        parser.error(str(err))
    bars.close()
    print(Path(paths["markdown"]).read_text())
    for key in ("markdown", "json", "plot"):
        print(paths[key], file=sys.stderr)
    return 0


def _workload_arguments(p, *, clip_default="bikes", scores=False):
    p.add_argument("--clip", default=clip_default, choices=CLIPS, help="video clip (default %(default)s)")
    p.add_argument("--start", type=int, default=0, help="first frame (default %(default)s)")
    p.add_argument("--stride", type=int, default=1, help="take every STRIDE-th frame (default %(default)s)")
    p.add_argument("--patch", type=int, default=16, help="patch edge in pixels (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the patch projection, random weights, random scores (default %(default)s)")
    p.add_argument("--prompt", default="What are the people in the video doing?",
                   help="text prompt for MiniLM (default %(default)r)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="focus-sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="write one job's test vectors (.npz)", description=_export_doc(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p)
    _shape_arguments(p)
    _workload_arguments(p)
    p.add_argument("--neighbourhood", choices=["bounded", "linear"], default="bounded",
                   help="SIC candidate positions (default %(default)s, what the hardware does)")
    p.add_argument("--out-features", type=int, metavar="N",
                   help="the job's weight columns N, at least 1 (default: the configuration's cols for --source "
                        "clip; all of the GEMM's for minilm, where N takes its first N columns). The configuration's "
                        "out_features (the N the design is sized for) is a separate field (--set out_features=...)")
    p.add_argument("--source", choices=["clip", "minilm"], default="clip",
                   help="clip: tokens are the clip's patch projections, weights seeded uniform integers; "
                        "minilm: tokens are the image rows entering MiniLM GEMM --gemm at --layer (dense INT8 "
                        "run), weights that GEMM's INT8 weights (default %(default)s)")
    p.add_argument("--gemm", choices=["qkv", "attn_out", "ffn_up", "ffn_down"], default="qkv",
                   help="MiniLM GEMM for --source minilm (default %(default)s)")
    p.add_argument("--layer", type=int, default=1,
                   help="MiniLM layer (0-5) for --source minilm and for the scores (default %(default)s)")
    p.add_argument("--scores", choices=["auto", "minilm", "random", "none"], default="auto",
                   help="SEC scores: MiniLM text-to-image attention, seeded random, or none; auto = minilm "
                        "when text + image tokens fit its 512 positions, else random (default %(default)s)")
    p.add_argument("--keep-ratio", default="2/5", metavar="ALPHA",
                   help="SEC keep ratio: k = max(1, floor(tokens * ALPHA)) (default %(default)s)")
    p.add_argument("--keep", type=int, metavar="K", help="SEC keep count (overrides --keep-ratio)")
    p.add_argument("--prune", action="store_true",
                   help="zero the pruned tokens before SIC (tokens then holds the pruned grid)")
    p.add_argument("--no-partials", action="store_true",
                   help="leave the per-chunk products (unique x N) out of the file; readers recompute them")
    p.add_argument("--out", metavar="FILE.npz",
                   help="output file (default $FOCUS_BUILD_DIR/export/<clip>-<config digest>.npz, FOCUS_BUILD_DIR "
                        "defaulting to build; the digest names the configuration only, so runs differing in other "
                        "options write the same default file)")

    p = sub.add_parser("show", help="print and check what an exported file holds",
                       description="Check FILE.npz as focus-run does (format, format_version, every shape against "
                                   "the configuration, and that outputs_dense, outputs, partials and unique_index "
                                   "agree with its tokens and weights) and print what it holds. A file that fails "
                                   "a check is refused (exit 2, one error line).")
    p.add_argument("file", metavar="FILE.npz")

    p = sub.add_parser("report", help="compression report on the real MiniLM workload or an exported file",
                       description=_report_doc(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p, default="the MiniLM report's own (focus.sim.report.default_config); not used with "
                                    "--from, which reports on the file's configuration")
    _shape_arguments(p)
    _workload_arguments(p)
    p.add_argument("--from", dest="from_file", metavar="FILE.npz", help="report on an exported file instead")
    p.add_argument("--no-sec", action="store_true", help="no semantic concentration (SIC only)")
    p.add_argument("--no-query-sic", action="store_true", help="no SIC on the query side of QK^T")
    p.add_argument("--no-sweep", action="store_true",
                   help="skip the SIC-only runs at thresholds 19/20 and 99/100 and with the root representative")
    p.add_argument("--out", metavar="DIR", help="report folder (default build/report/<workload>/)")

    args = parser.parse_args(argv)
    sub_parser = sub.choices[args.command]
    if getattr(args, "seed", 0) < 0:
        sub_parser.error(f"--seed={args.seed} is not allowed: an integer of at least 0")
    if args.command == "export":
        from fractions import Fraction
        try:
            ratio = Fraction(args.keep_ratio)
        except (ValueError, ZeroDivisionError):
            ratio = None
        if ratio is None or not 0 < ratio <= 1:
            sub_parser.error(f"--keep-ratio={args.keep_ratio} is not allowed: a number in (0, 1] such as 2/5 or 0.4")
        args.keep_ratio = ratio
        return _export(sub_parser, args)
    if args.command == "show":
        return _show(sub_parser, args)
    return _report(sub_parser, args)


def _export_doc() -> str:
    return ("Run one job through the integer contract and write its test vectors.\n\n"
            "Tokens and weights come from --source: the patch projections of --clip (focus.sim.video.clip_tokens)\n"
            "and seeded random weights, or the inputs and INT8 weights of a MiniLM GEMM (--gemm, --layer).\n"
            "SEC scores come from --scores. The file format is docs/export-format.md; read it back with\n"
            "focus.sim.export.read or numpy.load(path, allow_pickle=False).\n\n"
            "The configuration: --config FILE.json (else the embedded default), then the shortcut options\n"
            "(--frames ... --representative; --vector-size sets vector_size and rows), then each --set in order.\n"
            "A bad option is refused (exit 2) naming the option, its value and what is allowed; nothing is\n"
            "written.")


def _report_doc() -> str:
    return ("Compression report. By default runs all-MiniLM-L6-v2 (6 layers, INT8) on [prompt tokens,\n"
            "video tokens] with Focus applied (SIC on the QKV, attention-output, FFN-up and FFN-down inputs\n"
            "and the query side of QK^T; SEC at the scheduled layers), next to a dense float and a dense INT8\n"
            "run, and reports per layer compression, sparsity and fidelity. With --from FILE.npz, reports on\n"
            "an exported job instead.\n\n"
            "The MiniLM report starts from its own default configuration (focus.sim.report.default_config:\n"
            "8 frames of 6 x 8 tokens, hidden 384, vector 32, threshold 9/10, tiles of 4 frames); --config\n"
            "replaces it, the shortcuts and --set change it. Image and prompt tokens must fit 512 positions.")


if __name__ == "__main__":
    sys.exit(main())
