"""Similarity concentration (SIC), integer mode: the contract the RTL matches bit for bit.

docs/semantics.md states the rules; this module is their executable form. Everything is vectorised
over tokens and chunks (K-chunks of ``cfg.vector_size`` elements); comparisons that outgrow int64
are settled exactly by :func:`focus.sim.exact.products_greater`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import FocusConfig
from .checks import check_int_array
from .exact import products_greater
from .geometry import candidates

__all__ = ["SicResult", "concentrate", "representatives", "representative_error", "mean_shift", "mean_reciprocals",
           "rounded_mean", "rounded_mean_by_reciprocal"]


@dataclass
class SicResult:
    """Outcome of integer SIC on one job (all tiles, all chunks). Arrays are indexed [chunk, token].

    ``best``          candidate index (1..7) each vector matched, 0 if it matched none
    ``parent``        token whose vector it matched (itself when unmatched)
    ``root``          token holding the first member of its group (itself for a root)
    ``unique_index``  index of its group's unique vector among the chunk's unique vectors, numbered
                      in first-appearance (stream) order over the whole job; -1 for a zero vector
    ``group_size``    per chunk, (unique,) member count of each group in unique order
    ``representatives`` per chunk, (unique, vector_size) int64: what the array computes with
    """

    cfg: FocusConfig
    best: np.ndarray
    parent: np.ndarray
    root: np.ndarray
    unique_index: np.ndarray
    group_size: list[np.ndarray]
    representatives: list[np.ndarray]
    counters: dict = field(default_factory=dict)

    @property
    def unique_per_chunk(self) -> np.ndarray:
        return np.array([len(g) for g in self.group_size])

    @property
    def sparsity(self) -> float:
        """(similar + zero vectors) / all vectors: the fraction of vectors the array skips."""
        c = self.counters
        return (c["similar"] + c["zero"]) / c["vectors"]


def _vectors(cfg: FocusConfig, tokens) -> np.ndarray:
    tokens = check_int_array("tokens", tokens, (cfg.tokens, cfg.hidden), cfg.data_width,
                             shape_doc=f"frames*height*width={cfg.frames}*{cfg.height}*{cfg.width} tokens "
                                       f"of hidden={cfg.hidden}")
    return tokens.reshape(cfg.tokens, cfg.chunks, cfg.vector_size)


def concentrate(cfg: FocusConfig, tokens, neighbourhood: str = "bounded") -> SicResult:
    """Integer SIC of ``tokens`` (tokens x hidden signed ints, raster order) under ``cfg``."""
    A = _vectors(cfg, tokens)                                   # (T, C, V) int64
    T, C, _ = A.shape
    norm = np.einsum("tcv,tcv->tc", A, A)                       # (T, C)
    tq, qq = cfg.threshold.numerator ** 2, cfg.threshold.denominator ** 2

    best = np.zeros((T, C), dtype=np.int64)
    parent = np.broadcast_to(np.arange(T)[:, None], (T, C)).copy()
    best_dot = np.zeros((T, C), dtype=np.int64)
    best_norm = np.ones((T, C), dtype=np.int64)
    for cand in candidates(cfg, neighbourhood):
        B_norm = norm[cand.source]
        dot = np.einsum("tcv,tcv->tc", A, A[cand.source])
        # Passes: present, dot > 0 (so neither vector is zero), cos^2 > tau^2 exactly.
        passes = cand.present[:, None] & (dot > 0)
        passes &= products_greater([dot, dot, qq], [tq, norm, B_norm])
        # Better than the best so far: larger cos^2, i.e. dot^2 * nb_best > dot_best^2 * nb.
        # A strict comparison in index order keeps the lowest index on a tie.
        better = passes & ((best == 0) | products_greater([dot, dot, best_norm], [best_dot, best_dot, B_norm]))
        best[better] = cand.index
        parent[better] = np.broadcast_to(cand.source[:, None], (T, C))[better]
        best_dot[better] = dot[better]
        best_norm[better] = B_norm[better]

    root = parent.copy()
    while True:                                                 # pointer jumping: depth halves each pass
        jumped = np.take_along_axis(root, root, axis=0)
        if np.array_equal(jumped, root):
            break
        root = jumped

    nonzero = norm > 0
    is_root = (root == np.arange(T)[:, None]) & nonzero
    rank = np.cumsum(is_root, axis=0) - 1                       # unique index of each root, per chunk
    unique_index = np.where(nonzero, np.take_along_axis(rank, root, axis=0), -1)

    result = SicResult(cfg=cfg, best=best.T.copy(), parent=parent.T.copy(), root=root.T.copy(),
                       unique_index=unique_index.T.copy(), group_size=[], representatives=[])
    for c in range(C):
        ui = result.unique_index[c]
        members = ui >= 0
        result.group_size.append(np.bincount(ui[members], minlength=int(is_root[:, c].sum())))
    result.representatives = representatives(cfg, A, result)
    matched = best > 0
    result.counters = {
        "vectors": T * C,
        "unique": int(is_root.sum()),
        "similar": int(matched.sum()),
        "zero": int((~nonzero).sum()),
        "unique_per_chunk": is_root.sum(axis=0).tolist(),
        "similar_per_chunk": matched.sum(axis=0).tolist(),
        "zero_per_chunk": (~nonzero).sum(axis=0).tolist(),
    }
    return result


# ---------------------------------------------------------------------------- representatives

def rounded_mean(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The ``mean`` representative: the exact mean rounded half up, ``floor((2*s + n) / (2*n))``."""
    sums, counts = np.asarray(sums, dtype=np.int64), np.asarray(counts, dtype=np.int64)
    return np.floor_divide(2 * sums + counts, 2 * counts)


def mean_shift(cfg: FocusConfig) -> int:
    """Shift ``S`` of the reciprocal table that makes :func:`rounded_mean_by_reciprocal` exact.

    With ``n <= TT = cfg.tile_tokens`` members of ``data_width``-bit values, ``x = 2*u + n`` stays
    below ``TT * 2**(data_width + 1)`` (``u`` the offset-binary sum) and ``m[n] = ceil(2**S / (2n))``
    overshoots ``2**S / (2n)`` by less than 1, so ``floor(x * m[n] / 2**S) == floor(x / (2n))``
    whenever ``x * (2n - 1) < 2**S``: it suffices that ``2**S > TT * 2**(data_width + 1) * 2TT``.
    """
    n = cfg.tile_tokens
    return (n * (1 << (cfg.data_width + 1)) * 2 * n).bit_length()


def mean_reciprocals(cfg: FocusConfig) -> np.ndarray:
    """The table ``m[n] = ceil(2**S / (2n))`` for n = 1..tile_tokens (index 0 unused, 0)."""
    s = mean_shift(cfg)
    n = np.arange(cfg.tile_tokens + 1, dtype=object)
    table = np.zeros(cfg.tile_tokens + 1, dtype=object)
    table[1:] = [-(-(1 << s) // (2 * k)) for k in n[1:]]
    return table


def rounded_mean_by_reciprocal(cfg: FocusConfig, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """:func:`rounded_mean` the way the hardware computes it, without a divider.

    ``u = s + n * 2**(d-1)`` (the sum of the members in offset binary, never negative),
    ``x = 2*u + n``, ``mean = ((x * m[n]) >> S) - 2**(d-1)``.
    """
    s, table = mean_shift(cfg), mean_reciprocals(cfg)
    sums = np.asarray(sums, dtype=object)
    counts = np.asarray(counts, dtype=np.int64)
    bias = 1 << (cfg.data_width - 1)
    counts_b = np.broadcast_to(counts, sums.shape)
    x = 2 * (sums + counts_b.astype(object) * bias) + counts_b.astype(object)
    return ((x * table[counts_b]) >> s).astype(np.int64) - bias


def representatives(cfg: FocusConfig, vectors: np.ndarray, result: SicResult) -> list[np.ndarray]:
    """Per chunk, the (unique, vector_size) representatives in unique order (``cfg.representative``)."""
    out = []
    for c in range(cfg.chunks):
        ui = result.unique_index[c]
        members = np.nonzero(ui >= 0)[0]
        unique = len(result.group_size[c])
        if cfg.representative == "root":
            roots = np.zeros(unique, dtype=np.int64)
            roots[ui[members]] = result.root[c, members]
            out.append(vectors[roots, c, :].copy())
        else:
            sums = np.zeros((unique, cfg.vector_size), dtype=np.int64)
            np.add.at(sums, ui[members], vectors[members, c, :])
            out.append(rounded_mean(sums, result.group_size[c][:, None]))
    return out


def representative_error(cfg: FocusConfig, tokens, result: SicResult) -> dict:
    """Error of the representatives against the exact rational mean of each group's members.

    Over every element of every group with at least two members (a group of one is its own mean):
    ``mean_abs`` and ``max_abs`` of ``representative - s/n``, and ``rel_rms``, the RMS error over the
    RMS of the exact means. For ``mean`` the rounding bounds ``max_abs`` by 1/2.
    """
    A = _vectors(cfg, tokens)
    errs, means = [], []
    for c in range(cfg.chunks):
        ui = result.unique_index[c]
        members = np.nonzero(ui >= 0)[0]
        sizes = result.group_size[c]
        sums = np.zeros((len(sizes), cfg.vector_size), dtype=np.int64)
        np.add.at(sums, ui[members], A[members, c, :])
        big = sizes >= 2
        exact = sums[big] / sizes[big][:, None]
        errs.append((result.representatives[c][big] - exact).ravel())
        means.append(exact.ravel())
    err, mean = np.concatenate(errs), np.concatenate(means)
    if not err.size:
        return {"elements": 0, "mean_abs": 0.0, "max_abs": 0.0, "rel_rms": 0.0}
    rms = float(np.sqrt((mean ** 2).mean()))
    return {"elements": int(err.size), "mean_abs": float(np.abs(err).mean()), "max_abs": float(np.abs(err).max()),
            "rel_rms": float(np.sqrt((err ** 2).mean()) / rms) if rms else 0.0}
