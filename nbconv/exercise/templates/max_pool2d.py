"""Exercise: max_pool2d, 2-D max pooling, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check max_pool2d.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls max_pool2d_forward and max_pool2d_backward with the signatures below.  The cache is
yours, whatever the backward needs.
"""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """x (N, C, H, W) -> out (N, C, OH, OW), the maximum of every window, and the cache.

        out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    kernel_size (KH, KW), stride (SH, SW; None: the kernel size) and padding (PH, PW) are each an
    int or an (h, w) pair.  The padding is -inf: a pixel outside x never wins.  Of two equal
    values the first in the window's row-major order (ki, then kj) wins.

        OH = floor((H + 2 PH - KH) / SH) + 1,   OW likewise.
    """
    KH, KW = _pair(kernel_size)
    SH, SW = _pair(kernel_size if stride is None else stride)
    PH, PW = _pair(padding)
    N, C, H, W = x.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    argmax = np.zeros((N, C, OH, OW, 2), dtype=np.int64)   # (row, col) in x of each window's maximum
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: the maximum of the window into out[n, c, i, j], where it is into argmax[n, c, i, j]
    cache = (x.shape, argmax)
    return out, cache


def max_pool2d_backward(dout, cache):
    """dout (N, C, OH, OW), the gradient dL/dout -> (dx,).

    out[n, c, i, j] is one pixel of its window, the maximum: its derivative is 1 with respect to
    that pixel and 0 with respect to the others.  Overlapping windows can share their maximum,
    whose gradient is then the sum over them.
    """
    x_shape, argmax = cache
    N, C, OH, OW = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: dout[n, c, i, j] to the window's maximum
    return (dx,)
