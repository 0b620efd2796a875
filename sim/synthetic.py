"""Synthetic token grids: random integer tokens with planted copies of their window neighbours.

Uniform random tokens almost never match under the cosine threshold; tests of the integer contract
and of the SIC hardware need matches, ties and zero vectors to be common. :func:`planted_tokens`
draws uniform tokens and then replaces many of them by a copy of an earlier token one window
offset back (by default a random candidate of ``cfg.window``, counted in raster positions):

``exact``    the same token (equal cosines: ties between candidates)
``near``     the token plus a small random integer offset per element
``scaled``   half or twice the token (the same direction with another norm)
``negated``  minus the token (negative dot products never match)
``zero``     an all-zero (pruned) token
``extreme``  every element the lowest or the highest value of the data range

and, afterwards, zeroes one random vector (K-chunk) of a fraction ``holes`` of the tokens (zero
vectors inside live tokens). Plants are clipped to the signed ``cfg.data_width`` range.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..config import FocusConfig

__all__ = ["PLANTS", "planted_tokens", "window_offsets"]

#: Probability that a token is replaced by each kind of plant (the rest stay uniform random).
PLANTS = {"exact": 0.25, "near": 0.20, "scaled": 0.10, "negated": 0.05, "zero": 0.08, "extreme": 0.02}


def window_offsets(cfg: FocusConfig) -> list[int]:
    """Raster distance back to each SIC candidate of ``cfg``, in candidate order."""
    return list(cfg.candidate_offsets)


def planted_tokens(cfg: FocusConfig, rng: np.random.Generator | int = 0, *, low: int | None = None,
                   high: int | None = None, plants: Mapping[str, float] = PLANTS, rate: float | None = None,
                   near: int = 3, holes: float = 0.05, offsets: Sequence[int] | None = None) -> np.ndarray:
    """(cfg.tokens, cfg.hidden) int64 tokens in raster order with planted copies (module docstring).

    ``rng`` is a NumPy generator or a seed. Tokens are drawn uniform in ``[low, high]`` (default:
    the signed ``cfg.data_width`` range, to which every plant is clipped). ``plants`` maps each kind to
    its probability per token; ``rate`` rescales them to that total (0: no plants). ``near`` bounds
    the offset of a near copy. Each token's source is ``offsets`` (default :func:`window_offsets`)
    positions back, one picked at random; the first tokens, whose source would be before the
    grid, stay random.
    """
    unknown = set(plants) - set(PLANTS)
    if unknown:
        raise ValueError(f"plants={dict(plants)!r} is not allowed: kinds are {', '.join(PLANTS)}")
    rng = np.random.default_rng(rng)
    lo, hi = cfg.data_min, cfg.data_max
    offsets = window_offsets(cfg) if offsets is None else list(offsets)
    scale = 1.0 if rate is None else rate / max(sum(plants.values()), 1e-300)
    bounds, total = [], 0.0
    for kind, p in plants.items():
        total += p * scale
        bounds.append((total, kind))
    X = rng.integers(lo if low is None else low, (hi if high is None else high) + 1, (cfg.tokens, cfg.hidden))
    for t in range(cfg.tokens):
        src = t - offsets[rng.integers(len(offsets))]
        draw = rng.random()
        if src < 0:
            continue
        kind = next((k for bound, k in bounds if draw < bound), None)
        if kind == "exact":
            X[t] = X[src]
        elif kind == "near":
            X[t] = np.clip(X[src] + rng.integers(-near, near + 1, cfg.hidden), lo, hi)
        elif kind == "scaled":
            X[t] = X[src] // 2 if rng.random() < 0.5 else np.clip(2 * X[src], lo, hi)
        elif kind == "negated":
            X[t] = np.clip(-X[src], lo, hi)
        elif kind == "zero":
            X[t] = 0
        elif kind == "extreme":
            X[t] = lo if rng.random() < 0.5 else hi
    chunks = rng.integers(cfg.chunks, size=cfg.tokens)
    for t in np.nonzero(rng.random(cfg.tokens) < holes)[0]:
        c = chunks[t]
        X[t, c * cfg.vector_size:(c + 1) * cfg.vector_size] = 0
    return X
