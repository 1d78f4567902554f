"""Exercise: batch_norm, batch normalization, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check batch_norm.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls batch_norm_forward and batch_norm_backward with the signatures below.  The cache is
yours, whatever the backward needs.
"""

import numpy as np


def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, training=True, momentum=0.1, eps=1e-5):
    """x (N, C), (N, C, L) or (N, C, H, W); gamma, beta, running_mean, running_var (C,)
    -> out of x's shape, and the cache.

    Per channel c, over the m values x[n, c, s] of every sample n and position s (m = N, N * L or
    N * H * W):

        mean[c]       = 1/m sum_{n, s} x[n, c, s]
        var[c]        = 1/m sum_{n, s} (x[n, c, s] - mean[c])^2          (the biased variance)
        xhat[n, c, s] = (x[n, c, s] - mean[c]) / sqrt(var[c] + eps)
        out[n, c, s]  = gamma[c] * xhat[n, c, s] + beta[c]

    Training (training=True): mean and var are the batch's, as above, and the running statistics
    are updated IN PLACE (running_mean[c] = ..., so that the caller's arrays change), with the
    unbiased variance:

        running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
        running_var[c]  = (1 - momentum) * running_var[c]  + momentum * m / (m - 1) * var[c]

    Inference (training=False): mean and var are running_mean and running_var, unchanged.
    """
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)                # (N, C, S): the positions s of a channel on one axis
    S = x3.shape[2]
    m = N * S
    xhat = np.zeros_like(x3)
    out = np.zeros_like(x3)
    inv_std = np.zeros(C)                   # 1 / sqrt(var[c] + eps), for the backward
    for c in range(C):
        # TODO: mean and var of channel c: the batch's in training, the running ones at inference
        # TODO: inv_std[c], and xhat[n, c, s] and out[n, c, s] for every n and s
        # TODO: in training, update running_mean[c] and running_var[c] in place
        pass
    cache = (xhat, inv_std, gamma, training, x.shape)
    return out.reshape(x.shape), cache


def batch_norm_backward(dout, cache):
    """dout (x's shape), the gradient dL/dout -> (dx, dgamma, dbeta).

    dgamma[c] and dbeta[c] sum dout[n, c, s] * dout/dgamma (and /dbeta) over the channel's values.

    Inference: mean and var are constants, and out is an affine function of x.
    Training: x[n, c, s] reaches the loss directly through xhat[n, c, s], and also through mean[c]
    and var[c], which every xhat of the channel uses:

        dx[n, c, s] = dxhat[n, c, s] * dxhat/dx  +  dmean[c] * dmean/dx  +  dvar[c] * dvar/dx

    with dxhat = dout * gamma[c], and dmean[c], dvar[c] sums over the channel (var depends on mean
    too).  Work out the three terms and simplify: it fits in one line per element.
    """
    xhat, inv_std, gamma, training, shape = cache
    N, C, S = xhat.shape
    m = N * S
    dout3 = dout.reshape(N, C, S)
    dx = np.zeros_like(xhat)
    dgamma = np.zeros(C)
    dbeta = np.zeros(C)
    for c in range(C):
        # TODO: dbeta[c] and dgamma[c], sums over n and s
        # TODO: dx[n, c, s] for every n and s (at inference, through the affine step only)
        pass
    return dx.reshape(shape), dgamma, dbeta
