"""Test jobs for SIC, written as golden-model exports (docs/export-format.md).

:func:`export_clip` runs ``focus-sim export`` (in-process) on a real clip; :func:`export_planted`
exports random tokens in which duplicates of every kind were planted: exact and near copies of
each window neighbour, scaled copies (equal cosines with different norms, so ties between
candidates are common), negated copies (negative dot products), all-zero (pruned) tokens, zero
vectors inside live tokens, and tokens at the extremes of the data range.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from ..config import FocusConfig
from ..sim import export
from ..sim.job import run_job

__all__ = ["planted_tokens", "export_planted", "export_clip"]


def planted_tokens(cfg: FocusConfig, seed: int) -> np.ndarray:
    """(tokens, hidden) signed tokens with planted window duplicates (see the module docstring)."""
    rng = np.random.default_rng(seed)
    lo, hi = cfg.data_min, cfg.data_max
    X = rng.integers(lo, hi + 1, (cfg.tokens, cfg.hidden))
    offsets = [df * cfg.frame_tokens + dh * cfg.width + dw for _, df, dh, dw in cfg.candidates]
    for t in range(cfg.tokens):
        src = t - offsets[rng.integers(len(offsets))]
        kind = rng.random()
        if src < 0:
            continue
        if kind < 0.25:
            X[t] = X[src]
        elif kind < 0.45:
            X[t] = np.clip(X[src] + rng.integers(-3, 4, cfg.hidden), lo, hi)
        elif kind < 0.55:
            X[t] = X[src] // 2 if rng.random() < 0.5 else np.clip(2 * X[src], lo, hi)
        elif kind < 0.60:
            X[t] = np.clip(-X[src], lo, hi)
        elif kind < 0.68:
            X[t] = 0                                             # a pruned token
        elif kind < 0.70:
            X[t] = lo if rng.random() < 0.5 else hi              # the widest values
    chunks = rng.integers(cfg.chunks, size=cfg.tokens)
    holes = rng.random(cfg.tokens) < 0.05                        # zero vectors in live tokens
    for t in np.nonzero(holes)[0]:
        c = chunks[t]
        X[t, c * cfg.vector_size:(c + 1) * cfg.vector_size] = 0
    return X


def export_planted(cfg: FocusConfig, path: Path, *, seed: int = 0) -> Path:
    """Export a job of :func:`planted_tokens` (random weights) to ``path``."""
    rng = np.random.default_rng([seed, 2])
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, cfg.cols))
    job = run_job(cfg, planted_tokens(cfg, seed), weights, meta={"tool": "focus.tb.sic_jobs", "seed": seed,
                                                                 "tokens": "planted duplicates"})
    return export.write(path, job)


def export_clip(cfg: FocusConfig, clip: str, path: Path, *, seed: int = 0, keep_ratio: str | None = "4/5",
                start: int = 0) -> Path:
    """``focus-sim export`` of ``clip`` under ``cfg`` to ``path``. With ``keep_ratio`` SEC (random
    scores) prunes the rest of the tokens to zero vectors before SIC; ``None`` keeps every token."""
    from ..sim.cli import main

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = path.with_suffix(".config.json")
    config.write_text(cfg.to_json())
    args = ["export", "--config", str(config), "--clip", clip, "--seed", str(seed), "--start", str(start),
            "--quiet", "--out", str(path)]
    args += ["--scores", "random", "--prune", "--keep-ratio", keep_ratio] if keep_ratio else ["--scores", "none"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(args)
    if code:
        raise RuntimeError(f"focus-sim export failed ({code}): {err.getvalue()}")
    return path
