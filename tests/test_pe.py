"""ProcessingElement in Amaranth's simulator: the registered product, the psum timing, the weight
staging chain and the two banks, exact for several data and accumulator widths."""

import random

import pytest

from focus import FocusConfig
from focus.hdl.pe import ProcessingElement
from focus.tb.amaranth_sim import simulate

CONFIGS = {
    "int8-acc32": FocusConfig(rows=4, vector_size=4, cols=4, hidden=16, scatter_lanes=4),
    "int4-acc9": FocusConfig(rows=2, vector_size=2, cols=2, hidden=2, data_width=4, acc_width=9,
                             scatter_lanes=2),
    "int16-acc40": FocusConfig(rows=4, vector_size=4, cols=4, hidden=64, data_width=16, acc_width=40,
                               scatter_lanes=4),
}


def wrap(value, width):
    return ((value + (1 << (width - 1))) % (1 << width)) - (1 << (width - 1))


class PEContract:
    """The register transfer the PE docstring promises, one clock edge at a time. ``None`` is a
    register that has not been written since the start (its value is not specified).
    ``psum_of_extremes`` says whether the product in ``psum`` had both factors at an extreme of
    the data range (lo * lo is the one product that needs all 2 * data_width bits)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.a = self.bank = self.weight = self.product = self.psum = self.staged = None
        self.banks = [None, None]
        self.weight_of_extremes = self.product_of_extremes = self.psum_of_extremes = False

    def edge(self, a_in, bank_in, psum_in, w_in, w_shift, commit):
        weight = self.banks[bank_in]
        product = None if self.weight is None or self.a is None else self.a * self.weight
        psum = None if self.product is None else wrap(psum_in + self.product, self.cfg.acc_width)
        banks = [self.staged if commit >> b & 1 else self.banks[b] for b in range(2)]
        extremes = {self.cfg.data_min, self.cfg.data_max}
        self.psum_of_extremes = self.product_of_extremes
        self.product_of_extremes = self.weight_of_extremes
        self.weight_of_extremes = weight is not None and {a_in, weight} <= extremes
        self.a, self.bank, self.weight, self.product, self.psum = a_in, bank_in, weight, product, psum
        self.staged = w_in if w_shift else self.staged
        self.banks = banks


@pytest.mark.parametrize("name", CONFIGS)
def test_pe_follows_its_register_contract_on_random_inputs(name):
    cfg = CONFIGS[name]
    rng = random.Random(name)
    lo, hi = cfg.data_min, cfg.data_max
    acc_lo, acc_hi = -(1 << (cfg.acc_width - 1)), (1 << (cfg.acc_width - 1)) - 1
    dut = ProcessingElement(cfg)
    model = PEContract(cfg)
    checked = {"psum": 0, "product_extremes": 0}

    def data():
        return rng.choice([lo, hi, 0, -1, rng.randint(lo, hi), rng.randint(lo, hi)])

    async def bench(ctx):
        for _ in range(600):
            inputs = dict(a_in=data(), bank_in=rng.randint(0, 1),
                          psum_in=rng.choice([acc_lo, acc_hi, 0, rng.randint(acc_lo, acc_hi)]),
                          w_in=data(), w_shift=int(rng.random() < 0.4), commit=rng.randrange(4))
            for port, value in inputs.items():
                ctx.set(getattr(dut, port), value)
            await ctx.tick()
            model.edge(**inputs)
            assert ctx.get(dut.a_out) == model.a and ctx.get(dut.bank_out) == model.bank
            if model.staged is not None:
                assert ctx.get(dut.w_out) == model.staged
            if model.psum is not None:
                assert ctx.get(dut.psum_out) == model.psum
                checked["psum"] += 1
                checked["product_extremes"] += model.psum_of_extremes

    simulate(dut, [bench], name=f"pe_{name}")
    assert checked["psum"] > 400          # the contract was checked, not skipped
    assert checked["product_extremes"] > 30, checked      # and on the widest products


def test_psum_out_is_psum_in_plus_product_three_cycles_after_a_in():
    cfg = CONFIGS["int8-acc32"]
    dut = ProcessingElement(cfg)

    async def bench(ctx):
        ctx.set(dut.w_in, -128)
        ctx.set(dut.w_shift, 1)
        await ctx.tick()                          # staging <- -128
        ctx.set(dut.w_shift, 0)
        ctx.set(dut.commit, 0b01)
        await ctx.tick()                          # bank 0 <- -128
        ctx.set(dut.commit, 0)
        ctx.set(dut.a_in, -128)                   # cycle c: a_in
        ctx.set(dut.bank_in, 0)
        await ctx.tick()
        assert ctx.get(dut.a_out) == -128         # cycle c + 1: forwarded to the right, weight read
        ctx.set(dut.a_in, 0)
        await ctx.tick()                          # cycle c + 2: the product
        ctx.set(dut.psum_in, 1000)                # cycle c + 2: psum from the PE above
        await ctx.tick()
        assert ctx.get(dut.psum_out) == 1000 + 16384   # cycle c + 3

    simulate(dut, [bench], name="pe_latency")


def test_bank_in_selects_the_bank_and_a_commit_is_seen_from_the_next_cycle():
    cfg = CONFIGS["int8-acc32"]
    dut = ProcessingElement(cfg)

    async def load(ctx, value, bank):
        ctx.set(dut.w_in, value)
        ctx.set(dut.w_shift, 1)
        await ctx.tick()
        ctx.set(dut.w_shift, 0)
        ctx.set(dut.commit, 1 << bank)
        await ctx.tick()
        ctx.set(dut.commit, 0)

    async def product_of(ctx, a, bank, commit=0):
        """psum_out three cycles after presenting a with psum_in = 0 (commit set in the first cycle)."""
        ctx.set(dut.a_in, a)
        ctx.set(dut.bank_in, bank)
        ctx.set(dut.commit, commit)
        ctx.set(dut.psum_in, 0)
        await ctx.tick()
        ctx.set(dut.commit, 0)
        await ctx.tick()
        await ctx.tick()
        return ctx.get(dut.psum_out)

    async def bench(ctx):
        await load(ctx, 3, bank=0)
        await load(ctx, -5, bank=1)
        assert await product_of(ctx, 7, bank=0) == 21
        assert await product_of(ctx, 7, bank=1) == -35
        # Stage a new weight while bank 1 holds -5; commit it in the same cycle as a multiply.
        ctx.set(dut.w_in, 11)
        ctx.set(dut.w_shift, 1)
        await ctx.tick()
        ctx.set(dut.w_shift, 0)
        assert await product_of(ctx, 2, bank=1, commit=0b10) == -10   # old weight at the commit edge
        assert await product_of(ctx, 2, bank=1) == 22                 # new weight afterwards
        assert await product_of(ctx, 2, bank=0) == 6                  # bank 0 untouched

    simulate(dut, [bench], name="pe_banks")


def test_staging_shifts_only_while_w_shift_is_high():
    cfg = CONFIGS["int4-acc9"]
    dut = ProcessingElement(cfg)

    async def bench(ctx):
        ctx.set(dut.w_in, -8)
        ctx.set(dut.w_shift, 1)
        await ctx.tick()
        assert ctx.get(dut.w_out) == -8
        ctx.set(dut.w_in, 7)
        ctx.set(dut.w_shift, 0)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(dut.w_out) == -8

    simulate(dut, [bench], name="pe_staging")
