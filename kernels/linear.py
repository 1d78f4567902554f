"""Fully connected layer: y = x W^T + b, the lecture's y = Wx + b for a batch of rows.

Shapes: x (N, D), w (M, D), b (M,), y (N, M).
"""

import numpy as np
from numba import njit

from .conv import conv2d_tiles, wide_row


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
# register-tiled kernel (``nbconv.kernels.conv.conv2d_tiles``: 8 rows of out by 3 vectors of
# positions held in SIMD registers over the whole sum, prange over blocks of rows) on Numba's
# threads, and hands only large products (BLAS_FROM below) to NumPy's BLAS.  A threaded BLAS
# keeps its own pool of threads spinning after each call, and in a training step, where every
# other kernel runs on Numba's threads, that pool took the cores the next kernels needed (a
# LeNet step on 8x8 digits ran 1.5x faster with OPENBLAS_NUM_THREADS=1, measured with the
# convolutions on Numba's threads).  One pool for every kernel has no such contest.  The
# products accumulate in the arrays' dtype with fused multiply-adds, where the loops above
# accumulate in float64: for float32 the two agree to float32 rounding, not bit for bit.

def matmul_tiles(a, b, out, bias=None):
    """out = a @ b (+ bias[o] on row o) for C-contiguous a (O, K), b (K, T), out (O, T), bias
    (O,): conv2d_tiles with b's K rows as the input channels of one sample, a as the 1x1 filters,
    term k read at offset k*T, each panel one wide grid row.

    The columns go in panels of b (K rows by ``panel`` columns) of about PANEL_BYTES, one call
    each: every block of 8 rows of out then reads the panel from L2 (with the whole of b per
    block, a 1024 x 1024 product re-read b from memory once per block and ran at a third of the
    BLAS's rate)."""
    O, K = a.shape
    T = b.shape[1]
    offsets = np.arange(K, dtype=np.int64) * T
    bias = np.zeros(O, out.dtype) if bias is None else bias
    panel = max(TILE_COLUMNS, PANEL_BYTES // max(1, K * b.itemsize) // TILE_COLUMNS * TILE_COLUMNS)
    for t0 in range(0, T, panel):
        count = min(panel, T - t0)
        conv2d_tiles(b.reshape(1, K, T), a, offsets, bias, out.reshape(1, O, T), 1, wide_row(t0, count))


PANEL_BYTES = 1 << 20         # a panel of b kept in a 2 MiB L2 cache with room to spare
TILE_COLUMNS = 48             # conv2d_tiles's tile: 3 vectors of 16 float32 (of 8 float64: panels stay whole tiles)


def linear_forward_gemm(x, w, b, y):
    """y = x @ w.T + b: by the BLAS from BLAS_FROM multiply-adds, else as y^T = w @ x^T + b (one
    tiled product, b on its rows), then y = y^T transposed."""
    N, M = y.shape
    if _blas_pays(x, w):
        np.matmul(x, w.T, out=y)
        y += b
        return
    y_t = np.empty((M, N), dtype=y.dtype)
    matmul_tiles(w, np.ascontiguousarray(x.T), y_t, b)
    np.copyto(y, y_t.T)


def linear_backward_gemm(dy, x, w, dx, dw, db):
    """dx = dy @ w, dw = dy.T @ x (two products, tiled or by the BLAS as in the forward), db = the
    column sums of dy."""
    if _blas_pays(x, w):
        np.matmul(dy, w, out=dx)
        np.matmul(dy.T, x, out=dw)
    else:
        dy = np.ascontiguousarray(dy)
        matmul_tiles(dy, w, dx)
        matmul_tiles(np.ascontiguousarray(dy.T), x, dw)
    np.sum(dy, axis=0, out=db)


# Products of at least this many multiply-adds (N*D*M) go to the BLAS.  The tiled product keeps
# a tile of out in registers but streams its panel of b from L2 (it has no packing of b for L1,
# as a BLAS has): at N=256, D=M=1024 (2^28) it ran at a third to a half of the BLAS's rate on the
# 2-core AVX-512 machine.  Below, the BLAS's spinning threads cost a training step more than its
# speed brings: the LeNet nets' layers (2^21 and 2^26 multiply-adds) stay on Numba's threads.
BLAS_FROM = 1 << 28


def _blas_pays(x, w) -> bool:
    return x.shape[0] * x.shape[1] * w.shape[0] >= BLAS_FROM
