"""Exact comparison of products of non-negative integers, vectorised.

The similarity tests compare products that outgrow int64 (``dot**2 * Q**2`` reaches 2**70 for
INT8 vectors of 32 elements and a 16-bit threshold denominator). :func:`products_greater`
decides almost every element in float64: where both products are below 2**53 (float64 is then
exact), or where the two sides differ by far more than float rounding could explain; it settles
the rest (near and exact ties of large products) with Python integers. The result is exact for
every element.
"""

from __future__ import annotations

from functools import reduce

import numpy as np

__all__ = ["products_greater"]

# Each factor converts to float64 with relative error <= 2**-53, and each multiplication adds as
# much again; with at most 4 factors a side the float product is within 8 * 2**-53 < 1e-15 of
# the true one, so a relative gap above 1e-12 is decided correctly in floating point.
_MARGIN = 1e-12
_EXACT = float(1 << 53)


def _float_product(factors, shape):
    return reduce(np.multiply, (np.broadcast_to(np.asarray(f, dtype=np.float64), shape) for f in factors))


def _exact_product(factors, shape, idx):
    out = np.ones(len(idx[0]), dtype=object)
    for f in factors:
        f = np.broadcast_to(np.asarray(f), shape)[idx]
        out = out * f.astype(object)
    return out


def products_greater(lhs: list, rhs: list) -> np.ndarray:
    """Elementwise ``prod(lhs) > prod(rhs)`` for non-negative integer arrays or ints (broadcast)."""
    shape = np.broadcast_shapes(*(np.shape(f) for f in (*lhs, *rhs)))
    left, right = _float_product(lhs, shape), _float_product(rhs, shape)
    result = left > right
    # A float product below 2**53 is exact: every partial product of integer factors >= 1 is at most
    # the final one (a zero factor gives exactly 0), and rounding is monotonic, so a computed value
    # below 2**53 means every true partial value is below 2**53 and was represented exactly.
    # Such pairs (the great majority for INT8 vectors) are decided in float64 even when they tie.
    big = np.maximum(np.abs(left), np.abs(right))
    close = (np.abs(left - right) <= _MARGIN * big) & (big >= _EXACT)
    if close.any():
        idx = np.nonzero(close)
        result[idx] = _exact_product(lhs, shape, idx) > _exact_product(rhs, shape, idx)
    return result
