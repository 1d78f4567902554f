"""Normalization on the GPU: the twin of nbconv.kernels.norm.

Every kernel works on a 3-D view (A, C, B) of the data and treats, for each middle index c,
the m = A * B values x[a, c, b] as one group (see the CPU module for which view each op uses):

    mean    = (1 / m) sum x,   var = (1 / m) sum (x - mean)^2,   inv_std = 1 / sqrt(var + eps)
    xhat    = (x - mean) * inv_std
    dx      = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

Mapping.  The sums over a group are reductions: one block of THREADS threads per group c (a
channel of batch norm, a row of layer norm, a (sample, group) of group and instance norm, a
filter of weight standardization; for the affine step's dgamma and dbeta, a channel or a
column).  Thread tid adds up the terms k = tid, tid + THREADS, ... of its group in a running
sum (a block-stride loop, k = a * B + b), then ``block_sum`` (kernels/cuda/reduce.py) combines
the block's THREADS running sums in a tree in shared memory; thread 0 writes the result.  The
order of every addition is fixed, so the results do not depend on the timing of the threads
(deterministic), and no atomics are used.  Then every element is one thread
(``normalize_forward``, the dx kernels, the affine step), reading its group's statistics or
sums from small arrays of C values.  LRN is one thread per element, the loop over the channel
window inside the thread.

Arithmetic in the data's dtype.  float32 data computes in float32 (GPUs of the T4 class run
float64 at 1/32 of the float32 rate): the statistics (mean, var, inv_std) and the scratch sums
are arrays of x's dtype, the running sums start at ``x.dtype.type(0)``, the launchers pass eps,
momentum, the Bessel factor, alpha, beta and k in x's dtype, integer counts are converted with
``x.dtype.type(m)`` before they divide, and sqrt and the power of LRN are the float32 functions
(sqrtf, powf).  float64 data computes in float64 throughout.  (The kernels compile for any
dtype of the statistics arrays; float32 arithmetic needs them in x's dtype, which is what
nbconv.functional passes on the device.  The CPU kernels accumulate in float64 and keep float64
statistics; like cuDNN, the GPU keeps float32 statistics of float32 data.)

Numerics of the statistics (two passes, as the CPU's ``moments``): the mean sums the shifted
values x - x[0, c, 0], so a constant group gets its value back exactly and var = 0; the
variance sums (x - mean)^2 around that mean in a second pass (no cancellation, unlike
E[x^2] - mean^2).  Each running sum holds about m / THREADS terms and the tree adds log2(THREADS)
= 7 levels, so a float32 sum is off by at most about (m / THREADS + 7) float32 roundings of the
sum of the terms' sizes, against m roundings for one serial float32 sum.  The float32 mean is
rounded to float32 when stored; xhat = (x - mean) * inv_std then carries that rounding,
|mean| * 2^-24 * inv_std at most, which is visible only when |mean| is many times the standard
deviation (the data themselves are rounded at that scale).  So a float32 result can differ from
the CPU kernel's (float64 sums, rounded once) by float32 rounding; the float64 results agree to
a few float64 roundings.

The ops' forwards and backwards (``standardize``, ``layer_norm_forward``, ``group_norm_forward``,
``batch_norm_forward`` and their backwards: what nbconv.functional.dispatch.cuda_table names)
chain these launchers on the views of the CPU module's table, as its naive kernels do.
"""

import math

from numba import cuda

from ._launch import THREADS, launch
from .reduce import block_sum


def _launch_per_group(kernel, groups, *args):
    """kernel[groups, THREADS](*args): one block of THREADS threads per group (nothing for none)."""
    if groups > 0:
        kernel[groups, THREADS](*args)


# --- statistics and normalization --------------------------------------------------------------

@cuda.jit
def _moments_kernel(x, mean, var):
    """mean[c] = (1 / m) sum_{a, b} x[a, c, b];  var[c] = (1 / m) sum_{a, b} (x[a, c, b] - mean[c])^2

    one block per group c, m = A * B.  Thread tid sums the terms k = tid, tid + THREADS, ...
    (k = a * B + b) and block_sum adds the block's running sums, twice: the mean over the
    shifted data x - x[0, c, 0], then the variance over x - mean (as the CPU kernel).  Each sum
    has its own shared array of THREADS values.  In x's dtype.  (nbconv.functional never asks
    for the moments of an empty group, m = 0; they would be 0 / 0.)
    """
    c = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    A, C, B = x.shape
    m = A * B
    zero = x.dtype.type(0)
    sums_mean = cuda.shared.array(THREADS, x.dtype)
    sums_var = cuda.shared.array(THREADS, x.dtype)
    shift = x[0, c, 0] if m > 0 else zero
    acc = zero
    for k in range(tid, m, THREADS):
        a = k // B
        b = k % B
        acc += x[a, c, b] - shift
    mu = shift + block_sum(sums_mean, tid, acc) / x.dtype.type(m)
    acc = zero
    for k in range(tid, m, THREADS):
        a = k // B
        b = k % B
        d = x[a, c, b] - mu
        acc += d * d
    sigma2 = block_sum(sums_var, tid, acc) / x.dtype.type(m)
    if tid == 0:
        mean[c] = mu
        var[c] = sigma2


def moments(x, mean, var):
    """Per middle index c of x (A, C, B), over its m = A * B values:

        mean[c] = (1 / m) sum_{a, b} x[a, c, b]
        var[c]  = (1 / m) sum_{a, b} (x[a, c, b] - mean[c])^2        (biased)

    (device arrays; mean and var of x's dtype.  One block per c: two block-stride sums, each
    added up in a tree.)
    """
    _launch_per_group(_moments_kernel, mean.shape[0], x, mean, var)


@cuda.jit
def _inv_std_kernel(var, eps, inv_std):
    """inv_std[c] = 1 / sqrt(var[c] + eps)        one thread per c, in inv_std's dtype"""
    c = cuda.grid(1)
    if c >= inv_std.shape[0]:
        return
    one = inv_std.dtype.type(1)         # a bare 1.0 is float64 (1/32 speed on T4)
    inv_std[c] = one / math.sqrt(var[c] + eps)


@cuda.jit
def _normalize_forward_kernel(x, mean, inv_std, xhat):
    """xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c]        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = x.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = t // B % C
    b = t % B
    xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c]


def normalize_forward(x, mean, var, eps, xhat, inv_std):
    """inv_std[c] = 1 / sqrt(var[c] + eps);  xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c]

    (device arrays.)  Two kernels: one thread per c for inv_std, then one per element of xhat.
    """
    launch(_inv_std_kernel, inv_std.shape[0], var, x.dtype.type(eps), inv_std)    # eps in x's dtype
    launch(_normalize_forward_kernel, xhat.size, x, mean, inv_std, xhat)


def standardize(x, eps, xhat, inv_std):
    """moments, then normalize_forward: xhat = (x - mean[c]) * inv_std[c] with the statistics of
    each middle index c of x (A, C, B) (device scratch of x's dtype for mean and var)."""
    C = x.shape[1]
    mean, var = cuda.device_array(C, x.dtype), cuda.device_array(C, x.dtype)
    moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)


@cuda.jit
def _running_average_update_kernel(running_mean, running_var, mean, var, momentum, unbiased):
    """running_mean[c] = (1 - momentum) running_mean[c] + momentum mean[c]
    running_var[c]  = (1 - momentum) running_var[c]  + momentum unbiased var[c]        one thread per c"""
    c = cuda.grid(1)
    if c >= running_mean.shape[0]:
        return
    one = running_mean.dtype.type(1)    # a bare 1.0 is float64 (1/32 speed on T4)
    running_mean[c] = (one - momentum) * running_mean[c] + momentum * mean[c]
    running_var[c] = (one - momentum) * running_var[c] + momentum * unbiased * var[c]


def running_average_update(running_mean, running_var, mean, var, momentum, unbiased):
    """The exponential averages kept for inference, updated in place (one thread per c):

        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c]  = (1 - momentum) * running_var[c]  + momentum * unbiased * var[c]

    (momentum and unbiased = m / (m - 1), or 1, are passed in the running statistics' dtype.)
    """
    dtype = running_mean.dtype.type
    launch(_running_average_update_kernel, running_mean.shape[0],
           running_mean, running_var, mean, var, dtype(momentum), dtype(unbiased))


@cuda.jit
def _channel_sums_kernel(dy, xhat, sum_dy, sum_dy_xhat):
    """sum_dy[c] = sum_{a, b} dy[a, c, b];  sum_dy_xhat[c] = sum_{a, b} dy[a, c, b] * xhat[a, c, b]

    one block per group c: thread tid keeps two running sums over the terms k = tid,
    tid + THREADS, ... (k = a * B + b), then block_sum adds each up in a tree (a shared
    array per sum).  In dy's dtype; a group of no values sums to 0.
    """
    c = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    A, C, B = dy.shape
    sums_dy = cuda.shared.array(THREADS, dy.dtype)
    sums_dy_xhat = cuda.shared.array(THREADS, dy.dtype)
    acc_dy = dy.dtype.type(0)
    acc_dy_xhat = dy.dtype.type(0)
    for k in range(tid, A * B, THREADS):
        a = k // B
        b = k % B
        acc_dy += dy[a, c, b]
        acc_dy_xhat += dy[a, c, b] * xhat[a, c, b]
    total_dy = block_sum(sums_dy, tid, acc_dy)
    total_dy_xhat = block_sum(sums_dy_xhat, tid, acc_dy_xhat)
    if tid == 0:
        sum_dy[c] = total_dy
        sum_dy_xhat[c] = total_dy_xhat


def _channel_sums(dy, xhat):
    """(sum_dy, sum_dy_xhat), two device arrays (C,) of dy's dtype: the per-group sums of dy and
    dy * xhat (one block per group)."""
    C = dy.shape[1]
    sum_dy = cuda.device_array(C, dtype=dy.dtype)
    sum_dy_xhat = cuda.device_array(C, dtype=dy.dtype)
    _launch_per_group(_channel_sums_kernel, C, dy, xhat, sum_dy, sum_dy_xhat)
    return sum_dy, sum_dy_xhat


@cuda.jit
def _normalize_backward_kernel(dxhat, xhat, inv_std, sum_dxhat, sum_dxhat_xhat, dx):
    """dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - sum_dxhat[c] / m - xhat[a, c, b] * sum_dxhat_xhat[c] / m)

    one thread per (a, c, b), m = A * B (as a number of dxhat's dtype)
    """
    t = cuda.grid(1)
    A, C, B = dxhat.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = t // B % C
    b = t % B
    m = dxhat.dtype.type(A * B)         # an int would make the division float64
    dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - sum_dxhat[c] / m - xhat[a, c, b] * (sum_dxhat_xhat[c] / m))


def normalize_backward(dxhat, xhat, inv_std, dx):
    """The gradient through xhat = (x - mean) * inv_std, mean and var included (m = A * B):

        dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - (1/m) sum dxhat - xhat[a, c, b] * (1/m) sum dxhat * xhat)

    the sums over the group's (a, b).  Two kernels: the sums (one block per c, a tree each),
    then one thread per element of dx.
    """
    sum_dxhat, sum_dxhat_xhat = _channel_sums(dxhat, xhat)
    launch(_normalize_backward_kernel, dx.size, dxhat, xhat, inv_std, sum_dxhat, sum_dxhat_xhat, dx)


# --- the affine step: out = gamma * xhat + beta ------------------------------------------------

@cuda.jit
def _channel_affine_forward_kernel(xhat, gamma, beta, out):
    """out[a, c, b] = gamma[c] * xhat[a, c, b] + beta[c]        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = xhat.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = t // B % C
    b = t % B
    out[a, c, b] = gamma[c] * xhat[a, c, b] + beta[c]


def channel_affine_forward(xhat, gamma, beta, out):
    """out[a, c, b] = gamma[c] * xhat[a, c, b] + beta[c]   (one thread per element)"""
    launch(_channel_affine_forward_kernel, out.size, xhat, gamma, beta, out)


@cuda.jit
def _channel_affine_backward_dxhat_kernel(dout, gamma, dxhat):
    """dxhat[a, c, b] = gamma[c] * dout[a, c, b]        one thread per (a, c, b)"""
    t = cuda.grid(1)
    A, C, B = dout.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = t // B % C
    b = t % B
    dxhat[a, c, b] = gamma[c] * dout[a, c, b]


def channel_affine_backward(dout, xhat, gamma, dxhat, dgamma, dbeta):
    """dbeta[c]  = sum_{a, b} dout[a, c, b]
    dgamma[c] = sum_{a, b} dout[a, c, b] * xhat[a, c, b]
    dxhat[a, c, b] = gamma[c] * dout[a, c, b]

    Two kernels: the sums (one block per c, a tree each, written straight into dbeta and
    dgamma), then one thread per element of dxhat.
    """
    _launch_per_group(_channel_sums_kernel, dgamma.shape[0], dout, xhat, dbeta, dgamma)
    launch(_channel_affine_backward_dxhat_kernel, dxhat.size, dout, gamma, dxhat)


# --- the ops: the steps on the views of the CPU module's table ------------------------------------

def layer_norm_forward(x, gamma, beta, eps, xhat, inv_std, out):
    """x (R, M): standardize each row (view (1, R, M)), then out = gamma[m] * xhat + beta[m]
    (view (R, M, 1))."""
    R, M = x.shape
    standardize(x.reshape(1, R, M), eps, xhat.reshape(1, R, M), inv_std)
    channel_affine_forward(xhat.reshape(R, M, 1), gamma, beta, out.reshape(R, M, 1))


def layer_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """The affine step's backward (view (R, M, 1): one block per column m sums over the rows,
    its threads reading M values apart, which a GPU cannot coalesce as it does the rows of the
    other sums), then normalize_backward per row (view (1, R, M))."""
    R, M = dout.shape
    dxhat = cuda.device_array(dout.shape, dout.dtype)
    channel_affine_backward(dout.reshape(R, M, 1), xhat.reshape(R, M, 1), gamma, dxhat.reshape(R, M, 1),
                            dgamma, dbeta)
    normalize_backward(dxhat.reshape(1, R, M), xhat.reshape(1, R, M), inv_std, dx.reshape(1, R, M))


def group_norm_forward(x, gamma, beta, eps, xhat, inv_std, out):
    """x (N, G, K, S): standardize each (n, g) (view (1, N * G, K * S)), then the affine step per
    channel c = g * K + k (view (N, G * K, S)).  Instance norm is K = 1."""
    N, G, K, S = x.shape
    stats, affine = (1, N * G, K * S), (N, G * K, S)
    standardize(x.reshape(stats), eps, xhat.reshape(stats), inv_std)
    channel_affine_forward(xhat.reshape(affine), gamma, beta, out.reshape(affine))


def group_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """The affine step's backward per channel, then normalize_backward per (n, g)."""
    N, G, K, S = dout.shape
    stats, affine = (1, N * G, K * S), (N, G * K, S)
    dxhat = cuda.device_array(dout.shape, dout.dtype)
    channel_affine_backward(dout.reshape(affine), xhat.reshape(affine), gamma, dxhat.reshape(affine), dgamma, dbeta)
    normalize_backward(dxhat.reshape(stats), xhat.reshape(stats), inv_std, dx.reshape(stats))


def batch_norm_forward(x, gamma, beta, eps, training, mean, var, xhat, inv_std, out):
    """x (N, C, S): the batch moments in training (one block per channel; mean, var given in
    inference), normalize, then the affine step per channel."""
    if training:
        moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)
    channel_affine_forward(xhat, gamma, beta, out)


# --- batch norm's fused backward -----------------------------------------------------------------

@cuda.jit
def _batch_norm_backward_kernel(dout, xhat, gamma, inv_std, sum_dout, sum_dout_xhat, training, dx):
    """training:  dx[n, c, s] = gamma[c] * inv_std[c] * (dout - sum_dout[c] / m - xhat * sum_dout_xhat[c] / m)
    inference: dx[n, c, s] = gamma[c] * inv_std[c] * dout

    one thread per (n, c, s), m = N * S (as a number of dout's dtype)
    """
    t = cuda.grid(1)
    N, C, S = dout.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = t // S % C
    s = t % S
    m = dout.dtype.type(N * S)          # an int would make the division float64
    if training:
        dx[n, c, s] = gamma[c] * inv_std[c] * (dout[n, c, s] - sum_dout[c] / m
                                               - xhat[n, c, s] * (sum_dout_xhat[c] / m))
    else:
        dx[n, c, s] = gamma[c] * inv_std[c] * dout[n, c, s]


def batch_norm_backward(dout, xhat, gamma, inv_std, training, dx, dgamma, dbeta):
    """Batch norm's whole backward, x (N, C, S), m = N * S values per channel:

        dbeta[c]  = sum_{n, s} dout[n, c, s]
        dgamma[c] = sum_{n, s} dout[n, c, s] * xhat[n, c, s]
        training:  dx[n, c, s] = gamma[c] * inv_std[c] / m * (m * dout - dbeta[c] - xhat * dgamma[c])
        inference: dx[n, c, s] = gamma[c] * inv_std[c] * dout

    (the derivation is in the CPU kernel's docstring).  Two kernels: the two sums per channel
    (one block per c, a tree each), written straight into dbeta and dgamma, then one thread
    per element of dx, which reads them back as the sums.
    """
    _launch_per_group(_channel_sums_kernel, dgamma.shape[0], dout, xhat, dbeta, dgamma)
    launch(_batch_norm_backward_kernel, dx.size, dout, xhat, gamma, inv_std, dbeta, dgamma, training, dx)


# --- local response normalization across channels ------------------------------------------------

@cuda.jit
def _local_response_norm_forward_kernel(x, size, alpha, beta, k, d, out):
    """d[n, c, s]   = k + alpha / size * sum_{c'} x[n, c', s]^2,   c' = c - size//2 ... c + (size-1)//2 in [0, C)
    out[n, c, s] = x[n, c, s] * d[n, c, s]^(-beta)

    one thread per (n, c, s), the loop over the channel window inside; in x's dtype
    """
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = t // S % C
    s = t % S
    lo = max(0, c - size // 2)
    hi = min(C - 1, c + (size - 1) // 2)
    acc = x.dtype.type(0)
    for cp in range(lo, hi + 1):          # cp is c' of the formula
        acc += x[n, cp, s] * x[n, cp, s]
    dc = k + alpha / x.dtype.type(size) * acc
    d[n, c, s] = dc
    out[n, c, s] = x[n, c, s] * dc ** (-beta)


def local_response_norm_forward(x, size, alpha, beta, k, d, out):
    """x, d, out (N, C, S).  For every (n, c, s), with the window c' = c - size // 2 ... c + (size - 1) // 2:

        d[n, c, s]   = k + alpha / size * sum_{c'} x[n, c', s]^2
        out[n, c, s] = x[n, c, s] * d[n, c, s]^(-beta)

    (one thread per element; alpha, beta and k passed in x's dtype)
    """
    dtype = x.dtype.type
    launch(_local_response_norm_forward_kernel, out.size, x, size, dtype(alpha), dtype(beta), dtype(k), d, out)


@cuda.jit
def _local_response_norm_backward_kernel(dout, x, d, size, alpha, beta, dx):
    """dx[n, c', s] = dout[n, c', s] * d[n, c', s]^(-beta)
                   - 2 alpha beta / size * x[n, c', s] * sum_c dout[n, c, s] * x[n, c, s] * d[n, c, s]^(-beta - 1)

    over c = c' - (size - 1)//2 ... c' + size//2 in [0, C).  One thread per (n, c', s); in x's dtype.
    """
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    cp = t // S % C                       # cp is c' of the formula
    s = t % S
    one = x.dtype.type(1)
    two = x.dtype.type(2)
    lo = max(0, cp - (size - 1) // 2)
    hi = min(C - 1, cp + size // 2)
    acc = x.dtype.type(0)
    for c in range(lo, hi + 1):
        acc += dout[n, c, s] * x[n, c, s] * d[n, c, s] ** (-beta - one)
    dx[n, cp, s] = (dout[n, cp, s] * d[n, cp, s] ** (-beta)
                    - two * alpha * beta / x.dtype.type(size) * x[n, cp, s] * acc)


def local_response_norm_backward(dout, x, d, size, alpha, beta, dx):
    """dx[n, c', s] = dout[n, c', s] * d[n, c', s]^(-beta)
                   - 2 alpha beta / size * x[n, c', s] * sum_c dout[n, c, s] * x[n, c, s] * d[n, c, s]^(-beta - 1)

    the sum over the channels c whose window holds c' (one thread per element of dx; alpha and
    beta passed in x's dtype).
    """
    dtype = x.dtype.type
    launch(_local_response_norm_backward_kernel, dx.size, dout, x, d, size, dtype(alpha), dtype(beta), dx)
