"""Fully connected layer: y = x W^T + b, the lecture's y = Wx + b for a batch of rows.

Shapes: x (N, D), w (M, D), b (M,), y (N, M).
"""

import numpy as np
from numba import njit

from .conv import conv2d_tiles


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


# --- the fast form: the same three products as register-tiled GEMMs -----------------------------
#
# Each sum above is a matrix product:
#
#     y  = x @ w.T + b          (N, D) @ (D, M)      computed as y^T = w @ x^T
#     dx = dy @ w               (N, M) @ (M, D)
#     dw = dy.T @ x             (M, N) @ (N, D)
#     db = dy summed over n
#
# and a matrix product out = a @ b is a 1x1 convolution: row k of b (K, T) is input channel k
# of T positions, a (O, K) its filters.  So the fast form runs the blocked convolution's
# register-tiled kernel (``nbconv.kernels.conv.conv2d_tiles``: 4 rows of out by 3 vectors of
# positions held in SIMD registers over the whole sum, prange over blocks of rows) on Numba's
# threads.  Not the BLAS: a threaded BLAS keeps its own pool of threads spinning after each
# call, and in a training step, where every other kernel runs on Numba's threads, that pool
# took the cores the next kernels needed (a LeNet step on 8x8 digits ran 1.5x faster with
# OPENBLAS_NUM_THREADS=1, measured with the convolutions on Numba's threads).  One pool for
# every kernel has no such contest.  The products accumulate in the arrays' dtype with fused
# multiply-adds, where the loops above accumulate in float64: for float32 the two agree to
# float32 rounding, not bit for bit.

def matmul_tiles(a, b, out):
    """out = a @ b for C-contiguous a (O, K), b (K, T), out (O, T): conv2d_tiles with b's K rows as
    the input channels of one sample, a as the 1x1 filters, term k read at offset k*T."""
    O, K = a.shape
    T = b.shape[1]
    conv2d_tiles(b.reshape(1, K, T), a, np.arange(K, dtype=np.int64) * T, out.reshape(1, O, T), 1, 0, T)


def linear_forward_gemm(x, w, b, y):
    """y = x @ w.T + b, as y^T = w @ x^T (one tiled product), then y = y^T transposed, plus b."""
    N, M = y.shape
    y_t = np.empty((M, N), dtype=y.dtype)
    matmul_tiles(w, np.ascontiguousarray(x.T), y_t)
    np.add(y_t.T, b, out=y)


def linear_backward_gemm(dy, x, w, dx, dw, db):
    """dx = dy @ w, dw = dy.T @ x (two tiled products), db = the column sums of dy."""
    dy = np.ascontiguousarray(dy)
    matmul_tiles(dy, w, dx)
    matmul_tiles(np.ascontiguousarray(dy.T), x, dw)
    np.sum(dy, axis=0, out=db)
