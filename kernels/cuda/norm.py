"""Normalization on the GPU: the twin of nbconv.kernels.norm.

Every kernel works on a 3-D view (A, C, B) of the data and treats, for each middle index c,
the m = A * B values x[a, c, b] as one group (see the CPU module for which view each op uses):

    mean    = (1 / m) sum x,   var = (1 / m) sum (x - mean)^2,   inv_std = 1 / sqrt(var + eps)
    xhat    = (x - mean) * inv_std
    dx      = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

Mapping.  Statistics and parameter gradients are per-group reductions: one thread per group c
loops over its (a, b) in float64 (``moments``, ``_channel_sums_kernel``), no atomics.  Then
every element is one thread (``normalize_forward``, the dx kernels, the affine step), reading
its group's sums from small float64 scratch arrays that the launcher allocates.  LRN is one
thread per element, the loop over the channel window inside the thread.
The statistics (mean, var, inv_std) are float64 arrays, as on the CPU.

The ops' forwards and backwards (``standardize``, ``layer_norm_forward``, ``group_norm_forward``,
``batch_norm_forward`` and their backwards: what nbconv.functional.dispatch.cuda_table names)
chain these launchers on the views of the CPU module's table, as its naive kernels do.
"""

import math

from numba import cuda, float64
import numpy as np

from ._launch import launch


# --- statistics and normalization --------------------------------------------------------------

@cuda.jit
def _moments_kernel(x, mean, var):
    """mean[c] = (1 / m) sum_{a, b} x[a, c, b];  var[c] = (1 / m) sum_{a, b} (x[a, c, b] - mean[c])^2

    one thread per group c.  The mean is summed over x - x[0, c, 0] (shifted data) and the
    variance in a second pass over x - mean, as on the CPU.
    """
    c = cuda.grid(1)
    A, C, B = x.shape
    if c >= C:
        return
    m = A * B
    shift = x[0, c, 0]
    acc = float64(0.0)
    for a in range(A):
        for b in range(B):
            acc += x[a, c, b] - shift
    mu = shift + acc / m
    acc = float64(0.0)
    for a in range(A):
        for b in range(B):
            d = x[a, c, b] - mu
            acc += d * d
    mean[c] = mu
    var[c] = acc / m


def moments(x, mean, var):
    """Per middle index c of x (A, C, B), over its m = A * B values:

        mean[c] = (1 / m) sum_{a, b} x[a, c, b]
        var[c]  = (1 / m) sum_{a, b} (x[a, c, b] - mean[c])^2        (biased)

    (device arrays; one thread per c, the two passes inside it)
    """
    launch(_moments_kernel, mean.shape[0], x, mean, var)


@cuda.jit
def _inv_std_kernel(var, eps, inv_std):
    """inv_std[c] = 1 / sqrt(var[c] + eps)        one thread per c"""
    c = cuda.grid(1)
    if c >= inv_std.shape[0]:
        return
    inv_std[c] = 1.0 / math.sqrt(float64(var[c]) + eps)


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
    launch(_inv_std_kernel, inv_std.shape[0], var, eps, inv_std)
    launch(_normalize_forward_kernel, xhat.size, x, mean, inv_std, xhat)


def standardize(x, eps, xhat, inv_std):
    """moments, then normalize_forward: xhat = (x - mean[c]) * inv_std[c] with the statistics of
    each middle index c of x (A, C, B) (float64 device scratch for mean and var)."""
    C = x.shape[1]
    mean, var = cuda.device_array(C, np.float64), cuda.device_array(C, np.float64)
    moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)


@cuda.jit
def _running_average_update_kernel(running_mean, running_var, mean, var, momentum, unbiased):
    """running_mean[c] = (1 - momentum) running_mean[c] + momentum mean[c]
    running_var[c]  = (1 - momentum) running_var[c]  + momentum unbiased var[c]        one thread per c"""
    c = cuda.grid(1)
    if c >= running_mean.shape[0]:
        return
    running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c]
    running_var[c] = (1.0 - momentum) * running_var[c] + momentum * unbiased * var[c]


def running_average_update(running_mean, running_var, mean, var, momentum, unbiased):
    """The exponential averages kept for inference, updated in place (one thread per c):

        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c]  = (1 - momentum) * running_var[c]  + momentum * unbiased * var[c]
    """
    launch(_running_average_update_kernel, running_mean.shape[0],
           running_mean, running_var, mean, var, momentum, unbiased)


@cuda.jit
def _channel_sums_kernel(dy, xhat, sum_dy, sum_dy_xhat):
    """sum_dy[c] = sum_{a, b} dy[a, c, b];  sum_dy_xhat[c] = sum_{a, b} dy[a, c, b] * xhat[a, c, b]

    one thread per group c (a per-element reduction, float64 accumulation)
    """
    c = cuda.grid(1)
    A, C, B = dy.shape
    if c >= C:
        return
    acc_dy = float64(0.0)
    acc_dy_xhat = float64(0.0)
    for a in range(A):
        for b in range(B):
            acc_dy += dy[a, c, b]
            acc_dy_xhat += dy[a, c, b] * xhat[a, c, b]
    sum_dy[c] = acc_dy
    sum_dy_xhat[c] = acc_dy_xhat


def _channel_sums(dy, xhat):
    """(sum_dy, sum_dy_xhat), two float64 device arrays (C,): the per-group sums of dy and dy * xhat."""
    C = dy.shape[1]
    sum_dy = cuda.device_array(C, dtype=np.float64)
    sum_dy_xhat = cuda.device_array(C, dtype=np.float64)
    launch(_channel_sums_kernel, C, dy, xhat, sum_dy, sum_dy_xhat)
    return sum_dy, sum_dy_xhat


@cuda.jit
def _copy_kernel(src, dst):
    """dst[c] = src[c] (converted to dst's dtype)        one thread per c"""
    c = cuda.grid(1)
    if c < dst.shape[0]:
        dst[c] = src[c]


@cuda.jit
def _normalize_backward_kernel(dxhat, xhat, inv_std, sum_dxhat, sum_dxhat_xhat, dx):
    """dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - sum_dxhat[c] / m - xhat[a, c, b] * sum_dxhat_xhat[c] / m)

    one thread per (a, c, b), m = A * B
    """
    t = cuda.grid(1)
    A, C, B = dxhat.shape
    if t >= A * C * B:
        return
    a = t // (C * B)
    c = t // B % C
    b = t % B
    m = A * B
    dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - sum_dxhat[c] / m - xhat[a, c, b] * (sum_dxhat_xhat[c] / m))


def normalize_backward(dxhat, xhat, inv_std, dx):
    """The gradient through xhat = (x - mean) * inv_std, mean and var included (m = A * B):

        dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - (1/m) sum dxhat - xhat[a, c, b] * (1/m) sum dxhat * xhat)

    the sums over the group's (a, b).  Two kernels: the sums (one thread per c), then one
    thread per element of dx.
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

    Two kernels: the sums (one thread per c, written straight into dbeta and dgamma), then
    one thread per element of dxhat.
    """
    launch(_channel_sums_kernel, dgamma.shape[0], dout, xhat, dbeta, dgamma)
    launch(_channel_affine_backward_dxhat_kernel, dxhat.size, dout, gamma, dxhat)


# --- the ops: the steps on the views of the CPU module's table ------------------------------------

def layer_norm_forward(x, gamma, beta, eps, xhat, inv_std, out):
    """x (R, M): standardize each row (view (1, R, M)), then out = gamma[m] * xhat + beta[m]
    (view (R, M, 1))."""
    R, M = x.shape
    standardize(x.reshape(1, R, M), eps, xhat.reshape(1, R, M), inv_std)
    channel_affine_forward(xhat.reshape(R, M, 1), gamma, beta, out.reshape(R, M, 1))


def layer_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """The affine step's backward (view (R, M, 1)), then normalize_backward per row (view (1, R, M))."""
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
    """x (N, C, S): the batch moments in training (mean, var given in inference), normalize,
    then the affine step per channel."""
    if training:
        moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)
    channel_affine_forward(xhat, gamma, beta, out)


# --- batch norm's fused backward -----------------------------------------------------------------

@cuda.jit
def _batch_norm_backward_kernel(dout, xhat, gamma, inv_std, sum_dout, sum_dout_xhat, training, dx):
    """training:  dx[n, c, s] = gamma[c] * inv_std[c] * (dout - sum_dout[c] / m - xhat * sum_dout_xhat[c] / m)
    inference: dx[n, c, s] = gamma[c] * inv_std[c] * dout

    one thread per (n, c, s), m = N * S
    """
    t = cuda.grid(1)
    N, C, S = dout.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = t // S % C
    s = t % S
    m = N * S
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

    (the derivation is in the CPU kernel's docstring).  Kernels: the two sums per channel
    (one thread per c, float64 scratch), copied into dbeta and dgamma in their dtype, then one
    thread per element of dx.
    """
    sum_dout, sum_dout_xhat = _channel_sums(dout, xhat)
    launch(_copy_kernel, dbeta.shape[0], sum_dout, dbeta)
    launch(_copy_kernel, dgamma.shape[0], sum_dout_xhat, dgamma)
    launch(_batch_norm_backward_kernel, dx.size, dout, xhat, gamma, inv_std, sum_dout, sum_dout_xhat, training, dx)


# --- local response normalization across channels ------------------------------------------------

@cuda.jit
def _local_response_norm_forward_kernel(x, size, alpha, beta, k, d, out):
    """d[n, c, s]   = k + alpha / size * sum_{c'} x[n, c', s]^2,   c' = c - size//2 ... c + (size-1)//2 in [0, C)
    out[n, c, s] = x[n, c, s] * d[n, c, s]^(-beta)

    one thread per (n, c, s), the loop over the channel window inside
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
    acc = float64(0.0)
    for cp in range(lo, hi + 1):          # cp is c' of the formula
        acc += x[n, cp, s] * x[n, cp, s]
    dc = k + alpha / size * acc
    d[n, c, s] = dc
    out[n, c, s] = x[n, c, s] * dc ** (-beta)


def local_response_norm_forward(x, size, alpha, beta, k, d, out):
    """x, d, out (N, C, S).  For every (n, c, s), with the window c' = c - size // 2 ... c + (size - 1) // 2:

        d[n, c, s]   = k + alpha / size * sum_{c'} x[n, c', s]^2
        out[n, c, s] = x[n, c, s] * d[n, c, s]^(-beta)

    (one thread per element)
    """
    launch(_local_response_norm_forward_kernel, out.size, x, size, alpha, beta, k, d, out)


@cuda.jit
def _local_response_norm_backward_kernel(dout, x, d, size, alpha, beta, dx):
    """dx[n, c', s] = dout[n, c', s] * d[n, c', s]^(-beta)
                   - 2 alpha beta / size * x[n, c', s] * sum_c dout[n, c, s] * x[n, c, s] * d[n, c, s]^(-beta - 1)

    over c = c' - (size - 1)//2 ... c' + size//2 in [0, C).  One thread per (n, c', s).
    """
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    cp = t // S % C                       # cp is c' of the formula
    s = t % S
    lo = max(0, cp - (size - 1) // 2)
    hi = min(C - 1, cp + size // 2)
    acc = float64(0.0)
    for c in range(lo, hi + 1):
        acc += dout[n, c, s] * x[n, c, s] * float64(d[n, c, s]) ** (-beta - 1.0)
    dx[n, cp, s] = (dout[n, cp, s] * float64(d[n, cp, s]) ** (-beta)
                    - 2.0 * alpha * beta / size * x[n, cp, s] * acc)


def local_response_norm_backward(dout, x, d, size, alpha, beta, dx):
    """dx[n, c', s] = dout[n, c', s] * d[n, c', s]^(-beta)
                   - 2 alpha beta / size * x[n, c', s] * sum_c dout[n, c, s] * x[n, c, s] * d[n, c, s]^(-beta - 1)

    the sum over the channels c whose window holds c' (one thread per element of dx).
    """
    launch(_local_response_norm_backward_kernel, dx.size, dout, x, d, size, alpha, beta, dx)
