"""Activation functions on the GPU: the twin of nbconv.kernels.activation.

Elementwise ops (relu, leaky_relu, elu, sigmoid, tanh) take the flattened array: x (L,), y (L,),
one thread per element.  PReLU and maxout take the (N, C, S) view:

    prelu:  x (N, C, S), w (C,), y (N, C, S)
    maxout: x (N, K * pieces, S), y (N, K, S), argmax (N, K, S) int64 (the winning piece p)

At the kink x = 0 every op takes the branch of x <= 0, as the CPU kernels do.

Mapping: one thread per output element everywhere.  PReLU's slope gradient dw[c] sums over
every (n, s) of channel c: a reduction kernel with one block per channel, whose threads add
their share of the terms and then combine their partial sums in a tree, no atomics.  maxout's
backward writes every element of dx: one thread per element of dx.

Precision: the arithmetic runs in x's dtype.  A float32 kernel that touches a float64 value (a
Python-float slope, a literal such as 1.0, a float64 accumulator) computes that step in float64,
which a T4-class GPU runs at 1/32 of the float32 rate: the launchers pass the scalars in x's
dtype (``x.dtype.type(alpha)``), the kernels write 1 as ``y.dtype.type(1)``, and math.exp,
math.expm1 and math.tanh of a float32 are the float32 functions (expf, ...).  A float32 result
can differ from the CPU kernel's (which computes in float64 and rounds once) by float32 rounding.
"""

import math

from numba import cuda

from ._launch import THREADS, launch
from .reduce import block_sum


# --- ReLU(x) = max(0, x) ------------------------------------------------------------------------

@cuda.jit
def _relu_forward_kernel(x, y):
    """y[i] = max(0, x[i])  (written with x <= 0 so that a NaN propagates)        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] <= 0.0:
        y[i] = 0.0
    else:
        y[i] = x[i]


def relu_forward(x, y):
    """y[i] = max(0, x[i])   (device arrays, flat; one thread per element)"""
    launch(_relu_forward_kernel, x.shape[0], x, y)


@cuda.jit
def _relu_backward_kernel(dy, x, dx):
    """dx[i] = dy[i] * [x[i] > 0]        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        dx[i] = dy[i]
    else:
        dx[i] = 0.0


def relu_backward(dy, x, dx):
    """dx[i] = dy[i] * [x[i] > 0]   (relu'(x) = 1 for x > 0, 0 for x <= 0)"""
    launch(_relu_backward_kernel, x.shape[0], dy, x, dx)


# --- LeakyReLU(x) = x for x > 0, slope * x for x <= 0 --------------------------------------------

@cuda.jit
def _leaky_relu_forward_kernel(x, y, negative_slope):
    """y[i] = x[i] if x[i] > 0 else negative_slope * x[i]        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        y[i] = x[i]
    else:
        y[i] = negative_slope * x[i]


def leaky_relu_forward(x, y, negative_slope):
    """y[i] = x[i] if x[i] > 0 else negative_slope * x[i]"""
    # the slope in x's dtype: a float64 slope would make the float32 product float64 (1/32 speed on T4)
    launch(_leaky_relu_forward_kernel, x.shape[0], x, y, x.dtype.type(negative_slope))


@cuda.jit
def _leaky_relu_backward_kernel(dy, x, dx, negative_slope):
    """dx[i] = dy[i] if x[i] > 0 else negative_slope * dy[i]        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        dx[i] = dy[i]
    else:
        dx[i] = negative_slope * dy[i]


def leaky_relu_backward(dy, x, dx, negative_slope):
    """dx[i] = dy[i] if x[i] > 0 else negative_slope * dy[i]"""
    launch(_leaky_relu_backward_kernel, x.shape[0], dy, x, dx, x.dtype.type(negative_slope))   # x's dtype


# --- ELU(x) = x for x > 0, alpha * (exp(x) - 1) for x <= 0 ---------------------------------------

@cuda.jit
def _elu_forward_kernel(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * expm1(x[i])        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        y[i] = x[i]
    else:
        y[i] = alpha * math.expm1(x[i])


def elu_forward(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * (exp(x[i]) - 1)   (exp(x) - 1 as expm1(x), in x's dtype)"""
    # alpha in x's dtype: a float64 alpha would make the float32 kernel float64 (1/32 speed on T4)
    launch(_elu_forward_kernel, x.shape[0], x, y, x.dtype.type(alpha))


@cuda.jit
def _elu_backward_kernel(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i])        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        dx[i] = dy[i]
    else:
        dx[i] = dy[i] * alpha * math.exp(x[i])


def elu_backward(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i])"""
    launch(_elu_backward_kernel, x.shape[0], dy, x, dx, x.dtype.type(alpha))   # alpha in x's dtype


# --- sigmoid(x) = 1 / (1 + exp(-x)) ---------------------------------------------------------------

@cuda.jit
def _sigmoid_forward_kernel(x, y):
    """y[i] = 1 / (1 + exp(-x[i])), in the form where exp only sees -|x|        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    one = x.dtype.type(1)           # 1 in x's dtype: a bare 1.0 is float64 (1/32 speed on T4)
    v = x[i]
    if v >= 0.0:
        y[i] = one / (one + math.exp(-v))
    else:
        e = math.exp(v)
        y[i] = e / (one + e)


def sigmoid_forward(x, y):
    """y[i] = 1 / (1 + exp(-x[i]))

    Stable: x >= 0 uses 1 / (1 + exp(-x)), x < 0 uses exp(x) / (1 + exp(x)); exp never overflows.
    """
    launch(_sigmoid_forward_kernel, x.shape[0], x, y)


@cuda.jit
def _sigmoid_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i])        one thread per i"""
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    one = y.dtype.type(1)           # 1 in y's dtype: a bare 1.0 is float64 (1/32 speed on T4)
    dx[i] = dy[i] * y[i] * (one - y[i])


def sigmoid_backward(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i])   (sigma' = sigma (1 - sigma), from the cached output)"""
    launch(_sigmoid_backward_kernel, y.shape[0], dy, y, dx)


# --- tanh ---------------------------------------------------------------------------------------

@cuda.jit
def _tanh_forward_kernel(x, y):
    """y[i] = tanh(x[i])        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    y[i] = math.tanh(x[i])


def tanh_forward(x, y):
    """y[i] = tanh(x[i])"""
    launch(_tanh_forward_kernel, x.shape[0], x, y)


@cuda.jit
def _tanh_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2)        one thread per i"""
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    one = y.dtype.type(1)           # 1 in y's dtype: a bare 1.0 is float64 (1/32 speed on T4)
    dx[i] = dy[i] * (one - y[i] * y[i])


def tanh_backward(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2)   (tanh' = 1 - tanh^2, from the cached output)"""
    launch(_tanh_backward_kernel, y.shape[0], dy, y, dx)


# --- PReLU: one learned slope w[c] per channel ---------------------------------------------------

@cuda.jit
def _prelu_forward_kernel(x, w, y):
    """y[n, c, s] = x[n, c, s] if x[n, c, s] > 0 else w[c] * x[n, c, s]        one thread per (n, c, s)"""
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = t // S % C
    s = t % S
    if x[n, c, s] > 0.0:
        y[n, c, s] = x[n, c, s]
    else:
        y[n, c, s] = w[c] * x[n, c, s]


def prelu_forward(x, w, y):
    """y[n, c, s] = x[n, c, s] if x[n, c, s] > 0 else w[c] * x[n, c, s]   (one thread per element)"""
    launch(_prelu_forward_kernel, y.size, x, w, y)


@cuda.jit
def _prelu_backward_dx_kernel(dy, x, w, dx):
    """dx[n, c, s] = dy[n, c, s] if x[n, c, s] > 0 else w[c] * dy[n, c, s]        one thread per (n, c, s)"""
    t = cuda.grid(1)
    N, C, S = x.shape
    if t >= N * C * S:
        return
    n = t // (C * S)
    c = t // S % C
    s = t % S
    if x[n, c, s] > 0.0:
        dx[n, c, s] = dy[n, c, s]
    else:
        dx[n, c, s] = w[c] * dy[n, c, s]


@cuda.jit
def _prelu_backward_dw_kernel(dy, x, dw):
    """dw[c] = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]        one block per channel c

    The block's THREADS threads (a power of 2) split the N * S terms of channel c: thread tid
    adds up the terms k = tid, tid + THREADS, ... (k = n * S + s), then the THREADS running sums
    are combined in shared memory by halving (``block_sum``: threads 0..h-1 add in the sums of
    threads h..2h-1, h = THREADS/2, ..., 1).  Summing in a tree, in x's dtype, keeps the rounding error
    to the log2(THREADS) levels plus one running sum of N * S / THREADS terms (a float64 running
    sum would be 1/32 speed on T4).
    """
    c = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N, C, S = x.shape
    sums = cuda.shared.array(THREADS, x.dtype)
    acc = x.dtype.type(0)
    for k in range(tid, N * S, THREADS):
        n = k // S
        s = k % S
        if x[n, c, s] <= 0.0:
            acc += dy[n, c, s] * x[n, c, s]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        dw[c] = total


def prelu_backward(dy, x, w, dx, dw):
    """dx[n, c, s] = dy[n, c, s] if x[n, c, s] > 0 else w[c] * dy[n, c, s]
    dw[c]        = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]

    Two kernels: one thread per element of dx; one block of THREADS threads per channel for the
    slope's sum (a tree reduction).
    """
    launch(_prelu_backward_dx_kernel, dx.size, dy, x, w, dx)
    if dw.size > 0:
        _prelu_backward_dw_kernel[dw.size, THREADS](dy, x, dw)


# --- maxout: y[n, k, s] = max_p x[n, k * pieces + p, s] ---------------------------------------------

@cuda.jit
def _maxout_forward_kernel(x, y, argmax, pieces):
    """y[n, k, s] = max_{p < pieces} x[n, k * pieces + p, s];  argmax[n, k, s] = the first such p

    one thread per (n, k, s); a NaN wins, as in np.max
    """
    t = cuda.grid(1)
    N, K, S = y.shape
    if t >= N * K * S:
        return
    n = t // (K * S)
    k = t // S % K
    s = t % S
    best = x[n, k * pieces, s]
    best_p = 0
    for p in range(1, pieces):
        v = x[n, k * pieces + p, s]
        if v > best or (math.isnan(v) and not math.isnan(best)):
            best = v
            best_p = p
    y[n, k, s] = best
    argmax[n, k, s] = best_p


def maxout_forward(x, y, argmax, pieces):
    """y[n, k, s] = max_{p < pieces} x[n, k * pieces + p, s];  argmax[n, k, s] = the winning p (first on ties)"""
    launch(_maxout_forward_kernel, y.size, x, y, argmax, pieces)


@cuda.jit
def _maxout_backward_kernel(dy, argmax, dx, pieces):
    """dx[n, k * pieces + p, s] = dy[n, k, s] if p == argmax[n, k, s] else 0        one thread per element of dx"""
    t = cuda.grid(1)
    N, KP, S = dx.shape
    if t >= N * KP * S:
        return
    n = t // (KP * S)
    channel = t // S % KP           # = k * pieces + p
    s = t % S
    k = channel // pieces
    p = channel % pieces
    if p == argmax[n, k, s]:
        dx[n, channel, s] = dy[n, k, s]
    else:
        dx[n, channel, s] = 0.0


def maxout_backward(dy, argmax, dx, pieces):
    """dx[n, k * pieces + p, s] = dy[n, k, s] if p == argmax[n, k, s] else 0   (one thread per element of dx)"""
    launch(_maxout_backward_kernel, dx.size, dy, argmax, dx, pieces)
