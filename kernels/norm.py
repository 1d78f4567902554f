"""Normalization: batch, layer, instance and group norm, weight standardization, LRN.

One idea covers the first five: split the values into groups, and in every group

    mean    = (1 / m) sum x                       (m values in the group)
    var     = (1 / m) sum (x - mean)^2            (biased)
    inv_std = 1 / sqrt(var + eps)                 (eps inside the root: var = 0 is safe)
    xhat    = (x - mean) * inv_std

then (except for weight standardization) scale and shift every value with a learned
gamma and beta.  The ops differ only in which values form a group, so every naive step
here works on one 3-D view ``(A, C, B)`` of the data and normalizes, for each middle
index c, the A * B values x[a, c, b]:

    op                  view (A, C, B) of the statistics      affine view (A, C, B)
    batch_norm          (N, C, S)        per channel           (N, C, S), gamma (C,)
    layer_norm          (1, R, M)        per row               (R, M, 1), gamma (M,)
    instance_norm       (1, N * C, S)    per (sample, channel) (N, C, S), gamma (C,)
    group_norm          (1, N * G, C / G * S)                  (N, C, S), gamma (C,)
    weight_standardize  (1, F, C * KH * KW)  per filter        (no affine)

with S the product of the spatial axes (H * W, or L), R the product of the leading
axes and M of the normalized ones (reshapes, which cost nothing on C-contiguous arrays).
Gradients, per group of m values with upstream gradient dxhat (the chain rule through
mean and var, derived step by step in batch_norm_backward's docstring; normalize_backward
is that derivation with gamma = 1):

    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

What nbconv.functional.dispatch's table calls, naive form: each op's steps in a row, every
step one loop nest over a view of the table above.

    batch_norm_forward   x (N, C, S): moments (in training), normalize_forward, channel_affine_forward
    layer_norm_forward   x (R, M): standardize (moments, then normalize_forward), channel_affine_forward
    group_norm_forward   x (N, G, K, S), G groups of K = C / G channels: the same two steps
                         (instance norm too: K = 1)
    standardize          weight standardization's forward, w (1, F, M)
    the backwards        channel_affine_backward, then normalize_backward (batch_norm_backward
                         is the two fused; weight standardization's is normalize_backward alone)

Fast form: the ``*_parallel`` twins at the end of the module, one task per group (see there).

Local response normalization (AlexNet's, as Caffe and PyTorch define it) divides
each value by a power of the sum of squares over neighbouring channels; its kernels
work on the (N, C, S) view.
"""

import math

import numpy as np
from numba import njit, prange

from . import vecmath


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
def standardize(x, eps, xhat, inv_std):
    """moments, then normalize_forward: per middle index c of x (A, C, B), with the group's
    own statistics,

        xhat[a, c, b] = (x[a, c, b] - mean[c]) * inv_std[c],   inv_std[c] = 1 / sqrt(var[c] + eps)

    (weight standardization's whole forward; layer, instance and group norm's first step).
    """
    C = x.shape[1]
    mean, var = np.empty(C), np.empty(C)
    moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)


@njit(cache=True)
def running_average_update(running_mean, running_var, mean, var, momentum, unbiased):
    """The exponential averages kept for inference, updated in place:

        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c]  = (1 - momentum) * running_var[c]  + momentum * unbiased * var[c]

    unbiased = m / (m - 1) turns the biased batch variance into the unbiased one (the default);
    unbiased = 1 keeps the biased one, as the lecture writes it (batch_norm_forward's
    ``unbiased=False``).  (The lecture's smoothing alpha is 1 - momentum.)
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


# --- layer, instance and group norm: the steps above on the views of the table -------------------

@njit(cache=True)
def layer_norm_forward(x, gamma, beta, eps, xhat, inv_std, out):
    """x, xhat, out (R, M): every row r is one group (the statistics view (1, R, M)), and
    gamma, beta (M,) act per column (the affine view (R, M, 1)):

        xhat[r, m] = (x[r, m] - mean[r]) * inv_std[r]        inv_std (R,)
        out[r, m]  = gamma[m] * xhat[r, m] + beta[m]
    """
    R, M = x.shape
    standardize(x.reshape((1, R, M)), eps, xhat.reshape((1, R, M)), inv_std)
    channel_affine_forward(xhat.reshape((R, M, 1)), gamma, beta, out.reshape((R, M, 1)))


@njit(cache=True)
def layer_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """The affine step's backward (dxhat = gamma * dout, dgamma and dbeta the column sums over
    the rows), then normalize_backward per row."""
    R, M = dout.shape
    dxhat = np.empty_like(dout)
    channel_affine_backward(dout.reshape((R, M, 1)), xhat.reshape((R, M, 1)), gamma,
                            dxhat.reshape((R, M, 1)), dgamma, dbeta)
    normalize_backward(dxhat.reshape((1, R, M)), xhat.reshape((1, R, M)), inv_std, dx.reshape((1, R, M)))


@njit(cache=True)
def group_norm_forward(x, gamma, beta, eps, xhat, inv_std, out):
    """x, xhat, out (N, G, K, S): G groups of K channels (C = G * K), S the spatial axes.  Every
    (n, g) is one group of K * S values (statistics view (1, N * G, K * S), inv_std (N * G,)),
    and gamma, beta (C,) act per channel c = g * K + k (affine view (N, C, S)):

        xhat[n, g, k, s] = (x[n, g, k, s] - mean[n, g]) * inv_std[n, g]
        out[n, g, k, s]  = gamma[g * K + k] * xhat[n, g, k, s] + beta[g * K + k]

    Instance norm is the case K = 1 (one channel per group).
    """
    N, G, K, S = x.shape
    stats, affine = (1, N * G, K * S), (N, G * K, S)
    standardize(x.reshape(stats), eps, xhat.reshape(stats), inv_std)
    channel_affine_forward(xhat.reshape(affine), gamma, beta, out.reshape(affine))


@njit(cache=True)
def group_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """The affine step's backward per channel (affine view (N, C, S)), then normalize_backward
    per group (statistics view (1, N * G, K * S))."""
    N, G, K, S = dout.shape
    stats, affine = (1, N * G, K * S), (N, G * K, S)
    dxhat = np.empty_like(dout)
    channel_affine_backward(dout.reshape(affine), xhat.reshape(affine), gamma, dxhat.reshape(affine), dgamma, dbeta)
    normalize_backward(dxhat.reshape(stats), xhat.reshape(stats), inv_std, dx.reshape(stats))


# --- batch norm: statistics per channel c over (n, s), the backward fused in one kernel ----------

@njit(cache=True)
def batch_norm_forward(x, gamma, beta, eps, training, mean, var, xhat, inv_std, out):
    """x, xhat, out (N, C, S); per channel c:

        training:  mean[c], var[c] = the batch moments (``moments``); inference: given
        xhat[n, c, s] = (x[n, c, s] - mean[c]) * inv_std[c],   inv_std[c] = 1 / sqrt(var[c] + eps)
        out[n, c, s]  = gamma[c] * xhat[n, c, s] + beta[c]

    (nbconv.functional updates the running statistics afterwards, running_average_update.)
    """
    if training:
        moments(x, mean, var)
    normalize_forward(x, mean, var, eps, xhat, inv_std)
    channel_affine_forward(xhat, gamma, beta, out)


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


# =================================================================================================
# The fast forms: parallel twins, one task per group
# =================================================================================================
#
# Why they are faster than the steps above:
#
# 1. Threads.  The groups are independent, so each is one task of a prange loop (a channel of
#    batch norm, a row of layer norm, an (n, g) of instance and group norm, a filter of weight
#    standardization).  A group's sums are all taken inside its task, in one fixed order, so
#    no two threads ever add into the same sum and the results do not depend on the number of
#    threads.  The only sums across groups, dgamma and dbeta of layer, instance and group norm,
#    run in a second parallel loop, one task per column (block), adding the rows in order.
# 2. One sweep instead of three.  A task computes its group's statistics and then, while the
#    group is still in the cache, writes xhat and out (the naive steps sweep the whole array
#    once for the moments, once for xhat, once for out; the backward once for dxhat and once
#    for dx, and dxhat is never stored).  The rows are contiguous: the inner loops vectorize.
# 3. Vector sums.  fastmath "reassoc" lets the compiler add the terms of a sum in vector lanes,
#    i.e. in another order than the naive loop: the results agree with the naive kernels to
#    rounding (a few units in the last place), not bit for bit.  The sums stay in float64, and
#    a constant group still gives xhat = 0 exactly (every shifted term is 0, in any order).
# 4. The backward's per-element formula runs in x's dtype (_in_dtype): 8 float32 lanes per
#    instruction instead of converting every element to float64 and back.
#
# Which kernels serve which op (the fast column of nbconv.functional.dispatch's table):
#
#    batch_norm           batch_norm_forward_parallel, batch_norm_backward_parallel
#    layer_norm           layer_norm_forward_parallel, layer_norm_backward_parallel
#    instance_norm,       group_norm_forward_parallel, group_norm_backward_parallel
#    group_norm             (instance norm: one channel per group)
#    weight_standardize   standardize_parallel, normalize_backward_parallel
#    local_response_norm  local_response_norm_forward_parallel, ..._backward_parallel

# Columns per task in the column sums of layer_norm_backward_parallel (dgamma, dbeta): a fixed
# block, so that the tasks, and the order of every sum, do not depend on the thread count.
COLUMN_BLOCK = 256


@njit(cache=True, fastmath={"reassoc"})
def _moments_fast(x, c):
    """(mean, var) of the group c of x (A, C, B), as ``moments`` computes them (the sum of the
    shifted values, then a second pass over x - mean), the sums vectorized."""
    A, C, B = x.shape
    m = A * B
    shift = x[0, c, 0]
    acc = 0.0
    for a in range(A):
        row = x[a, c]
        for b in range(B):
            acc += row[b] - shift
    mean = shift + acc / m
    acc = 0.0
    for a in range(A):
        row = x[a, c]
        for b in range(B):
            d = row[b] - mean
            acc += d * d
    return mean, acc / m


@njit(cache=True, fastmath={"reassoc"})
def _channel_sums_fast(dy, xhat, c):
    """_channel_sums, vectorized: (sum_{a, b} dy[a, c, b], sum_{a, b} dy[a, c, b] * xhat[a, c, b])."""
    A, C, B = dy.shape
    sum_dy = 0.0
    sum_dy_xhat = 0.0
    for a in range(A):
        dy_row, xhat_row = dy[a, c], xhat[a, c]
        for b in range(B):
            sum_dy += dy_row[b]
            sum_dy_xhat += dy_row[b] * xhat_row[b]
    return sum_dy, sum_dy_xhat


@njit(cache=True, fastmath={"reassoc"})
def _channel_dx_fast(dy, xhat, c, scale, mean_dy, mean_dy_xhat, dx):
    """_channel_dx on rows, in dx's dtype (see _in_dtype):
    dx[a, c, b] = scale * (dy[a, c, b] - mean_dy - xhat[a, c, b] * mean_dy_xhat)."""
    scale, mean_dy, mean_dy_xhat = _in_dtype(dx, scale, mean_dy, mean_dy_xhat)
    A, C, B = dy.shape
    for a in range(A):
        dy_row, xhat_row, dx_row = dy[a, c], xhat[a, c], dx[a, c]
        for b in range(B):
            dx_row[b] = scale * (dy_row[b] - mean_dy - xhat_row[b] * mean_dy_xhat)


@njit(cache=True)
def _in_dtype(dx, scale, mean_dy, mean_dy_xhat):
    """The three float64 numbers of a group's gradient, scale * (dy - mean_dy - xhat * mean_dy_xhat),
    rounded to dx's dtype, so that the per-element work runs in that dtype: 8 float32 lanes per
    instruction, where the float64 formula converts every element to float64 and back.  The
    difference is one more rounding of each number (a few float32 units of the terms: dy,
    mean_dy and xhat * mean_dy_xhat, each times scale); a constant group still gets dx = 0."""
    t = dx.dtype.type
    return t(scale), t(mean_dy), t(mean_dy_xhat)


# --- weight standardization: the (A, C, B) steps, one task per middle index c ---------------------

@njit(cache=True, parallel=True, fastmath={"reassoc"})
def standardize_parallel(x, eps, xhat, inv_std):
    """standardize with one task per group c of x (A, C, B): its moments, inv_std[c] and
    xhat[a, c, b] = (x[a, c, b] - mean) * inv_std[c] in one visit."""
    A, C, B = x.shape
    for c in prange(C):
        mean, var = _moments_fast(x, c)
        scale = 1.0 / math.sqrt(var + eps)
        inv_std[c] = scale
        for a in range(A):
            row, xhat_row = x[a, c], xhat[a, c]
            for b in range(B):
                xhat_row[b] = (row[b] - mean) * scale


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def normalize_backward_parallel(dxhat, xhat, inv_std, dx):
    """normalize_backward with one task per group c (m = A * B):

        dx[a, c, b] = inv_std[c] * (dxhat[a, c, b] - mean_dxhat - xhat[a, c, b] * mean_dxhat_xhat)
    """
    A, C, B = dxhat.shape
    m = A * B
    for c in prange(C):
        sum_dxhat, sum_dxhat_xhat = _channel_sums_fast(dxhat, xhat, c)
        _channel_dx_fast(dxhat, xhat, c, inv_std[c], sum_dxhat / m, sum_dxhat_xhat / m, dx)


# --- layer norm: one task per row ----------------------------------------------------------------

@njit(cache=True, parallel=True, fastmath={"reassoc"})
def layer_norm_forward_parallel(x, gamma, beta, eps, xhat, inv_std, out):
    """layer_norm_forward with one task per row r of x (R, M): its moments, then

        xhat[r, m] = (x[r, m] - mean) * inv_std[r],   out[r, m] = gamma[m] * xhat[r, m] + beta[m]
    """
    R, M = x.shape
    rows = x.reshape((1, R, M))
    for r in prange(R):
        mean, var = _moments_fast(rows, r)
        scale = 1.0 / math.sqrt(var + eps)
        inv_std[r] = scale
        row, xhat_row, out_row = x[r], xhat[r], out[r]
        for m in range(M):
            xhat_row[m] = (row[m] - mean) * scale
            out_row[m] = gamma[m] * xhat_row[m] + beta[m]


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def layer_norm_backward_parallel(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """layer_norm_backward in two parallel loops over dout, xhat, dx (R, M).

    1. One task per row r: dxhat = gamma * dout formed on the fly (never stored), its two sums
       over the row, then normalize_backward's formula (in x's dtype, see _in_dtype)

        dx[r, m] = inv_std[r] * (dxhat[r, m] - mean(dxhat[r, :]) - xhat[r, m] * mean(dxhat[r, :] * xhat[r, :]))

    2. The column sums dbeta[m] = sum_r dout[r, m] and dgamma[m] = sum_r dout[r, m] * xhat[r, m]:
       one task per block of COLUMN_BLOCK columns, adding the rows in order, four rows per update
       of the block's running sums (a quarter of the loads and stores of them).
    """
    R, M = dout.shape
    for r in prange(R):
        dout_row, xhat_row, dx_row = dout[r], xhat[r], dx[r]
        sum_dxhat = 0.0
        sum_dxhat_xhat = 0.0
        for m in range(M):
            dxhat = gamma[m] * dout_row[m]
            sum_dxhat += dxhat
            sum_dxhat_xhat += dxhat * xhat_row[m]
        scale, mean_dxhat, mean_dxhat_xhat = _in_dtype(dx, inv_std[r], sum_dxhat / M, sum_dxhat_xhat / M)
        for m in range(M):
            dx_row[m] = scale * (gamma[m] * dout_row[m] - mean_dxhat - xhat_row[m] * mean_dxhat_xhat)
    for block in prange((M + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        lo = block * COLUMN_BLOCK
        hi = min(M, lo + COLUMN_BLOCK)
        sum_dout = np.zeros(hi - lo)
        sum_dout_xhat = np.zeros(hi - lo)
        R4 = R - R % 4
        for r in range(0, R4, 4):
            d0, d1, d2, d3 = dout[r], dout[r + 1], dout[r + 2], dout[r + 3]
            x0, x1, x2, x3 = xhat[r], xhat[r + 1], xhat[r + 2], xhat[r + 3]
            for m in range(lo, hi):
                sum_dout[m - lo] += (float(d0[m]) + d1[m]) + (float(d2[m]) + d3[m])
                sum_dout_xhat[m - lo] += ((float(d0[m] * x0[m]) + d1[m] * x1[m])
                                          + (float(d2[m] * x2[m]) + d3[m] * x3[m]))
        for r in range(R4, R):
            dout_row, xhat_row = dout[r], xhat[r]
            for m in range(lo, hi):
                sum_dout[m - lo] += dout_row[m]
                sum_dout_xhat[m - lo] += dout_row[m] * xhat_row[m]
        for m in range(lo, hi):
            dbeta[m] = sum_dout[m - lo]
            dgamma[m] = sum_dout_xhat[m - lo]


# --- instance and group norm: one task per (sample, group) ---------------------------------------

@njit(cache=True, parallel=True, fastmath={"reassoc"})
def group_norm_forward_parallel(x, gamma, beta, eps, xhat, inv_std, out):
    """group_norm_forward with one task per group t = n * G + g of x (N, G, K, S): its moments,
    then xhat and out channel by channel (c = g * K + k):

        xhat[n, g, k, s] = (x[n, g, k, s] - mean) * inv_std[t],   out = gamma[c] * xhat + beta[c]
    """
    N, G, K, S = x.shape
    groups = x.reshape((1, N * G, K * S))
    for t in prange(N * G):
        n, g = t // G, t % G
        mean, var = _moments_fast(groups, t)
        scale = 1.0 / math.sqrt(var + eps)
        inv_std[t] = scale
        for k in range(K):
            gamma_c, beta_c = gamma[g * K + k], beta[g * K + k]
            row, xhat_row, out_row = x[n, g, k], xhat[n, g, k], out[n, g, k]
            for s in range(S):
                xhat_row[s] = (row[s] - mean) * scale
                out_row[s] = gamma_c * xhat_row[s] + beta_c


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def group_norm_backward_parallel(dout, xhat, gamma, inv_std, dx, dgamma, dbeta):
    """group_norm_backward in two parallel loops (m = K * S values per group).

    1. One task per group t = n * G + g.  Every channel c = g * K + k of it first sums its row
       of sample n, part_dbeta[n, c] = sum_s dout[n, g, k, s] and part_dgamma[n, c] =
       sum_s dout * xhat (its shares of dbeta and dgamma); with dxhat = gamma[c] * dout these
       give the group's sums, sum dxhat = sum_k gamma[c] * part_dbeta[n, c] (and sum dxhat *
       xhat alike, with part_dgamma), so two sums per element serve both, and

        dx[n, g, k, s] = inv_std[t] * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

       (in x's dtype, see _in_dtype).
    2. One task per channel c: dbeta[c] = sum_n part_dbeta[n, c] (dgamma alike), n in order.
    """
    N, G, K, S = dout.shape
    C, m = G * K, K * S
    part_dbeta = np.empty((N, C))
    part_dgamma = np.empty((N, C))
    for t in prange(N * G):
        n, g = t // G, t % G
        sum_dxhat = 0.0
        sum_dxhat_xhat = 0.0
        for k in range(K):
            c = g * K + k
            dout_row, xhat_row = dout[n, g, k], xhat[n, g, k]
            sum_dout = 0.0
            sum_dout_xhat = 0.0
            for s in range(S):
                sum_dout += dout_row[s]
                sum_dout_xhat += dout_row[s] * xhat_row[s]
            part_dbeta[n, c] = sum_dout
            part_dgamma[n, c] = sum_dout_xhat
            sum_dxhat += gamma[c] * sum_dout
            sum_dxhat_xhat += gamma[c] * sum_dout_xhat
        scale, mean_dxhat, mean_dxhat_xhat = _in_dtype(dx, inv_std[t], sum_dxhat / m, sum_dxhat_xhat / m)
        for k in range(K):
            gamma_c = gamma[g * K + k]
            dout_row, xhat_row, dx_row = dout[n, g, k], xhat[n, g, k], dx[n, g, k]
            for s in range(S):
                dx_row[s] = scale * (gamma_c * dout_row[s] - mean_dxhat - xhat_row[s] * mean_dxhat_xhat)
    for c in prange(C):
        sum_dout = 0.0
        sum_dout_xhat = 0.0
        for n in range(N):
            sum_dout += part_dbeta[n, c]
            sum_dout_xhat += part_dgamma[n, c]
        dbeta[c] = sum_dout
        dgamma[c] = sum_dout_xhat


# --- batch norm, fused: one task per channel -----------------------------------------------------
#
# A channel of a (32, 64, 32, 32) batch is 128 KiB: the task visits it while it is in the cache.

@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_forward_parallel(x, gamma, beta, eps, training, mean, var, xhat, inv_std, out):
    """batch_norm_forward with one task per channel c of x (N, C, S):

        training:  mean[c], var[c] = the biased batch moments (as ``moments``: shifted sum,
                   then a second pass over x - mean); inference: mean, var are given
        inv_std[c]     = 1 / sqrt(var[c] + eps)
        xhat[n, c, s]  = (x[n, c, s] - mean[c]) * inv_std[c]
        out[n, c, s]   = gamma[c] * xhat[n, c, s] + beta[c]
    """
    N, C, S = x.shape
    for c in prange(C):
        if training:
            mean[c], var[c] = _moments_fast(x, c)
        mean_c, gamma_c, beta_c = mean[c], gamma[c], beta[c]
        scale = 1.0 / math.sqrt(var[c] + eps)
        inv_std[c] = scale
        for a in range(N):
            row, xhat_row, out_row = x[a, c], xhat[a, c], out[a, c]
            for b in range(S):
                xhat_row[b] = (row[b] - mean_c) * scale
                out_row[b] = gamma_c * xhat_row[b] + beta_c


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def batch_norm_backward_parallel(dout, xhat, gamma, inv_std, training, dx, dgamma, dbeta):
    """batch_norm_backward with one task per channel c (the same formulas, derived in
    batch_norm_backward's docstring; scale, mean_dout, mean_dout_xhat are its names):

        dbeta[c]  = sum dout,   dgamma[c] = sum dout * xhat
        dx = gamma[c] * inv_std[c] * (dout - dbeta[c] / m - xhat * dgamma[c] / m)   (training)
        dx = gamma[c] * inv_std[c] * dout                                           (inference)
    """
    N, C, S = dout.shape
    m = N * S
    for c in prange(C):
        sum_dout, sum_dout_xhat = _channel_sums_fast(dout, xhat, c)
        dbeta[c] = sum_dout
        dgamma[c] = sum_dout_xhat
        scale = gamma[c] * inv_std[c]
        if training:
            _channel_dx_fast(dout, xhat, c, scale, sum_dout / m, sum_dout_xhat / m, dx)
        else:
            _channel_dx_fast(dout, xhat, c, scale, 0.0, 0.0, dx)


# --- local response normalization: the power through vecmath ---------------------------------------
#
# d^(-beta) is exp(-beta * log(d)) with nbconv.kernels.vecmath's exp and log, which vectorize
# (the C library's pow, one element per call, does not), computed in x's dtype: 8 float32 or 4
# float64 lanes with AVX2.  For beta = 3/4 (AlexNet's, and the default) it is
# 1 / (sqrt(d) sqrt(sqrt(d))) instead: two square roots (one instruction each, correctly
# rounded) cost a fraction of a log and an exp.  The window sum runs over whole rows (for c': for s), so it vectorizes
# too.  Results within a few ulp of the naive kernels (vecmath's exp and log are within 2 ulp; the
# float32 window sums are taken in float32 here, in float64 there).  The work of one task is a
# serial function (a row, a sample) that the prange calls: Numba compiles a prange body into a
# function of its own that LLVM vectorizes worse than a serial loop (see kernels/activation.py).

@njit(cache=True, error_model="numpy")
def _powers(d_row, minus_beta, p_row):
    """p_row[s] = d_row[s]^(-beta), d > 0: two square roots for beta = 3/4, else vecmath's exp(-beta log d)."""
    if minus_beta == -0.75:
        for s in range(d_row.shape[0]):
            r = math.sqrt(d_row[s])
            p_row[s] = vecmath.cast(1.0, r) / (r * math.sqrt(r))     # in d's type
    else:
        for s in range(d_row.shape[0]):
            p_row[s] = vecmath.exp(minus_beta * vecmath.log(d_row[s]))


@njit(cache=True, error_model="numpy")
def _local_response_norm_row(x, n, c, size, minus_beta, k_, scale, d, out):
    """d[n, c, :] and out[n, c, :] of local_response_norm_forward_parallel (one row)."""
    C, S = x.shape[1], x.shape[2]
    lo = max(0, c - size // 2)
    hi = min(C - 1, c + (size - 1) // 2)
    d_row, x_row, out_row = d[n, c], x[n, c], out[n, c]
    for s in range(S):
        d_row[s] = 0.0
    for cp in range(lo, hi + 1):                      # cp is c' of the formula
        xp_row = x[n, cp]
        for s in range(S):
            d_row[s] += xp_row[s] * xp_row[s]
    for s in range(S):
        d_row[s] = k_ + scale * d_row[s]
    _powers(d_row, minus_beta, out_row)               # out = d^(-beta) ...
    for s in range(S):
        out_row[s] *= x_row[s]                        # ... times x


@njit(cache=True, parallel=True)
def local_response_norm_forward_parallel(x, size, alpha, beta, k, d, out):
    """local_response_norm_forward with one task per row (n, c) of x (N, C, S):

        d[n, c, :]   = k + alpha / size * sum_{c'} x[n, c', :]^2     (the rows of c's window)
        out[n, c, :] = x[n, c, :] * exp(-beta * log(d[n, c, :]))
    """
    N, C, S = x.shape
    minus_beta, k_, scale = x.dtype.type(-beta), x.dtype.type(k), x.dtype.type(alpha / size)
    for t in prange(N * C):
        _local_response_norm_row(x, t // C, t % C, size, minus_beta, k_, scale, d, out)


@njit(cache=True, error_model="numpy")
def _local_response_norm_backward_sample(dout, x, d, n, size, minus_beta, scale, t, acc, dx):
    """dx[n] of local_response_norm_backward_parallel (one sample; t (C, S) and acc (S,) scratch)."""
    C, S = x.shape[1], x.shape[2]
    for c in range(C):
        dout_row, x_row, d_row, dx_row, t_row = dout[n, c], x[n, c], d[n, c], dx[n, c], t[c]
        _powers(d_row, minus_beta, dx_row)            # p = d^(-beta), in dx's row for now
        for s in range(S):
            p = dx_row[s]
            dx_row[s] = dout_row[s] * p
            t_row[s] = dout_row[s] * x_row[s] * p / d_row[s]
    for cp in range(C):                               # cp is c' of the formula
        lo = max(0, cp - (size - 1) // 2)
        hi = min(C - 1, cp + size // 2)
        for s in range(S):
            acc[s] = 0.0
        for c in range(lo, hi + 1):
            t_row = t[c]
            for s in range(S):
                acc[s] += t_row[s]
        x_row, dx_row = x[n, cp], dx[n, cp]
        for s in range(S):
            dx_row[s] -= scale * x_row[s] * acc[s]


@njit(cache=True, parallel=True)
def local_response_norm_backward_parallel(dout, x, d, size, alpha, beta, dx):
    """local_response_norm_backward with one task per sample n, in two sweeps over its channels:

        p = d^(-beta) = exp(-beta * log(d));   dx = dout * p    (the direct term);
        t = dout * x * d^(-beta - 1) = dout * x * p / d          (kept for the sample, (C, S))
        dx[n, c', :] -= 2 alpha beta / size * x[n, c', :] * sum_c t[c, :]

    the sum over the channels c whose window holds c' (c = c' - (size - 1) // 2 ... c' + size // 2).
    """
    N, C, S = x.shape
    minus_beta, scale = x.dtype.type(-beta), x.dtype.type(2.0 * alpha * beta / size)
    for n in prange(N):
        t = np.empty((C, S), x.dtype)
        acc = np.empty(S, x.dtype)
        _local_response_norm_backward_sample(dout, x, d, n, size, minus_beta, scale, t, acc, dx)
