"""Structural plans: what the hardware instantiates for a configuration.

Both the gateware (``focus.hdl``) and the cycle models (``focus.sim``) import these, so the RTL is
built from the plan and the cycle model predicts from the same plan what the RTL must do; the
cycle-exact tests then check the RTL's real timing against that prediction. Nothing here depends
on Amaranth or NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import FocusConfig

__all__ = ["ComparatorPlan", "comparator_plan", "comparator_latency", "comparator_depth", "MIN_DEPTH", "THRESHOLD_STAGES", "TOURNAMENT_STAGES",
           "WIDE_PRODUCT_STAGES", "emit_steps", "MAP_DEPTH", "REPRESENTATIVE_DEPTH", "array_fifo_depth", "PASS_QUEUE_DEPTH", "lane_rows",
           "SCATTER_QUEUE_DEPTH", "FIRST_TILE_GROUP", "tile_passes", "interleaved_n_tiles"]

#: Entries of SIC's map output queue.
MAP_DEPTH = 4
#: Entries of SIC's representatives output queue (covers the emitter's pipeline at one beat a cycle).
REPRESENTATIVE_DEPTH = 9


#: Entries of each of the pass buffer's output queues (a memory read, its data registered, then the
#: queue: the credit of an item taken at once returns four edges after its issue, so four keep the
#: readers at one beat a cycle).
PASS_QUEUE_DEPTH = 4

#: N-tiles whose passes the pass buffer interleaves in a job's first tile, one accumulator set
#: each: the scatter's two sets are both free there (no block is being emitted yet), so the array
#: can make two passes over each tile-chunk as SIC writes it instead of one (docs/accelerator.md,
#: "The bound": the fill).
FIRST_TILE_GROUP = 2


def tile_passes(n_tiles: int, chunks: int, job_first: bool) -> list[tuple[int, int]]:
    """``(nt, c)`` of a tile's passes in the order the pass buffer replays them (and the weights
    stream must follow). A job's first tile: chunk by chunk its first ``g = min(FIRST_TILE_GROUP,
    n_tiles)`` N-tiles (``(0, 0), (1, 0), (0, 1), (1, 1), ...``), then N-tiles ``g ..`` in order,
    chunk-minor; every other tile: N-tile-major, chunk-minor. Each N-tile's passes keep their
    chunk order, so the blocks still complete, and are emitted, in N-tile order."""
    g = max(1, interleaved_n_tiles(n_tiles, job_first))
    return ([(nt, c) for c in range(chunks) for nt in range(g)]
            + [(nt, c) for nt in range(g, n_tiles) for c in range(chunks)])


def interleaved_n_tiles(n_tiles: int, job_first: bool) -> int:
    """How many N-tiles :func:`tile_passes` interleaves in a tile: ``min(FIRST_TILE_GROUP,
    n_tiles)`` in a job's first tile when that is more than one, else 0. Their passes carry the
    scatter's ``swap``."""
    g = min(FIRST_TILE_GROUP, n_tiles) if job_first else 0
    return g if g > 1 else 0


def lane_rows(tile_tokens: int, lanes: int) -> int:
    """Tokens (accumulator rows) per scatter lane: ``ceil(tile_tokens / lanes)``; lane ``l`` holds
    token ``t`` with ``t mod lanes == l`` in row ``t // lanes``."""
    return -(-tile_tokens // lanes)


#: Entries of the scatter accumulator's results queue: an emission read reaches it three edges after
#: it is issued (the registered accumulator read, the registered lane selection, then the queue), so
#: four items are in flight at one a cycle (see focus.sim.scatter_cycles).
SCATTER_QUEUE_DEPTH = 4


def array_fifo_depth(cfg: FocusConfig) -> int:
    """Entries of the systolic array's result FIFO, which is also the number of vectors it admits
    before a result is taken: ``rows + cols + 5`` (its ``rows + cols + 4`` edge latency, plus one)."""
    return cfg.rows + cfg.cols + 5


#: Register stages of a wide product (:func:`focus.hdl.similarity.wide_product`): its operands
#: registered again (the DSP blocks' input registers on ECP5), the 18-bit chunk products, their sum.
WIDE_PRODUCT_STAGES = 3
#: Register stages of each SIC threshold unit (operands, the operands again (the DSP blocks' input
#: registers on ECP5), the two products, their constant multiples (a wide product each), the test).
THRESHOLD_STAGES = 3 + WIDE_PRODUCT_STAGES + 1
#: Register stages of each level of the comparator's tournaments: the cross products (a wide product
#: each), the compare, then the selection (the compare's one bit drives every bit of the winner's
#: multiplexer). The tournament holds each side of a pair ``WIDE_PRODUCT_STAGES`` cycles for the compare.
TOURNAMENT_STAGES = WIDE_PRODUCT_STAGES + 2

#: Fewest vectors the comparator admits (sequencer, post-processing, output queue).
MIN_DEPTH = 4
@dataclass(frozen=True)
class ComparatorPlan:
    """How :class:`focus.hdl.similarity.SimilarityComparator` is built for a configuration.

    ``engines`` dot-product engines of ``width`` multipliers each work on ``engines`` of the
    vector's ``sic_slots`` dot products (its own norm, then the candidates in index order) at a
    time, ``sub_cycles = vector_size / width`` cycles per dot product, ``groups = sic_slots /
    engines`` groups per vector. ``by_address``: element-serial (one engine), the history is one
    memory read once per candidate; otherwise window taps and registered products. ``entries``
    candidates are ranked per group, by a tournament of ``levels`` levels of
    :data:`TOURNAMENT_STAGES` register stages each; two group winners by one more level
    (:attr:`group_levels`), more by a running best.
    """

    engines: int
    width: int
    sub_cycles: int
    groups: int
    by_address: bool
    entries: int
    levels: int

    @property
    def group_levels(self) -> int:
        """Levels of the tournament over the group winners: 1 for two groups; 0 for one group and
        for more than two (a running best, in the last group's cycle)."""
        return 1 if self.groups == 2 else 0

    @property
    def interval(self) -> int:
        return self.groups * self.sub_cycles

    @property
    def mac_stages(self) -> int:
        """Element-serial only (0 otherwise): register stages between the multipliers' operand
        selection and the accumulator, as many of three as the interval leaves room for. With
        three the selected elements are registered, then registered again (the DSP blocks' input
        registers on ECP5), then their products (the blocks' output registers); with two the
        selection feeds the blocks' input registers; with one the selection is registered and
        multiplied in the accumulator's cycle; with none it is multiplied there. The vector's norm is
        accumulated ``sub_cycles + mac_stages`` cycles after it enters the sequencer and is
        written to the history with it then, while the vector is still there
        (``sub_cycles + mac_stages < interval``): the next vector reads it in its first group's
        last cycle at the earliest."""
        if not self.by_address:
            return 0
        return max(0, min(3, self.interval - self.sub_cycles - 1))


def comparator_plan(cfg: FocusConfig) -> ComparatorPlan:
    """The comparator's structure for ``cfg.sic_lanes`` multipliers (see :class:`ComparatorPlan`)."""
    engines = cfg.sic_engines
    width = cfg.sic_lanes // engines
    groups = cfg.sic_slots // engines
    entries = engines if groups > 1 else engines - 1      # full rate: engine 0 only has the norm
    return ComparatorPlan(engines=engines, width=width, sub_cycles=cfg.vector_size // width, groups=groups,
                          by_address=engines == 1, entries=entries, levels=(entries - 1).bit_length())


def comparator_latency(cfg: FocusConfig) -> int:
    """Cycles from a vector's input handshake to its verdict being offered, comparator idle.

    The sequencer's ``II`` cycles, the dot product (element-serial: the elements' selection and
    products registered in :attr:`ComparatorPlan.mac_stages` stages, then accumulated, 1 cycle;
    engines: operands registered twice, products registered twice, their sum in two stages, 6
    cycles), :data:`THRESHOLD_STAGES` threshold stages,
    :data:`TOURNAMENT_STAGES` per tournament level of the group tournament and of the tournament
    over the groups, and the output queue, whose read data is registered (2 cycles). (The
    registers are what 100 MHz on ECP5 needs: every multiplier has registers on both sides, fed by
    a register with no logic between, and every wide compare has its own stage.)
    """
    plan = comparator_plan(cfg)
    return (plan.interval + (1 + plan.mac_stages if plan.by_address else 6) + THRESHOLD_STAGES
            + TOURNAMENT_STAGES * (plan.levels + plan.group_levels) + 2)


def comparator_depth(cfg: FocusConfig) -> int:
    """Vectors the comparator admits before its output is taken (its credit limit): enough for
    the input never to wait on the credit while the output is ready (``(L + 1) / II``), one spare,
    and at least :data:`MIN_DEPTH`."""
    ii, latency = cfg.sic_interval, comparator_latency(cfg)
    return max(MIN_DEPTH, -(-(latency + 1) // ii) + 1)


def emit_steps(cfg: FocusConfig) -> int:
    """Bank reads (cycles) per representative."""
    return cfg.vector_size // cfg.sic_mean_lanes if cfg.representative == "mean" else 1
