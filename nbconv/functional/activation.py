"""Activations: relu, leaky_relu, elu, sigmoid, tanh, prelu, maxout.

The elementwise ops accept x of any rank >= 1 and run their kernel over the
flattened array (one compiled kernel per dtype, whatever the rank).  PReLU and
maxout act per channel, channel axis 1, and view x as (N, C, S) with S the
product of the trailing axes.

Arrays of at least PARALLEL_MIN_SIZE elements run the elementwise ops' parallel twins
(``*_parallel`` in ``nbconv.kernels.activation``), which compute every element exactly as
the naive kernels beside them do, on every core.

At the kink x = 0 the derivative is taken from the x <= 0 side: relu'(0) = 0,
leaky_relu'(0) = negative_slope, elu'(0) = alpha, prelu'(0) = the slope.
sigmoid and tanh differentiate through their cached output:
sigma' = sigma (1 - sigma), tanh' = 1 - tanh^2.

CUDA device arrays in (see ``_device``): the launcher of the same name in
``nbconv.kernels.cuda.activation`` runs (one thread per element; there is no parallel
variant to choose on the GPU), and the outputs, gradients and caches are device arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nbconv.kernels import activation as K
from . import _device
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


# Arrays of at least this many elements run the parallel twin of a kernel; smaller ones the
# naive kernel itself, which is faster when waking a second thread costs more than the work.
# Both give the same numbers, bit for bit.
PARALLEL_MIN_SIZE = 1 << 16


def _fast(kernel, size: int):
    """The kernel to run on ``size`` elements: its parallel twin for large arrays."""
    return getattr(K, kernel.__name__ + "_parallel") if size >= PARALLEL_MIN_SIZE else kernel


def _on_gpu(kernel):
    """The CUDA launcher with the CPU kernel's name (nbconv.kernels.cuda.activation)."""
    return getattr(_device.kernels("activation", _device.CUDA), kernel.__name__)


def _elementwise(kernel, x: np.ndarray, *hyper) -> np.ndarray:
    """Run a 1-D elementwise forward kernel over the flattened x; the output keeps x's shape."""
    if _device.is_device_array(x):
        y = _device.empty_like(x)
        _on_gpu(kernel)(_device.flat(x), _device.flat(y), *hyper)
        return y
    y = np.empty_like(x)
    _fast(kernel, x.size)(x.reshape(-1), y.reshape(-1), *hyper)
    return y


def _elementwise_backward(kernel, dout, saved: np.ndarray, *hyper) -> np.ndarray:
    """Run a 1-D elementwise backward kernel; ``saved`` is the cached x or y (same shape as dout)."""
    if _device.device_of(dout=dout, **{"the forward's cached array": saved}) == _device.CUDA:
        dy = as_dout(dout, saved.shape, saved.dtype)
        dx = _device.empty_like(saved)
        _on_gpu(kernel)(_device.flat(dy), _device.flat(saved), _device.flat(dx), *hyper)
        return dx
    dy = as_dout(dout, saved.shape, saved.dtype)
    dx = np.empty_like(saved)
    _fast(kernel, saved.size)(dy.reshape(-1), saved.reshape(-1), dx.reshape(-1), *hyper)
    return dx


# --- relu --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReluCache:
    x: np.ndarray


def relu_forward(x):
    """y = max(0, x), elementwise; x of any rank >= 1."""
    x = _input(x, 1)
    return _elementwise(K.relu_forward, x), ReluCache(x)


def relu_backward(dout, cache: ReluCache):
    """-> (dx,) with dx = dout * [x > 0]."""
    check_cache(cache, ReluCache, "relu_forward")
    return (_elementwise_backward(K.relu_backward, dout, cache.x),)


# --- leaky_relu ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeakyReluCache:
    x: np.ndarray
    negative_slope: float


def leaky_relu_forward(x, *, negative_slope=0.01):
    """y = x for x > 0, negative_slope * x for x <= 0; x of any rank >= 1.

    The lecture's max(0.1 x, x) is ``negative_slope=0.1``; any real slope is accepted.
    """
    x = _input(x, 1)
    negative_slope = as_float("negative_slope", negative_slope)
    y = _elementwise(K.leaky_relu_forward, x, negative_slope)
    return y, LeakyReluCache(x, negative_slope)


def leaky_relu_backward(dout, cache: LeakyReluCache):
    """-> (dx,) with dx = dout for x > 0, negative_slope * dout for x <= 0."""
    check_cache(cache, LeakyReluCache, "leaky_relu_forward")
    return (_elementwise_backward(K.leaky_relu_backward, dout, cache.x, cache.negative_slope),)


# --- elu -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EluCache:
    x: np.ndarray
    alpha: float


def elu_forward(x, *, alpha=1.0):
    """y = x for x > 0, alpha * (exp(x) - 1) for x <= 0; alpha >= 0; x of any rank >= 1."""
    x = _input(x, 1)
    alpha = as_float("alpha", alpha, minimum=0.0)
    return _elementwise(K.elu_forward, x, alpha), EluCache(x, alpha)


def elu_backward(dout, cache: EluCache):
    """-> (dx,) with dx = dout for x > 0, dout * alpha * exp(x) for x <= 0."""
    check_cache(cache, EluCache, "elu_forward")
    return (_elementwise_backward(K.elu_backward, dout, cache.x, cache.alpha),)


# --- sigmoid -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SigmoidCache:
    y: np.ndarray      # the output sigma(x): the derivative is y (1 - y)


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), elementwise, in a form that never overflows; x of any rank >= 1."""
    x = _input(x, 1)
    y = _elementwise(K.sigmoid_forward, x)
    return y, SigmoidCache(y)


def sigmoid_backward(dout, cache: SigmoidCache):
    """-> (dx,) with dx = dout * y * (1 - y)."""
    check_cache(cache, SigmoidCache, "sigmoid_forward")
    return (_elementwise_backward(K.sigmoid_backward, dout, cache.y),)


# --- tanh ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TanhCache:
    y: np.ndarray      # the output tanh(x): the derivative is 1 - y^2


def tanh_forward(x):
    """y = tanh(x), elementwise; x of any rank >= 1."""
    x = _input(x, 1)
    y = _elementwise(K.tanh_forward, x)
    return y, TanhCache(y)


def tanh_backward(dout, cache: TanhCache):
    """-> (dx,) with dx = dout * (1 - y^2)."""
    check_cache(cache, TanhCache, "tanh_forward")
    return (_elementwise_backward(K.tanh_backward, dout, cache.y),)


# --- prelu ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PReluCache:
    x: np.ndarray
    weight: np.ndarray


def _kernels(device: str):
    """The activation kernels of ``device``: the CPU module K, or its CUDA twin."""
    return K if device == _device.CPU else _device.kernels("activation", device)


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


def prelu_forward(x, weight):
    """y = x for x > 0, weight[c] * x for x <= 0, c the channel (axis 1).

    weight has shape (C,) (one slope per channel) or (1,) (one slope for every
    element); x has rank >= 1 (a 1-D x has no channel axis and takes weight (1,)).
    """
    device = _device.device_of(x=x, weight=weight)
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
    y = _device.empty_like(x)
    _kernels(device).prelu_forward(_prelu_view(x, weight), weight, _prelu_view(y, weight))
    return y, PReluCache(x, weight)


def prelu_backward(dout, cache: PReluCache):
    """-> (dx, dweight); dweight[c] sums dout * x over every x <= 0 that shares slope c."""
    check_cache(cache, PReluCache, "prelu_forward")
    x, weight = cache.x, cache.weight
    device = _device.device_of(dout=dout, **{"the forward's x": x})
    dy = as_dout(dout, x.shape, x.dtype)
    dx, dweight = _device.empty_like(x), _device.empty_like(weight)
    _kernels(device).prelu_backward(_prelu_view(dy, weight), _prelu_view(x, weight), weight,
                                    _prelu_view(dx, weight), dweight)
    return dx, dweight


# --- maxout --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MaxoutCache:
    x_shape: tuple
    dtype: np.dtype
    pieces: int
    argmax: np.ndarray   # int64, the output's shape: the winning piece p of each output


def maxout_forward(x, *, pieces):
    """x (N, K * pieces, ...) -> y (N, K, ...), y[n, k, ...] = max_p x[n, k * pieces + p, ...].

    The lecture's max(w1^T x + b1, w2^T x + b2) is a linear or conv layer with
    2K outputs followed by ``maxout_forward(..., pieces=2)``.
    """
    device = _device.device_of(x=x)
    x = _input(x, 2)
    pieces = as_int("pieces", pieces, 1)
    N, C = x.shape[0], x.shape[1]
    if C % pieces != 0:
        raise ValueError(f"pieces={pieces} must divide the channels of x (axis 1), got C={C} "
                         f"(x shape {tuple(x.shape)}); maxout needs C = K * pieces")
    out_shape = (N, C // pieces) + tuple(x.shape[2:])
    y = _device.empty(out_shape, x.dtype, device)
    argmax = _device.empty(out_shape, np.int64, device)
    _kernels(device).maxout_forward(_as_ncs(x), _as_ncs(y), _as_ncs(argmax), pieces)
    return y, MaxoutCache(tuple(x.shape), np.dtype(x.dtype), pieces, argmax)


def maxout_backward(dout, cache: MaxoutCache):
    """-> (dx,): each dout[n, k, ...] goes to the winning input channel, the others get 0."""
    check_cache(cache, MaxoutCache, "maxout_forward")
    argmax = cache.argmax
    device = _device.device_of(dout=dout, **{"the forward's argmax": argmax})
    dy = as_dout(dout, argmax.shape, cache.dtype)
    dx = _device.empty(cache.x_shape, cache.dtype, device)
    _kernels(device).maxout_backward(_as_ncs(dy), _as_ncs(argmax), _as_ncs(dx), cache.pieces)
    return (dx,)
