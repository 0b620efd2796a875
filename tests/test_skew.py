"""Input skew and output de-skew in Amaranth's simulator: exact per-lane delays on random data, and
a skewed wavefront leaves the de-skew as whole rows."""

import random

import pytest

from focus import FocusConfig
from focus.hdl.skew import InputSkew, OutputDeskew
from focus.tb.amaranth_sim import WithReset, simulate


def config(rows, cols, data_width=8, acc_width=32):
    return FocusConfig(rows=rows, vector_size=rows, cols=cols, hidden=rows, data_width=data_width,
                       acc_width=acc_width, scatter_lanes=1)


SIZES = [(1, 1), (4, 3), (7, 5), (8, 8)]


@pytest.mark.parametrize("rows,cols", SIZES)
def test_input_skew_delays_row_k_by_k_cycles(rows, cols):
    cfg = config(rows, cols)
    dut = InputSkew(cfg)
    rng = random.Random(rows * 100 + cols)
    history = []

    async def bench(ctx):
        for t in range(40):
            vector = [{"a": rng.randint(cfg.data_min, cfg.data_max), "bank": rng.randint(0, 1)}
                      for _ in range(rows)]
            history.append(vector)
            ctx.set(dut.vector, vector)
            for k in range(rows):                    # combinational: lane k shows cycle t - k
                if t >= k:
                    lane = ctx.get(dut.skewed[k])
                    assert (lane.a, lane.bank) == (history[t - k][k]["a"], history[t - k][k]["bank"]), \
                        f"lane {k} in cycle {t}"
            await ctx.tick()

    simulate(WithReset(dut), [bench], name=f"skew_{rows}x{cols}")   # owns sync: 1 lane has no register


@pytest.mark.parametrize("rows,cols", SIZES)
@pytest.mark.parametrize("acc_width", [32, 19])
def test_output_deskew_delays_column_n_by_cols_minus_1_minus_n(rows, cols, acc_width):
    cfg = config(rows, cols, acc_width=acc_width)
    dut = OutputDeskew(cfg)
    rng = random.Random(rows * 100 + cols + acc_width)
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    history = []

    async def bench(ctx):
        for t in range(40):
            lanes = [rng.choice([lo, hi, rng.randint(lo, hi)]) for _ in range(cols)]
            history.append(lanes)
            ctx.set(dut.skewed, lanes)
            for n in range(cols):
                delay = cols - 1 - n
                if t >= delay:
                    assert ctx.get(dut.vector[n]) == history[t - delay][n], f"column {n} in cycle {t}"
            await ctx.tick()

    simulate(WithReset(dut), [bench], name=f"deskew_{rows}x{cols}")


def test_skewed_wavefront_leaves_the_deskew_as_whole_rows():
    """Rows whose column n arrives in cycle r + n (as from the bottom of the array) come out of
    the de-skew whole, row r in cycle r + cols - 1."""
    cfg = config(4, 6)
    dut = OutputDeskew(cfg)
    rng = random.Random(5)
    rows = [[rng.randint(-1000, 1000) for _ in range(cfg.cols)] for _ in range(12)]

    async def bench(ctx):
        for t in range(len(rows) + cfg.cols):
            ctx.set(dut.skewed, [rows[t - n][n] if 0 <= t - n < len(rows) else 0 for n in range(cfg.cols)])
            r = t - (cfg.cols - 1)
            if 0 <= r < len(rows):
                assert [ctx.get(dut.vector[n]) for n in range(cfg.cols)] == rows[r]
            await ctx.tick()

    simulate(dut, [bench], name="deskew_wavefront")
