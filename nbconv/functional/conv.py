"""conv2d and conv1d: cross-correlation with stride, padding, dilation and groups.

Two methods compute the same numbers:
  - ``"direct"``: the naive loop nest of ``nbconv.kernels.conv``, the teaching reference;
  - ``"im2col"`` (default): im2col + one matrix product per group, ``nbconv.kernels.im2col``.

conv1d is conv2d on signals of height 1: x (N, C, L) is viewed as (N, C, 1, L)
and w (F, C // G, K) as (F, C // G, 1, K), so both methods serve it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nbconv.kernels import conv as direct_kernels
from nbconv.kernels import im2col as im2col_kernels
from nbconv.shapes import conv_output_size
from ._checks import as_dout, as_float_array, as_int, as_pair, check_shape, same_dtype

__all__ = ["Conv2dCache", "conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward"]

METHODS = ("direct", "im2col")


@dataclass(frozen=True)
class Conv2dCache:
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    method: str
    cols: np.ndarray | None      # im2col's X_col, kept for dW = dY @ X_col^T


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="im2col"):
    """x (N, C, H, W), w (F, C // groups, KH, KW), b (F,) or None -> y (N, F, OH, OW).

        y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*S - P + ki*D, j*S - P + kj*D]

    with OH = floor((H + 2P - D(KH - 1) - 1) / S) + 1 and likewise OW.
    """
    x = as_float_array("x", x, ndim=4)
    w = as_float_array("w", w, ndim=4)
    same_dtype("x", x, w=w)
    stride = as_pair("stride", stride, 1)
    padding = as_pair("padding", padding, 0)
    dilation = as_pair("dilation", dilation, 1)
    groups = as_int("groups", groups, 1)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    if C % groups != 0:
        raise ValueError(f"groups={groups} must divide the input channels of x, got C={C} (x shape {x.shape})")
    if F % groups != 0:
        raise ValueError(f"groups={groups} must divide the output channels of w, got F={F} (w shape {w.shape})")
    if Cg != C // groups:
        raise ValueError(f"w must have C // groups = {C // groups} input channels to match x of shape {x.shape} "
                         f"with groups={groups}, got w shape {w.shape}")
    bias = _bias(b, F, x)
    OH = conv_output_size(H, KH, stride=stride[0], padding=padding[0], dilation=dilation[0], name="x height")
    OW = conv_output_size(W, KW, stride=stride[1], padding=padding[1], dilation=dilation[1], name="x width")

    y = np.empty((N, F, OH, OW), dtype=x.dtype)
    cols = None
    if method == "direct":
        direct_kernels.conv2d_forward_direct(x, w, bias, y, *stride, *padding, *dilation, groups)
    else:
        cols = np.empty((groups, Cg * KH * KW, N * OH * OW), dtype=x.dtype)
        w_rows = w.reshape(groups, F // groups, Cg * KH * KW)
        im2col_kernels.conv2d_forward_im2col(x, w_rows, bias, y, cols, KH, KW, *stride, *padding, *dilation)
    return y, Conv2dCache(x, w, b is not None, stride, padding, dilation, groups, method, cols)


def conv2d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db); db is None when the forward had no bias."""
    x, w = cache.x, cache.w
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride=cache.stride[0], padding=cache.padding[0], dilation=cache.dilation[0])
    OW = conv_output_size(W, KW, stride=cache.stride[1], padding=cache.padding[1], dilation=cache.dilation[1])
    dy = as_dout(dout, (N, F, OH, OW), x.dtype)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(F, dtype=x.dtype)
    hyper = (*cache.stride, *cache.padding, *cache.dilation)
    if cache.method == "direct":
        direct_kernels.conv2d_backward_direct(dy, x, w, dx, dw, db, *hyper, cache.groups)
    else:
        G = cache.groups
        w_rows = w.reshape(G, F // G, Cg * KH * KW)
        dw_rows = dw.reshape(G, F // G, Cg * KH * KW)
        im2col_kernels.conv2d_backward_im2col(dy, cache.cols, w_rows, dx, dw_rows, db, KH, KW, *hyper)
    return dx, dw, (db if cache.has_bias else None)


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="im2col"):
    """x (N, C, L), w (F, C // groups, K), b (F,) or None -> y (N, F, L_out).

        y[n, f, i] = b[f] + sum_{c, k} w[f, c, k] * x[n, g*Cg + c, i*S - P + k*D]

    Computed as conv2d on a signal of height 1.
    """
    x = as_float_array("x", x, ndim=3)
    w = as_float_array("w", w, ndim=3)
    stride, padding, dilation = as_int("stride", stride, 1), as_int("padding", padding, 0), as_int("dilation", dilation, 1)
    if w.shape[2] >= 1:
        conv_output_size(x.shape[2], w.shape[2], stride=stride, padding=padding, dilation=dilation, name="x length")
    y, cache = conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, stride=(1, stride),
                              padding=(0, padding), dilation=(1, dilation), groups=groups, method=method)
    return y[:, :, 0, :], cache


def conv1d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db) for conv1d; db is None when the forward had no bias."""
    dout = as_float_array("dout", dout, ndim=3)
    dx, dw, db = conv2d_backward(dout[:, :, None, :], cache)
    return dx[:, :, 0, :], dw[:, :, 0, :], db


def _bias(b, F, x):
    if b is None:
        return np.zeros(F, dtype=x.dtype)
    b = as_float_array("b", b, ndim=1)
    same_dtype("x", x, b=b)
    check_shape("b", b, (F,))
    return b
