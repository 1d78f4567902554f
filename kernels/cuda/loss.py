"""Softmax, log-softmax and the losses on the GPU: the twin of nbconv.kernels.loss.

Shapes (as on the CPU):
  softmax, log_softmax      x (A, C, B) -> out (A, C, B), one distribution over c for every (a, b).
  cross_entropy             logits (N, C), target (N,) int64, probs (N, C) written for the
                            backward -> the mean loss, a 0-d device array of logits' dtype.
  cross_entropy_soft        the same with probability targets, target (N, K) of logits' dtype.
  mse, mae, bce,            y, t (M,) -> the mean loss over the M elements, a 0-d device array
  bce_with_logits           of y's dtype.

The losses stay on the device: the forward returns the mean as a 0-d device array, and nothing
is copied to the host (the caller reads it when it wants the number: nbconv.functional hands it
out as a device array that ``float(loss)`` reads).  The backward launchers take the upstream
gradient ``dout`` as a number (written into a 1-element device array by a kernel, the number
passed as a launch argument) or as a 0-d or 1-element device array of the data's dtype, such
as the loss itself: every thread reads it from device memory, so it is never copied to the host.

Mapping.  The statistics of a distribution are reductions over c: its maximum m, its sum
Z = sum_c exp(x[c] - m), and the sums over c of the backward passes.  Each (a, b) gets one block
of ROW_THREADS threads (a warp): thread tid visits c = tid, tid + ROW_THREADS, ... (a block-stride
loop) with a running maximum or sum, and the block combines them with ``reduce.block_max`` and
``reduce.block_sum`` (a tree in shared memory, in a fixed order: the result is deterministic).
On logits (N, C), and any softmax over the last axis (B = 1), the 32 threads of the warp read 32
neighbouring classes at each step: coalesced.  (Over another axis, B > 1, neighbouring classes
lie B elements apart and the warp's reads are scattered.)  Then one thread per element (a, c, b)
writes the output from the statistics of its (a, b).  Cross-entropy runs on logits viewed as
(N, C, 1), with the same statistics; its row kernel also writes the row's loss term.

The mean losses reduce in two launches: a grid-stride first pass (at most SUM_BLOCKS blocks of
THREADS threads; thread t adds the terms t, t + the grid's size, ..., computed where they
are read) whose blocks combine their sums with ``block_sum`` into one partial sum per block;
then one block adds the partial sums the same way and divides by the count, writing the mean
into the 0-d result.  The grid depends only on the count, so the order of the additions, and
the result, are the same on every run.  The backward passes are one thread per element.

Precision: the arithmetic runs in the data's dtype.  A float32 kernel that touches a float64
value (a Python float argument, a bare literal such as 1.0 or -math.inf) computes in float64,
which a T4-class GPU runs at 1/32 of the float32 rate: the statistics, partial sums and the
gradient's scale are arrays of the data's dtype, literals are written ``x.dtype.type(1)``, and
math.exp and math.log of a float32 are the float32 functions (expf, logf).  Sums run through the
trees (log2 of the block size levels) after running sums of C / ROW_THREADS or M / (grid size)
terms, so float32 keeps its precision; the CPU kernels add in float64 and round once, and the
two agree to float32 rounding (tests/cuda/test_cuda_loss_device.py).

Out of range: nbconv.functional refuses class targets outside [0, C) and probabilities outside
[0, 1] always on the host, and on the device only in debug mode (docs/debug.md), since
checking them means a copy to the host.  Without it, the kernels turn such a value into a NaN
loss term (and never read outside the row for it): the loss comes out NaN.
"""

import math

import numpy as np
from numba import cuda

from ._launch import launch
from .elementwise import fill
from .reduce import block_max, block_sum

BCE_LOG_CLAMP = -100.0   # BCE clamps log(p) and log(1 - p) at -100, as PyTorch does
BCE_GRAD_EPS = 1e-12     # and floors p (1 - p) at 1e-12 in the gradient, as PyTorch does

ROW_THREADS = 32         # threads per block of the reductions over c, one block per (a, b) (a power of 2)
THREADS = 128            # threads per block of the mean's sums (a power of 2)
SUM_BLOCKS = 256         # at most this many partial sums from the first pass (a block or two per SM of a large GPU)
# the one-thread-per-element kernels run in blocks of _launch.THREADS (``launch``)


def _launch_rows(kernel, rows, *args):
    """kernel[rows, ROW_THREADS](*args): one block per (a, b); nothing when there is no row."""
    if rows > 0:
        kernel[rows, ROW_THREADS](*args)


def _scale(dout, dtype):
    """The upstream gradient as the 1-element device array of ``dtype`` the backward kernels read:
    a 0-d or 1-element device array viewed as (1,), no copy; a number written into a new one by
    a kernel (the number travels as a launch argument, not through a copy)."""
    if hasattr(dout, "copy_to_host"):
        return dout.reshape(1)
    g = cuda.device_array(1, dtype=dtype)
    fill(g, dout)
    return g


# ---------------------------------------------------------------- the mean of the terms

@cuda.jit
def _sum_kernel(values, partial):
    """partial[block] = the sum of the values[k] that the block's threads visit

    grid-stride: thread t adds values[t], values[t + the grid's size], ...; then the block's
    THREADS running sums are combined by block_sum (a tree in shared memory)
    """
    sums = cuda.shared.array(THREADS, values.dtype)
    tid = cuda.threadIdx.x
    acc = values.dtype.type(0)
    for k in range(cuda.grid(1), values.shape[0], cuda.gridsize(1)):
        acc += values[k]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


@cuda.jit
def _mean_kernel(partial, count, mean):
    """mean[0] = (sum_b partial[b]) / count        one block: a block-stride loop, then block_sum"""
    sums = cuda.shared.array(THREADS, partial.dtype)
    tid = cuda.threadIdx.x
    acc = partial.dtype.type(0)
    for b in range(tid, partial.shape[0], THREADS):
        acc += partial[b]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        mean[0] = total / count


def _sum_blocks(count):
    """The first pass's grid: enough blocks for one term per thread, at most SUM_BLOCKS."""
    return min(SUM_BLOCKS, max(1, (count + THREADS - 1) // THREADS))


def _mean(sum_kernel, count, dtype, *args):
    """(1/count) sum of the terms that ``sum_kernel(*args, partial)`` adds up into one partial sum
    per block (the first pass), the partial sums added by ``_mean_kernel``: a 0-d device array."""
    dtype = np.dtype(dtype)
    blocks = _sum_blocks(count)
    partial = cuda.device_array(blocks, dtype=dtype)
    sum_kernel[blocks, THREADS](*args, partial)
    mean = cuda.device_array((), dtype=dtype)
    _mean_kernel[1, THREADS](partial, dtype.type(count), mean.reshape(1))
    return mean


def device_mean(values):
    """(1/M) sum_k values[k] of a 1-D device array (M >= 1), reduced on the device: a 0-d device
    array of values' dtype (the two passes of the mean losses)."""
    return _mean(_sum_kernel, values.shape[0], values.dtype, values)


# ---------------------------------------------------------------- softmax

@cuda.jit(device=True, inline="always")
def _max_and_sum_exp(x, a, b, shared, tid):
    """(m, Z) of the distribution x[a, :, b], for every thread of the block:
    m = max_k x[a, k, b] (block_max), Z = sum_k exp(x[a, k, b] - m) (block_sum), each thread
    visiting k = tid, tid + ROW_THREADS, ..."""
    C = x.shape[1]
    m = x.dtype.type(-math.inf)
    for k in range(tid, C, ROW_THREADS):
        if x[a, k, b] > m:
            m = x[a, k, b]
    m = block_max(shared, tid, m)
    acc = x.dtype.type(0)
    for k in range(tid, C, ROW_THREADS):
        acc += math.exp(x[a, k, b] - m)
    return m, block_sum(shared, tid, acc)


@cuda.jit
def _max_sumexp_kernel(x, row_max, row_sum):
    """row_max[a, b] = m = max_k x[a, k, b];  row_sum[a, b] = sum_k exp(x[a, k, b] - m)
    one block per (a, b): block-stride over k, block_max then block_sum"""
    B = x.shape[2]
    a = cuda.blockIdx.x // B
    b = cuda.blockIdx.x % B
    tid = cuda.threadIdx.x
    shared = cuda.shared.array(ROW_THREADS, x.dtype)
    m, Z = _max_and_sum_exp(x, a, b, shared, tid)
    if tid == 0:
        row_max[a, b] = m
        row_sum[a, b] = Z


@cuda.jit
def _softmax_forward_kernel(x, row_max, row_sum, s):
    """s[a, c, b] = exp(x[a, c, b] - m[a, b]) / sum_k exp(x[a, k, b] - m[a, b])        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = x.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = (t // B) % C
    b = t % B
    s[a, c, b] = math.exp(x[a, c, b] - row_max[a, b]) / row_sum[a, b]


def _statistics(x):
    """(row_max, row_sum), each (A, B) of x's dtype on the device, for x (A, C, B)."""
    A, _, B = x.shape
    row_max = cuda.device_array((A, B), dtype=x.dtype)
    row_sum = cuda.device_array((A, B), dtype=x.dtype)
    _launch_rows(_max_sumexp_kernel, A * B, x, row_max, row_sum)
    return row_max, row_sum


def softmax_forward(x, s):
    """s[a, c, b] = exp(x[a, c, b] - m[a, b]) / sum_k exp(x[a, k, b] - m[a, b]),   m[a, b] = max_k x[a, k, b]

    x, s (A, C, B) as on the CPU.  Two kernels: the statistics of every (a, b) (one block
    each), then one thread per element.
    """
    if x.size == 0:
        return
    row_max, row_sum = _statistics(x)
    launch(_softmax_forward_kernel, s.size, x, row_max, row_sum, s)


@cuda.jit
def _dot_over_c_kernel(u, v, dot):
    """dot[a, b] = sum_k u[a, k, b] * v[a, k, b]        one block per (a, b): block-stride over k, block_sum"""
    B = u.shape[2]
    a = cuda.blockIdx.x // B
    b = cuda.blockIdx.x % B
    tid = cuda.threadIdx.x
    shared = cuda.shared.array(ROW_THREADS, u.dtype)
    acc = u.dtype.type(0)
    for k in range(tid, u.shape[1], ROW_THREADS):
        acc += u[a, k, b] * v[a, k, b]
    total = block_sum(shared, tid, acc)
    if tid == 0:
        dot[a, b] = total


@cuda.jit
def _softmax_backward_kernel(s, dout, dot, dx):
    """dx[a, c, b] = s[a, c, b] * (dout[a, c, b] - sum_k dout[a, k, b] s[a, k, b])        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = s.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = (t // B) % C
    b = t % B
    dx[a, c, b] = s[a, c, b] * (dout[a, c, b] - dot[a, b])


def softmax_backward(s, dout, dx):
    """dx[a, c, b] = s[a, c, b] * (dout[a, c, b] - sum_k dout[a, k, b] s[a, k, b])

    Two kernels: the dot product over c of every (a, b) (one block each), then one thread per element.
    """
    if s.size == 0:
        return
    A, _, B = s.shape
    dot = cuda.device_array((A, B), dtype=s.dtype)
    _launch_rows(_dot_over_c_kernel, A * B, dout, s, dot)
    launch(_softmax_backward_kernel, dx.size, s, dout, dot, dx)


# ---------------------------------------------------------------- log-softmax

@cuda.jit
def _log_softmax_forward_kernel(x, row_max, row_sum, out):
    """out[a, c, b] = (x[a, c, b] - m[a, b]) - log(sum_k exp(x[a, k, b] - m[a, b]))        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = x.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = (t // B) % C
    b = t % B
    out[a, c, b] = (x[a, c, b] - row_max[a, b]) - math.log(row_sum[a, b])


def log_softmax_forward(x, out):
    """out[a, c, b] = (x[a, c, b] - m[a, b]) - log(sum_k exp(x[a, k, b] - m[a, b])),   m[a, b] = max_k x[a, k, b]

    Two kernels: the statistics of every (a, b) (one block each), then one thread per element.
    """
    if x.size == 0:
        return
    row_max, row_sum = _statistics(x)
    launch(_log_softmax_forward_kernel, out.size, x, row_max, row_sum, out)


@cuda.jit
def _sum_over_c_kernel(u, total):
    """total[a, b] = sum_k u[a, k, b]        one block per (a, b): block-stride over k, block_sum"""
    B = u.shape[2]
    a = cuda.blockIdx.x // B
    b = cuda.blockIdx.x % B
    tid = cuda.threadIdx.x
    shared = cuda.shared.array(ROW_THREADS, u.dtype)
    acc = u.dtype.type(0)
    for k in range(tid, u.shape[1], ROW_THREADS):
        acc += u[a, k, b]
    row_total = block_sum(shared, tid, acc)
    if tid == 0:
        total[a, b] = row_total


@cuda.jit
def _log_softmax_backward_kernel(out, dout, total, dx):
    """dx[a, c, b] = dout[a, c, b] - exp(out[a, c, b]) * sum_k dout[a, k, b]        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = out.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = (t // B) % C
    b = t % B
    dx[a, c, b] = dout[a, c, b] - math.exp(out[a, c, b]) * total[a, b]


def log_softmax_backward(out, dout, dx):
    """dx[a, c, b] = dout[a, c, b] - softmax[a, c, b] * sum_k dout[a, k, b],   softmax = exp(out)

    Two kernels: the sums of dout over c (one block per (a, b)), then one thread per element.
    """
    if out.size == 0:
        return
    A, _, B = out.shape
    total = cuda.device_array((A, B), dtype=out.dtype)
    _launch_rows(_sum_over_c_kernel, A * B, dout, total)
    launch(_log_softmax_backward_kernel, dx.size, out, dout, total, dx)


# ---------------------------------------------------------------- cross-entropy

@cuda.jit
def _cross_entropy_rows_kernel(x, target, row_max, row_sum, loss_n):
    """m_n = max_c logits[n, c],  Z_n = sum_c exp(logits[n, c] - m_n),
    loss_n[n] = (m_n - logits[n, target[n]]) + log Z_n   (= -log softmax(logits[n])[target[n]])

    x: the logits viewed as (N, C, 1); one block per row n (block_max, block_sum); row_max and
    row_sum are (N, 1), the statistics of that view.  A target outside [0, C) gives loss_n = NaN.
    """
    n = cuda.blockIdx.x
    C = x.shape[1]
    tid = cuda.threadIdx.x
    shared = cuda.shared.array(ROW_THREADS, x.dtype)
    m, Z = _max_and_sum_exp(x, n, 0, shared, tid)
    if tid == 0:
        row_max[n, 0] = m
        row_sum[n, 0] = Z
        c = target[n]
        if c >= 0 and c < C:
            loss_n[n] = (m - x[n, c, 0]) + math.log(Z)
        else:
            loss_n[n] = x.dtype.type(math.nan)


def cross_entropy_forward(logits, target, probs):
    """L = 1/N sum_n -log softmax(logits[n])[target[n]]
         = 1/N sum_n (m_n + log sum_c exp(logits[n, c] - m_n) - logits[n, target[n]])

    Also writes probs[n, c] = softmax(logits[n])[c] for the backward pass.  Kernels: the rows'
    statistics and loss terms (one block per row), probs (softmax's, one thread per element, on
    the (N, C, 1) view), the mean of the terms (two passes); returns it as a 0-d device array.
    """
    N, C = logits.shape
    x = logits.reshape(N, C, 1)
    row_max = cuda.device_array((N, 1), dtype=logits.dtype)
    row_sum = cuda.device_array((N, 1), dtype=logits.dtype)
    loss_n = cuda.device_array(N, dtype=logits.dtype)
    _launch_rows(_cross_entropy_rows_kernel, N, x, target, row_max, row_sum, loss_n)
    launch(_softmax_forward_kernel, probs.size, x, row_max, row_sum, probs.reshape(N, C, 1))
    return device_mean(loss_n)


@cuda.jit
def _cross_entropy_backward_kernel(probs, target, g, dlogits):
    """dlogits[n, c] = (probs[n, c] - [c == target[n]]) / N * g[0]        one thread per (n, c)"""
    t = cuda.grid(1)
    N, C = probs.shape
    if t >= N * C:
        return
    n = t // C
    c = t % C
    onehot = probs.dtype.type(1) if c == target[n] else probs.dtype.type(0)
    dlogits[n, c] = (probs[n, c] - onehot) / probs.dtype.type(N) * g[0]


def cross_entropy_backward(probs, target, dout, dlogits):
    """dlogits[n, c] = (probs[n, c] - [c == target[n]]) / N * dout   (one thread per element)"""
    g = _scale(dout, probs.dtype)
    launch(_cross_entropy_backward_kernel, dlogits.size, probs, target, g, dlogits)


@cuda.jit
def _cross_entropy_soft_rows_kernel(x, target, row_max, row_sum, loss_n):
    """m_n = max_k logits[n, k],  Z_n = sum_k exp(logits[n, k] - m_n),
    loss_n[n] = -sum_k t[n, k] ((logits[n, k] - m_n) - ln Z_n)   (= -sum_k t[n, k] ln softmax(logits[n])[k])

    x and target: the logits and t viewed as (N, K, 1); one block per row n (block_max, then
    block_sum twice); row_max and row_sum are (N, 1), as for the class-index kernel
    """
    n = cuda.blockIdx.x
    K = x.shape[1]
    tid = cuda.threadIdx.x
    shared = cuda.shared.array(ROW_THREADS, x.dtype)
    m, Z = _max_and_sum_exp(x, n, 0, shared, tid)
    log_Z = math.log(Z)
    acc = x.dtype.type(0)
    for k in range(tid, K, ROW_THREADS):
        acc += target[n, k, 0] * ((x[n, k, 0] - m) - log_Z)
    total = block_sum(shared, tid, acc)
    if tid == 0:
        row_max[n, 0] = m
        row_sum[n, 0] = Z
        loss_n[n] = -total


def cross_entropy_soft_forward(logits, target, probs):
    """L = -1/N sum_n sum_k t[n, k] ln softmax(logits[n])[k],   t = target (N, K) (probabilities)

    Also writes probs[n, k] = softmax(logits[n])[k] for the backward pass.  Kernels: the rows'
    statistics and loss terms (one block per row), probs (softmax's, one thread per element),
    the mean of the terms (two passes); returns it as a 0-d device array.
    """
    N, K = logits.shape
    x = logits.reshape(N, K, 1)
    row_max = cuda.device_array((N, 1), dtype=logits.dtype)
    row_sum = cuda.device_array((N, 1), dtype=logits.dtype)
    loss_n = cuda.device_array(N, dtype=logits.dtype)
    _launch_rows(_cross_entropy_soft_rows_kernel, N, x, target.reshape(N, K, 1), row_max, row_sum, loss_n)
    launch(_softmax_forward_kernel, probs.size, x, row_max, row_sum, probs.reshape(N, K, 1))
    return device_mean(loss_n)


@cuda.jit
def _cross_entropy_soft_backward_kernel(probs, target, row_total, g, dlogits):
    """dlogits[n, k] = (probs[n, k] * T_n - t[n, k]) / N * g[0],  T_n = row_total[n, 0]        one thread per (n, k)"""
    t = cuda.grid(1)
    N, K = probs.shape
    if t >= N * K:
        return
    n = t // K
    k = t % K
    dlogits[n, k] = (probs[n, k] * row_total[n, 0] - target[n, k]) / probs.dtype.type(N) * g[0]


def cross_entropy_soft_backward(probs, target, dout, dlogits):
    """dlogits[n, k] = (probs[n, k] * T_n - t[n, k]) / N * dout,  T_n = sum_k t[n, k]   (the row
    sums first, one block per row, as log-softmax's sums over c; then one thread per element)"""
    N, K = probs.shape
    g = _scale(dout, probs.dtype)
    row_total = cuda.device_array((N, 1), dtype=target.dtype)
    _launch_rows(_sum_over_c_kernel, N, target.reshape(N, K, 1), row_total)
    launch(_cross_entropy_soft_backward_kernel, dlogits.size, probs, target, row_total, g, dlogits)


# ---------------------------------------------------------------- MSE

@cuda.jit
def _mse_sum_kernel(y, t, partial):
    """partial[block] = sum of (y[i] - t[i])^2 over the block's i        grid-stride, then block_sum"""
    sums = cuda.shared.array(THREADS, y.dtype)
    tid = cuda.threadIdx.x
    acc = y.dtype.type(0)
    for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        d = y[i] - t[i]
        acc += d * d
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


def mse_forward(y, t):
    """L = 1/M sum_i (y[i] - t[i])^2   (the mean on the device, a 0-d device array)"""
    return _mean(_mse_sum_kernel, y.shape[0], y.dtype, y, t)


@cuda.jit
def _mse_backward_kernel(y, t, g, dy):
    """dy[i] = 2 (y[i] - t[i]) / M * g[0]        one thread per i"""
    i = cuda.grid(1)
    M = y.shape[0]
    if i >= M:
        return
    dy[i] = y.dtype.type(2) * (y[i] - t[i]) / y.dtype.type(M) * g[0]


def mse_backward(y, t, dout, dy):
    """dy[i] = 2 (y[i] - t[i]) / M * dout"""
    launch(_mse_backward_kernel, y.shape[0], y, t, _scale(dout, y.dtype), dy)


# ---------------------------------------------------------------- MAE

@cuda.jit
def _mae_sum_kernel(y, t, partial):
    """partial[block] = sum of |y[i] - t[i]| over the block's i        grid-stride, then block_sum"""
    sums = cuda.shared.array(THREADS, y.dtype)
    tid = cuda.threadIdx.x
    acc = y.dtype.type(0)
    for i in range(cuda.grid(1), y.shape[0], cuda.gridsize(1)):
        acc += abs(y[i] - t[i])
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


def mae_forward(y, t):
    """L = 1/M sum_i |y[i] - t[i]|   (a 0-d device array)"""
    return _mean(_mae_sum_kernel, y.shape[0], y.dtype, y, t)


@cuda.jit
def _mae_backward_kernel(y, t, g, dy):
    """dy[i] = sign(y[i] - t[i]) / M * g[0],  sign(0) = 0        one thread per i"""
    i = cuda.grid(1)
    M = y.shape[0]
    if i >= M:
        return
    zero = y.dtype.type(0)
    d = y[i] - t[i]
    if d > zero:
        sign = y.dtype.type(1)
    elif d < zero:
        sign = y.dtype.type(-1)
    else:
        sign = zero
    dy[i] = sign / y.dtype.type(M) * g[0]


def mae_backward(y, t, dout, dy):
    """dy[i] = sign(y[i] - t[i]) / M * dout,   sign(0) = 0 (|.| has a kink there)"""
    launch(_mae_backward_kernel, y.shape[0], y, t, _scale(dout, y.dtype), dy)


# ---------------------------------------------------------------- BCE on probabilities

@cuda.jit(device=True, inline="always")
def _bce_term(p, t, i):
    """-(t[i] log p[i] + (1 - t[i]) log(1 - p[i])), each log clamped below at -100, in p's dtype;
    NaN for a p[i] outside [0, 1] or NaN.  (log 0 = -inf would be clamped: it is skipped, since
    the simulator's Python math.log(0) raises; the CUDA logf(0) would give -inf.)"""
    zero = p.dtype.type(0)
    one = p.dtype.type(1)
    clamp = p.dtype.type(BCE_LOG_CLAMP)
    pi = p[i]
    if not (pi >= zero and pi <= one):
        return p.dtype.type(math.nan)
    log_p = clamp
    if pi > zero:
        log_p = max(math.log(pi), clamp)
    log_1mp = clamp
    if pi < one:
        log_1mp = max(math.log(one - pi), clamp)
    return -(t[i] * log_p + (one - t[i]) * log_1mp)


@cuda.jit
def _bce_sum_kernel(p, t, partial):
    """partial[block] = sum of -(t[i] log p[i] + (1 - t[i]) log(1 - p[i])) over the block's i
    (each log clamped at -100)        grid-stride, then block_sum"""
    sums = cuda.shared.array(THREADS, p.dtype)
    tid = cuda.threadIdx.x
    acc = p.dtype.type(0)
    for i in range(cuda.grid(1), p.shape[0], cuda.gridsize(1)):
        acc += _bce_term(p, t, i)
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


def bce_forward(p, t):
    """L = 1/M sum_i -(t[i] log p[i] + (1 - t[i]) log(1 - p[i])),  each log clamped at -100

    (log 0 = -inf is clamped to -100, so p = 0 or 1 give a finite loss; a p outside [0, 1]
    gives NaN; a 0-d device array)
    """
    return _mean(_bce_sum_kernel, p.shape[0], p.dtype, p, t)


@cuda.jit
def _bce_backward_kernel(p, t, g, dp):
    """dp[i] = (p[i] - t[i]) / max(p[i] (1 - p[i]), 1e-12) / M * g[0]        one thread per i"""
    i = cuda.grid(1)
    M = p.shape[0]
    if i >= M:
        return
    eps = p.dtype.type(BCE_GRAD_EPS)
    denom = p[i] * (p.dtype.type(1) - p[i])
    if denom < eps:
        denom = eps
    dp[i] = (p[i] - t[i]) / denom / p.dtype.type(M) * g[0]


def bce_backward(p, t, dout, dp):
    """dp[i] = (p[i] - t[i]) / max(p[i] (1 - p[i]), 1e-12) / M * dout"""
    launch(_bce_backward_kernel, p.shape[0], p, t, _scale(dout, p.dtype), dp)


# ---------------------------------------------------------------- BCE on logits

@cuda.jit
def _bce_with_logits_sum_kernel(z, t, partial):
    """partial[block] = sum of max(z[i], 0) - z[i] t[i] + log(1 + exp(-|z[i]|)) over the block's i
    grid-stride, then block_sum"""
    sums = cuda.shared.array(THREADS, z.dtype)
    tid = cuda.threadIdx.x
    zero = z.dtype.type(0)
    acc = zero
    for i in range(cuda.grid(1), z.shape[0], cuda.gridsize(1)):
        acc += max(z[i], zero) - z[i] * t[i] + math.log1p(math.exp(-abs(z[i])))
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


def bce_with_logits_forward(z, t):
    """L = 1/M sum_i max(z[i], 0) - z[i] t[i] + log(1 + exp(-|z[i]|))   (a 0-d device array)"""
    return _mean(_bce_with_logits_sum_kernel, z.shape[0], z.dtype, z, t)


@cuda.jit
def _bce_with_logits_backward_kernel(z, t, g, dz):
    """dz[i] = (sigmoid(z[i]) - t[i]) / M * g[0]        one thread per i"""
    i = cuda.grid(1)
    M = z.shape[0]
    if i >= M:
        return
    one = z.dtype.type(1)
    zi = z[i]
    if zi >= z.dtype.type(0):
        sig = one / (one + math.exp(-zi))
    else:
        e = math.exp(zi)
        sig = e / (one + e)
    dz[i] = (sig - t[i]) / z.dtype.type(M) * g[0]


def bce_with_logits_backward(z, t, dout, dz):
    """dz[i] = (sigmoid(z[i]) - t[i]) / M * dout   (sigmoid in its overflow-free form)"""
    launch(_bce_with_logits_backward_kernel, z.shape[0], z, t, _scale(dout, z.dtype), dz)
