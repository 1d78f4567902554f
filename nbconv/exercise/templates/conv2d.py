"""Exercise: conv2d, the 2-D convolution, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check conv2d.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls conv2d_forward and conv2d_backward with the signatures below.  The cache is yours,
whatever the backward needs.
"""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """x (N, C, H, W), w (F, C // groups, KH, KW), b (F,) or None -> y (N, F, OH, OW), and the cache.

    Cross-correlation (the kernel is not flipped), x being zero outside the image (zero padding):

        y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    with S the stride, P the padding and D the dilation (each an int or an (h, w) pair),
    Cg = C // groups the input channels of a group, g = f // (F // groups) the group of filter f,
    c running over 0 .. Cg - 1, and the output size

        OH = floor((H + 2 PH - DH (KH - 1) - 1) / SH) + 1,   OW likewise.
    """
    SH, SW = _pair(stride)
    PH, PW = _pair(padding)
    DH, DW = _pair(dilation)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    Fg = F // groups                      # filters per group
    OH = (H + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    OW = (W + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    y = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // Fg                   # the group of filter f: it reads channels g*Cg .. g*Cg + Cg - 1
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: y[n, f, i, j], the sum over c, ki, kj (skip taps outside x), plus b[f]
    cache = (x, w, b, (SH, SW), (PH, PW), (DH, DW), groups)
    return y, cache


def conv2d_backward(dout, cache):
    """dout (N, F, OH, OW), the gradient dL/dy -> (dx, dw, db); db is None when the forward had
    no bias.

    Every weight and every input pixel takes part in many outputs, and its gradient is the sum
    over them (the chain rule; the fan-out rule):

        db[f]             = sum_{n, i, j} dout[n, f, i, j] * dy[n, f, i, j]/db[f]
        dw[f, c, ki, kj]  = sum_{n, i, j} dout[n, f, i, j] * dy[n, f, i, j]/dw[f, c, ki, kj]
        dx[n, c', r, s]   = sum over the outputs y[n, f, i, j] whose sum reads x[n, c', r, s]
                            of dout[n, f, i, j] * dy[n, f, i, j]/dx[n, c', r, s]

    One way: walk the forward's loops again and, at every term of every output, add its share
    to db, dw and dx (which start at zero).
    """
    x, w, b, (SH, SW), (PH, PW), (DH, DW), groups = cache
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    Fg = F // groups
    OH, OW = dout.shape[2], dout.shape[3]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(F, dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    pass  # TODO: the share of y[n, f, i, j] in db[f], and for every tap (c, ki, kj) inside x
                    #       in dw[f, c, ki, kj] and in the dx of the pixel it reads
    return dx, dw, (db if b is not None else None)
