"""Normalization: batch, layer, instance and group norm, weight standardization, LRN.

Each normalization splits the values into groups and maps every group to zero mean
and unit (biased) variance, xhat = (x - mean) / sqrt(var + eps), then scales and
shifts with learned gamma and beta.  The ops differ in the axes their statistics
run over (the lecture on CNN layers, docs/worked-examples.md):

- batch_norm: per channel, over the batch and the spatial axes.  Training uses the
  batch statistics and updates the running ones in place; inference uses the
  running statistics and changes nothing.
- layer_norm: per sample, over the last ``normalized_ndim`` axes.
- instance_norm: per (sample, channel), over the spatial axes.
- group_norm: per (sample, group of C / num_groups channels), over those channels
  and the spatial axes.
- weight_standardize: per output filter of a weight, over the rest (no affine).

All five run on the same steps (``nbconv.kernels.norm``), each through a 3-D view
of its data chosen so that the statistics are taken per middle index.
``local_response_norm`` (AlexNet's LRN) divides by a power of the squares of the
neighbouring channels instead.

``method`` (every forward takes it; see ``dispatch``, whose table names each op's kernels; the
backward runs the form its forward ran, kept in the cache):

- "naive": the teaching steps one after the other, each a loop nest over the whole array
  (moments, normalize, the affine step; backward: the affine step's, then normalize's).
- "fast": the parallel twins (``*_parallel``), one task per group (a channel of batch norm, a
  row of layer norm, a (sample, group) of instance and group norm, a filter of weight
  standardization) that takes its statistics and writes xhat and out in one visit, the sums
  vectorized in float64; the backward's per-element formula runs in x's dtype.  LRN's twin
  computes d^(-beta) as exp(-beta * log d) with nbconv.kernels.vecmath (vectorizable).  The
  numbers agree with the naive ones to rounding, and do not depend on the thread count.
- "auto" (the default): "fast" from dispatch.FAST_FROM[op] elements of x (of w for weight
  standardization) on, "naive" below.

The kernels see x in one view per family: batch norm and LRN (N, C, S), layer norm (R, M) (a
row per group), instance and group norm (N, G, K, S) (G groups of K channels; instance norm,
K = 1, shares group norm's kernels), weight standardization (1, F, M).

A constant group (variance 0) is safe: eps sits inside the square root and the
mean of a constant group is its value exactly, so xhat = 0 and the output is beta.

CUDA device arrays in (see ``nbconv.devices``): the naive form's launchers of the same names in
``nbconv.kernels.cuda.norm`` run (dispatch.cuda_table; "fast" is refused there), the
statistics and inv_std are device arrays of x's dtype (float32 data computes in float32 on the
GPU, as cuDNN keeps float32 statistics; the CPU keeps them in float64), and outputs and caches
stay on the device.  The running statistics of batch norm must then be device arrays as well
(``layer.to("cuda")`` moves a BatchNorm layer's buffers); they are updated in place on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nbconv.kernels import norm as K
from nbconv import devices

from . import dispatch
from ._checks import (as_dout, as_float, as_float_array, as_int, check_cache, check_contiguous, check_shape,
                      same_dtype)

__all__ = [
    "BatchNormCache", "batch_norm_forward", "batch_norm_backward",
    "NormCache", "layer_norm_forward", "layer_norm_backward",
    "instance_norm_forward", "instance_norm_backward",
    "group_norm_forward", "group_norm_backward",
    "WeightStandardizeCache", "weight_standardize_forward", "weight_standardize_backward",
    "LocalResponseNormCache", "local_response_norm_forward", "local_response_norm_backward",
]


# --- shared checks and steps ---------------------------------------------------------------------

def _as_eps(eps) -> float:
    eps = as_float("eps", eps)
    if not eps > 0.0:                       # also refuses NaN
        raise ValueError(f"eps must be > 0 (it keeps sqrt(var + eps) away from 0), got {eps}")
    return eps


def _stat_dtype(x, device: str):
    """The dtype of the statistics (mean, var, inv_std): float64 on the CPU, whose kernels sum in
    float64; x's dtype on the GPU, whose kernels compute float32 data in float32 (as cuDNN)."""
    return np.dtype(np.float64) if device == devices.CPU else np.dtype(x.dtype)


def _running_average_update(device: str):
    """The running-statistics update of batch norm on ``device``, the one step outside the table
    (the same in both forms: one pass over C values)."""
    if device == devices.CPU:
        return K.running_average_update
    from nbconv.kernels.cuda import norm as cuda_norm
    return cuda_norm.running_average_update


def _as_ncs(x: np.ndarray) -> np.ndarray:
    """x (N, C, ...) viewed as (N, C, S), S = the product of the spatial axes (1 for none);
    S is computed, not reshape's -1, which cannot be solved when N * C = 0."""
    return x.reshape(x.shape[:2] + (math.prod(x.shape[2:]),))


def _affine_params(x: np.ndarray, gamma, beta, shape: tuple, what: str):
    """gamma and beta as arrays of x's dtype and the given shape (``what`` says why)."""
    gamma = as_float_array("gamma", gamma)
    beta = as_float_array("beta", beta)
    same_dtype("x", x, gamma=gamma, beta=beta)
    for name, arr in (("gamma", gamma), ("beta", beta)):
        if tuple(arr.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)} ({what}) for x of shape "
                             f"{tuple(x.shape)}, got {tuple(arr.shape)}")
    return gamma, beta


def _check_group_size(op: str, x: np.ndarray, groups: int, size: int, axes: str, name: str = "x") -> None:
    """Refuse groups of 0 values (a mean over nothing), unless there are no groups at all."""
    if groups > 0 and size == 0:
        raise ValueError(f"{op}: the {axes} of {name} (shape {x.shape}) hold no values, "
                         f"so there is nothing to normalize over")


# --- layer, instance and group norm: normalize each group, then the affine step ----------------

@dataclass(frozen=True)
class NormCache:
    """What layer/instance/group norm's backward needs: xhat in the kernels' view of x
    (layer norm (R, M); instance and group norm (N, G, K, S)), one inv_std per group."""
    xhat: np.ndarray          # the kernels' view of x, x's dtype
    inv_std: np.ndarray       # (groups,): 1 / sqrt(var + eps) of every group (float64; on a GPU x's dtype)
    gamma: np.ndarray         # as given (layer norm: the normalized shape; else (C,))
    x_shape: tuple
    method: str               # the form the forward ran, for the backward


def _normalize_affine(op, method, x, gamma, beta, eps, view, groups):
    """out = gamma * xhat + beta, xhat normalized per group: op's kernels (dispatch) on x seen
    as ``view``, with ``groups`` statistics."""
    device = devices.array_device(x)
    method, kernels = dispatch.select(op, method, device, x.size)
    xhat, out = devices.empty(view, x.dtype, device), devices.empty_like(x)
    inv_std = devices.empty(groups, _stat_dtype(x, device), device)
    kernels.forward(x.reshape(view), gamma.reshape(-1), beta.reshape(-1), eps, xhat, inv_std, out.reshape(view))
    return out, NormCache(xhat, inv_std, gamma, tuple(x.shape), method)


def _normalize_affine_backward(op, dout, cache: NormCache):
    """-> (dx, dgamma, dbeta), through the backward kernel of the form the forward ran."""
    xhat, gamma = cache.xhat, cache.gamma
    device = devices.device_of(dout=dout, **{"the forward's xhat": xhat})
    dy = as_dout(dout, cache.x_shape, xhat.dtype)
    dx = devices.empty(cache.x_shape, xhat.dtype, device)
    dgamma, dbeta = devices.empty_like(gamma), devices.empty_like(gamma)
    dispatch.kernels(op, cache.method, device).backward(dy.reshape(xhat.shape), xhat, gamma.reshape(-1), cache.inv_std,
                                                        dx.reshape(xhat.shape), dgamma.reshape(-1), dbeta.reshape(-1))
    return dx, dgamma, dbeta


def layer_norm_forward(x, gamma, beta, *, normalized_ndim, eps=1e-5, method="auto"):
    """Normalize over the last ``normalized_ndim`` axes of x, then out = gamma * xhat + beta.

    gamma and beta have the shape of those axes, x.shape[-normalized_ndim:] (an
    elementwise affine).  For a conv activation (N, C, H, W), normalized_ndim = 3
    gives the lecture's per-sample statistics over (C, H, W).  The kernels see x as (R, M),
    a row per group (R the product of the other axes, M of the normalized ones).
    """
    dispatch.check_method("layer_norm", method, devices.device_of(x=x, gamma=gamma, beta=beta))
    x = as_float_array("x", x)
    normalized_ndim = as_int("normalized_ndim", normalized_ndim, 1)
    if normalized_ndim > x.ndim:
        raise ValueError(f"normalized_ndim must be between 1 and x.ndim = {x.ndim} (x has shape "
                         f"{tuple(x.shape)}), got {normalized_ndim}")
    eps = _as_eps(eps)
    normalized = x.shape[x.ndim - normalized_ndim:]
    gamma, beta = _affine_params(x, gamma, beta, normalized,
                                 f"the last {normalized_ndim} axes of x, normalized_ndim={normalized_ndim}")
    R, M = math.prod(x.shape[:x.ndim - normalized_ndim]), math.prod(normalized)
    _check_group_size("layer_norm", x, R, M, f"last {normalized_ndim} axes")
    return _normalize_affine("layer_norm", method, x, gamma, beta, eps, (R, M), R)


def layer_norm_backward(dout, cache: NormCache):
    """-> (dx, dgamma, dbeta), dgamma and dbeta of gamma's shape."""
    check_cache(cache, NormCache, "layer_norm_forward")
    return _normalize_affine_backward("layer_norm", dout, cache)


def _spatial_input(op, method, x, gamma, beta, ndim):
    dispatch.check_method(op, method, devices.device_of(x=x, gamma=gamma, beta=beta))
    x = as_float_array("x", x, ndim=ndim)
    gamma, beta = _affine_params(x, gamma, beta, (x.shape[1],),
                                 "one value per channel of x, axis 1")
    return x, gamma, beta


def instance_norm_forward(x, gamma, beta, *, eps=1e-5, method="auto"):
    """x (N, C, L) or (N, C, H, W): normalize each (sample, channel) over its spatial axes,
    then out[n, c] = gamma[c] * xhat[n, c] + beta[c].  (Group norm's kernels, with one channel
    per group: x seen as (N, C, 1, S).)"""
    x, gamma, beta = _spatial_input("instance_norm", method, x, gamma, beta, (3, 4))
    eps = _as_eps(eps)
    N, C, S = _as_ncs(x).shape
    _check_group_size("instance_norm", x, N * C, S, "spatial axes")
    return _normalize_affine("instance_norm", method, x, gamma, beta, eps, (N, C, 1, S), N * C)


def instance_norm_backward(dout, cache: NormCache):
    """-> (dx, dgamma, dbeta)."""
    check_cache(cache, NormCache, "instance_norm_forward")
    return _normalize_affine_backward("instance_norm", dout, cache)


def group_norm_forward(x, gamma, beta, *, num_groups, eps=1e-5, method="auto"):
    """x (N, C), (N, C, L) or (N, C, H, W), channels split into ``num_groups`` groups of
    C / num_groups consecutive channels: normalize each (sample, group) over its channels
    and spatial axes, then out[n, c] = gamma[c] * xhat[n, c] + beta[c].

    num_groups = 1 is layer norm over (C, H, W) with a per-channel affine;
    num_groups = C is instance norm.  The kernels see x as (N, G, K, S): G = num_groups
    groups of K = C / G channels, S the product of the spatial axes.
    """
    x, gamma, beta = _spatial_input("group_norm", method, x, gamma, beta, (2, 3, 4))
    num_groups = as_int("num_groups", num_groups, 1)
    eps = _as_eps(eps)
    N, C, S = _as_ncs(x).shape
    if C % num_groups != 0:
        raise ValueError(f"num_groups must divide the number of channels C = {C} of x (shape "
                         f"{tuple(x.shape)}), got num_groups={num_groups}")
    G, K = num_groups, C // num_groups
    _check_group_size("group_norm", x, N * G, K * S, "channels and spatial axes")
    return _normalize_affine("group_norm", method, x, gamma, beta, eps, (N, G, K, S), N * G)


def group_norm_backward(dout, cache: NormCache):
    """-> (dx, dgamma, dbeta)."""
    check_cache(cache, NormCache, "group_norm_forward")
    return _normalize_affine_backward("group_norm", dout, cache)


# --- weight standardization ----------------------------------------------------------------------

@dataclass(frozen=True)
class WeightStandardizeCache:
    w_hat: np.ndarray        # (1, F, M): row f is the standardized filter w[f]
    inv_std: np.ndarray      # (F,), float64 (on a GPU w's dtype)
    w_shape: tuple
    method: str              # the form the forward ran, for the backward


def weight_standardize_forward(w, *, eps=1e-5, method="auto"):
    """w_hat[f] = (w[f] - mean(w[f])) / sqrt(var(w[f]) + eps), per output filter f.

    w of rank >= 2: a conv weight (F, C, KH, KW) is standardized over (C, KH, KW), a
    linear weight (out, in) over its row.  Biased variance; no affine.  Applied to the
    weight before the convolution, so its gradient flows back to the raw weight.
    """
    device = devices.device_of(w=w)
    dispatch.check_method("weight_standardize", method, device)
    w = as_float_array("w", w)
    if w.ndim < 2:
        raise ValueError(f"w must have rank >= 2 (an output-filter axis first), got a {w.ndim}-D "
                         f"array of shape {tuple(w.shape)}")
    eps = _as_eps(eps)
    F, M = w.shape[0], math.prod(w.shape[1:])
    _check_group_size("weight_standardize", w, F, M, "axes after the first", name="w")
    method, kernels = dispatch.select("weight_standardize", method, device, w.size)
    w_hat, inv_std = devices.empty((1, F, M), w.dtype, device), devices.empty(F, _stat_dtype(w, device), device)
    kernels.forward(w.reshape(1, F, M), eps, w_hat, inv_std)
    return devices.copy(w_hat.reshape(w.shape)), WeightStandardizeCache(w_hat, inv_std, tuple(w.shape), method)


def weight_standardize_backward(dout, cache: WeightStandardizeCache):
    """-> (dw,), the gradient through each filter's mean and variance."""
    check_cache(cache, WeightStandardizeCache, "weight_standardize_forward")
    w_hat = cache.w_hat
    device = devices.device_of(dout=dout, **{"the forward's w_hat": w_hat})
    dy = as_dout(dout, cache.w_shape, w_hat.dtype)
    dw = devices.empty_like(w_hat)
    dispatch.kernels("weight_standardize", cache.method, device).backward(dy.reshape(w_hat.shape), w_hat,
                                                                          cache.inv_std, dw)
    return (dw.reshape(cache.w_shape),)


# --- batch norm ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchNormCache:
    xhat: np.ndarray          # x's shape and dtype
    inv_std: np.ndarray       # (C,), float64 (on a GPU x's dtype): from the batch (training) or running (inference) var
    gamma: np.ndarray         # (C,)
    training: bool
    method: str               # the form the forward ran, for the backward


def _running_stat(name: str, arr, x: np.ndarray, training: bool) -> np.ndarray:
    """A running statistic: shape (C,), x's dtype; in training also writable and C-contiguous,
    because it is updated in place (a copy would silently drop the update)."""
    C = x.shape[1]
    if devices.is_device_array(arr):
        return _device_running_stat(name, arr, x)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of shape ({C},), got {type(arr).__name__}")
    if arr.dtype != x.dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but x has dtype {x.dtype}; the running "
                        f"statistics must have x's dtype")
    check_shape(name, arr, (C,))
    if training and not arr.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous: it is updated in place in training, and a "
                         f"strided view (strides {arr.strides}) cannot be; pass a contiguous array")
    if training and not arr.flags.writeable:
        raise ValueError(f"{name} must be writable: it is updated in place in training")
    return arr if training else np.ascontiguousarray(arr)


def _device_running_stat(name: str, arr, x):
    """_running_stat for a device array: x's dtype, shape (C,), contiguous (device arrays are
    writable; a strided view of one is refused in training and inference alike)."""
    arr = devices.as_device_array(arr)
    if np.dtype(arr.dtype) != np.dtype(x.dtype):
        raise TypeError(f"{name} has dtype {arr.dtype} but x has dtype {x.dtype}; the running "
                        f"statistics must have x's dtype")
    check_shape(name, arr, (x.shape[1],))
    check_contiguous(name, arr)
    return arr


def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, training=True,
                       momentum=0.1, eps=1e-5, unbiased=True, method="auto"):
    """x (N, C), (N, C, L) or (N, C, H, W): per channel c, over the batch and spatial axes,

        out[n, c] = gamma[c] * (x[n, c] - mean[c]) / sqrt(var[c] + eps) + beta[c]

    Training (``training=True``): mean and var are the batch's (var biased); the running
    statistics, arrays of shape (C,) and x's dtype, are updated in place,

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * m / (m - 1) * var

    with the unbiased variance as in the paper's inference procedure (m = N * L or
    N * H * W values per channel; at least 2 are needed).  The lecture's smoothing
    alpha is 1 - momentum; running statistics start at 0 and 1.

    ``unbiased=False`` is the lecture's convention: the running variance is smoothed with the
    biased batch variance, the one the batch was normalized with,

        running_var  = (1 - momentum) * running_var  + momentum * var

    Only the running variance changes: the output, the gradients and running_mean are the
    same either way, and so is inference.

    Inference (``training=False``): mean and var are the running statistics; nothing
    changes, and each sample's output depends on that sample only.
    """
    device = devices.device_of(x=x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    dispatch.check_method("batch_norm", method, device)
    x = as_float_array("x", x, ndim=(2, 3, 4))
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    training = bool(training)
    if not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"unbiased must be a bool (True: the running variance takes the unbiased batch "
                        f"variance m / (m - 1) * var; False: the biased var, as the lecture), got {unbiased!r}")
    gamma, beta = _affine_params(x, gamma, beta, (x.shape[1],), "one value per channel of x, axis 1")
    running_mean = _running_stat("running_mean", running_mean, x, training)
    running_var = _running_stat("running_var", running_var, x, training)
    momentum = as_float("momentum", momentum)
    if not 0.0 <= momentum <= 1.0:         # also refuses NaN
        raise ValueError(f"momentum must be in [0, 1] (the weight of the new batch), got {momentum}")
    eps = _as_eps(eps)
    x3 = _as_ncs(x)
    N, C, S = x3.shape
    if training:
        m = N * S
        if m < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel to "
                             f"compute batch statistics, got x of shape {tuple(x.shape)} (N * spatial = {m}); "
                             f"use a larger batch or training=False")
        mean, var = devices.empty(C, _stat_dtype(x, device), device), devices.empty(C, _stat_dtype(x, device), device)
    elif device == devices.CPU:
        # float64 copies of the running statistics (which may be read-only): the kernels take
        # one type of mean and var, and only read them in inference
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    else:
        mean, var = running_mean, running_var
    method, kernels = dispatch.select("batch_norm", method, device, x.size)
    xhat, out, inv_std = devices.empty_like(x3), devices.empty_like(x3), devices.empty(C, _stat_dtype(x, device), device)
    kernels.forward(x3, gamma, beta, eps, training, mean, var, xhat, inv_std, out)
    if training:
        correction = m / (m - 1) if unbiased else 1.0     # Bessel's correction, or the lecture's biased var
        _running_average_update(device)(running_mean, running_var, mean, var, momentum, correction)
    return out.reshape(x.shape), BatchNormCache(xhat.reshape(x.shape), inv_std, gamma, training, method)


def batch_norm_backward(dout, cache: BatchNormCache):
    """-> (dx, dgamma, dbeta), in one kernel per call, of the form the forward ran.  Training:
    the full gradient through the batch mean and variance; inference: through the affine step
    only (the running statistics are constants).  The graph, the chain rule node by node and
    the algebra to the formula the loop computes are in nbconv.kernels.norm.batch_norm_backward's
    docstring."""
    check_cache(cache, BatchNormCache, "batch_norm_forward")
    xhat, gamma = cache.xhat, cache.gamma
    device = devices.device_of(dout=dout, **{"the forward's xhat": xhat})
    dy = as_dout(dout, xhat.shape, xhat.dtype)
    dx, dgamma, dbeta = devices.empty_like(xhat), devices.empty_like(gamma), devices.empty_like(gamma)
    dispatch.kernels("batch_norm", cache.method, device).backward(
        _as_ncs(dy), _as_ncs(xhat), gamma, cache.inv_std, cache.training, _as_ncs(dx), dgamma, dbeta)
    return dx, dgamma, dbeta


# --- local response normalization ----------------------------------------------------------------

@dataclass(frozen=True)
class LocalResponseNormCache:
    x: np.ndarray
    d: np.ndarray             # x's shape: k + alpha / size * (sum of squares over the window)
    size: int
    alpha: float
    beta: float
    method: str               # the form the forward ran, for the backward


def local_response_norm_forward(x, *, size, alpha=1e-4, beta=0.75, k=1.0, method="auto"):
    """AlexNet's LRN across channels, as Caffe and PyTorch define it: x (N, C, L) or (N, C, H, W),

        out[n, c] = x[n, c] / (k + alpha / size * sum_{c'} x[n, c']^2) ** beta

    the sum over c' = c - size // 2 ... c + (size - 1) // 2, channels outside [0, C)
    counting as zero.  size >= 1, alpha >= 0 and k > 0 keep the base >= k > 0.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("local_response_norm", method, device)
    x = as_float_array("x", x, ndim=(3, 4))
    size = as_int("size", size, 1)
    alpha = as_float("alpha", alpha)
    beta = as_float("beta", beta)
    k = as_float("k", k)
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, got {beta}")
    if not k > 0.0:
        raise ValueError(f"k must be > 0 (it keeps the base k + alpha / size * sum x^2 positive), got {k}")
    method, kernels = dispatch.select("local_response_norm", method, device, x.size)
    d, out = devices.empty_like(x), devices.empty_like(x)
    kernels.forward(_as_ncs(x), size, alpha, beta, k, _as_ncs(d), _as_ncs(out))
    return out, LocalResponseNormCache(x, d, size, alpha, beta, method)


def local_response_norm_backward(dout, cache: LocalResponseNormCache):
    """-> (dx,), the direct term plus the cross-channel term through every window holding x."""
    check_cache(cache, LocalResponseNormCache, "local_response_norm_forward")
    x = cache.x
    device = devices.device_of(dout=dout, **{"the forward's x": x})
    dy = as_dout(dout, x.shape, x.dtype)
    dx = devices.empty_like(x)
    dispatch.kernels("local_response_norm", cache.method, device).backward(
        _as_ncs(dy), _as_ncs(x), _as_ncs(cache.d), cache.size, cache.alpha, cache.beta, _as_ncs(dx))
    return (dx,)
