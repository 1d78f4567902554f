"""Fully connected layer: y = x W^T + b, the lecture's y = Wx + b for a batch of rows.

Shapes: x (N, D), w (M, D), b (M,), y (N, M).
"""

import numpy as np
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


# --- the fast form: the same three products through the machine's BLAS ---------------------------
#
# Each sum above is a matrix product, so the fast form hands it to NumPy's GEMM (the BLAS the
# library was built with: blocked for the caches, vectorized, threaded for large sizes):
#
#     y  = x @ w.T + b          (N, D) @ (D, M)
#     dx = dy @ w               (N, M) @ (M, D)
#     dw = dy.T @ x             (M, N) @ (N, D)
#     db = dy summed over n
#
# These are plain Python functions (BLAS is called from NumPy, outside Numba), with the naive
# kernels' signatures, writing into the same output arrays.  The GEMM accumulates in the arrays'
# dtype (float32 for float32 data), where the loops above accumulate in float64: for float32
# the two agree to float32 rounding, not bit for bit.

def linear_forward_gemm(x, w, b, y):
    """y = x @ w.T + b, by one GEMM."""
    np.matmul(x, w.T, out=y)
    y += b


def linear_backward_gemm(dy, x, w, dx, dw, db):
    """dx = dy @ w, dw = dy.T @ x (two GEMMs), db = the column sums of dy."""
    np.matmul(dy, w, out=dx)
    np.matmul(dy.T, x, out=dw)
    np.sum(dy, axis=0, out=db)
