"""History of a raster-order stream for SIC's causal window: what the 2x2x2 candidates refer to.

In raster order (frame, row, column) the candidate ``(df, dh, dw)`` of the record at ``t`` is the
record ``offset = df*height*width + dh*width + dw`` places back. :class:`WindowHistory` keeps
exactly the records the window needs, as a chain of delay lines between the distinct "row bases"
``df*height*width + dh*width`` (0, W, H*W, H*W+W for the 2x2x2 window) plus one register after each
base for the ``dw = 1`` neighbours: ``H*W + W`` entries in memories and ``1`` register per base,
i.e. the ``H*W + W + 1`` records the window reaches back, sized from the configuration. Records
are stored only once (``x[t-W]`` is pushed on into the next line), never a copy of the whole tile.

The history knows nothing about tiles or image edges: it holds the last records of the stream,
whatever they are. Whether a candidate exists (image edge, earlier tile) is decided by whoever
reads the taps, from its own position counters.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig
from .util import CollisionFreeReadPort, equals, index_range

__all__ = ["DelayLine", "WindowHistory"]


class DelayLine(wiring.Component):
    """Fixed delay of ``length`` steps on a record of ``width`` bits.

    ``output`` shows the ``input`` of ``length`` advances ago, while the current record is on
    ``input``; it holds while ``advance`` is low. A step is one cycle with ``advance`` high; the
    input is stored at that edge. ``length`` 1 is a register; longer lines are a memory of
    ``length`` rows with a registered read port that prefetches the row of the next step (so
    ``output`` is a flop output, no read latency is visible). Before ``length`` steps have passed
    since reset, ``output`` is unspecified. Reset clears the write pointer only.
    """

    def __init__(self, width: int, length: int):
        if length < 1:
            raise ValueError(f"length={length} is not allowed: at least 1")
        self.width, self.length = width, length
        super().__init__({
            "advance": In(1),
            "input": In(width),
            "output": Out(width),
        })

    def elaborate(self, platform):
        m = Module()
        if self.length == 1:
            held = Signal(self.width)
            with m.If(self.advance):
                m.d.sync += held.eq(self.input)
            m.d.comb += self.output.eq(held)
            return m

        m.submodules.rows = rows = memory.Memory(shape=unsigned(self.width), depth=self.length, init=[],
                                                 attrs={"no_rw_check": 1})
        write = rows.write_port()
        read = CollisionFreeReadPort(m, rows, write)            # it reads the row after the written one
        pointer = Signal(index_range(self.length))
        following = Signal.like(pointer)
        m.d.comb += following.eq(pointer + 1)
        with m.If(equals(pointer, self.length - 1)):
            m.d.comb += following.eq(0)
        m.d.comb += [
            write.addr.eq(pointer), write.data.eq(self.input), write.en.eq(self.advance),
            read.addr.eq(following), read.en.eq(self.advance),   # the row the next step leaves
            self.output.eq(read.data),
        ]
        with m.If(self.advance):
            m.d.sync += pointer.eq(following)
        return m


class WindowHistory(wiring.Component):
    """The records each candidate of ``cfg``'s window refers to, for the record being presented.

    Ports
      ``advance`` (In 1): the record on ``record`` enters the history at this edge.
      ``record`` (In ``width``): the current record.
      ``taps`` (Out ``ArrayLayout(width, K)``): ``taps[i]`` is the record ``cfg.candidate_offsets[i]``
      advances back, for the i-th candidate of ``cfg.candidates``; valid in the cycle the current
      record is presented (combinational from flops: no read latency), unspecified for records before
      reset.
    Storage
      Delay lines of ``W``, ``H*W - W`` and ``W`` records (2x2x2 window) and one register per row base
      that has ``dw = 1`` candidates: ``H*W + W + 4`` records for the 2x2x2 window.
    """

    def __init__(self, cfg: FocusConfig, width: int):
        self.cfg, self.width = cfg, width
        super().__init__({
            "advance": In(1),
            "record": In(width),
            "taps": Out(data.ArrayLayout(unsigned(width), len(cfg.candidates))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        bases = sorted({df * cfg.frame_tokens + dh * cfg.width for _, df, dh, _ in cfg.candidates} | {0})
        at_base = {0: self.record}
        previous = 0
        for base in bases[1:]:
            line = DelayLine(self.width, base - previous)
            m.submodules[f"line_{base}"] = line
            m.d.comb += [line.advance.eq(self.advance), line.input.eq(at_base[previous])]
            at_base[base] = line.output
            previous = base
        after = {}                                  # base -> its record one step later (dw = 1)
        for i, (_, df, dh, dw) in enumerate(cfg.candidates):
            base = df * cfg.frame_tokens + dh * cfg.width
            if dw and base not in after:
                after[base] = Signal(self.width, name=f"after_{base}")
                with m.If(self.advance):
                    m.d.sync += after[base].eq(at_base[base])
            m.d.comb += self.taps[i].eq(after[base] if dw else at_base[base])
        return m
