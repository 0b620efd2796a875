"""Float reference mode (focus.sim.reference): upstream's published algorithm, checked against a
plain loop implementation written here from the description (shift the flat sequence, cosine,
first maximum, threshold, chase pointers, average the groups)."""

from fractions import Fraction
from math import sqrt

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import reference, sec
from focus.sim.checks import InputError
from focus.sim.sic import concentrate
from focus.sim.synthetic import planted_tokens


def loop_sic(cfg, X, neighbourhood):
    """One vector at a time, Python floats."""
    F, H, W, V = cfg.frames, cfg.height, cfg.width, cfg.vector_size
    T, C = cfg.tokens, cfg.chunks
    wf, wh, ww = min(cfg.window[0], F), min(cfg.window[1], H), min(cfg.window[2], W)
    tau = float(cfg.threshold)
    similar = np.zeros((C, T), bool)
    best = np.zeros((C, T), int)
    root = np.zeros((C, T), int)
    out = np.zeros_like(X, dtype=float)

    def vec(t, c):
        return [float(v) for v in X[t][c * V:(c + 1) * V]]

    def cos(a, b):
        na, nb = sqrt(sum(x * x for x in a)), sqrt(sum(y * y for y in b))
        return sum(x * y for x, y in zip(a, b)) / (na * nb) if na * nb != 0 else 0.0

    for c in range(C):
        pointer = list(range(T))
        for t in range(T):
            f, h, w = t // (H * W), (t // W) % H, t % W
            sims = []                                  # slot order df, dh, dw; slot 0 is the vector itself
            for df in range(wf):
                for dh in range(wh):
                    for dw in range(ww):
                        if (df, dh, dw) == (0, 0, 0):
                            sims.append((0.0, 0, t))
                            continue
                        if neighbourhood == "linear":
                            s = t - (df * H * W + dh * W + dw)
                            ok = s >= (f // cfg.tile_frames) * cfg.tile_frames * H * W
                        else:
                            s = ((f - df) * H + h - dh) * W + w - dw
                            ok = h >= dh and w >= dw and f % cfg.tile_frames >= df
                        sims.append((cos(vec(t, c), vec(s, c)) if ok else 0.0, df * 4 + dh * 2 + dw, s))
            top = max(x[0] for x in sims)
            first = next(x for x in sims if x[0] >= top - 1e-12)      # ties (within rounding): the first
            if top > tau:
                similar[c, t], best[c, t], pointer[t] = True, first[1], first[2]
        for t in range(T):
            r = t
            while pointer[r] != r:
                r = pointer[r]
            root[c, t] = r
        for r in set(root[c]):
            members = [t for t in range(T) if root[c, t] == r]
            mean = [sum(vec(t, c)[i] for t in members) / len(members) for i in range(V)]
            for t in members:
                out[t, c * V:(c + 1) * V] = mean
    return similar, best, root, out


def planted_float(cfg, rng, exact=0.3, near=0.3, eps=0.05):
    """Random float tokens; many copy a window neighbour exactly or nearly; a few are zero."""
    X = rng.standard_normal((cfg.tokens, cfg.hidden))
    offsets = [1, cfg.width, cfg.width + 1, cfg.frame_tokens, cfg.frame_tokens + 1]
    for t in range(cfg.tokens):
        r = rng.random()
        src = t - offsets[rng.integers(len(offsets))]
        if src < 0:
            continue
        if r < exact:
            X[t] = X[src] * rng.uniform(0.5, 2)              # exact direction, other length
        elif r < exact + near:
            X[t] = X[src] + eps * rng.standard_normal(cfg.hidden)
        elif r < exact + near + 0.05:
            X[t] = 0
    X[rng.random(cfg.tokens) < 0.05, :cfg.vector_size] = 0
    return X


SHAPES = [
    FocusConfig(frames=3, height=4, width=5, hidden=16, vector_size=4, rows=4, tile_frames=3),
    FocusConfig(frames=2, height=3, width=3, hidden=24, vector_size=8, tile_frames=2, threshold="1/2"),
    FocusConfig(frames=4, height=2, width=6, hidden=12, vector_size=6, rows=6, tile_frames=2, threshold="99/100"),
    FocusConfig(frames=2, height=1, width=7, hidden=8, vector_size=2, rows=2, tile_frames=2, threshold="3/4"),
    FocusConfig(frames=1, height=5, width=4, hidden=32, vector_size=32, rows=32, tile_frames=1, threshold="19/20"),
]


@pytest.mark.parametrize("neighbourhood", ["linear", "bounded"])
@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: f"{c.frames}x{c.height}x{c.width}-v{c.vector_size}-t{c.threshold}")
def test_float_sic_equals_a_plain_loop_implementation(cfg, neighbourhood):
    X = planted_float(cfg, np.random.default_rng(cfg.tokens))
    got = reference.sic(cfg, X, neighbourhood)
    similar, best, root, out = loop_sic(cfg, X, neighbourhood)
    assert got.similar.any() and not got.similar.all()               # the planted data exercises both
    assert np.array_equal(got.similar, similar)
    assert np.array_equal(got.best, best)
    assert np.array_equal(got.root, root)
    assert np.allclose(got.tokens, out, rtol=0, atol=1e-12)
    zero = np.abs(X.reshape(cfg.tokens, cfg.chunks, cfg.vector_size)).sum(axis=2).T == 0
    assert got.sparsity == pytest.approx((similar.sum() + zero.sum()) / similar.size)


def test_linear_neighbourhood_wraps_to_the_previous_row_and_frame():
    cfg = FocusConfig(frames=2, height=2, width=3, hidden=4, vector_size=4, rows=4, tile_frames=2)
    X = np.random.default_rng(0).standard_normal((cfg.tokens, 4))
    X[3] = X[2]                          # row 1, column 0 copies row 0, column 2: linear dw=1 sees it
    X[6] = 2 * X[5]                      # frame 1, (0, 0) copies frame 0, (1, 2): linear dw=1 again
    lin, bnd = reference.sic(cfg, X, "linear"), reference.sic(cfg, X, "bounded")
    assert lin.best[0, 3] == 1 and lin.root[0, 3] == 2 and lin.best[0, 6] == 1 and lin.root[0, 6] == 5
    assert bnd.best[0, 3] == 0 and bnd.best[0, 6] == 0


def test_ties_go_to_the_first_candidate_in_upstream_order():
    cfg = FocusConfig(frames=2, height=2, width=2, hidden=4, vector_size=4, rows=4, tile_frames=2)
    X = np.tile([1.0, 2.0, -1.0, 0.5], (cfg.tokens, 1))             # every candidate identical
    r = reference.sic(cfg, X, "bounded")
    # token 7 = (1, 1, 1) sees all seven; the first is (0, 0, 1) = index 1
    assert r.best[0].tolist() == [0, 1, 2, 1, 4, 1, 2, 1]
    assert r.root[0].tolist() == [0] * 8                             # one tile of 2 frames: one group
    r1 = reference.sic(cfg.replace(tile_frames=1), X, "bounded")
    assert r1.root[0].tolist() == [0, 0, 0, 0, 4, 4, 4, 4]           # tiles of 1 frame: a group each


def test_pointer_chasing_cap_reproduces_upstreams_frame_count_rounds():
    cfg = FocusConfig(frames=1, height=1, width=8, hidden=4, vector_size=4, rows=4, tile_frames=1)
    X = np.tile([1.0, 1.0, 1.0, 1.0], (8, 1))                       # a chain 7 -> 6 -> ... -> 0
    assert reference.sic(cfg, X, "linear").root[0].tolist() == [0] * 8
    capped = reference.sic(cfg, X, "linear", jump_rounds=1)           # upstream: frames = 1 round
    assert capped.root[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5]


def test_float_and_integer_modes_agree_on_integer_tokens_away_from_the_threshold():
    cfg = FocusConfig(frames=4, height=6, width=6, hidden=32, vector_size=8, tile_frames=2, threshold="4/5")
    X = planted_tokens(cfg, 5, low=-20, high=20)                      # copies of window neighbours
    f = reference.sic(cfg, X, "bounded")
    i = concentrate(cfg, X, "bounded")
    assert f.similar.sum() > 50
    clear = np.abs(f.similarity - float(cfg.threshold)) > 1e-9
    assert np.array_equal(f.similar[clear], (i.best > 0)[clear])


def test_float_sec_is_upstreams_topk_with_float_keep_counts():
    att = np.random.default_rng(1).random((3, 4, 50))
    att[:, :, 10] = att[:, :, 11] = 2.0                               # a tie at the top
    imp = reference.importance(att)
    assert reference.top_k(imp, 1).tolist() == [10]
    assert reference.top_k(imp, 50).tolist() == list(range(50))
    assert reference.keep_count(100, 0.29) == 28                      # float: 100 * 0.29 = 28.999...
    assert sec.keep_count(100, Fraction(29, 100)) == 29               # the integer contract is exact
    assert reference.keep_count(100, 0.4, alive=30) == 30 and reference.keep_count(3, 0.1) == 1
    pruned = reference.prune(np.ones((50, 4)), reference.top_k(imp, 5))
    assert (np.abs(pruned).sum(axis=1) > 0).sum() == 5


def test_schedule_holds_the_papers_ratios():
    cfg = FocusConfig(frames=4, height=7, width=7, tile_frames=2)      # 196 tokens
    assert [(layer, float(a), k) for layer, a, k in sec.schedule(cfg)] == \
        [(1, 0.4, 78), (2, 0.3, 58), (3, 0.2, 39), (4, 0.15, 29), (5, 0.1, 19)]
    assert reference.schedule(cfg) == [(1, 0.4, 78), (2, 0.3, 58), (3, 0.2, 39), (4, 0.15, 29), (5, 0.1, 19)]


@pytest.mark.parametrize("bad,match", [
    (np.zeros((5, 16)), "tokens has shape 5x16, expected 60x16"),
    (np.full((60, 16), np.nan), "NaN or infinite"),
    (np.zeros((60, 16), dtype=bool), "must be a real array"),
])
def test_float_mode_rejects_bad_tokens(bad, match):
    with pytest.raises(InputError, match=match):
        reference.sic(SHAPES[0], bad)
    with pytest.raises(InputError, match="neighbourhood='diagonal' is not allowed"):
        reference.sic(SHAPES[0], np.zeros((60, 16)), "diagonal")
