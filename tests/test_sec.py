"""SemanticConcentrator in Amaranth's simulator: exact top-k against the golden model, errors,
backpressure, reset in every phase, and the cycle model."""

import random
import re
from functools import partial

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib.wiring import In

from focus import FocusConfig
from focus.gen.elaborate import cached_verilog
from focus.hdl.sec import SecStatus, SemanticConcentrator
from focus.sim.sec_cycles import job_cycles, selection_cycles
from focus.tb.amaranth_sim import HandshakeEdges, WithReset, check_stream_rules, put, simulate
from focus.tb.sec_jobs import BAD_K, BAD_LENGTH, OK, expect, mask_words, mixed_cases, score_beats
from focus.tb.toolchain import lint

CONFIGS = {
    # 24 tokens in 3 words of 8 lanes (cols = 8), 6-bit scores in three 2-bit digits.
    "t24-w6-r2": FocusConfig(frames=2, height=3, width=4, tile_frames=1, score_width=6, sec_radix_bits=2),
    # 25 tokens in 4 words of 8, the last with one live lane; 7-bit scores: digits of 3, 3 and 1 bits
    # (the top digit is padded).
    "t25-w7-r3": FocusConfig(frames=1, height=5, width=5, tile_frames=1, score_width=7, sec_radix_bits=3),
    # 12 tokens, one lane (cols = 1): one score per beat; one bit per digit.
    "t12-w4-r1-l1": FocusConfig(frames=2, height=2, width=3, tile_frames=1, score_width=4, sec_radix_bits=1,
                                cols=1, scatter_lanes=1),
    # One token, one word with 7 padding lanes: every read meets the write of the previous beat
    # (transparent read port).
    "t1-w3": FocusConfig(frames=1, height=1, width=1, tile_frames=1, score_width=3),
    # 16 tokens in 6 words of 3 lanes (the last with one live lane); one-bit scores, digit wider than
    # the score (used as 1 bit).
    "t16-w1-l3": FocusConfig(frames=1, height=4, width=4, tile_frames=1, score_width=1, cols=3, scatter_lanes=1),
    # 20 tokens in 2 words of 16 lanes, the last with 4 live; 5-bit scores in 2-bit digits.
    "t20-w5-r2-l16": FocusConfig(frames=1, height=4, width=5, tile_frames=1, score_width=5, sec_radix_bits=2,
                                 cols=16),
    # 32-bit scores in four 8-bit digits, 256 histogram bins.
    "t16-w32-r8": FocusConfig(frames=1, height=4, width=4, tile_frames=1, score_width=32, sec_radix_bits=8),
}


def drive_jobs(cfg, cases, *, seed, idle=0.0, stall=0.0, name="sec", timeout_cycles=200_000):
    """Run ``cases`` back to back; return [(status, mask beats)] per job and the (descriptor, status)
    handshake cycles. Checks the handshake rules on both outputs and that nothing extra comes out."""
    dut = SemanticConcentrator(cfg)
    rng_jobs, rng_scores, rng_mask, rng_status = (random.Random(f"{seed}-{i}") for i in range(4))
    got = []            # [status, [mask beats]] per job
    masks = []          # mask beats not yet claimed by a status beat
    edges = HandshakeEdges(jobs=dut.jobs, status=dut.status)
    expected_masks = sum(cfg.sec_words for c in cases if c.status == OK)

    async def jobs(ctx):
        for case in cases:
            await put(ctx, dut.jobs, [{"k": case.k}], rng_jobs, idle)

    async def scores(ctx):
        await put(ctx, dut.scores, [{"scores": lanes, "last": last} for case in cases
                                    for lanes, last in score_beats(cfg, case)], rng_scores, idle)

    async def mask_sink(ctx):
        count = 0
        while count < expected_masks:
            ctx.set(dut.mask.ready, rng_mask.random() >= stall)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.mask.valid, dut.mask.ready, dut.mask.payload)
            if valid and ready:
                masks.append((payload.keep, payload.last))
                count += 1
        ctx.set(dut.mask.ready, 1)

    async def status_sink(ctx):
        while len(got) < len(cases):
            ctx.set(dut.status.ready, rng_status.random() >= stall)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.status.valid, dut.status.ready,
                                                                  dut.status.payload)
            if valid and ready:
                got.append((SecStatus(payload.status).value, list(masks)))   # the mask came first
                masks.clear()
        for _ in range(3 * cfg.tokens + 40):      # nothing more comes out
            await ctx.tick()
            assert not ctx.get(dut.status.valid) and not ctx.get(dut.mask.valid)
        assert not masks, "mask beats after the last status"

    simulate(dut, [jobs, scores, mask_sink, status_sink], [edges.process, partial(check_stream_rules, port=dut.mask),
             partial(check_stream_rules, port=dut.status)], name=name, timeout_cycles=timeout_cycles)
    return got, edges["jobs"], edges["status"]


def check_results(cfg, cases, got):
    assert len(got) == len(cases)
    for case, (status, beats) in zip(cases, got):
        assert status == case.status, f"{case.name}: status {status}, expected {case.status}"
        if case.status == OK:
            assert [b[1] for b in beats] == [0] * (cfg.sec_words - 1) + [1], f"{case.name}: last misplaced"
            assert [b[0] for b in beats] == mask_words(cfg, case.keep), \
                f"{case.name}: mask differs from focus.sim.sec.top_k"
        else:
            assert beats == [], f"{case.name}: an invalid job emitted mask beats"


@pytest.mark.parametrize("name", CONFIGS)
def test_masks_equal_golden_top_k_under_backpressure(name, idle=0.4, stall=0.5):
    """(Without idle or stall, test_cycles_equal_the_model_for_any_k_and_scores checks the masks.)"""
    cfg = CONFIGS[name]
    rng = random.Random(f"{name}-{idle}-{stall}")
    cases = mixed_cases(cfg, rng, randoms=2 if cfg.sec_digit_bits == 8 else 6)
    got, _, _ = drive_jobs(cfg, cases, seed=name, idle=idle, stall=stall, name=f"sec_{name}")
    check_results(cfg, cases, got)


@pytest.mark.parametrize("name", [n for n in CONFIGS if n != "t16-w32-r8"])   # 256 bins: slow, same formula
def test_cycles_equal_the_model_for_any_k_and_scores(name):
    cfg = CONFIGS[name]
    rng = random.Random(name)
    cases = mixed_cases(cfg, rng, randoms=3)
    got, job_edges, status_edges = drive_jobs(cfg, cases, seed=name, name=f"sec_cycles_{name}")
    check_results(cfg, cases, got)
    for case, start, end in zip(cases, job_edges, status_edges):
        if case.status == BAD_LENGTH:
            want = len(case.beats) + selection_cycles(cfg, valid=False)
        else:
            want = job_cycles(cfg, case.rows, valid=case.status == OK)
        assert end - start == want, f"{case.name}: {end - start} cycles, model says {want}"
    # Back to back: the next descriptor is taken one edge after a status beat.
    assert all(nxt == end + 1 for end, nxt in zip(status_edges, job_edges[1:]))


PHASES = ["accumulate", "histogram", "scan", "emit", "status"]


@pytest.mark.parametrize("phase", PHASES)
def test_reset_mid_job_leaves_next_job_exact(phase):
    """Reset while a job accumulates, counts a digit, scans bins, holds a mask beat or holds its
    status beat; the next job's mask and status are exact and nothing of the first leaks out."""
    cfg = CONFIGS["t24-w6-r2"]
    T, N, P, B = cfg.tokens, cfg.sec_words, cfg.sec_passes, 1 << cfg.sec_digit_bits
    rng = random.Random(phase)
    first = expect(cfg, "first", np.array([[[rng.randrange(64) for _ in range(T)]] * 3]), 7)
    second = expect(cfg, "second", np.array([[[rng.randrange(4) for _ in range(T)]] * 2]), 9)
    rows = first.rows
    # Edges after the descriptor at which to reset (cycle model: docs/sec.md): half-way through the
    # scores, the second digit's histogram pass, the first scan, with a mask beat held, with the
    # status beat held.
    at = {"accumulate": rows * N // 2, "histogram": rows * N + (N + 3 + B) + 1 + N // 2,
          "scan": rows * N + N + 3 + 2, "emit": rows * N + P * (N + 2 + B) + 6,
          "status": job_cycles(cfg, rows) + 3}[phase]
    dut = SemanticConcentrator(cfg)
    top = WithReset(dut)
    got = {}

    async def bench(ctx):
        ctx.set(dut.mask.ready, 0)
        ctx.set(dut.status.ready, 0)
        ctx.set(dut.jobs.payload, {"k": first.k})
        ctx.set(dut.jobs.valid, 1)
        await ctx.tick()
        ctx.set(dut.jobs.valid, 0)
        beats = score_beats(cfg, first)
        ctx.set(dut.scores.valid, 1)
        for edge in range(at):
            if beats:
                ctx.set(dut.scores.payload, {"scores": beats[0][0], "last": beats[0][1]})
            ctx.set(dut.scores.valid, bool(beats))
            if phase in ("status",):
                ctx.set(dut.mask.ready, 1)
            _, _, ready = await ctx.tick().sample(dut.scores.ready)
            if beats and ready:
                beats.pop(0)
        if phase == "emit":
            assert ctx.get(dut.mask.valid), "no mask beat pending at the reset"
        if phase == "status":
            assert ctx.get(dut.status.valid), "no status beat pending at the reset"
        ctx.set(dut.scores.valid, 1)              # a beat of the old job is offered during reset
        ctx.set(top.cd.rst, 1)
        await ctx.tick()
        ctx.set(top.cd.rst, 0)
        ctx.set(dut.scores.valid, 0)
        assert not ctx.get(dut.mask.valid) and not ctx.get(dut.status.valid)
        # The second job, with random idle and stall, sequentially (scores never wait on outputs).
        await put(ctx, dut.jobs, [{"k": second.k}], rng, 0.3)
        await put(ctx, dut.scores, [{"scores": lanes, "last": last} for lanes, last in score_beats(cfg, second)],
                  rng, 0.3)
        mask = []
        while len(mask) < N:
            ctx.set(dut.mask.ready, rng.random() >= 0.4)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.mask.valid, dut.mask.ready, dut.mask.payload)
            if valid and ready:
                mask.append((payload.keep, payload.last))
        ctx.set(dut.mask.ready, 1)
        while True:
            ctx.set(dut.status.ready, rng.random() >= 0.4)
            _, _, valid, ready, payload = await ctx.tick().sample(dut.status.valid, dut.status.ready,
                                                                  dut.status.payload)
            if valid and ready:
                got["status"] = SecStatus(payload.status).value
                break
        ctx.set(dut.status.ready, 1)
        for _ in range(2 * T):
            await ctx.tick()
            assert not ctx.get(dut.mask.valid) and not ctx.get(dut.status.valid)
        got["mask"] = mask

    simulate(top, [bench], [partial(check_stream_rules, port=dut.mask),
                            partial(check_stream_rules, port=dut.status)], name=f"sec_reset_{phase}")
    assert got["status"] == OK
    assert [b[0] for b in got["mask"]] == mask_words(cfg, second.keep)
    assert [b[1] for b in got["mask"]] == [0] * (N - 1) + [1]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24))
def test_random_configs_match_golden_top_k(seed):
    """A sweep over random small configurations (tokens 1..40, lanes 1..16, score widths 1..12, digits
    1..5 bits)."""
    rng = random.Random(seed)
    frames, height, width = rng.randint(1, 2), rng.randint(1, 5), rng.randint(1, 4)
    cfg = FocusConfig(frames=frames, height=height, width=width, tile_frames=1, cols=rng.randint(1, 16),
                      scatter_lanes=1, score_width=rng.randint(1, 12), sec_radix_bits=rng.randint(1, 5))
    cases = mixed_cases(cfg, rng, randoms=4)
    got, _, _ = drive_jobs(cfg, cases, seed=seed, idle=rng.choice([0.0, 0.3]),
                                              stall=rng.choice([0.0, 0.5]), name=f"sec_sweep_{seed}")
    check_results(cfg, cases, got)


def test_invalid_k_consumes_the_job_and_answers_at_once():
    """k = 0 and k > T: the job's scores are taken to `last`, the status follows one edge later,
    and no mask beat appears; the jobs after it are exact."""
    cfg = CONFIGS["t25-w7-r3"]
    rng = random.Random(3)
    scores = np.array([[[rng.randrange(128) for _ in range(cfg.tokens)]] * 2])
    cases = [expect(cfg, "bad 0", scores, 0), expect(cfg, "good", scores, 4),
             expect(cfg, "bad T+1", scores, cfg.tokens + 1), expect(cfg, "good all", scores, cfg.tokens)]
    assert [c.status for c in cases] == [BAD_K, OK, BAD_K, OK]
    got, job_edges, status_edges = drive_jobs(cfg, cases, seed=3, name="sec_invalid_k")
    check_results(cfg, cases, got)
    assert status_edges[0] - job_edges[0] == 2 * cfg.sec_words + 1


def verilog_ports(text, module):
    """{port: (direction, width)} declared in ``module`` of Verilog ``text`` as Yosys writes it."""
    body = text[text.index(f"module {module}("):]
    body = body[:body.index("endmodule")]
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s+)?(\w+)\s*;",
                                           body, re.M):
        ports[name] = (direction, int(msb or 0) + 1)
    return ports


@pytest.mark.parametrize("name", CONFIGS)
def test_verilog_lints_clean(name):
    """The generated Verilog passes Verilator's lint (-Wall, the documented waivers)."""
    result = lint(cached_verilog(CONFIGS[name], "sec"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", CONFIGS)
def test_verilog_ports_match_the_signature(name):
    """The generated Verilog's ports are exactly the component's: each stream member as
    ``<port>__<member>`` with the signature's direction and width, plus ``clk`` and ``rst``."""
    cfg = CONFIGS[name]
    dut = SemanticConcentrator(cfg)
    want = {"clk": ("input", 1), "rst": ("input", 1)}
    for member_path, member, _ in dut.signature.flatten(dut):
        want["__".join(member_path)] = ("input" if member.flow == In else "output", Shape.cast(member.shape).width)
    text = verilog.convert(dut, name="sec", emit_src=False)                  # as focus.gen.elaborate does
    assert verilog_ports(text, "sec") == want
    assert want["scores__payload"] == ("input", cfg.sec_lanes * cfg.score_width + 1)   # a word of scores and last
