"""Argument checks shared by every op of ``nbconv.functional``.

The Numba kernels do no bounds checking, so every shape, dtype and
hyper-parameter is checked here, before any kernel runs.  Each check raises
``ValueError`` (wrong value or shape) or ``TypeError`` (wrong type or dtype)
with a message that names the argument, what was given and what was expected.
"""

from __future__ import annotations

import numbers

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SUPPORTED = "float32 or float64"


def as_float_array(name: str, x, ndim=None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array, checking its rank.

    ``ndim`` is an int or a tuple of accepted ranks.  Non-contiguous inputs
    (slices, transposes) are copied into contiguous memory, so the kernels
    always see the same memory layout.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of {_SUPPORTED}, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; supported dtypes are {_SUPPORTED}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ValueError(f"{name} must be {want}, got a {x.ndim}-D array of shape {x.shape}")
    if x.ndim == 0:
        return x            # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return np.ascontiguousarray(x)


def same_dtype(reference_name: str, reference: np.ndarray, **others) -> None:
    """Refuse mixing float32 and float64 between ``reference`` and ``others``."""
    for name, arr in others.items():
        if arr is not None and arr.dtype != reference.dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype} but {reference_name} has dtype {reference.dtype}; "
                f"mixing dtypes is not supported, cast both to float32 or both to float64"
            )


def check_shape(name: str, arr: np.ndarray, expected: tuple) -> None:
    if tuple(arr.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(arr.shape)}")


def as_dout(dout, expected_shape: tuple, dtype) -> np.ndarray:
    """Check the upstream gradient against the shape and dtype of the forward output."""
    if np.isscalar(dout) and tuple(expected_shape) == ():
        return np.asarray(dout, dtype=dtype)
    dout = as_float_array("dout", dout)
    check_shape("dout", dout, expected_shape)
    if dout.dtype != dtype:
        raise TypeError(f"dout has dtype {dout.dtype} but the forward output has dtype {np.dtype(dtype)}")
    return dout


def as_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_pair(name: str, value, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return as_int(name, value[0], minimum), as_int(name, value[1], minimum)
    v = as_int(name, value, minimum)
    return v, v


def as_float(name: str, value, minimum=None, maximum=None, *, open_max=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and (value >= maximum if open_max else value > maximum):
        bound = "<" if open_max else "<="
        raise ValueError(f"{name} must be {bound} {maximum}, got {value}")
    return value
