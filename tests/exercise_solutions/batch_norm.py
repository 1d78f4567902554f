"""Solution of the batch_norm exercise: nbconv/exercise/templates/batch_norm.py with the TODOs filled in."""

import math

import numpy as np


def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, training=True, momentum=0.1, eps=1e-5):
    """out = gamma * (x - mean) / sqrt(var + eps) + beta per channel; in training the batch's mean
    and (biased) var, and the running statistics updated in place with the unbiased var."""
    N, C = x.shape[:2]
    x3 = x.reshape(N, C, -1)
    S = x3.shape[2]
    m = N * S
    xhat = np.zeros_like(x3)
    out = np.zeros_like(x3)
    inv_std = np.zeros(C)
    for c in range(C):
        if training:
            mean = 0.0
            for n in range(N):
                for s in range(S):
                    mean += x3[n, c, s]
            mean /= m
            var = 0.0
            for n in range(N):
                for s in range(S):
                    var += (x3[n, c, s] - mean) ** 2
            var /= m
        else:
            mean, var = running_mean[c], running_var[c]
        inv_std[c] = 1.0 / math.sqrt(var + eps)
        for n in range(N):
            for s in range(S):
                xhat[n, c, s] = (x3[n, c, s] - mean) * inv_std[c]
                out[n, c, s] = gamma[c] * xhat[n, c, s] + beta[c]
        if training:
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
            running_var[c] = (1 - momentum) * running_var[c] + momentum * m / (m - 1) * var
    cache = (xhat, inv_std, gamma, training, x.shape)
    return out.reshape(x.shape), cache


def batch_norm_backward(dout, cache):
    """dgamma = sum dout * xhat, dbeta = sum dout; dx, with dxhat = dout * gamma:
    training  dx = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
    inference dx = dxhat * inv_std"""
    xhat, inv_std, gamma, training, shape = cache
    N, C, S = xhat.shape
    m = N * S
    dout3 = dout.reshape(N, C, S)
    dx = np.zeros_like(xhat)
    dgamma = np.zeros(C)
    dbeta = np.zeros(C)
    for c in range(C):
        sum_dxhat = sum_dxhat_xhat = 0.0
        for n in range(N):
            for s in range(S):
                dbeta[c] += dout3[n, c, s]
                dgamma[c] += dout3[n, c, s] * xhat[n, c, s]
                sum_dxhat += dout3[n, c, s] * gamma[c]
                sum_dxhat_xhat += dout3[n, c, s] * gamma[c] * xhat[n, c, s]
        for n in range(N):
            for s in range(S):
                dxhat = dout3[n, c, s] * gamma[c]
                if training:
                    dx[n, c, s] = inv_std[c] / m * (m * dxhat - sum_dxhat - xhat[n, c, s] * sum_dxhat_xhat)
                else:
                    dx[n, c, s] = dxhat * inv_std[c]
    return dx.reshape(shape), dgamma, dbeta
