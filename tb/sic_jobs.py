"""SIC test jobs and the beats the block must stream for them, from the golden model.

Shared by the Amaranth-simulator tests (tests/test_sic.py) and the cocotb testbench
(tb/cocotb_sic.py), so both check the same stream layout against the same model.

:func:`sic_beats` lays one job out in the order the hardware streams it (see the
:class:`focus.hdl.sic.SimilarityConcentrator` docstring): the input vectors tile-major, chunk-minor,
raster order; one map beat per vector; one counters beat per tile-chunk; the tile-chunk's new
representatives. :func:`export_beats` does the same for an exported job and checks it against the
file's own counters.

Jobs as golden-model exports (docs/export-format.md), built with the ``focus.sim`` library:
:func:`export_clip` writes what ``focus-sim export`` writes for a real clip (SEC on random scores
prunes tokens to zero vectors); :func:`export_planted` exports
:func:`focus.sim.synthetic.planted_tokens` (random tokens with planted window duplicates);
:func:`minilm_exports` exports all-MiniLM-L6-v2's QKV and FFN-up GEMMs with SEC scores from its
attention (the accelerator's RTL and cycle-model tests share them, cached under
:func:`accelerator_export_folder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..config import FocusConfig
from ..files import build_root
from ..framing import end_codes, end_fields
from ..sim import export, sec
from ..sim.job import Job, run_job
from ..sim.sic import SicResult
from ..sim.sic_cycles import unique_per_tile_chunk
from ..sim.synthetic import planted_tokens
from ..sim.video import clip_tokens

__all__ = ["SicBeats", "stream_vectors", "sic_beats", "export_beats", "export_planted", "export_clip",
           "accelerator_export_folder", "minilm_exports", "MINILM", "MINILM_COLUMNS"]

#: A MiniLM-width configuration (hidden 384): 2 frames of 4 x 4 tokens, one tile.
MINILM = FocusConfig(hidden=384, frames=2, height=4, width=4, tile_frames=2)
#: Of a MiniLM GEMM's output columns, the first 20: 3 N-tiles, the last partly used.
MINILM_COLUMNS = 20


@dataclass
class SicBeats:
    """One job as beats: what goes in and what must come out, in stream order."""

    vectors: list[dict]                              # framed beats: tile-major, chunk-minor, raster order
    map: list[tuple[int, int]]                       # (unique index, framing code)
    counters: list[tuple[int, int, int, int, int]]   # (unique, similar, zero, base, framing code) per tile-chunk
    representatives: list[tuple[list[int], int]]     # (vector, framing code)
    unique: list[int]                                # roots per tile-chunk (for the cycle model)


def stream_vectors(cfg: FocusConfig, tokens) -> list[dict]:
    """The framed vector beats (``{"data", "end"}``, docs/streams.md) of ``tokens`` in the order SIC
    takes them: tile-major, chunk-minor, raster order."""
    V, TT = cfg.vector_size, cfg.tile_tokens
    ends = end_codes([TT] * (cfg.tiles * cfg.chunks), cfg.chunks)
    vectors = [np.asarray(tokens[t, c * V:(c + 1) * V]).tolist() for k in range(cfg.tiles) for c in range(cfg.chunks)
               for t in range(k * TT, (k + 1) * TT)]
    return [{"data": v, "end": end_fields(e)} for v, e in zip(vectors, ends)]


def sic_beats(cfg: FocusConfig, tokens, result: SicResult | Job) -> SicBeats:
    """The beats of one job on ``tokens`` whose golden outcome is ``result``: a
    :class:`~focus.sim.sic.SicResult` of :func:`focus.sim.sic.concentrate`, or an exported
    :class:`~focus.sim.job.Job` (unique indices restart at each job)."""
    TT = cfg.tile_tokens
    if isinstance(result, Job):
        representatives = [result.chunk("representatives", c) for c in range(cfg.chunks)]
    else:
        representatives = result.representatives
    out = SicBeats(stream_vectors(cfg, tokens), [], [], [], unique_per_tile_chunk(cfg, result))
    base = [0] * cfg.chunks
    ends = iter(end_codes([1] * (cfg.tiles * cfg.chunks), cfg.chunks))       # one per tile-chunk
    for k in range(cfg.tiles):
        for c in range(cfg.chunks):
            end = next(ends)
            index = result.unique_index[c, k * TT:(k + 1) * TT]
            out.map += [(int(i), end if n == TT - 1 else 0) for n, i in enumerate(index)]
            unique = len(set(index[index >= 0].tolist()))
            similar = int((result.best[c, k * TT:(k + 1) * TT] > 0).sum())
            out.counters.append((unique, similar, int((index < 0).sum()), base[c], end))
            reps = representatives[c][base[c]:base[c] + unique]
            out.representatives += [(rep.tolist(), end if i == unique - 1 else 0) for i, rep in enumerate(reps)]
            base[c] += unique
    assert [u for u, *_ in out.counters] == out.unique
    return out


def export_beats(cfg: FocusConfig, path) -> SicBeats:
    """:func:`sic_beats` of the job exported to ``path``, which must have been exported for ``cfg``.
    The per tile-chunk counters are checked to add up to the file's per-chunk counters, so beats
    compared with these equal the golden model's counters."""
    job = export.read(path)
    if job.cfg != cfg:
        raise AssertionError(f"{path} was exported for configuration {job.cfg.digest()}, "
                             f"the design is built for {cfg.digest()}")
    out = sic_beats(cfg, job.tokens, job)
    n = len(out.counters)
    for key, position in (("unique", 0), ("similar", 1), ("zero", 2)):
        sums = [sum(out.counters[i][position] for i in range(c, n, cfg.chunks)) for c in range(cfg.chunks)]
        assert sums == list(job.counters[f"{key}_per_chunk"]), (key, sums, job.counters[f"{key}_per_chunk"])
    for c in range(cfg.chunks):
        unique = sum(out.counters[i][0] for i in range(c, n, cfg.chunks))
        assert unique == job.unique_offsets[c + 1] - job.unique_offsets[c]
    return out


def export_planted(cfg: FocusConfig, path: Path, *, seed: int = 0) -> Path:
    """Export a job of :func:`focus.sim.synthetic.planted_tokens` (random weights) to ``path``."""
    rng = np.random.default_rng([seed, 2])
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, cfg.cols))
    job = run_job(cfg, planted_tokens(cfg, seed), weights, meta={"tool": "focus.tb.sic_jobs", "seed": seed,
                                                                 "tokens": "planted duplicates"})
    return export.write(path, job)


def export_clip(cfg: FocusConfig, clip: str, path: Path, *, seed: int = 0, keep_ratio: str | None = "4/5",
                start: int = 0) -> Path:
    """Export ``clip`` under ``cfg`` to ``path`` as ``focus-sim export --clip CLIP --seed SEED --start
    START`` does: tokens from :func:`focus.sim.video.clip_tokens`, random weights (``cfg.cols``
    columns). With ``keep_ratio`` SEC (random scores, like ``--scores random --prune``) prunes the
    rest of the tokens to zero vectors before SIC; ``None`` keeps every token (``--scores none``)."""
    rng = np.random.default_rng([seed, 1])
    video = clip_tokens(cfg, clip, start=start, seed=seed)
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, cfg.cols))
    meta = {"tool": "focus.tb.sic_jobs", "clip": clip, "start": start, "stride": 1, "seed": seed,
            "patch": video.patch, "scale": video.scale, "frame_indices": video.frame_indices.tolist(),
            "weights": "random"}
    scores = keep = None
    if keep_ratio is not None:
        scores = rng.integers(0, 1 << cfg.score_width, (4, 8, cfg.tokens), dtype=np.int64)
        keep = sec.keep_count(cfg.tokens, Fraction(keep_ratio))
        meta.update(scores="random (4 heads, 8 text tokens)", keep=keep)
    job = run_job(cfg, video.tokens, weights, scores=scores, keep=keep, prune=keep_ratio is not None, meta=meta)
    return export.write(path, job)


def accelerator_export_folder(cfg: FocusConfig, name: str) -> Path:
    """Where the accelerator tests keep the exports called ``name`` for ``cfg``."""
    return build_root() / "export" / "accelerator" / f"{name}-{cfg.digest()}"


def minilm_exports(cfg: FocusConfig, columns: int | None = MINILM_COLUMNS) -> list[dict]:
    """MiniLM's QKV and FFN-up GEMMs at layer 1 on bikes (their first ``columns`` output columns, None:
    all), SEC scores from its attention keeping 2/5 of the tokens, pruned; as the accelerator
    bench's ``exports`` (``{"path", "modes"}``, QKV first)."""
    from ..sim import minilm
    out = accelerator_export_folder(cfg, "minilm" if columns == MINILM_COLUMNS else f"minilm-{columns or 'all'}")
    scores = minilm.attention_scores(cfg, "bikes", layer=1)
    keep = sec.keep_count(cfg.tokens, Fraction(2, 5))
    exports = []
    for site in ("qkv", "ffn_up"):
        tokens, weights, scale = minilm.gemm_inputs(cfg, "bikes", layer=1, site=site)
        job = run_job(cfg, tokens, weights[:, :columns], scores=scores, keep=keep, prune=True,
                      meta={"tool": "focus.tb.sic_jobs", "source": "minilm", "gemm": site, "layer": 1,
                            "clip": "bikes", "scale": scale, "keep": keep})
        exports.append({"path": str(export.write(out / f"{site}.npz", job)), "modes": ["focus", "dense"]})
    return exports
