"""Input skew and output de-skew of the systolic array: triangular banks of delay registers."""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import FocusConfig

__all__ = ["SkewLane", "InputSkew", "OutputDeskew"]


def SkewLane(cfg: FocusConfig) -> data.StructLayout:
    """What travels along one array row: an activation ``a`` (signed ``cfg.data_width``) and the
    weight ``bank`` (0 or 1) it is to be multiplied with."""
    return data.StructLayout({"a": signed(cfg.data_width), "bank": 1})


class _DelayLines(wiring.Component):
    """Lane ``j`` of ``o`` in cycle ``t`` is lane ``j`` of ``i`` in cycle ``t - delays[j]``.

    A delay of 0 is a wire. Free-running (no enable) and not reset: a lane shows whatever entered
    it ``delays[j]`` cycles earlier, including before a reset.
    """

    def __init__(self, lane, delays, names):
        self.delays = tuple(delays)
        layout = data.ArrayLayout(lane, len(self.delays))
        self._in_name, self._out_name = names
        super().__init__({names[0]: In(layout), names[1]: Out(layout)})

    def elaborate(self, platform):
        m = Module()
        src, dst = getattr(self, self._in_name), getattr(self, self._out_name)
        for lane, delay in enumerate(self.delays):
            value = src[lane]
            for stage in range(delay):
                reg = Signal.like(value, name=f"lane{lane}_d{stage + 1}", reset_less=True)
                m.d.sync += reg.eq(value)
                value = reg
            m.d.comb += dst[lane].eq(value)
        return m


class InputSkew(_DelayLines):
    """Skews a row vector into the array's diagonal wavefront: lane ``k`` (array row ``k``) is
    delayed by ``k`` cycles.

    Ports
      ``vector``  In, ``cfg.rows`` lanes of :func:`SkewLane`, lane 0 in the low bits.
      ``skewed``  Out, same layout: ``skewed[k]`` in cycle ``t`` is ``vector[k]`` in cycle ``t - k``.
    ``cfg.rows * (cfg.rows - 1) / 2`` lane registers; lane 0 is a wire. No reset, no enable.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__(SkewLane(cfg), range(cfg.rows), ("vector", "skewed"))


class OutputDeskew(_DelayLines):
    """Re-aligns the array's bottom-row partial sums into one result row: column ``n`` arrives
    ``n`` cycles after column 0 and is delayed by ``cfg.cols - 1 - n`` cycles.

    Ports
      ``skewed``  In, ``cfg.cols`` lanes of signed ``cfg.acc_width``, lane 0 in the low bits.
      ``vector``  Out, same layout: ``vector[n]`` in cycle ``t`` is ``skewed[n]`` in cycle
      ``t - (cols - 1 - n)``; so a row whose column ``n`` entered in cycle ``t0 + n`` leaves whole
      in cycle ``t0 + cols - 1``.
    ``cfg.cols * (cfg.cols - 1) / 2`` lane registers; the last lane is a wire. No reset, no enable.
    """

    def __init__(self, cfg: FocusConfig):
        self.cfg = cfg
        super().__init__(signed(cfg.acc_width), [cfg.cols - 1 - n for n in range(cfg.cols)],
                         ("skewed", "vector"))
