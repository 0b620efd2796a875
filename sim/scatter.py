"""Golden model of the scatter accumulator (:class:`focus.hdl.scatter.ScatterAccumulator`).

The accelerator top runs, per tile, per N-tile ``nt`` (``cfg.array_passes`` of them), per K-chunk
``c``: one array pass over tile-chunk ``(tile, c)``'s ``U_c`` unique vectors with weight tile
``(c, nt)``, giving the pass's **partial rows** ``P[tile][nt][c]`` (``max(U_c, 1)`` rows of
``cfg.cols`` values; a pass with no unique vector sends one dummy row). The scatter adds partial
row ``u`` into the output row of every token of group ``u``, over all chunks of the tile:

``Y[tile][nt][t] = sum over c with g = group[tile][c][t] >= 0 of P[tile][nt][c][g]``

(signed, wrapped to ``cfg.acc_width`` bits; zero for a token that is a zero vector in every chunk).
This is docs/semantics.md's concentrated GEMM cut into tiles and N-tiles.

:func:`member_beats` is the lane split of one tile-chunk's map, the stream the top's map buffer
must produce; :func:`scatter_job` builds every stream of a job and the results the block must
deliver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import FocusConfig
from ..plans import interleaved_n_tiles, lane_rows, tile_passes
from .gemm import wrap

__all__ = ["member_beats", "scatter_block", "ScatterJob", "scatter_job", "framing", "MAP_KINDS",
           "random_groups", "random_partials", "random_job"]


def framing(chunk: bool = False, tile: bool = False, job: bool = False) -> dict:
    """The ``end`` flags of a beat (:data:`focus.hdl.streams.Framing`) as a dict of ints."""
    return {"chunk": int(chunk), "tile": int(tile), "job": int(job)}


def member_beats(local_index, lanes: int, end: dict | None = None) -> list[dict]:
    """The members beats of one tile-chunk: its map split over ``lanes`` lanes.

    ``local_index`` holds, for every token of the tile in raster order, its group (the tile-chunk
    local unique index, 0 .. U-1) or a negative value for a zero vector. Lane ``l`` owns the tokens
    ``t`` with ``t mod lanes == l``; beat ``j`` carries in slot ``l`` lane ``l``'s ``j``-th non-zero
    token (raster order) as ``{"valid": 1, "row": t // lanes, "group": g}``; slots past a lane's
    list are ``{"valid": 0, "row": 0, "group": 0}``. There are ``max(1, max_l Z_l)`` beats (``Z_l``
    non-zero tokens of lane ``l``): one all-invalid beat when the tile-chunk has no non-zero token.
    The last beat carries ``end`` (default: ``end.chunk`` only), the others no flag.
    """
    index = np.asarray(local_index).reshape(-1)
    if lanes < 1:
        raise ValueError(f"lanes={lanes} is not allowed: at least 1")
    per_lane = [[(t // lanes, int(index[t])) for t in range(l, len(index), lanes) if index[t] >= 0]
                for l in range(lanes)]
    count = max(1, max(len(tokens) for tokens in per_lane))
    idle = {"valid": 0, "row": 0, "group": 0}
    beats = []
    for j in range(count):
        slots = [{"valid": 1, "row": tokens[j][0], "group": tokens[j][1]} if j < len(tokens) else dict(idle)
                 for tokens in per_lane]
        last = j == count - 1
        beats.append({"slots": slots, "end": dict(end or framing(chunk=True)) if last else framing()})
    return beats


def scatter_block(groups, partials, acc_width: int) -> np.ndarray:
    """One tile's N-tile block: ``groups`` (chunks x tile_tokens local indices, negative = zero
    vector) and ``partials`` (per chunk, its partial rows, ``(rows, cols)``) to the
    ``(tile_tokens, cols)`` sums, wrapped to signed ``acc_width`` bits."""
    groups = np.asarray(groups, dtype=np.int64)
    cols = np.asarray(partials[0]).shape[1]
    out = np.zeros((groups.shape[1], cols), dtype=np.int64)
    for g, p in zip(groups, partials):
        p = np.asarray(p, dtype=np.int64)
        live = g >= 0
        out[live] += p[g[live]]
    return wrap(out, acc_width)


@dataclass(frozen=True)
class ScatterJob:
    """Every stream of one job of the scatter accumulator, as the beats a testbench sends and
    expects (dicts and lists of ints), and per pass the counts the cycle model takes."""
    partials: list[dict]        # ResultBeat dicts, pass after pass
    members: list[dict]         # MemberBeat dicts, pass after pass
    results: list[dict]         # ResultBeat dicts: per tile, per N-tile, tile_tokens rows
    partial_rows: list[int]     # per pass: max(U, 1)
    member_counts: list[int]    # per pass: members beats
    row_adds: int               # valid slots over the job
    block_ends: list[bool]      # per pass: end.tile (the pass ends its N-tile block)
    swaps: list[bool]           # per pass: swap (interleaved: the next pass goes to the other set)


def scatter_job(cfg: FocusConfig, groups, partials, lanes: int | None = None, *,
                interleave_first_tile: bool = False) -> ScatterJob:
    """The streams of one job.

    ``groups``: ``(tiles, chunks, tile_tokens)`` local group indices (negative: zero vector), as
    the top derives them from SIC's map (index - base). ``partials[tile][nt][chunk]``: the pass's
    partial rows, ``(rows, cfg.cols)`` with ``rows >= 1`` and every group's row present. Passes are
    ordered tile, N-tile, chunk; with ``interleave_first_tile`` tile 0's follow
    :func:`focus.plans.tile_passes` for a job's first tile, as the accelerator top orders them
    (its first N-tiles interleaved chunk by chunk, ``swap`` on their beats). ``end.chunk`` ends
    every pass, ``end.tile`` the pass of each N-tile's last chunk, ``end.job`` the job's last pass.
    Results: per tile, per N-tile, the block.
    """
    groups = np.asarray(groups, dtype=np.int64)
    lanes = lanes or cfg.scatter_lane_count
    tiles, chunks, _ = groups.shape
    n_tiles = len(partials[0])
    p_beats, m_beats, results, rows, counts, ends, swaps = [], [], [], [], [], [], []
    for tile in range(tiles):
        first = interleave_first_tile and tile == 0
        interleaved = interleaved_n_tiles(n_tiles, first)
        for nt, c in tile_passes(n_tiles, chunks, job_first=first):
            rows_c = np.asarray(partials[tile][nt][c], dtype=np.int64)
            end = framing(True, c == chunks - 1, c == chunks - 1 and tile == tiles - 1 and nt == n_tiles - 1)
            p_beats += [{"data": row, "end": end if i == len(rows_c) - 1 else framing()}
                        for i, row in enumerate(rows_c.tolist())]
            beats = member_beats(groups[tile, c], lanes, end)
            swap = int(nt < interleaved)
            m_beats += [{**b, "swap": swap} for b in beats]
            rows.append(len(rows_c))
            counts.append(len(beats))
            ends.append(c == chunks - 1)
            swaps.append(bool(swap))
        for nt in range(n_tiles):
            block = scatter_block(groups[tile], partials[tile][nt], cfg.acc_width)
            last_block = tile == tiles - 1 and nt == n_tiles - 1
            results += [{"data": row, "end": framing(True, True, last_block) if t == len(block) - 1 else framing()}
                        for t, row in enumerate(block.tolist())]
    adds = int((groups >= 0).sum()) * n_tiles
    return ScatterJob(p_beats, m_beats, results, rows, counts, adds, ends, swaps)


#: Tile-chunk shapes :func:`random_groups` cycles through: random groups with 30% zero tokens,
#: none non-zero, one group, all distinct, 80% zero tokens.
MAP_KINDS = ("planted", "empty", "planted", "one group", "distinct", "planted", "sparse")


def random_groups(cfg: FocusConfig, nprng: np.random.Generator, tiles: int, kinds=MAP_KINDS) -> np.ndarray:
    """(tiles, chunks, tile_tokens) local group indices, -1 for zero vectors, numbered by first
    appearance as SIC numbers its roots; tile-chunk ``i`` (tile-major) has shape ``kinds[i mod
    len(kinds)]`` (see :data:`MAP_KINDS`). Tile 0 keeps token 0 non-zero in every chunk."""
    T = cfg.tile_tokens
    groups = np.full((tiles, cfg.chunks, T), -1, dtype=np.int64)
    for tile in range(tiles):
        for c in range(cfg.chunks):
            kind = kinds[(tile * cfg.chunks + c) % len(kinds)]
            if kind == "empty":
                continue
            if kind == "one group":
                raw = np.zeros(T, dtype=np.int64)
            elif kind == "distinct":
                raw = nprng.permutation(T)
            else:
                zero = nprng.random(T) < (0.8 if kind == "sparse" else 0.3)
                raw = np.where(zero, -1, nprng.integers(0, max(1, T // 3), size=T))
            if tile == 0 and raw[0] < 0:
                raw[0] = 0
            order: dict[int, int] = {}
            groups[tile, c] = [order.setdefault(int(g), len(order)) if g >= 0 else -1 for g in raw]
    return groups


def random_partials(cfg: FocusConfig, nprng: np.random.Generator, groups: np.ndarray) -> list:
    """``partials[tile][nt][c]``: ``max(U, 1)`` rows of K-chunk dot products (``vector_size`` terms
    of ``data_width`` values), a tenth of them at each extreme; in tile 0 token 0's row is the
    largest and the smallest dot product in alternate columns, so its sums reach the extremes of
    ``cfg.acc_width_needed``."""
    lo, hi = cfg.data_min, cfg.data_max
    low, high = cfg.vector_size * lo * hi, cfg.vector_size * lo * lo
    out = []
    for tile, tile_groups in enumerate(groups):
        out.append([])
        for _ in range(cfg.array_passes):
            passes = []
            for g in tile_groups:
                rows = nprng.integers(low, high + 1, size=(max(1, int(g.max()) + 1), cfg.cols))
                rows[nprng.random(rows.shape) < 0.1] = high
                rows[nprng.random(rows.shape) < 0.1] = low
                if tile == 0:
                    rows[g[0]] = [high if i % 2 == 0 else low for i in range(cfg.cols)]
                passes.append(rows)
            out[-1].append(passes)
    return out


def random_job(cfg: FocusConfig, nprng: np.random.Generator, tiles: int = 2, kinds=MAP_KINDS, *,
               interleave_first_tile: bool = False) -> ScatterJob:
    """A job of ``tiles`` tiles (any number; the block does not count them) from :func:`random_groups`
    and :func:`random_partials`, passes ordered as :func:`scatter_job` says."""
    groups = random_groups(cfg, nprng, tiles, kinds)
    return scatter_job(cfg, groups, random_partials(cfg, nprng, groups), interleave_first_tile=interleave_first_tile)
