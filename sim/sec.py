"""Semantic concentration (SEC), integer mode: importance by max, exact top-k, pruning.

Scores are unsigned ``cfg.score_width``-bit integers shaped (heads, text tokens, image tokens):
attention of each text (query) token to each image token. The importance of image token j is the
maximum of its scores over heads and text tokens. Top-k keeps exactly k tokens: larger importance
first, and among equal importance the lower token index; kept indices come out ascending. Pruned
tokens become zero vectors, so SIC neither matches them nor matches against them, and their output
rows stay zero.
"""

from __future__ import annotations

from fractions import Fraction
from math import floor

import numpy as np

from ..config import FocusConfig
from .checks import InputError, check_int_array

__all__ = ["importance", "top_k", "keep_mask", "prune", "keep_count", "schedule"]


def importance(cfg: FocusConfig, scores) -> np.ndarray:
    """(image tokens,) max over heads and text tokens of ``scores`` (heads, text, image)."""
    scores = check_int_array("scores", scores, (None, None, None), cfg.score_width, signed=False,
                             shape_doc="heads x text tokens x image tokens")
    if 0 in scores.shape:
        raise InputError(f"scores has shape {'x'.join(map(str, scores.shape))}: every axis needs at least one entry")
    return scores.max(axis=(0, 1))


def top_k(importance_: np.ndarray, k: int) -> np.ndarray:
    """Ascending indices of the k most important tokens; ties go to the lower index."""
    importance_ = np.asarray(importance_, dtype=np.int64)
    n = len(importance_)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise InputError(f"k={k!r} is not allowed: an integer from 1 to the token count {n}")
    order = np.lexsort((np.arange(n), -importance_))          # by importance desc, then index asc
    return np.sort(order[:k])


def keep_mask(tokens: int, kept: np.ndarray) -> np.ndarray:
    mask = np.zeros(tokens, dtype=bool)
    mask[kept] = True
    return mask


def prune(tokens, kept: np.ndarray) -> np.ndarray:
    """A copy of ``tokens`` with every row not in ``kept`` set to zero."""
    out = np.array(tokens, copy=True)
    out[~keep_mask(len(out), kept)] = 0
    return out


def keep_count(image_tokens: int, alpha) -> int:
    """``int(image_tokens * alpha)``, at least 1, computed exactly for a rational ``alpha``."""
    alpha = Fraction(repr(alpha)) if isinstance(alpha, float) else Fraction(alpha)
    return max(1, floor(image_tokens * alpha))


def schedule(cfg: FocusConfig, image_tokens: int | None = None) -> list[tuple[int, Fraction, int]]:
    """The SEC schedule ``[(layer, alpha, k)]`` of ``cfg``, ``k = keep_count(image_tokens, alpha)``
    (default ``cfg.tokens``). The default configuration holds the paper's ratios 0.4, 0.3, 0.2, 0.15,
    0.1 (upstream ``algorithm/focus/configs/focus.csv``) at layers 1..5."""
    n = cfg.tokens if image_tokens is None else image_tokens
    return [(layer, alpha, keep_count(n, alpha)) for layer, alpha in zip(cfg.sec_layers, cfg.sec_alphas)]
