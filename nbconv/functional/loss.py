"""softmax, log_softmax and the losses: cross_entropy, mse, mae, bce, bce_with_logits.

softmax and log_softmax work on any axis of an array of any rank >= 1: the axis is moved
last and the other axes flattened, so one 2-D kernel (one distribution per row) serves all.
Both subtract the maximum before exp, so large inputs (x + 1000) cannot overflow.

Every loss is the MEAN over its batch (cross_entropy) or over all elements (the others),
returned as a 0-d array of the input's dtype.  Its backward takes the upstream gradient
``dout`` as a Python float or a 0-d array (pass 1.0 when the loss ends the graph) and returns
the gradient of the prediction only; targets are not differentiated.

An empty input (no sample, no element) is refused with ValueError: its mean is undefined
(NumPy would return NaN with a warning; a silent NaN loss would poison training instead).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from nbconv.kernels import loss as K
from ._checks import as_dout, as_float_array, same_dtype

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


def _to_rows(x: np.ndarray, axis: int) -> np.ndarray:
    """Move ``axis`` last and flatten the others: a C-contiguous (rows, classes) array."""
    moved = np.moveaxis(x, axis, -1)
    rows = math.prod(moved.shape[:-1])
    return np.ascontiguousarray(moved).reshape(rows, moved.shape[-1])


def _from_rows(rows: np.ndarray, shape: tuple, axis: int) -> np.ndarray:
    """Undo ``_to_rows`` for an array of the original ``shape``."""
    moved_shape = tuple(shape[:axis]) + tuple(shape[axis + 1:]) + (shape[axis],)
    return np.ascontiguousarray(np.moveaxis(rows.reshape(moved_shape), -1, axis))


def _softmax_input(x, axis) -> tuple[np.ndarray, int]:
    x = as_float_array("x", x)
    if x.ndim == 0:
        raise ValueError(f"x must be at least 1-D (the softmax axis), got a 0-D array of shape {x.shape}")
    return x, _check_axis(axis, x)


# ---------------------------------------------------------------- softmax and log-softmax

@dataclass(frozen=True)
class SoftmaxCache:
    out: np.ndarray        # the output (softmax or log-softmax) as (rows, classes), the axis moved last
    axis: int              # in [0, ndim)
    shape: tuple           # the shape of x and of the output


LogSoftmaxCache = SoftmaxCache    # both backward passes need only the output and the axis


def _rowwise_forward(kernel, x, axis):
    x, ax = _softmax_input(x, axis)
    x_rows = _to_rows(x, ax)
    out_rows = np.empty_like(x_rows)
    kernel(x_rows, out_rows)
    return _from_rows(out_rows, x.shape, ax), SoftmaxCache(out_rows, ax, tuple(x.shape))


def _rowwise_backward(kernel, dout, cache: SoftmaxCache):
    dout_rows = _to_rows(as_dout(dout, cache.shape, cache.out.dtype), cache.axis)
    dx_rows = np.empty_like(cache.out)
    kernel(cache.out, dout_rows, dx_rows)
    return (_from_rows(dx_rows, cache.shape, cache.axis),)


def softmax_forward(x, *, axis=-1):
    """softmax(x)_i = exp(x_i) / sum_k exp(x_k) along ``axis``, computed as
    exp(x_i - max x) / sum_k exp(x_k - max x) (the same numbers, no overflow).

    x of any rank >= 1, any axis (negative allowed) -> s of x's shape and dtype.
    """
    return _rowwise_forward(K.softmax_forward, x, axis)


def softmax_backward(dout, cache: SoftmaxCache):
    """-> (dx,), dx = s * (dout - sum(dout * s)) along the axis."""
    return _rowwise_backward(K.softmax_backward, dout, cache)


def log_softmax_forward(x, *, axis=-1):
    """log_softmax(x)_i = x_i - log sum_k exp(x_k) along ``axis``, computed as
    (x_i - max x) - log sum_k exp(x_k - max x): finite even where softmax underflows to 0.

    x of any rank >= 1, any axis (negative allowed) -> out of x's shape and dtype.
    """
    return _rowwise_forward(K.log_softmax_forward, x, axis)


def log_softmax_backward(dout, cache: SoftmaxCache):
    """-> (dx,), dx = dout - softmax * sum(dout) along the axis."""
    return _rowwise_backward(K.log_softmax_backward, dout, cache)


# ---------------------------------------------------------------- cross-entropy

@dataclass(frozen=True)
class CrossEntropyCache:
    probs: np.ndarray      # softmax(logits), (N, C)
    target: np.ndarray     # int64 class indices, (N,)


def _as_class_target(target, logits: np.ndarray) -> np.ndarray:
    """Integer class indices of shape (N,), each in [0, C), as C-contiguous int64."""
    N, C = logits.shape
    if not isinstance(target, np.ndarray):
        raise TypeError(f"target must be a numpy.ndarray of integer class indices, got {type(target).__name__}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"target has dtype {target.dtype}; class targets must have an integer dtype "
                        f"(int64, int32, uint8, ...)")
    if target.shape != (N,):
        raise ValueError(f"target must have shape ({N},) to match logits of shape {logits.shape}, "
                         f"got {target.shape}")
    if N > 0:
        lo, hi = target.min(), target.max()
        if lo < 0 or hi >= C:
            raise ValueError(f"target values must be class indices in [0, {C}) for logits of shape "
                             f"{logits.shape}, got values from {lo} to {hi}")
    return np.ascontiguousarray(target, dtype=np.int64)


def cross_entropy_forward(logits, target):
    """L = 1/N sum_n -log softmax(logits[n])[target[n]]: the lecture's -sum_i t_i ln y_i with
    y = softmax(logits) and a one-hot t, averaged over the batch, fused with a stable log-softmax.

    logits (N, C) float, target (N,) integer class indices in [0, C) -> a 0-d array of
    logits' dtype.  N = 0 is refused (the mean of no sample is undefined).
    """
    logits = as_float_array("logits", logits, ndim=2)
    N, C = logits.shape
    if C == 0 and N > 0:
        raise ValueError(f"logits must have at least one class, got shape {logits.shape}")
    target = _as_class_target(target, logits)
    if N == 0:
        raise ValueError(f"logits is empty (shape {logits.shape}); the mean loss over no sample is undefined")
    probs = np.empty_like(logits)
    loss = K.cross_entropy_forward(logits, target, probs)
    return np.asarray(loss, dtype=logits.dtype), CrossEntropyCache(probs, target)


def cross_entropy_backward(dout, cache: CrossEntropyCache):
    """-> (dlogits,), dlogits = (softmax(logits) - onehot(target)) / N * dout."""
    g = as_dout(dout, (), cache.probs.dtype)
    dlogits = np.empty_like(cache.probs)
    K.cross_entropy_backward(cache.probs, cache.target, float(g), dlogits)
    return (dlogits,)


# ---------------------------------------------------------------- element-wise mean losses

@dataclass(frozen=True)
class _PairLossCache:
    y: np.ndarray          # the prediction, flattened (probabilities for bce, logits for bce_with_logits)
    t: np.ndarray          # the target, flattened
    shape: tuple           # the prediction's shape, for the gradient


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
    y = as_float_array(name, y)
    t = as_float_array("t", t)
    same_dtype(name, y, t=t)
    if t.shape != y.shape:
        raise ValueError(f"t must have the shape of {name}, {y.shape}, got {t.shape}")
    if y.size == 0:
        raise ValueError(f"{name} is empty (shape {y.shape}); the mean loss over no element is undefined")
    return y.reshape(-1), t.reshape(-1), tuple(y.shape)


def _pair_backward(kernel, dout, cache: _PairLossCache):
    g = as_dout(dout, (), cache.y.dtype)
    dy = np.empty_like(cache.y)
    kernel(cache.y, cache.t, float(g), dy)
    return (dy.reshape(cache.shape),)


def mse_forward(y, t):
    """L = mean((y - t)^2) over all elements; y and t of the same shape and dtype -> 0-d array."""
    y, t, shape = _pair("y", y, t)
    return np.asarray(K.mse_forward(y, t), dtype=y.dtype), MSECache(y, t, shape)


def mse_backward(dout, cache: MSECache):
    """-> (dy,), dy = 2 (y - t) / count * dout."""
    return _pair_backward(K.mse_backward, dout, cache)


def mae_forward(y, t):
    """L = mean(|y - t|) over all elements; y and t of the same shape and dtype -> 0-d array."""
    y, t, shape = _pair("y", y, t)
    return np.asarray(K.mae_forward(y, t), dtype=y.dtype), MAECache(y, t, shape)


def mae_backward(dout, cache: MAECache):
    """-> (dy,), dy = sign(y - t) / count * dout, with sign(0) = 0 at the kink."""
    return _pair_backward(K.mae_backward, dout, cache)


def bce_forward(p, t):
    """L = mean(-(t log p + (1 - t) log(1 - p))) over all elements, p probabilities in [0, 1].

    Each log is clamped below at -100, as PyTorch's binary_cross_entropy does, so p = 0 or
    p = 1 give a finite loss (at most 100 per element) instead of inf or nan.  t is usually
    0 or 1; soft targets in [0, 1] are accepted.  A p outside [0, 1] is refused (ValueError);
    NaN propagates.  On logits, prefer ``bce_with_logits_forward``: it is exact where
    sigmoid(z) rounds to 0 or 1.
    """
    p, t, shape = _pair("p", p, t)
    outside = (p < 0) | (p > 1)
    if outside.any():
        raise ValueError(f"p must hold probabilities in [0, 1] (apply sigmoid first, or use "
                         f"bce_with_logits_forward on logits), got values from {np.nanmin(p)} to {np.nanmax(p)}")
    return np.asarray(K.bce_forward(p, t), dtype=p.dtype), BCECache(p, t, shape)


def bce_backward(dout, cache: BCECache):
    """-> (dp,), dp = (p - t) / max(p (1 - p), 1e-12) / count * dout.

    The 1e-12 floor (PyTorch's) keeps the gradient finite at p = 0 or 1.
    """
    return _pair_backward(K.bce_backward, dout, cache)


def bce_with_logits_forward(z, t):
    """L = mean(BCE(sigmoid(z), t)) over all elements, computed on the logits z in the stable
    form max(z, 0) - z t + log(1 + exp(-|z|)): no overflow, no log(0), no clamp needed.
    """
    z, t, shape = _pair("z", z, t)
    return np.asarray(K.bce_with_logits_forward(z, t), dtype=z.dtype), BCEWithLogitsCache(z, t, shape)


def bce_with_logits_backward(dout, cache: BCEWithLogitsCache):
    """-> (dz,), dz = (sigmoid(z) - t) / count * dout."""
    return _pair_backward(K.bce_with_logits_backward, dout, cache)
