"""Pooling as naive loop nests: max, average, Lp-norm and global average pooling.

Shapes: x (N, C, H, W), out (N, C, OH, OW) with

    OH = floor((H + 2 PH - KH) / SH) + 1,   OW = floor((W + 2 PW - KW) / SW) + 1

for a KH x KW window moved with stride (SH, SW) over x padded by (PH, PW).
Output pixel (i, j) of channel c looks at the window

    rows i*SH - PH + ki  (ki = 0 ... KH-1),   cols j*SW - PW + kj  (kj = 0 ... KW-1)

of the same channel: pooling never mixes channels.  Positions outside the
image are padding: -inf for max pooling (they can never win), 0 for average
pooling (they count in the divisor KH*KW).  The callers guarantee that every
window holds at least one real pixel.

Max pooling's switches (n, c, i, j) -> row * W + col: the flat index, within
the (H, W) plane of channel (n, c), of the pixel that won the window.
Global average pooling: x (N, C, H, W) -> out (N, C).
"""

import numpy as np
from numba import njit


# ----------------------------------------------------------------------------- max pooling

@njit(cache=True)
def max_pool2d_forward(x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]
    switches[n, c, i, j] = row * W + col of that maximum

    Padding is -inf, so out-of-image positions are simply skipped.  Ties: the
    first maximum in row-major window order wins (a later pixel must be
    strictly larger to take over).  A NaN in the window wins, as in IEEE max.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best = -np.inf
                    best_index = -1
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            v = x[n, c, row, col]
                            if best_index < 0 or v > best or (v != v and best == best):
                                best = v
                                best_index = row * W + col
                    out[n, c, i, j] = best
                    switches[n, c, i, j] = best_index


@njit(cache=True)
def max_pool2d_backward(dout, switches, dx):
    """dx[n, c, row, col] = sum of dout[n, c, i, j] over the windows (i, j) whose switch is (row, col)

    Only the winning pixel of a window influenced its output, so the gradient
    is routed to it alone; overlapping windows that share a winner add up
    (the fan-out rule).  dx is zeroed first.
    """
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    s = switches[n, c, i, j]
                    dx[n, c, s // W, s % W] += dout[n, c, i, j]


# ----------------------------------------------------------------------------- average pooling

@njit(cache=True)
def avg_pool2d_forward(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    Padding is zero and counts in the average: the divisor is always KH*KW.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    area = kernel_h * kernel_w
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            acc += x[n, c, row, col]
                    out[n, c, i, j] = acc / area


@njit(cache=True)
def avg_pool2d_backward(dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """dx[n, c, i*SH - PH + ki, j*SW - PW + kj] += dout[n, c, i, j] / (KH*KW)

    Every pixel of a window gets an equal share of the window's gradient;
    shares that fall on the padding are dropped.  dx is zeroed first.
    """
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    area = kernel_h * kernel_w
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    share = dout[n, c, i, j] / area
                    for ki in range(kernel_h):
                        row = i * stride_h - pad_h + ki
                        if row < 0 or row >= H:
                            continue
                        for kj in range(kernel_w):
                            col = j * stride_w - pad_w + kj
                            if col < 0 or col >= W:
                                continue
                            dx[n, c, row, col] += share


# ----------------------------------------------------------------------------- Lp-norm pooling

@njit(cache=True)
def lp_pool2d_forward(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)

    The p-norm of the window (L2-norm pooling for p = 2); no padding.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for ki in range(kernel_h):
                        row = i * stride_h + ki
                        for kj in range(kernel_w):
                            col = j * stride_w + kj
                            acc += abs(x[n, c, row, col]) ** p
                    out[n, c, i, j] = acc ** (1.0 / p)


@njit(cache=True)
def lp_pool2d_backward(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, i*SH + ki, j*SW + kj] += dout[n, c, i, j] * |x|^(p-1) * sign(x) / out[n, c, i, j]^(p-1)

    (d/dx of (sum |x|^p)^(1/p) is (1/p) (sum |x|^p)^(1/p - 1) * p |x|^(p-1) sign(x).)
    Computed as sign(x) * (|x| / out)^(p-1), the same number without
    overflowing |x|^(p-1) for large p.  A window whose norm is 0 passes no
    gradient (the norm has no derivative there; 0 is the subgradient chosen).
    Overlapping windows add up; dx is zeroed first.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    dx[:] = 0.0
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    norm = out[n, c, i, j]
                    if norm == 0.0:
                        continue
                    g = dout[n, c, i, j]
                    for ki in range(kernel_h):
                        row = i * stride_h + ki
                        for kj in range(kernel_w):
                            col = j * stride_w + kj
                            v = x[n, c, row, col]
                            if v > 0.0:
                                sign = 1.0
                            elif v < 0.0:
                                sign = -1.0
                            else:
                                sign = 0.0
                            dx[n, c, row, col] += g * sign * (abs(v) / norm) ** (p - 1.0)


# ----------------------------------------------------------------------------- global average pooling

@njit(cache=True)
def global_avg_pool2d_forward(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]"""
    N, C, H, W = x.shape
    area = H * W
    for n in range(N):
        for c in range(C):
            acc = 0.0
            for h in range(H):
                for w in range(W):
                    acc += x[n, c, h, w]
            out[n, c] = acc / area


@njit(cache=True)
def global_avg_pool2d_backward(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W): every pixel gets an equal share."""
    N, C, H, W = dx.shape
    area = H * W
    for n in range(N):
        for c in range(C):
            share = dout[n, c] / area
            for h in range(H):
                for w in range(W):
                    dx[n, c, h, w] = share
