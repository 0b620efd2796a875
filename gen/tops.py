"""The components that can be generated as Verilog top modules, by name.

A top is named by ``module:Class``; the class is built as ``Class(cfg, **params)``. Adding a
generator target is one line here: ``focus-gen``, the lint test and the cocotb runner pick it up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["Top", "TOPS", "get_top"]


@dataclass(frozen=True)
class Top:
    target: str          # "focus.hdl.module:Class"
    summary: str         # one line for `focus-gen --list`

    def build(self, cfg, **params):
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)(cfg, **params)


TOPS: dict[str, Top] = {
    "mac": Top("focus.hdl.mac:MultiplyAccumulator",
               "streaming signed multiply-accumulate (the first hardware block and the testbench template)"),
    "systolic": Top("focus.hdl.systolic:SystolicArray",
                    "weight-stationary rows x cols array: one K-chunk x N-tile pass per weight tile, double-buffered"),
    "gemm": Top("focus.hdl.gemm:GemmSequencer",
                "M x K x N GEMM on the systolic array: K-chunks accumulated in an output buffer, N-tiles in turn"),
    "sic": Top("focus.hdl.sic:SimilarityConcentrator",
               "similarity concentrator: window comparator, group table, representatives, similarity map"),
    "passbuffer": Top("focus.hdl.passbuffer:PassBuffer",
                      "pass buffer: a tile's concentrated form in two banks, replayed per N-tile to the array and the scatter"),
    "accelerator": Top("focus.hdl.accelerator:FocusAccelerator",
                       "the Focus accelerator: SEC, SIC (or dense), pass buffer, systolic array and scatter accumulator"),
    "scatter": Top("focus.hdl.scatter:ScatterAccumulator",
                   "scatter accumulator: adds each pass's partial rows into its groups' member tokens, L lanes, emits N-tile blocks"),
    "board": Top("focus.fpga.top:BoardTop",
                 "board top: the accelerator behind the UART host link (fpga/link.py, docs/link.md)"),
    "sec": Top("focus.hdl.sec:SemanticConcentrator",
               "semantic concentrator: token importance by max over attention scores, exact top-k mask by radix select"),
}


def get_top(name: str) -> Top:
    try:
        return TOPS[name]
    except KeyError:
        raise KeyError(f"unknown top {name!r}; known tops: {', '.join(sorted(TOPS))}") from None
