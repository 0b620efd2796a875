"""focus demo end to end on a tiny grid: a real clip exported, the accelerator's Verilog generated,
dense and Focus run on Verilator, both bit-exact, and the report's four files written."""

import json

import pytest

from focus.tb import demo

TINY = ["--frames", "2", "--height", "4", "--width", "4", "--set", "hidden=16", "--set", "out_features=16",
        "--set", "tile_frames=1"]


@pytest.mark.slow
@pytest.mark.rtl
def test_demo_on_a_tiny_grid_reports_bit_exact_dense_and_focus_runs(tmp_path, capsys):
    out = tmp_path / "demo"
    status = demo.main([*TINY, "--out", str(out)])
    captured = capsys.readouterr()
    if status == 2 and "no simulator" in captured.err:
        pytest.skip(captured.err.strip())
    assert status == 0, captured.err
    for name in ("report.md", "report.json", "merges.png", "cycles.png", "accelerator.v", "job.npz"):
        assert (out / name).stat().st_size > 0, name
    for name in ("merges.png", "cycles.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((out / "report.json").read_text())
    assert report["bit_exact"] is True
    assert report["runs"]["dense"]["exact"] and report["runs"]["focus"]["exact"]
    dense, focus = report["runs"]["dense"]["counters"], report["runs"]["focus"]["counters"]
    for counters in (dense, focus):
        assert sum(counters[k] for k in demo.CAUSES) == counters["cycles"]
    assert focus["sec_cycles"] > 0 and dense["sec_cycles"] == 0
    assert focus["array_busy"] < dense["array_busy"]
    assert report["speedup"] == pytest.approx(dense["cycles"] / focus["cycles"])
    text = (out / "report.md").read_text()
    assert "| dense | yes |" in text and "| Focus | yes |" in text
    assert "bit-exact" in captured.out


def test_demo_refuses_a_bad_configuration_value(capsys):
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--set", "threshold=2"])
    assert exit_.value.code == 2
    assert "threshold" in capsys.readouterr().err


def test_demo_help_names_its_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--clip", "--frames", "--height", "--width", "--out", "--set"):
        assert option in text
