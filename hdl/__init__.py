"""Amaranth components of the Focus accelerator. Every component takes a :class:`focus.FocusConfig`."""
