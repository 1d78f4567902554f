"""Exercise: avg_pool2d, 2-D average pooling, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check avg_pool2d.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls avg_pool2d_forward and avg_pool2d_backward with the signatures below.  The cache is
yours, whatever the backward needs.
"""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """x (N, C, H, W) -> out (N, C, OH, OW), the mean of every window, and the cache.

        out[n, c, i, j] = 1 / (KH*KW) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    kernel_size (KH, KW), stride (SH, SW; None: the kernel size) and padding (PH, PW) are each an
    int or an (h, w) pair.  The padding is zeros, and they count: the divisor is always KH*KW.

        OH = floor((H + 2 PH - KH) / SH) + 1,   OW likewise.
    """
    KH, KW = _pair(kernel_size)
    SH, SW = _pair(kernel_size if stride is None else stride)
    PH, PW = _pair(padding)
    N, C, H, W = x.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: out[n, c, i, j], the mean over the window (pixels outside x are zeros)
    cache = (x.shape, (KH, KW), (SH, SW), (PH, PW))
    return out, cache


def avg_pool2d_backward(dout, cache):
    """dout (N, C, OH, OW), the gradient dL/dout -> (dx,).

    dx[n, c, r, s] = sum over the windows (i, j) that hold pixel (r, s) of dout[n, c, i, j] * dout/dx
    (overlapping windows add up; the padding has no gradient).
    """
    x_shape, (KH, KW), (SH, SW), (PH, PW) = cache
    N, C, OH, OW = dout.shape
    H, W = x_shape[2], x_shape[3]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: the share of out[n, c, i, j] in the dx of every pixel of its window inside x
    return (dx,)
