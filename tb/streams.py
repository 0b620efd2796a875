"""cocotb drivers for ``amaranth.lib.stream`` ports, with random idle cycles and backpressure.

An Amaranth stream port ``name`` appears in the generated Verilog as ``name__valid``,
``name__ready`` and ``name__payload`` (the payload's bits, packed by its layout: see :func:`pack`
and :func:`unpack`). Handshake rules (amaranth ``docs/stdlib/stream.rst``): a beat moves on a rising
edge where valid and ready are both high; a raised valid and its payload hold until then.

Handshakes are decided right after ``await RisingEdge(clk)``, where signals read as the flops saw
them at that edge. Both drivers idle while ``rst`` is high; after a reset the test calls
``clear()`` on them so nothing of the interrupted job leaks into the next one.

:class:`StreamMonitor` watches any stream port: it records each beat and the cycle of its
handshake, fails the test when the port breaks the handshake rules, and checks that nothing more
arrives (:meth:`StreamMonitor.expect_nothing_more`). :class:`StreamSink` is a monitor that also
drives ``ready``.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any, Iterable

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time

__all__ = ["first_difference", "pack", "unpack", "port_signals", "StreamSource", "StreamMonitor", "StreamSink", "start_clock",
           "reset_dut", "make_rng"]


def pack(layout, value: Any) -> int:
    """Payload bits of ``value`` (a dict for a struct, a list for an array, an int for a shape)."""
    if hasattr(layout, "const"):
        return layout.const(value).as_bits()
    return int(value) & ((1 << layout.width) - 1)


def unpack(layout, bits: int) -> Any:
    """``bits`` as ``layout`` sees them: an Amaranth ``data.Const`` for layouts (index fields by
    name or position, ``int()`` them), a Python int (sign-extended if signed) for a plain shape."""
    if hasattr(layout, "from_bits"):
        return layout.from_bits(bits)
    if layout.signed and bits >> (layout.width - 1):
        return bits - (1 << layout.width)
    return bits


def port_signals(dut, port: str):
    """The ``valid``, ``ready`` and ``payload`` handles of stream ``port`` of ``dut``."""
    return tuple(getattr(dut, f"{port}__{name}") for name in ("valid", "ready", "payload"))



def first_difference(name: str, got: list, want: list) -> str:
    """Assertion message naming the first beat where ``got`` and ``want`` differ, or their counts."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"{name}[{i}]: got {g}, expected {w} ({len(got)} beats, {len(want)} expected)"
    return f"{name}: got {len(got)} beats, expected {len(want)}"

def make_rng() -> random.Random:
    """Random generator seeded from cocotb's seed (``seed=`` in the runner), so runs replay."""
    return random.Random(cocotb.RANDOM_SEED)


def start_clock(dut, period_ns: int = 10):
    return cocotb.start_soon(Clock(dut.clk, period_ns, unit="ns").start())


async def reset_dut(dut, cycles: int = 2):
    """Hold the synchronous, active-high ``rst`` for ``cycles`` rising edges."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0


class StreamSource:
    """Sends queued payloads on ``port``; each cycle with a beat to send it idles with probability ``idle``."""

    def __init__(self, dut, port: str, rng: random.Random, idle: float = 0.0):
        self.dut, self.rng, self.idle = dut, rng, idle
        self.queue: deque[int] = deque()
        self.sent = 0
        self.valid, self.ready, self.payload = port_signals(dut, port)
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, beats: Iterable[int]):
        self.queue.extend(beats)

    def clear(self):
        """Forget queued beats and drop a pending one (call after a reset)."""
        self.queue.clear()
        self.valid.value = 0

    @property
    def idle_now(self) -> bool:
        return not self.queue and not self.valid.value

    async def wait_drained(self):
        while not self.idle_now:
            await RisingEdge(self.dut.clk)

    async def _run(self):
        while True:
            await RisingEdge(self.dut.clk)
            if self.dut.rst.value:
                self.valid.value = 0
                continue
            if self.valid.value:
                if not self.ready.value:
                    continue                          # hold the pending beat
                self.sent += 1
            if self.queue and self.rng.random() >= self.idle:
                self.payload.value = self.queue.popleft()
                self.valid.value = 1
            else:
                self.valid.value = 0


class StreamMonitor:
    """Watches stream ``port`` of ``dut`` on every rising edge of ``clk``; drives nothing.

    ``beats`` holds the payload of each handshake (valid and ready high at an edge, ``rst`` low) and
    ``cycles`` the number of its edge: edges are numbered from 0, the first edge after the monitor
    was made, so monitors made in the same time step number edges alike. Outside reset it checks
    the handshake rules (amaranth ``docs/stdlib/stream.rst``): once valid is high at an edge without
    ready, valid stays high and the payload unchanged until the handshake. A broken rule raises
    ``AssertionError`` in the monitor's task, which fails the running test at once.
    """

    def __init__(self, dut, port: str):
        self.dut, self.port = dut, port
        self.beats: list[int] = []
        self.cycles: list[int] = []
        self.cycle = 0                                # the number the next edge gets
        self.valid, self.ready, self.payload = port_signals(dut, port)
        self._held: int | None = None                 # payload offered and not taken at the last edge
        self._task = cocotb.start_soon(self._run())

    def clear(self):
        """Forget the beats and cycles seen so far (call after a reset); the rule check goes on."""
        self.beats.clear()
        self.cycles.clear()

    async def wait_for(self, count: int):
        """Wait until ``count`` beats have arrived in total."""
        while len(self.beats) < count:
            await RisingEdge(self.dut.clk)

    async def expect_nothing_more(self, cycles: int = 100):
        """Fail unless ``valid`` stays low (outside reset) for the next ``cycles`` edges: no beat
        is offered, so none arrives."""
        before = len(self.beats)
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
            if not self.dut.rst.value and self.valid.value:
                raise AssertionError(f"{self.port}: a beat nobody asked for, offered at {get_sim_time('ns')} ns "
                                     f"({before} beats were expected)")
        assert len(self.beats) == before, f"{self.port}: {len(self.beats) - before} beats nobody asked for"

    def _observe(self):
        """Check and record the handshake signals as they were at this edge (none in reset, where
        they may not be known yet)."""
        edge, self.cycle = self.cycle, self.cycle + 1
        if self.dut.rst.value:
            self._held = None
            return
        valid, ready = bool(self.valid.value), bool(self.ready.value)
        payload = int(self.payload.value) if valid else None
        if self._held is not None:
            if not valid:
                raise AssertionError(f"{self.port}: valid dropped at edge {edge} without a handshake")
            if payload != self._held:
                raise AssertionError(f"{self.port}: payload changed at edge {edge} while waiting for "
                                     f"ready: {self._held:#x} -> {payload:#x}")
        if valid and ready:
            self.beats.append(payload)
            self.cycles.append(edge)
        self._held = payload if valid and not ready else None

    def _drive(self):
        """What a subclass drives after each edge (a monitor drives nothing)."""

    async def _run(self):
        while True:
            await RisingEdge(self.dut.clk)
            self._observe()
            self._drive()


class StreamSink(StreamMonitor):
    """A :class:`StreamMonitor` on an output ``port`` that also drives its ``ready``: each cycle it
    withholds ready with probability ``stall``."""

    def __init__(self, dut, port: str, rng: random.Random, stall: float = 0.0):
        self.rng, self.stall = rng, stall
        super().__init__(dut, port)
        self.ready.value = 0

    def _drive(self):
        self.ready.value = int(self.rng.random() >= self.stall)
