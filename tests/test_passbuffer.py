"""PassBuffer in Amaranth's simulator: with both banks holding tiles the readers have not replayed,
neither writer (counters and representatives; map) takes a beat of a third tile, not even in the
cycle after the bank switch; once the readers run, every tile's passes (activations and members)
come out whole and in order."""

import random
from functools import partial

from focus import FocusConfig
from focus.hdl.passbuffer import PassBuffer
from focus.plans import PASS_QUEUE_DEPTH, interleaved_n_tiles, tile_passes
from focus.sim.scatter import framing, member_beats
from focus.tb.amaranth_sim import get, put, simulate

CHUNKS, N_TILES, TILES = 2, 2, 3


def config():
    return FocusConfig(rows=2, vector_size=2, hidden=CHUNKS * 2, cols=2, out_features=N_TILES * 2, frames=2,
                       tile_frames=1, height=2, width=3, data_width=8, acc_width=32, scatter_lanes=2)


def tiles_of(cfg):
    """Per tile, per chunk: its representatives (distinct values); an empty chunk and a full one."""
    tiles, value = [], 1
    for uniques in ([0, cfg.tile_tokens], [cfg.tile_tokens, 1], [2, cfg.tile_tokens - 1]):
        chunks = []
        for unique in uniques:
            reps = []
            for _ in range(unique):
                reps.append([(value + i) % 100 for i in range(cfg.vector_size)])
                value += 1
            chunks.append(reps)
        tiles.append(chunks)
    return tiles


def beats_of(cfg, tiles):
    counters, reps, maps = [], [], []
    bases = [0] * CHUNKS                    # roots are numbered per chunk over the job, as SIC numbers them
    for t, chunks in enumerate(tiles):
        for c, chunk_reps in enumerate(chunks):
            end = framing(chunk=True, tile=c == CHUNKS - 1, job=c == CHUNKS - 1 and t == TILES - 1)
            unique, base = len(chunk_reps), bases[c]
            counters.append({"unique": unique, "similar": 0, "zero": cfg.tile_tokens - unique, "base": base,
                             "end": end})
            reps.append([{"data": r, "end": end} for r in chunk_reps])
            for token in range(cfg.tile_tokens):
                last = token == cfg.tile_tokens - 1
                maps.append({"index": base + token if token < unique else -1,
                             "end": end if last else framing()})
            bases[c] += unique
    return counters, reps, maps


def expected_members(cfg, tiles):
    """The members beats, lane-split as the golden model splits them, passes in tile_passes order
    (the job's first tile interleaves its two N-tiles: ``swap`` on those passes); only valid slots
    compared."""
    out = []
    for t, chunks in enumerate(tiles):
        for nt, c in tile_passes(N_TILES, CHUNKS, job_first=t == 0):
            chunk_reps = chunks[c]
            last = c == CHUNKS - 1
            end = framing(chunk=True, tile=last, job=last and nt == N_TILES - 1 and t == TILES - 1)
            local = [token if token < len(chunk_reps) else -1 for token in range(cfg.tile_tokens)]
            swap = int(nt < interleaved_n_tiles(N_TILES, job_first=t == 0))
            out += [normal({**b, "swap": swap}) for b in member_beats(local, cfg.scatter_lane_count, end)]
    return out


def normal(beat):
    """A members beat (dict or simulator view) as its end flags, swap and valid slots' (lane, row,
    group)."""
    if isinstance(beat, dict):
        end, slots = beat["end"], beat["slots"]
        return ((end["chunk"], end["tile"], end["job"]), beat["swap"],
                [(l, s["row"], s["group"]) for l, s in enumerate(slots) if s["valid"]])
    return ((int(beat.end.chunk), int(beat.end.tile), int(beat.end.job)), int(beat.swap),
            [(l, int(s.row), int(s.group)) for l, s in enumerate(beat.slots) if s.valid])


def expected_activations(cfg, tiles):
    out = []
    for t, chunks in enumerate(tiles):
        for _, c in tile_passes(N_TILES, CHUNKS, job_first=t == 0):
            out += chunks[c] or [[0] * cfg.vector_size]
    return out


def test_full_banks_take_no_beat_of_a_third_tile_and_every_pass_is_replayed_in_order():
    cfg = config()
    dut = PassBuffer(cfg)
    rng = random.Random(7)
    tiles = tiles_of(cfg)
    # every tile needs more beats than the readers' queues hold, so two tiles fill both banks
    assert all(sum(max(len(r), 1) for r in chunks) * N_TILES > PASS_QUEUE_DEPTH for chunks in tiles)
    counters, reps, maps = beats_of(cfg, tiles)
    first_two_counters = 2 * CHUNKS
    first_two_reps = sum(len(r) for chunks in tiles[:2] for r in chunks)
    taken = {"counters": 0, "representatives": 0, "map": 0}
    replay = {"open": False}
    received, members = [], []

    async def monitor(ctx):
        ports = {"counters": dut.counters, "representatives": dut.representatives, "map": dut.map}
        async for _, _, *sampled in ctx.tick().sample(*(s for p in ports.values() for s in (p.valid, p.ready))):
            for i, name in enumerate(ports):
                taken[name] += sampled[2 * i] & sampled[2 * i + 1]

    async def send_concentrated(ctx):
        """As SIC sends them: a tile-chunk's counters beat, then its representatives."""
        for beat, chunk_reps in zip(counters, reps):
            await put(ctx, dut.counters, [beat], rng, idle=0.0)
            await put(ctx, dut.representatives, chunk_reps, rng, idle=0.0)

    async def drive(ctx):
        ctx.set(dut.n_tiles, N_TILES)
        await ctx.tick()

    async def hold_then_replay(ctx):
        await ctx.tick().repeat(300)
        # the writers offer the third tile all along; the banks are full
        assert taken["counters"] == first_two_counters
        assert taken["representatives"] == first_two_reps
        assert taken["map"] == 2 * CHUNKS * cfg.tile_tokens
        replay["open"] = True
        received.extend(await get(ctx, dut.activations, len(expected_activations(cfg, tiles)), rng, stall=0.3))

    async def collect_members(ctx):
        while not replay["open"]:
            await ctx.tick()
        members.extend(await get(ctx, dut.members, len(expected_members(cfg, tiles)), rng, stall=0.3))

    simulate(dut, [drive, hold_then_replay, collect_members,
                   send_concentrated,
                   partial(put, port=dut.map, beats=maps, rng=rng, idle=0.0)],
             background=[monitor], name="passbuffer_full_banks", timeout_cycles=20_000)
    assert [list(b.data) for b in received] == expected_activations(cfg, tiles)
    assert [normal(b) for b in members] == expected_members(cfg, tiles)
