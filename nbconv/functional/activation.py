"""Activations: relu, leaky_relu, elu, sigmoid, tanh, prelu, maxout.

The elementwise ops accept x of any rank >= 1 and run their kernel over the
flattened array (one compiled kernel per dtype, whatever the rank).  PReLU and
maxout act per channel, channel axis 1, and view x as (N, C, S) with S the
product of the trailing axes.

The elementwise ops take ``method`` (see ``dispatch``): "naive" runs the loop of
``nbconv.kernels.activation``, "fast" its parallel twin (``*_parallel``, on every core: bit for
bit the loop's numbers for relu and leaky_relu; elu, sigmoid and tanh also vectorize their exp
and tanh with nbconv.kernels.vecmath, within 2 ulp), "auto" the twin for large arrays.

At the kink x = 0 the derivative is taken from the x <= 0 side: relu'(0) = 0,
leaky_relu'(0) = negative_slope, elu'(0) = alpha, prelu'(0) = the slope.
sigmoid and tanh differentiate through their cached output:
sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2.

CUDA device arrays in (see ``nbconv.devices``): the launcher of the same name in
``nbconv.kernels.cuda.activation`` runs (one thread per element; there is no parallel
variant to choose on the GPU), and the outputs, gradients and caches are device arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float, as_float_array, as_int, check_cache, same_dtype

__all__ = [
    "ReluCache", "relu_forward", "relu_backward",
    "LeakyReluCache", "leaky_relu_forward", "leaky_relu_backward",
    "EluCache", "elu_forward", "elu_backward",
    "SigmoidCache", "sigmoid_forward", "sigmoid_backward",
    "TanhCache", "tanh_forward", "tanh_backward",
    "PReluCache", "prelu_forward", "prelu_backward",
    "MaxoutCache", "maxout_forward", "maxout_backward",
]


def _input(x, min_ndim: int) -> np.ndarray:
    """x as a C-contiguous float32/float64 array of rank >= min_ndim."""
    contiguous = as_float_array("x", x)          # type and dtype checks; an array (host or device) from here on
    if contiguous.ndim < min_ndim:               # the rank of x as given
        layout = " (N, C, ...)" if min_ndim >= 2 else ""
        raise ValueError(f"x must be at least {min_ndim}-D{layout}, got a {contiguous.ndim}-D array of shape "
                         f"{tuple(contiguous.shape)}")
    return contiguous


def _elementwise(op: str, method, x, *hyper):
    """Run op's 1-D forward kernel over the flattened x -> (y of x's shape, the form that ran).

    ``method`` picks the kernel (``dispatch``): "naive" the loop, "fast" its parallel twin,
    "auto" the twin from dispatch.FAST_FROM elements on; on the GPU the CUDA launcher."""
    device = devices.array_device(x)
    method, kernels = dispatch.select(op, method, device, x.size)
    y = devices.empty_like(x)
    kernels.forward(devices.flat(x), devices.flat(y), *hyper)
    return y, method


def _elementwise_backward(op: str, method: str, dout, saved, *hyper):
    """Run op's 1-D backward kernel, in the form its forward ran; ``saved`` is the cached x or y."""
    device = devices.device_of(dout=dout, **{"the forward's cached array": saved})
    dy = as_dout(dout, saved.shape, saved.dtype)
    dx = devices.empty_like(saved)
    dispatch.kernels(op, method, device).backward(devices.flat(dy), devices.flat(saved), devices.flat(dx), *hyper)
    return dx


# --- relu --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReluCache:
    x: np.ndarray
    method: str        # the form the forward ran ("naive" or "fast"), for the backward


def relu_forward(x, *, method="auto"):
    """y = max(0, x), elementwise; x of any rank >= 1."""
    x = _input(x, 1)
    y, method = _elementwise("relu", method, x)
    return y, ReluCache(x, method)


def relu_backward(dout, cache: ReluCache):
    """-> (dx,) with dx = dout * [x > 0]."""
    check_cache(cache, ReluCache, "relu_forward")
    return (_elementwise_backward("relu", cache.method, dout, cache.x),)


# --- leaky_relu ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeakyReluCache:
    x: np.ndarray
    negative_slope: float
    method: str


def leaky_relu_forward(x, *, negative_slope=0.01, method="auto"):
    """y = x for x > 0, negative_slope * x for x <= 0; x of any rank >= 1.

    The lecture's max(0.1 x, x) is ``negative_slope=0.1``; any real slope is accepted.
    """
    x = _input(x, 1)
    negative_slope = as_float("negative_slope", negative_slope)
    y, method = _elementwise("leaky_relu", method, x, negative_slope)
    return y, LeakyReluCache(x, negative_slope, method)


def leaky_relu_backward(dout, cache: LeakyReluCache):
    """-> (dx,) with dx = dout for x > 0, negative_slope * dout for x <= 0."""
    check_cache(cache, LeakyReluCache, "leaky_relu_forward")
    return (_elementwise_backward("leaky_relu", cache.method, dout, cache.x, cache.negative_slope),)


# --- elu -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EluCache:
    x: np.ndarray
    alpha: float
    method: str


def elu_forward(x, *, alpha=1.0, method="auto"):
    """y = x for x > 0, alpha * (exp(x) - 1) for x <= 0; alpha >= 0; x of any rank >= 1."""
    x = _input(x, 1)
    alpha = as_float("alpha", alpha, minimum=0.0)
    y, method = _elementwise("elu", method, x, alpha)
    return y, EluCache(x, alpha, method)


def elu_backward(dout, cache: EluCache):
    """-> (dx,) with dx = dout for x > 0, dout * alpha * exp(x) for x <= 0."""
    check_cache(cache, EluCache, "elu_forward")
    return (_elementwise_backward("elu", cache.method, dout, cache.x, cache.alpha),)


# --- sigmoid -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigmoidCache:
    y: np.ndarray      # the output sigma(x): the derivative is y (1 - y)
    method: str


def sigmoid_forward(x, *, method="auto"):
    """y = 1 / (1 + exp(-x)), elementwise, in a form that never overflows; x of any rank >= 1."""
    x = _input(x, 1)
    y, method = _elementwise("sigmoid", method, x)
    return y, SigmoidCache(y, method)


def sigmoid_backward(dout, cache: SigmoidCache):
    """-> (dx,) with dx = dout * y * (1 - y)."""
    check_cache(cache, SigmoidCache, "sigmoid_forward")
    return (_elementwise_backward("sigmoid", cache.method, dout, cache.y),)


# --- tanh ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TanhCache:
    y: np.ndarray      # the output tanh(x): the derivative is 1 - y^2
    method: str


def tanh_forward(x, *, method="auto"):
    """y = tanh(x), elementwise; x of any rank >= 1."""
    x = _input(x, 1)
    y, method = _elementwise("tanh", method, x)
    return y, TanhCache(y, method)


def tanh_backward(dout, cache: TanhCache):
    """-> (dx,) with dx = dout * (1 - y^2)."""
    check_cache(cache, TanhCache, "tanh_forward")
    return (_elementwise_backward("tanh", cache.method, dout, cache.y),)


# --- prelu ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PReluCache:
    x: np.ndarray
    weight: np.ndarray
    method: str        # the form the forward ran, for the backward


def _as_ncs(x: np.ndarray) -> np.ndarray:
    """The (N, C, S) view of a C-contiguous x of rank >= 2, S the product of the trailing axes.

    S is spelled out rather than left to reshape's -1, which is ambiguous when N or C is 0.
    """
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def _prelu_view(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x as (N, C, S) for per-channel slopes; as (1, 1, size) when one slope is shared by all."""
    if weight.shape[0] == 1:
        return x.reshape(1, 1, x.size)
    return _as_ncs(x)


def prelu_forward(x, weight, *, method="auto"):
    """y = x for x > 0, weight[c] * x for x <= 0, c the channel (axis 1).

    weight has shape (C,) (one slope per channel) or (1,) (one slope for every
    element); x has rank >= 1 (a 1-D x has no channel axis and takes weight (1,)).
    ``method``: "naive" the loop, "fast" its parallel twin (blocks of the (n, c) rows on every
    core, bit for bit the loop's y), "auto" the twin for large x (see ``dispatch``).
    """
    device = devices.device_of(x=x, weight=weight)
    dispatch.check_method("prelu", method, device)
    x = _input(x, 1)
    weight = as_float_array("weight", weight, ndim=1)
    same_dtype("x", x, weight=weight)
    if x.ndim == 1:
        if tuple(weight.shape) != (1,):
            raise ValueError(f"weight must have shape (1,) for a 1-D x of shape {tuple(x.shape)} "
                             f"(no channel axis), got {tuple(weight.shape)}")
    elif tuple(weight.shape) not in ((x.shape[1],), (1,)):
        raise ValueError(f"weight must have shape ({x.shape[1]},) (one slope per channel of x, axis 1) "
                         f"or (1,) (a single slope) for x of shape {tuple(x.shape)}, got {tuple(weight.shape)}")
    y = devices.empty_like(x)
    method, kernels = dispatch.select("prelu", method, device, x.size)
    kernels.forward(_prelu_view(x, weight), weight, _prelu_view(y, weight))
    return y, PReluCache(x, weight, method)


def prelu_backward(dout, cache: PReluCache):
    """-> (dx, dweight); dweight[c] sums dout * x over every x <= 0 that shares slope c.

    The fast form adds dweight's terms in another (fixed) order: it agrees with the loop to
    rounding; dx is the same bit for bit."""
    check_cache(cache, PReluCache, "prelu_forward")
    x, weight = cache.x, cache.weight
    device = devices.device_of(dout=dout, **{"the forward's x": x})
    dy = as_dout(dout, x.shape, x.dtype)
    dx, dweight = devices.empty_like(x), devices.empty_like(weight)
    dispatch.kernels("prelu", cache.method, device).backward(_prelu_view(dy, weight), _prelu_view(x, weight),
                                                             weight, _prelu_view(dx, weight), dweight)
    return dx, dweight


# --- maxout --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MaxoutCache:
    x_shape: tuple
    dtype: np.dtype
    pieces: int
    argmax: np.ndarray   # int64, the output's shape: the winning piece p of each output
    method: str


def maxout_forward(x, *, pieces, method="auto"):
    """x (N, K * pieces, ...) -> y (N, K, ...), y[n, k, ...] = max_p x[n, k * pieces + p, ...].

    The lecture's max(w1^T x + b1, w2^T x + b2) is a linear or conv layer with
    2K outputs followed by ``maxout_forward(..., pieces=2)``: maxout itself is only the max
    over each group of channels, no matrix product.  ``method``: "naive" the loop, "fast" its
    parallel twin (one task per (n, k) output row, bit for bit the loop's results), "auto" the
    twin for large x (see ``dispatch``).
    """
    device = devices.device_of(x=x)
    dispatch.check_method("maxout", method, device)
    x = _input(x, 2)
    pieces = as_int("pieces", pieces, 1)
    N, C = x.shape[0], x.shape[1]
    if C % pieces != 0:
        raise ValueError(f"pieces={pieces} must divide the channels of x (axis 1), got C={C} "
                         f"(x shape {tuple(x.shape)}); maxout needs C = K * pieces")
    out_shape = (N, C // pieces) + tuple(x.shape[2:])
    y = devices.empty(out_shape, x.dtype, device)
    argmax = devices.empty(out_shape, np.int64, device)
    method, kernels = dispatch.select("maxout", method, device, x.size)
    kernels.forward(_as_ncs(x), _as_ncs(y), _as_ncs(argmax), pieces)
    return y, MaxoutCache(tuple(x.shape), np.dtype(x.dtype), pieces, argmax, method)


def maxout_backward(dout, cache: MaxoutCache):
    """-> (dx,): each dout[n, k, ...] goes to the winning input channel, the others get 0."""
    check_cache(cache, MaxoutCache, "maxout_forward")
    argmax = cache.argmax
    device = devices.device_of(dout=dout, **{"the forward's argmax": argmax})
    dy = as_dout(dout, argmax.shape, cache.dtype)
    dx = devices.empty(cache.x_shape, cache.dtype, device)
    dispatch.kernels("maxout", cache.method, device).backward(_as_ncs(dy), _as_ncs(argmax), _as_ncs(dx),
                                                              cache.pieces)
    return (dx,)
