"""focus.gen.resources: Yosys synth_ecp5 cell counts for the benchmarks, cached by Verilog digest."""

import pytest

from focus.gen import resources

COUNTER = """module counter(input clk, input rst, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else q <= q + 1;
endmodule
"""


@pytest.fixture
def counter(tmp_path, monkeypatch):
    monkeypatch.setenv("FOCUS_BUILD_DIR", str(tmp_path / "build"))
    path = tmp_path / "dir with space" / "counter.v"
    path.parent.mkdir()
    path.write_text(COUNTER)
    return path


def test_counter_resources_are_eight_flip_flops_and_a_carry_chain(counter, monkeypatch):
    got = resources.ecp5_resources(counter, "counter")
    assert got["FF"] == 8 and got["carry"] >= 1 and got["DSP"] == got["BRAM"] == got["LUTRAM"] == 0
    assert resources.synth_ecp5_cells(counter, "counter")["TRELLIS_FF"] == 8
    monkeypatch.setattr(resources.subprocess, "run", None)           # cached: Yosys does not run again
    assert resources.ecp5_resources(counter, "counter") == got


def test_synthesis_cache_names_the_file_a_synthesis_writes(counter):
    # the benchmarks ask it whether a synthesis would run Yosys (the 32x32 tops)
    for flow in ("abc", "abc9"):
        assert not resources.synthesis_cache(counter, "counter", flow=flow).exists()
    resources.synth_ecp5_cells(counter, "counter", flow="abc")
    assert resources.synthesis_cache(counter, "counter", flow="abc").exists()
    assert not resources.synthesis_cache(counter, "counter", flow="abc9").exists()


def test_synthesis_failure_names_the_top_and_the_flow(counter):
    with pytest.raises(RuntimeError, match=r"yosys failed on missing \(abc flow\)"):
        resources.synth_ecp5_cells(counter, "missing", flow="abc")
    with pytest.raises(ValueError, match="flow='abc10' is not allowed"):
        resources.synth_ecp5_cells(counter, "counter", flow="abc10")
