"""The board top's Verilog on Verilator, driven only through its UART pins by the host library
(focus.fpga.sim): a real-clip job with SEC and back-to-back jobs bit-exact with the golden model,
and a fuzz of the link (corrupt CRC, truncated frames, wrong lengths, unknown commands, random
bytes) answered with errors, never a hang, and the job after it exact."""

import json

import numpy as np
import pytest

from focus import FocusConfig
from focus.fpga.run import check_outputs
from focus.fpga.sim import read_link_result, run_board
from focus.sim import export
from focus.sim.accelerator import accelerator_streams
from focus.sim.job import run_job
from focus.tb.sic_jobs import export_clip, planted_tokens

SMALL = FocusConfig(rows=4, vector_size=4, cols=4, hidden=8, out_features=8, frames=2, height=4, width=4,
                    tile_frames=1)
MEDIUM = FocusConfig(rows=8, vector_size=8, cols=8, hidden=16, out_features=16, frames=3, height=8, width=8,
                     tile_frames=1)


def planted_job(cfg, seed, path, n=None):
    rng = np.random.default_rng(seed)
    weights = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, n or cfg.out_features))
    return export.write(path, run_job(cfg, planted_tokens(cfg, seed), weights))


def check(path, mode, out):
    job = export.read(path)
    got = read_link_result(out)
    check_outputs(job, mode, accelerator_streams(job.cfg, job, mode), got)
    return job, got


@pytest.mark.rtl
def test_real_clip_with_sec_and_back_to_back_jobs_through_the_uart_equal_the_golden_model(tmp_path):
    clip = export_clip(SMALL, "bikes", tmp_path / "bikes.npz", keep_ratio="1/2")
    planted = planted_job(SMALL, 3, tmp_path / "planted.npz")
    jobs = [(clip, "focus"), (planted, "dense"), (planted, "focus"), (clip, "dense")]
    runs = [[str(path), mode, str(tmp_path / f"out{i}.npz")] for i, (path, mode) in enumerate(jobs)]
    run_board(SMALL, "run_jobs", {"jobs": runs})
    for path, mode, out in runs:
        job, got = check(path, mode, out)
        if job.pruned:
            assert np.array_equal(got["kept"], job.kept)
        assert got["link"]["frames"]["TOKENS"] >= SMALL.tiles
    assert read_link_result(runs[0][2])["counters"]["sec_cycles"] > 0


@pytest.mark.rtl
def test_link_fuzz_gets_error_answers_and_the_next_job_is_exact(tmp_path):
    planted = planted_job(SMALL, 5, tmp_path / "planted.npz", n=SMALL.cols + 1)
    log, out = tmp_path / "fuzz.json", tmp_path / "job.npz"
    run_board(SMALL, "link_fuzz", {"job": str(planted), "mode": "focus", "seed": 7, "rounds": 2, "out": str(log),
                                   "out_job": str(out)})
    check(planted, "focus", out)
    cases = json.loads(log.read_text())
    assert len(cases) == 2 * 8 + 1
    # every case but the abandoned job (no error in it) got an ERROR answer, garbage too
    assert all(any(name == "ERROR" for name, _ in case["answers"]) for case in cases
               if "abandoned" not in case["case"])
    assert all(len([name for name, _ in case["answers"] if name == "ERROR"]) == 2 for case in cases
               if "noise" in case["case"])


@pytest.mark.rtl
@pytest.mark.slow(subset=False, reason="minutes of simulation each: FOCUS_SLOW=all runs them")
@pytest.mark.parametrize("seed", [11, 12])
def test_medium_grid_jobs_and_a_longer_fuzz(seed, tmp_path):
    clip = export_clip(MEDIUM, "carphone_pristine", tmp_path / "clip.npz", keep_ratio="3/5", seed=seed)
    log, out = tmp_path / "fuzz.json", tmp_path / "job.npz"
    run_board(MEDIUM, "link_fuzz", {"job": str(clip), "mode": "focus", "seed": seed, "rounds": 4, "out": str(log),
                                    "out_job": str(out)})
    job, got = check(clip, "focus", out)
    assert np.array_equal(got["kept"], job.kept)


def test_fpga_run_refuses_bad_input(tmp_path, capsys):
    from focus.fpga.run import main
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main([str(tmp_path / "junk.npz"), "--sim", "--out", str(tmp_path / "r.npz")]) == 2
    assert "junk.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path / "junk.npz"), "--out", str(tmp_path / "r.npz")])      # --port or --sim is required
    job = planted_job(SMALL, 1, tmp_path / "job.npz")
    assert main([str(job), "--port", str(tmp_path / "no-such-port"), "--out", str(tmp_path / "r.npz")]) == 2
    assert "no-such-port" in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()


def test_fpga_run_on_a_port_that_fails_once_open_is_a_link_failure(tmp_path, capsys):
    """A serial port that opens and then goes away (a pty whose other end closes once the host's
    first frame arrives, as an unplugged adapter does) is a link failure, exit 1, not bad input."""
    import os
    import pty
    import threading
    pytest.importorskip("serial")
    from focus.fpga.run import main
    board_end, host_end = pty.openpty()

    def unplug():
        os.read(board_end, 1)                      # the host's IDENTIFY request begins
        os.close(board_end)
    threading.Thread(target=unplug, daemon=True).start()
    job = planted_job(SMALL, 1, tmp_path / "job.npz")
    try:
        status = main([str(job), "--port", os.ttyname(host_end), "--timeout", "2", "--out", str(tmp_path / "r.npz")])
    finally:
        os.close(host_end)
    err = capsys.readouterr().err
    assert status == 1, err
    assert err.startswith("focus fpga run: error: link: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.rtl
def test_fpga_run_sim_writes_the_result_file_and_reports(tmp_path, capsys):
    from focus.fpga.run import main
    clip = export_clip(SMALL, "bikes", tmp_path / "bikes.npz", keep_ratio="1/2", start=8)
    out = tmp_path / "result.npz"
    assert main([str(clip), "--sim", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "outputs match" in report and "link time" in report and "speed-up over dense" in report
    job = export.read(clip)
    with np.load(out, allow_pickle=False) as f:
        assert {"outputs", "kept", "counters", "mode", "status", "config", "summary"} <= set(f.files)
        assert np.array_equal(f["outputs"], job.outputs) and np.array_equal(f["kept"], job.kept)
        assert str(f["mode"]) == "focus" and str(f["status"]) == "OK"
        assert FocusConfig.from_json(str(f["config"])) == SMALL
        counters = json.loads(str(f["counters"]))
    assert counters["cycles"] > 0 and counters["sec_cycles"] > 0
