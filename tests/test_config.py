"""FocusConfig: every bad value is rejected with a message naming field, value and what is allowed;
good configurations round-trip through JSON."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from focus import ConfigError, FocusConfig


@pytest.mark.parametrize("changes,field,allowed", [
    (dict(vector_size=7), "vector_size", "a divisor of hidden=64"),
    (dict(hidden=60), "vector_size", "a divisor of hidden=60"),
    (dict(threshold=Fraction(1)), "threshold", "strictly between 0 and 1"),
    (dict(threshold="0"), "threshold", "strictly between 0 and 1"),
    (dict(threshold=1.5), "threshold", "strictly between 0 and 1"),
    (dict(threshold="-1/2"), "threshold", "strictly between 0 and 1"),
    (dict(threshold="nine tenths"), "threshold", "a rational number"),
    (dict(threshold="1/100003"), "threshold", "a denominator of at most 65536"),
    (dict(rows=0, vector_size=0), "rows", "an integer from 1 to 256"),
    (dict(cols=-4), "cols", "an integer from 1 to 256"),
    (dict(hidden=0), "hidden", "a positive integer"),
    (dict(frames=0), "frames", "a positive integer"),
    (dict(height=-1), "height", "a positive integer"),
    (dict(width=0), "width", "a positive integer"),
    (dict(tile_frames=0), "tile_frames", "a positive integer"),
    (dict(scatter_lanes=-1), "scatter_lanes", "0 (automatic, from sic_pace_sparsity) or a positive number of lanes"),
    (dict(scatter_lanes=-8), "scatter_lanes", "token rows added per cycle"),
    (dict(scatter_lanes="8"), "scatter_lanes", "an integer"),
    (dict(scatter_lanes=True), "scatter_lanes", "an integer"),
    (dict(acc_width=21), "acc_width", "at least 22 bits"),
    (dict(acc_width=24, hidden=1024), "acc_width", "at least 26 bits"),
    (dict(tile_frames=3), "tile_frames", "a whole number of frames dividing frames=4"),
    (dict(tile_frames=1.5), "tile_frames", "an integer"),
    (dict(rows=16), "rows", "equal to vector_size=8"),
    (dict(representative="median"), "representative", "one of mean, root"),
    (dict(data_width=17), "data_width", "an integer from 2 to 16"),
    (dict(data_width=1), "data_width", "an integer from 2 to 16"),
    (dict(acc_width=65), "acc_width", "an integer from 8 to 64"),
    (dict(score_width=33), "score_width", "an integer from 1 to 32"),
    (dict(sec_radix_bits=0), "sec_radix_bits", "an integer from 1 to 8"),
    (dict(sec_radix_bits=9), "sec_radix_bits", "an integer from 1 to 8"),
    (dict(sec_radix_bits="4"), "sec_radix_bits", "an integer"),
    (dict(rows=512, vector_size=512, hidden=512), "rows", "an integer from 1 to 256"),
    (dict(window=(2, 3, 2)), "window", "each 1 or 2"),
    (dict(window=(1, 1, 1)), "window", "not all 1"),
    (dict(sec_layers=(3, 2, 4, 5, 6)), "sec_layers", "strictly increasing"),
    (dict(sec_alphas=("1/2",)), "sec_alphas", "one keep ratio per entry"),
    (dict(sec_alphas=(0, 0.3, 0.2, 0.15, 0.1)), "sec_alphas", "keep ratios in (0, 1]"),
    (dict(rows=True), "rows", "an integer"),
    (dict(frames=1 << 12, height=1 << 5, width=1 << 5), "frames", "at most 1048576 tokens"),
    (dict(out_features=0), "out_features", "a positive integer"),
    (dict(sic_multipliers=3), "sic_multipliers", "one of 0, 1, 2, 4, 8, 16, 32, 64"),
    (dict(sic_multipliers=24), "sic_multipliers",
     "a divisor of vector_size=8 (element-serial) or P*8 for P dividing the 8 dot products per vector "
     "(8, 16, 32, 64; 64 is full rate)"),
    (dict(sic_multipliers=128), "sic_multipliers", "one of 0, 1, 2, 4, 8, 16, 32, 64"),
    (dict(sic_multipliers=-1), "sic_multipliers", "0 (auto)"),
    (dict(sic_multipliers=64, window=(1, 2, 2)), "sic_multipliers", "(8, 16, 32; 32 is full rate)"),
    (dict(sic_multipliers=18, window=(1, 2, 2), hidden=48, vector_size=6, rows=6), "sic_multipliers",
     "one of 0, 1, 2, 3, 6, 12, 24"),
    (dict(sic_pace_sparsity=1), "sic_pace_sparsity", "a rational in [0, 1)"),
    (dict(sic_pace_sparsity="-1/8"), "sic_pace_sparsity", "a rational in [0, 1)"),
    (dict(sic_pace_sparsity=1.5), "sic_pace_sparsity", "a rational in [0, 1)"),
    (dict(sic_pace_sparsity="most"), "sic_pace_sparsity", "a rational number"),
    (dict(sic_pace_sparsity=True), "sic_pace_sparsity", "a rational number"),
    # systolic array: a 32x32 array whose accumulators cannot hold a hidden-term (K) dot product,
    # INT16 and INT4 operands, a zero-column array
    (dict(rows=32, vector_size=32, cols=32, acc_width=21), "acc_width", "at least 22 bits"),
    (dict(data_width=16, acc_width=37), "acc_width", "at least 38 bits"),
    (dict(rows=4, vector_size=4, cols=8, hidden=12, data_width=4, acc_width=10), "acc_width", "at least 11 bits"),
    (dict(cols=0), "cols", "an integer from 1 to 256"),
])
def test_bad_value_is_rejected_with_field_value_and_allowed(changes, field, allowed):
    with pytest.raises(ConfigError) as info:
        FocusConfig(**changes)
    err = info.value
    assert err.field == field
    assert allowed in str(err)
    assert str(err).startswith(f"{field}=")


def test_accumulator_requirement_is_the_widest_dot_product():
    # hidden pairs of (-2^(d-1))^2 sum to hidden * 2^(2d-2), which needs one bit more than its magnitude.
    for d, hidden in [(8, 64), (8, 4096), (4, 16), (16, 32), (2, 2)]:
        cfg = FocusConfig(data_width=d, hidden=hidden, vector_size=2, rows=2, acc_width=64)
        top = hidden * 2 ** (2 * d - 2)
        assert cfg.acc_width_needed == top.bit_length() + 1
        FocusConfig(data_width=d, hidden=hidden, vector_size=2, rows=2, acc_width=max(8, cfg.acc_width_needed))


def test_unknown_json_field_is_named():
    with pytest.raises(ConfigError, match="colums=8 is not allowed: a known field"):
        FocusConfig.from_dict({"colums": 8})


def test_wrong_config_version_is_rejected():
    with pytest.raises(ConfigError, match="config_version=99"):
        FocusConfig.from_dict({"config_version": 99})


def test_overrides_parse_each_field_type():
    cfg = FocusConfig().with_overrides(["threshold=19/20", "window=1,2,2", "representative=root",
                                        "sec_alphas=1/2,1/4", "sec_layers=0,3", "frames=8"])
    assert cfg.threshold == Fraction(19, 20) and cfg.window == (1, 2, 2)
    assert cfg.representative == "root" and cfg.sec_alphas == (Fraction(1, 2), Fraction(1, 4))
    assert cfg.sec_layers == (0, 3) and cfg.frames == 8
    with pytest.raises(ConfigError, match="frames='four' is not allowed: an integer"):
        FocusConfig().with_overrides(["frames=four"])
    with pytest.raises(ConfigError, match="a known field"):
        FocusConfig().with_overrides(["nonsense=1"])


def test_threshold_accepts_decimal_and_rational_forms_exactly():
    assert FocusConfig(threshold=0.9).threshold == Fraction(9, 10)
    assert FocusConfig(threshold="0.95").threshold == Fraction(19, 20)
    assert FocusConfig(threshold="18/20").threshold == Fraction(9, 10)


def test_sec_digits_cover_the_score_width():
    assert (FocusConfig().sec_digit_bits, FocusConfig().sec_passes) == (4, 4)
    assert (FocusConfig(score_width=7, sec_radix_bits=3).sec_passes) == 3        # 3 + 3 + 1 bits
    assert (FocusConfig(score_width=2, sec_radix_bits=8).sec_digit_bits) == 2    # never wider than a score
    assert FocusConfig().with_overrides(["sec_radix_bits=2"]).sec_passes == 8


def test_sec_takes_a_row_of_cols_scores_per_beat():
    assert (FocusConfig().sec_lanes, FocusConfig().sec_words) == (8, 32)         # 256 tokens
    cfg = FocusConfig(frames=1, height=5, width=5, tile_frames=1)                   # 25 tokens: 3 full words + 1
    assert (cfg.sec_lanes, cfg.sec_words) == (8, 4)
    assert FocusConfig(cols=1, scatter_lanes=1).sec_words == FocusConfig().tokens


def test_candidates_follow_upstream_order():
    assert [c[0] for c in FocusConfig().candidates] == [1, 2, 3, 4, 5, 6, 7]
    assert FocusConfig().candidates[3] == (4, 1, 0, 0)
    assert [c[0] for c in FocusConfig(window=(1, 2, 2)).candidates] == [1, 2, 3]
    assert [c[0] for c in FocusConfig(window=(2, 1, 1)).candidates] == [4]


def test_sic_throughput_settings_state_interval_and_lanes():
    """Element-serial settings (a divisor M of vector_size) take slots * V / M cycles per vector,
    P engines of V multipliers (P dividing the slots) take slots / P; P = slots is full rate."""
    cfg = FocusConfig()
    assert cfg.sic_slots == 8 and cfg.sic_multiplier_settings == (1, 2, 4, 8, 16, 32, 64)
    for m, interval, engines in [(1, 64, 1), (2, 32, 1), (4, 16, 1), (8, 8, 1), (16, 4, 2), (32, 2, 4), (64, 1, 8)]:
        cfg = FocusConfig(sic_multipliers=m)
        assert (cfg.sic_lanes, cfg.sic_interval, cfg.sic_engines) == (m, interval, engines)
        assert cfg.sic_full_rate == (m == 64)
        assert cfg.vector_size // cfg.sic_mean_lanes <= cfg.sic_interval     # representatives keep pace
    assert FocusConfig(sic_multipliers=64).sic_mean_lanes == 8 and FocusConfig(sic_multipliers=32).sic_mean_lanes == 4
    # fewer candidates, fewer slots: window (1, 2, 2) has 3 candidates, 4 slots
    small = FocusConfig(window=(1, 2, 2))
    assert small.sic_slots == 4 and small.sic_multiplier_settings == (1, 2, 4, 8, 16, 32)
    assert FocusConfig(window=(1, 2, 2), sic_multipliers=2).sic_interval == 4 * 8 // 2
    assert FocusConfig(window=(1, 2, 2), sic_multipliers=16).sic_interval == 2
    assert FocusConfig(window=(2, 1, 1), sic_multipliers=16).sic_full_rate        # 1 candidate, 2 slots
    # vector_size 6: divisors 1, 2, 3, 6, then 2 and 4 engines of 6
    odd = FocusConfig(hidden=48, vector_size=6, rows=6)
    assert odd.sic_multiplier_settings == (1, 2, 3, 6, 12, 24, 48)
    assert [FocusConfig(hidden=48, vector_size=6, rows=6, sic_multipliers=m).sic_interval
            for m in odd.sic_multiplier_settings] == [48, 24, 16, 8, 4, 2, 1]


def test_default_sic_setting_keeps_pace_at_the_design_sparsity():
    """Per tile-chunk the array makes ceil(out_features / cols) passes over the (1 - sparsity) share
    of unique vectors; SIC spends its interval on every vector. The default picks the fewest
    multipliers whose interval is at most passes * (1 - sic_pace_sparsity), exactly; full rate
    when none is."""
    cfg = FocusConfig()
    assert cfg.out_features == 3 * cfg.hidden and cfg.sic_pace_sparsity == Fraction(7, 8)
    assert cfg.array_passes == 24 and cfg.sic_lanes == 32 and cfg.sic_interval == 2     # 24 / 8 = 3 >= 2
    assert cfg.sic_interval <= cfg.array_passes * (1 - cfg.sic_pace_sparsity)
    assert FocusConfig(sic_pace_sparsity=0).sic_lanes == 4                      # dense: interval 16 <= 24 < 32
    assert FocusConfig(sic_pace_sparsity="5/6").sic_lanes == 16                 # 24 / 6 = 4: exactly on it
    assert FocusConfig(sic_pace_sparsity="0.834").sic_lanes == 32               # just past it: 3.98 < 4
    assert FocusConfig(sic_pace_sparsity="23/24").sic_full_rate                 # 1: full rate exactly keeps pace
    assert FocusConfig(sic_pace_sparsity="24/25").sic_full_rate                 # 0.96: nothing does, full rate
    assert FocusConfig(out_features=64, sic_pace_sparsity=0).sic_lanes == 8    # the rule before sparsity
    assert FocusConfig(out_features=256).sic_lanes == 16                        # 32 / 8 = 4
    assert FocusConfig(out_features=60).array_passes == 8
    for n in (1, 7, 8, 9, 33, 100, 192, 1000):
        for sparsity in (Fraction(0), Fraction(1, 2), Fraction(7, 8), Fraction(99, 100)):
            cfg = FocusConfig(out_features=n, sic_pace_sparsity=sparsity)
            budget = cfg.array_passes * (1 - sparsity)
            fits = [m for m in cfg.sic_multiplier_settings if Fraction(8 * 8, m) <= budget]
            assert cfg.sic_lanes == (fits[0] if fits else 64)


def test_scatter_lanes_are_token_rows_per_cycle_and_auto_follows_the_pace_sparsity():
    """Any positive lane count is legal (no longer tied to cols); 0 is the smallest L with
    L >= 1 / (1 - sic_pace_sparsity), exactly, capped at the tile's token count."""
    assert FocusConfig().scatter_lanes == 0 and FocusConfig().scatter_lane_count == 8     # 7/8
    for lanes in (1, 2, 3, 5, 7, 8, 13, 300):
        assert FocusConfig(scatter_lanes=lanes).scatter_lane_count == lanes
    assert FocusConfig(sic_pace_sparsity=0).scatter_lane_count == 1
    assert FocusConfig(sic_pace_sparsity="1/2").scatter_lane_count == 2                   # exactly 2
    assert FocusConfig(sic_pace_sparsity="501/1000").scatter_lane_count == 3              # just past 2
    assert FocusConfig(sic_pace_sparsity="2/3").scatter_lane_count == 3
    assert FocusConfig(sic_pace_sparsity="0.9").scatter_lane_count == 10
    assert FocusConfig(sic_pace_sparsity="0.82").scatter_lane_count == 6                  # 5.56 -> 6
    tiny = dict(frames=1, tile_frames=1, height=2, width=2)                               # 4 tokens a tile
    assert FocusConfig(sic_pace_sparsity="99/100", **tiny).scatter_lane_count == 4
    assert FocusConfig(scatter_lanes=3, cols=8).scatter_lane_count == 3                   # not a divisor of cols
    assert FocusConfig().with_overrides(["scatter_lanes=5"]).scatter_lane_count == 5
    for den in (2, 3, 7, 8, 10, 1000):
        for num in range(0, den, max(1, den // 7)):
            cfg = FocusConfig(sic_pace_sparsity=Fraction(num, den))
            lanes = cfg.scatter_lane_count
            assert lanes * (1 - cfg.sic_pace_sparsity) >= 1 or lanes == cfg.tile_tokens
            assert lanes == 1 or (lanes - 1) * (1 - cfg.sic_pace_sparsity) < 1


def test_sic_fields_round_trip_and_parse_from_overrides():
    cfg = FocusConfig().with_overrides(["sic_multipliers=16", "out_features=200", "sic_pace_sparsity=0.9"])
    assert cfg.sic_multipliers == 16 and cfg.out_features == 200 and cfg.sic_pace_sparsity == Fraction(9, 10)
    assert FocusConfig.from_json(cfg.to_json()) == cfg
    assert '"sic_pace_sparsity": "9/10"' in cfg.to_json()
    assert FocusConfig(sic_pace_sparsity=0.75).sic_pace_sparsity == Fraction(3, 4)
    assert FocusConfig.from_dict({"sic_pace_sparsity": "3/4"}).sic_lanes == 16


@st.composite
def configs(draw):
    v = draw(st.integers(1, 64))
    hidden = v * draw(st.integers(1, 16))
    d = draw(st.integers(2, 16))
    need = FocusConfig(rows=v, vector_size=v, hidden=hidden, data_width=d, acc_width=64).acc_width_needed
    tile_frames = draw(st.integers(1, 4))
    lanes = draw(st.integers(0, 16))
    window = draw(st.sampled_from([(2, 2, 2), (1, 2, 2), (2, 1, 1)]))
    slots = 1 + len(FocusConfig(window=window).candidates)
    den = draw(st.sampled_from([1, 7, 100, 1 << 16]))
    return FocusConfig(
        rows=v, vector_size=v, hidden=hidden, data_width=d,
        acc_width=draw(st.integers(max(8, need), 64)),
        frames=tile_frames * draw(st.integers(1, 4)), tile_frames=tile_frames,
        height=draw(st.integers(1, 32)), width=draw(st.integers(1, 32)),
        threshold=Fraction(draw(st.integers(1, 200)), 201), window=window,
        representative=draw(st.sampled_from(["mean", "root"])), cols=draw(st.integers(1, 64)),
        out_features=draw(st.integers(1, 4096)),
        sic_multipliers=draw(st.sampled_from([0, 1, v, 2 * v, slots // 2 * v, slots * v])),
        sic_pace_sparsity=Fraction(draw(st.integers(0, den - 1)), den),
        scatter_lanes=lanes, score_width=draw(st.integers(1, 32)), sec_radix_bits=draw(st.integers(1, 8)))


@given(configs())
@settings(max_examples=200, deadline=None)
def test_json_round_trip_is_lossless(cfg):
    text = cfg.to_json()
    back = FocusConfig.from_json(text)
    assert back == cfg and back.to_json() == text and back.digest() == cfg.digest()


def _cli_parser():
    import argparse
    from focus.cli import add_config_arguments
    parser = argparse.ArgumentParser(prog="tool")
    add_config_arguments(parser)
    return parser


def test_config_arguments_apply_file_then_shortcuts_then_set(tmp_path):
    from focus.cli import config_from_args
    path = tmp_path / "cfg.json"
    path.write_text(FocusConfig(frames=2, tile_frames=1, data_width=6).to_json())
    parser = _cli_parser()
    args = parser.parse_args(["--config", str(path), "--set", "frames=6"])
    cfg = config_from_args(parser, args, overrides=["frames=4", "height=4"])
    assert (cfg.frames, cfg.height, cfg.data_width) == (6, 4, 6)
    base = FocusConfig(hidden=32)
    assert config_from_args(parser, parser.parse_args([]), base=base) is base
    assert config_from_args(parser, parser.parse_args(["--config", str(path)]), base=base).hidden == 64


@pytest.mark.parametrize("argv,message", [
    (["--set", "rows=0"], "rows=0 is not allowed"),
    (["--set", "rows"], "--set='rows' is not allowed: FIELD=VALUE"),
    (["--config", "missing.json"], "--config='missing.json' is not allowed: a readable JSON file (No such file"),
    (["--config", "bad.json"], "valid JSON"),
    (["--config", "latin1.json"], "a UTF-8 JSON file"),
])
def test_config_arguments_report_bad_input_through_the_parser(argv, message, tmp_path, monkeypatch, capsys):
    from focus.cli import config_from_args
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{frames: 4")
    (tmp_path / "latin1.json").write_bytes(b'{"representative": "r\xe9"}')
    parser = _cli_parser()
    with pytest.raises(SystemExit) as info:
        config_from_args(parser, parser.parse_args(argv))
    assert info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("assignments,field,value,allowed", [
    (["hidden=63"], "hidden", 63, "a multiple of vector_size=8"),
    (["frames=3"], "frames", 3, "a multiple of tile_frames=2"),
    (["vector_size=16"], "vector_size", 16, "equal to rows=8"),
    # the user set the field the rule names: the message is the constructor's
    (["hidden=63", "vector_size=8"], "vector_size", 8, "a divisor of hidden=63"),
    (["tile_frames=3"], "tile_frames", 3, "a whole number of frames dividing frames=4"),
    (["rows=16"], "rows", 16, "equal to vector_size=8"),
])
def test_set_breaking_a_cross_field_rule_names_the_field_that_was_set(assignments, field, value, allowed):
    with pytest.raises(ConfigError) as info:
        FocusConfig().with_overrides(assignments)
    err = info.value
    assert (err.field, err.value) == (field, value)
    assert str(err).startswith(f"{field}={value!r} is not allowed: {allowed}")
