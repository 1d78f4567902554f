"""Pooling: max, average, Lp-norm (L2-norm pooling) and global average pooling.

Every op pools each channel on its own over a KH x KW window moved with
stride (SH, SW); ``stride`` defaults to ``kernel_size``.  ``kernel_size``,
``stride`` and ``padding`` take an int or an (h, w) pair.  The output size is
the convolution's, ``floor((H + 2P - K) / S) + 1`` per axis.

Padding may be at most half the kernel (``padding <= kernel_size // 2`` per
axis, as in PyTorch), so that every window holds at least one real pixel: max
pooling pads with -inf, average pooling with zeros that count in the average.

Max pooling remembers, for every output, the input pixel that won its window
(the "switches" of the cs231n notes, as a flat index ``row * W + col`` within
the (H, W) plane of its channel); its backward routes each gradient to that
pixel only.

``method`` (see ``dispatch``): "naive" runs the loops of ``nbconv.kernels.pool``, "fast" their
parallel twins (``*_parallel``, one task per (n, c) plane), and "auto" the twins for large
inputs.  Max and average pooling's twins give bit for bit the same results; Lp pooling's (its
powers through vecmath's exp and log) and global average pooling's (its sums in vector lanes)
agree with the loops to rounding.

CUDA device arrays in (see ``nbconv.devices``): the launchers of the same names in
``nbconv.kernels.cuda.pool`` run (one thread per output element; global average pooling's
sum one block per (n, c); max pooling's backward routes each gradient to its window's winner
in the CPU loop's order, one block per plane, no atomics) and the outputs, switches and gradients are device arrays.  Average and
global average pooling keep no array in their cache: their backward runs where dout is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nbconv.shapes import conv_output_size
from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float, as_float_array, as_pair, check_cache

__all__ = [
    "MaxPool2dCache", "max_pool2d_forward", "max_pool2d_backward",
    "AvgPool2dCache", "avg_pool2d_forward", "avg_pool2d_backward",
    "LpPool2dCache", "lp_pool2d_forward", "lp_pool2d_backward",
    "GlobalAvgPool2dCache", "global_avg_pool2d_forward", "global_avg_pool2d_backward",
]


@dataclass(frozen=True)
class MaxPool2dCache:
    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    switches: np.ndarray          # int64 (N, C, OH, OW): row * W + col of each window's maximum
    method: str                   # the form the forward ran, for the backward


@dataclass(frozen=True)
class AvgPool2dCache:
    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    method: str


@dataclass(frozen=True)
class LpPool2dCache:
    x: np.ndarray
    out: np.ndarray               # the window norms, the denominator of the gradient
    norm_type: float
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    method: str


@dataclass(frozen=True)
class GlobalAvgPool2dCache:
    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    method: str


# ----------------------------------------------------------------------------- max pooling

def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0, method="auto"):
    """x (N, C, H, W) -> out (N, C, OH, OW), the maximum of every window.

        out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]   (padding is -inf)

    Ties go to the first maximum in row-major window order.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("max_pool2d", method, device)
    x = as_float_array("x", x, ndim=4)
    kernel_size, stride, padding, (OH, OW) = _window(x, kernel_size, stride, padding)
    N, C = x.shape[:2]
    out = devices.empty((N, C, OH, OW), x.dtype, device)
    switches = devices.empty((N, C, OH, OW), np.int64, device)
    method, kernels = dispatch.select("max_pool2d", method, device, x.size)
    kernels.forward(x, out, switches, *kernel_size, *stride, *padding)
    return out, MaxPool2dCache(tuple(x.shape), np.dtype(x.dtype), switches, method)


def max_pool2d_backward(dout, cache: MaxPool2dCache):
    """-> (dx,): each dout goes to its window's maximum; overlapping windows accumulate."""
    check_cache(cache, MaxPool2dCache, "max_pool2d_forward")
    device = devices.device_of(dout=dout, **{"the forward's switches": cache.switches})
    dy = as_dout(dout, cache.switches.shape, cache.dtype)
    dx = devices.empty(cache.x_shape, cache.dtype, device)
    dispatch.kernels("max_pool2d", cache.method, device).backward(dy, cache.switches, dx)
    return (dx,)


# ----------------------------------------------------------------------------- average pooling

def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0, method="auto"):
    """x (N, C, H, W) -> out (N, C, OH, OW), the mean of every window.

        out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    Zero padding counts in the average: the divisor is always KH*KW.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("avg_pool2d", method, device)
    x = as_float_array("x", x, ndim=4)
    kernel_size, stride, padding, (OH, OW) = _window(x, kernel_size, stride, padding)
    out = devices.empty((x.shape[0], x.shape[1], OH, OW), x.dtype, device)
    method, kernels = dispatch.select("avg_pool2d", method, device, x.size)
    kernels.forward(x, out, *kernel_size, *stride, *padding)
    return out, AvgPool2dCache(tuple(x.shape), np.dtype(x.dtype), kernel_size, stride, padding, method)


def avg_pool2d_backward(dout, cache: AvgPool2dCache):
    """-> (dx,): every pixel of a window receives dout / (KH*KW); overlaps accumulate."""
    check_cache(cache, AvgPool2dCache, "avg_pool2d_forward")
    N, C, H, W = cache.x_shape
    OH, OW = _output_hw(H, W, cache.kernel_size, cache.stride, cache.padding)
    device = devices.device_of(dout=dout)        # the cache keeps no array: dx goes where dout is
    dy = as_dout(dout, (N, C, OH, OW), cache.dtype)
    dx = devices.empty(cache.x_shape, cache.dtype, device)
    method = cache.method if device == devices.CPU else "naive"     # a CPU cache may meet a device dout
    dispatch.kernels("avg_pool2d", method, device).backward(dy, dx, *cache.kernel_size, *cache.stride,
                                                            *cache.padding)
    return (dx,)


# ----------------------------------------------------------------------------- Lp-norm pooling

def lp_pool2d_forward(x, *, norm_type=2, kernel_size, stride=None, method="auto"):
    """x (N, C, H, W) -> out (N, C, OH, OW), the p-norm of every window (p = norm_type >= 1).

        out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)

    p = 2 is the L2-norm pooling of the notes.  No padding.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("lp_pool2d", method, device)
    x = as_float_array("x", x, ndim=4)
    p = as_float("norm_type", norm_type, minimum=1)
    if not math.isfinite(p):
        raise ValueError(f"norm_type must be a finite real number >= 1, got {norm_type!r}")
    kernel_size, stride, _, (OH, OW) = _window(x, kernel_size, stride, 0)
    out = devices.empty((x.shape[0], x.shape[1], OH, OW), x.dtype, device)
    method, kernels = dispatch.select("lp_pool2d", method, device, x.size)
    kernels.forward(x, out, p, *kernel_size, *stride)
    return out, LpPool2dCache(x, out, p, kernel_size, stride, method)


def lp_pool2d_backward(dout, cache: LpPool2dCache):
    """-> (dx,) with dx = dout * |x|^(p-1) * sign(x) / out^(p-1), summed over the windows
    that contain each pixel; 0 for windows whose norm is 0."""
    check_cache(cache, LpPool2dCache, "lp_pool2d_forward")
    x, out = cache.x, cache.out
    device = devices.device_of(dout=dout, **{"the forward's x": x})
    dy = as_dout(dout, out.shape, x.dtype)
    dx = devices.empty_like(x)
    dispatch.kernels("lp_pool2d", cache.method, device).backward(dy, x, out, dx, cache.norm_type,
                                                                 *cache.kernel_size, *cache.stride)
    return (dx,)


# ----------------------------------------------------------------------------- global average pooling

def global_avg_pool2d_forward(x, *, method="auto"):
    """x (N, C, H, W) -> out (N, C), the mean of every channel's feature map."""
    device = devices.device_of(x=x)
    dispatch.check_method("global_avg_pool2d", method, device)
    x = as_float_array("x", x, ndim=4)
    N, C, H, W = x.shape
    if H == 0 or W == 0:
        raise ValueError(f"x must have a non-empty feature map (H, W >= 1) to average, got shape {tuple(x.shape)}")
    out = devices.empty((N, C), x.dtype, device)
    method, kernels = dispatch.select("global_avg_pool2d", method, device, x.size)
    kernels.forward(x, out)
    return out, GlobalAvgPool2dCache(tuple(x.shape), np.dtype(x.dtype), method)


def global_avg_pool2d_backward(dout, cache: GlobalAvgPool2dCache):
    """-> (dx,) with dx[n, c, h, w] = dout[n, c] / (H*W)."""
    check_cache(cache, GlobalAvgPool2dCache, "global_avg_pool2d_forward")
    device = devices.device_of(dout=dout)        # the cache keeps no array: dx goes where dout is
    dy = as_dout(dout, cache.x_shape[:2], cache.dtype)
    dx = devices.empty(cache.x_shape, cache.dtype, device)
    method = cache.method if device == devices.CPU else "naive"     # a CPU cache may meet a device dout
    dispatch.kernels("global_avg_pool2d", method, device).backward(dy, dx)
    return (dx,)


# ----------------------------------------------------------------------------- shared checks

def _window(x, kernel_size, stride, padding):
    """Check the window hyper-parameters against x; -> (kernel, stride, padding, (OH, OW)) as pairs."""
    kernel = as_pair("kernel_size", kernel_size, 1)
    stride = kernel if stride is None else as_pair("stride", stride, 1)
    padding = as_pair("padding", padding, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding must be at most half the kernel (padding <= kernel_size // 2 per axis, "
                         f"so that no window lies entirely in the padding), got padding {padding} with "
                         f"kernel_size {kernel}")
    return kernel, stride, padding, _output_hw(x.shape[2], x.shape[3], kernel, stride, padding)


def _output_hw(H, W, kernel, stride, padding):
    OH = conv_output_size(H, kernel[0], stride=stride[0], padding=padding[0], name="x height")
    OW = conv_output_size(W, kernel[1], stride=stride[1], padding=padding[1], name="x width")
    return OH, OW
