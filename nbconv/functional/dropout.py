"""dropout: inverted (default) or classic dropout with a reproducible mask.

Here ``p`` is the probability of DROPPING a unit, as in PyTorch.  The lecture on CNN layers
writes p for the probability of KEEPING one (units are switched off with probability 1 - p):
the lecture's p is this module's 1 - p.

Inverted dropout (``mode="inverted"``, the default; the lecture's second variant): in training
each unit is kept with probability 1 - p and the kept ones are divided by 1 - p, so E[out] = x
and inference needs no rescaling; at inference (``training=False``) dropout is the identity.

Classic dropout (``mode="classic"``, the lecture's first variant): in training the kept units
pass unscaled, out = x * mask, and at inference every unit is multiplied by the keep
probability, out = (1 - p) * x, so that the inference output is the training output's
expectation.  The mask is the same as inverted dropout's (the same seed drops the same units);
only the scale differs: 1 in training and 1 - p at inference, in place of 1 / (1 - p) and 1.

The mask is drawn inside the forward kernel by a counter-based generator: element i (in x's
C order) is kept when u_i >= p, u_i = (z_i >> 11) * 2^-53 uniform in [0, 1), z_i the i-th output
of SplitMix64 started from an int seed (see nbconv.kernels.dropout); the comparison is made in
integers, (z_i >> 11) >= ceil(p * 2^53), the threshold computed here once.  The int seed is
decided here: ``seed`` itself if it is an int, else one int drawn from
``np.random.default_rng(seed)`` (``seed=None``: fresh entropy) or from the Generator given,
which advances, so a seeded Generator gives a reproducible sequence of masks and the Dropout
layer a fresh mask at every training forward (inference draws nothing).  z_i depends on
(seed, i) only, so the mask is the same in every form of the kernel and on any number of
threads: ``method`` (see ``dispatch``) picks the form, "naive" the loop of
nbconv.kernels.dropout, "fast" its parallel twin (the same numbers, bit for bit), "auto" the
twin for large x.  The cache keeps the mask, so the backward pass drops exactly the same units.

On the GPU (x a CUDA device array) the kernel of nbconv.kernels.cuda.dropout draws the same
SplitMix64 words, one thread per element: the same seed and p give the same mask as on the CPU;
the cache keeps it on the device for the backward.  Classic dropout's inference product
(1 - p) * x is NumPy's on the CPU (in either ``method``: there is no mask to draw) and the scale
kernel of nbconv.kernels.cuda.elementwise on the GPU.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from nbconv import devices

from . import dispatch
from ._checks import as_dout, as_float, as_float_array, check_cache

__all__ = ["DropoutCache", "dropout_forward", "dropout_backward"]

MODES = ("inverted", "classic")     # where the rescaling goes: training (1 / (1 - p)) or inference (1 - p)


@dataclass(frozen=True)
class DropoutCache:
    keep: np.ndarray | None    # bool, x's shape, True where the unit was kept; None at inference
                               # (on x's device)
    scale: float               # out = x * keep * scale: inverted 1 / (1 - p) in training (0 when
                               # p = 1), 1 at inference; classic 1 in training, 1 - p at inference
    shape: tuple
    dtype: np.dtype
    method: str                # the form that applied the mask ("naive" or "fast"), for the backward
    mode: str = "inverted"     # "inverted" or "classic"


def _check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)} (inverted: divide by 1 - p "
                         f"in training; classic: multiply by 1 - p at inference), got {mode!r}")
    return mode


def _scale(p: float, training: bool, mode: str) -> float:
    """The factor of the kept units: inverted 1 / (1 - p) in training (0 when p = 1: every unit is
    dropped, nothing to rescale) and 1 at inference; classic 1 in training and 1 - p at inference."""
    if mode == "classic":
        return 1.0 if training else 1.0 - p
    if not training:
        return 1.0
    return 1.0 / (1.0 - p) if p < 1.0 else 0.0


def _check_seed(seed) -> None:
    """Refuse a seed that is not None, a non-negative int or a numpy.random.Generator."""
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be None, a non-negative int or a numpy.random.Generator, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")


def _int_seed(seed) -> int:
    """The int seed of the mask: ``seed`` itself, or one int drawn from the Generator (a fresh
    one for None), so that a seeded Generator gives a reproducible sequence of masks."""
    _check_seed(seed)
    if seed is None or isinstance(seed, np.random.Generator):
        return int(np.random.default_rng(seed).integers(0, 2**63 - 1))
    return int(seed)


def _kernel_seed(int_seed: int) -> np.uint64:
    """The seed as the kernels take it: SplitMix64's state is 64 bits, so an int seed counts
    modulo 2^64 (the int seeds below 2^64 are distinct seeds)."""
    return np.uint64(int_seed % 2**64)


def _threshold(p: float) -> int:
    """T = ceil(p * 2^53): u = k * 2^-53 >= p  <=>  k >= p * 2^53  <=>  k >= T for an integer k.

    p * 2^53 is exact in float64 (a power-of-two scaling), so T is exact: 0 for p = 0 (every
    unit kept), 2^53 for p = 1 (none: k < 2^53)."""
    return math.ceil(p * 2.0**53)


def dropout_forward(x, *, p=0.5, training=True, seed=None, mode="inverted", method="auto"):
    """Inverted dropout (the default): out = x * mask / (1 - p) in training, out = x at inference.
    Classic dropout (``mode="classic"``): out = x * mask in training, out = (1 - p) * x at inference.

    x of any shape, float32 or float64.  ``p`` in [0, 1] is the probability of DROPPING a
    unit (the lecture's p is the keep probability, our 1 - p).  mask[i] = 1 with probability
    1 - p, drawn by SplitMix64 from an int seed (see the module's docstring): an int ``seed``
    reproduces the same mask, ``seed=None`` draws the int from fresh entropy, a
    ``numpy.random.Generator`` gives it (and is advanced).  The mask is the same for every
    ``method``, in both modes and on the GPU.  p = 0 gives the identity; p = 1 drops every unit
    and gives zeros (the inverted scale is then 0, not 1 / 0).  With ``training=False`` the
    inverted output is a copy of x and backward is the identity; the classic output is
    (1 - p) * x and backward dx = (1 - p) * dout.

    ``mode`` says where the rescaling by the keep probability goes, the lecture's two variants:
    "inverted" divides the kept units by 1 - p in training, "classic" multiplies every unit by
    1 - p at inference.  Both give E[training output] = inference output.
    """
    device = devices.device_of(x=x)
    dispatch.check_method("dropout", method, device)
    x = as_float_array("x", x)
    p = as_float("p", p)
    if not 0.0 <= p <= 1.0:          # also refuses NaN
        raise ValueError(f"p (the probability of dropping a unit) must be in [0, 1], got {p}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    mode = _check_mode(mode)
    scale = _scale(p, bool(training), mode)
    method, kernels = dispatch.select("dropout", method, device, x.size)
    if not training:
        _check_seed(seed)                  # inference draws nothing
        return _scaled(x, scale), DropoutCache(None, scale, tuple(x.shape), np.dtype(x.dtype), method, mode)
    int_seed = _int_seed(seed)
    keep = devices.empty(x.shape, np.bool_, device)   # written by the kernel: keep[i] = u_i >= p
    out = devices.empty_like(x)
    kernels.forward(devices.flat(x), _kernel_seed(int_seed), _threshold(p), scale, devices.flat(keep),
                    devices.flat(out))
    return out, DropoutCache(keep, scale, tuple(x.shape), np.dtype(x.dtype), method, mode)


def _scaled(a, scale: float):
    """scale * a, a new array on a's device: a copy for scale 1 (inverted dropout's inference);
    NumPy's product on the CPU, the scale kernel of nbconv.kernels.cuda.elementwise on the GPU."""
    if scale == 1.0:
        return devices.copy(a)
    if isinstance(a, np.ndarray):
        return a * a.dtype.type(scale)
    out = devices.empty_like(a)
    if a.size:
        devices.elementwise().scale(devices.flat(a), scale, devices.flat(out))
    return out


def dropout_backward(dout, cache: DropoutCache):
    """-> (dx,), dx = dout * mask * scale with the forward's mask (scale: 1 / (1 - p) inverted,
    1 classic); at inference dx = dout (a copy) inverted, dx = (1 - p) * dout classic."""
    check_cache(cache, DropoutCache, "dropout_forward")
    if cache.keep is not None:
        device = devices.device_of(dout=dout, **{"the forward's mask": cache.keep})
    else:
        device = devices.device_of(dout=dout)
    dout = as_dout(dout, cache.shape, cache.dtype)
    if cache.keep is None:
        return (_scaled(dout, cache.scale),)
    dx = devices.empty_like(dout)
    dispatch.kernels("dropout", cache.method, device).backward(devices.flat(dout), devices.flat(cache.keep),
                                                               cache.scale, devices.flat(dx))
    return (dx,)
