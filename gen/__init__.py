"""Elaboration of Focus components to Verilog.

:func:`focus.gen.elaborate.verilog` turns a registered top (:data:`focus.gen.tops.TOPS`) and a
configuration into Verilog text, deterministically (same configuration, same bytes); the text starts
with a comment holding the configuration's JSON. ``focus-gen`` is the command-line front end.
:mod:`focus.gen.resources` synthesizes Verilog for ECP5 (Yosys) and counts its cells.
"""
