"""ScatterAccumulator in Amaranth's simulator: exact against the golden model (random maps with
planted groups, zero tokens, empty and one-group tile-chunks, partials at the dot-product
extremes) for 1, 2, 3, 4, 6, 8 and 13 lanes with tile sizes the lanes do not divide, under random idle and
backpressure on all three streams; a blocked result stream absorbed by the second accumulator set;
a reset mid-job; handshake cycles equal to the cycle model; lint-clean Verilog."""

import random
from functools import partial

import numpy as np
import pytest

from focus import FocusConfig
from focus.gen.elaborate import verilog
from focus.hdl.scatter import MemberBeat, ScatterAccumulator
from focus.hdl.util import poisoned_collisions
from focus.plans import lane_rows, tile_passes
from focus.sim.scatter import MAP_KINDS, framing, member_beats, random_job, scatter_block
from focus.sim.scatter_cycles import scatter_cycles
from focus.tb.amaranth_sim import (HandshakeEdges, WithReset, check_stream_rules, get, put, put_across_reset,
                                   simulate)
from focus.tb.toolchain import lint


def config(lanes, height, width, *, tile_frames=1, chunks=3, vector_size=2, cols=3, n_tiles=2, data_width=4,
           acc_extra=0):
    cfg = FocusConfig(rows=vector_size, vector_size=vector_size, hidden=chunks * vector_size, cols=cols,
                      out_features=n_tiles * cols, frames=2 * tile_frames, tile_frames=tile_frames,
                      height=height, width=width, data_width=data_width, acc_width=64, scatter_lanes=lanes)
    # the sums of extremes just fit, or acc_extra more bits (the results are sign-extended)
    return cfg.replace(acc_width=max(8, cfg.acc_width_needed) + acc_extra)


CONFIGS = {
    "L1-12tok": config(1, 3, 4),
    "L2-15tok": config(2, 3, 5, acc_extra=9),
    "L3-10tok": config(3, 2, 5, cols=2, n_tiles=3),
    "L8auto-20tok": config(0, 2, 5, tile_frames=2, chunks=2, vector_size=4, cols=4, data_width=8),
    "L8-6tok": config(8, 2, 3, chunks=4, cols=2),                    # more lanes than tokens: one row a lane
    "L4-1chunk": config(4, 2, 3, chunks=1, cols=2),                   # one-pass blocks: sets alternate every pass
    "L6-14tok": config(6, 2, 7, cols=3),            # emission lane groups of 4 and 2, column groups of 2 and 1
    "L13-15tok": config(13, 3, 5, cols=2),          # emission lane groups of 4, 4, 4 and 1
}


def test_configs_cover_the_lane_counts_and_uneven_tiles():
    lanes = {name: cfg.scatter_lane_count for name, cfg in CONFIGS.items()}
    assert lanes == {"L1-12tok": 1, "L2-15tok": 2, "L3-10tok": 3, "L8auto-20tok": 8, "L8-6tok": 8, "L4-1chunk": 4,
                     "L6-14tok": 6, "L13-15tok": 13}
    assert all(cfg.tile_tokens % cfg.scatter_lane_count for name, cfg in CONFIGS.items() if name != "L1-12tok")


# ---------------------------------------------------------------------------------- workloads

KINDS = MAP_KINDS


def make_job(cfg, nprng, tiles=2, kinds=KINDS, interleave=False):
    return random_job(cfg, nprng, tiles, kinds, interleave_first_tile=interleave)


def as_beats(beats):
    return [{"data": [int(x) for x in b.data],
             "end": {"chunk": int(b.end.chunk), "tile": int(b.end.tile), "job": int(b.end.job)}} for b in beats]


def checkers(dut):
    return [partial(check_stream_rules, port=port) for port in (dut.partials, dut.members, dut.results)]


# ---------------------------------------------------------------------------------- golden model

def test_member_beats_split_the_map_over_lanes_in_raster_order():
    #         t: 0  1   2  3  4   5  6
    index = [4, -1, 0, 1, 4, -1, 2]
    beats = member_beats(index, 3, framing(True, True))
    # lane 0: t=0, 3, 6 -> rows 0, 1, 2; lane 1: t=4 (t=1 is zero); lane 2: t=2 (t=5 is zero)
    assert [[(s["valid"], s["row"], s["group"]) for s in b["slots"]] for b in beats] == [
        [(1, 0, 4), (1, 1, 4), (1, 0, 0)],
        [(1, 1, 1), (0, 0, 0), (0, 0, 0)],
        [(1, 2, 2), (0, 0, 0), (0, 0, 0)],
    ]
    assert [b["end"] for b in beats] == [framing(), framing(), framing(True, True)]
    empty = member_beats([-1] * 5, 2)
    assert len(empty) == 1 and not any(s["valid"] for s in empty[0]["slots"]) and empty[0]["end"]["chunk"]
    assert len(member_beats(range(7), 8)) == 1 and len(member_beats(range(7), 1)) == 7
    assert lane_rows(7, 3) == 3 and lane_rows(6, 8) == 1


def test_member_beats_fit_the_port_layout():
    cfg = CONFIGS["L3-10tok"]
    beats = member_beats(np.arange(cfg.tile_tokens)[::-1], cfg.scatter_lane_count)
    for beat in beats:
        MemberBeat(cfg).const(beat)          # every field in range


@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 8, 13])
def test_member_beats_applied_lane_by_lane_give_the_block(lanes):
    """The lane split loses and repeats nothing: replaying the beats as the lanes do (slot l adds
    partial row group into lane l's row) gives scatter_block's result."""
    nprng = np.random.default_rng(lanes)
    for tokens in (1, 7, 12, 31):
        groups = np.where(nprng.random((3, tokens)) < 0.3, -1, nprng.integers(0, 4, size=(3, tokens)))
        partials = [nprng.integers(-1000, 1000, size=(4, 2)) for _ in range(3)]
        acc = np.zeros((lanes, lane_rows(tokens, lanes), 2), dtype=np.int64)
        for g, p in zip(groups, partials):
            beats = member_beats(g, lanes)
            assert len(beats) == max(1, max(int((g[l::lanes] >= 0).sum()) for l in range(lanes)))
            for beat in beats:
                for l, slot in enumerate(beat["slots"]):
                    if slot["valid"]:
                        acc[l, slot["row"]] += p[slot["group"]]
        replayed = [acc[t % lanes, t // lanes].tolist() for t in range(tokens)]
        assert replayed == scatter_block(groups, partials, 32).tolist()


def test_interleaved_first_tile_keeps_every_pass_and_swaps_only_between_its_first_two_blocks():
    cfg = CONFIGS["L3-10tok"]                          # 3 chunks, 3 N-tiles
    C, P = cfg.chunks, cfg.array_passes
    job = make_job(cfg, np.random.default_rng(3), tiles=2, interleave=True)
    assert tile_passes(P, C, job_first=True)[:4] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert sorted(tile_passes(P, C, job_first=True)) == sorted(tile_passes(P, C, job_first=False))
    assert tile_passes(1, C, job_first=True) == tile_passes(1, C, job_first=False)
    assert job.swaps == [True] * 2 * C + [False] * (P - 2) * C + [False] * P * C
    assert sum(job.block_ends) == 2 * P                # every block ends once, interleaved or not
    # the other job order gives the same results: interleaving moves passes, not sums
    plain = make_job(cfg, np.random.default_rng(3), tiles=2)
    assert job.results == plain.results and sorted(job.partial_rows) == sorted(plain.partial_rows)


def test_block_is_the_sum_over_chunks_of_each_tokens_group_row():
    groups = [[0, -1, 1, 0], [-1, -1, 0, 0]]
    partials = [np.array([[1, 2], [10, 20]]), np.array([[100, 200]])]
    assert scatter_block(groups, partials, 32).tolist() == [[1, 2], [0, 0], [110, 220], [101, 202]]


# ---------------------------------------------------------------------------------- exact under backpressure

@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("idle,stall", [(0.0, 0.0), (0.4, 0.6)])
def test_results_equal_numpy_under_backpressure(name, idle, stall):
    cfg = CONFIGS[name]
    rng = random.Random(f"{name}{idle}{stall}")
    nprng = np.random.default_rng(rng.getrandbits(32))
    # the second job's first tile interleaves its first two N-tiles' passes, as the top's do
    jobs = [make_job(cfg, nprng), make_job(cfg, nprng, tiles=2, kinds=KINDS[::-1], interleave=True),
            make_job(cfg, nprng, tiles=1, kinds=KINDS[::-1])]
    dut = ScatterAccumulator(cfg)
    expected = [beat for job in jobs for beat in job.results]
    got = []

    async def partials(ctx):
        await put(ctx, dut.partials, [b for job in jobs for b in job.partials], rng, idle)

    async def members(ctx):
        await put(ctx, dut.members, [b for job in jobs for b in job.members], rng, idle)

    async def results(ctx):
        got.extend(await get(ctx, dut.results, len(expected), rng, stall))
        for _ in range(30):
            await ctx.tick()
            assert not ctx.get(dut.results.valid), "a result row nobody sent partials for"
        # the counters hold the last job's totals
        assert ctx.get(dut.busy_cycles) == len(jobs[-1].members)
        assert ctx.get(dut.row_adds) == jobs[-1].row_adds

    simulate(dut, [partials, members, results], checkers(dut), name=f"scatter_{name}")
    assert as_beats(got) == expected


def test_blocked_results_fill_the_second_set_then_stall_the_lanes_and_lose_nothing():
    cfg = CONFIGS["L3-10tok"]
    rng = random.Random(5)
    job = make_job(cfg, np.random.default_rng(5), tiles=2)           # 6 blocks of 3 passes
    C = cfg.chunks
    dut = ScatterAccumulator(cfg)
    taken = {"partials": 0, "members": 0}
    got = []

    async def partials(ctx):
        await put(ctx, dut.partials, job.partials, rng, 0.2)

    async def members(ctx):
        await put(ctx, dut.members, job.members, rng, 0.2)

    async def counter(ctx):
        async for _, _, *hs in ctx.tick().sample(dut.partials.valid, dut.partials.ready,
                                                 dut.members.valid, dut.members.ready):
            taken["partials"] += hs[0] and hs[1]
            taken["members"] += hs[2] and hs[3]

    async def results(ctx):
        ctx.set(dut.results.ready, 0)
        for _ in range(600):
            await ctx.tick()
        # two blocks accumulated (one per set), then the lanes wait; the writer has filled both halves
        assert taken["members"] == sum(job.member_counts[:2 * C])
        assert taken["partials"] == sum(job.partial_rows[:2 * C + 2])
        assert not ctx.get(dut.members.ready) and not ctx.get(dut.partials.ready)
        got.extend(await get(ctx, dut.results, len(job.results), rng, 0.3))

    simulate(dut, [partials, members, results], [counter, *checkers(dut)], name="scatter_blocked")
    assert as_beats(got) == job.results


@pytest.mark.parametrize("name,taken", [("L2-15tok", 4), ("L13-15tok", 4), ("L13-15tok", -2)])
def test_reset_mid_job_leaves_next_job_exact(name, taken):
    """A reset after ``tile_tokens + taken`` results (in the second block, or about when the first
    block's last emission reads clear its touched bits) loses nothing of the next job."""
    cfg = CONFIGS[name]
    rng = random.Random(17)
    nprng = np.random.default_rng(17)
    abandoned, job = make_job(cfg, nprng), make_job(cfg, nprng)
    dut = ScatterAccumulator(cfg)
    top = WithReset(dut)
    state = {"reset": False}
    early, got = [], []

    async def driver(ctx, port, first, second):
        await put_across_reset(ctx, port, first, second, rng, lambda: state["reset"])

    async def controller(ctx):
        early.extend(await get(ctx, dut.results, cfg.tile_tokens + taken, rng, 0.5))
        await top.pulse(ctx, dut.results)
        assert ctx.get(dut.busy_cycles) == 0 and ctx.get(dut.row_adds) == 0
        state["reset"] = True
        got.extend(await get(ctx, dut.results, len(job.results), rng, 0.3))
        for _ in range(30):
            await ctx.tick()
            assert not ctx.get(dut.results.valid)
        assert ctx.get(dut.busy_cycles) == len(job.members) and ctx.get(dut.row_adds) == job.row_adds

    simulate(top, [partial(driver, port=dut.partials, first=abandoned.partials, second=job.partials),
                   partial(driver, port=dut.members, first=abandoned.members, second=job.members),
                   controller], [partial(check_stream_rules, port=dut.results)], name="scatter_reset")
    assert as_beats(early) == abandoned.results[:len(early)]
    assert as_beats(got) == job.results


# ---------------------------------------------------------------------------------- cycles

@pytest.mark.parametrize("name", CONFIGS)
def test_handshake_cycles_equal_model(name):
    cfg = CONFIGS[name]
    rng = random.Random(name)
    nprng = np.random.default_rng(7)
    # mixed maps; all distinct (long passes: the array is the bottleneck); all empty (one-beat
    # passes: the emission is)
    for kinds, interleave in ((KINDS, False), (("distinct",), False), (("empty",), False),
                              (("sparse", "one group"), False), (KINDS, True), (("empty",), True)):
        job = make_job(cfg, nprng, tiles=2, kinds=kinds, interleave=interleave)
        dut = ScatterAccumulator(cfg)
        edges = HandshakeEdges(partials=dut.partials, members=dut.members, results=dut.results)

        async def partials(ctx):
            await put(ctx, dut.partials, job.partials, rng, 0.0)

        async def members(ctx):
            await put(ctx, dut.members, job.members, rng, 0.0)

        async def results(ctx):
            ctx.set(dut.results.ready, 1)
            await get(ctx, dut.results, len(job.results), rng, 0.0)
            assert ctx.get(dut.busy_cycles) == len(job.members) and ctx.get(dut.row_adds) == job.row_adds

        simulate(dut, [partials, members, results], [edges.process], name=f"scatter_cycles_{name}")
        model = scatter_cycles(cfg, job.partial_rows, job.member_counts, job.block_ends, job.swaps)
        origin = edges["partials"][0]
        measured = {port: [e - origin for e in edges[port]] for port in ("partials", "members", "results")}
        assert measured == {"partials": model.partials, "members": model.members, "results": model.results}, \
            (kinds, interleave)


def test_cycle_model_overlaps_emission_with_the_next_block():
    cfg = CONFIGS["L3-10tok"]
    T, C = cfg.tile_tokens, cfg.chunks
    # one-row passes, one-beat passes: each block takes C cycles of lanes, the emission T each
    timing = scatter_cycles(cfg, [1] * 4 * C, [1] * 4 * C)
    assert len(timing.results) == 4 * T
    assert timing.results == sorted(timing.results)
    assert timing.results[-1] - timing.results[0] == 4 * T - 1            # back to back emission
    with pytest.raises(ValueError):
        scatter_cycles(cfg, [1] * (C + 1), [1] * (C + 1))


# ---------------------------------------------------------------------------------- Verilog

@pytest.mark.parametrize("name", ["L1-12tok", "L3-10tok", "L8-6tok"])
def test_verilog_lints_clean(name, tmp_path):
    path = tmp_path / "scatter.v"
    path.write_text(verilog(CONFIGS[name], "scatter"))
    result = lint(path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", CONFIGS)
def test_lanes_never_read_a_partial_row_as_it_is_written(name):
    """The partial banks' reads of the row written at the same edge are undefined on the ECP5
    builds (focus.hdl.util.CollisionFreeReadPort): with them poisoned the results are still exact."""
    with poisoned_collisions():
        test_results_equal_numpy_under_backpressure(name, 0.4, 0.6)
