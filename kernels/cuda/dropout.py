"""Inverted dropout on the GPU: the twin of nbconv.kernels.dropout, plus the mask drawn on the device.

Shapes: x, keep, out (M,), flat; keep is a bool array, True where the unit is kept;
scale = 1 / (1 - p), p the probability of dropping (0 when p = 1).

On the CPU the functional layer draws the mask with NumPy and the kernels only apply it.  On
the GPU the mask is drawn where it is used, by ``dropout_mask(keep, p, seed)``, with numba's
xoroshiro128+ generator (numba.cuda.random): one stream per thread, the streams 2^64 draws
apart in the sequence that ``seed`` starts, so the same seed and size give the same mask.  It is
NOT the CPU's mask (another generator), but it has the same law: keep[i] = (u >= p) with u
uniform in [0, 1), so P(keep) = 1 - p, and the backward reuses it exactly, like the CPU's.

Mapping: one thread per element for the apply kernels.  The mask kernel runs
min(M, MAX_RNG_STREAMS) threads, each drawing for the elements i = t, t + T, t + 2T, ...
(T threads): the generator's states cost 16 bytes each and are seeded on the host one after
the other, so their number is capped.
"""

from numba import cuda
from numba.cuda.random import create_xoroshiro128p_states, xoroshiro128p_uniform_float64

from ._launch import launch

MAX_RNG_STREAMS = 1 << 15     # at most this many generator states (threads) for one mask


@cuda.jit
def _dropout_mask_kernel(states, p, keep):
    """keep[i] = (u_i >= p), u_i uniform in [0, 1) from thread t's stream, for i = t, t + T, ...

    one thread per generator stream t (T = number of streams)
    """
    t = cuda.grid(1)
    T = states.shape[0]
    if t >= T:
        return
    for i in range(t, keep.shape[0], T):
        keep[i] = xoroshiro128p_uniform_float64(states, t) >= p


def dropout_mask(keep, p, seed):
    """keep[i] = True with probability 1 - p, drawn on the device from the int ``seed``.

    keep is a bool device array (M,), written in place.  P(u >= p) = 1 - p for u uniform in
    [0, 1): p = 0 keeps every unit, p = 1 drops every one.  A given (seed, M) always gives the
    same mask.
    """
    M = keep.shape[0]
    if M == 0:
        return
    streams = min(M, MAX_RNG_STREAMS)
    states = create_xoroshiro128p_states(streams, seed=seed)
    launch(_dropout_mask_kernel, streams, states, p, keep)


@cuda.jit
def _dropout_forward_kernel(x, keep, scale, out):
    """out[i] = x[i] * keep[i] * scale        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    out[i] = x[i] * keep[i] * scale


def dropout_forward(x, keep, scale, out):
    """out[i] = x[i] * keep[i] * scale   (device arrays; one thread per element)"""
    launch(_dropout_forward_kernel, x.shape[0], x, keep, scale, out)


@cuda.jit
def _dropout_backward_kernel(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale        one thread per i"""
    i = cuda.grid(1)
    if i >= dout.shape[0]:
        return
    dx[i] = dout[i] * keep[i] * scale


def dropout_backward(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale   (out is linear in x, with the same mask)"""
    launch(_dropout_backward_kernel, dout.shape[0], dout, keep, scale, dx)
