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
from .checks import InputError, check_int_array
from .sic import SicResult

__all__ = ["dense", "concentrated", "wrap", "gemm_counters", "int_matmul"]

# float64 holds every integer below 2**53 exactly.
_FLOAT_EXACT = 1 << 53


def int_matmul(a, b) -> np.ndarray:
    """Exact ``a @ b`` of integer arrays as int64.

    When ``max|a| * max|b| * K`` (K the inner size) is below 2**53, every product and every partial
    sum is an integer float64 represents exactly, in any summation order (fused multiply-add
    included), so the product runs on float64 BLAS, 10-50x faster than NumPy's integer loop, with
    the same result. Otherwise it falls back to the int64 product.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    k = a.shape[-1]
    if a.size and b.size:
        bound = int(np.abs(a).max()) * int(np.abs(b).max()) * k
        if bound < _FLOAT_EXACT:
            return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a @ b


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
    return wrap(int_matmul(X, _weights(cfg, weights)), cfg.acc_width)


def concentrated(cfg: FocusConfig, sic: SicResult, weights, chunks: range | None = None, *,
                 partials: bool = True) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Output rows (tokens, N) and the per-chunk partial products ``P_c`` (unique, N).

    ``Y[t] = sum_c P_c[unique_index[c, t]]`` (docs/semantics.md). Computed as one product
    ``Xc @ W`` where row ``t`` of ``Xc`` holds, chunk by chunk, the representative of token ``t``'s
    group (zeros for a zero vector): in exact integer arithmetic the sums are the same, so the
    result is bit-identical, and two's-complement wrapping commutes with addition, so wrapping
    the total equals wrapping every partial sum. ``partials=False`` skips the per-chunk products
    (returns ``None`` for them).

    ``chunks`` restricts the product to a run of K-chunks (for example one attention head's
    slice of the query); ``weights`` then has ``len(chunks) * vector_size`` rows, row ``i`` meeting
    element ``chunks[0] * vector_size + i`` of each token.
    """
    V = cfg.vector_size
    if chunks is None:
        chunks = range(cfg.chunks)
        W = _weights(cfg, weights)
    else:
        if not isinstance(chunks, range) or chunks.step != 1 or not 0 <= chunks.start < chunks.stop <= cfg.chunks:
            raise InputError(f"chunks={chunks!r} is not allowed: a range(lo, hi) with 0 <= lo < hi <= {cfg.chunks}")
        W = check_int_array("weights", weights, (len(chunks) * V, None), cfg.data_width,
                            shape_doc=f"{len(chunks)} chunks of {V} rows by N output columns")
    T = sic.unique_index.shape[1]
    Xc = np.zeros((T, len(chunks) * V), dtype=np.int64)
    for i, c in enumerate(chunks):
        ui = sic.unique_index[c]
        rows = ui >= 0
        Xc[rows, i * V:(i + 1) * V] = sic.representatives[c][ui[rows]]
    Y = wrap(int_matmul(Xc, W), cfg.acc_width)
    if not partials:
        return Y, None
    return Y, [wrap(int_matmul(sic.representatives[c], W[i * V:(i + 1) * V]), cfg.acc_width)
               for i, c in enumerate(chunks)]


def gemm_counters(cfg: FocusConfig, sic: SicResult, n_out: int) -> dict:
    """MACs dense vs concentrated, and scatter operations (one N-wide row add per non-zero vector).
    ``compression`` is dense / concentrated MACs, None when nothing is left to compute (no unique
    vector: every vector is zero)."""
    tokens = sic.unique_index.shape[1]
    unique = int(sum(len(g) for g in sic.group_size))
    dense_macs = tokens * cfg.hidden * n_out
    conc_macs = unique * cfg.vector_size * n_out
    return {
        "dense_macs": dense_macs,
        "concentrated_macs": conc_macs,
        "compression": dense_macs / conc_macs if conc_macs else None,     # None: no unique vector (U = 0)
        "scatter_rows": int((sic.unique_index >= 0).sum()),
        "scatter_adds": int((sic.unique_index >= 0).sum()) * n_out,
    }
