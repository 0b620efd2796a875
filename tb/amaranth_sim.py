"""Stream testbench helpers for Amaranth's simulator (async testbenches, Amaranth 0.5).

:func:`put` and :func:`get` drive a stream with random idle cycles and backpressure;
:func:`check_stream_rules` runs in the background and fails if a pending beat changes before it is
taken. :class:`HandshakeEdges` records on which clock edges chosen streams handshake, for cycle
counts. :func:`simulate` runs testbenches and writes a VCD under ``build/waves/`` when
``$FOCUS_WAVES`` is set. A design under test can be wrapped by :class:`WithReset` to expose its
clock domain's reset for reset-mid-job tests.
"""

from __future__ import annotations

import os
import random
from functools import partial

from amaranth.hdl import ClockDomain, Elaboratable, Module
from amaranth.sim import DomainReset, Simulator

from ..files import build_root

__all__ = ["put", "get", "across_reset", "put_across_reset", "check_stream_rules", "HandshakeEdges", "simulate", "WithReset"]


async def put(ctx, port, beats, rng: random.Random, idle: float = 0.3):
    """Send ``beats`` on ``port`` (an In stream of the DUT), idling with probability ``idle``."""
    for beat in beats:
        while rng.random() < idle:
            await ctx.tick()
        ctx.set(port.payload, beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


async def get(ctx, port, count: int, rng: random.Random, stall: float = 0.3) -> list:
    """Receive ``count`` beats from ``port`` (an Out stream of the DUT), stalling with probability ``stall``."""
    beats = []
    while len(beats) < count:
        ctx.set(port.ready, rng.random() >= stall)
        _, _, valid, ready, payload = await ctx.tick().sample(port.valid, port.ready, port.payload)
        if valid and ready:
            beats.append(payload)
    ctx.set(port.ready, 0)
    return beats


async def check_stream_rules(ctx, port, domain: str = "sync"):
    """Background checker: a beat offered and not taken stays offered, unchanged, until taken."""
    held = None
    async for _, rst, valid, ready, payload in ctx.tick(domain).sample(port.valid, port.ready, port.payload):
        assert held is None or rst or (valid and payload == held), f"pending beat on {port} changed or was withdrawn"
        held = payload if valid and not ready and not rst else None


class HandshakeEdges:
    """Records the clock edges (counted from 0) on which each named stream handshakes: make
    ``edges = HandshakeEdges(first=dut.weights, last=dut.results)``, run ``edges.process`` as a
    background testbench, then read ``edges["first"]``.

    :meth:`span` is the inclusive cycle count from the first handshake of one stream to the last
    of another, the measure every cycle model in ``focus.sim`` predicts.
    """

    def __init__(self, **ports):
        self.ports = ports
        self.edges: dict[str, list[int]] = {name: [] for name in ports}

    def __getitem__(self, name: str) -> list[int]:
        return self.edges[name]

    def span(self, first: str, last: str) -> int:
        return self.edges[last][-1] - self.edges[first][0] + 1

    async def process(self, ctx):
        names = list(self.ports)
        signals = [sig for port in self.ports.values() for sig in (port.valid, port.ready)]
        edge = 0
        async for _, _, *sampled in ctx.tick().sample(*signals):
            for i, name in enumerate(names):
                if sampled[2 * i] and sampled[2 * i + 1]:
                    self.edges[name].append(edge)
            edge += 1


class WithReset(Elaboratable):
    """Owns the ``sync`` domain of ``dut`` so a testbench can pulse ``self.cd.rst``."""

    def __init__(self, dut):
        self.dut = dut
        self.cd = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.submodules.dut = self.dut
        return m

    async def pulse(self, ctx, *outputs):
        """Hold reset for one clock edge; then none of the ``outputs`` streams may offer a beat."""
        ctx.set(self.cd.rst, 1)
        await ctx.tick()
        ctx.set(self.cd.rst, 0)
        for port in outputs:
            assert not ctx.get(port.valid), "a beat survived the reset"


async def across_reset(ctx, port, first, second, after_reset):
    """Run testbench ``first`` (driving ``port`` for a job to be abandoned) until a reset interrupts
    it, drop its pending beat, wait until ``after_reset()`` is true, then run ``second``.

    ``first`` must wait only for ``ready`` (no idle cycles), so that the reset reaches it as
    ``DomainReset``; if it finished before the reset it just waits.
    """
    try:
        await first(ctx)
    except DomainReset:
        ctx.set(port.valid, 0)
    while not after_reset():
        await ctx.tick()
    await second(ctx)


async def put_across_reset(ctx, port, first, second, rng: random.Random, after_reset, idle: float = 0.3):
    """:func:`across_reset` with :func:`put`: the beats ``first`` with no idle cycles, then the
    beats ``second`` with idle probability ``idle``."""
    await across_reset(ctx, port, partial(put, port=port, beats=first, rng=rng, idle=0.0),
                       partial(put, port=port, beats=second, rng=rng, idle=idle), after_reset)


async def _watchdog(ctx, cycles: int, name: str):
    count = 0
    async for _ in ctx.tick():
        count += 1
        if count > cycles:
            raise AssertionError(f"{name}: testbenches still running after {cycles} cycles (a lost beat or a hang)")


def simulate(top, testbenches=(), background=(), *, name: str = "sim", period: float = 1e-8,
             timeout_cycles: int = 200_000):
    """Run ``testbenches`` (async callables taking ``ctx``) to completion on ``top``.

    ``background`` testbenches (checkers) do not keep the simulation alive. A watchdog fails the run
    after ``timeout_cycles`` clock cycles. With ``$FOCUS_WAVES`` set to anything but 0, the run is
    recorded to ``build/waves/<name>.vcd``.
    """
    sim = Simulator(top)
    sim.add_clock(period)
    for bench in testbenches:
        sim.add_testbench(bench)
    for bench in (*background, partial(_watchdog, cycles=timeout_cycles, name=name)):
        sim.add_testbench(bench, background=True)
    if os.environ.get("FOCUS_WAVES", "0") not in ("0", "", "failure", "never"):
        path = build_root() / "waves" / f"{name}.vcd"
        path.parent.mkdir(parents=True, exist_ok=True)
        with sim.write_vcd(str(path)):
            sim.run()
    else:
        sim.run()
    return sim
