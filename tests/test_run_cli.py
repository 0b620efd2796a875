"""focus-run end to end on a small export (the default configuration, whose build
tests/test_accelerator_rtl.py shares), its refusals, and the `focus` umbrella command."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from focus import FocusConfig
from focus.files import build_root
from focus.hdl.accelerator import COUNTER_NAMES
from focus.sim import export
from focus.tb.run import CYCLE_PARTS, RESULT_FORMAT
from focus.tb.sic_jobs import export_clip

CFG = FocusConfig()


def focus_run(*args):
    return subprocess.run([sys.executable, "-m", "focus.tb.run", *map(str, args)], capture_output=True, text=True,
                          timeout=900)


def focus(*args):
    return subprocess.run([sys.executable, "-m", "focus.fpga.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def sec_export():
    """bikes, SEC (random scores) pruning to 2/5 of the tokens in the top."""
    return export_clip(CFG, "bikes", build_root() / "export" / "run-cli" / f"bikes-sec-{CFG.digest()}.npz",
                       keep_ratio="2/5")


@pytest.mark.rtl
def test_focus_run_writes_outputs_counters_and_kept_tokens(sec_export, tmp_path):
    out = tmp_path / "result.npz"
    # --set equal to the file's configuration is accepted
    done = focus_run(sec_export, "--out", out, "--compare-dense", "--set", "threshold=9/10", "--quiet")
    assert done.returncode == 0, done.stderr
    job = export.read(sec_export)
    with np.load(out, allow_pickle=False) as f:
        assert {"outputs", "kept", "counters", "mode", "config", "format", "format_version", "summary"} <= set(f.files)
        assert str(f["format"]) == RESULT_FORMAT and int(f["format_version"]) == 1
        assert f["outputs"].dtype == np.int64 and np.array_equal(f["outputs"], job.outputs)
        assert f["kept"].dtype == np.int64 and np.array_equal(f["kept"], job.kept)
        assert str(f["mode"]) == "focus"
        assert FocusConfig.from_json(str(f["config"])) == CFG
        counters = json.loads(str(f["counters"]))
        summary = json.loads(str(f["summary"]))
    assert set(COUNTER_NAMES) <= set(counters)
    for key in ("unique", "similar", "zero"):
        assert counters[key] == job.counters[key], key
    assert sum(counters[name] for name in CYCLE_PARTS) == counters["cycles"]
    assert summary["dense_source"] == "dense run on the RTL" and summary["dense_cycles"] > 0
    assert summary["speedup"] == pytest.approx(summary["dense_cycles"] / counters["cycles"])


@pytest.mark.rtl
def test_focus_run_dense_mode_equals_outputs_dense_and_prints_the_table(sec_export, tmp_path):
    out = tmp_path / "dense.npz"
    done = focus_run(sec_export, "--out", out, "--mode", "dense")
    assert done.returncode == 0, done.stderr
    for word in ("cycles", "dense cycles", "speed-up", "array utilisation", "wait_sic", "drain"):
        assert word in done.stdout
    with np.load(out, allow_pickle=False) as f:
        assert np.array_equal(f["outputs"], export.read(sec_export).outputs_dense)
        assert str(f["mode"]) == "dense"


def _refused(done, out, *words):
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("focus-run: error:"), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists()


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(changes)
    np.savez(dst, **arrays)
    return dst


def test_focus_run_refuses_a_missing_file(tmp_path):
    out = tmp_path / "r.npz"
    _refused(focus_run(tmp_path / "nothing.npz", "--out", out), out, "no such file")


def test_focus_run_refuses_corrupt_files(sec_export, tmp_path):
    out = tmp_path / "r.npz"
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an archive at all" * 10)
    _refused(focus_run(junk, "--out", out), out, "junk.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(sec_export.read_bytes()[:2000])
    _refused(focus_run(cut, "--out", out), out, "cut.npz")
    assert zipfile.is_zipfile(sec_export)


def test_focus_run_refuses_another_format_version(sec_export, tmp_path):
    out = tmp_path / "r.npz"
    old = _rewrite(sec_export, tmp_path / "v2.npz", format_version=np.array(2))
    _refused(focus_run(old, "--out", out), out, "format_version 2")


def test_focus_run_refuses_an_inconsistent_file(sec_export, tmp_path):
    out = tmp_path / "r.npz"
    with np.load(sec_export, allow_pickle=False) as f:
        outputs = f["outputs"].copy()
    outputs[5, 3] += 1
    bad = _rewrite(sec_export, tmp_path / "bad.npz", outputs=outputs)
    _refused(focus_run(bad, "--out", out), out, "inconsistent", "outputs[5, 3]")


def test_focus_run_refuses_a_configuration_that_differs_from_the_file(sec_export, tmp_path):
    out = tmp_path / "r.npz"
    _refused(focus_run(sec_export, "--out", out, "--set", "frames=8"), out, "frames=8", "file: 4")
    config = tmp_path / "cfg.json"
    config.write_text(CFG.replace(threshold="4/5").to_json())
    _refused(focus_run(sec_export, "--out", out, "--config", config), out, "threshold")


def test_focus_help_lists_the_subcommands():
    done = focus("--help")
    assert done.returncode == 0
    for name in ("gen", "sim", "run", "demo"):
        assert f"\n  {name} " in done.stdout
    assert focus().returncode == 2
    assert focus("nonsense").returncode == 2


def test_focus_forwards_to_the_tools(sec_export):
    done = focus("run", "--help")
    assert done.returncode == 0 and "focus-run" in done.stdout and "--compare-dense" in done.stdout
    done = focus("sim", "show", sec_export)
    assert done.returncode == 0 and "1024" not in done.stdout and "256 tokens" in done.stdout
    done = focus("gen", "--list")
    assert done.returncode == 0 and "accelerator" in done.stdout


def test_a_failed_cocotb_test_fails_run_cocotb_outside_pytest_too(tmp_path):
    # cocotb's runner checks results only under pytest; focus.tb.runner judges the results file of
    # this run itself, so a script (focus-run, a benchmark) sees the failure as well.
    (tmp_path / "planted_failure.py").write_text(
        "import cocotb\n\n@cocotb.test()\nasync def always_fails(dut):\n    assert False, 'planted failure'\n")
    code = ("from focus import FocusConfig\nfrom focus.tb.runner import run_cocotb\n"
            "try:\n    run_cocotb('mac', 'planted_failure', FocusConfig())\n"
            "except AssertionError as err:\n    print('FAILED:', err)\nelse:\n    print('PASSED')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env["FOCUS_WAVES"] = "0"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert "FAILED:" in done.stdout and "always_fails: planted failure" in done.stdout, done.stdout + done.stderr


def test_verilator_builds_large_models_at_o0_unless_the_caller_asks_for_speed(tmp_path):
    from focus.tb.toolchain import LARGE_MODEL_BYTES, verilator_make_flags
    small, large = tmp_path / "small.v", tmp_path / "large.v"
    small.write_text("module top; endmodule\n")
    large.write_bytes(b" " * (LARGE_MODEL_BYTES + 1))
    assert "OPT_FAST=-O0" not in verilator_make_flags(small)
    assert "OPT_FAST=-O0" in verilator_make_flags(large)
    assert "OPT_FAST=-O0" not in verilator_make_flags(large, optimize=True)     # the board simulation
    assert "OPT_FAST=-O0" in verilator_make_flags(small, optimize=False)


def test_focus_run_help_says_config_and_set_assert_the_files_configuration(capsys):
    from focus.tb.run import main
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the file's configuration" in text
    assert "embedded default" not in text


def test_focus_run_refuses_an_out_path_that_is_a_folder_before_building(sec_export, tmp_path):
    done = focus_run(sec_export, "--out", tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"focus-run: error: --out='{tmp_path}' is not allowed: a file path (it is a directory)"]


def _documented_dense_cycles(cfg, n_cols, score_rows):
    """docs/export-format.md, summary.dense_cycles (estimate), transcribed."""
    R, cols, M = cfg.rows, cfg.cols, cfg.tile_tokens
    n = cfg.tiles * -(-n_cols // cols) * cfg.chunks
    c, s, e = [], [], []
    for t in range(n):
        c.append(R if t == 0 else max(c[t - 1] + R, e[t - 2] + R + cols - 1 if t >= 2 else 0))
        s.append(c[0] if t == 0 else max(e[t - 1] + 1, c[t]))
        e.append(s[t] + M - 1)
    cycles = e[-1] + R + cols + 5
    if score_rows:
        W = -(-cfg.tokens // cols)
        b = min(cfg.sec_radix_bits, cfg.score_width)
        P = -(-cfg.score_width // b)
        cycles += score_rows * W + P * (W + 2 + (1 << b)) + W + 4
    return cycles


@pytest.mark.parametrize("cfg,n_cols,prune", [
    (FocusConfig(), 8, True),
    (FocusConfig(), 20, False),
    (FocusConfig(frames=2, height=1, width=3, tile_frames=1, cols=16, hidden=16), 40, True),    # passes of 3 < R + cols - 2
    (FocusConfig(frames=2, height=2, width=2, tile_frames=2, hidden=16, vector_size=4, rows=4, cols=3,
                 score_width=5, sec_radix_bits=3), 7, True),
])
def test_dense_cycle_estimate_is_the_documented_formula(cfg, n_cols, prune):
    from focus.sim.accelerator import accelerator_streams
    from focus.sim.job import run_job
    from focus.tb.run import dense_estimate
    rng = np.random.default_rng(3)
    tokens = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.tokens, cfg.hidden))
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, n_cols))
    scores = rng.integers(0, 1 << cfg.score_width, (2, 3, cfg.tokens)) if prune else None
    job = run_job(cfg, tokens, weights, scores=scores, keep=1 if prune else None, prune=prune)
    for mode in ("focus", "dense"):
        streams = accelerator_streams(cfg, job, mode)
        assert dense_estimate(cfg, streams) == _documented_dense_cycles(cfg, n_cols, 6 if prune else 0)


def test_dense_mode_on_a_pruned_export_still_runs_sec_in_the_top(sec_export):
    from focus.sim.accelerator import accelerator_streams
    job = export.read(sec_export)
    streams = accelerator_streams(job.cfg, job, "dense")
    assert job.pruned and streams.command["k"] == len(job.kept) > 0
    assert len(streams.scores) and streams.mask.sum() == len(job.kept)
    assert np.array_equal(streams.tokens[:, :], accelerator_streams(job.cfg, job, "focus").tokens)   # grid before SEC
    assert np.array_equal(streams.expected, job.outputs_dense)
    assert streams.counters == {"unique": CFG.tokens * CFG.chunks, "similar": 0, "zero": 0}
