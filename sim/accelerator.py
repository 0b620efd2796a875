"""Stream order of the accelerator top (:class:`focus.hdl.accelerator.FocusAccelerator`) for a job,
and what it must deliver.

:func:`accelerator_streams` lays a :class:`focus.sim.job.Job` (as ``focus-sim export`` writes it) out
as the beats of every input stream (command, scores, tokens, weights) and the beats the top must
send back (results in its block order, the SEC mask) in the order its docstring defines, as NumPy
arrays and framing codes (:mod:`focus.framing`); :func:`outputs_from_results` turns result beats
back into the ``T x N`` output matrix. Everything here is integer and exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

import numpy as np

from ..config import FocusConfig
from ..framing import end_codes
from ..plans import FIRST_TILE_GROUP, tile_passes
from .job import Job

__all__ = ["MODES", "AcceleratorStreams", "accelerator_streams", "outputs_from_results", "token_order",
           "score_beats", "mask_words", "tile_chunk_counts", "cycle_bound", "fill_cycles",
           "dense_ideal_cycles"]

#: Job modes, by name, as the top's ``JobMode`` encodes them.
MODES = {"focus": 0, "dense": 1}


@dataclass(frozen=True)
class AcceleratorStreams:
    """One job for the accelerator top, as beats (one row per beat, lane 0 first)."""

    command: dict              # k, n_tiles, mode (an int of MODES)
    scores: np.ndarray         # (beats, cols) SEC score words (empty when k = 0)
    score_last: list           # per score beat: 1 on the job's last
    tokens: np.ndarray         # (T * C, V) tile-major, chunk-minor, raster
    token_ends: list           # framing code per token beat
    weights: np.ndarray        # (tiles * P * C * rows, cols): R rows a pass, passes in focus.plans.tile_passes order
    results: np.ndarray        # (tiles * P * tile_tokens, cols) expected result beats
    result_ends: list          # framing code per result beat
    mask: np.ndarray           # (words, cols) expected SEC keep words (empty when k = 0)
    expected: np.ndarray       # (T, N) the outputs the job must produce
    counters: dict             # unique, similar, zero (summed over the job, as the top counts them)


def token_order(cfg: FocusConfig) -> np.ndarray:
    """``(tiles * C * tile_tokens, 2)``: (token, chunk) of each token beat in stream order."""
    TT = cfg.tile_tokens
    return np.array([(k * TT + t, c) for k in range(cfg.tiles) for c in range(cfg.chunks) for t in range(TT)],
                    dtype=np.int64).reshape(-1, 2)


def score_beats(cfg: FocusConfig, scores: np.ndarray) -> np.ndarray:
    """SEC score words: every ``(head, text)`` row of ``T`` scores cut into ``ceil(T / cols)`` beats
    of ``cols`` lanes, zero-padded."""
    L = cfg.cols
    heads, text, T = scores.shape
    words = ceil(T / L)
    padded = np.zeros((heads * text, words * L), dtype=np.int64)
    padded[:, :T] = scores.reshape(heads * text, T)
    return padded.reshape(heads * text * words, L)


def mask_words(cfg: FocusConfig, kept: np.ndarray) -> np.ndarray:
    """SEC keep words: ``ceil(T / cols)`` rows of ``cols`` bits (as 0/1), token ``w*cols + i`` in
    lane ``i``."""
    L = cfg.cols
    words = ceil(cfg.tokens / L)
    bits = np.zeros(words * L, dtype=np.int64)
    bits[np.asarray(kept, dtype=np.int64)] = 1
    return bits.reshape(words, L)


def accelerator_streams(cfg: FocusConfig, job: Job, mode: str = "focus") -> AcceleratorStreams:
    """The beats of ``job`` on the top's streams. A pruned job (``focus-sim export --prune``) runs
    SEC in the top: the tokens are the grid before SEC, ``k`` the number of kept tokens."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not allowed: one of {', '.join(MODES)}")
    if job.cfg != cfg:
        raise ValueError(f"the job was made for configuration {job.cfg.digest()}, not {cfg.digest()}")
    V, R, cols, C, TT = cfg.vector_size, cfg.rows, cfg.cols, cfg.chunks, cfg.tile_tokens
    X = job.tokens_before_sec if job.pruned else job.tokens
    W = np.asarray(job.weights, dtype=np.int64)
    N = W.shape[1]
    P = ceil(N / cols)
    k = len(job.kept) if job.pruned else 0

    order = token_order(cfg)
    tokens = np.stack([X[t, c * V:(c + 1) * V] for t, c in order]) if len(order) else np.zeros((0, V), np.int64)

    Wp = np.zeros((C * R, P * cols), dtype=np.int64)
    Wp[:cfg.hidden, :N] = W
    weights = np.concatenate([Wp[c * R:(c + 1) * R, nt * cols:(nt + 1) * cols]
                              for tile in range(cfg.tiles) for nt, c in tile_passes(P, C, job_first=tile == 0)])

    expected = np.asarray(job.outputs if mode == "focus" else job.outputs_dense, dtype=np.int64)
    Yp = np.zeros((cfg.tokens, P * cols), dtype=np.int64)
    Yp[:, :N] = expected
    results = np.concatenate([Yp[k_ * TT:(k_ + 1) * TT, nt * cols:(nt + 1) * cols]
                              for k_ in range(cfg.tiles) for nt in range(P)])

    if k:
        scores = score_beats(cfg, np.asarray(job.scores, dtype=np.int64))
        score_last = [0] * (len(scores) - 1) + [1]
        mask = mask_words(cfg, job.kept)
    else:
        scores, score_last, mask = np.zeros((0, cols), np.int64), [], np.zeros((0, cols), np.int64)

    if mode == "focus":
        counters = {key: int(job.counters[key]) for key in ("unique", "similar", "zero")}
    else:
        counters = {"unique": cfg.tokens * C, "similar": 0, "zero": 0}
    return AcceleratorStreams(
        command={"k": k, "n_tiles": P, "mode": MODES[mode]},
        scores=scores, score_last=score_last,
        tokens=tokens, token_ends=end_codes([TT] * (cfg.tiles * C), C),
        weights=weights,
        results=results, result_ends=end_codes([TT] * (cfg.tiles * P), 1),
        mask=mask, expected=expected, counters=counters)


def outputs_from_results(cfg: FocusConfig, rows: np.ndarray, n: int) -> np.ndarray:
    """The ``T x n`` outputs from the top's result beats (``tiles * P * tile_tokens`` rows)."""
    cols, TT = cfg.cols, cfg.tile_tokens
    P = ceil(n / cols)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape != (cfg.tiles * P * TT, cols):
        raise ValueError(f"expected {cfg.tiles * P * TT} result rows of {cols}, got {rows.shape}")
    blocks = rows.reshape(cfg.tiles, P, TT, cols).transpose(0, 2, 1, 3).reshape(cfg.tokens, P * cols)
    return blocks[:, :n]


def tile_chunk_counts(cfg: FocusConfig, job: Job, mode: str = "focus") -> tuple[np.ndarray, np.ndarray]:
    """``(U, Z)``: unique and non-zero vectors of every tile-chunk as the top processes them, in
    stream order (tile-major, chunk-minor). Dense mode: every vector its own group,
    ``U = Z = tile_tokens``."""
    TT, C = cfg.tile_tokens, cfg.chunks
    if mode == "dense":
        full = np.full(cfg.tiles * C, TT, dtype=np.int64)
        return full, full.copy()
    U, Z = [], []
    for k in range(cfg.tiles):
        for c in range(C):
            index = np.asarray(job.unique_index[c, k * TT:(k + 1) * TT])
            live = index[index >= 0]
            U.append(len(np.unique(live)))
            Z.append(len(live))
    return np.array(U, dtype=np.int64), np.array(Z, dtype=np.int64)


def cycle_bound(cfg: FocusConfig, job: Job, mode: str = "focus", n_out: int | None = None) -> int:
    """The throughput bound of the top on ``job`` (SEC excluded): the sum over tile-chunks of
    ``max(P * max(U, 1), ceil(P * Z / L), II * tile_tokens)``, ``P = ceil(N / cols)`` passes
    (``N = n_out``, default the job's weight columns), ``U`` unique and ``Z`` non-zero vectors,
    ``L`` scatter lanes, ``II`` SIC's cycles per vector (dense: 1, the bypass takes a vector a
    cycle). No run is faster: the array takes one vector a cycle (an empty pass still sends one),
    the scatter ``L`` rows a cycle, SIC one vector every ``II`` cycles."""
    n_out = np.asarray(job.weights).shape[1] if n_out is None else n_out
    P = ceil(n_out / cfg.cols)
    L = cfg.scatter_lane_count
    II = 1 if mode == "dense" else cfg.sic_interval
    U, Z = tile_chunk_counts(cfg, job, mode)
    return int(sum(max(P * max(int(u), 1), -(-(P * int(z)) // L), II * cfg.tile_tokens) for u, z in zip(U, Z)))


def fill_cycles(cfg: FocusConfig, job: Job, mode: str = "focus", n_out: int | None = None) -> int:
    """A model of the cycles :func:`cycle_bound` leaves out once a job, its **fill**
    (docs/accelerator.md, *The bound*): the pass buffer starts the passes of the first ``g =
    min(FIRST_TILE_GROUP, P)`` N-tiles over a tile-chunk of the job's first tile (interleaved) as
    soon as SIC has written it, but N-tiles ``g .. P-1`` need the whole tile. So the first tile
    takes about ``C x TT x II + (P - g) x U0`` cycles (``U0``: the first tile's unique vectors, at
    least one a chunk) against the bound's ``max(P x U0, C x TT x II)``: ``max(0, C x TT x II - g x
    U0)`` more when the array sets the pace. When SIC does, the cycles come at the job's end
    instead, where only N-tile 0 overlaps SIC's last tile: ``(P - 1) x U0`` (``U0`` standing for
    that tile's). Dense: ``U0 = C x TT`` and ``II = 1``, so 0. An estimate, not a cycle model
    (:mod:`focus.sim.accelerator_cycles` is exact)."""
    n_out = np.asarray(job.weights).shape[1] if n_out is None else n_out
    P = ceil(n_out / cfg.cols)
    II = 1 if mode == "dense" else cfg.sic_interval
    U, _ = tile_chunk_counts(cfg, job, mode)
    u0 = int(np.maximum(U[:cfg.chunks], 1).sum())
    sic = cfg.chunks * cfg.tile_tokens * II
    if P * u0 >= sic:
        return max(0, sic - min(FIRST_TILE_GROUP, P) * u0)
    return (P - 1) * u0


def dense_ideal_cycles(cfg: FocusConfig, job: Job) -> int:
    """``M * N * K / (rows * cols)`` with N and K padded to whole tiles: ``tokens * P * chunks``, the
    dense GEMM on a perfectly fed array."""
    P = ceil(np.asarray(job.weights).shape[1] / cfg.cols)
    return cfg.tokens * P * cfg.chunks
