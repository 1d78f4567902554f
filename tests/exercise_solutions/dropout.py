"""Solution of the dropout exercise: nbconv/exercise/templates/dropout.py with the TODOs filled in."""

import numpy as np

from nbconv.exercise import keep_mask


def dropout_forward(x, *, p=0.5, training=True, seed=None):
    """out = x * keep / (1 - p) in training, x at inference"""
    out = np.zeros_like(x)
    if not training:
        for index in np.ndindex(x.shape):
            out[index] = x[index]
        return out, (None, 1.0)
    keep = keep_mask(x.shape, p, seed)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    for index in np.ndindex(x.shape):
        out[index] = x[index] * scale if keep[index] else 0.0
    cache = (keep, scale)
    return out, cache


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p) (the identity at inference)"""
    keep, scale = cache
    dx = np.zeros_like(dout)
    for index in np.ndindex(dout.shape):
        if keep is None:
            dx[index] = dout[index]
        else:
            dx[index] = dout[index] * scale if keep[index] else 0.0
    return (dx,)
