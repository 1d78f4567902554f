"""Activation functions: the nonlinearity applied after a convolution or a dense layer.

Elementwise ops (relu, leaky_relu, elu, sigmoid, tanh) act on every element on its
own, so their kernels take the flattened array: x (L,), y (L,), with L the number
of elements of the tensor, whatever its rank.

PReLU and maxout need the channel structure; their kernels take x viewed as
(N, C, S), S the product of the trailing (spatial) axes:

    prelu:  x (N, C, S), w (C,), y (N, C, S)
    maxout: x (N, K * pieces, S), y (N, K, S), argmax (N, K, S) (the winning piece p)

Derivative at the kink x = 0: every op takes the branch of x <= 0 there (the
"negative" side), so relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha, as
PyTorch does; leaky_relu with slope 0 and elu with alpha 0 then equal relu in
the backward pass too.
"""

import math

from numba import njit, prange

from . import vecmath


# --- ReLU(x) = max(0, x) ------------------------------------------------------------------------

@njit(cache=True)
def relu_forward(x, y):
    """y[i] = max(0, x[i])

    Written with ``x <= 0`` so that a NaN falls through to ``y = x`` and propagates.
    """
    L = x.shape[0]
    for i in range(L):
        if x[i] <= 0.0:
            y[i] = 0.0
        else:
            y[i] = x[i]


@njit(cache=True)
def relu_backward(dy, x, dx):
    """dx[i] = dy[i] * [x[i] > 0]   (relu'(x) = 1 for x > 0, 0 for x <= 0)"""
    L = x.shape[0]
    for i in range(L):
        if x[i] > 0.0:
            dx[i] = dy[i]
        else:
            dx[i] = 0.0


# --- LeakyReLU(x) = x for x > 0, slope * x for x <= 0 --------------------------------------------

@njit(cache=True)
def leaky_relu_forward(x, y, negative_slope):
    """y[i] = x[i] if x[i] > 0 else negative_slope * x[i]"""
    L = x.shape[0]
    for i in range(L):
        if x[i] > 0.0:
            y[i] = x[i]
        else:
            y[i] = negative_slope * x[i]


@njit(cache=True)
def leaky_relu_backward(dy, x, dx, negative_slope):
    """dx[i] = dy[i] if x[i] > 0 else negative_slope * dy[i]"""
    L = x.shape[0]
    for i in range(L):
        if x[i] > 0.0:
            dx[i] = dy[i]
        else:
            dx[i] = negative_slope * dy[i]


# --- ELU(x) = x for x > 0, alpha * (exp(x) - 1) for x <= 0 ---------------------------------------

@njit(cache=True)
def elu_forward(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * (exp(x[i]) - 1)

    exp(x) - 1 is computed as expm1(x), which keeps its digits for x near 0.
    Only x <= 0 reaches exp, so it never overflows.
    """
    L = x.shape[0]
    for i in range(L):
        if x[i] > 0.0:
            y[i] = x[i]
        else:
            y[i] = alpha * math.expm1(x[i])


@njit(cache=True)
def elu_backward(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i])"""
    L = x.shape[0]
    for i in range(L):
        if x[i] > 0.0:
            dx[i] = dy[i]
        else:
            dx[i] = dy[i] * alpha * math.exp(x[i])


# --- sigmoid(x) = 1 / (1 + exp(-x)) ---------------------------------------------------------------

@njit(cache=True)
def sigmoid_forward(x, y):
    """y[i] = 1 / (1 + exp(-x[i]))

    Numerically stable form: exp only ever sees -|x|, so it cannot overflow:
        x >= 0:  y = 1 / (1 + exp(-x))
        x <  0:  y = exp(x) / (1 + exp(x))     (the same value, multiplied by exp(x) / exp(x))
    For x = 1000 this gives 1 / (1 + 0) = 1, for x = -1000 it gives 0 / (1 + 0) = 0.
    """
    L = x.shape[0]
    for i in range(L):
        if x[i] >= 0.0:
            y[i] = 1.0 / (1.0 + math.exp(-x[i]))
        else:
            e = math.exp(x[i])
            y[i] = e / (1.0 + e)


@njit(cache=True)
def sigmoid_backward(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i])   (sigma' = sigma (1 - sigma), from the cached output)"""
    L = y.shape[0]
    for i in range(L):
        dx[i] = dy[i] * y[i] * (1.0 - y[i])


# --- tanh(x) = 2 sigmoid(2x) - 1 -------------------------------------------------------------------

@njit(cache=True)
def tanh_forward(x, y):
    """y[i] = tanh(x[i])"""
    L = x.shape[0]
    for i in range(L):
        y[i] = math.tanh(x[i])


@njit(cache=True)
def tanh_backward(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2)   (tanh' = 1 - tanh^2, from the cached output)"""
    L = y.shape[0]
    for i in range(L):
        dx[i] = dy[i] * (1.0 - y[i] * y[i])


# --- PReLU(x) = x for x > 0, w[c] * x for x <= 0: one learned slope per channel c ------------------

@njit(cache=True)
def prelu_forward(x, w, y):
    """y[n, c, s] = x[n, c, s] if x[n, c, s] > 0 else w[c] * x[n, c, s]"""
    N, C, S = x.shape
    for n in range(N):
        for c in range(C):
            for s in range(S):
                if x[n, c, s] > 0.0:
                    y[n, c, s] = x[n, c, s]
                else:
                    y[n, c, s] = w[c] * x[n, c, s]


@njit(cache=True)
def prelu_backward(dy, x, w, dx, dw):
    """dx[n, c, s] = dy[n, c, s] if x[n, c, s] > 0 else w[c] * dy[n, c, s]
    dw[c]        = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]

    The slope w[c] is shared by every position of channel c, so its gradient is
    the sum over them (the fan-out rule).
    """
    N, C, S = x.shape
    for n in range(N):
        for c in range(C):
            for s in range(S):
                if x[n, c, s] > 0.0:
                    dx[n, c, s] = dy[n, c, s]
                else:
                    dx[n, c, s] = w[c] * dy[n, c, s]
    for c in range(C):
        acc = 0.0
        for n in range(N):
            for s in range(S):
                if x[n, c, s] <= 0.0:
                    acc += dy[n, c, s] * x[n, c, s]
        dw[c] = acc


# --- maxout: y[n, k, s] = max_p x[n, k * pieces + p, s] ---------------------------------------------

@njit(cache=True)
def maxout_forward(x, y, argmax, pieces):
    """y[n, k, s]      = max_{p < pieces} x[n, k * pieces + p, s]
    argmax[n, k, s] = the first p that attains the max (ties go to the lowest p)

    A NaN wins, as it does in np.max and np.argmax.
    """
    N, K, S = y.shape
    for n in range(N):
        for k in range(K):
            for s in range(S):
                best = x[n, k * pieces, s]
                best_p = 0
                for p in range(1, pieces):
                    v = x[n, k * pieces + p, s]
                    if v > best or (math.isnan(v) and not math.isnan(best)):
                        best = v
                        best_p = p
                y[n, k, s] = best
                argmax[n, k, s] = best_p


@njit(cache=True)
def maxout_backward(dy, argmax, dx, pieces):
    """dx[n, k * pieces + p, s] = dy[n, k, s] if p == argmax[n, k, s] else 0

    Only the winning piece influenced the output, so the whole gradient is routed to it.
    """
    N, K, S = dy.shape
    for n in range(N):
        for k in range(K):
            for p in range(pieces):
                for s in range(S):
                    if p == argmax[n, k, s]:
                        dx[n, k * pieces + p, s] = dy[n, k, s]
                    else:
                        dx[n, k * pieces + p, s] = 0.0


# =================================================================================================
# Parallel twins of the elementwise kernels: the same formula for every element, the elements
# split between the threads (prange).  relu's, leaky_relu's and the sigmoid and tanh backward
# compute every element exactly as their naive twins, bit for bit, on every core, which pays for
# these memory-bound ops.  The exp-based ones (elu, sigmoid and tanh forward, elu backward) also
# vectorize their exp: see the note above elu_forward_parallel.
# =================================================================================================

@njit(cache=True, parallel=True)
def relu_forward_parallel(x, y):
    """y[i] = max(0, x[i]), as relu_forward (NaN propagates)."""
    for i in prange(x.shape[0]):
        if x[i] <= 0.0:
            y[i] = 0.0
        else:
            y[i] = x[i]


@njit(cache=True, parallel=True)
def relu_backward_parallel(dy, x, dx):
    """dx[i] = dy[i] * [x[i] > 0], as relu_backward."""
    for i in prange(x.shape[0]):
        if x[i] > 0.0:
            dx[i] = dy[i]
        else:
            dx[i] = 0.0


@njit(cache=True, parallel=True)
def leaky_relu_forward_parallel(x, y, negative_slope):
    """y[i] = x[i] if x[i] > 0 else negative_slope * x[i], as leaky_relu_forward."""
    for i in prange(x.shape[0]):
        if x[i] > 0.0:
            y[i] = x[i]
        else:
            y[i] = negative_slope * x[i]


@njit(cache=True, parallel=True)
def leaky_relu_backward_parallel(dy, x, dx, negative_slope):
    """dx[i] = dy[i] if x[i] > 0 else negative_slope * dy[i], as leaky_relu_backward."""
    for i in prange(x.shape[0]):
        if x[i] > 0.0:
            dx[i] = dy[i]
        else:
            dx[i] = negative_slope * dy[i]


# The exp-based twins below are the fast forms of elu, sigmoid and tanh, and more than parallel:
# they call the vectorizable exp, expm1 and tanh of nbconv.kernels.vecmath instead of the C
# library's, in branch-free bodies (a select in place of if/else; error_model="numpy" drops the
# zero test of every division), so that each thread's loop runs 4 (float64) or 8 (float32)
# elements per instruction.  Their results differ from the naive loops' by at most 2 ulp (the
# accuracy of vecmath), not bit for bit; every special value (0, inf, NaN) comes out the same.

@njit(cache=True, parallel=True, error_model="numpy")
def elu_forward_parallel(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * expm1(x[i]), with vecmath's expm1."""
    for i in prange(x.shape[0]):
        y[i] = x[i] if x[i] > 0.0 else alpha * vecmath.expm1(x[i])


@njit(cache=True, parallel=True, error_model="numpy")
def elu_backward_parallel(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i]), with vecmath's exp."""
    for i in prange(x.shape[0]):
        dx[i] = dy[i] if x[i] > 0.0 else dy[i] * alpha * vecmath.exp(x[i])


@njit(cache=True, parallel=True, error_model="numpy")
def sigmoid_forward_parallel(x, y):
    """y[i] = 1 / (1 + exp(-x[i])) in the stable form of sigmoid_forward, written as one select:
    with e = exp(-|x|), y = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0."""
    for i in prange(x.shape[0]):
        e = vecmath.exp(-abs(x[i]))
        y[i] = (1.0 if x[i] >= 0.0 else e) / (1.0 + e)


@njit(cache=True, parallel=True)
def sigmoid_backward_parallel(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i]), as sigmoid_backward."""
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * y[i] * (1.0 - y[i])


@njit(cache=True, parallel=True, error_model="numpy")
def tanh_forward_parallel(x, y):
    """y[i] = tanh(x[i]), with vecmath's tanh."""
    for i in prange(x.shape[0]):
        y[i] = vecmath.tanh(x[i])


@njit(cache=True, parallel=True)
def tanh_backward_parallel(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2), as tanh_backward."""
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * (1.0 - y[i] * y[i])
