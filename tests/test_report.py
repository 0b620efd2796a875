"""focus-sim report: the MiniLM compression report and the report on an exported job."""

import json

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import report
from focus.sim.cli import main

CFG = FocusConfig(frames=2, height=4, width=4, tile_frames=2, hidden=384, vector_size=32, rows=32,
                  sec_layers=(1, 3), sec_alphas=("1/2", "1/4"))


@pytest.fixture(scope="module")
def minilm_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    stages = []
    paths = report.report_minilm(CFG, clip="carphone_pristine", sweep=False, out_dir=out,
                                 progress=lambda stage, done, total: stages.append((stage, done, total)))
    return paths, stages


def test_minilm_report_writes_a_table_json_and_plot(minilm_report):
    paths, stages = minilm_report
    md = paths["markdown"].read_text()
    assert md.count("\n| ") >= 6 + 3                     # a row per layer, a row per run
    for layer in range(6):
        assert f"\n| {layer} | " in md
    assert "INT8 + SIC + SEC (Focus)" in md and "Representative error" in md
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths["json"].read_text())
    assert data["config_digest"] == CFG.digest() and data["workload"]["clip"] == "carphone_pristine"
    assert {s[0] for s in stages} >= {"float", "int8", "sic", "focus"} and ("focus", 6, 6) in stages


def test_minilm_report_numbers_are_consistent(minilm_report):
    data = json.loads(minilm_report[0]["json"].read_text())
    focus = data["runs"]["focus"]
    sites = focus["sites"]
    assert len(sites) == 6 * 5
    dense, conc = sum(s["dense_macs"] for s in sites), sum(s["concentrated_macs"] for s in sites)
    assert focus["totals"]["compression"] == pytest.approx(dense / conc)
    assert focus["kept"] == {"1": 16, "3": 8}
    assert data["runs"]["int8"]["vs_float"]["all"]["cos_mean"] > 0.95        # quantization alone
    # SEC removes work on top of SIC
    assert focus["totals"]["compression"] > data["runs"]["sic"]["totals"]["compression"] > 1
    assert focus["rep_error"]["max_abs"] <= 0.5                               # the mean rounds half up
    for layer in data["layers"]:
        assert -1 <= layer["vs_int8"]["cos_min"] <= layer["vs_int8"]["cos_mean"] <= 1


def test_fidelity_is_one_and_zero_for_identical_rows():
    a = np.random.default_rng(0).standard_normal((5, 7))
    f = report.fidelity(a, a)
    assert f["cos_mean"] == pytest.approx(1) and f["cos_min"] == pytest.approx(1) and f["rel_err"] == 0
    assert report.fidelity(-a, a)["cos_mean"] == pytest.approx(-1)


def test_report_on_an_exported_file(tmp_path, capsys):
    job = tmp_path / "job.npz"
    assert main(["export", "--clip", "bikes", "--frames", "2", "--height", "3", "--width", "4", "--hidden", "16",
                 "--vector-size", "4", "--tile-frames", "1", "--scores", "random", "--out", str(job), "--quiet"]) == 0
    assert main(["report", "--from", str(job), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| chunk | unique | similar | zero | sparsity | compression |" in md
    assert md.count("\n| ") == 2 + 4                         # header, rule, one row per chunk
    assert (tmp_path / "r" / "merges.png").read_bytes()[:4] == b"\x89PNG"
    assert "# Focus job `job.npz`" in capsys.readouterr().out


def test_report_rejects_a_grid_the_model_cannot_take(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--hidden", "64", "--vector-size", "8", "--quiet"])
    assert exit_.value.code == 2 and "the MiniLM workload has hidden 384" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "--frames", "32", "--tile-frames", "4", "--quiet"])
    assert "exceed MiniLM's 512 positions" in capsys.readouterr().err
