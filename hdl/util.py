"""Small idioms that keep the generated Verilog clean under ``verilator -Wall``.

* ``x == 0`` is written by the Verilog back-end as ``!x`` (a logical not of a vector, WIDTHTRUNC);
  :func:`equals` writes ``~|x`` instead.
* ``Signal(range(1))`` has no bits and becomes ``[-1:0]`` (ASCRANGE); :func:`index_range` keeps
  at least one bit.
"""

from amaranth.hdl import Value

__all__ = ["equals", "index_range"]


def equals(value: Value, constant: int):
    """``value == constant`` (``~value.any()`` for 0)."""
    return ~value.any() if constant == 0 else value == constant


def index_range(count: int) -> range:
    """Shape of an index over ``count`` items (0 .. count-1), at least one bit wide."""
    return range(max(count, 2))
