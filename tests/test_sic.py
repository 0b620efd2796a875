"""SIC in Amaranth's simulator: the comparator on hand-made corner cases, the window history, the
group table on back-to-back updates of one group, and the whole concentrator on small
configurations (every window shape, narrow and wide data, one-token tiles) against the golden
model, under backpressure, across a reset, and cycle-exact against the cycle model."""

import random
import re
from functools import partial

import numpy as np
import pytest

from amaranth.back import rtlil

from focus import FocusConfig
from focus.framing import end_codes, end_fields
from focus.hdl.dsp import Target
from focus.hdl.sic import GroupTable, SimilarityConcentrator
from focus.hdl.util import poisoned_collisions
from focus.hdl.similarity import SimilarityComparator
from focus.hdl.window import DelayLine, WindowHistory
from focus.plans import comparator_plan, emit_steps
from focus.sim.sic import concentrate, rounded_mean
from focus.sim.sic_cycles import sic_cycles
from focus.sim.synthetic import planted_tokens
from focus.tb.amaranth_sim import HandshakeEdges, WithReset, check_stream_rules, get, put, simulate
from focus.tb.sic_jobs import sic_beats, stream_vectors

# ------------------------------------------------------------------------------------------ helpers

# Throughput settings (sic_multipliers as a function of the configuration), S = K + 1 slots, V elements
SETTINGS = {"full": lambda cfg: cfg.sic_slots * cfg.vector_size,             # S engines: one vector per cycle
            "half": lambda cfg: cfg.sic_slots // 2 * cfg.vector_size,        # S/2 engines: 2 cycles per vector
            "engines-2": lambda cfg: 2 * cfg.vector_size,                    # 2 engines: S/2 cycles per vector
            "shared": lambda cfg: cfg.vector_size,                           # 1 engine of V: S cycles per vector
            "serial": lambda cfg: 1}                                         # one multiplier: S * V cycles


def with_setting(cfg, setting):
    return cfg.replace(sic_multipliers=SETTINGS[setting](cfg))


def distinct_settings(cfg, names=tuple(SETTINGS)):
    """The settings of ``names`` that differ on ``cfg`` (fewer slots make some coincide), in order."""
    seen, out = set(), []
    for name in names:
        lanes = SETTINGS[name](cfg)
        if lanes not in seen:
            seen.add(lanes)
            out.append(name)
    return out


def setting_cases(configs, names=tuple(SETTINGS)):
    """(config name, setting) pairs: every distinct setting of each configuration."""
    return [(name, setting) for name, cfg in configs.items() for setting in distinct_settings(cfg, names)]


OUTPUTS = ("map", "counters", "representatives")


def expected_outputs(cfg, X):
    """The beats of one job, from the golden model (focus.tb.sic_jobs, shared with the cocotb bench)."""
    return sic_beats(cfg, X, concentrate(cfg, X))


def decode(port, beat, cfg):
    if port == "map":
        return (int(beat.index), beat.end.as_bits())
    if port == "counters":
        return (int(beat.unique), int(beat.similar), int(beat.zero), int(beat.base), beat.end.as_bits())
    return ([int(beat.data[i]) for i in range(cfg.vector_size)], beat.end.as_bits())


def run_concentrator(cfg, jobs, *, seed=0, idle=0.3, stall=0.3, name="sic"):
    """Send ``jobs`` (token grids) back to back; return the decoded output beats per port."""
    dut = SimilarityConcentrator(cfg)
    rng = random.Random(seed)
    want = [expected_outputs(cfg, X) for X in jobs]
    counts = {port: sum(len(getattr(w, port)) for w in want) for port in OUTPUTS}
    got = {}

    async def producer(ctx):
        for w in want:
            await put(ctx, dut.vectors, w.vectors, rng, idle)

    def consumer(port):
        async def bench(ctx):
            beats = await get(ctx, getattr(dut, port), counts[port], rng, stall)
            got[port] = [decode(port, b, cfg) for b in beats]
            for _ in range(30):
                await ctx.tick()
                assert not ctx.get(getattr(dut, port).valid), f"{port}: a beat nobody asked for"
        return bench

    simulate(dut, [producer, *(consumer(p) for p in counts)],
             [partial(check_stream_rules, port=getattr(dut, p)) for p in counts], name=name, timeout_cycles=300_000)
    return got, {port: [e for w in want for e in getattr(w, port)] for port in OUTPUTS}


# ------------------------------------------------------------------------------------------ comparator

def run_comparator(cfg, vectors, *, seed=0, idle=0.3, stall=0.3):
    """Best candidate and zero flag of each vector (a whole number of tile-chunks, one chunk)."""
    dut = SimilarityComparator(cfg)
    rng = random.Random(seed)
    got = []
    ends = end_codes([cfg.tile_tokens] * (len(vectors) // cfg.tile_tokens), 1)

    async def producer(ctx):
        await put(ctx, dut.vectors, [{"data": v, "end": end_fields(e)} for v, e in zip(vectors, ends)], rng, idle)

    async def consumer(ctx):
        beats = await get(ctx, dut.results, len(vectors), rng, stall)
        got.extend((int(b.best), int(b.zero), [int(b.vector[i]) for i in range(cfg.vector_size)]) for b in beats)

    simulate(dut, [producer, consumer], [partial(check_stream_rules, port=dut.results)], name="comparator")
    assert [v for *_, v in got] == vectors
    return [(best, zero) for best, zero, _ in got]


# A 2x2x2 tile: the eighth vector, at (1, 1, 1), has all seven candidates, in stream order
# (1, 1, 1) - (df, dh, dw) = position 7 - (4*df + 2*dh + dw), i.e. candidate j is vector 7 - j.
CUBE = dict(frames=2, height=2, width=2, tile_frames=2, window=(2, 2, 2))


def cube(cfg, last, candidates):
    """Eight vectors: candidate j (1..7) of the last one is ``candidates[j]`` (default: a vector
    orthogonal to everything else in play, so it matches nothing)."""
    V = cfg.vector_size
    filler = [0] * V
    vectors = [list(candidates.get(7 - p, filler)) for p in range(7)] + [list(last)]
    return vectors


def golden_best(cfg, vectors):
    X = np.array(vectors, dtype=np.int64)
    return concentrate(cfg, X).best[0].tolist()


CORNER_CFG = FocusConfig(**CUBE, hidden=4, vector_size=4, rows=4, threshold="3/5")
E = [1, 0, 0, 0]
CORNERS = {
    # name: (last vector, {candidate: vector}, expected best of the last vector)
    "zero vector never matches": ([0, 0, 0, 0], {1: [0, 0, 0, 0], 2: [0, 0, 0, 0]}, 0),
    "zero candidate is never matched": ([3, 0, 0, 0], {1: [0, 0, 0, 0]}, 0),
    "negative dot product never matches": ([3, 1, 0, 0], {1: [-3, -1, 0, 0], 2: [-6, -2, 0, 0]}, 0),
    "equal cosines keep the lower index": ([2, 2, 0, 0], {3: [5, 5, 0, 0], 5: [1, 1, 0, 0], 6: [2, 2, 0, 0]}, 3),
    "larger cosine wins over a lower index": ([4, 1, 0, 0], {2: [4, 2, 0, 0], 7: [8, 2, 0, 0]}, 7),
    # with 2 engines candidates (2, 3), (4, 5), (6, 7) share a cycle, with 4 engines (1, 2, 3), (4..7)
    "equal cosines in one cycle keep the lower index": ([2, 2, 0, 0], {4: [5, 5, 0, 0], 5: [1, 1, 0, 0]}, 4),
    "equal cosines across cycles keep the earlier": ([2, 1, 0, 0], {1: [4, 2, 0, 0], 2: [2, 1, 0, 0],
                                                                    3: [6, 3, 0, 0], 4: [8, 4, 0, 0]}, 1),
    "equal cosines at the end of one cycle and the start of the next": ([1, 3, 0, 0], {3: [2, 6, 0, 0],
                                                                                      4: [1, 3, 0, 0]}, 3),
    "a tie within a cycle, then a larger cosine in the same cycle": ([3, 1, 0, 0], {1: [3, 1, 0, 1], 2: [6, 2, 0, 2],
                                                                                    3: [3, 1, 0, 0]}, 3),
    "a tie across cycles, then a larger cosine later": ([1, 2, 0, 0], {3: [1, 2, 1, 0], 6: [2, 4, 2, 0],
                                                                       7: [3, 6, 0, 0]}, 7),
    # cos(a, b) = 3/5 exactly with a = (1, 0, 0, 0), b = (3, 4, 0, 0): on the threshold, not above it
    "similarity exactly on the threshold fails": (E, {1: [3, 4, 0, 0]}, 0),
    "similarity just above the threshold passes": (E, {1: [3, 4, 0, 0], 4: [4, 5, 0, 0]}, 4),
    "only present candidates count": (E, {}, 0),
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("case", CORNERS)
def test_comparator_corner_cases_match_contract(case, setting):
    last, candidates, want = CORNERS[case]
    cfg = with_setting(CORNER_CFG, setting)
    vectors = cube(cfg, last, candidates)
    got = run_comparator(cfg, vectors)
    golden = golden_best(cfg, vectors)
    assert golden[-1] == want                      # the hand-made expectation agrees with the golden model
    assert [b for b, _ in got] == golden
    assert [z for _, z in got] == [int(not any(v)) for v in vectors]


@pytest.mark.parametrize("setting", SETTINGS)
def test_comparator_is_exact_at_the_widest_values(setting):
    """16-bit data, 16-element vectors, a 16-bit threshold denominator: dot**2 * Q**2 needs 101
    bits. Identical extreme vectors pass 65535/65536; one step away from an extreme does too or not
    exactly as the golden model says; near-negations of the extremes never match."""
    base = FocusConfig(**CUBE, hidden=16, vector_size=16, rows=16, data_width=16, acc_width=40,
                       threshold="65535/65536")
    cfg = with_setting(base, setting)
    lo, hi = cfg.data_min, cfg.data_max
    low, high = [lo] * 16, [hi] * 16
    nudged = [lo] * 15 + [lo + 1]
    mixed = [lo, hi] * 8
    for last, candidates in [(low, {1: low, 2: nudged, 4: [hi, -hi] * 8}),
                             (nudged, {2: high, 3: low, 5: nudged}),
                             (mixed, {1: [hi, -hi] * 8, 6: mixed, 7: [hi, lo] * 8}),
                             (high, {1: [hi - 1] * 16, 3: high})]:
        vectors = cube(cfg, last, candidates)
        golden = golden_best(cfg, vectors)
        assert [b for b, _ in run_comparator(cfg, vectors)] == golden
    assert golden_best(cfg, cube(cfg, low, {1: low}))[-1] == 1


@pytest.mark.parametrize("setting", SETTINGS)
def test_comparator_best_equals_golden_on_planted_tiles(setting):
    cfg = with_setting(FocusConfig(frames=4, height=3, width=4, hidden=4, vector_size=4, rows=4, tile_frames=2), setting)
    X = planted_tokens(cfg, 3)
    vectors = [beat["data"] for beat in stream_vectors(cfg, X)]
    got = run_comparator(cfg, vectors, seed=1, idle=0.4, stall=0.5)
    res = concentrate(cfg, X)
    assert [b for b, _ in got] == res.best[0].tolist()


@pytest.mark.parametrize("window", [(2, 2, 2), (1, 2, 2), (2, 1, 2), (2, 1, 1)])
def test_element_serial_multipliers_are_registered_where_the_interval_leaves_room(window):
    """Every element-serial setting of the default window (the board presets') registers the
    selected elements, the DSP blocks' inputs and their products; a smaller window takes fewer
    stages, never so many that the norm reaches the history after its vector left the sequencer
    (the concentrator tests below run settings with 0 to 3 stages, each at that limit, against the
    golden model and the cycle model)."""
    for vector_size in (2, 4, 8, 32):
        base = FocusConfig(hidden=2 * vector_size, vector_size=vector_size, rows=vector_size, window=window)
        for multipliers in (m for m in base.sic_multiplier_settings if m <= vector_size):
            plan = comparator_plan(base.replace(sic_multipliers=multipliers))
            assert plan.by_address
            assert plan.sub_cycles + plan.mac_stages < plan.interval
            if window == (2, 2, 2):
                assert plan.mac_stages == 3


@pytest.mark.parametrize("window", [(2, 2, 2), (1, 2, 2), (2, 1, 1)])
def test_element_serial_products_are_dsp_blocks_with_their_registers_on_ecp5(window):
    """With two or three stages each of the M multipliers is a MULT18X18D holding its operand and
    product registers (focus.hdl.dsp) in the ECP5 elaboration; with fewer it is a fabric product."""
    base = FocusConfig(frames=2, height=2, width=2, hidden=8, vector_size=4, rows=4, tile_frames=2, window=window)
    for multipliers in (1, 2, 4):
        cfg = base.replace(sic_multipliers=multipliers)
        plan = comparator_plan(cfg)
        text = rtlil.convert(SimilarityComparator(cfg), platform=Target("ecp5"), emit_src=False)
        blocks = re.findall(r"cell \\MULT18X18D \\mac_product_(\d+)_dsp", text)
        assert sorted(map(int, blocks)) == (list(range(multipliers)) if plan.mac_stages >= 2 else []), \
            (window, multipliers, plan.mac_stages)


# ------------------------------------------------------------------------------------------ history

@pytest.mark.parametrize("length", [1, 2, 5])
def test_delay_line_output_is_the_input_length_steps_ago(length):
    dut = DelayLine(12, length)
    rng = random.Random(length)
    records = [rng.randrange(1 << 12) for _ in range(40)]

    async def bench(ctx):
        for step, record in enumerate(records):
            while rng.random() < 0.4:                 # idle cycles: the output holds
                held = ctx.get(dut.output)
                await ctx.tick()
                assert ctx.get(dut.output) == held
            if step >= length:
                assert ctx.get(dut.output) == records[step - length]
            ctx.set(dut.input, record)
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)

    simulate(dut, [bench], name=f"delay_line_{length}")


@pytest.mark.parametrize("window,height,width", [((2, 2, 2), 3, 4), ((1, 2, 2), 2, 5), ((2, 1, 1), 1, 1),
                                                  ((2, 2, 1), 1, 3)])
def test_window_history_taps_are_the_candidates_records(window, height, width):
    cfg = FocusConfig(frames=2, height=height, width=width, tile_frames=2, window=window)
    dut = WindowHistory(cfg, 10)
    offsets = cfg.candidate_offsets
    records = list(range(1, 3 * cfg.frame_tokens + 8))

    async def bench(ctx):
        for step, record in enumerate(records):
            for i, off in enumerate(offsets):
                if step >= off:
                    assert ctx.get(dut.taps[i]) == records[step - off], (step, i)
            ctx.set(dut.record, record)
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            await ctx.tick()

    simulate(dut, [bench], name="window_history")


# ------------------------------------------------------------------------------------------ concentrator

SMALL = {
    "2x2x2-v4": FocusConfig(frames=4, height=3, width=4, hidden=8, vector_size=4, rows=4, tile_frames=2),
    "1x2x2-v2-root": FocusConfig(frames=2, height=4, width=3, hidden=4, vector_size=2, rows=2, window=(1, 2, 2),
                                 tile_frames=1, threshold="99/100", representative="root"),
    "2x1x1-v3-d4": FocusConfig(frames=4, height=2, width=3, hidden=6, vector_size=3, rows=3, data_width=4,
                               acc_width=16, window=(2, 1, 1), tile_frames=4, threshold="3/4"),
    "one-token-tiles": FocusConfig(frames=4, height=1, width=1, hidden=4, vector_size=2, rows=2, window=(2, 1, 1),
                                   tile_frames=2, threshold="1/2"),
    "d16-v8": FocusConfig(frames=2, height=2, width=3, hidden=16, vector_size=8, data_width=16, acc_width=40,
                          tile_frames=2, threshold="65000/65536"),
}


@pytest.mark.parametrize("name,setting", setting_cases(SMALL))
def test_concentrator_equals_golden_under_backpressure(name, setting):
    cfg = with_setting(SMALL[name], setting)
    jobs = [planted_tokens(cfg, seed) for seed in (0, 1)]          # two jobs: indices restart
    got, want = run_concentrator(cfg, jobs, seed=len(name), name=f"sic_{name}_{setting}")
    assert got == want


@pytest.mark.parametrize("representative", ["mean", "root"])
@pytest.mark.parametrize("data_width", [8, 16])
def test_identical_extreme_tokens_make_one_full_group_per_tile_chunk(representative, data_width):
    """The largest groups (a whole tile) at the most negative and most positive values: the mean
    unit's widest sums and its reciprocal table's largest entry."""
    cfg = FocusConfig(frames=2, height=3, width=4, hidden=8, vector_size=4, rows=4, tile_frames=2,
                      data_width=data_width, acc_width=40, representative=representative)
    X = np.tile([cfg.data_min, cfg.data_max, cfg.data_min, -1, cfg.data_max, 0, 1, cfg.data_min], (cfg.tokens, 1))
    got, want = run_concentrator(cfg, [X], idle=0.0, stall=0.2, name="sic_extremes")
    assert got == want
    assert [u for u, *_ in got["counters"]] == [1] * (cfg.tiles * cfg.chunks)


# Two tile-chunks of group-table updates (24 vectors each): a letter is a vector of that group (its
# first one the root, letters in order of first appearance), "." a zero vector. Runs of one group,
# two groups alternating and a group with zero vectors between its members put the same bank word's
# updates one and two steps apart.
GROUP_RUNS = ("AAAABABACC.C.CDDEDEEAB.A", "A.AABBBBABCABCABC.CCCAAA")


@pytest.mark.parametrize("setting,steps", [("full", 1), ("half", 2), ("engines-2", 4)])
def test_same_group_on_consecutive_vectors_adds_every_member(setting, steps):
    """Group-table updates back to back (update.valid always high): each step's read-modify-write
    takes the sums and count of the previous vectors of its group even when those are still in the
    pipeline, and a vector still takes ``steps`` cycles."""
    cfg = with_setting(SMALL["2x2x2-v4"], setting)
    assert emit_steps(cfg) == steps and cfg.tile_tokens == len(GROUP_RUNS[0])
    rng = np.random.default_rng(steps)
    dut = GroupTable(cfg)
    updates, want = [], []
    for bank, runs in enumerate(GROUP_RUNS):
        groups = {}
        sums = np.zeros((len(set(runs) - {"."}), cfg.vector_size), dtype=np.int64)
        counts = np.zeros(len(sums), dtype=np.int64)
        for i, letter in enumerate(runs):
            vector = rng.integers(cfg.data_min, cfg.data_max + 1, cfg.vector_size) if letter != "." else \
                np.zeros(cfg.vector_size, dtype=np.int64)
            root = letter != "." and letter not in groups
            if root:
                groups[letter] = len(groups)
            group = groups.get(letter, 0)
            if letter != ".":
                sums[group] += vector
                counts[group] += 1
            last = i == len(runs) - 1
            updates.append({"bank": bank, "first": i == 0, "root": root, "member": letter != "." and not root,
                            "group": group, "vector": vector.tolist(), "unique": len(groups),
                            "end": {"chunk": last, "tile": last, "job": last and bank == 1}})
        means = rounded_mean(sums, counts[:, None]).tolist()
        want += [(mean, (0b111 if bank else 0b011) if u == len(means) - 1 else 0) for u, mean in enumerate(means)]
    seen = HandshakeEdges(update=dut.update)
    got = []

    async def producer(ctx):
        await put(ctx, dut.update, updates, random.Random(0), idle=0.0)

    async def consumer(ctx):
        beats = await get(ctx, dut.representatives, len(want), random.Random(1), stall=0.0)
        got.extend(decode("representatives", beat, cfg) for beat in beats)

    simulate(dut, [producer, consumer], [seen.process], name=f"group_table_runs_{setting}")
    assert got == want
    assert np.diff(seen["update"]).tolist() == [steps] * (len(updates) - 1)


@pytest.mark.parametrize("setting", ["full", "half", "engines-2", "shared"])
def test_reset_mid_tile_leaves_next_job_exact(setting):
    cfg = with_setting(SMALL["2x2x2-v4"], setting)
    first, second = planted_tokens(cfg, 4), planted_tokens(cfg, 5)
    dut = SimilarityConcentrator(cfg)
    top = WithReset(dut)
    rng = random.Random(9)
    first_beats = stream_vectors(cfg, first)
    want = expected_outputs(cfg, second)
    second_beats = want.vectors
    reset_done = []
    got = {}

    async def producer(ctx):
        # a tile-chunk and a half in; map and counters drained, representatives left unread
        await put(ctx, dut.vectors, first_beats[: cfg.tile_tokens * 3 // 2], rng, 0.1)
        await ctx.tick().repeat(40)
        assert ctx.get(dut.representatives.valid)
        ctx.set(dut.vectors.payload, first_beats[cfg.tile_tokens * 3 // 2])
        ctx.set(dut.vectors.valid, 1)
        ctx.set(top.cd.rst, 1)
        await ctx.tick()
        ctx.set(top.cd.rst, 0)
        ctx.set(dut.vectors.valid, 0)
        reset_done.append(True)
        await put(ctx, dut.vectors, second_beats, rng, 0.3)

    def consumer(port, count):
        async def bench(ctx):
            ctx.set(getattr(dut, port).ready, port != "representatives")
            while not reset_done:
                await ctx.tick()
            got[port] = [decode(port, b, cfg) for b in await get(ctx, getattr(dut, port), count, rng, 0.3)]
        return bench

    simulate(top, [producer, *(consumer(p, len(getattr(want, p))) for p in OUTPUTS)], name=f"sic_reset_{setting}")
    assert (got["map"], got["counters"], got["representatives"]) == (want.map, want.counters, want.representatives)


@pytest.mark.parametrize("name,setting", setting_cases({n: SMALL[n] for n in ("2x2x2-v4", "1x2x2-v2-root",
                                                                             "one-token-tiles")}))
@pytest.mark.parametrize("tokens", ["planted", "dense"])
def test_handshake_cycles_equal_cycle_model(name, setting, tokens):
    """Input always valid, outputs always ready. "dense" tokens (nothing merges) keep the
    representatives busiest, so the ping-pong bank gate holds the resolver back."""
    cfg = with_setting(SMALL[name], setting)
    X = planted_tokens(cfg, 6) if tokens == "planted" else \
        np.random.default_rng(7).integers(cfg.data_min, cfg.data_max + 1, (cfg.tokens, cfg.hidden))
    want = expected_outputs(cfg, X)
    beats = want.vectors
    dut = SimilarityConcentrator(cfg)
    ports = {"inputs": dut.vectors, "map": dut.map, "counters": dut.counters, "representatives": dut.representatives}
    seen = HandshakeEdges(**ports)

    async def producer(ctx):
        for port in (dut.map, dut.counters, dut.representatives):
            ctx.set(port.ready, 1)
        for beat in beats:
            ctx.set(dut.vectors.payload, beat)
            ctx.set(dut.vectors.valid, 1)
            await ctx.tick().until(dut.vectors.ready)
        ctx.set(dut.vectors.valid, 0)
        while any(len(seen[port]) < len(getattr(want, port)) for port in OUTPUTS):
            await ctx.tick()

    simulate(dut, [producer], [seen.process], name=f"sic_cycles_{name}_{setting}")
    model = sic_cycles(cfg, want.unique)
    start = seen["inputs"][0]
    for name in ports:
        assert [c - start for c in seen[name]] == getattr(model, name), name


@pytest.mark.parametrize("setting,steps", [("full", 1), ("half", 2), ("engines-2", 4)])
def test_consecutive_members_of_a_group_take_forwarded_sums_not_the_colliding_read(setting, steps):
    """A group's sums are read in the cycle its previous member's are written; the ECP5 build leaves
    that read undefined (focus.hdl.util.CollisionFreeReadPort) and ``written2`` replaces it: with
    the read poisoned every member is still added."""
    with poisoned_collisions():
        test_same_group_on_consecutive_vectors_adds_every_member(setting, steps)
