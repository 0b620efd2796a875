"""Small idioms that keep the generated Verilog clean under ``verilator -Wall``.

* ``x == 0`` is written by the Verilog back-end as ``!x`` (a logical not of a vector, WIDTHTRUNC);
  :func:`equals` writes ``~|x`` instead.
* ``Signal(range(1))`` has no bits and becomes ``[-1:0]`` (ASCRANGE); :func:`index_range` keeps
  at least one bit.

And one for synthesis: :data:`KEEP_COPIES`.
"""

from amaranth.hdl import Value

__all__ = ["equals", "index_range", "KEEP_COPIES"]

#: Yosys commands, run right after the design is read, that keep the copies of a register apart:
#: every flip-flop whose signal's name starts with ``kept_`` gets Yosys's ``keep`` attribute, so
#: ``opt_merge`` does not fold copies that have the same input into one flip-flop, which would
#: drive all their loads across the chip again. (Amaranth 0.5 writes a signal's ``attrs`` on its
#: wire, not on the flip-flop cell.) The board builds and ``focus.gen`` synthesis run it; another
#: synthesis tool needs its own way of not merging equivalent registers.
KEEP_COPIES = r"proc; setattr -set keep 1 w:kept_* %a %ci1:+[Q] t:$dff %i"


def equals(value: Value, constant: int):
    """``value == constant`` (``~value.any()`` for 0)."""
    return ~value.any() if constant == 0 else value == constant


def index_range(count: int) -> range:
    """Shape of an index over ``count`` items (0 .. count-1), at least one bit wide."""
    return range(max(count, 2))
