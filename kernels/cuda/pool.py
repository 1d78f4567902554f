"""Pooling on the GPU: the twin of nbconv.kernels.pool (max, average, Lp-norm, global average).

Shapes: x (N, C, H, W), out (N, C, OH, OW); output pixel (i, j) of channel c looks at the window

    rows i*SH - PH + ki  (ki = 0 ... KH-1),   cols j*SW - PW + kj  (kj = 0 ... KW-1)

of the same channel.  Padding is -inf for max pooling (never wins), 0 for average pooling
(counted in the divisor KH*KW); Lp pooling has no padding.  Max pooling's switches hold, per
output, the flat index row * W + col of the winning pixel within its (H, W) plane (int64).
Global average pooling: x (N, C, H, W) -> out (N, C).

Mapping: every forward is one thread per output element, the window loop inside the thread
(sums in float64).  The backwards:

- max_pool2d_backward SCATTERS with atomics: one thread per output (n, c, i, j) adds its
  gradient to the winning pixel with ``cuda.atomic.add`` (overlapping windows may share a
  winner, so two threads can hit one pixel).  dx is zeroed by a first kernel.  The simple
  choice: it is the CPU loop body verbatim.
- avg_pool2d_backward and lp_pool2d_backward GATHER: one thread per input pixel loops over
  the taps (ki, kj) and keeps the windows (i, j) that contain the pixel, i = (row + PH - ki) / SH
  when whole and in [0, OH) (likewise j).  No atomics; a fixed order of the additions.
- global_avg_pool2d_backward: one thread per input pixel (no reduction at all).
"""

import math

from numba import cuda, float64

from ._launch import launch


# ----------------------------------------------------------------------------- max pooling

@cuda.jit
def _max_pool2d_forward_kernel(x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = max_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]
    switches[n, c, i, j] = row * W + col of that maximum

    one thread per output (n, c, i, j).  Ties: the first maximum in row-major window order
    wins; a NaN wins (as in the CPU kernel).
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = t // (OH * OW) % C
    i = t // OW % OH
    j = t % OW
    best = -math.inf
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


def max_pool2d_forward(x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = max over the window; switches[n, c, i, j] = row * W + col of the winner

    (device arrays; one thread per output)
    """
    launch(_max_pool2d_forward_kernel, out.size,
           x, out, switches, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)


@cuda.jit
def _fill_zero_kernel(a):
    """a[t] = 0 for the flat index t        one thread per element (a is 1-D)"""
    t = cuda.grid(1)
    if t < a.shape[0]:
        a[t] = 0.0


@cuda.jit
def _max_pool2d_backward_kernel(dout, switches, dx):
    """dx[n, c, s // W, s % W] += dout[n, c, i, j],  s = switches[n, c, i, j]

    one thread per output (n, c, i, j), adding with cuda.atomic.add: windows that overlap
    may share a winner, and then several threads add into the same pixel.
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = t // (OH * OW) % C
    i = t // OW % OH
    j = t % OW
    s = switches[n, c, i, j]
    cuda.atomic.add(dx, (n, c, s // W, s % W), dout[n, c, i, j])


def max_pool2d_backward(dout, switches, dx):
    """dx[n, c, row, col] = sum of dout[n, c, i, j] over the windows (i, j) whose switch is (row, col)

    (device arrays.)  Two kernels: zero dx (one thread per pixel), then one thread per output
    routes its gradient to the window's winner with an atomic add.
    """
    launch(_fill_zero_kernel, dx.size, dx.reshape(dx.size))
    launch(_max_pool2d_backward_kernel, dout.size, dout, switches, dx)


# ----------------------------------------------------------------------------- average pooling

@cuda.jit
def _avg_pool2d_forward_kernel(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    one thread per output; the padding is zero and counts in the divisor
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = t // (OH * OW) % C
    i = t // OW % OH
    j = t % OW
    area = kernel_h * kernel_w
    acc = float64(0.0)
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


def avg_pool2d_forward(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    (device arrays; one thread per output; the padding counts in the divisor)
    """
    launch(_avg_pool2d_forward_kernel, out.size, x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)


@cuda.jit
def _avg_pool2d_backward_kernel(dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """dx[n, c, row, col] = sum_{ki, kj} dout[n, c, i, j] / (KH*KW)

    over the windows (i, j) holding the pixel: row = i*SH - PH + ki, col = j*SW - PW + kj.
    One thread per input pixel, gathering (no atomics).
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = t // (H * W) % C
    row = t // W % H
    col = t % W
    area = kernel_h * kernel_w
    acc = float64(0.0)
    for ki in range(kernel_h):
        i_strided = row + pad_h - ki                  # = i * SH
        if i_strided < 0 or i_strided % stride_h != 0:
            continue
        i = i_strided // stride_h
        if i >= OH:
            continue
        for kj in range(kernel_w):
            j_strided = col + pad_w - kj              # = j * SW
            if j_strided < 0 or j_strided % stride_w != 0:
                continue
            j = j_strided // stride_w
            if j >= OW:
                continue
            acc += dout[n, c, i, j] / area
    dx[n, c, row, col] = acc


def avg_pool2d_backward(dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """dx[n, c, i*SH - PH + ki, j*SW - PW + kj] += dout[n, c, i, j] / (KH*KW)

    (device arrays; one thread per input pixel, gathering the shares of the windows that hold it;
    shares that fall on the padding belong to no pixel and are dropped)
    """
    launch(_avg_pool2d_backward_kernel, dx.size, dout, dx, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w)


# ----------------------------------------------------------------------------- Lp-norm pooling

@cuda.jit
def _lp_pool2d_forward_kernel(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)        one thread per output"""
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * OH * OW:
        return
    n = t // (C * OH * OW)
    c = t // (OH * OW) % C
    i = t // OW % OH
    j = t % OW
    acc = float64(0.0)
    for ki in range(kernel_h):
        row = i * stride_h + ki
        for kj in range(kernel_w):
            col = j * stride_w + kj
            acc += abs(float64(x[n, c, row, col])) ** p
    out[n, c, i, j] = acc ** (1.0 / p)


def lp_pool2d_forward(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)   (one thread per output, no padding)"""
    launch(_lp_pool2d_forward_kernel, out.size, x, out, p, kernel_h, kernel_w, stride_h, stride_w)


@cuda.jit
def _lp_pool2d_backward_kernel(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, row, col] = sum_{windows (i, j) holding it} dout[n, c, i, j] * sign(x) * (|x| / out[n, c, i, j])^(p-1)

    with x = x[n, c, row, col], row = i*SH + ki, col = j*SW + kj; a window whose norm is 0
    passes no gradient.  One thread per input pixel, gathering (no atomics).
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = t // (H * W) % C
    row = t // W % H
    col = t % W
    v = float64(x[n, c, row, col])
    if v > 0.0:
        sign = 1.0
    elif v < 0.0:
        sign = -1.0
    else:
        sign = 0.0
    acc = float64(0.0)
    for ki in range(kernel_h):
        i_strided = row - ki                          # = i * SH
        if i_strided < 0 or i_strided % stride_h != 0:
            continue
        i = i_strided // stride_h
        if i >= OH:
            continue
        for kj in range(kernel_w):
            j_strided = col - kj                      # = j * SW
            if j_strided < 0 or j_strided % stride_w != 0:
                continue
            j = j_strided // stride_w
            if j >= OW:
                continue
            norm = out[n, c, i, j]
            if norm == 0.0:
                continue
            acc += dout[n, c, i, j] * sign * (abs(v) / norm) ** (p - 1.0)
    dx[n, c, row, col] = acc


def lp_pool2d_backward(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, i*SH + ki, j*SW + kj] += dout[n, c, i, j] * sign(x) * (|x| / out[n, c, i, j])^(p-1)

    (device arrays; one thread per input pixel, gathering over the windows that hold it)
    """
    launch(_lp_pool2d_backward_kernel, dx.size, dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w)


# ----------------------------------------------------------------------------- global average pooling

@cuda.jit
def _global_avg_pool2d_forward_kernel(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]        one thread per (n, c)"""
    t = cuda.grid(1)
    N, C, H, W = x.shape
    if t >= N * C:
        return
    n = t // C
    c = t % C
    acc = float64(0.0)
    for h in range(H):
        for w in range(W):
            acc += x[n, c, h, w]
    out[n, c] = acc / (H * W)


def global_avg_pool2d_forward(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]   (one thread per (n, c))"""
    launch(_global_avg_pool2d_forward_kernel, out.size, x, out)


@cuda.jit
def _global_avg_pool2d_backward_kernel(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W)        one thread per pixel"""
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = t // (H * W) % C
    dx[n, c, t // W % H, t % W] = dout[n, c] / (H * W)


def global_avg_pool2d_backward(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W): every pixel gets an equal share (one thread per pixel)."""
    launch(_global_avg_pool2d_backward_kernel, dx.size, dout, dx)
