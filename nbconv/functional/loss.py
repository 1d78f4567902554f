"""softmax, log_softmax and the losses: cross_entropy, mse, mae, bce, bce_with_logits.

softmax and log_softmax work on any axis of an array of any rank >= 1, without moving it: x is
viewed as (A, C, B), C the length of the axis, A the product of the axes before it, B of those
after (a reshape of the contiguous array, no copy), and the kernels compute one distribution
over c for every (a, b).  Both subtract the maximum before exp, so large inputs (x + 1000)
cannot overflow.

Every loss is the MEAN over its batch (cross_entropy) or over all elements (the others),
returned as a 0-d array of the input's dtype (a device array on the GPU, see below:
``float(loss)`` works on both).  Its backward takes the upstream gradient
``dout`` as a Python float or a 0-d array (pass 1.0 when the loss ends the graph) and returns
the gradient of the prediction only; targets are not differentiated.

An empty input (no sample, no element) is refused with ValueError: its mean is undefined
(NumPy would return NaN with a warning; a silent NaN loss would poison training instead).

Every forward takes ``method`` (see ``dispatch``): "naive" runs the loops of
``nbconv.kernels.loss``, the formulas as written; "fast" their ``*_fast`` twins, on every core,
with the vectorizable exp and log of ``nbconv.kernels.vecmath`` (softmax and log_softmax by
rows when the axis is the last, by tiles of neighbouring (a, b) otherwise; cross_entropy by
rows; the mean losses' sums over fixed chunks, added in order, so that the loss does not depend
on the number of threads); "auto", the default, the fast form from ``dispatch.FAST_FROM``
elements on.  The backward runs the form its forward ran (kept in the cache).  Both forms give
the same numbers to rounding: vecmath's exp and log are within 2 ulp of the C library's, and
the fast sums add in another order (tests/test_dispatch_loss.py holds them to each other).

On the GPU (CUDA device arrays in, see ``nbconv.devices``) there is one set of kernels, which
every method the device dispatch accepts runs: the ``@cuda.jit`` twins of
``nbconv.kernels.cuda.loss`` (a block per distribution for the maxima and sums over the classes,
a thread per element for the rest), on the same (A, C, B) view for softmax and log_softmax,
which return device arrays.  Every loss returns its value as a 0-d DEVICE array of the
input's dtype, nothing copied to the host: the kernels reduce the terms to the mean on the
device.  ``float(loss)`` reads it (one copy, which waits for the GPU to finish), and so do ``f"{loss:.4f}"``,
``np.asarray(loss)`` and ``loss.copy_to_host()``; a training loop reads it when it prints,
not at every step (nbconv.training reads the epoch's losses once, at the end of the epoch).
Each backward takes the upstream gradient of a scalar as a Python float, a 0-d NumPy array or a
0-d device array: a device array, such as the loss value itself, is read by the kernels on the
device, never on the host.  The class targets of cross_entropy must be a device array of
integers too (or of floats, for probability targets).  Shapes and dtypes are checked always;
the VALUES of device arrays (class indices in [0, C), bce's p in [0, 1]) only in the debug mode
(NBCONV_DEBUG=1, docs/debug.md), since that check copies to the host.  Without it, an
out-of-range value makes the loss NaN (the kernels never index outside a row for it).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float_array, check_cache, check_contiguous, debug, same_dtype

__all__ = [
    "SoftmaxCache", "softmax_forward", "softmax_backward",
    "LogSoftmaxCache", "log_softmax_forward", "log_softmax_backward",
    "CrossEntropyCache", "cross_entropy_forward", "cross_entropy_backward",
    "MSECache", "mse_forward", "mse_backward",
    "MAECache", "mae_forward", "mae_backward",
    "BCECache", "bce_forward", "bce_backward",
    "BCEWithLogitsCache", "bce_with_logits_forward", "bce_with_logits_backward",
]


# ---------------------------------------------------------------- axis handling

def _check_axis(axis, x: np.ndarray) -> int:
    """A valid axis of ``x`` (negative counts from the end), returned in [0, ndim)."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an int, got {axis!r}")
    ndim = x.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must be in [-{ndim}, {ndim}) for x of shape {x.shape}, got {axis}")
    return int(axis) % ndim


def _around(shape: tuple, axis: int) -> tuple[int, int, int]:
    """(A, C, B): the product of the sizes before the axis, its size, the product after it."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def _softmax_input(x, axis) -> tuple[np.ndarray, int]:
    x = as_float_array("x", x)
    if x.ndim == 0:
        raise ValueError(f"x must be at least 1-D (the softmax axis), got a 0-D array of shape {x.shape}")
    return x, _check_axis(axis, x)


# ---------------------------------------------------------------- softmax and log-softmax

@dataclass(frozen=True)
class SoftmaxCache:
    out: np.ndarray        # the output (softmax or log-softmax), viewed as (A, C, B)
    axis: int              # in [0, ndim)
    shape: tuple           # the shape of x and of the output
    method: str            # the form the forward ran ("naive" or "fast"), for the backward


LogSoftmaxCache = SoftmaxCache    # both backward passes need only the output


def _distribution_forward(op: str, method, x, axis):
    """x viewed as (A, C, B) (a reshape: x is contiguous) -> op's kernel -> the output of x's shape."""
    device = devices.device_of(x=x)
    x, ax = _softmax_input(x, axis)
    method, kernels = dispatch.select(op, method, device, x.size)
    x3 = x.reshape(_around(tuple(x.shape), ax))
    out3 = devices.empty_like(x3)
    kernels.forward(x3, out3)
    return out3.reshape(tuple(x.shape)), SoftmaxCache(out3, ax, tuple(x.shape), method)


def _distribution_backward(op: str, dout, cache: SoftmaxCache):
    device = devices.device_of(dout=dout, **{"the forward's output": cache.out})
    dout3 = as_dout(dout, cache.shape, cache.out.dtype).reshape(tuple(cache.out.shape))
    dx3 = devices.empty_like(cache.out)
    dispatch.kernels(op, cache.method, device).backward(cache.out, dout3, dx3)
    return (dx3.reshape(cache.shape),)


def softmax_forward(x, *, axis=-1, method="auto"):
    """softmax(x)_i = exp(x_i) / sum_k exp(x_k) along ``axis``, computed as
    exp(x_i - max x) / sum_k exp(x_k - max x) (the same numbers, no overflow).

    x of any rank >= 1, any axis (negative allowed) -> s of x's shape and dtype.
    """
    return _distribution_forward("softmax", method, x, axis)


def softmax_backward(dout, cache: SoftmaxCache):
    """-> (dx,), dx = s * (dout - sum(dout * s)) along the axis."""
    check_cache(cache, SoftmaxCache, "softmax_forward")
    return _distribution_backward("softmax", dout, cache)


def log_softmax_forward(x, *, axis=-1, method="auto"):
    """log_softmax(x)_i = x_i - log sum_k exp(x_k) along ``axis``, computed as
    (x_i - max x) - log sum_k exp(x_k - max x): finite even where softmax underflows to 0.

    x of any rank >= 1, any axis (negative allowed) -> out of x's shape and dtype.
    """
    return _distribution_forward("log_softmax", method, x, axis)


def log_softmax_backward(dout, cache: SoftmaxCache):
    """-> (dx,), dx = dout - softmax * sum(dout) along the axis."""
    check_cache(cache, SoftmaxCache, "log_softmax_forward")
    return _distribution_backward("log_softmax", dout, cache)


# ---------------------------------------------------------------- cross-entropy

@dataclass(frozen=True)
class CrossEntropyCache:
    probs: np.ndarray      # softmax(logits), (N, C)
    target: np.ndarray     # int64 class indices, (N,); or the probability targets, (N, C) floats
    method: str            # the form the forward ran, for the backward
    variant: str | None = None   # None: class indices; "soft": probability targets (dispatch.VARIANTS)


def _as_class_target(target, logits: np.ndarray) -> np.ndarray:
    """Integer class indices of shape (N,), each in [0, C), as C-contiguous int64 (on logits' device)."""
    N, C = logits.shape
    on_device = devices.is_device_array(target)
    if not isinstance(target, np.ndarray) and not on_device:
        raise TypeError(f"target must be a numpy.ndarray of integer class indices, got {type(target).__name__}")
    if on_device:
        target = devices.as_device_array(target)
    if np.dtype(target.dtype).kind not in "iu":
        raise TypeError(f"target has dtype {target.dtype}; class targets must have an integer dtype "
                        f"(int64, int32, uint8, ...) and shape ({N},); probability targets a float dtype "
                        f"and logits' shape {tuple(logits.shape)}")
    if tuple(target.shape) != (N,):
        raise ValueError(f"target must have shape ({N},) to match logits of shape {tuple(logits.shape)}, "
                         f"got {tuple(target.shape)}")
    if on_device:
        return _device_class_target(target, logits)
    if N > 0:
        lo, hi = target.min(), target.max()
        if lo < 0 or hi >= C:
            raise ValueError(f"target values must be class indices in [0, {C}) for logits of shape "
                             f"{logits.shape}, got values from {lo} to {hi}")
    return np.ascontiguousarray(target, dtype=np.int64)


def _is_probability_target(target) -> bool:
    """A 2-D float array (host or device): probability targets.  Anything else takes the
    class-index path, whose checks name what it got (a 1-D float array is most likely class
    indices stored as floats: "class targets must have an integer dtype")."""
    if not (isinstance(target, np.ndarray) or devices.is_device_array(target)):
        return False
    return np.dtype(target.dtype).kind == "f" and len(target.shape) == 2


def _as_probability_target(target, logits):
    """Probability targets: a float array of logits' shape (N, C) and dtype (on logits' device)."""
    if devices.is_device_array(target):
        target = devices.as_device_array(target)
    if np.dtype(target.dtype) != np.dtype(logits.dtype):
        raise TypeError(f"target has dtype {target.dtype} but logits has dtype {logits.dtype}; probability "
                        f"targets must have logits' dtype (class indices: an integer array of shape "
                        f"({logits.shape[0]},))")
    if tuple(target.shape) != tuple(logits.shape):
        raise ValueError(f"target of probabilities must have logits' shape {tuple(logits.shape)} (one "
                         f"distribution over the classes per sample), got {tuple(target.shape)}; class "
                         f"indices are an integer array of shape ({logits.shape[0]},)")
    return as_float_array("target", target)


def _count_outside(a, lo, hi) -> int:
    """How many values of the device array ``a`` lie outside [lo, hi], counted on the device
    (the count is copied to the host: only in the debug mode)."""
    count = devices.zeros(1, np.int64, devices.CUDA)
    if a.size:
        devices.elementwise().count_outside(devices.flat(a), lo, hi, count)
    return int(count.copy_to_host()[0])


def _device_class_target(target, logits):
    """The device path of _as_class_target: int64 by a copy kernel; the range counted on the
    device in the debug mode only (docs/debug.md)."""
    N, C = logits.shape
    check_contiguous("target", target)
    if debug() and _count_outside(target, 0, C - 1):
        host = target.copy_to_host()               # only to name the values in the message
        raise ValueError(f"target values must be class indices in [0, {C}) for logits of shape "
                         f"{tuple(logits.shape)}, got values from {host.min()} to {host.max()}")
    if np.dtype(target.dtype) == np.dtype(np.int64):
        return target
    as_int64 = devices.empty(N, np.int64, devices.CUDA)
    if N:
        devices.elementwise().copy(target, as_int64)
    return as_int64


def cross_entropy_forward(logits, target, *, method="auto"):
    """L = 1/N sum_n -log softmax(logits[n])[target[n]]: the lecture's -sum_i t_i ln y_i with
    y = softmax(logits) and a one-hot t, averaged over the batch, fused with a stable log-softmax.

    logits (N, C) float, target (N,) integer class indices in [0, C) -> a 0-d array of
    logits' dtype (on the GPU a 0-d device array: ``float(loss)`` reads it).  N = 0 is refused
    (the mean of no sample is undefined).  A class index outside [0, C) is a ValueError on the
    host; on the GPU only in the debug mode (NBCONV_DEBUG=1, docs/debug.md), and a NaN loss
    without it.

    Probability targets: target (N, C), a 2-D float array of logits' dtype, one distribution t[n]
    over the classes per sample (soft labels, label smoothing), gives the lecture's form itself,

        L = -1/N sum_n sum_k t[n, k] ln softmax(logits[n])[k],
        dL/dlogits[n, k] = (softmax(logits[n])[k] * sum_j t[n, j] - t[n, k]) / N

    (the sum of t[n] is 1 for a distribution, and then the gradient is (softmax - t) / N; any
    real t is taken as given).  A one-hot t gives the class-index loss and gradient.  The target
    picks the form: a 2-D float array is probabilities, anything else must be class indices.
    """
    device = devices.device_of(logits=logits, target=target)
    logits = as_float_array("logits", logits, ndim=2)
    N, C = logits.shape
    if C == 0 and N > 0:
        raise ValueError(f"logits must have at least one class, got shape {tuple(logits.shape)}")
    variant = "soft" if _is_probability_target(target) else None
    target = _as_probability_target(target, logits) if variant else _as_class_target(target, logits)
    if N == 0:
        raise ValueError(f"logits is empty (shape {tuple(logits.shape)}); the mean loss over no sample is undefined")
    method, kernels = dispatch.select("cross_entropy", method, device, logits.size, variant)
    probs = devices.empty_like(logits)
    loss = kernels.forward(logits, target, probs)
    return _loss_value(loss, logits.dtype), CrossEntropyCache(probs, target, method, variant)


def cross_entropy_backward(dout, cache: CrossEntropyCache):
    """-> (dlogits,), dlogits = (softmax(logits) - onehot(target)) / N * dout; for probability
    targets t, dlogits = (softmax(logits) * sum_k t[n, k] - t) / N * dout."""
    check_cache(cache, CrossEntropyCache, "cross_entropy_forward")
    device = devices.array_device(cache.probs)      # dout is a number: any device will do
    g = _upstream(dout, cache.probs.dtype, device)
    dlogits = devices.empty_like(cache.probs)
    dispatch.kernels("cross_entropy", cache.method, device, cache.variant).backward(
        cache.probs, cache.target, g, dlogits)
    return (dlogits,)


# ---------------------------------------------------------------- the loss value on either device

class _DeviceLoss:
    """Mixed into the 0-d device array that a loss returns on the GPU (``_loss_value``): it stays
    a device array (for the kernels, ``devices``, ``copy_to_host``), and ``float(loss)`` and
    ``format(loss, ".4f")`` copy its one value to the host, when they are called."""

    def __float__(self):
        return float(self.copy_to_host())

    def __format__(self, spec):
        return format(float(self), spec)

    def __repr__(self):                     # no copy: printing the object does not read it
        return f"<a {self.dtype} loss on the GPU (a 0-d device array): float(loss) reads it>"


_DEVICE_LOSS_TYPES = {}      # the device array's class -> that class with _DeviceLoss mixed in


def _loss_value(loss, dtype):
    """What a loss forward returns: a 0-d host array of ``dtype`` on the CPU; on the GPU the 0-d
    device array that the kernels wrote, its class extended by _DeviceLoss (numba's device array,
    or the simulator's, with float() added; the same memory, nothing copied)."""
    if not devices.is_device_array(loss):
        return np.asarray(loss, dtype=dtype)
    base = type(loss)
    if base not in _DEVICE_LOSS_TYPES:
        _DEVICE_LOSS_TYPES[base] = type("DeviceLoss", (_DeviceLoss, base), {})
    loss.__class__ = _DEVICE_LOSS_TYPES[base]
    return loss


def _upstream(dout, dtype, device):
    """The upstream gradient of a loss for its backward kernels: a Python float on the CPU (a
    device dout copied back: the op runs on the host anyway); on the GPU a number as a float, or
    the 0-d device array itself, which the kernels read on the device (no copy to the host)."""
    g = as_dout(dout, (), dtype)
    if devices.is_device_array(g):
        return g if device == devices.CUDA else float(devices.to_host(g))
    return float(g)


# ---------------------------------------------------------------- element-wise mean losses

@dataclass(frozen=True)
class _PairLossCache:
    y: np.ndarray          # the prediction, flattened (probabilities for bce, logits for bce_with_logits)
    t: np.ndarray          # the target, flattened
    shape: tuple           # the prediction's shape, for the gradient
    method: str            # the form the forward ran, for the backward


@dataclass(frozen=True)
class MSECache(_PairLossCache):
    pass


@dataclass(frozen=True)
class MAECache(_PairLossCache):
    pass


@dataclass(frozen=True)
class BCECache(_PairLossCache):
    pass


@dataclass(frozen=True)
class BCEWithLogitsCache(_PairLossCache):
    pass


def _pair(name: str, y, t) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The prediction ``y`` (called ``name``) and target ``t``: same shape, same float dtype,
    not empty; returned flattened and C-contiguous, with their shape."""
    devices.device_of(**{name: y, "t": t})
    y = as_float_array(name, y)
    t = as_float_array("t", t)
    same_dtype(name, y, t=t)
    if tuple(t.shape) != tuple(y.shape):
        raise ValueError(f"t must have the shape of {name}, {tuple(y.shape)}, got {tuple(t.shape)}")
    if y.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(y.shape)}); the mean loss over no element is undefined")
    if devices.is_device_array(y):
        return devices.flat(y), devices.flat(t), tuple(y.shape)
    return y.reshape(-1), t.reshape(-1), tuple(y.shape)


def _pair_loss(op: str, method, y, t):
    """The mean loss of the flat y and t by op's kernel in the form ``method`` picks
    -> (a 0-d array of y's dtype on y's device, the form that ran)."""
    method, kernels = dispatch.select(op, method, devices.array_device(y), y.size)
    return _loss_value(kernels.forward(y, t), y.dtype), method


def _pair_backward(op: str, dout, cache: _PairLossCache):
    device = devices.array_device(cache.y)          # dout is a number: any device will do
    g = _upstream(dout, cache.y.dtype, device)
    dy = devices.empty_like(cache.y)
    dispatch.kernels(op, cache.method, device).backward(cache.y, cache.t, g, dy)
    return (dy.reshape(cache.shape),)


def mse_forward(y, t, *, method="auto"):
    """L = mean((y - t)^2) over all elements; y and t of the same shape and dtype -> 0-d array."""
    y, t, shape = _pair("y", y, t)
    loss, method = _pair_loss("mse", method, y, t)
    return loss, MSECache(y, t, shape, method)


def mse_backward(dout, cache: MSECache):
    """-> (dy,), dy = 2 (y - t) / count * dout."""
    check_cache(cache, MSECache, "mse_forward")
    return _pair_backward("mse", dout, cache)


def mae_forward(y, t, *, method="auto"):
    """L = mean(|y - t|) over all elements; y and t of the same shape and dtype -> 0-d array."""
    y, t, shape = _pair("y", y, t)
    loss, method = _pair_loss("mae", method, y, t)
    return loss, MAECache(y, t, shape, method)


def mae_backward(dout, cache: MAECache):
    """-> (dy,), dy = sign(y - t) / count * dout, with sign(0) = 0 at the kink."""
    check_cache(cache, MAECache, "mae_forward")
    return _pair_backward("mae", dout, cache)


def bce_forward(p, t, *, method="auto"):
    """L = mean(-(t log p + (1 - t) log(1 - p))) over all elements, p probabilities in [0, 1].

    Each log is clamped below at -100, as PyTorch's binary_cross_entropy does, so p = 0 or
    p = 1 give a finite loss (at most 100 per element) instead of inf or nan.  t is usually
    0 or 1; soft targets in [0, 1] are accepted.  A p outside [0, 1] is refused (ValueError);
    NaN propagates.  On logits, prefer ``bce_with_logits_forward``: it is exact where
    sigmoid(z) rounds to 0 or 1.  On the GPU, p is checked only in the debug mode
    (NBCONV_DEBUG=1, docs/debug.md); without it, a p outside [0, 1] gives a NaN loss.
    """
    p, t, shape = _pair("p", p, t)
    if devices.is_device_array(p):
        outside = debug() and _count_outside(p, 0.0, 1.0) > 0
        host = p.copy_to_host() if outside else None      # only to name the values in the message
    else:
        host = p
        outside = ((p < 0) | (p > 1)).any()
    if outside:
        raise ValueError(f"p must hold probabilities in [0, 1] (apply sigmoid first, or use "
                         f"bce_with_logits_forward on logits), got values from {np.nanmin(host)} to {np.nanmax(host)}")
    loss, method = _pair_loss("bce", method, p, t)
    return loss, BCECache(p, t, shape, method)


def bce_backward(dout, cache: BCECache):
    """-> (dp,), dp = (p - t) / max(p (1 - p), 1e-12) / count * dout.

    The 1e-12 floor (PyTorch's) keeps the gradient finite at p = 0 or 1.
    """
    check_cache(cache, BCECache, "bce_forward")
    return _pair_backward("bce", dout, cache)


def bce_with_logits_forward(z, t, *, method="auto"):
    """L = mean(BCE(sigmoid(z), t)) over all elements, computed on the logits z in the stable
    form max(z, 0) - z t + log(1 + exp(-|z|)): no overflow, no log(0), no clamp needed.
    """
    z, t, shape = _pair("z", z, t)
    loss, method = _pair_loss("bce_with_logits", method, z, t)
    return loss, BCEWithLogitsCache(z, t, shape, method)


def bce_with_logits_backward(dout, cache: BCEWithLogitsCache):
    """-> (dz,), dz = (sigmoid(z) - t) / count * dout."""
    check_cache(cache, BCEWithLogitsCache, "bce_with_logits_forward")
    return _pair_backward("bce_with_logits", dout, cache)
