"""Fully connected layer on the GPU: the twin of nbconv.kernels.linear.

y = x W^T + b.  Shapes: x (N, D), w (M, D), b (M,), y (N, M).

Two forms, as on the CPU:

- ``linear_forward`` / ``linear_backward`` (method "naive"): one thread per output element,
  the sum over the reduction index inside the thread, as the CPU loop.  The backward's
  gradients are one kernel each, with one thread per element of dx (n, d) and of dw (m, d):
  every sum over the batch is a per-element reduction inside one thread, no atomics.
- ``linear_forward_gemm`` / ``linear_backward_gemm`` (method "fast"): the three products
  through ``nbconv.kernels.cuda.gemm.fast_matmul`` (cuBLAS when CuPy is there, the
  register-blocked Numba kernel otherwise), in place of the CPU's np.dot:

      y  = x @ w^T        (N, D) @ (D, M), then y[n, m] += b[m] (one thread per element)
      dx = dy @ w         (N, M) @ (M, D)
      dw = dy^T @ x       (M, N) @ (N, D)

Both forms share db[m] = sum_n dy[n, m]: one block per output feature m, its threads
splitting the batch, their running sums added by ``block_sum`` (a tree, in a fixed order).

Arithmetic in the data's dtype: the running sums of float32 data are float32 (``acc`` starts
as the array's dtype), float64 data's float64.  A float32 result can differ from the CPU
kernels' (which sum in float64) by float32 rounding.
"""

from numba import cuda

from . import gemm
from ._launch import THREADS, launch
from .reduce import block_sum


# ----------------------------------------------------------------------------- naive: one thread per output

@cuda.jit
def _linear_forward_kernel(x, w, b, y):
    """y[n, m] = sum_d x[n, d] * w[m, d] + b[m]        one thread per (n, m)"""
    t = cuda.grid(1)
    N, D = x.shape
    M = w.shape[0]
    if t >= N * M:
        return
    n = t // M
    m = t % M
    acc = y.dtype.type(0)                  # in y's dtype: float32 sums in float32
    for d in range(D):
        acc += x[n, d] * w[m, d]
    y[n, m] = acc + b[m]


def linear_forward(x, w, b, y):
    """y[n, m] = sum_d x[n, d] * w[m, d] + b[m]   (device arrays; one thread per y[n, m])"""
    launch(_linear_forward_kernel, y.size, x, w, b, y)


@cuda.jit
def _linear_backward_dx_kernel(dy, w, dx):
    """dx[n, d] = sum_m dy[n, m] w[m, d]        one thread per (n, d)"""
    t = cuda.grid(1)
    N, D = dx.shape
    M = w.shape[0]
    if t >= N * D:
        return
    n = t // D
    d = t % D
    acc = dx.dtype.type(0)
    for m in range(M):
        acc += dy[n, m] * w[m, d]
    dx[n, d] = acc


@cuda.jit
def _linear_backward_dw_kernel(dy, x, dw):
    """dw[m, d] = sum_n dy[n, m] x[n, d]        one thread per (m, d), looping over the batch"""
    t = cuda.grid(1)
    N, D = x.shape
    M = dw.shape[0]
    if t >= M * D:
        return
    m = t // D
    d = t % D
    acc = dw.dtype.type(0)
    for n in range(N):
        acc += dy[n, m] * x[n, d]
    dw[m, d] = acc


@cuda.jit
def _linear_backward_db_kernel(dy, db):
    """db[m] = sum_n dy[n, m]        one block per m

    The block's THREADS threads split the batch (thread tid adds n = tid, tid + THREADS, ...),
    then ``block_sum`` adds their running sums in a tree.  In dy's dtype.
    """
    m = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N = dy.shape[0]
    sums = cuda.shared.array(THREADS, dy.dtype)
    acc = dy.dtype.type(0)
    for n in range(tid, N, THREADS):
        acc += dy[n, m]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        db[m] = total


def _bias_gradient(dy, db):
    """db[m] = sum_n dy[n, m]   (one block of THREADS threads per m)"""
    if db.size > 0:
        _linear_backward_db_kernel[db.size, THREADS](dy, db)


def linear_backward(dy, x, w, dx, dw, db):
    """dx[n, d] = sum_m dy[n, m] w[m, d]
    dw[m, d] = sum_n dy[n, m] x[n, d]
    db[m]    = sum_n dy[n, m]

    Three kernels: one thread per element of dx, one per element of dw, one block per db[m].
    """
    launch(_linear_backward_dx_kernel, dx.size, dy, w, dx)
    launch(_linear_backward_dw_kernel, dw.size, dy, x, dw)
    _bias_gradient(dy, db)


# ----------------------------------------------------------------------------- fast: the products as GEMMs

@cuda.jit
def _add_bias_kernel(y, b):
    """y[n, m] += b[m]        one thread per (n, m)"""
    t = cuda.grid(1)
    N, M = y.shape
    if t >= N * M:
        return
    y[t // M, t % M] += b[t % M]


def linear_forward_gemm(x, w, b, y):
    """y = x @ w^T + b: one GEMM (gemm.fast_matmul), then the bias added in place."""
    gemm.fast_matmul(gemm.as_batch(x), gemm.as_batch(w), gemm.as_batch(y), trans_b=True)
    launch(_add_bias_kernel, y.size, y, b)


def linear_backward_gemm(dy, x, w, dx, dw, db):
    """dx = dy @ w, dw = dy^T @ x (two GEMMs), db = the column sums of dy (one block per m)."""
    gemm.fast_matmul(gemm.as_batch(dy), gemm.as_batch(w), gemm.as_batch(dx))
    gemm.fast_matmul(gemm.as_batch(dy), gemm.as_batch(x), gemm.as_batch(dw), trans_a=True)
    _bias_gradient(dy, db)
