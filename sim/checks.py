"""Input checks shared by the golden model: clear errors for wrong shapes, types and ranges."""

from __future__ import annotations

import numpy as np

__all__ = ["InputError", "check_int_array"]


class InputError(ValueError):
    """An input tensor does not fit the configuration; the message says which and how."""


def check_int_array(name: str, array, shape: tuple[int | None, ...], width: int, *,
                    signed: bool = True, shape_doc: str = "") -> np.ndarray:
    """``array`` as int64 after checking it is integer, has ``shape`` (None = any) and fits ``width`` bits.

    Floats are refused rather than rounded: integer mode is the hardware contract, and a float
    reaching it is a bug upstream of it.
    """
    array = np.asarray(array)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} must be an integer array for integer mode, got dtype {array.dtype}"
                         " (quantize first, e.g. focus.sim.quant)")
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        want = "x".join("?" if s is None else str(s) for s in shape)
        raise InputError(f"{name} has shape {'x'.join(map(str, array.shape)) or 'scalar'}, "
                         f"expected {want}{' (' + shape_doc + ')' if shape_doc else ''}")
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    if array.size:
        amin, amax = int(array.min()), int(array.max())
        if amin < lo or amax > hi:
            raise InputError(f"{name} holds values in [{amin}, {amax}], outside the {'signed' if signed else 'unsigned'} "
                             f"{width}-bit range [{lo}, {hi}]")
    return array.astype(np.int64)
