"""Solution of the conv2d exercise: nbconv/exercise/templates/conv2d.py with the TODOs filled in."""

import numpy as np


def _pair(v):
    """An int or an (h, w) pair -> (h, w)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]"""
    SH, SW = _pair(stride)
    PH, PW = _pair(padding)
    DH, DW = _pair(dilation)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    Fg = F // groups
    OH = (H + 2 * PH - DH * (KH - 1) - 1) // SH + 1
    OW = (W + 2 * PW - DW * (KW - 1) - 1) // SW + 1
    y = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0 if b is None else b[f]
                    for c in range(Cg):
                        for ki in range(KH):
                            row = i * SH - PH + ki * DH
                            if row < 0 or row >= H:
                                continue
                            for kj in range(KW):
                                col = j * SW - PW + kj * DW
                                if col < 0 or col >= W:
                                    continue
                                acc += w[f, c, ki, kj] * x[n, g * Cg + c, row, col]
                    y[n, f, i, j] = acc
    cache = (x, w, b, (SH, SW), (PH, PW), (DH, DW), groups)
    return y, cache


def conv2d_backward(dout, cache):
    """Every term w[f, c, ki, kj] * x[n, g*Cg + c, row, col] of y[n, f, i, j] passes dout[n, f, i, j]
    on to dw (times x) and to dx (times w); the bias passes it on as it is."""
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
                    db[f] += dout[n, f, i, j]
                    for c in range(Cg):
                        for ki in range(KH):
                            row = i * SH - PH + ki * DH
                            if row < 0 or row >= H:
                                continue
                            for kj in range(KW):
                                col = j * SW - PW + kj * DW
                                if col < 0 or col >= W:
                                    continue
                                dw[f, c, ki, kj] += dout[n, f, i, j] * x[n, g * Cg + c, row, col]
                                dx[n, g * Cg + c, row, col] += dout[n, f, i, j] * w[f, c, ki, kj]
    return dx, dw, (db if b is not None else None)
