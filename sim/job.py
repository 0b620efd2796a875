"""One job of the integer contract: SEC (optional), SIC and the concentrated GEMM on one token grid.

:func:`run_job` computes everything a testbench compares against (docs/semantics.md) and returns a
:class:`Job`, the unit :mod:`focus.sim.export` writes and reads. Per-chunk ragged results (each
chunk has its own number of unique vectors) are stored concatenated in chunk order, with
``unique_offsets`` marking where each chunk starts (CSR style): chunk ``c`` owns rows
``unique_offsets[c] : unique_offsets[c + 1]`` of ``representatives``, ``unique_vectors``,
``unique_roots``, ``group_size`` and ``partials``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import FocusConfig
from . import gemm, sec
from .checks import InputError, check_int_array
from .sic import SicResult, concentrate

__all__ = ["Job", "run_job", "Progress"]

#: ``progress(stage, done, total)``: library code reports progress through this callback.
Progress = Callable[[str, int, int], None]


@dataclass
class Job:
    """Inputs and golden outputs of one job. Integer arrays are int64; shapes use T = cfg.tokens,
    C = cfg.chunks, V = cfg.vector_size, N = output columns, U = unique vectors over all chunks."""

    cfg: FocusConfig
    tokens: np.ndarray                  # (T, hidden) SIC input (after pruning when ``pruned``)
    weights: np.ndarray                 # (hidden, N)
    unique_index: np.ndarray            # (C, T) unique vector of each token per chunk, -1 = zero vector
    best: np.ndarray                    # (C, T) candidate index matched (1..7), 0 = none
    root: np.ndarray                    # (C, T) token holding the group's first member
    unique_offsets: np.ndarray          # (C + 1,)
    unique_roots: np.ndarray            # (U,) root token of each unique vector
    unique_vectors: np.ndarray          # (U, V) the roots' vectors
    group_size: np.ndarray              # (U,)
    representatives: np.ndarray         # (U, V) what the array computes with
    partials: np.ndarray                # (U, N) representatives @ weight chunk
    outputs: np.ndarray                 # (T, N) concentrated GEMM result
    outputs_dense: np.ndarray           # (T, N) tokens @ weights, no concentration
    scores: np.ndarray | None = None    # (heads, text, T) unsigned SEC scores
    importance: np.ndarray | None = None  # (T,)
    kept: np.ndarray | None = None      # (k,) ascending
    tokens_before_sec: np.ndarray | None = None  # (T, hidden) when pruned
    pruned: bool = False
    neighbourhood: str = "bounded"
    counters: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def chunk(self, name: str, c: int) -> np.ndarray:
        """Rows of the ragged array ``name`` (e.g. "representatives") that belong to chunk ``c``."""
        lo, hi = self.unique_offsets[c], self.unique_offsets[c + 1]
        return getattr(self, name)[lo:hi]


def run_job(cfg: FocusConfig, tokens, weights, *, scores=None, keep: int | None = None, prune: bool = False,
            neighbourhood: str = "bounded", meta: dict | None = None,
            progress: Progress | None = None) -> Job:
    """Run SEC (when ``scores`` are given), SIC and the concentrated GEMM on one job.

    ``keep`` is the SEC top-k (default: the first scheduled ratio, ``keep_count(T, cfg.sec_alphas[0])``);
    with ``prune`` the pruned tokens become zero vectors before SIC, otherwise SEC is computed and
    recorded but SIC sees every token.
    """
    report = progress or (lambda stage, done, total: None)
    tokens = check_int_array("tokens", tokens, (cfg.tokens, cfg.hidden), cfg.data_width,
                             shape_doc=f"frames*height*width={cfg.frames}*{cfg.height}*{cfg.width} tokens of "
                                       f"hidden={cfg.hidden}")
    weights = check_int_array("weights", weights, (cfg.hidden, None), cfg.data_width,
                              shape_doc=f"hidden={cfg.hidden} rows by N output columns")
    if weights.shape[1] == 0:
        raise InputError("weights has no output columns (N = 0)")
    importance = kept = before = None
    if scores is not None:
        report("sec", 0, 1)
        scores = check_int_array("scores", scores, (None, None, cfg.tokens), cfg.score_width, signed=False,
                                 shape_doc=f"heads x text tokens x {cfg.tokens} image tokens")
        importance = sec.importance(cfg, scores)
        k = sec.keep_count(cfg.tokens, cfg.sec_alphas[0]) if keep is None else keep
        kept = sec.top_k(importance, k)
        if prune:
            before, tokens = tokens, sec.prune(tokens, kept)
        report("sec", 1, 1)
    elif prune or keep is not None:
        raise InputError("SEC needs attention scores: keep/prune were given without scores")

    report("sic", 0, 1)
    sic = concentrate(cfg, tokens, neighbourhood)
    report("sic", 1, 1)
    report("gemm", 0, 1)
    outputs, partials = gemm.concentrated(cfg, sic, weights)
    outputs_dense = gemm.dense(cfg, tokens, weights)
    report("gemm", 1, 1)
    return _assemble(cfg, sic, tokens, weights, outputs, outputs_dense, partials, scores, importance, kept,
                     before, prune and scores is not None, neighbourhood, meta or {})


def _assemble(cfg, sic: SicResult, tokens, weights, outputs, outputs_dense, partials, scores, importance, kept,
              before, pruned, neighbourhood, meta) -> Job:
    V = cfg.vector_size
    counts = sic.unique_per_chunk
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    roots = []
    for c in range(cfg.chunks):
        ui, members = sic.unique_index[c], np.nonzero(sic.unique_index[c] >= 0)[0]
        r = np.zeros(counts[c], dtype=np.int64)
        r[ui[members]] = sic.root[c, members]
        roots.append(r)
    unique_roots = np.concatenate(roots) if roots else np.zeros(0, np.int64)
    chunk_of = np.repeat(np.arange(cfg.chunks), counts)
    vectors = tokens.reshape(cfg.tokens, cfg.chunks, V)
    unique_vectors = vectors[unique_roots, chunk_of] if len(unique_roots) else np.zeros((0, V), np.int64)
    counters = dict(sic.counters)
    counters.update(gemm.gemm_counters(cfg, sic, weights.shape[1]))
    counters["sparsity"] = sic.sparsity
    if kept is not None:
        counters["kept"] = int(len(kept))
    return Job(cfg=cfg, tokens=tokens, weights=weights, unique_index=sic.unique_index, best=sic.best,
               root=sic.root, unique_offsets=offsets, unique_roots=unique_roots,
               unique_vectors=np.asarray(unique_vectors, np.int64), group_size=np.concatenate(sic.group_size),
               representatives=np.concatenate(sic.representatives).reshape(-1, V),
               partials=np.concatenate(partials).reshape(-1, weights.shape[1]), outputs=outputs,
               outputs_dense=outputs_dense, scores=scores, importance=importance, kept=kept,
               tokens_before_sec=before, pruned=pruned, neighbourhood=neighbourhood, counters=counters, meta=meta)
