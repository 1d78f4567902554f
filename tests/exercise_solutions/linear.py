"""Solution of the linear exercise: nbconv/exercise/templates/linear.py with the TODOs filled in."""

import numpy as np


def linear_forward(x, w, b=None):
    """y[n, m] = b[m] + sum_d w[m, d] * x[n, d]"""
    N, D = x.shape
    M = w.shape[0]
    y = np.zeros((N, M), dtype=x.dtype)
    for n in range(N):
        for m in range(M):
            acc = 0.0 if b is None else b[m]
            for d in range(D):
                acc += w[m, d] * x[n, d]
            y[n, m] = acc
    cache = (x, w, b)
    return y, cache


def linear_backward(dout, cache):
    """dx[n, d] = sum_m dout[n, m] w[m, d];  dw[m, d] = sum_n dout[n, m] x[n, d];  db[m] = sum_n dout[n, m]"""
    x, w, b = cache
    N, D = x.shape
    M = w.shape[0]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(M, dtype=x.dtype)
    for n in range(N):
        for m in range(M):
            db[m] += dout[n, m]
            for d in range(D):
                dx[n, d] += dout[n, m] * w[m, d]
                dw[m, d] += dout[n, m] * x[n, d]
    return dx, dw, (db if b is not None else None)
