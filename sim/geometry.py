"""Where each SIC candidate of each token sits: the 2x2x2 causal window, bounded or linear.

Tokens are numbered in raster order, ``t = (f * height + h) * width + w``. Candidate ``index``
(``df * 4 + dh * 2 + dw``, see :attr:`focus.FocusConfig.candidates`) of token ``t`` is:

``bounded`` (the default, what the hardware implements)
    the token at ``(f - df, h - dh, w - dw)``; absent when ``h < dh``, ``w < dw``, or frame ``f - df``
    lies in an earlier tile.
``linear`` (upstream's reference, github dubcyfor3/Focus ``_shift_seq``)
    the token ``t - (df * height * width + dh * width + dw)`` of the flat sequence, so near a row or
    frame edge it wraps to the end of the previous row or frame; absent when that index lies before
    the start of the token's tile (upstream pads the shifted sequence with zeros).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FocusConfig

__all__ = ["NEIGHBOURHOODS", "Candidate", "candidates"]

NEIGHBOURHOODS = ("bounded", "linear")


@dataclass(frozen=True)
class Candidate:
    index: int                 # df * 4 + dh * 2 + dw
    offset: tuple[int, int, int]
    source: np.ndarray         # (tokens,) token index of the candidate (clipped to 0 where absent)
    present: np.ndarray        # (tokens,) bool


def candidates(cfg: FocusConfig, neighbourhood: str = "bounded") -> list[Candidate]:
    """The window's candidates for every token of ``cfg``'s grid, in candidate-index order."""
    if neighbourhood not in NEIGHBOURHOODS:
        raise ValueError(f"neighbourhood={neighbourhood!r} is not allowed: one of {', '.join(NEIGHBOURHOODS)}")
    f, h, w = np.meshgrid(np.arange(cfg.frames), np.arange(cfg.height), np.arange(cfg.width), indexing="ij")
    f, h, w = f.ravel(), h.ravel(), w.ravel()
    t = np.arange(cfg.tokens)
    tile_start = (f // cfg.tile_frames) * cfg.tile_tokens
    out = []
    for (index, df, dh, dw), offset in zip(cfg.candidates, cfg.candidate_offsets):
        if neighbourhood == "bounded":
            source = ((f - df) * cfg.height + (h - dh)) * cfg.width + (w - dw)
            present = (h >= dh) & (w >= dw) & (f % cfg.tile_frames >= df)
        else:
            source = t - offset
            present = source >= tile_start
        out.append(Candidate(index, (df, dh, dw), np.where(present, source, 0), present))
    return out
