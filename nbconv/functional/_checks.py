"""Argument checks shared by every op of ``nbconv.functional``.

The Numba kernels do no bounds checking, so every shape, dtype and
hyper-parameter is checked here, before any kernel runs.  Each check raises
``ValueError`` (wrong value or shape) or ``TypeError`` (wrong type or dtype)
with a message that names the argument, what was given and what was expected.

The array checks take CUDA device arrays too (see ``nbconv.devices``): shape, rank and dtype are
checked alike, and the array is returned as a numba device array.  The kernels need
C-contiguous memory; a non-contiguous device array (a slice or transpose of one) is refused
with a ValueError rather than copied through the host behind the caller's back.

Values of device arrays (a class index in [0, C), a probability in [0, 1]) can only be checked
by copying something to the host, which waits for the GPU: those checks run in the debug mode
only (``debug()``, the environment variable NBCONV_DEBUG=1; docs/debug.md).
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from nbconv.devices import as_device_array, is_device_array

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SUPPORTED = "float32 or float64"

DEBUG_VARIABLE = "NBCONV_DEBUG"


def debug() -> bool:
    """True when the debug mode is on: the environment variable NBCONV_DEBUG is set to anything
    but "" or "0" (read at every call, so ``os.environ["NBCONV_DEBUG"] = "1"`` in a running
    notebook turns it on).

    The debug mode adds the checks of VALUES of CUDA device arrays that need a copy to the
    host (class indices in [0, C), probabilities in [0, 1]): the copy waits for the GPU to
    finish, a round trip per call that a training step should not pay.  Host arrays are always
    checked, and shapes and dtypes on both devices.  docs/debug.md."""
    return os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def as_float_array(name: str, x, ndim=None) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 array, checking its rank.

    ``ndim`` is an int or a tuple of accepted ranks.  Non-contiguous inputs
    (slices, transposes) are copied into contiguous memory, so the kernels
    always see the same memory layout.  A CUDA device array is checked alike
    and returned as a numba device array; a non-contiguous one is refused.
    """
    if is_device_array(x):
        return _as_device_float_array(name, x, ndim)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of {_SUPPORTED}, got {type(x).__name__}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; supported dtypes are {_SUPPORTED}")
    _check_rank(name, x, ndim)
    if x.ndim == 0:
        return x            # np.ascontiguousarray would turn a 0-d array into shape (1,)
    return np.ascontiguousarray(x)


def _check_rank(name: str, x, ndim) -> None:
    """``ndim``: None (any rank), an int, or a tuple of accepted ranks."""
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ValueError(f"{name} must be {want}, got a {x.ndim}-D array of shape {x.shape}")


def _as_device_float_array(name: str, x, ndim):
    """The checks of as_float_array for a CUDA device array; it must already be C-contiguous."""
    x = as_device_array(x)
    if np.dtype(x.dtype) not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} has dtype {x.dtype}; supported dtypes are {_SUPPORTED}")
    _check_rank(name, x, ndim)
    check_contiguous(name, x)
    return x


def check_contiguous(name: str, x) -> None:
    """Refuse a non-contiguous CUDA device array (NumPy arrays are copied instead, by as_float_array)."""
    if is_device_array(x) and x.size > 1 and not x.is_c_contiguous():
        raise ValueError(f"{name} is a non-contiguous CUDA device array (shape {tuple(x.shape)}, strides "
                         f"{tuple(x.strides)}); the CUDA kernels need C-contiguous memory: pass a contiguous "
                         f"array, e.g. numba.cuda.to_device(numpy.ascontiguousarray({name}.copy_to_host()))")


def same_dtype(reference_name: str, reference: np.ndarray, **others) -> None:
    """Refuse mixing float32 and float64 between ``reference`` and ``others``."""
    for name, arr in others.items():
        if arr is not None and np.dtype(arr.dtype) != np.dtype(reference.dtype):
            raise TypeError(
                f"{name} has dtype {arr.dtype} but {reference_name} has dtype {reference.dtype}; "
                f"mixing dtypes is not supported, cast both to float32 or both to float64"
            )


def check_shape(name: str, arr: np.ndarray, expected: tuple) -> None:
    if tuple(arr.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(arr.shape)}")


def as_dout(dout, expected_shape: tuple, dtype) -> np.ndarray:
    """Check the upstream gradient against the shape and dtype of the forward output.

    The gradient of a scalar output (a loss) may be a Python number, a 0-d array or a 0-d
    device array (such as the loss itself, on the GPU).  A device array is returned as it is,
    never copied to the host: the device loss kernels read it where it is."""
    if np.isscalar(dout) and tuple(expected_shape) == ():
        return np.asarray(dout, dtype=dtype)
    dout = as_float_array("dout", dout)
    check_shape("dout", dout, expected_shape)
    if np.dtype(dout.dtype) != np.dtype(dtype):
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


def check_cache(cache, expected: type, forward: str) -> None:
    """Refuse a ``cache`` that is not the ``expected`` dataclass that ``forward`` returned.

    The usual mistakes are the whole ``(out, cache)`` pair and None; both are named with the
    fix, before the backward touches a field of the cache."""
    if isinstance(cache, expected):
        return
    if cache is None:
        got = "None"
    elif isinstance(cache, tuple):
        got = f"a tuple of {len(cache)}"
        if len(cache) == 2:
            got += f" (the whole (out, cache) pair? unpack it: out, cache = {forward}(...))"
    else:
        name = type(cache).__name__
        got = f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
    raise TypeError(f"cache must be the {expected.__name__} that {forward} returned, got {got}")
