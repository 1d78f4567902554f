"""Fully connected layer: y = x W^T + b, the lecture's y = Wx + b for a batch of rows.

Shapes: x (N, D), w (M, D), b (M,), y (N, M).
"""

from numba import njit


@njit(cache=True)
def linear_forward(x, w, b, y):
    """y[n, m] = sum_d x[n, d] * w[m, d] + b[m]"""
    N, D = x.shape
    M = w.shape[0]
    for n in range(N):
        for m in range(M):
            acc = 0.0
            for d in range(D):
                acc += x[n, d] * w[m, d]
            y[n, m] = acc + b[m]


@njit(cache=True)
def linear_backward(dy, x, w, dx, dw, db):
    """dx[n, d] = sum_m dy[n, m] w[m, d]
    dw[m, d] = sum_n dy[n, m] x[n, d]
    db[m]    = sum_n dy[n, m]
    """
    N, D = x.shape
    M = w.shape[0]
    for n in range(N):
        for d in range(D):
            acc = 0.0
            for m in range(M):
                acc += dy[n, m] * w[m, d]
            dx[n, d] = acc
    for m in range(M):
        for d in range(D):
            acc = 0.0
            for n in range(N):
                acc += dy[n, m] * x[n, d]
            dw[m, d] = acc
        acc = 0.0
        for n in range(N):
            acc += dy[n, m]
        db[m] = acc
