"""Softmax, log-softmax and the losses on the GPU: the twin of nbconv.kernels.loss.

Shapes (as on the CPU):
  softmax, log_softmax      x (A, C, B) -> out (A, C, B), one distribution over c for every (a, b).
  cross_entropy             logits (N, C), target (N,) int64, probs (N, C) written for the
                            backward -> the mean loss, returned as a Python float.
  cross_entropy_soft        the same with probability targets, target (N, K) of logits' dtype.
  mse, mae, bce,            y, t (M,) -> the mean loss over the M elements, a Python float.
  bce_with_logits

Mapping: the max and sum of a distribution are needed by every element of it, so softmax and
log-softmax are two kernels: a reduction over c (one thread per (a, b), writing m[a, b] and the
sum into (A, B) float64 scratch arrays), then one thread per element (a, c, b).  Any axis is
served by the same (A, C, B) view as on the CPU, without moving it: the threads of neighbouring
b read neighbouring addresses.  Cross-entropy's per-row thread also writes the row's loss term.

The losses reduce on the device: one thread per element (or row) writes its term into a
float64 scratch array, then ``_device_sum`` adds them up with the classic shared-memory tree
reduction (blocks of SUM_THREADS threads, a block-stride loop, then halving strides inside the
block, a second launch over the per-block partial sums), and only the final scalar is copied
back to the host.  The backward passes are one thread per element.
"""

import math

from numba import cuda, float64
import numpy as np

from ._launch import launch
from .reduce import block_sum

BCE_LOG_CLAMP = -100.0   # BCE clamps log(p) and log(1 - p) at -100, as PyTorch does
BCE_GRAD_EPS = 1e-12     # and floors p (1 - p) at 1e-12 in the gradient, as PyTorch does

SUM_THREADS = 128        # threads per block of the tree reduction (a power of 2)
SUM_BLOCKS = 64          # at most this many partial sums from the first pass


# ---------------------------------------------------------------- the reduction to one number

@cuda.jit
def _block_sum_kernel(values, partial):
    """partial[b] = sum of the values[t] that block b's threads visit (float64)

    Every thread first adds up values[t], values[t + stride], ... (stride = the whole grid),
    then the block's SUM_THREADS running sums are combined in shared memory by halving
    (``block_sum``: threads 0..h-1 add in the sums of threads h..2h-1, h = SUM_THREADS/2, ..., 1).
    """
    sums = cuda.shared.array(SUM_THREADS, float64)
    tid = cuda.threadIdx.x
    t = cuda.grid(1)
    acc = float64(0.0)
    for k in range(t, values.shape[0], cuda.gridsize(1)):
        acc += values[k]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        partial[cuda.blockIdx.x] = total


def _device_sum(values):
    """sum(values) of a 1-D float64 device array, reduced on the device; a Python float."""
    blocks = min(SUM_BLOCKS, max(1, (values.shape[0] + SUM_THREADS - 1) // SUM_THREADS))
    partial = cuda.device_array(blocks, dtype=np.float64)
    _block_sum_kernel[blocks, SUM_THREADS](values, partial)
    total = cuda.device_array(1, dtype=np.float64)
    _block_sum_kernel[1, SUM_THREADS](partial, total)
    return float(total.copy_to_host()[0])


def _mean_of_terms(terms_kernel, y, t):
    """1/M sum_i terms[i] for an elementwise loss: ``terms_kernel`` writes one float64 term per
    thread, ``_device_sum`` adds them on the device; a Python float."""
    M = y.shape[0]
    terms = cuda.device_array(M, dtype=np.float64)
    launch(terms_kernel, M, y, t, terms)
    return _device_sum(terms) / M


# ---------------------------------------------------------------- softmax

@cuda.jit
def _max_sumexp_kernel(x, row_max, row_sum):
    """row_max[a, b] = m = max_k x[a, k, b];  row_sum[a, b] = sum_k exp(x[a, k, b] - m)
    one thread per (a, b)"""
    t = cuda.grid(1)
    A, C, B = x.shape
    if t >= A * B:
        return
    a = t // B
    b = t % B
    m = -math.inf
    for c in range(C):
        if x[a, c, b] > m:
            m = x[a, c, b]
    acc = float64(0.0)
    for c in range(C):
        acc += math.exp(x[a, c, b] - m)
    row_max[a, b] = m
    row_sum[a, b] = acc


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
    """(row_max, row_sum), each (A, B) float64 on the device, for x (A, C, B)."""
    A, _, B = x.shape
    row_max = cuda.device_array((A, B), dtype=np.float64)
    row_sum = cuda.device_array((A, B), dtype=np.float64)
    launch(_max_sumexp_kernel, A * B, x, row_max, row_sum)
    return row_max, row_sum


def softmax_forward(x, s):
    """s[a, c, b] = exp(x[a, c, b] - m[a, b]) / sum_k exp(x[a, k, b] - m[a, b]),   m[a, b] = max_k x[a, k, b]

    x, s (A, C, B) as on the CPU.  Two kernels: the statistics of every (a, b) (one thread
    each), then one thread per element.
    """
    row_max, row_sum = _statistics(x)
    launch(_softmax_forward_kernel, s.size, x, row_max, row_sum, s)


@cuda.jit
def _dot_over_c_kernel(u, v, dot):
    """dot[a, b] = sum_k u[a, k, b] * v[a, k, b]        one thread per (a, b)"""
    t = cuda.grid(1)
    A, C, B = u.shape
    if t >= A * B:
        return
    a = t // B
    b = t % B
    acc = float64(0.0)
    for k in range(C):
        acc += u[a, k, b] * v[a, k, b]
    dot[a, b] = acc


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

    Two kernels: the dot product over c of every (a, b), then one thread per element.
    """
    A, _, B = s.shape
    dot = cuda.device_array((A, B), dtype=np.float64)
    launch(_dot_over_c_kernel, A * B, dout, s, dot)
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

    Two kernels: the statistics of every (a, b), then one thread per element.
    """
    row_max, row_sum = _statistics(x)
    launch(_log_softmax_forward_kernel, out.size, x, row_max, row_sum, out)


@cuda.jit
def _sum_over_c_kernel(u, total):
    """total[a, b] = sum_k u[a, k, b]        one thread per (a, b)"""
    t = cuda.grid(1)
    A, C, B = u.shape
    if t >= A * B:
        return
    a = t // B
    b = t % B
    acc = float64(0.0)
    for k in range(C):
        acc += u[a, k, b]
    total[a, b] = acc


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
    dx[a, c, b] = dout[a, c, b] - math.exp(float64(out[a, c, b])) * total[a, b]


def log_softmax_backward(out, dout, dx):
    """dx[a, c, b] = dout[a, c, b] - softmax[a, c, b] * sum_k dout[a, k, b],   softmax = exp(out)

    Two kernels: the sums of dout over c, then one thread per element.
    """
    A, _, B = out.shape
    total = cuda.device_array((A, B), dtype=np.float64)
    launch(_sum_over_c_kernel, A * B, dout, total)
    launch(_log_softmax_backward_kernel, dx.size, out, dout, total, dx)


# ---------------------------------------------------------------- cross-entropy

@cuda.jit
def _cross_entropy_rows_kernel(logits, target, row_max, row_sum, loss_n):
    """m_n = max_c logits[n, c],  Z_n = sum_c exp(logits[n, c] - m_n),
    loss_n[n] = m_n + log Z_n - logits[n, target[n]]   (= -log softmax(logits[n])[target[n]])

    one thread per row n; row_max and row_sum are (N, 1), the (A, B) statistics of logits
    viewed as (N, C, 1)
    """
    n = cuda.grid(1)
    N, C = logits.shape
    if n >= N:
        return
    m = -math.inf
    for c in range(C):
        if logits[n, c] > m:
            m = logits[n, c]
    acc = float64(0.0)
    for c in range(C):
        acc += math.exp(logits[n, c] - m)
    row_max[n, 0] = m
    row_sum[n, 0] = acc
    loss_n[n] = (m - logits[n, target[n]]) + math.log(acc)


def cross_entropy_forward(logits, target, probs):
    """L = 1/N sum_n -log softmax(logits[n])[target[n]]
         = 1/N sum_n (m_n + log sum_c exp(logits[n, c] - m_n) - logits[n, target[n]])

    Also writes probs[n, c] = softmax(logits[n])[c] for the backward pass.  Kernels: the rows'
    statistics and loss terms (one thread per row), probs (softmax's, one thread per element,
    on the (N, C, 1) view), the sum of the terms on the device; returns the mean as a Python float.
    """
    N, C = logits.shape
    row_max = cuda.device_array((N, 1), dtype=np.float64)
    row_sum = cuda.device_array((N, 1), dtype=np.float64)
    loss_n = cuda.device_array(N, dtype=np.float64)
    launch(_cross_entropy_rows_kernel, N, logits, target, row_max, row_sum, loss_n)
    launch(_softmax_forward_kernel, probs.size, logits.reshape(N, C, 1), row_max, row_sum, probs.reshape(N, C, 1))
    return _device_sum(loss_n) / N


@cuda.jit
def _cross_entropy_backward_kernel(probs, target, dout, dlogits):
    """dlogits[n, c] = (probs[n, c] - [c == target[n]]) / N * dout        one thread per (n, c)"""
    t = cuda.grid(1)
    N, C = probs.shape
    if t >= N * C:
        return
    n = t // C
    c = t % C
    onehot = 1.0 if c == target[n] else 0.0
    dlogits[n, c] = (probs[n, c] - onehot) / N * dout


def cross_entropy_backward(probs, target, dout, dlogits):
    """dlogits[n, c] = (probs[n, c] - [c == target[n]]) / N * dout   (one thread per element)"""
    launch(_cross_entropy_backward_kernel, dlogits.size, probs, target, dout, dlogits)


@cuda.jit
def _cross_entropy_soft_rows_kernel(logits, target, row_max, row_sum, loss_n):
    """m_n = max_k logits[n, k],  Z_n = sum_k exp(logits[n, k] - m_n),
    loss_n[n] = -sum_k t[n, k] ((logits[n, k] - m_n) - ln Z_n)   (= -sum_k t[n, k] ln softmax(logits[n])[k])

    one thread per row n; row_max and row_sum are (N, 1), as for the class-index kernel
    """
    n = cuda.grid(1)
    N, K = logits.shape
    if n >= N:
        return
    m = -math.inf
    for k in range(K):
        if logits[n, k] > m:
            m = logits[n, k]
    Z = float64(0.0)
    for k in range(K):
        Z += math.exp(logits[n, k] - m)
    row_max[n, 0] = m
    row_sum[n, 0] = Z
    log_Z = math.log(Z)
    acc = float64(0.0)
    for k in range(K):
        acc += target[n, k] * ((logits[n, k] - m) - log_Z)
    loss_n[n] = -acc


def cross_entropy_soft_forward(logits, target, probs):
    """L = -1/N sum_n sum_k t[n, k] ln softmax(logits[n])[k],   t = target (N, K) (probabilities)

    Also writes probs[n, k] = softmax(logits[n])[k] for the backward pass.  Kernels: the rows'
    statistics and loss terms (one thread per row), probs (softmax's, one thread per element),
    the sum of the terms on the device; returns the mean as a Python float.
    """
    N, K = logits.shape
    row_max = cuda.device_array((N, 1), dtype=np.float64)
    row_sum = cuda.device_array((N, 1), dtype=np.float64)
    loss_n = cuda.device_array(N, dtype=np.float64)
    launch(_cross_entropy_soft_rows_kernel, N, logits, target, row_max, row_sum, loss_n)
    launch(_softmax_forward_kernel, probs.size, logits.reshape(N, K, 1), row_max, row_sum, probs.reshape(N, K, 1))
    return _device_sum(loss_n) / N


@cuda.jit
def _target_row_sums_kernel(target, row_total):
    """row_total[n] = sum_k target[n, k]        one thread per row n (float64)"""
    n = cuda.grid(1)
    N, K = target.shape
    if n >= N:
        return
    acc = float64(0.0)
    for k in range(K):
        acc += target[n, k]
    row_total[n] = acc


@cuda.jit
def _cross_entropy_soft_backward_kernel(probs, target, row_total, dout, dlogits):
    """dlogits[n, k] = (probs[n, k] * T_n - t[n, k]) / N * dout,  T_n = row_total[n]        one thread per (n, k)"""
    t = cuda.grid(1)
    N, K = probs.shape
    if t >= N * K:
        return
    n = t // K
    k = t % K
    dlogits[n, k] = (probs[n, k] * row_total[n] - target[n, k]) / N * dout


def cross_entropy_soft_backward(probs, target, dout, dlogits):
    """dlogits[n, k] = (probs[n, k] * T_n - t[n, k]) / N * dout,  T_n = sum_k t[n, k]   (the row
    sums first, one thread per row; then one thread per element)"""
    N, K = probs.shape
    row_total = cuda.device_array(N, dtype=np.float64)
    launch(_target_row_sums_kernel, N, target, row_total)
    launch(_cross_entropy_soft_backward_kernel, dlogits.size, probs, target, row_total, dout, dlogits)


# ---------------------------------------------------------------- MSE

@cuda.jit
def _mse_terms_kernel(y, t, terms):
    """terms[i] = (y[i] - t[i])^2        one thread per i"""
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    d = float64(y[i]) - t[i]
    terms[i] = d * d


def mse_forward(y, t):
    """L = 1/M sum_i (y[i] - t[i])^2   (the terms per thread, their sum on the device; a Python float)"""
    return _mean_of_terms(_mse_terms_kernel, y, t)


@cuda.jit
def _mse_backward_kernel(y, t, dout, dy):
    """dy[i] = 2 (y[i] - t[i]) / M * dout        one thread per i"""
    i = cuda.grid(1)
    M = y.shape[0]
    if i >= M:
        return
    dy[i] = 2.0 * (y[i] - t[i]) / M * dout


def mse_backward(y, t, dout, dy):
    """dy[i] = 2 (y[i] - t[i]) / M * dout"""
    launch(_mse_backward_kernel, y.shape[0], y, t, dout, dy)


# ---------------------------------------------------------------- MAE

@cuda.jit
def _mae_terms_kernel(y, t, terms):
    """terms[i] = |y[i] - t[i]|        one thread per i"""
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    terms[i] = abs(float64(y[i]) - t[i])


def mae_forward(y, t):
    """L = 1/M sum_i |y[i] - t[i]|   (a Python float)"""
    return _mean_of_terms(_mae_terms_kernel, y, t)


@cuda.jit
def _mae_backward_kernel(y, t, dout, dy):
    """dy[i] = sign(y[i] - t[i]) / M * dout,  sign(0) = 0        one thread per i"""
    i = cuda.grid(1)
    M = y.shape[0]
    if i >= M:
        return
    d = y[i] - t[i]
    if d > 0.0:
        sign = 1.0
    elif d < 0.0:
        sign = -1.0
    else:
        sign = 0.0
    dy[i] = sign / M * dout


def mae_backward(y, t, dout, dy):
    """dy[i] = sign(y[i] - t[i]) / M * dout,   sign(0) = 0 (|.| has a kink there)"""
    launch(_mae_backward_kernel, y.shape[0], y, t, dout, dy)


# ---------------------------------------------------------------- BCE on probabilities

@cuda.jit
def _bce_terms_kernel(p, t, terms):
    """terms[i] = -(t[i] log p[i] + (1 - t[i]) log(1 - p[i])), each log clamped below at -100        one thread per i"""
    i = cuda.grid(1)
    if i >= p.shape[0]:
        return
    pi = float64(p[i])
    log_p = BCE_LOG_CLAMP               # log(0) = -inf would be clamped: skip it (the simulator's
    if pi > 0.0 or pi != pi:            # Python math.log(0) raises); a NaN goes through and propagates
        log_p = math.log(pi)
        if log_p < BCE_LOG_CLAMP:
            log_p = BCE_LOG_CLAMP
    log_1mp = BCE_LOG_CLAMP
    if pi < 1.0 or pi != pi:
        log_1mp = math.log(1.0 - pi)
        if log_1mp < BCE_LOG_CLAMP:
            log_1mp = BCE_LOG_CLAMP
    terms[i] = -(t[i] * log_p + (1.0 - t[i]) * log_1mp)


def bce_forward(p, t):
    """L = 1/M sum_i -(t[i] log p[i] + (1 - t[i]) log(1 - p[i])),  each log clamped at -100

    (log 0 = -inf is clamped to -100, so p = 0 or 1 give a finite loss; a Python float)
    """
    return _mean_of_terms(_bce_terms_kernel, p, t)


@cuda.jit
def _bce_backward_kernel(p, t, dout, dp):
    """dp[i] = (p[i] - t[i]) / max(p[i] (1 - p[i]), 1e-12) / M * dout        one thread per i"""
    i = cuda.grid(1)
    M = p.shape[0]
    if i >= M:
        return
    denom = p[i] * (1.0 - p[i])
    if denom < BCE_GRAD_EPS:
        denom = BCE_GRAD_EPS
    dp[i] = (p[i] - t[i]) / denom / M * dout


def bce_backward(p, t, dout, dp):
    """dp[i] = (p[i] - t[i]) / max(p[i] (1 - p[i]), 1e-12) / M * dout"""
    launch(_bce_backward_kernel, p.shape[0], p, t, dout, dp)


# ---------------------------------------------------------------- BCE on logits

@cuda.jit
def _bce_with_logits_terms_kernel(z, t, terms):
    """terms[i] = max(z[i], 0) - z[i] t[i] + log(1 + exp(-|z[i]|))        one thread per i"""
    i = cuda.grid(1)
    if i >= z.shape[0]:
        return
    zi = float64(z[i])
    terms[i] = max(zi, 0.0) - zi * t[i] + math.log1p(math.exp(-abs(zi)))


def bce_with_logits_forward(z, t):
    """L = 1/M sum_i max(z[i], 0) - z[i] t[i] + log(1 + exp(-|z[i]|))   (a Python float)"""
    return _mean_of_terms(_bce_with_logits_terms_kernel, z, t)


@cuda.jit
def _bce_with_logits_backward_kernel(z, t, dout, dz):
    """dz[i] = (sigmoid(z[i]) - t[i]) / M * dout        one thread per i"""
    i = cuda.grid(1)
    M = z.shape[0]
    if i >= M:
        return
    zi = float64(z[i])
    if zi >= 0:
        sig = 1.0 / (1.0 + math.exp(-zi))
    else:
        e = math.exp(zi)
        sig = e / (1.0 + e)
    dz[i] = (sig - t[i]) / M * dout


def bce_with_logits_backward(z, t, dout, dz):
    """dz[i] = (sigmoid(z[i]) - t[i]) / M * dout   (sigmoid in its overflow-free form)"""
    launch(_bce_with_logits_backward_kernel, z.shape[0], z, t, dout, dz)
