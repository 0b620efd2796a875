"""Yosys ``synth_ecp5`` of one block, for tests of what synthesis keeps (register copies)."""

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path


@functools.cache
def synthesized(block, cfg, script_after_read):
    """The component ``block`` (``"module:Class"`` in ``focus.hdl``) for ``cfg`` after
    ``read_rtlil; {script_after_read}; synth_ecp5``: its cells and its net names' bits."""
    from importlib import import_module

    from amaranth.back import rtlil

    from focus.gen.resources import _RUN_YOSYS

    module_name, _, class_name = block.partition(":")
    component = getattr(import_module(f"focus.hdl.{module_name}"), class_name)(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "top.il").write_text(rtlil.convert(component, name="top"))
        script = f"read_rtlil top.il; {script_after_read}; synth_ecp5 -top top -json out.json"
        subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-p", script], cwd=tmp, check=True,
                       capture_output=True)
        module = json.loads(Path(tmp, "out.json").read_text())["modules"]["top"]
    return list(module["cells"].values()), module["netnames"]


def distinct_bits(nets, pattern):
    """The distinct bits of the nets whose names match ``pattern`` (a regular expression, whole
    name): flip-flop copies that synthesis merged share a bit."""
    import re
    return {bit for name, net in nets.items() if re.fullmatch(pattern, name) for bit in net["bits"]}
