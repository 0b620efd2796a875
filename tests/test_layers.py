"""The import layers hold: each subpackage, imported alone in a fresh interpreter with every one of
its modules, loads nothing of a higher layer.

    focus.fpga                    board tops, host link
    focus.gen, focus.tb           elaboration to Verilog; testbenches and the runner
    focus.sim, focus.hdl          golden model; gateware (which may read the model's contract tables)
    focus                         configuration, files, command-line helpers

Library code never loads pytest (focus.tb's cocotb testbenches do, through cocotb itself, and run
only inside a simulator), and only elaboration loads Amaranth's Verilog backend.
"""

import json
import subprocess
import sys

import pytest

SUBPACKAGES = ("focus.sim", "focus.hdl", "focus.gen", "focus.tb", "focus.fpga")
ABOVE = {
    "focus": [*SUBPACKAGES, "amaranth", "pytest"],
    "focus.sim": ["focus.hdl", "focus.gen", "focus.tb", "focus.fpga", "amaranth", "pytest"],
    "focus.hdl": ["focus.gen", "focus.tb", "focus.fpga", "amaranth.back", "pytest"],
    "focus.gen": ["focus.tb", "focus.fpga", "cocotb", "pytest"],
    "focus.tb": ["focus.fpga"],
    "focus.tb.runner": ["focus.fpga", "cocotb", "pytest"],   # what the benchmark scripts import
    "focus.fpga": [],
}

SCRIPT = """
import importlib, json, pkgutil, sys
name = sys.argv[1]
module = importlib.import_module(name)
if hasattr(module, "__path__"):          # a package: import every one of its modules too
    for info in pkgutil.iter_modules(module.__path__, name + "."):
        if not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("name", ABOVE)
def test_importing_a_layer_loads_nothing_above_it(name, tmp_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, name], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert name in loaded
    above = [m for m in loaded if any(m == top or m.startswith(top + ".") for top in ABOVE[name])]
    assert not above, f"importing {name} loaded {', '.join(above)}"
