"""Solution of the max_pool2d exercise: nbconv/exercise/templates/max_pool2d.py with the TODOs filled in."""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def max_pool2d_forward(x, *, kernel_size, stride=None, padding=0):
    """out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj], the padding -inf"""
    KH, KW = _pair(kernel_size)
    SH, SW = _pair(kernel_size if stride is None else stride)
    PH, PW = _pair(padding)
    N, C, H, W = x.shape
    OH = (H + 2 * PH - KH) // SH + 1
    OW = (W + 2 * PW - KW) // SW + 1
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    argmax = np.zeros((N, C, OH, OW, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best, best_row, best_col = -np.inf, -1, -1
                    for ki in range(KH):
                        row = i * SH - PH + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(KW):
                            col = j * SW - PW + kj
                            if col < 0 or col >= W:
                                continue
                            if x[n, c, row, col] > best:          # strictly: the first maximum wins a tie
                                best, best_row, best_col = x[n, c, row, col], row, col
                    out[n, c, i, j] = best
                    argmax[n, c, i, j] = (best_row, best_col)
    cache = (x.shape, argmax)
    return out, cache


def max_pool2d_backward(dout, cache):
    """dx[maximum of window (i, j)] += dout[n, c, i, j]"""
    x_shape, argmax = cache
    N, C, OH, OW = dout.shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    row, col = argmax[n, c, i, j]
                    dx[n, c, row, col] += dout[n, c, i, j]
    return (dx,)
