"""Solution of the avg_pool2d exercise: nbconv/exercise/templates/avg_pool2d.py with the TODOs filled in."""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def avg_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """out[n, c, i, j] = 1 / (KH*KW) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj], zero padding"""
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
                    acc = 0.0
                    for ki in range(KH):
                        row = i * SH - PH + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(KW):
                            col = j * SW - PW + kj
                            if col < 0 or col >= W:
                                continue
                            acc += x[n, c, row, col]
                    out[n, c, i, j] = acc / (KH * KW)
    cache = (x.shape, (KH, KW), (SH, SW), (PH, PW))
    return out, cache


def avg_pool2d_backward(dout, cache):
    """dx[n, c, r, s] += dout[n, c, i, j] / (KH*KW) for every window (i, j) that holds (r, s)"""
    x_shape, (KH, KW), (SH, SW), (PH, PW) = cache
    N, C, OH, OW = dout.shape
    H, W = x_shape[2], x_shape[3]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    share = dout[n, c, i, j] / (KH * KW)
                    for ki in range(KH):
                        row = i * SH - PH + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(KW):
                            col = j * SW - PW + kj
                            if col < 0 or col >= W:
                                continue
                            dx[n, c, row, col] += share
    return (dx,)
