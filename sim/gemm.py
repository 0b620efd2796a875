"""Concentrated GEMM, integer mode: the array computes unique vectors, the scatter adds them back.

``Y = X @ W`` with X the (tokens, hidden) tokens and W the (hidden, N) weights. For each K-chunk c
(rows ``c*V .. c*V+V-1`` of W), the array computes ``P_c = R_c @ W_c`` on the chunk's unique
representatives ``R_c`` only; then each token's output row adds ``P_c[unique_index[c, t]]``
(nothing for a zero vector). All arithmetic is exact integer; results are kept as signed
``cfg.acc_width``-bit values (two's-complement wrap, which the configuration's accumulator check
rules out for in-range data). With no merges and ``representative`` either mode, Y equals
``X @ W`` exactly; :func:`dense` is that reference.
"""

from __future__ import annotations

import numpy as np

from ..config import FocusConfig
from .checks import check_int_array
from .sic import SicResult

__all__ = ["dense", "concentrated", "wrap", "gemm_counters"]


def wrap(values: np.ndarray, width: int) -> np.ndarray:
    """Two's-complement wrap of int64 ``values`` to ``width`` bits."""
    values = np.asarray(values, dtype=np.int64)
    if width >= 64:
        return values
    half = 1 << (width - 1)
    return ((values + half) & ((1 << width) - 1)) - half


def _weights(cfg: FocusConfig, weights) -> np.ndarray:
    return check_int_array("weights", weights, (cfg.hidden, None), cfg.data_width,
                           shape_doc=f"hidden={cfg.hidden} rows by N output columns")


def dense(cfg: FocusConfig, tokens, weights) -> np.ndarray:
    """``X @ W`` as the array computes it without concentration (signed acc_width results)."""
    X = check_int_array("tokens", tokens, (None, cfg.hidden), cfg.data_width)
    return wrap(X @ _weights(cfg, weights), cfg.acc_width)


def concentrated(cfg: FocusConfig, sic: SicResult, weights) -> tuple[np.ndarray, list[np.ndarray]]:
    """Output rows (tokens, N) and the per-chunk partial products ``P_c`` (unique, N)."""
    W = _weights(cfg, weights)
    V = cfg.vector_size
    T = sic.unique_index.shape[1]
    Y = np.zeros((T, W.shape[1]), dtype=np.int64)
    partials = []
    for c in range(cfg.chunks):
        P = wrap(sic.representatives[c] @ W[c * V:(c + 1) * V], cfg.acc_width)
        partials.append(P)
        ui = sic.unique_index[c]
        rows = ui >= 0
        Y[rows] += P[ui[rows]]
        Y = wrap(Y, cfg.acc_width)
    return Y, partials


def gemm_counters(cfg: FocusConfig, sic: SicResult, n_out: int) -> dict:
    """MACs dense vs concentrated, and scatter operations (one N-wide row add per non-zero vector)."""
    tokens = sic.unique_index.shape[1]
    unique = int(sum(len(g) for g in sic.group_size))
    dense_macs = tokens * cfg.hidden * n_out
    conc_macs = unique * cfg.vector_size * n_out
    return {
        "dense_macs": dense_macs,
        "concentrated_macs": conc_macs,
        "compression": dense_macs / conc_macs if conc_macs else float("inf"),
        "scatter_rows": int((sic.unique_index >= 0).sum()),
        "scatter_adds": int((sic.unique_index >= 0).sum()) * n_out,
    }
