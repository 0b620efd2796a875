"""Concentrated GEMM, integer mode: the array computes unique vectors, the scatter adds them back.

``Y = X @ W`` with X the (tokens, hidden) tokens and W the (hidden, N) weights. For each K-chunk c
(rows ``c*V .. c*V+V-1`` of W), the array computes ``P_c = R_c @ W_c`` on the chunk's unique
representatives ``R_c`` only; then each token's output row adds ``P_c[unique_index[c, t]]``
(nothing for a zero vector). All arithmetic is exact integer; results are kept as signed
``cfg.acc_width``-bit values (two's-complement wrap, which the configuration's accumulator check
rules out for in-range data). With no merges and ``representative`` either mode, Y equals
``X @ W`` exactly; :func:`dense` is that reference.

GEMM golden model and stream order of :class:`focus.hdl.gemm.GemmSequencer`.

:func:`gemm_reference` is the contract: NumPy integer matmul, wrapped to the accumulator width
(the configuration makes wrapping impossible for K <= hidden, so in practice it is plain
``A @ W``). :func:`gemm_streams` cuts ``A`` and ``W`` into the beats the sequencer takes, in the
order its docstring defines, and the result beats it must deliver.

(Merged module: the concentrated-GEMM contract of the golden model above, then the
plain GEMM reference and stream order of the systolic-array branch.)
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ..config import FocusConfig
from .checks import InputError, check_int_array
from .sic import SicResult

__all__ = ["dense", "concentrated", "wrap", "gemm_counters", "int_matmul", "GemmStreams", "gemm_reference", "gemm_streams", "random_operands"]

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



def gemm_reference(A: np.ndarray, W: np.ndarray, acc_width: int) -> np.ndarray:
    """``A @ W`` in exact integers (int64; Python ints if that could overflow), wrapped to signed
    ``acc_width`` bits."""
    A, W = np.asarray(A), np.asarray(W)
    bound = int(np.abs(A).max(initial=0)) * int(np.abs(W).max(initial=0)) * A.shape[1]
    dtype = np.int64 if bound < 2**62 else object
    Y = A.astype(dtype) @ W.astype(dtype)
    modulus = 1 << acc_width
    return ((Y + (modulus >> 1)) % modulus) - (modulus >> 1)


@dataclass(frozen=True)
class GemmStreams:
    """One job for the GEMM sequencer: its command and the beats of each stream, as int64 arrays
    (one row per beat, lane 0 first)."""
    command: dict
    weights: np.ndarray        # (NT * KC * rows, cols)
    activations: np.ndarray    # (NT * KC * M, rows)
    results: np.ndarray        # (NT * M, cols)


def gemm_streams(A: np.ndarray, W: np.ndarray, rows: int, cols: int, acc_width: int,
                 pad: np.random.Generator | None = None, data_width: int = 8) -> GemmStreams:
    """Cut ``A`` (M x K) and ``W`` (K x N) into the sequencer's stream order.

    Weight rows beyond K and columns beyond N are zero. Activation lanes beyond K are zero, or,
    with ``pad`` given, random signed ``data_width`` values (the contract says they may hold
    anything).
    """
    A, W = np.asarray(A, dtype=np.int64), np.asarray(W, dtype=np.int64)
    M, K = A.shape
    K2, N = W.shape
    if K != K2:
        raise ValueError(f"A is {M}x{K} but W is {K2}x{N}")
    kc, nt = ceil(K / rows), ceil(N / cols)
    Wp = np.zeros((kc * rows, nt * cols), dtype=np.int64)
    Wp[:K, :N] = W
    Ap = np.zeros((M, kc * rows), dtype=np.int64)
    Ap[:, :K] = A
    if pad is not None and kc * rows > K:
        lo, hi = -(1 << (data_width - 1)), (1 << (data_width - 1)) - 1
        Ap[:, K:] = pad.integers(lo, hi + 1, size=(M, kc * rows - K))
    Y = np.zeros((M, nt * cols), dtype=np.int64)
    Y[:, :N] = gemm_reference(A, W, acc_width)

    weights = [Wp[k * rows:(k + 1) * rows, n * cols:(n + 1) * cols] for n in range(nt) for k in range(kc)]
    acts = [Ap[:, k * rows:(k + 1) * rows] for _ in range(nt) for k in range(kc)]
    results = [Y[:, n * cols:(n + 1) * cols] for n in range(nt)]
    return GemmStreams(
        command={"rows": M, "k_chunks": kc, "n_tiles": nt},
        weights=np.concatenate(weights),
        activations=np.concatenate(acts),
        results=np.concatenate(results),
    )


def random_operands(rng: np.random.Generator, M: int, K: int, N: int, data_width: int,
                    kind: str = "random") -> tuple[np.ndarray, np.ndarray]:
    """Signed ``data_width``-bit operands: ``random`` (uniform, extremes included), ``max`` (all
    minimum: the largest positive sums), ``min`` (A minimum, W maximum: the most negative sums)."""
    lo, hi = -(1 << (data_width - 1)), (1 << (data_width - 1)) - 1
    if kind == "random":
        A = rng.integers(lo, hi + 1, size=(M, K))
        W = rng.integers(lo, hi + 1, size=(K, N))
        # make sure the extremes occur
        A.flat[rng.integers(0, A.size)] = lo
        W.flat[rng.integers(0, W.size)] = hi
        return A, W
    if kind == "max":
        return np.full((M, K), lo), np.full((K, N), lo)
    if kind == "min":
        return np.full((M, K), lo), np.full((K, N), hi)
    raise ValueError(f"kind={kind!r}: random, max or min")
