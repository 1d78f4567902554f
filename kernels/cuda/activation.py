"""Activation functions on the GPU: the twin of nbconv.kernels.activation.

Elementwise ops (relu, leaky_relu, elu, sigmoid, tanh) take the flattened array: x (L,), y (L,),
one thread per element.  PReLU and maxout take the (N, C, S) view:

    prelu:  x (N, C, S), w (C,), y (N, C, S)
    maxout: x (N, K * pieces, S), y (N, K, S), argmax (N, K, S) int64 (the winning piece p)

At the kink x = 0 every op takes the branch of x <= 0, as the CPU kernels do.

Mapping: one thread per output element everywhere.  PReLU's slope gradient dw[c] sums over
every (n, s) of channel c: a reduction kernel with one thread per channel (float64 sum), no
atomics.  maxout's backward writes every element of dx: one thread per element of dx.
"""

import math

from numba import cuda, float64

from ._launch import launch


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
    launch(_leaky_relu_forward_kernel, x.shape[0], x, y, negative_slope)


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
    launch(_leaky_relu_backward_kernel, x.shape[0], dy, x, dx, negative_slope)


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
        y[i] = alpha * math.expm1(float64(x[i]))


def elu_forward(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * (exp(x[i]) - 1)   (exp(x) - 1 as expm1(x), in float64)"""
    launch(_elu_forward_kernel, x.shape[0], x, y, alpha)


@cuda.jit
def _elu_backward_kernel(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i])        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    if x[i] > 0.0:
        dx[i] = dy[i]
    else:
        dx[i] = dy[i] * alpha * math.exp(float64(x[i]))


def elu_backward(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i])"""
    launch(_elu_backward_kernel, x.shape[0], dy, x, dx, alpha)


# --- sigmoid(x) = 1 / (1 + exp(-x)) ---------------------------------------------------------------

@cuda.jit
def _sigmoid_forward_kernel(x, y):
    """y[i] = 1 / (1 + exp(-x[i])), in the form where exp only sees -|x|        one thread per i"""
    i = cuda.grid(1)
    if i >= x.shape[0]:
        return
    v = float64(x[i])
    if v >= 0.0:
        y[i] = 1.0 / (1.0 + math.exp(-v))
    else:
        e = math.exp(v)
        y[i] = e / (1.0 + e)


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
    dx[i] = dy[i] * y[i] * (1.0 - y[i])


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
    y[i] = math.tanh(float64(x[i]))


def tanh_forward(x, y):
    """y[i] = tanh(x[i])"""
    launch(_tanh_forward_kernel, x.shape[0], x, y)


@cuda.jit
def _tanh_backward_kernel(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2)        one thread per i"""
    i = cuda.grid(1)
    if i >= y.shape[0]:
        return
    dx[i] = dy[i] * (1.0 - y[i] * y[i])


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
    """dw[c] = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]        one thread per channel c"""
    c = cuda.grid(1)
    N, C, S = x.shape
    if c >= C:
        return
    acc = float64(0.0)
    for n in range(N):
        for s in range(S):
            if x[n, c, s] <= 0.0:
                acc += dy[n, c, s] * x[n, c, s]
    dw[c] = acc


def prelu_backward(dy, x, w, dx, dw):
    """dx[n, c, s] = dy[n, c, s] if x[n, c, s] > 0 else w[c] * dy[n, c, s]
    dw[c]        = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]

    Two kernels: one thread per element of dx; one thread per channel for the slope's sum.
    """
    launch(_prelu_backward_dx_kernel, dx.size, dy, x, w, dx)
    launch(_prelu_backward_dw_kernel, dw.size, dy, x, dw)


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
