"""Normalization: batch, layer, instance and group norm, weight standardization, LRN.

One idea covers the first five: split the values into groups, and in every group

    mean    = (1 / m) sum x                       (m values in the group)
    var     = (1 / m) sum (x - mean)^2            (biased)
    inv_std = 1 / sqrt(var + eps)                 (eps inside the root: var = 0 is safe)
    xhat    = (x - mean) * inv_std

then (except for weight standardization) scale and shift every value with a learned
gamma and beta.  The ops differ only in which values form a group, so every kernel
here works on one 3-D view ``(A, C, B)`` of the data and normalizes, for each middle
index c, the A * B values x[a, c, b]:

    op                  view (A, C, B) of the statistics      affine view (A, C, B)
    batch_norm          (N, C, S)        per channel           (N, C, S), gamma (C,)
    layer_norm          (1, R, M)        per row               (R, M, 1), gamma (M,)
    instance_norm       (1, N * C, S)    per (sample, channel) (N, C, S), gamma (C,)
    group_norm          (1, N * G, C / G * S)                  (N, C, S), gamma (C,)
    weight_standardize  (1, F, C * KH * KW)  per filter        (no affine)

with S the product of the spatial axes (H * W, or L), R the product of the leading
axes and M of the normalized ones (nbconv.functional builds these reshapes, which
cost nothing on C-contiguous arrays).  Gradients, per group of m values with
upstream gradient dxhat (the chain rule through mean and var, derived step by step in
batch_norm_backward's docstring; normalize_backward is that derivation with gamma = 1):

    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

Local response normalization (AlexNet's, as Caffe and PyTorch define it) divides
each value by a power of the sum of squares over neighbouring channels; its kernels
work on the (N, C, S) view.
"""

import math

from numba import njit, prange


# --- statistics and normalization --------------------------------------------------------------

@njit(cache=True)
def moments(x, mean, var):
    """Per middle index c of x (A, C, B), over its m = A * B values x[a, c, b]:

        mean[c] = (1 / m) sum_{a, b} x[a, c, b]
        var[c]  = (1 / m) sum_{a, b} (x[a, c, b] - mean[c])^2        (biased)

    The mean is summed over x - x[0, c, 0] (shifted data) and the variance in a
    second pass over x - mean: a constant group gets its value back exactly as the
    mean (so x - mean is exactly 0), and a large common offset costs no precision.
    """
    A, C, B = x.shape
    m = A * B
    for c in range(C):
        shift = x[0, c, 0]
        acc = 0.0
        for a in range(A):
            for b in range(B):
                acc += x[a, c, b] - shift
        mean[c] = shift + acc / m
        acc = 0.0
        for a in range(A):
            for b in range(B):
                d = x[a, c, b] - mean[c]
                acc += d * d
        var[c] = acc / m


@njit(cache=True)
def normalize_forward(x, mean, var, eps, xhat, inv_std):
    """inv_std[c] = 1 / sqrt(var[c] + eps);  xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c]

    mean and var are the batch statistics (from ``moments``) or, for batch norm at
    inference, the running ones.
    """
    A, C, B = x.shape
    for c in range(C):
        inv_std[c] = 1.0 / math.sqrt(var[c] + eps)
        for a in range(A):
            for b in range(B):
                xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c]


@njit(cache=True)
def running_average_update(running_mean, running_var, mean, var, momentum, unbiased):
    """The exponential averages kept for inference, updated in place:

        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c]  = (1 - momentum) * running_var[c]  + momentum * unbiased * var[c]

    unbiased = m / (m - 1) turns the biased batch variance into the unbiased one.
    (The lecture's smoothing alpha is 1 - momentum.)
    """
    C = running_mean.shape[0]
    for c in range(C):
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * unbiased * var[c]


@njit(cache=True)
def _channel_sums(dy, xhat, c):
    """(sum_{a, b} dy[a, c, b], sum_{a, b} dy[a, c, b] * xhat[a, c, b]) for one middle index c."""
    A, C, B = dy.shape
    sum_dy = 0.0
    sum_dy_xhat = 0.0
    for a in range(A):
        for b in range(B):
            sum_dy += dy[a, c, b]
            sum_dy_xhat += dy[a, c, b] * xhat[a, c, b]
    return sum_dy, sum_dy_xhat


@njit(cache=True)
def _channel_dx(dy, xhat, c, scale, mean_dy, mean_dy_xhat, dx):
    """dx[a, c, b] = scale * (dy[a, c, b] - mean_dy - xhat[a, c, b] * mean_dy_xhat) for one c."""
    A, C, B = dy.shape
    for a in range(A):
        for b in range(B):
            dx[a, c, b] = scale * (dy[a, c, b] - mean_dy - xhat[a, c, b] * mean_dy_xhat)


@njit(cache=True)
def normalize_backward(dxhat, xhat, inv_std, dx):
    """The gradient through xhat = (x - mean) * inv_std, mean and var included (m = A * B):

        dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - mean_dxhat - xhat[a, c, b] * mean_dxhat_xhat)

        mean_dxhat      = (1/m) sum_{a, b} dxhat[a, c, b]
        mean_dxhat_xhat = (1/m) sum_{a, b} dxhat[a, c, b] * xhat[a, c, b]

    It is the same derivation as batch_norm_backward's docstring (the graph, the chain rule
    node by node, the algebra) with gamma = 1, so that dout = dxhat and scale = inv_std[c];
    the group of m values plays the channel's part.
    """
    A, C, B = dxhat.shape
    m = A * B
    for c in range(C):
        sum_dxhat, sum_dxhat_xhat = _channel_sums(dxhat, xhat, c)
        _channel_dx(dxhat, xhat, c, inv_std[c], sum_dxhat / m, sum_dxhat_xhat / m, dx)


# --- the affine step: out = gamma * xhat + beta ------------------------------------------------

@njit(cache=True)
def channel_affine_forward(xhat, gamma, beta, out):
    """out[a, c, b] = gamma[c] * xhat[a, c, b] + beta[c]"""
    A, C, B = xhat.shape
    for a in range(A):
        for c in range(C):
            for b in range(B):
                out[a, c, b] = gamma[c] * xhat[a, c, b] + beta[c]


@njit(cache=True)
def channel_affine_backward(dout, xhat, gamma, dxhat, dgamma, dbeta):
    """dbeta[c]  = sum_{a, b} dout[a, c, b]
    dgamma[c] = sum_{a, b} dout[a, c, b] * xhat[a, c, b]
    dxhat[a, c, b] = gamma[c] * dout[a, c, b]
    """
    A, C, B = dout.shape
    for c in range(C):
        dbeta[c], dgamma[c] = _channel_sums(dout, xhat, c)
        _channel_dx(dout, xhat, c, gamma[c], 0.0, 0.0, dxhat)


# --- batch norm: statistics per channel c over (n, s), the backward fused in one kernel ----------

@njit(cache=True)
def batch_norm_backward(dout, xhat, gamma, inv_std, training, dx, dgamma, dbeta):
    """Batch norm's whole backward, x (N, C, S).  This docstring is THE derivation, to which
    nbconv.functional.batch_norm_backward, normalize_backward (gamma = 1) and the parallel
    twin below refer.

    Every channel c is normalized on its own, over its m = N * S values.  For one channel,
    drop c and number its values x_i, i = (n, s); "sum_i" is sum_{n, s}.

    1. The forward as a graph of small steps (batch_norm_forward, in training)

        mu      = (1/m) sum_j x_j                    the mean
        xc_i    = x_i - mu                           centred values
        var     = (1/m) sum_j xc_j^2                 the biased variance
        inv_std = (var + eps)^(-1/2)
        xhat_i  = xc_i * inv_std
        out_i   = gamma * xhat_i + beta

    x_i reaches the loss L along three paths: directly (x_i -> xc_i -> xhat_i), through
    var (x_i -> xc_i -> var -> inv_std -> every xhat_j) and through mu (x_i -> mu -> every
    xc_j).  The forward caches xhat and inv_std; the backward needs nothing else.

    2. The chain rule, backwards node by node (dz means dL/dz; dout_i is given)

        node out_i = gamma * xhat_i + beta:
            dbeta    = sum_i dout_i
            dgamma   = sum_i dout_i * xhat_i
            dxhat_i  = gamma * dout_i
        node xhat_i = xc_i * inv_std:
            dinv_std = sum_i dxhat_i * xc_i
            dxc_i   += dxhat_i * inv_std                            (1st part of dxc_i)
        node inv_std = (var + eps)^(-1/2):
            dvar     = dinv_std * (-1/2) * (var + eps)^(-3/2)
                     = -1/2 * inv_std^3 * sum_i dxhat_i * xc_i
        node var = (1/m) sum_j xc_j^2:
            dxc_i   += dvar * 2 * xc_i / m                          (2nd part of dxc_i)
        so  dxc_i    = dxhat_i * inv_std + dvar * 2 * xc_i / m
        node xc_i = x_i - mu:
            dx_i    += dxc_i                                        (1st part of dx_i)
            dmean    = -sum_i dxc_i
                     = -inv_std * sum_i dxhat_i - dvar * (2/m) * sum_i xc_i
                     = -inv_std * sum_i dxhat_i
                       (the dvar contribution vanishes: sum_i xc_i = sum_i x_i - m * mu = 0)
        node mu = (1/m) sum_j x_j:
            dx_i    += dmean / m                                    (2nd part of dx_i)

    Together, dx_i along its three paths:

        dx_i = dxhat_i * inv_std                direct
             + dvar * 2 * xc_i / m              through var
             + dmean / m                        through mean

    3. The algebra, to the form the loop computes.  Name the two sums over the channel

        S1 = sum_j dout_j                (= dbeta)
        S2 = sum_j dout_j * xhat_j       (= dgamma)

    and use xc_j = xhat_j / inv_std and dxhat_j = gamma * dout_j:

        dvar  = -1/2 * inv_std^3 * sum_j (gamma * dout_j) * (xhat_j / inv_std)
              = -1/2 * gamma * inv_std^2 * S2
        dmean = -inv_std * sum_j gamma * dout_j
              = -gamma * inv_std * S1

    Put dxhat_i, dvar, dmean and xc_i = xhat_i / inv_std into the three paths:

        dx_i = (gamma * dout_i) * inv_std
             + (-1/2 * gamma * inv_std^2 * S2) * 2 * (xhat_i / inv_std) / m
             + (-gamma * inv_std * S1) / m

             = gamma * inv_std * dout_i
             - gamma * inv_std * xhat_i * S2 / m
             - gamma * inv_std * S1 / m

             = gamma * inv_std / m * (m * dout_i - S1 - xhat_i * S2)

             = gamma * inv_std * (dout_i - S1 / m - xhat_i * S2 / m)

             = scale * (dout_i - mean_dout - xhat_i * mean_dout_xhat)

    with scale = gamma * inv_std, mean_dout = S1 / m, mean_dout_xhat = S2 / m.  In the code
    below (the channel's loop body, c restored):

        symbol                  code
        S1, S2                  sum_dout, sum_dout_xhat = _channel_sums(dout, xhat, c)
        dbeta, dgamma           dbeta[c] = sum_dout;  dgamma[c] = sum_dout_xhat
        dx_i                    _channel_dx(dout, xhat, c, scale, mean_dy, mean_dy_xhat, dx),
                                which sets dx[n, c, s] = scale * (dy[n, c, s] - mean_dy
                                                        - xhat[n, c, s] * mean_dy_xhat)
                                with its arguments
          dy                      dout
          scale                   gamma[c] * inv_std[c]
          mean_dy                 sum_dout / m             (mean_dout)
          mean_dy_xhat            sum_dout_xhat / m        (mean_dout_xhat)

    tests/test_norm.py::ref_batch_norm_backward computes the same graph node by node in
    NumPy (steps 1 and 2, with std = 1 / inv_std), and
    test_batch_norm_training_backward_matches_the_staged_chain_rule compares it with this
    kernel (through nbconv.functional) to 1e-10.

    4. Inference (training false): mu and var are the running statistics, constants, so
    the paths through var and mean are gone and only the direct one is left:

        dx_i = gamma * inv_std * dout_i      _channel_dx(..., scale, 0.0, 0.0, dx)

    dbeta and dgamma are the same sums as in training (xhat made with the running statistics).
    """
    N, C, S = dout.shape
    m = N * S
    for c in range(C):
        sum_dout, sum_dout_xhat = _channel_sums(dout, xhat, c)
        dbeta[c] = sum_dout
        dgamma[c] = sum_dout_xhat
        if training:
            _channel_dx(dout, xhat, c, gamma[c] * inv_std[c], sum_dout / m, sum_dout_xhat / m, dx)
        else:
            _channel_dx(dout, xhat, c, gamma[c] * inv_std[c], 0.0, 0.0, dx)


# --- local response normalization across channels ------------------------------------------------

@njit(cache=True)
def local_response_norm_forward(x, size, alpha, beta, k, d, out):
    """x, d, out (N, C, S).  For every (n, c, s), with the channel window
    c' = c - size // 2 ... c + (size - 1) // 2 (channels outside [0, C) count as zero):

        d[n, c, s]   = k + alpha / size * sum_{c'} x[n, c', s]^2
        out[n, c, s] = x[n, c, s] * d[n, c, s]^(-beta)
    """
    N, C, S = x.shape
    for n in range(N):
        for c in range(C):
            lo = max(0, c - size // 2)
            hi = min(C - 1, c + (size - 1) // 2)
            for s in range(S):
                acc = 0.0
                for cp in range(lo, hi + 1):          # cp is c' of the formula
                    acc += x[n, cp, s] * x[n, cp, s]
                d[n, c, s] = k + alpha / size * acc
                out[n, c, s] = x[n, c, s] * d[n, c, s] ** (-beta)


@njit(cache=True)
def local_response_norm_backward(dout, x, d, size, alpha, beta, dx):
    """out[c] = x[c] * d[c]^(-beta) (n, s fixed) depends on x[c'] directly when c' = c and,
    through d[c], for every c' in c's window (d[c] grows by alpha / size * 2 x[c']):

        dx[n, c', s] = dout[n, c', s] * d[n, c', s]^(-beta)
                       - 2 alpha beta / size * x[n, c', s]
                         * sum_c dout[n, c, s] * x[n, c, s] * d[n, c, s]^(-beta - 1)

    the sum over the channels c whose window holds c', i.e.
    c = c' - (size - 1) // 2 ... c' + size // 2, clipped to [0, C).
    """
    N, C, S = x.shape
    for n in range(N):
        for cp in range(C):                           # cp is c' of the formula
            lo = max(0, cp - (size - 1) // 2)
            hi = min(C - 1, cp + size // 2)
            for s in range(S):
                acc = 0.0
                for c in range(lo, hi + 1):
                    acc += dout[n, c, s] * x[n, c, s] * d[n, c, s] ** (-beta - 1.0)
                dx[n, cp, s] = (dout[n, cp, s] * d[n, cp, s] ** (-beta)
                                - 2.0 * alpha * beta / size * x[n, cp, s] * acc)


# --- batch norm, parallel and fused: one task per channel -----------------------------------------
#
# Batch norm's statistics are per channel, so every channel is an independent task (prange).
# The forward fuses moments, normalize_forward and channel_affine_forward into one kernel that
# visits a channel's values while they are still in the cache (a channel of a (32, 64, 32, 32)
# batch is 128 KiB), instead of three sweeps over the whole array.  The formulas are those of
# the naive kernels; the sums are compiled with fastmath "reassoc", which lets the compiler add
# their terms in vector lanes, i.e. in another order: the results agree with the naive kernels
# to rounding (a few units in the last place), not bit for bit.  A constant channel still
# gives xhat = 0 exactly (every shifted term is 0, in any order).

@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_forward_parallel(x, gamma, beta, eps, training, mean, var, xhat, inv_std, out):
    """x, xhat, out (N, C, S); mean, var, inv_std, gamma, beta (C,).  Per channel c:

        training:  mean[c], var[c] = the biased batch moments (as ``moments``: shifted sum,
                   then a second pass over x - mean); inference: mean, var are given
        inv_std[c]     = 1 / sqrt(var[c] + eps)
        xhat[n, c, s]  = (x[n, c, s] - mean[c]) * inv_std[c]
        out[n, c, s]   = gamma[c] * xhat[n, c, s] + beta[c]
    """
    N, C, S = x.shape
    m = N * S
    for c in prange(C):
        if training:
            shift = x[0, c, 0]
            acc = 0.0
            for a in range(N):
                row = x[a, c]
                for b in range(S):
                    acc += row[b] - shift
            mean_c = shift + acc / m
            acc = 0.0
            for a in range(N):
                row = x[a, c]
                for b in range(S):
                    d = row[b] - mean_c
                    acc += d * d
            mean[c] = mean_c
            var[c] = acc / m
        mean_c = mean[c]
        scale = 1.0 / math.sqrt(var[c] + eps)
        inv_std[c] = scale
        for a in range(N):
            row, xhat_row, out_row = x[a, c], xhat[a, c], out[a, c]
            for b in range(S):
                xhat_row[b] = (row[b] - mean_c) * scale
                out_row[b] = gamma[c] * xhat_row[b] + beta[c]


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_backward_parallel(dout, xhat, gamma, inv_std, training, dx, dgamma, dbeta):
    """batch_norm_backward with one task per channel c (the same formulas, derived in
    batch_norm_backward's docstring; scale, mean_dout, mean_dout_xhat are its names):

        dbeta[c]  = sum dout,   dgamma[c] = sum dout * xhat
        dx = gamma[c] * inv_std[c] / m * (m * dout - dbeta[c] - xhat * dgamma[c])   (training)
        dx = gamma[c] * inv_std[c] * dout                                           (inference)
    """
    N, C, S = dout.shape
    m = N * S
    for c in prange(C):
        sum_dout = 0.0
        sum_dout_xhat = 0.0
        for a in range(N):
            g_row, xhat_row = dout[a, c], xhat[a, c]
            for b in range(S):
                sum_dout += g_row[b]
                sum_dout_xhat += g_row[b] * xhat_row[b]
        dbeta[c] = sum_dout
        dgamma[c] = sum_dout_xhat
        scale = gamma[c] * inv_std[c]
        mean_dout = sum_dout / m if training else 0.0
        mean_dout_xhat = sum_dout_xhat / m if training else 0.0
        for a in range(N):
            g_row, xhat_row, dx_row = dout[a, c], xhat[a, c], dx[a, c]
            for b in range(S):
                dx_row[b] = scale * (g_row[b] - mean_dout - xhat_row[b] * mean_dout_xhat)
