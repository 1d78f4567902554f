"""Pooling on the GPU: the twin of nbconv.kernels.pool (max, average, Lp-norm, global average).

Shapes: x (N, C, H, W), out (N, C, OH, OW); output pixel (i, j) of channel c looks at the window

    rows i*SH - PH + ki  (ki = 0 ... KH-1),   cols j*SW - PW + kj  (kj = 0 ... KW-1)

of the same channel.  Padding is -inf for max pooling (never wins), 0 for average pooling
(counted in the divisor KH*KW); Lp pooling has no padding.  Max pooling's switches hold, per
output, the flat index row * W + col of the winning pixel within its (H, W) plane (int64).
Global average pooling: x (N, C, H, W) -> out (N, C).

Mapping: the window forwards are one thread per output element, the window loop inside the
thread.  Global average pooling's forward sums H*W terms into one value: one BLOCK per (n, c),
whose THREADS threads split the plane (thread tid takes the pixels tid, tid + THREADS, ...)
and add up their running sums in a tree (``block_sum``, kernels/cuda/reduce.py).  The backwards:

- max_pool2d_backward: one block per plane (n, c), no atomics.  The block zeroes the plane,
  then takes its outputs in the CPU loop's order (row-major), THREADS at a time, a barrier
  between rounds; of the threads of a round whose windows share a winner (overlapping
  windows), the first adds all their gradients, in order, to that pixel.  Every pixel thus
  receives its gradients in the CPU's order, one addition at a time: the CPU's sums bit for
  bit, deterministic.  (It needs nothing but dout and the switches, the arguments of the CPU
  kernel: a thread per input pixel would have to know the window, which the backward is not
  given.)
- avg_pool2d_backward and lp_pool2d_backward GATHER: one thread per input pixel loops over
  the taps (ki, kj) and keeps the windows (i, j) that contain the pixel, i = (row + PH - ki) / SH
  when whole and in [0, OH) (likewise j).  No atomics; a fixed order of the additions.
- global_avg_pool2d_backward: one thread per input pixel (no reduction at all).

Precision: the arithmetic runs in the data's dtype (a float64 value in a float32 kernel would
run at 1/32 of the float32 rate on a T4-class GPU): sums start at ``x.dtype.type(0)``, the
divisors and Lp's p come in x's dtype, and the powers of float32 numbers are float32 powers
(powf).  float64 data stays float64.  The CPU kernels sum in float64 and round once, so float32
results differ from theirs by float32 rounding, except max pooling's (a comparison, and its
backward adds float32 gradients in the CPU's order: bit for bit) and global average pooling's
backward (one correctly rounded division either way).  Lp pooling's float32 sum of |x|^p
overflows to inf (underflows to 0) where |x|^p leaves float32's range, e.g. |x| > 1e4 at
p = 10, which the CPU's float64 sum does not.
"""

import math

from numba import cuda, int64

from ._launch import THREADS, launch
from .reduce import block_sum


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
    best = x.dtype.type(-math.inf)
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
def _max_pool2d_backward_kernel(dout, switches, dx):
    """dx[n, c, s // W, s % W] += dout[n, c, i, j],  s = switches[n, c, i, j], (i, j) in row-major order

    one block per plane (n, c).  The block zeroes the plane; then, round after round, its
    threads take the next THREADS outputs k = i*OW + j (thread tid output k = start + tid) and
    put their winner and gradient in shared memory.  The first thread of the round with a given
    winner s adds the gradients of every thread of the round with that winner, in thread order,
    to dx at s.  A barrier separates the rounds, so the additions into one pixel happen in the
    order of the outputs: as the CPU's loop makes them, without atomics.
    """
    plane = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N, C, H, W = dx.shape
    OH, OW = dout.shape[2], dout.shape[3]
    n = plane // C
    c = plane % C
    winners = cuda.shared.array(THREADS, int64)
    grads = cuda.shared.array(THREADS, dx.dtype)
    for pixel in range(tid, H * W, THREADS):    # dx = 0 on the plane
        dx[n, c, pixel // W, pixel % W] = 0
    for start in range(0, OH * OW, THREADS):
        cuda.syncthreads()                  # the zeroing, or the previous round's additions, done
        k = start + tid
        if k < OH * OW:
            winners[tid] = switches[n, c, k // OW, k % OW]
            grads[tid] = dout[n, c, k // OW, k % OW]
        else:
            winners[tid] = -1               # no output: matches no pixel
        cuda.syncthreads()
        s = winners[tid]
        first = s >= 0
        for other in range(tid):
            if winners[other] == s:
                first = False
        if first:
            total = dx[n, c, s // W, s % W]
            for other in range(tid, THREADS):
                if winners[other] == s:
                    total += grads[other]
            dx[n, c, s // W, s % W] = total


def max_pool2d_backward(dout, switches, dx):
    """dx[n, c, row, col] = sum of dout[n, c, i, j] over the windows (i, j) whose switch is (row, col)

    (device arrays.)  One block of THREADS threads per (n, c) plane routes the plane's
    gradients to the windows' winners, in the CPU's order, without atomics (see the kernel):
    deterministic, and bit for bit the CPU kernel's dx.
    """
    planes = dx.shape[0] * dx.shape[1]
    if planes > 0:
        _max_pool2d_backward_kernel[planes, THREADS](dout, switches, dx)


# ----------------------------------------------------------------------------- average pooling

@cuda.jit
def _avg_pool2d_forward_kernel(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w):
    """out[n, c, i, j] = (1 / (KH*KW)) * sum_{ki, kj} x[n, c, i*SH - PH + ki, j*SW - PW + kj]

    one thread per output, summing in x's dtype; the padding is zero and counts in the divisor
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
    area = x.dtype.type(kernel_h * kernel_w)
    acc = x.dtype.type(0)
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
    One thread per input pixel, gathering (no atomics), in dx's dtype.
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
    area = dx.dtype.type(kernel_h * kernel_w)
    acc = dx.dtype.type(0)
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
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)

    one thread per output, in x's dtype (p comes in x's dtype)
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
    one = x.dtype.type(1)
    acc = x.dtype.type(0)
    for ki in range(kernel_h):
        row = i * stride_h + ki
        for kj in range(kernel_w):
            col = j * stride_w + kj
            acc += abs(x[n, c, row, col]) ** p
    out[n, c, i, j] = acc ** (one / p)


def lp_pool2d_forward(x, out, p, kernel_h, kernel_w, stride_h, stride_w):
    """out[n, c, i, j] = (sum_{ki, kj} |x[n, c, i*SH + ki, j*SW + kj]|^p)^(1/p)   (one thread per output, no padding)"""
    # p in x's dtype: a Python-float p would make the float32 powers float64 (1/32 speed on T4)
    launch(_lp_pool2d_forward_kernel, out.size, x, out, x.dtype.type(p), kernel_h, kernel_w, stride_h, stride_w)


@cuda.jit
def _lp_pool2d_backward_kernel(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, row, col] = sum_{windows (i, j) holding it} dout[n, c, i, j] * sign(x) * (|x| / out[n, c, i, j])^(p-1)

    with x = x[n, c, row, col], row = i*SH + ki, col = j*SW + kj; a window whose norm is 0
    passes no gradient.  One thread per input pixel, gathering (no atomics), in x's dtype.
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
    one = x.dtype.type(1)
    v = x[n, c, row, col]
    if v > 0:
        sign = one
    elif v < 0:
        sign = -one
    else:
        sign = x.dtype.type(0)
    acc = x.dtype.type(0)
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
            if norm == 0:
                continue
            acc += dout[n, c, i, j] * sign * (abs(v) / norm) ** (p - one)
    dx[n, c, row, col] = acc


def lp_pool2d_backward(dout, x, out, dx, p, kernel_h, kernel_w, stride_h, stride_w):
    """dx[n, c, i*SH + ki, j*SW + kj] += dout[n, c, i, j] * sign(x) * (|x| / out[n, c, i, j])^(p-1)

    (device arrays; one thread per input pixel, gathering over the windows that hold it)
    """
    launch(_lp_pool2d_backward_kernel, dx.size,
           dout, x, out, dx, x.dtype.type(p), kernel_h, kernel_w, stride_h, stride_w)     # p in x's dtype


# ----------------------------------------------------------------------------- global average pooling

@cuda.jit
def _global_avg_pool2d_forward_kernel(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]        one block per (n, c)

    Thread tid adds the pixels k = tid, tid + THREADS, ... of the plane (k = h*W + w);
    block_sum adds up the THREADS running sums in a tree.
    """
    plane = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N, C, H, W = x.shape
    n = plane // C
    c = plane % C
    sums = cuda.shared.array(THREADS, x.dtype)
    acc = x.dtype.type(0)
    for k in range(tid, H * W, THREADS):
        acc += x[n, c, k // W, k % W]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        out[n, c] = total / x.dtype.type(H * W)


def global_avg_pool2d_forward(x, out):
    """out[n, c] = (1 / (H*W)) * sum_{h, w} x[n, c, h, w]   (one block of THREADS threads per (n, c), a tree sum)"""
    if out.size > 0:
        _global_avg_pool2d_forward_kernel[out.size, THREADS](x, out)


@cuda.jit
def _global_avg_pool2d_backward_kernel(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W)        one thread per pixel"""
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    c = t // (H * W) % C
    dx[n, c, t // W % H, t % W] = dout[n, c] / dx.dtype.type(H * W)


def global_avg_pool2d_backward(dout, dx):
    """dx[n, c, h, w] = dout[n, c] / (H*W): every pixel gets an equal share (one thread per pixel)."""
    launch(_global_avg_pool2d_backward_kernel, dx.size, dout, dx)
