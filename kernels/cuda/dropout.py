"""Inverted dropout on the GPU: the twin of nbconv.kernels.dropout, the mask drawn where it is used.

Shapes: x, keep, out (M,), flat; keep is a bool array, True where the unit is kept;
scale = 1 / (1 - p), p the probability of dropping (0 when p = 1); 1 for classic dropout.

The mask is the CPU's, drawn the same way: element i's random 64-bit word z_i is the i-th output
of SplitMix64 started from the int ``seed`` (``_splitmix64``, the device twin of the CPU's), and
keep[i] = (z_i >> 11) >= threshold, threshold = ceil(p * 2^53), i.e. u_i >= p for
u_i = (z_i >> 11) * 2^-53 uniform in [0, 1), so P(keep) = 1 - p.  SplitMix64 is counter-based:
z_i is computed from (seed, i) alone, so every thread draws its own element with no generator
state to seed or share, and the same seed and p give the same mask here as on the CPU, bit for
bit.  The forward draws the mask into ``keep`` and applies it in one kernel; the backward reuses
that mask exactly.  ``dropout_mask(keep, p, seed)`` draws the mask alone (a GPU-only launcher).

Mapping: one thread per element, in every kernel.

Precision: the mask is integer arithmetic; the apply kernels multiply in x's dtype.  The
launchers pass ``scale`` in x's dtype: a Python float is a float64, and a float32 kernel that
multiplies by one computes in float64, which a T4-class GPU runs at 1/32 of the float32 rate.
A float32 output can then differ from the CPU's (x * scale in float64, rounded once) by float32
rounding when scale is not a power of 2.
"""

import math

import numpy as np
from numba import cuda

from ._launch import launch

# SplitMix64's constants, as in nbconv.kernels.dropout (np.uint64: the arithmetic stays in
# wrapping uint64; a mix of uint64 and int64 would be promoted to float64).
GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
ONE = np.uint64(1)
S11, S27, S30, S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)


# inline="always": Numba inlines the body into the calling kernels, which then compile to PTX
# without a GPU (a called device function is compiled for the current GPU, which needs one)
@cuda.jit(device=True, inline="always")
def _splitmix64(seed, i):
    """z_i = the i-th output of SplitMix64 started from ``seed`` (uint64), the twin of
    nbconv.kernels.dropout._splitmix64 (where it is derived):

        z = seed + (i + 1) * 0x9E3779B97F4A7C15                (mod 2^64)
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9               (mod 2^64)
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB               (mod 2^64)
        z = z ^ (z >> 31)
    """
    z = np.uint64(seed) + (np.uint64(i) + ONE) * GAMMA
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


@cuda.jit
def _dropout_mask_kernel(seed, threshold, keep):
    """keep[i] = (_splitmix64(seed, i) >> 11) >= threshold        one thread per i"""
    i = cuda.grid(1)
    if i >= keep.shape[0]:
        return
    keep[i] = (_splitmix64(seed, i) >> S11) >= np.uint64(threshold)


def dropout_mask(keep, p, seed):
    """keep[i] = u_i >= p, u_i = (z_i >> 11) * 2^-53 from SplitMix64(seed), drawn on the device.

    keep is a bool device array (M,), written in place; the same mask as the CPU forward's for
    the same seed and p.  The comparison runs in integers against ceil(p * 2^53) (exact: p * 2^53
    is a power-of-two scaling): p = 0 keeps every unit, p = 1 drops every one.
    """
    launch(_dropout_mask_kernel, keep.shape[0], np.uint64(seed % 2**64), math.ceil(p * 2.0**53), keep)


@cuda.jit
def _dropout_forward_kernel(x, seed, threshold, scale, keep, out):
    """keep[i] = (_splitmix64(seed, i) >> 11) >= threshold
    out[i] = x[i] * keep[i] * scale        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    k = (_splitmix64(seed, i) >> S11) >= np.uint64(threshold)
    keep[i] = k
    out[i] = x[i] * k * scale


def dropout_forward(x, seed, threshold, scale, keep, out):
    """keep[i] = (z_i >> 11) >= threshold, z_i = SplitMix64(seed)'s i-th output; out[i] = x[i] * keep[i] * scale

    (device arrays; one thread per element).  threshold = ceil(p * 2^53), as on the CPU."""
    # scale in x's dtype (the module's docstring: float64 is 1/32 speed on T4)
    launch(_dropout_forward_kernel, x.shape[0], x, seed, threshold, x.dtype.type(scale), keep, out)


@cuda.jit
def _dropout_backward_kernel(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale        one thread per i"""
    i = cuda.grid(1)
    if i >= dout.shape[0]:
        return
    dx[i] = dout[i] * keep[i] * scale


def dropout_backward(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale   (out is linear in x, with the same mask)"""
    launch(_dropout_backward_kernel, dout.shape[0], dout, keep, dout.dtype.type(scale), dx)   # dout's dtype
