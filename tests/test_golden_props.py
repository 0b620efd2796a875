"""Properties of the integer contract (docs/semantics.md), checked with hypothesis on small grids
of small integers, where duplicates, parallel vectors, zero vectors and exact ties are common."""

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from focus import FocusConfig
from focus.sim import sec
from focus.sim.gemm import concentrated, dense
from focus.sim.geometry import candidates
from focus.sim.sic import concentrate, rounded_mean
from focus.sim.synthetic import planted_tokens

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def grids(draw, low=-2, high=2, threshold=None, plant=0.4):
    """(cfg, tokens): a random small configuration and tokens drawn from [low, high] with planted
    copies (focus.sim.synthetic.planted_tokens)."""
    frames = draw(st.integers(1, 4))
    tile_frames = draw(st.sampled_from([d for d in range(1, frames + 1) if frames % d == 0]))
    V = draw(st.sampled_from([1, 2, 3, 4]))
    chunks = draw(st.integers(1, 3))
    window = draw(st.sampled_from([(2, 2, 2), (2, 2, 2), (1, 2, 2), (2, 1, 2), (2, 1, 1)]))
    if threshold is None:
        q = draw(st.integers(2, 64))
        threshold = Fraction(draw(st.integers(1, q - 1)), q)
    cfg = FocusConfig(frames=frames, height=draw(st.integers(1, 4)), width=draw(st.integers(1, 4)),
                      tile_frames=tile_frames, hidden=V * chunks, vector_size=V, rows=V, window=window,
                      threshold=threshold, representative=draw(st.sampled_from(["mean", "root"])))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    # a fraction ``plant`` of the tokens copy a window neighbour, so that matches and exact ties happen
    return cfg, planted_tokens(cfg, seed, low=low, high=high, rate=plant)


def _vec(cfg, X):
    return X.reshape(cfg.tokens, cfg.chunks, cfg.vector_size).astype(object)


def brute_best(cfg, X, neighbourhood="bounded"):
    """best[c, t] from the definition, with Python integers and Fractions: the largest cosine among
    passing candidates, ties to the lowest index."""
    A = _vec(cfg, X)
    T, C = cfg.tokens, cfg.chunks
    tau2 = cfg.threshold ** 2
    best = np.zeros((C, T), dtype=np.int64)
    for cand in candidates(cfg, neighbourhood):
        for c in range(C):
            for t in range(T):
                if not cand.present[t]:
                    continue
                a, b = A[t, c], A[cand.source[t], c]
                dot, na, nb = sum(a * b), sum(a * a), sum(b * b)
                if dot > 0 and Fraction(dot * dot, na * nb) > tau2:
                    cos2 = Fraction(dot * dot, nb)            # na is common to every candidate of t
                    if best[c, t] == 0 or cos2 > brute_best.cur[(c, t)]:
                        best[c, t], brute_best.cur[(c, t)] = cand.index, cos2
    return best


brute_best.cur = {}


@SETTINGS
@given(grids())
def test_best_candidate_is_the_largest_cosine_with_ties_to_the_lowest_index(case):
    cfg, X = case
    brute_best.cur = {}
    assert np.array_equal(concentrate(cfg, X).best, brute_best(cfg, X))


@SETTINGS
@given(grids(), st.integers(1, 63), st.integers(1, 63))
def test_raising_the_threshold_never_adds_a_match(case, a, b):
    cfg, X = case
    lo, hi = sorted((Fraction(a, 64), Fraction(b, 64)))
    m_lo = concentrate(cfg.replace(threshold=lo), X).best > 0
    m_hi = concentrate(cfg.replace(threshold=hi), X).best > 0
    assert not (m_hi & ~m_lo).any()


def _present_pairs(cfg, X):
    A = _vec(cfg, X)
    for cand in candidates(cfg):
        for c in range(cfg.chunks):
            for t in np.nonzero(cand.present)[0]:
                a, b = A[t, c], A[cand.source[t], c]
                yield c, t, sum(a * b), sum(a * a), sum(b * b)


@SETTINGS
@given(grids(threshold=Fraction(1, 65536)))
def test_threshold_near_zero_matches_every_vector_with_a_positive_dot_candidate(case):
    cfg, X = case
    want = np.zeros((cfg.chunks, cfg.tokens), bool)
    for c, t, dot, na, nb in _present_pairs(cfg, X):
        want[c, t] |= dot > 0
    assert np.array_equal(concentrate(cfg, X).best > 0, want)


@SETTINGS
@given(grids(threshold=Fraction(65535, 65536)))
def test_threshold_near_one_matches_only_parallel_vectors(case):
    """With tau = p/q near 1, a pair matches iff it is parallel, as long as na * nb <= q^2 / (q^2 - p^2)
    (32,768 here): a non-parallel integer pair has dot^2 <= na * nb - 1, which is then at most
    tau^2 * na * nb. Larger vectors can be close enough without being parallel (planted copies of
    (127, 127, 127) and (127, 126, 127) have cos^2 = 0.99998615 > tau^2 = 0.99996948), so a vector
    with such a candidate is not checked here."""
    cfg, X = case
    p, q = cfg.threshold.numerator, cfg.threshold.denominator
    want = np.zeros((cfg.chunks, cfg.tokens), bool)
    decided = np.ones((cfg.chunks, cfg.tokens), bool)
    for c, t, dot, na, nb in _present_pairs(cfg, X):
        want[c, t] |= dot > 0 and dot * dot == na * nb          # same direction exactly
        decided[c, t] &= na * nb * (q * q - p * p) <= q * q
    assert np.array_equal((concentrate(cfg, X).best > 0)[decided], want[decided])


@SETTINGS
@given(grids(low=-1, high=1))
def test_zero_vectors_never_match_and_are_never_matched(case):
    cfg, X = case
    r = concentrate(cfg, X)
    zero = ~X.reshape(cfg.tokens, cfg.chunks, cfg.vector_size).any(axis=2).T       # (C, T)
    assert (r.best[zero] == 0).all() and (r.unique_index[zero] == -1).all()
    matched = r.best > 0
    parents_zero = np.take_along_axis(zero, r.parent, axis=1)
    assert not (matched & parents_zero).any()
    assert r.counters["zero"] == int(zero.sum())


@SETTINGS
@given(grids())
def test_groups_stay_inside_their_tile_and_are_numbered_tile_by_tile(case):
    cfg, X = case
    r = concentrate(cfg, X)
    tile = np.arange(cfg.tokens) // cfg.tile_tokens
    assert (tile[r.root] == tile[None, :]).all()
    assert (r.root <= np.arange(cfg.tokens)[None, :]).all()            # the root comes first in stream order
    for c in range(cfg.chunks):
        ui = r.unique_index[c]
        for k in range(1, cfg.tiles):
            before, here = ui[(tile < k) & (ui >= 0)], ui[(tile == k) & (ui >= 0)]
            if len(before) and len(here):
                assert here.min() > before.max()


@SETTINGS
@given(grids())
def test_bounded_and_linear_differ_only_at_row_and_frame_edges(case):
    cfg, X = case
    b, l = concentrate(cfg, X, "bounded"), concentrate(cfg, X, "linear")
    t = np.arange(cfg.tokens)
    interior = ((t // cfg.width) % cfg.height >= 1) & (t % cfg.width >= 1)
    assert np.array_equal(b.best[:, interior], l.best[:, interior])
    assert np.array_equal(b.parent[:, interior], l.parent[:, interior])


def test_linear_wraps_to_the_end_of_the_previous_row_where_bounded_sees_nothing():
    cfg = FocusConfig(frames=1, height=2, width=3, tile_frames=1, hidden=2, vector_size=2, rows=2)
    X = np.array([[1, -2], [3, -1], [5, 5], [5, 5], [-2, 7], [4, 4]])
    assert concentrate(cfg, X, "linear").parent[0, 3] == 2          # (1, 0) wraps to (0, 2)
    assert concentrate(cfg, X, "bounded").best[0, 3] == 0


def _expanded(cfg, X, r):
    """Tokens with every vector replaced by its group's representative, built from the groups."""
    V, out = cfg.vector_size, np.zeros_like(X)
    for c in range(cfg.chunks):
        ui = r.unique_index[c]
        for u in range(len(r.group_size[c])):
            members = np.nonzero(ui == u)[0]
            vecs = X[members, c * V:(c + 1) * V]
            rep = vecs[0] if cfg.representative == "root" else rounded_mean(vecs.sum(axis=0), len(members))
            out[members, c * V:(c + 1) * V] = rep
    return out


@SETTINGS
@given(grids(low=-128, high=127), st.integers(1, 6))
def test_concentrated_gemm_equals_the_dense_product_of_the_represented_tokens(case, n):
    cfg, X = case
    W = np.random.default_rng(n).integers(-128, 128, (cfg.hidden, n))
    r = concentrate(cfg, X)
    Y, partials = concentrated(cfg, r, W)
    assert np.array_equal(Y, _expanded(cfg, X, r) @ W)
    assert sum(len(p) for p in partials) == r.counters["unique"]


@SETTINGS
@given(grids(low=-128, high=127, threshold=Fraction(65535, 65536), plant=0), st.integers(1, 6))
def test_concentrated_gemm_equals_numpy_when_nothing_merges(case, n):
    cfg, X = case
    r = concentrate(cfg, X)
    assume(r.counters["similar"] == 0)
    W = np.random.default_rng(n).integers(-128, 128, (cfg.hidden, n))
    Y, _ = concentrated(cfg, r, W)
    assert np.array_equal(Y, X @ W) and np.array_equal(dense(cfg, X, W), X @ W)


@SETTINGS
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40), st.data())
def test_top_k_is_exact_under_heavy_ties(imp, data):
    imp = np.array(imp)
    n = len(imp)
    for k in {1, n, data.draw(st.integers(1, n))}:
        kept = sec.top_k(imp, k)
        assert kept.tolist() == sorted(sorted(range(n), key=lambda j: (-imp[j], j))[:k])
        assert len(kept) == k and (np.diff(kept) > 0).all()
        # exactly k: nothing dropped beats anything kept
        dropped = np.setdiff1d(np.arange(n), kept)
        if len(dropped):
            assert imp[dropped].max() <= imp[kept].min()


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2 ** 40), st.integers(0, 2 ** 40), st.integers(0, 2 ** 20),
                          st.integers(0, 2 ** 20)), min_size=1, max_size=30), st.booleans())
def test_exact_product_comparison_matches_python_integers(rows, tie):
    from focus.sim.exact import products_greater
    a, b, c, d = (np.array(col, dtype=np.int64) for col in zip(*rows))
    if tie:                                    # equal products, and products one apart, both above 2**53
        c, d = a.copy(), b.copy()
        a = a + np.arange(len(a)) % 2
    got = products_greater([a, b, d], [c, d, b])
    want = [int(x) * int(y) * int(z) > int(p) * int(q) * int(r) for x, y, z, p, q, r in zip(a, b, d, c, d, b)]
    assert got.tolist() == want
