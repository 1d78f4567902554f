"""Exercise: linear, the fully connected layer y = x W^T + b, forward and backward, as loops.

Fill in every TODO, then grade your code against nbconv and finite differences:

    nbconv check linear.py

Plain NumPy loops as here, or your own @numba.njit loops called from these two functions: the
check calls linear_forward and linear_backward with the signatures below.  The cache is yours,
whatever the backward needs.
"""

import numpy as np


def linear_forward(x, w, b=None):
    """x (N, D), w (M, D), b (M,) or None -> y (N, M), and the cache for the backward.

        y[n, m] = b[m] + sum_d w[m, d] * x[n, d]

    the lecture's y = Wx + b for every sample, one row of x per sample (without b, leave b[m] out).
    """
    N, D = x.shape
    M = w.shape[0]
    y = np.zeros((N, M), dtype=x.dtype)
    for n in range(N):
        for m in range(M):
            pass  # TODO: y[n, m], the sum over d (plus b[m] when there is a bias)
    cache = (x, w, b)
    return y, cache


def linear_backward(dout, cache):
    """dout (N, M), the gradient dL/dy -> (dx, dw, db), the gradients of L; db is None when the
    forward had no bias.

    The chain rule, summed over every output an input takes part in:

        dx[n, d] = sum_m dout[n, m] * dy[n, m]/dx[n, d]
        dw[m, d] = sum_n dout[n, m] * dy[n, m]/dw[m, d]
        db[m]    = sum_n dout[n, m] * dy[n, m]/db[m]

    Read each derivative dy/d... off the forward's formula.
    """
    x, w, b = cache
    N, D = x.shape
    M = w.shape[0]
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    db = np.zeros(M, dtype=x.dtype)
    for n in range(N):
        for m in range(M):
            pass  # TODO: the share of output y[n, m] in db[m], and in dx[n, d] and dw[m, d] for every d
    return dx, dw, (db if b is not None else None)
