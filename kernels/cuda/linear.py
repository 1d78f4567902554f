"""Fully connected layer on the GPU: the twin of nbconv.kernels.linear.

y = x W^T + b.  Shapes: x (N, D), w (M, D), b (M,), y (N, M).

One thread per output element, the sum over the reduction index inside the thread, in
float64.  The backward's three gradients are three kernels, each with one thread per element
of the gradient it writes (dx per (n, d), dw per (m, d), db per m): every sum over the batch
is a per-element reduction inside one thread, no atomics.
"""

from numba import cuda, float64

from ._launch import launch


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
    acc = float64(0.0)
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
    acc = float64(0.0)
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
    acc = float64(0.0)
    for n in range(N):
        acc += dy[n, m] * x[n, d]
    dw[m, d] = acc


@cuda.jit
def _linear_backward_db_kernel(dy, db):
    """db[m] = sum_n dy[n, m]        one thread per m, looping over the batch"""
    m = cuda.grid(1)
    N, M = dy.shape
    if m >= M:
        return
    acc = float64(0.0)
    for n in range(N):
        acc += dy[n, m]
    db[m] = acc


def linear_backward(dy, x, w, dx, dw, db):
    """dx[n, d] = sum_m dy[n, m] w[m, d]
    dw[m, d] = sum_n dy[n, m] x[n, d]
    db[m]    = sum_n dy[n, m]

    Three kernels, one thread per element of the gradient each writes.
    """
    launch(_linear_backward_dx_kernel, dx.size, dy, w, dx)
    launch(_linear_backward_dw_kernel, dw.size, dy, x, dw)
    launch(_linear_backward_db_kernel, db.size, dy, db)
