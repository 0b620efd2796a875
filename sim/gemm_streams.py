"""Stream order of :class:`focus.hdl.gemm.GemmSequencer` and its reference results.

:func:`gemm_reference` is the contract: exact integer matmul (:func:`focus.sim.gemm.int_matmul`),
wrapped to the accumulator width (the configuration makes wrapping impossible for K <= hidden, so
in practice it is plain ``A @ W``). :func:`gemm_streams` cuts ``A`` and ``W`` into the beats the
sequencer takes, in the order its docstring defines, and the result beats it must deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ..framing import end_codes
from .gemm import int_matmul, wrap

__all__ = ["GemmStreams", "gemm_reference", "gemm_streams", "random_operands"]


def gemm_reference(A: np.ndarray, W: np.ndarray, acc_width: int) -> np.ndarray:
    """``A @ W`` in exact integers, wrapped to signed ``acc_width`` bits."""
    return wrap(int_matmul(A, W), acc_width)


@dataclass(frozen=True)
class GemmStreams:
    """One job for the GEMM sequencer: its command and the beats of each stream, as int64 arrays
    (one row per beat, lane 0 first), with the framing code (:mod:`focus.framing`) of every
    activation and result beat."""
    command: dict
    weights: np.ndarray        # (NT * KC * rows, cols)
    activations: np.ndarray    # (NT * KC * M, rows)
    results: np.ndarray        # (NT * M, cols)
    activation_ends: list      # per activation beat: end.chunk every M rows, end.tile every KC passes
    result_ends: list          # per result beat: end.chunk | end.tile every M rows, end.job last


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
        command={"m": M, "k_chunks": kc, "n_tiles": nt},
        weights=np.concatenate(weights),
        activations=np.concatenate(acts),
        results=np.concatenate(results),
        activation_ends=end_codes([M] * (nt * kc), kc),
        result_ends=end_codes([M] * nt, 1),
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
