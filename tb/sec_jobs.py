"""SEC test jobs and their expected results from the golden model (``focus.sim.sec``).

Shared by the Amaranth-simulator tests (tests/test_sec.py) and the cocotb testbench
(tb/cocotb_sec.py), so both check the same cases against the same model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from ..config import FocusConfig
from ..sim.checks import InputError
from ..sim.sec import importance, keep_mask, top_k

__all__ = ["SecCase", "expect", "random_case", "corner_cases", "mixed_cases", "score_beats", "mask_words",
           "ragged_case", "k_field_max"]

OK, BAD_K, BAD_LENGTH = 0, 1, 2      # values of focus.hdl.sec.SecStatus


def k_field_max(cfg: FocusConfig) -> int:
    """Largest k the descriptor can carry (see focus.hdl.sec.SecJob)."""
    return (1 << (cfg.tokens.bit_length() + 1)) - 1


@dataclass
class SecCase:
    """One job: ``scores`` (heads, text, image tokens) unsigned, ``k``; what the block must answer.

    ``status`` is OK, BAD_K or BAD_LENGTH; ``keep`` the expected mask (a list of 0/1 per token) when OK.
    ``pad`` is what the padding lanes of each row's last beat carry (the block must ignore it).
    ``beats`` overrides the score beats (a ragged job ends mid-row).
    """
    name: str
    scores: np.ndarray
    k: int
    status: int = OK
    keep: list[int] = field(default_factory=list)
    beats: list[tuple[list[int], int]] | None = None
    pad: int = 0

    @property
    def rows(self) -> int:
        return self.scores.shape[0] * self.scores.shape[1]


def expect(cfg: FocusConfig, name: str, scores, k: int) -> SecCase:
    """A case whose expected answer is the golden model's: top_k's InputError means BAD_K."""
    scores = np.asarray(scores, dtype=np.int64)
    imp = importance(cfg, scores)
    try:
        kept = top_k(imp, k)
    except InputError:
        return SecCase(name, scores, k, BAD_K)
    return SecCase(name, scores, k, OK, keep_mask(cfg.tokens, kept).astype(int).tolist())


def score_beats(cfg: FocusConfig, case: SecCase) -> list[tuple[list[int], int]]:
    """(lanes, last) beats in stream order: for each head, text token, the row's ``cfg.sec_words``
    words of ``cfg.sec_lanes`` scores (token ``b * sec_lanes + i`` in lane ``i`` of word ``b``; lanes
    past the token count hold ``case.pad``); ``last`` on the final beat."""
    if case.beats is not None:
        return case.beats
    L, N = cfg.sec_lanes, cfg.sec_words
    rows = case.scores.reshape(-1, cfg.tokens).tolist()
    padding = [case.pad] * (N * L - cfg.tokens)
    words = [(row + padding)[b * L:(b + 1) * L] for row in rows for b in range(N)]
    return [(lanes, int(i == len(words) - 1)) for i, lanes in enumerate(words)]


def mask_words(cfg: FocusConfig, keep: list[int]) -> list[int]:
    """The ``keep`` field of each mask beat for a per-token 0/1 ``keep`` list: bit ``i`` of word ``b``
    is token ``b * cfg.sec_lanes + i``, bits past the token count are 0."""
    L = cfg.sec_lanes
    return [sum(bit << i for i, bit in enumerate(keep[b * L:(b + 1) * L])) for b in range(cfg.sec_words)]


def _shape(rng: random.Random, max_heads: int, max_text: int) -> tuple[int, int]:
    return rng.randint(1, max_heads), rng.randint(1, max_text)


def random_case(cfg: FocusConfig, rng: random.Random, *, max_heads=2, max_text=3, name="random") -> SecCase:
    """Uniform scores over the whole width, k uniform in 1..T."""
    h, q = _shape(rng, max_heads, max_text)
    nprng = np.random.default_rng(rng.getrandbits(32))
    scores = nprng.integers(0, 1 << cfg.score_width, (h, q, cfg.tokens))
    return expect(cfg, name, scores, rng.randint(1, cfg.tokens))


def corner_cases(cfg: FocusConfig, rng: random.Random, *, max_heads=2, max_text=3) -> list[SecCase]:
    """Ties, all equal, extremes of k and of the scores, and every kind of invalid job."""
    T, top = cfg.tokens, (1 << cfg.score_width) - 1
    nprng = np.random.default_rng(rng.getrandbits(32))
    cases = []

    def add(name, scores, k):
        cases.append(expect(cfg, name, scores, k))

    h, q = _shape(rng, max_heads, max_text)
    few = nprng.choice([0, 1, top // 2, top], size=(h, q, T))               # many ties, 4 values
    for k in (1, T, rng.randint(1, T), rng.randint(1, T)):
        add(f"ties k={k}", few, k)
    h, q = _shape(rng, max_heads, max_text)
    near = nprng.integers(max(0, top - 2), top + 1, (h, q, T))              # ties near the top
    add("ties near max", near, rng.randint(1, T))
    for value, k in ((0, T), (top, 1), (rng.randint(0, top), rng.randint(1, T))):
        add(f"all equal {value} k={k}", np.full(_shape(rng, max_heads, max_text) + (T,), value), k)
    h, q = _shape(rng, max_heads, max_text)
    scores = nprng.integers(0, top + 1, (h, q, T))
    add("k=1", scores, 1)
    add("k=all", scores, T)
    # One digit differs: the k-th value is found in the last pass.
    low = nprng.integers(0, min(top, (1 << cfg.sec_digit_bits) - 1) + 1, (1, 1, T)) + (top >> cfg.sec_digit_bits << cfg.sec_digit_bits)
    add("low digit only", np.minimum(low, top), rng.randint(1, T))
    for k in (0, T + 1, k_field_max(cfg)):
        add(f"invalid k={k}", nprng.integers(0, top + 1, _shape(rng, max_heads, max_text) + (T,)), k)
    if T % cfg.sec_lanes:
        # Padding lanes at the top score: counted, they would move V and be kept.
        scores = nprng.integers(0, top + 1, _shape(rng, max_heads, max_text) + (T,))
        add("padding ignored", scores, rng.randint(1, T))
        cases[-1].pad = top
    return cases


def ragged_case(cfg: FocusConfig, rng: random.Random, k: int | None = None) -> SecCase:
    """Score beats that end before the last word of a row: BAD_LENGTH (whatever k). Needs
    ``cfg.sec_words > 1``."""
    T, N, top = cfg.tokens, cfg.sec_words, (1 << cfg.score_width) - 1
    rows = rng.randint(0, 2)
    count = rows * N + rng.randint(1, N - 1)
    beats = [([rng.randint(0, top) for _ in range(cfg.sec_lanes)], int(i == count - 1)) for i in range(count)]
    return SecCase("ragged", np.zeros((1, 1, T), dtype=np.int64), rng.randint(1, T) if k is None else k,
                   BAD_LENGTH, beats=beats)


def mixed_cases(cfg: FocusConfig, rng: random.Random, randoms: int, **shape) -> list[SecCase]:
    """Corner cases, ``randoms`` random jobs and (when a row is more than one word) a ragged job, shuffled."""
    cases = corner_cases(cfg, rng, **shape) + [random_case(cfg, rng, **shape) for _ in range(randoms)]
    if cfg.sec_words > 1:
        cases.append(ragged_case(cfg, rng))
    rng.shuffle(cases)
    return cases
