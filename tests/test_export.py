"""Test-vector files (focus.sim.export, focus-sim export/show): the documented format, round trips,
and clear errors for files that are not what they claim."""

import json
import re
from fractions import Fraction

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim import export, sec
from focus.sim.cli import main
from focus.sim.job import run_job
from focus.sim.sic import concentrate
from focus.sim.video import clip_tokens

CFG = FocusConfig(frames=2, height=4, width=5, hidden=16, vector_size=4, rows=4, tile_frames=1)


def _job(cfg=CFG, prune=False, scores=True, clip="carphone_pristine"):
    rng = np.random.default_rng(7)
    X = clip_tokens(cfg, clip).tokens
    X[3] = 0                                                       # a zero token
    W = rng.integers(cfg.data_min, cfg.data_max + 1, (cfg.hidden, 6))
    S = rng.integers(0, 4, (2, 3, cfg.tokens)) if scores else None   # heavy ties
    return run_job(cfg, X, W, scores=S, keep=7 if scores else None, prune=prune, meta={"note": "test"})


def _same(a, b):
    for name in [*export.ARRAYS, *export.OPTIONAL]:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert np.array_equal(x, y), name
    assert a.cfg == b.cfg and a.counters == b.counters and a.meta == b.meta and a.pruned == b.pruned


@pytest.mark.parametrize("prune,scores,partials,compress", [(False, True, True, None), (True, True, True, False),
                                                        (False, False, False, True)])
def test_write_then_read_gives_back_the_same_job(tmp_path, prune, scores, partials, compress):
    job = _job(prune=prune, scores=scores)
    path = export.write(tmp_path / "job.npz", job, partials=partials, compress=compress)
    with np.load(path, allow_pickle=False) as f:
        assert ("partials" in f.files) == partials
    _same(job, export.read(path))                 # without partials in the file, read() recomputes them
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_file_holds_the_documented_fixed_keys_for_plain_numpy_readers(tmp_path):
    job = _job()
    path = export.write(tmp_path / "job.npz", job)
    with np.load(path, allow_pickle=False) as f:
        assert str(f["format"]) == "focus-sim-export" and int(f["format_version"]) == export.FORMAT_VERSION == 1
        cfg = json.loads(str(f["config"]))
        assert (cfg["frames"], cfg["height"], cfg["width"], cfg["hidden"], cfg["vector_size"]) == (2, 4, 5, 16, 4)
        tokens, ui = f["tokens"], f["unique_index"]
        assert tokens.shape == (CFG.tokens, CFG.hidden) and np.issubdtype(tokens.dtype, np.signedinteger)
        assert ui.shape == (CFG.chunks, CFG.tokens) and np.issubdtype(ui.dtype, np.signedinteger)
        header = json.loads(str(f["header"]))
        assert header["shape"]["U"] == int(f["unique_offsets"][-1])


def test_unique_index_numbers_unique_vectors_in_first_appearance_order_with_minus_one_for_zero(tmp_path):
    job = export.read(export.write(tmp_path / "job.npz", _job()))
    V = CFG.vector_size
    for c in range(CFG.chunks):
        ui = job.unique_index[c]
        zero = ~job.tokens[:, c * V:(c + 1) * V].any(axis=1)
        assert np.array_equal(ui == -1, zero)
        seen = ui[ui >= 0]
        first = seen[np.sort(np.unique(seen, return_index=True)[1])]
        assert first.tolist() == list(range(len(first)))          # 0, 1, 2, ... by first appearance
        assert np.array_equal(ui, concentrate(CFG, job.tokens).unique_index[c])
    assert job.unique_index[:, 3].tolist() == [-1] * CFG.chunks


def test_ragged_arrays_split_by_offsets_reproduce_the_gemm(tmp_path):
    job = export.read(export.write(tmp_path / "job.npz", _job()))
    V = CFG.vector_size
    Y = np.zeros_like(job.outputs)
    for c in range(CFG.chunks):
        reps, roots = job.chunk("representatives", c), job.chunk("unique_roots", c)
        assert np.array_equal(job.chunk("partials", c), reps @ job.weights[c * V:(c + 1) * V])
        assert np.array_equal(job.chunk("unique_vectors", c), job.tokens[roots, c * V:(c + 1) * V])
        assert np.array_equal(np.bincount(job.unique_index[c][job.unique_index[c] >= 0]), job.chunk("group_size", c))
        ui = job.unique_index[c]
        Y[ui >= 0] += job.chunk("partials", c)[ui[ui >= 0]]
    assert np.array_equal(Y, job.outputs)
    assert np.array_equal(job.outputs_dense, job.tokens @ job.weights)


def test_pruned_job_zeroes_every_token_outside_the_kept_set(tmp_path):
    job = export.read(export.write(tmp_path / "job.npz", _job(prune=True)))
    assert len(job.kept) == 7 and np.array_equal(job.kept, sec.top_k(job.importance, 7))
    dropped = np.setdiff1d(np.arange(CFG.tokens), job.kept)
    assert not job.tokens[dropped].any() and (job.unique_index[:, dropped] == -1).all()
    assert np.array_equal(job.tokens[job.kept], job.tokens_before_sec[job.kept])
    assert not job.outputs[dropped].any()


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    np.savez(dst, **arrays)
    return dst


@pytest.mark.parametrize("changes,match", [
    ({"format_version": np.array(2)}, "format_version 2 is not supported; this focus reads version 1"),
    ({"format": np.array("something-else")}, "format is 'something-else'"),
    ({"format": None}, "no 'format' entry"),
    ({"unique_index": None}, "array 'unique_index' is missing"),
    ({"tokens": np.zeros((3, 16), np.int8)}, r"tokens has shape \(3, 16\), expected \(40, 16\)"),
    ({"config": np.array('{"frames": 0}')}, "bad configuration: frames=0 is not allowed"),
])
def test_reading_a_damaged_or_foreign_file_names_the_problem(tmp_path, changes, match):
    good = export.write(tmp_path / "good.npz", _job())
    bad = _rewrite(good, tmp_path / "bad.npz", **changes)
    with pytest.raises(export.ExportError, match=match):
        export.read(bad)


def test_reading_something_that_is_not_an_npz_is_an_error(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(export.ExportError, match="not a NumPy .npz archive"):
        export.read(tmp_path / "x.npz")
    with pytest.raises(export.ExportError, match="no such file"):
        export.read(tmp_path / "missing.npz")


def test_cli_export_with_the_documented_options_writes_a_readable_file(tmp_path, capsys):
    out = tmp_path / "bikes.npz"
    assert main(["export", "--clip", "bikes", "--frames", "2", "--height", "3", "--width", "4", "--hidden", "32",
                 "--vector-size", "8", "--threshold", "4/5", "--tile-frames", "1", "--seed", "3",
                 "--scores", "random", "--out", str(out), "--quiet"]) == 0
    job = export.read(out)
    assert (job.cfg.frames, job.cfg.height, job.cfg.width, job.cfg.hidden, job.cfg.vector_size, job.cfg.rows) == \
        (2, 3, 4, 32, 8, 8)
    assert job.cfg.threshold == Fraction(4, 5) and job.cfg.tile_frames == 1 and job.meta["seed"] == 3
    v = clip_tokens(job.cfg, "bikes", seed=3)
    assert np.array_equal(job.tokens, v.tokens) and job.meta["scale"] == v.scale
    assert np.array_equal(job.unique_index, concentrate(job.cfg, v.tokens).unique_index)
    assert main(["show", str(out)]) == 0
    assert "grid 2x3x4 = 24 tokens" in capsys.readouterr().out


@pytest.mark.parametrize("argv,match", [
    (["--vector-size", "7"], "vector_size=7 is not allowed: a divisor of hidden=64"),
    (["--clip", "nope"], "invalid choice: 'nope'"),
    (["--frames", "3"], "frames=3 is not allowed: a multiple of tile_frames=2"),
    (["--start", "249", "--clip", "bikes"], "'bikes' is too short: it has 250 frames"),
    (["--keep-ratio", "3/2"], "--keep-ratio=3/2 is not allowed: a number in (0, 1]"),
    (["--scores", "none", "--prune"], "--prune and --keep need SEC scores"),
    (["--scores", "random", "--keep", "0"], "--keep=0 is not allowed: an integer from 1 to the token count 256"),
])
def test_cli_export_reports_bad_options_as_usage_errors(tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--out", str(tmp_path / "x.npz"), "--quiet", *argv])
    assert exit_.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()



@pytest.mark.parametrize("command", ["export", "show", "report"])
def test_cli_help_names_only_options_the_command_has(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = re.sub(r"-\n\s+", "-", capsys.readouterr().out)          # words argparse wrapped at a hyphen
    text = re.sub(r"focus-gen --[a-z-]+", "", text)                  # another tool's option
    usage = text.split("\n\n")[0]
    options = set(re.findall(r"--[a-z][a-z-]*", usage))
    assert set(re.findall(r"--[a-z][a-z-]*", text)) <= options | {"--help"}

@pytest.mark.parametrize("change,match", [
    ({"tokens": np.zeros((CFG.tokens - 1, CFG.hidden), int)}, r"tokens has shape 39x16, expected 40x16 \(frames\*height\*width"),
    ({"tokens": np.zeros((CFG.tokens, CFG.hidden))}, "tokens must be an integer array"),
    ({"weights": np.zeros((15, 4), int)}, re.escape("weights has shape 15x4, expected 16x?")),
    ({"weights": np.full((16, 4), -129)}, r"weights holds values in \[-129, -129\], outside the signed 8-bit range"),
    ({"weights": np.zeros((16, 0), int)}, "no output columns"),
    ({"scores": np.zeros((2, 3, 5), int)}, re.escape("scores has shape 2x3x5, expected ?x?x40")),
    ({"scores": np.full((2, 3, 40), -1)}, "outside the unsigned 16-bit range"),
    ({"scores": np.ones((2, 3, 40), int), "keep": 41}, "k=41 is not allowed: an integer from 1 to the token count 40"),
    ({"prune": True}, "SEC needs attention scores"),
])
def test_run_job_rejects_bad_inputs_clearly(change, match):
    args = {"tokens": np.zeros((CFG.tokens, CFG.hidden), int), "weights": np.zeros((CFG.hidden, 4), int)}
    args.update(change)
    tokens, weights = args.pop("tokens"), args.pop("weights")
    with pytest.raises(ValueError, match=match):
        run_job(CFG, tokens, weights, **args)


# ------------------------------------------------------------------ stored types and strict JSON

def _small_cli_export(tmp_path, *extra, name="job.npz"):
    out = tmp_path / name
    assert main(["export", "--clip", "bikes", "--frames", "2", "--height", "3", "--width", "3", "--hidden", "16",
                 "--vector-size", "4", "--tile-frames", "2", "--scores", "random", "--out", str(out), "--quiet",
                 *extra]) == 0
    return out


@pytest.mark.parametrize("acc_width,dtype", [(16, np.int32), (32, np.int32), (40, np.int64)])
def test_acc_arrays_are_stored_as_int32_at_least_and_int64_above_32_bits(tmp_path, acc_width, dtype):
    out = _small_cli_export(tmp_path, "--set", "data_width=4", "--set", f"acc_width={acc_width}")
    with np.load(out, allow_pickle=False) as f:
        for name in ("outputs", "outputs_dense", "partials"):
            assert f[name].dtype == dtype, name
        assert f["tokens"].dtype == np.int8 and f["unique_index"].dtype == np.int32


def test_reader_still_accepts_acc_arrays_in_narrower_signed_types(tmp_path):
    good = _small_cli_export(tmp_path, "--set", "data_width=4", "--set", "acc_width=16")     # as files had them
    with np.load(good, allow_pickle=False) as f:
        narrow = {name: f[name].astype(np.int16) for name in ("outputs", "outputs_dense", "partials")}
    old = _rewrite(good, tmp_path / "old.npz", **narrow)
    _same(export.read(good), export.read(old))


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_header_is_strict_json_with_null_compression_when_no_vector_is_left(tmp_path, capsys):
    out = _small_cli_export(tmp_path, "--height", "2", "--width", "2", "--hidden", "4", "--set", "data_width=2",
                            "--set", "acc_width=8", "--keep", "1", "--prune", "--seed", "10")
    with np.load(out, allow_pickle=False) as f:
        header = _strict_json(str(f["header"]))
    assert header["shape"]["U"] == 0 and header["counters"]["unique"] == 0
    assert header["counters"]["compression"] is None
    assert export.read(out).counters["compression"] is None
    assert main(["show", str(out)]) == 0
    assert "0 concentrated (n/a)" in capsys.readouterr().out


def test_header_compression_is_dense_over_concentrated_macs_when_vectors_are_left(tmp_path):
    with np.load(export.write(tmp_path / "job.npz", _job()), allow_pickle=False) as f:
        c = _strict_json(str(f["header"]))["counters"]
    assert c["compression"] == pytest.approx(c["dense_macs"] / c["concentrated_macs"])


def test_header_with_a_non_finite_number_is_never_written(tmp_path):
    job = _job()
    job.meta["scale"] = float("nan")
    with pytest.raises(ValueError, match="JSON compliant"):
        export.write(tmp_path / "job.npz", job)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ damaged files: one-line refusals

def _truncated(tmp_path):
    good = export.write(tmp_path / "good.npz", _job())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:1000])
    return cut


def _pickled(tmp_path):
    good = export.write(tmp_path / "good.npz", _job())
    with np.load(good, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["tokens"] = np.array([{"a": 1}, None], dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    return tmp_path / "pickled.npz"


def _damaged_member(tmp_path):
    good = export.write(tmp_path / "good.npz", _job(), compress=False)
    data = bytearray(good.read_bytes())
    at = data.index(b"\x93NUMPY", data.index(b"tokens.npy")) + 200     # inside the tokens array's data
    data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])       # the member's CRC-32 no longer matches
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    return tmp_path / "crc.npz"


def _inconsistent_outputs(tmp_path):
    good = export.write(tmp_path / "good.npz", _job())
    with np.load(good, allow_pickle=False) as f:
        outputs = f["outputs"].copy()
    outputs[5, 3] += 1
    return _rewrite(good, tmp_path / "outputs.npz", outputs=outputs)


def _inconsistent_unique_index(tmp_path):
    good = export.write(tmp_path / "good.npz", _job())
    with np.load(good, allow_pickle=False) as f:
        ui = f["unique_index"].copy()
    ui[1, 4] = 10_000
    return _rewrite(good, tmp_path / "unique_index.npz", unique_index=ui)


@pytest.mark.parametrize("make,words", [
    (_truncated, ["cut.npz", "not a NumPy .npz archive, or a corrupt one"]),
    (_pickled, ["pickled.npz", "corrupt file: cannot read 'tokens'", "allow_pickle=False"]),
    (_damaged_member, ["crc.npz", "corrupt file: cannot read 'tokens'"]),
])
def test_reading_a_corrupt_archive_is_an_export_error(tmp_path, make, words):
    with pytest.raises(export.ExportError) as info:
        export.read(make(tmp_path))
    for word in words:
        assert word in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [np.array(1.7), np.array("1"), np.array(True), np.array([1]), np.array(1.0)])
def test_format_version_must_be_an_integer_scalar(tmp_path, value):
    good = export.write(tmp_path / "good.npz", _job())
    bad = _rewrite(good, tmp_path / "bad.npz", format_version=value)
    with pytest.raises(export.ExportError, match="format_version must be an integer scalar"):
        export.read(bad)


@pytest.mark.parametrize("value", [np.array(1, np.int32), np.array(1, np.uint8), np.array(1, np.int64)])
def test_format_version_one_in_any_integer_type_is_read(tmp_path, value):
    good = export.write(tmp_path / "good.npz", _job())
    export.read(_rewrite(good, tmp_path / "ok.npz", format_version=value))


def _one_line_refusal(capsys, prog, *words):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), err
    for word in words:
        assert word in lines[0], lines[0]


_BAD_FILES = [(_truncated, "corrupt"), (_pickled, "corrupt"), (_damaged_member, "corrupt"),
              (_inconsistent_outputs, "inconsistent file: outputs[5, 3]"),
              (_inconsistent_unique_index, "inconsistent file: unique_index[1, 4] is 10000")]


@pytest.mark.parametrize("make,words", _BAD_FILES)
def test_show_refuses_a_corrupt_or_inconsistent_file_in_one_line(tmp_path, capsys, make, words):
    bad = make(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["show", str(bad)])
    assert exit_.value.code == 2
    _one_line_refusal(capsys, "focus-sim show", bad.name, words)


@pytest.mark.parametrize("make,words", _BAD_FILES)
def test_report_from_refuses_a_corrupt_or_inconsistent_file_and_writes_nothing(tmp_path, capsys, make, words):
    bad = make(tmp_path)
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--from", str(bad), "--out", str(out), "--quiet"])
    assert exit_.value.code == 2
    _one_line_refusal(capsys, "focus-sim report", bad.name, words)
    assert not out.exists()


@pytest.mark.parametrize("make,words", _BAD_FILES)
def test_fpga_run_refuses_a_corrupt_or_inconsistent_file_before_building(tmp_path, capsys, monkeypatch, make, words):
    from focus.fpga import run
    monkeypatch.setattr(run, "_in_simulation", lambda *a: pytest.fail("the board top was built for a bad file"))
    bad = make(tmp_path)
    out = tmp_path / "r.npz"
    assert run.main([str(bad), "--sim", "--out", str(out)]) == 2
    _one_line_refusal(capsys, "focus fpga run", bad.name, words)
    assert not out.exists()


def test_focus_run_and_fpga_run_refuse_more_n_tiles_than_the_command_carries(tmp_path, capsys, monkeypatch):
    """The top's command has 16 bits of N-tiles: a job of 65536 N-tiles is refused in one line by
    both runners, before anything is built, and nothing is written."""
    from focus.fpga import run as fpga_run
    from focus.tb import run as tb_run
    monkeypatch.setattr(fpga_run, "_in_simulation", lambda *a: pytest.fail("the board top was built"))
    cfg = FocusConfig(rows=2, vector_size=2, cols=1, hidden=2, out_features=1, frames=2, height=1, width=1,
                      tile_frames=2, scatter_lanes=1)
    rng = np.random.default_rng(0)
    job = run_job(cfg, rng.integers(-3, 4, (cfg.tokens, cfg.hidden)), rng.integers(-3, 4, (cfg.hidden, 65536)))
    wide = export.write(tmp_path / "wide.npz", job, partials=False)
    out = tmp_path / "r.npz"
    assert fpga_run.main([str(wide), "--sim", "--out", str(out)]) == 2
    _one_line_refusal(capsys, "focus fpga run", "65536 N-tiles; the top takes at most 65535")
    assert tb_run.main([str(wide), "--out", str(out)]) == 2
    _one_line_refusal(capsys, "focus-run", "65536 N-tiles; the top takes at most 65535")
    assert not out.exists()


def test_consistency_check_accepts_what_run_job_wrote(tmp_path):
    for prune in (False, True):
        path = export.write(tmp_path / "job.npz", _job(prune=prune), partials=not prune)
        export.check_consistent(export.read(path), path)


# ------------------------------------------------------------------ export options

def _export_refused(tmp_path, capsys, argv, message, out=None):
    out = out or tmp_path / "x.npz"
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--frames", "2", "--height", "2", "--width", "2", "--hidden", "8", "--vector-size", "4",
              "--tile-frames", "1", "--scores", "random", "--quiet", "--out", str(out), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"focus-sim export: error: {message}", err
    assert not (out.is_file() or list(tmp_path.glob("**/*.npz")))


@pytest.mark.parametrize("argv,message", [
    (["--out-features", "0"], "--out-features=0 is not allowed: a positive number of weight columns"),
    (["--out-features", "-5"], "--out-features=-5 is not allowed: a positive number of weight columns"),
    (["--seed", "-1"], "--seed=-1 is not allowed: an integer of at least 0"),
    (["--source", "minilm", "--hidden", "384", "--out-features", "5000"],
     "--out-features=5000 is not allowed: from 1 to 1152 (MiniLM GEMM qkv has 1152 output columns; "
     "the first N are taken)"),
    (["--source", "minilm", "--gemm", "ffn_down", "--hidden", "1536", "--vector-size", "8", "--out-features", "385"],
     "--out-features=385 is not allowed: from 1 to 384 (MiniLM GEMM ffn_down has 384 output columns; "
     "the first N are taken)"),
])
def test_export_refuses_bad_option_values_naming_option_value_and_allowed(tmp_path, capsys, argv, message):
    _export_refused(tmp_path, capsys, argv, message)


def test_export_out_features_sets_the_jobs_columns_but_not_the_configuration(tmp_path):
    job = export.read(_small_cli_export(tmp_path, "--out-features", "5"))
    assert job.weights.shape == (16, 5) and job.outputs.shape == (18, 5)
    assert job.cfg.out_features == FocusConfig().out_features
    assert export.read(_small_cli_export(tmp_path, name="default.npz")).weights.shape[1] == FocusConfig().cols


def test_export_refuses_an_out_path_that_is_a_folder(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    _export_refused(tmp_path, capsys, [], f"--out='{tmp_path / 'folder'}' is not allowed: a file path (it is a "
                                          "directory)", out=tmp_path / "folder")


def test_export_refuses_an_out_path_under_a_file(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    _export_refused(tmp_path, capsys, [], f"--out='{tmp_path / 'plain' / 'x.npz'}' is not allowed: a path under "
                                          f"folders ({tmp_path / 'plain'} is not a directory)",
                    out=tmp_path / "plain" / "x.npz")


def test_export_default_path_is_build_export_clip_and_the_config_digest(tmp_path, monkeypatch, capsys):
    import hashlib
    monkeypatch.setenv("FOCUS_BUILD_DIR", str(tmp_path / "b"))
    assert main(["export", "--clip", "bikes", "--frames", "2", "--height", "2", "--width", "2", "--hidden", "8",
                 "--vector-size", "4", "--tile-frames", "1", "--scores", "none", "--quiet"]) == 0
    printed = capsys.readouterr().out.strip()
    (path,) = (tmp_path / "b" / "export").iterdir()
    with np.load(path, allow_pickle=False) as f:
        digest = hashlib.sha256(str(f["config"]).encode()).hexdigest()[:12]
    assert path.name == f"bikes-{digest}.npz" and printed == str(path)
