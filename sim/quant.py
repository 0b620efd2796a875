"""Symmetric linear quantization: floats to signed ``width``-bit integers with a recorded scale.

``q = clip(rint(x / scale), -(2**(width-1)), 2**(width-1) - 1)`` with ``scale = max|x| / (2**(width-1) - 1)``
(per tensor, or per slice along ``axis``); ``x ~ q * scale``. ``rint`` rounds half to even (NumPy's
default). An all-zero input (or slice) gets scale 1.0, so it quantizes to zeros and dequantizes back
exactly. This is the INT8 scheme of the workloads (video tokens, MiniLM activations and weights);
the hardware contract itself starts from the integers.
"""

from __future__ import annotations

import numpy as np

from .checks import InputError

__all__ = ["quantize", "dequantize"]


def quantize(x, width: int, axis: int | tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray | float]:
    """``(q, scale)``: ``q`` int64 in the signed ``width``-bit range, ``scale`` a float (``axis=None``)
    or an array broadcastable against ``x`` (the max is taken over ``axis``, kept as size-1 dims)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise InputError("cannot quantize: the input holds NaN or infinite values")
    if isinstance(width, bool) or not isinstance(width, int) or not 2 <= width <= 32:
        raise InputError(f"width={width!r} is not allowed: an integer from 2 to 32")
    qmax = (1 << (width - 1)) - 1
    amax = np.abs(x).max(axis=axis, keepdims=axis is not None, initial=0.0)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(x / scale), -qmax - 1, qmax).astype(np.int64)
    return q, (float(scale) if axis is None else scale)


def dequantize(q, scale) -> np.ndarray:
    """``q * scale`` as float64."""
    return np.asarray(q, dtype=np.float64) * scale
