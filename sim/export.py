"""Test-vector files: one :class:`~focus.sim.job.Job` per ``.npz``, versioned (docs/export-format.md).

A file is a NumPy ``.npz`` archive (``numpy.savez_compressed``) readable with
``numpy.load(path, allow_pickle=False)`` and nothing else from this project:

* ``format`` (str ``"focus-sim-export"``), ``format_version`` (int, :data:`FORMAT_VERSION`),
  ``config`` (str, the configuration JSON, :meth:`focus.FocusConfig.to_json`) and ``header``
  (str, JSON: counters, workload description, which optional arrays are present);
* the job's arrays under their :class:`~focus.sim.job.Job` field names, in compact integer types
  (data: the smallest signed type holding ``data_width`` bits; acc: int32, or int64 above 32 bits;
  scores: the smallest unsigned type; indices int32; :func:`read` gives int64 back and also accepts
  narrower signed acc types, as files before this rule had them).

:func:`write` writes to a temporary file next to the target and renames it, so a file either is
complete or is not there. :func:`read` checks the format, the version and every shape against the
configuration, and raises :class:`ExportError` saying what is wrong, in one line, for anything it
cannot open or read (a missing, truncated or foreign file, an array that needs pickling).
:func:`check_consistent` checks that the golden outputs follow from the file's own arrays; the
tools that read a file (``focus-sim show``, ``focus-sim report --from``, ``focus-run``,
``focus fpga run``) run both.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..config import ConfigError, FocusConfig
from ..files import atomic_open
from .checks import InputError
from .job import Job

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportError", "write", "read", "check_consistent", "ARRAYS", "OPTIONAL"]

FORMAT = "focus-sim-export"
#: Bumped whenever a key changes meaning or shape; readers refuse other versions.
FORMAT_VERSION = 1

#: Arrays in every file: name -> (shape in terms of T, hidden, C, V, N, U, kind).
ARRAYS = {
    "tokens": (("T", "hidden"), "data"),
    "weights": (("hidden", "N"), "data"),
    "unique_index": (("C", "T"), "index"),
    "best": (("C", "T"), "index"),
    "root": (("C", "T"), "index"),
    "unique_offsets": (("C+1",), "index"),
    "unique_roots": (("U",), "index"),
    "unique_vectors": (("U", "V"), "data"),
    "group_size": (("U",), "index"),
    "representatives": (("U", "V"), "data"),
    "outputs": (("T", "N"), "acc"),
    "outputs_dense": (("T", "N"), "acc"),
}
#: Arrays present only when the job ran SEC (``scores`` given), pruned, or was written with partials.
OPTIONAL = {
    "partials": (("U", "N"), "acc"),
    "scores": (("heads", "text", "T"), "score"),
    "importance": (("T",), "score"),
    "kept": (("k",), "index"),
    "tokens_before_sec": (("T", "hidden"), "data"),
}


class ExportError(InputError):
    """A file is not a readable focus-sim export of this version, or its contents disagree."""


def _signed_dtype(width: int):
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if np.iinfo(dt).bits >= width:
            return dt
    return np.int64


def _unsigned_dtype(width: int):
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if np.iinfo(dt).bits >= width:
            return dt
    return np.uint64


def _dtype(cfg: FocusConfig, kind: str):
    # acc arrays are int32 at least (docs/export-format.md: "int32 or int64"), whatever acc_width is
    return {"data": _signed_dtype(cfg.data_width), "acc": _signed_dtype(max(cfg.acc_width, 32)),
            "score": _unsigned_dtype(cfg.score_width), "index": np.int32}[kind]


#: Arrays totalling at most this many bytes (the sum of their ``nbytes``, 32 MiB) are compressed
#: (zip deflate); larger ones are stored, since deflating hundreds of megabytes of incompressible data
#: takes minutes. numpy.load reads both.
COMPRESS_LIMIT = 32 << 20


def write(path: str | os.PathLike, job: Job, *, partials: bool = True, compress: bool | None = None) -> Path:
    """Write ``job`` to ``path`` (``.npz``) atomically; returns the path.

    ``partials=False`` leaves out the per-chunk products (U x N, the largest array when little
    merges; :func:`read` recomputes them). ``compress`` defaults to arrays of at most
    :data:`COMPRESS_LIMIT` bytes.
    """
    path = Path(path)
    cfg = job.cfg
    present = [name for name in OPTIONAL if getattr(job, name) is not None and (partials or name != "partials")]
    header = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "shape": {"T": cfg.tokens, "hidden": cfg.hidden, "C": cfg.chunks, "V": cfg.vector_size,
                  "N": int(job.weights.shape[1]), "U": int(job.unique_offsets[-1])},
        "neighbourhood": job.neighbourhood, "pruned": bool(job.pruned),
        "optional": present, "counters": _finite(job.counters), "meta": job.meta,
    }
    # allow_nan=False: the header is strict JSON (no Infinity or NaN; a non-finite number is a bug here)
    arrays = {"format": np.array(FORMAT), "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
              "config": np.array(cfg.to_json()),
              "header": np.array(json.dumps(header, sort_keys=True, allow_nan=False))}
    for name, (_, kind) in {**ARRAYS, **{n: OPTIONAL[n] for n in present}}.items():
        arrays[name] = np.asarray(getattr(job, name)).astype(_dtype(cfg, kind))
    if compress is None:
        compress = sum(a.nbytes for a in arrays.values()) <= COMPRESS_LIMIT
    with atomic_open(path, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return path


def _finite(counters: dict) -> dict:
    """``counters`` with ``compression`` null when it is not a finite number (U = 0: no concentrated
    MACs, nothing to divide by)."""
    out = dict(counters)
    value = out.get("compression")
    if isinstance(value, float) and not math.isfinite(value):
        out["compression"] = None
    return out


def _array(archive, key: str, path) -> np.ndarray:
    """One array of the archive, any failure to read it (truncated or damaged zip member, an array
    that needs pickling, a bad .npy header) as :class:`ExportError`."""
    try:
        return archive[key]
    except ExportError:
        raise
    except Exception as err:        # zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        raise ExportError(f"{path}: corrupt file: cannot read {key!r} ({type(err).__name__}: {err})") from None


def _text(archive, key: str, path) -> str:
    if key not in archive.files:
        raise ExportError(f"{path}: no {key!r} entry; not a {FORMAT} file")
    value = _array(archive, key, path)
    if value.shape != () or value.dtype.kind != "U":
        raise ExportError(f"{path}: {key!r} must be a text scalar, found dtype {value.dtype} shape {value.shape}")
    return str(value)


def read(path: str | os.PathLike) -> Job:
    """The :class:`Job` stored in ``path``, with every shape checked against its configuration.

    Raises :class:`ExportError` (one line naming the file and the problem) for a missing or
    unreadable file, a damaged archive or array, another format or version, or shapes that
    disagree with the configuration."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ExportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ExportError(f"{path}: is a directory, not a {FORMAT} .npz file") from None
    except Exception as err:        # OSError, ValueError, zipfile.BadZipFile, EOFError, ...
        raise ExportError(f"{path}: not a NumPy .npz archive, or a corrupt one ({type(err).__name__}: {err})") from None
    if not hasattr(archive, "files"):
        raise ExportError(f"{path}: holds a single array, not a {FORMAT} .npz archive")
    with archive:
        if _text(archive, "format", path) != FORMAT:
            raise ExportError(f"{path}: format is {_text(archive, 'format', path)!r}, expected {FORMAT!r}")
        if "format_version" not in archive.files:
            raise ExportError(f"{path}: no 'format_version' entry; not a {FORMAT} file")
        version = _array(archive, "format_version", path)
        if version.shape != () or version.dtype.kind not in "iu":
            raise ExportError(f"{path}: format_version must be an integer scalar ({FORMAT_VERSION}), found "
                              f"dtype {version.dtype} shape {version.shape}")
        if int(version) != FORMAT_VERSION:
            raise ExportError(f"{path}: format_version {int(version)} is not supported; this focus reads "
                              f"version {FORMAT_VERSION} (re-export with this version of focus-sim)")
        try:
            cfg = FocusConfig.from_json(_text(archive, "config", path))
        except ConfigError as err:
            raise ExportError(f"{path}: bad configuration: {err}") from None
        try:
            header = json.loads(_text(archive, "header", path))
        except json.JSONDecodeError as err:
            raise ExportError(f"{path}: header is not valid JSON ({err})") from None
        if not isinstance(header, dict) or not isinstance(header.get("shape", {}), dict):
            raise ExportError(f"{path}: header must be a JSON object with a 'shape' object")
        present = header.get("optional", [])
        if not isinstance(present, list) or any(name not in OPTIONAL for name in present):
            raise ExportError(f"{path}: header 'optional' must list optional arrays ({', '.join(OPTIONAL)}), "
                              f"found {present!r}")
        fields = {}
        for name in [*ARRAYS, *present]:
            if name not in archive.files:
                raise ExportError(f"{path}: array {name!r} is missing")
            arr = _array(archive, name, path)
            if arr.dtype.kind not in "iu":
                raise ExportError(f"{path}: {name} must hold integers, found dtype {arr.dtype}")
            fields[name] = arr.astype(np.int64)
    for key in ("counters", "meta"):
        if not isinstance(header.get(key, {}), dict):
            raise ExportError(f"{path}: header {key!r} must be a JSON object")
    dims = dict(header.get("shape", {}))
    dims["C+1"] = cfg.chunks + 1
    if "scores" in fields:
        if fields["scores"].ndim != 3:
            raise ExportError(f"{path}: scores has shape {fields['scores'].shape}, expected 3 dimensions "
                              "(heads x text x T)")
        dims["heads"], dims["text"] = fields["scores"].shape[:2]
    if "kept" in fields:
        dims["k"] = len(fields["kept"])
    expect = {"T": cfg.tokens, "hidden": cfg.hidden, "C": cfg.chunks, "V": cfg.vector_size}
    for key, want in expect.items():
        if dims.get(key) != want:
            raise ExportError(f"{path}: header shape {key}={dims.get(key)} disagrees with the configuration ({want})")
    for name, arr in fields.items():
        shape = (ARRAYS.get(name) or OPTIONAL[name])[0]
        want = tuple(dims.get(d) for d in shape)
        if arr.shape != want:
            raise ExportError(f"{path}: {name} has shape {arr.shape}, expected {want} ({' x '.join(shape)})")
    off = fields["unique_offsets"]
    if off[0] != 0 or (np.diff(off) < 0).any() or off[-1] != dims["U"]:
        raise ExportError(f"{path}: unique_offsets {off.tolist()} must rise from 0 to U={dims['U']}")
    if "partials" not in fields:                 # written without them: recompute, exactly as run_job does
        from .gemm import int_matmul, wrap
        off, V = fields["unique_offsets"], cfg.vector_size
        parts = [int_matmul(fields["representatives"][off[c]:off[c + 1]], fields["weights"][c * V:(c + 1) * V])
                 for c in range(cfg.chunks)]
        fields["partials"] = wrap(np.concatenate(parts).reshape(-1, fields["weights"].shape[1]), cfg.acc_width)
    return Job(cfg=cfg, **fields, pruned=bool(header.get("pruned")), neighbourhood=header.get("neighbourhood", "bounded"),
               counters=header.get("counters", {}), meta=header.get("meta", {}))


def check_consistent(job: Job, path: str | os.PathLike = "job") -> None:
    """Raise :class:`ExportError` unless the golden results of ``job`` follow from its own arrays
    (NumPy only, no model): ``tokens`` and ``weights`` are signed ``data_width``-bit values;
    ``unique_index[c]`` is ``-1`` or a row of chunk ``c`` (``0 .. unique_offsets[c+1] -
    unique_offsets[c] - 1``); ``outputs_dense`` is ``tokens @ weights`` wrapped to ``acc_width``;
    ``outputs`` is the sum over chunks of ``partials[unique_offsets[c] + unique_index[c, t]]``
    (non-zero vectors only) wrapped to ``acc_width``; a pruned job has ``tokens_before_sec``.
    The message names the first difference."""
    from .gemm import wrap
    cfg = job.cfg
    lo, hi = cfg.data_min, cfg.data_max
    for name in ("tokens", "weights", "tokens_before_sec"):
        arr = getattr(job, name)
        if arr is not None and arr.size and (arr.min() < lo or arr.max() > hi):
            raise ExportError(f"{path}: inconsistent file: {name} holds values in [{arr.min()}, {arr.max()}], outside "
                              f"the signed {cfg.data_width}-bit range [{lo}, {hi}]")
    if job.pruned and job.tokens_before_sec is None:
        raise ExportError(f"{path}: inconsistent file: pruned but no tokens_before_sec")
    off = job.unique_offsets
    for c in range(cfg.chunks):
        ui, count = job.unique_index[c], off[c + 1] - off[c]
        bad = np.flatnonzero((ui < -1) | (ui >= count))
        if bad.size:
            raise ExportError(f"{path}: inconsistent file: unique_index[{c}, {bad[0]}] is {ui[bad[0]]}, chunk {c} "
                              f"has {count} unique vectors (-1 to {count - 1} allowed)")
    dense = wrap(np.asarray(job.tokens, np.int64) @ np.asarray(job.weights, np.int64), cfg.acc_width)
    if not np.array_equal(dense, job.outputs_dense):
        t, n = np.argwhere(dense != job.outputs_dense)[0]
        raise ExportError(f"{path}: inconsistent file: outputs_dense[{t}, {n}] is {job.outputs_dense[t, n]}, "
                          f"tokens @ weights gives {dense[t, n]}")
    focus = np.zeros_like(dense)
    for c in range(cfg.chunks):
        ui = job.unique_index[c]
        rows = ui >= 0
        focus[rows] += job.partials[off[c] + ui[rows]]
    focus = wrap(focus, cfg.acc_width)
    if not np.array_equal(focus, job.outputs):
        t, n = np.argwhere(focus != job.outputs)[0]
        raise ExportError(f"{path}: inconsistent file: outputs[{t}, {n}] is {job.outputs[t, n]}, "
                          f"its partials and unique_index give {focus[t, n]}")
