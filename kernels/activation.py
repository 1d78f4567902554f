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

import numpy as np
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
# they call the vectorizable exp, expm1, sigmoid and tanh of nbconv.kernels.vecmath instead of the
# C library's, in branch-free bodies (a select in place of if/else; error_model="numpy" drops the
# zero test of every division), so that the loop runs 8 (float64) or 16 (float32) elements per
# instruction with AVX-512, 4 or 8 with AVX2.  Their results differ from the naive loops' by at
# most 2 ulp (the accuracy of vecmath), not bit for bit; every special value (0, inf, NaN) comes
# out the same.
#
# Each is two functions: the loop over a stretch of elements (_*_span, serial), and the parallel
# twin, a prange over fixed spans of SPAN elements that calls it.  Why not one prange over the
# elements: Numba compiles the body of a prange loop into a function of its own whose loop LLVM
# vectorizes worse (the same sigmoid ran 1.4x slower on one thread than the serial loop); a call
# of a serial loop per span keeps the serial loop's vector code, and the threads take spans.

SPAN = 1 << 14          # elements per task: 64 KiB of float32, a share of L2 for x and y


@njit(cache=True, error_model="numpy")
def _elu_forward_span(x, y, alpha):
    """y[i] = x[i] if x[i] > 0 else alpha * expm1(x[i]), with vecmath's expm1, in x's type."""
    for i in range(x.shape[0]):
        a = vecmath.cast(alpha, x[i])          # a float32 x computes in float32 (twice the lanes)
        y[i] = x[i] if x[i] > 0.0 else a * vecmath.expm1(x[i])


@njit(cache=True, error_model="numpy")
def _elu_backward_span(dy, x, dx, alpha):
    """dx[i] = dy[i] if x[i] > 0 else dy[i] * alpha * exp(x[i]), with vecmath's exp, in x's type."""
    for i in range(x.shape[0]):
        a = vecmath.cast(alpha, x[i])
        dx[i] = dy[i] if x[i] > 0.0 else dy[i] * a * vecmath.exp(x[i])


@njit(cache=True, error_model="numpy")
def _sigmoid_forward_span(x, y):
    """y[i] = 1 / (1 + exp(-x[i])), with vecmath's sigmoid (the stable form of sigmoid_forward,
    written as one select)."""
    for i in range(x.shape[0]):
        y[i] = vecmath.sigmoid(x[i])


@njit(cache=True, error_model="numpy")
def _tanh_forward_span(x, y):
    """y[i] = tanh(x[i]), with vecmath's tanh."""
    for i in range(x.shape[0]):
        y[i] = vecmath.tanh(x[i])


@njit(cache=True, parallel=True)
def elu_forward_parallel(x, y, alpha):
    """_elu_forward_span on spans of SPAN elements, one task each."""
    L = x.shape[0]
    for t in prange((L + SPAN - 1) // SPAN):
        lo, hi = t * SPAN, min(L, (t + 1) * SPAN)
        _elu_forward_span(x[lo:hi], y[lo:hi], alpha)


@njit(cache=True, parallel=True)
def elu_backward_parallel(dy, x, dx, alpha):
    """_elu_backward_span on spans of SPAN elements, one task each."""
    L = x.shape[0]
    for t in prange((L + SPAN - 1) // SPAN):
        lo, hi = t * SPAN, min(L, (t + 1) * SPAN)
        _elu_backward_span(dy[lo:hi], x[lo:hi], dx[lo:hi], alpha)


@njit(cache=True, parallel=True)
def sigmoid_forward_parallel(x, y):
    """_sigmoid_forward_span on spans of SPAN elements, one task each."""
    L = x.shape[0]
    for t in prange((L + SPAN - 1) // SPAN):
        lo, hi = t * SPAN, min(L, (t + 1) * SPAN)
        _sigmoid_forward_span(x[lo:hi], y[lo:hi])


@njit(cache=True, parallel=True)
def tanh_forward_parallel(x, y):
    """_tanh_forward_span on spans of SPAN elements, one task each."""
    L = x.shape[0]
    for t in prange((L + SPAN - 1) // SPAN):
        lo, hi = t * SPAN, min(L, (t + 1) * SPAN)
        _tanh_forward_span(x[lo:hi], y[lo:hi])


@njit(cache=True, parallel=True)
def sigmoid_backward_parallel(dy, y, dx):
    """dx[i] = dy[i] * y[i] * (1 - y[i]), as sigmoid_backward."""
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * y[i] * (1.0 - y[i])


@njit(cache=True, parallel=True)
def tanh_backward_parallel(dy, y, dx):
    """dx[i] = dy[i] * (1 - y[i]^2), as tanh_backward."""
    for i in prange(y.shape[0]):
        dx[i] = dy[i] * (1.0 - y[i] * y[i])



# =================================================================================================
# Parallel twins of prelu and maxout.  Their naive loops above run on one core, one element at a
# time with a branch on its sign; the twins split the work into independent tasks that each own
# a piece of the output, walk it along the contiguous trailing axis S, and choose with a select
# instead of a branch, so that each thread's inner loop is a straight pass the compiler
# vectorizes (no mispredicted branches on random signs).  Every output element is computed by
# the same operations as in the naive loop (bit for bit), except prelu's dweight, a sum, which
# is added in another (fixed) order: see prelu_backward_parallel.
# =================================================================================================

# prelu's work is cut into pieces: a row (n, c) of x is one piece, or several of PRELU_BLOCK
# positions when it is longer (so that a single slope shared by the whole tensor, viewed as one
# row (1, 1, size), is split between the threads too); a task takes PRELU_BLOCK positions' worth
# of consecutive pieces (many short rows, such as the (N, C, 1) view of a 2-D x, in one task).
# The cut is fixed, not one per thread: the pieces, and so the order of dweight's sum, do not
# depend on the number of threads.
PRELU_BLOCK = 4096


@njit(cache=True)
def _prelu_pieces(N, C, S):
    """(B, R, tasks): B pieces per row, R consecutive pieces per task, the number of tasks."""
    B = (S + PRELU_BLOCK - 1) // PRELU_BLOCK
    R = max(1, PRELU_BLOCK // max(1, S))
    return B, R, (N * C * B + R - 1) // R


@njit(cache=True, parallel=True)
def prelu_forward_parallel(x, w, y):
    """y[n, c, s] = x[n, c, s] if x[n, c, s] > 0 else w[c] * x[n, c, s], as prelu_forward.

    Task t takes pieces t*R ... t*R + R - 1 (piece = (n*C + c)*B + b: row (n, c), block b),
    stepping (n, c, b) along as a counter instead of dividing at every piece."""
    N, C, S = x.shape
    B, R, tasks = _prelu_pieces(N, C, S)
    for task in prange(tasks):
        first = task * R
        n, c, b = first // (C * B), first // B % C, first % B
        for _ in range(min(R, N * C * B - first)):
            slope = w[c]
            for s in range(b * PRELU_BLOCK, min(S, (b + 1) * PRELU_BLOCK)):
                y[n, c, s] = x[n, c, s] if x[n, c, s] > 0.0 else slope * x[n, c, s]
            b += 1
            if b == B:                                   # next row: (n, c + 1), or (n + 1, 0)
                b, c = 0, c + 1
                if c == C:
                    c, n = 0, n + 1


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def prelu_backward_parallel(dy, x, w, dx, dw):
    """dx as prelu_backward; dw[c] = sum_{n, s : x[n, c, s] <= 0} dy[n, c, s] * x[n, c, s]
    in another order: one pass over the pieces (as prelu_forward_parallel) writes dx and each
    piece's share of the sum, partial[c, n*B + b]; then dw[c] adds channel c's shares in order.

    The naive loop reads x and dy twice (once for dx, once for dw); this reads them once.
    fastmath "reassoc" lets each piece's sum run in vector lanes (the select keeps NaN and inf
    out of the skipped terms exactly as the naive if does).  The pieces are fixed (PRELU_BLOCK),
    so the result does not depend on the number of threads; it agrees with the naive loop's
    to rounding (float64 accumulators in both)."""
    N, C, S = x.shape
    B, R, tasks = _prelu_pieces(N, C, S)
    partial = np.zeros((C, N * B))
    for task in prange(tasks):
        first = task * R
        n, c, b = first // (C * B), first // B % C, first % B
        for _ in range(min(R, N * C * B - first)):
            slope = w[c]
            acc = 0.0
            for s in range(b * PRELU_BLOCK, min(S, (b + 1) * PRELU_BLOCK)):
                dx[n, c, s] = dy[n, c, s] if x[n, c, s] > 0.0 else slope * dy[n, c, s]
                acc += dy[n, c, s] * x[n, c, s] if x[n, c, s] <= 0.0 else 0.0
            partial[c, n * B + b] = acc
            b += 1
            if b == B:
                b, c = 0, c + 1
                if c == C:
                    c, n = 0, n + 1
    for c in prange(C):
        acc = 0.0
        for j in range(N * B):
            acc += partial[c, j]
        dw[c] = acc


@njit(cache=True, parallel=True)
def maxout_forward_parallel(x, y, argmax, pieces):
    """y[n, k, s] = max_p x[n, k * pieces + p, s] and its first argmax, as maxout_forward.

    One task per sample n.  The loops are swapped to (k, p, s), so that the inner loop runs
    along the contiguous rows: y holds the running maximum, and piece p replaces it where it is
    larger (or a NaN over a number).  Each s sees the pieces in the same order, p = 0, 1, ...,
    with the same test as the naive loop: the same maximum, the same first argmax."""
    N, K, S = y.shape
    for n in prange(N):
        for k in range(K):
            for s in range(S):
                y[n, k, s] = x[n, k * pieces, s]
                argmax[n, k, s] = 0
            for p in range(1, pieces):
                for s in range(S):
                    v = x[n, k * pieces + p, s]
                    if v > y[n, k, s] or (math.isnan(v) and not math.isnan(y[n, k, s])):
                        y[n, k, s] = v
                        argmax[n, k, s] = p


@njit(cache=True, parallel=True)
def maxout_backward_parallel(dy, argmax, dx, pieces):
    """dx[n, k * pieces + p, s] = dy[n, k, s] if p == argmax[n, k, s] else 0, as maxout_backward,
    one task per sample n, along the contiguous rows."""
    N, K, S = dy.shape
    for n in prange(N):
        for k in range(K):
            for p in range(pieces):
                for s in range(S):
                    dx[n, k * pieces + p, s] = dy[n, k, s] if argmax[n, k, s] == p else 0.0
