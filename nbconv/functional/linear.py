"""linear: y = x W^T + b (the lecture's y = Wx + b, one row of x per sample).

``method``: "naive" runs the loop nest of nbconv.kernels.linear, "fast" the same three sums as
register-tiled matrix products on Numba's threads (the blocked convolution's kernel: a product is
a 1x1 convolution; NumPy's BLAS from 2^28 multiply-adds), "auto" (the default) the fast form (see
``dispatch``).  CUDA device
arrays run the twins in nbconv.kernels.cuda.linear and give device arrays (see ``nbconv.devices``):
"naive" one thread per output, "fast" (and "auto") the three products as GEMMs on the device
(cuBLAS through CuPy when it is installed, else the register-blocked kernel of
nbconv.kernels.cuda.gemm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float_array, check_cache, check_shape, same_dtype

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


@dataclass(frozen=True)
class LinearCache:
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    method: str               # the form the forward ran, "naive" or "fast": the backward runs it too


def linear_forward(x, w, b=None, *, method="auto"):
    """x (N, D), w (M, D), b (M,) or None -> y (N, M); method "naive", "fast" or "auto"."""
    device = devices.device_of(x=x, w=w, b=b)
    dispatch.check_method("linear", method, device)
    x = as_float_array("x", x, ndim=2)
    w = as_float_array("w", w, ndim=2)
    same_dtype("x", x, w=w)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have shape (out_features, {x.shape[1]}) to match x of shape "
                         f"{x.shape}, got {w.shape}")
    M = w.shape[0]
    if b is None:
        bias = devices.zeros(M, x.dtype, device)
    else:
        bias = as_float_array("b", b, ndim=1)
        same_dtype("x", x, b=bias)
        check_shape("b", bias, (M,))
    y = devices.empty((x.shape[0], M), x.dtype, device)
    method, kernels = dispatch.select("linear", method, device, y.size)
    kernels.forward(x, w, bias, y)
    return y, LinearCache(x, w, b is not None, method)


def linear_backward(dout, cache: LinearCache):
    """-> (dx, dw, db); db is None when the forward had no bias."""
    check_cache(cache, LinearCache, "linear_forward")
    x, w = cache.x, cache.w
    device = devices.device_of(dout=dout, **{"the forward's x": x})
    dy = as_dout(dout, (x.shape[0], w.shape[0]), x.dtype)
    dx, dw, db = devices.empty_like(x), devices.empty_like(w), devices.empty(w.shape[0], x.dtype, device)
    dispatch.kernels("linear", cache.method, device).backward(dy, x, w, dx, dw, db)
    return dx, dw, (db if cache.has_bias else None)
