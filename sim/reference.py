"""Float reference mode: the published Focus algorithm (github dubcyfor3/Focus, ``algorithm/focus/main.py``).

This is the algorithm as upstream runs it, in float64, for comparison with the integer contract
(:mod:`focus.sim.sic`, docs/semantics.md), which is what the hardware computes.

SIC (upstream ``Focus.focus_similarity_concentration``)
    Tokens (T, hidden) in raster order (frame, row, column) are cut into vectors of
    ``cfg.vector_size`` elements. Each vector is compared with the vector of the same index of each
    candidate in the causal window, candidate ``(df, dh, dw)`` sitting at ``(f - df, h - dh, w - dw)``
    (``neighbourhood="bounded"``) or at flat index ``t - (df*H*W + dh*W + dw)``
    (``neighbourhood="linear"``, upstream's ``_shift_seq``: near a row or frame edge it wraps to the
    end of the previous row or frame). The window extent is clamped to the grid as upstream does
    (``min(2, height)`` rows and so on). Similarity is the cosine, 0 when a norm is 0; an absent
    candidate and the vector itself (upstream's zeroed slot 0) count as similarity 0. The best
    candidate is the first maximum in candidate order ``df, dh, dw`` (``torch.max`` returns the first
    maximal index), where cosines within :data:`TIE` (1e-12) of each other count as equal: two
    cosines equal in exact arithmetic (say, two parallel candidates) round differently depending on
    the order of the float sums, and rounding noise must not pick the candidate. The vector is
    *similar* if the maximum is above ``float(cfg.threshold)``.
    Each vector points at its best candidate when similar, else at itself; pointers are chased to
    the group root (pointer jumping until nothing changes; upstream stops after ``frames`` rounds,
    which is the same whenever no chain is longer than ``2**frames`` links: pass
    ``jump_rounds=cfg.frames`` to reproduce that cap). Every vector is replaced by the plain mean of
    its group. Sparsity = (similar + zero vectors) / all vectors.
    Tiles: candidates in an earlier tile of ``cfg.tile_frames`` frames are absent (with
    ``tile_frames == frames`` there is one tile, as upstream without its ``gemm_m_size`` option).

SEC (upstream ``set_token_importance`` and ``semantic_concentration``)
    Importance of each image token = max over heads and text (query) tokens of the text-to-image
    attention; keep ``k = int(T * alpha)`` (float arithmetic, as upstream; at least 1, at most the
    tokens still alive) with the largest importance, ties to the lower index, kept indices ascending.
    Pruned tokens become zero vectors in the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FocusConfig
from .checks import InputError
from .geometry import NEIGHBOURHOODS

#: Cosines closer than this count as a tie (won by the earlier candidate).
TIE = 1e-12

__all__ = ["TIE", "FloatSicResult", "sic", "candidate_positions", "importance", "keep_count", "top_k", "prune",
           "schedule"]


@dataclass
class FloatSicResult:
    """Arrays indexed [chunk, token] like :class:`focus.sim.sic.SicResult`.

    ``similarity``  best cosine over the candidates (0 when none is positive)
    ``best``        candidate index ``df*4 + dh*2 + dw`` of the best candidate, 0 when not similar
    ``similar``     the mask ``similarity > threshold``
    ``root``        token whose vector roots the group (itself when not similar)
    ``tokens``      (T, hidden) every vector replaced by its group's mean
    """

    similarity: np.ndarray
    best: np.ndarray
    similar: np.ndarray
    zero: np.ndarray
    root: np.ndarray
    tokens: np.ndarray

    @property
    def sparsity(self) -> float:
        return float((self.similar.sum() + self.zero.sum()) / self.similar.size)


def _window(cfg: FocusConfig) -> tuple[int, int, int]:
    wf, wh, ww = cfg.window
    return min(wf, cfg.frames), min(wh, cfg.height), min(ww, cfg.width)


def candidate_positions(cfg: FocusConfig, neighbourhood: str = "linear") -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``[(index, source, present)]`` for every window slot except the vector itself, in upstream's order."""
    if neighbourhood not in NEIGHBOURHOODS:
        raise InputError(f"neighbourhood={neighbourhood!r} is not allowed: one of {', '.join(NEIGHBOURHOODS)}")
    wf, wh, ww = _window(cfg)
    t = np.arange(cfg.tokens)
    f, rem = np.divmod(t, cfg.frame_tokens)
    h, w = np.divmod(rem, cfg.width)
    tile_start = (f // cfg.tile_frames) * cfg.tile_tokens
    out = []
    for (index, df, dh, dw), offset in zip(cfg.candidates, cfg.candidate_offsets):
        if df >= wf or dh >= wh or dw >= ww:             # the window clipped to the grid
            continue
        if neighbourhood == "linear":
            source = t - offset
            present = source >= tile_start
        else:
            source = ((f - df) * cfg.height + h - dh) * cfg.width + w - dw
            present = (h >= dh) & (w >= dw) & (f % cfg.tile_frames >= df)
        out.append((index, np.where(present, source, 0), present))
    return out


def _float_tokens(cfg: FocusConfig, tokens) -> np.ndarray:
    x = np.asarray(tokens)
    if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"tokens must be a real array, got dtype {x.dtype}")
    if x.shape != (cfg.tokens, cfg.hidden):
        raise InputError(f"tokens has shape {'x'.join(map(str, x.shape))}, expected {cfg.tokens}x{cfg.hidden} "
                         f"(frames*height*width={cfg.frames}*{cfg.height}*{cfg.width} tokens of hidden={cfg.hidden})")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError("tokens hold NaN or infinite values")
    return x


def sic(cfg: FocusConfig, tokens, neighbourhood: str = "linear", *, jump_rounds: int | None = None) -> FloatSicResult:
    """Float SIC of ``tokens`` (T x hidden, raster order), upstream's algorithm (module docstring)."""
    X = _float_tokens(cfg, tokens)
    T, C, V = cfg.tokens, cfg.chunks, cfg.vector_size
    A = X.reshape(T, C, V)
    norm = np.sqrt(np.einsum("tcv,tcv->tc", A, A))
    zero = np.abs(A).sum(axis=2) == 0
    tau = float(cfg.threshold)

    # Slot 0 (the vector itself) is zeroed upstream: similarity 0, and the first maximum wins.
    best_sim = np.zeros((T, C))
    best_slot = np.zeros((T, C), dtype=np.int64)
    best_src = np.broadcast_to(np.arange(T)[:, None], (T, C)).copy()
    for index, source, present in candidate_positions(cfg, neighbourhood):
        denom = norm * norm[source]
        dot = np.einsum("tcv,tcv->tc", A, A[source])
        with np.errstate(divide="ignore", invalid="ignore"):
            sim = np.where(denom != 0, dot / np.where(denom != 0, denom, 1), 0.0)
        sim = np.where(present[:, None], sim, 0.0)
        better = sim > best_sim + TIE            # an equal (within TIE) later slot never replaces
        best_sim[better] = sim[better]
        best_slot[better] = index
        best_src[better] = np.broadcast_to(source[:, None], (T, C))[better]

    similar = best_sim > tau
    pointer = np.where(similar, best_src, np.arange(T)[:, None])
    rounds = 0
    while jump_rounds is None or rounds < jump_rounds:
        jumped = np.take_along_axis(pointer, pointer, axis=0)
        rounds += 1
        if np.array_equal(jumped, pointer):
            break
        pointer = jumped

    out = np.empty_like(A)
    for c in range(C):
        groups = pointer[:, c]
        sums = np.zeros((T, V))
        np.add.at(sums, groups, A[:, c, :])
        counts = np.bincount(groups, minlength=T).astype(np.float64)
        out[:, c, :] = sums[groups] / counts[groups][:, None]
    return FloatSicResult(similarity=best_sim.T.copy(), best=np.where(similar, best_slot, 0).T.copy(),
                          similar=similar.T.copy(), zero=zero.T.copy(), root=pointer.T.copy(),
                          tokens=out.reshape(T, cfg.hidden))


# ------------------------------------------------------------------------------------------ SEC

def importance(attention) -> np.ndarray:
    """(image tokens,) max over heads and text tokens of float attention (heads, text, image)."""
    a = np.asarray(attention, dtype=np.float64)
    if a.ndim != 3 or 0 in a.shape:
        raise InputError(f"attention has shape {a.shape}: expected heads x text tokens x image tokens, none empty")
    return a.max(axis=(0, 1))


def keep_count(image_tokens: int, alpha: float, alive: int | None = None) -> int:
    """Upstream's ``k = int(image_tokens * alpha)`` in float arithmetic, capped at ``alive``, at least 1."""
    k = int(image_tokens * float(alpha))
    if alive is not None:
        k = min(k, alive)
    return max(k, 1)


def top_k(importance_, k: int) -> np.ndarray:
    """Ascending indices of the ``k`` largest importances; ties go to the lower index."""
    imp = np.asarray(importance_, dtype=np.float64)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(imp):
        raise InputError(f"k={k!r} is not allowed: an integer from 1 to the token count {len(imp)}")
    order = np.lexsort((np.arange(len(imp)), -imp))
    return np.sort(order[:k])


def prune(tokens, kept) -> np.ndarray:
    """A copy of ``tokens`` with every row not in ``kept`` set to zero."""
    out = np.array(tokens, dtype=np.float64, copy=True)
    mask = np.zeros(len(out), dtype=bool)
    mask[np.asarray(kept, dtype=np.int64)] = True
    out[~mask] = 0
    return out


def schedule(cfg: FocusConfig, image_tokens: int | None = None) -> list[tuple[int, float, int]]:
    """The SEC schedule ``[(layer, alpha, k)]`` of ``cfg`` (the paper's: layers with alphas 0.4, 0.3,
    0.2, 0.15, 0.1), with upstream's float keep counts for ``image_tokens`` (default cfg.tokens)."""
    n = cfg.tokens if image_tokens is None else image_tokens
    return [(layer, float(alpha), keep_count(n, float(alpha))) for layer, alpha in zip(cfg.sec_layers, cfg.sec_alphas)]
