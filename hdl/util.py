"""Small idioms that keep the generated Verilog clean under ``verilator -Wall``.

* ``x == 0`` is written by the Verilog back-end as ``!x`` (a logical not of a vector, WIDTHTRUNC);
  :func:`equals` writes ``~|x`` instead.
* ``Signal(range(1))`` has no bits and becomes ``[-1:0]`` (ASCRANGE); :func:`index_range` keeps
  at least one bit.

And for synthesis: :data:`KEEP_COPIES` and :class:`CollisionFreeReadPort`.
"""

import contextlib
import contextvars

from amaranth.hdl import Module, Mux, Signal, Value

__all__ = ["equals", "index_range", "KEEP_COPIES", "CollisionFreeReadPort", "poisoned_collisions"]

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


#: Set by :func:`poisoned_collisions` (tests only): see :class:`CollisionFreeReadPort`.
_POISON_COLLISIONS = contextvars.ContextVar("focus_poison_collisions", default=False)


@contextlib.contextmanager
def poisoned_collisions():
    """Designs elaborated inside this context read the inverted row whenever a
    :class:`CollisionFreeReadPort` reads the row its memory's write port writes at the same edge:
    data a block RAM leaves undefined on the FPGA. A test that stays exact under it shows the
    design never uses such a read."""
    token = _POISON_COLLISIONS.set(True)
    try:
        yield
    finally:
        _POISON_COLLISIONS.reset(token)


class CollisionFreeReadPort:
    """A synchronous, non-transparent read port of ``memory`` for reads that never use the row the
    write port ``write`` writes at the same edge (they read another row, or their data is then
    replaced, as by a forwarding register).

    ``addr``, ``en`` (default 1) and ``data`` behave as those of ``memory.read_port()``: ``data`` is
    the row at ``addr`` before the edge where ``en`` is high, held while ``en`` is low; in
    simulation and in the Verilog the two are identical. It is built as an asynchronous read and a
    register of ``data``, which Yosys's ``memory_dff`` merges into a synchronous port, and since
    ``memory`` must carry the ``no_rw_check`` attribute (``attrs={"no_rw_check": 1}``) it lets a
    read and a write of one row at one edge return undefined data. A port Amaranth makes
    synchronous keeps Yosys's read-first semantics instead, which on a block RAM (ECP5's DP16KD:
    undefined when its two ports meet) cost a one-cycle delay of every write and a bypass
    multiplexer on every read bit: on the ULX3S-85F a LUT between each block RAM's output and
    its register, 1,216 for the scatter's partial banks alone."""

    def __init__(self, m: Module, memory, write, *, domain: str = "sync"):
        if not memory.attrs.get("no_rw_check"):
            raise ValueError("CollisionFreeReadPort needs a memory with attrs={'no_rw_check': 1}")
        port = memory.read_port(domain="comb")
        self.addr, self.en = port.addr, Signal(init=1)
        self.data = Signal(memory.shape, reset_less=True)
        row = Value.cast(port.data)
        if _POISON_COLLISIONS.get():
            collides = write.en.any() & (write.addr == port.addr)
            row = Mux(collides, ~row, row)
        with m.If(self.en):
            m.d[domain] += self.data.eq(row)
