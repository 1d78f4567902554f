"""dropout: inverted dropout with a reproducible mask.

Here ``p`` is the probability of DROPPING a unit, as in PyTorch.  The lecture (seeds/002)
writes p for the probability of KEEPING one (units are switched off with probability 1 - p):
the lecture's p is this module's 1 - p.

Inverted dropout (the lecture's second variant): in training each unit is kept with
probability 1 - p and the kept ones are divided by 1 - p, so E[out] = x and inference needs
no rescaling; at inference (``training=False``) dropout is the identity.

The mask is drawn here, with NumPy's ``np.random.default_rng(seed)``, and applied by the
kernel; the cache keeps it, so the backward pass drops exactly the same units.  ``method``
(see ``dispatch``) picks how the mask is applied: "naive" the loop of nbconv.kernels.dropout,
"fast" its parallel twin (the same numbers, bit for bit), "auto" the twin for large x.  The
draw is the same in every form: the same seed gives the same output whatever the method.

On the GPU (x a CUDA device array) the mask is drawn on the device by
``nbconv.kernels.cuda.dropout.dropout_mask`` from an int seed (numba's xoroshiro128+): the seed
given, or for ``seed=None`` / a Generator one int drawn from ``np.random.default_rng(seed)``.
The same int seed gives the same device mask, which is NOT the CPU's mask for that seed (another
generator), but has the same law; the cache keeps it on the device for the backward.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float, as_float_array, check_cache

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]


@dataclass(frozen=True)
class DropoutCache:
    keep: np.ndarray | None    # bool, x's shape, True where the unit was kept; None at inference
                               # (on x's device)
    scale: float               # 1 / (1 - p); 0 when p = 1; 1 at inference
    shape: tuple
    dtype: np.dtype
    method: str                # the form that applied the mask ("naive" or "fast"), for the backward


def _generator(seed) -> np.random.Generator:
    if seed is None or isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return np.random.default_rng(int(seed))


def _device_seed(seed) -> int:
    """The int seed of the device mask: ``seed`` itself, or one int drawn from the Generator
    (a fresh one for None), so that a seeded Generator gives a reproducible sequence of masks."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        _generator(seed)                                  # the same checks as on the CPU
        return int(seed)
    return int(_generator(seed).integers(0, 2**63 - 1))


def dropout_forward(x, *, p=0.5, training=True, seed=None, method="auto"):
    """Inverted dropout: out = x * mask / (1 - p) in training, out = x at inference.

    x of any shape, float32 or float64.  ``p`` in [0, 1] is the probability of DROPPING a
    unit (the lecture's p is the keep probability, our 1 - p).  mask[i] = 1 with probability
    1 - p, drawn from ``np.random.default_rng(seed)``: ``seed=None`` draws fresh entropy, an
    int reproduces the same mask, a ``numpy.random.Generator`` is used (and advanced) as is.
    p = 0 gives the identity; p = 1 drops every unit and gives zeros (the scale is then 0, not
    1 / 0).  With ``training=False`` the output is a copy of x and backward is the identity.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("dropout", method, device)
    x = as_float_array("x", x)
    p = as_float("p", p)
    if not 0.0 <= p <= 1.0:          # also refuses NaN
        raise ValueError(f"p (the probability of dropping a unit) must be in [0, 1], got {p}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    method, kernels = dispatch.select("dropout", method, device, x.size)
    if device == devices.CUDA:
        return _dropout_forward_cuda(x, p, training, seed, method, kernels)
    rng = _generator(seed)
    if not training:
        return x.copy(), DropoutCache(None, 1.0, tuple(x.shape), x.dtype, method)
    keep = rng.random(x.shape) >= p          # P(keep) = P(U >= p) = 1 - p for U ~ uniform[0, 1)
    keep = np.asarray(keep, dtype=np.bool_)  # a 0-d x gives a 0-d mask
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    out = np.empty_like(x)
    kernels.forward(x.reshape(-1), keep.reshape(-1), scale, out.reshape(-1))
    return out, DropoutCache(keep, scale, tuple(x.shape), x.dtype, method)


def _dropout_forward_cuda(x, p, training, seed, method, kernels):
    """The device path: the mask drawn on the device from an int seed, applied there."""
    from nbconv.kernels.cuda import dropout as cuda_dropout       # numba.cuda only with a device array

    int_seed = _device_seed(seed)
    dtype = np.dtype(x.dtype)
    if not training:
        return devices.copy(x), DropoutCache(None, 1.0, tuple(x.shape), dtype, method)
    keep = devices.empty(x.shape, np.bool_, devices.CUDA)
    cuda_dropout.dropout_mask(devices.flat(keep), p, int_seed)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    out = devices.empty_like(x)
    kernels.forward(devices.flat(x), devices.flat(keep), scale, devices.flat(out))
    return out, DropoutCache(keep, scale, tuple(x.shape), dtype, method)


def dropout_backward(dout, cache: DropoutCache):
    """-> (dx,), dx = dout * mask / (1 - p) with the forward's mask; dout itself (a copy) at inference."""
    check_cache(cache, DropoutCache, "dropout_forward")
    if cache.keep is not None:
        device = devices.device_of(dout=dout, **{"the forward's mask": cache.keep})
    else:
        device = devices.device_of(dout=dout)
    dout = as_dout(dout, cache.shape, cache.dtype)
    if cache.keep is None:
        return (devices.copy(dout),)
    dx = devices.empty_like(dout)
    dispatch.kernels("dropout", cache.method, device).backward(devices.flat(dout), devices.flat(cache.keep),
                                                               cache.scale, devices.flat(dx))
    return (dx,)
