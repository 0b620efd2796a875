"""The vectorised integer contract (focus.sim) against a plain loop reading of docs/semantics.md."""

from fractions import Fraction

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import sec
from focus.sim.gemm import concentrated, dense
from focus.sim.sic import concentrate, mean_shift, rounded_mean, rounded_mean_by_reciprocal
from focus.sim.synthetic import planted_tokens


def loop_reference(cfg, tokens):
    """docs/semantics.md, one vector at a time, Python integers only."""
    F, H, W, V = cfg.frames, cfg.height, cfg.width, cfg.vector_size
    T, C = cfg.tokens, cfg.chunks
    vec = lambda t, c: [int(x) for x in tokens[t][c * V:(c + 1) * V]]
    tq, qq = cfg.threshold.numerator ** 2, cfg.threshold.denominator ** 2
    best = [[0] * T for _ in range(C)]
    root = [[t for t in range(T)] for _ in range(C)]
    unique = [[-1] * T for _ in range(C)]
    for c in range(C):
        count = 0
        for t in range(T):
            f, rem = divmod(t, H * W)
            h, w = divmod(rem, W)
            a = vec(t, c)
            na = sum(x * x for x in a)
            chosen = None
            for index, df, dh, dw in cfg.candidates:
                if h < dh or w < dw or f % cfg.tile_frames < df:
                    continue
                s = ((f - df) * H + h - dh) * W + w - dw
                b = vec(s, c)
                dot, nb = sum(x * y for x, y in zip(a, b)), sum(y * y for y in b)
                if dot > 0 and dot * dot * qq > tq * na * nb:
                    if chosen is None or dot * dot * chosen[2] > chosen[1] ** 2 * nb:
                        chosen = (s, dot, nb, index)
            if chosen is not None:
                best[c][t] = chosen[3]
                root[c][t] = root[c][chosen[0]]
                unique[c][t] = unique[c][chosen[0]]
            elif na:
                unique[c][t] = count
                count += 1
    return np.array(best), np.array(root), np.array(unique)


CASES = [
    FocusConfig(frames=4, height=5, width=6, hidden=16, vector_size=4, rows=4, tile_frames=2),
    FocusConfig(frames=3, height=4, width=4, hidden=24, vector_size=8, tile_frames=1, threshold="1/2"),
    FocusConfig(frames=2, height=6, width=3, hidden=8, vector_size=2, rows=2, threshold="99/100",
                representative="root", window=(1, 2, 2), tile_frames=2),
    FocusConfig(frames=4, height=3, width=3, hidden=12, vector_size=3, rows=3, data_width=4, acc_width=16,
                window=(2, 1, 1), tile_frames=4, threshold="3/4"),
    FocusConfig(frames=2, height=3, width=4, hidden=32, vector_size=16, rows=16, data_width=16,
                acc_width=40, threshold="65000/65536", tile_frames=2),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.frames}x{c.height}x{c.width}-v{c.vector_size}-d{c.data_width}")
@pytest.mark.parametrize("seed", range(3))
def test_vectorised_sic_equals_loop_reading_of_the_contract(cfg, seed):
    X = planted_tokens(cfg, seed)
    got = concentrate(cfg, X)
    best, root, unique = loop_reference(cfg, X)
    assert np.array_equal(got.best, best)
    assert np.array_equal(got.root, root)
    assert np.array_equal(got.unique_index, unique)
    assert got.counters["similar"] == int((best > 0).sum())
    assert got.counters["unique"] + got.counters["similar"] + got.counters["zero"] == cfg.tokens * cfg.chunks
    # representatives, from the groups the loop found
    V = cfg.vector_size
    for c in range(cfg.chunks):
        for u, rep in enumerate(got.representatives[c]):
            members = np.nonzero(unique[c] == u)[0]
            vecs = X[members, c * V:(c + 1) * V].astype(np.int64)
            if cfg.representative == "root":
                assert np.array_equal(rep, vecs[0])
            else:
                n = len(members)
                want = [(2 * int(s) + n) // (2 * n) for s in vecs.sum(axis=0)]
                assert rep.tolist() == want


@pytest.mark.parametrize("cfg", [CASES[0], CASES[1], CASES[3]], ids=["v4", "v8", "d4"])
def test_concentrated_gemm_equals_dense_when_nothing_merges(cfg):
    rng = np.random.default_rng(1)
    cfg = cfg.replace(threshold="65535/65536")
    X = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.tokens, cfg.hidden))
    W = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, 5))
    result = concentrate(cfg, X)
    assert result.counters["similar"] == 0
    Y, _ = concentrated(cfg, result, W)
    assert np.array_equal(Y, X @ W) and np.array_equal(dense(cfg, X, W), X @ W)


def test_identical_tokens_collapse_to_one_group_per_tile_and_chunk():
    cfg = FocusConfig(frames=4, height=3, width=3, hidden=16, vector_size=8, tile_frames=2)
    X = np.tile(np.arange(-8, 8), (cfg.tokens, 1))
    result = concentrate(cfg, X)
    assert result.unique_per_chunk.tolist() == [cfg.tiles] * cfg.chunks
    W = np.random.default_rng(0).integers(-128, 128, (cfg.hidden, 4))
    Y, _ = concentrated(cfg, result, W)
    assert np.array_equal(Y, X @ W)           # the mean of identical vectors is the vector


@pytest.mark.parametrize("data_width,tile_tokens", [(2, 9), (4, 16), (5, 12), (8, 8)])
def test_reciprocal_mean_equals_rounded_division_exhaustively(data_width, tile_tokens):
    cfg = FocusConfig(frames=1, height=1, width=tile_tokens, tile_frames=1, data_width=data_width,
                      acc_width=32, hidden=8, vector_size=8)
    lo, hi = cfg.data_min, cfg.data_max
    for n in range(1, tile_tokens + 1):
        s = np.arange(n * lo, n * hi + 1)
        counts = np.full_like(s, n)
        assert np.array_equal(rounded_mean_by_reciprocal(cfg, s, counts), rounded_mean(s, counts))
    assert mean_shift(cfg) > 0


def test_reciprocal_mean_equals_division_at_default_size_extremes():
    cfg = FocusConfig()
    n = np.arange(1, cfg.tile_tokens + 1)
    for s in (n * cfg.data_min, n * cfg.data_max, n * cfg.data_min + 1, n * cfg.data_max - 1, n // 2, -(n // 2)):
        assert np.array_equal(rounded_mean_by_reciprocal(cfg, s, n), rounded_mean(s, n))


def test_rounded_mean_rounds_half_up_and_stays_in_range():
    assert rounded_mean([-1, 1, -3, 3, 5], [2, 2, 2, 2, 2]).tolist() == [0, 1, -1, 2, 3]
    assert rounded_mean([-128 * 7], [7]).tolist() == [-128] and rounded_mean([127 * 5], [5]).tolist() == [127]


def test_top_k_keeps_exactly_k_with_ties_to_lower_index():
    imp = np.array([5, 7, 7, 1, 7, 5, 0])
    assert sec.top_k(imp, 1).tolist() == [1]
    assert sec.top_k(imp, 3).tolist() == [1, 2, 4]
    assert sec.top_k(imp, 4).tolist() == [0, 1, 2, 4]
    assert sec.top_k(imp, 7).tolist() == list(range(7))
    assert sec.top_k(np.zeros(5, int), 2).tolist() == [0, 1]
    for k in (0, 8, -1, 2.0):
        with pytest.raises(ValueError, match="is not allowed: an integer from 1 to the token count 7"):
            sec.top_k(imp, k)


def test_top_k_matches_brute_force_on_random_heavy_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        imp = rng.integers(0, 4, n)
        k = int(rng.integers(1, n + 1))
        brute = sorted(sorted(range(n), key=lambda j: (-imp[j], j))[:k])
        assert sec.top_k(imp, k).tolist() == brute


def test_importance_is_max_over_heads_and_text():
    cfg = FocusConfig(score_width=8)
    scores = np.zeros((2, 3, 4), dtype=np.int64)
    scores[1, 2, 0] = 9
    scores[0, 0, 3] = 255
    assert sec.importance(cfg, scores).tolist() == [9, 0, 0, 255]
    with pytest.raises(ValueError, match="outside the unsigned 8-bit range"):
        sec.importance(cfg, scores + 1)


def test_keep_count_is_exact_for_rationals():
    assert sec.keep_count(10, Fraction(3, 10)) == 3 and sec.keep_count(10, 0.3) == 3
    assert sec.keep_count(3, Fraction(1, 10)) == 1 and sec.keep_count(196, Fraction(3, 20)) == 29


@pytest.mark.parametrize("bad,match", [
    (lambda cfg: np.zeros((cfg.tokens, cfg.hidden), float), "must be an integer array"),
    (lambda cfg: np.zeros((cfg.tokens + 1, cfg.hidden), int), "expected 32x16"),
    (lambda cfg: np.full((cfg.tokens, cfg.hidden), 128), "outside the signed 8-bit range"),
])
def test_bad_tokens_are_rejected_clearly(bad, match):
    cfg = FocusConfig(frames=2, height=4, width=4, hidden=16, vector_size=4, rows=4)
    with pytest.raises(ValueError, match=match):
        concentrate(cfg, bad(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["bikes", "carphone_distorted", "bigbuckbunny", "carphone_pristine"])
@pytest.mark.parametrize("threshold", ["9/10", "3/4", "99/100"])
def test_vectorised_sic_equals_loop_reading_on_real_clips(clip, threshold):
    from focus.sim.video import clip_tokens
    cfg = FocusConfig(frames=4, height=5, width=6, hidden=32, vector_size=8, tile_frames=2, threshold=threshold)
    X = clip_tokens(cfg, clip, stride=3).tokens
    got = concentrate(cfg, X)
    best, root, unique = loop_reference(cfg, X)
    assert got.counters["similar"] > 0
    assert np.array_equal(got.best, best) and np.array_equal(got.root, root)
    assert np.array_equal(got.unique_index, unique)
