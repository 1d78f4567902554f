"""Inverted dropout: apply a keep mask drawn by the caller and rescale by 1 / (1 - p).

Shapes: x, keep, out (M,), flat (the functional layer flattens any shape); keep is a bool
array, True where the unit is kept; scale = 1 / (1 - p), p the probability of dropping
(0 when p = 1: every unit is dropped, and there is nothing to rescale).

The mask is drawn outside the kernel (NumPy's random generator in nbconv.functional), so a
seed reproduces it and the backward pass reuses exactly the forward's mask, and both forms of
the kernels (the loops and their parallel twins) apply the same draw.
"""

from numba import njit, prange


@njit(cache=True)
def dropout_forward(x, keep, scale, out):
    """out[i] = x[i] * keep[i] * scale"""
    M = x.shape[0]
    for i in range(M):
        out[i] = x[i] * keep[i] * scale


@njit(cache=True)
def dropout_backward(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale   (out is linear in x, with the same mask)"""
    M = dout.shape[0]
    for i in range(M):
        dx[i] = dout[i] * keep[i] * scale


# --- parallel twins: the same product for every element, the elements split between the threads.
# Applying the mask is a memory-bound pass (read x and the 1-byte mask, write out); one core does
# not saturate the memory bus, every core together comes closer.  Bit for bit the loops' numbers.

@njit(cache=True, parallel=True)
def dropout_forward_parallel(x, keep, scale, out):
    """out[i] = x[i] * keep[i] * scale, as dropout_forward, on every core."""
    for i in prange(x.shape[0]):
        out[i] = x[i] * keep[i] * scale


@njit(cache=True, parallel=True)
def dropout_backward_parallel(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale, as dropout_backward, on every core."""
    for i in prange(dout.shape[0]):
        dx[i] = dout[i] * keep[i] * scale
