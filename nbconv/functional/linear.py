"""linear: y = x W^T + b (the lecture's y = Wx + b, one row of x per sample)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbconv.kernels import linear as K
from ._checks import as_dout, as_float_array, check_shape, same_dtype

__all__ = ["LinearCache", "linear_forward", "linear_backward"]


@dataclass(frozen=True)
class LinearCache:
    x: np.ndarray
    w: np.ndarray
    has_bias: bool


def linear_forward(x, w, b=None):
    """x (N, D), w (M, D), b (M,) or None -> y (N, M)."""
    x = as_float_array("x", x, ndim=2)
    w = as_float_array("w", w, ndim=2)
    same_dtype("x", x, w=w)
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"w must have shape (out_features, {x.shape[1]}) to match x of shape "
                         f"{x.shape}, got {w.shape}")
    M = w.shape[0]
    if b is None:
        bias = np.zeros(M, dtype=x.dtype)
    else:
        bias = as_float_array("b", b, ndim=1)
        same_dtype("x", x, b=bias)
        check_shape("b", bias, (M,))
    y = np.empty((x.shape[0], M), dtype=x.dtype)
    K.linear_forward(x, w, bias, y)
    return y, LinearCache(x, w, b is not None)


def linear_backward(dout, cache: LinearCache):
    """-> (dx, dw, db); db is None when the forward had no bias."""
    x, w = cache.x, cache.w
    dy = as_dout(dout, (x.shape[0], w.shape[0]), x.dtype)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(w.shape[0], dtype=x.dtype)
    K.linear_backward(dy, x, w, dx, dw, db)
    return dx, dw, (db if cache.has_bias else None)
