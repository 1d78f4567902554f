"""Softmax, log-softmax and the losses of the lecture: cross-entropy, MSE, MAE, BCE.

Shapes:
  softmax, log_softmax      x (R, C) -> out (R, C): one distribution per row.  The functional
                            layer moves the softmax axis last and flattens the other axes into R.
  cross_entropy             logits (N, C), target (N,) int64 class indices, probs (N, C) written
                            for the backward pass -> the mean loss, returned as a float.
  mse, mae, bce,            y, t (M,) (the functional layer flattens any shape) -> the mean
  bce_with_logits           loss over the M elements, returned as a float.

Every loss is a MEAN, so every backward divides by the count (N or M) and multiplies by the
upstream gradient ``dout``, a float (1.0 when the loss is the end of the graph).

Numerical stability: softmax and log-softmax subtract the row maximum before exp (it cancels
mathematically), so every exponent is <= 0 and exp cannot overflow; cross-entropy and
BCE-with-logits never take the log of a probability that may have rounded to 0.
"""

import math

import numpy as np
from numba import njit

BCE_LOG_CLAMP = -100.0   # BCE clamps log(p) and log(1 - p) at -100, as PyTorch does
BCE_GRAD_EPS = 1e-12     # and floors p (1 - p) at 1e-12 in the gradient, as PyTorch does


# ---------------------------------------------------------------- softmax

@njit(cache=True)
def softmax_forward(x, s):
    """s[r, c] = exp(x[r, c] - m_r) / sum_k exp(x[r, k] - m_r),   m_r = max_k x[r, k]"""
    R, C = x.shape
    for r in range(R):
        m = -np.inf
        for c in range(C):
            if x[r, c] > m:
                m = x[r, c]
        acc = 0.0
        for c in range(C):
            s[r, c] = math.exp(x[r, c] - m)
            acc += s[r, c]
        for c in range(C):
            s[r, c] = s[r, c] / acc


@njit(cache=True)
def softmax_backward(s, dout, dx):
    """dx[r, c] = s[r, c] * (dout[r, c] - sum_k dout[r, k] s[r, k])

    (the Jacobian ds_c/dx_k = s_c (delta_ck - s_k), applied to dout)
    """
    R, C = s.shape
    for r in range(R):
        acc = 0.0
        for k in range(C):
            acc += dout[r, k] * s[r, k]
        for c in range(C):
            dx[r, c] = s[r, c] * (dout[r, c] - acc)


# ---------------------------------------------------------------- log-softmax

@njit(cache=True)
def log_softmax_forward(x, out):
    """out[r, c] = (x[r, c] - m_r) - log(sum_k exp(x[r, k] - m_r)),   m_r = max_k x[r, k]"""
    R, C = x.shape
    for r in range(R):
        m = -np.inf
        for c in range(C):
            if x[r, c] > m:
                m = x[r, c]
        acc = 0.0
        for c in range(C):
            acc += math.exp(x[r, c] - m)
        log_acc = math.log(acc)
        for c in range(C):
            out[r, c] = (x[r, c] - m) - log_acc


@njit(cache=True)
def log_softmax_backward(out, dout, dx):
    """dx[r, c] = dout[r, c] - softmax[r, c] * sum_k dout[r, k],   softmax = exp(out)

    (d out_k / d x_c = delta_kc - softmax_c)
    """
    R, C = out.shape
    for r in range(R):
        acc = 0.0
        for k in range(C):
            acc += dout[r, k]
        for c in range(C):
            dx[r, c] = dout[r, c] - math.exp(out[r, c]) * acc


# ---------------------------------------------------------------- cross-entropy

@njit(cache=True)
def cross_entropy_forward(logits, target, probs):
    """L = 1/N sum_n -log softmax(logits[n])[target[n]]
         = 1/N sum_n (m_n + log sum_c exp(logits[n, c] - m_n) - logits[n, target[n]])

    The lecture's CrossEntropy = -sum_i t_i ln(y_i) with a one-hot t keeps only the target's term.
    Also writes probs[n, c] = softmax(logits[n])[c] for the backward pass.
    """
    N, C = logits.shape
    total = 0.0
    for n in range(N):
        m = -np.inf
        for c in range(C):
            if logits[n, c] > m:
                m = logits[n, c]
        acc = 0.0
        for c in range(C):
            probs[n, c] = math.exp(logits[n, c] - m)
            acc += probs[n, c]
        for c in range(C):
            probs[n, c] = probs[n, c] / acc
        total += (m - logits[n, target[n]]) + math.log(acc)
    return total / N


@njit(cache=True)
def cross_entropy_backward(probs, target, dout, dlogits):
    """dlogits[n, c] = (probs[n, c] - [c == target[n]]) / N * dout"""
    N, C = probs.shape
    for n in range(N):
        for c in range(C):
            onehot = 1.0 if c == target[n] else 0.0
            dlogits[n, c] = (probs[n, c] - onehot) / N * dout


# ---------------------------------------------------------------- MSE

@njit(cache=True)
def mse_forward(y, t):
    """L = 1/M sum_i (y[i] - t[i])^2"""
    M = y.shape[0]
    acc = 0.0
    for i in range(M):
        d = y[i] - t[i]
        acc += d * d
    return acc / M


@njit(cache=True)
def mse_backward(y, t, dout, dy):
    """dy[i] = 2 (y[i] - t[i]) / M * dout"""
    M = y.shape[0]
    for i in range(M):
        dy[i] = 2.0 * (y[i] - t[i]) / M * dout


# ---------------------------------------------------------------- MAE

@njit(cache=True)
def mae_forward(y, t):
    """L = 1/M sum_i |y[i] - t[i]|"""
    M = y.shape[0]
    acc = 0.0
    for i in range(M):
        acc += abs(y[i] - t[i])
    return acc / M


@njit(cache=True)
def mae_backward(y, t, dout, dy):
    """dy[i] = sign(y[i] - t[i]) / M * dout,   sign(0) = 0 (|.| has a kink there)"""
    M = y.shape[0]
    for i in range(M):
        dy[i] = np.sign(y[i] - t[i]) / M * dout


# ---------------------------------------------------------------- BCE on probabilities

@njit(cache=True)
def bce_forward(p, t):
    """L = 1/M sum_i -(t[i] log p[i] + (1 - t[i]) log(1 - p[i])),

    each log clamped below at -100 (as PyTorch does) so p = 0 or p = 1 give a finite loss.
    """
    M = p.shape[0]
    acc = 0.0
    for i in range(M):
        log_p = math.log(p[i])
        if log_p < BCE_LOG_CLAMP:
            log_p = BCE_LOG_CLAMP
        log_1mp = math.log(1.0 - p[i])
        if log_1mp < BCE_LOG_CLAMP:
            log_1mp = BCE_LOG_CLAMP
        acc += -(t[i] * log_p + (1.0 - t[i]) * log_1mp)
    return acc / M


@njit(cache=True)
def bce_backward(p, t, dout, dp):
    """dp[i] = (p[i] - t[i]) / max(p[i] (1 - p[i]), 1e-12) / M * dout

    (-t/p + (1 - t)/(1 - p) over a common denominator; the floor, as in PyTorch, keeps
    p = 0 or 1 finite)
    """
    M = p.shape[0]
    for i in range(M):
        denom = p[i] * (1.0 - p[i])
        if denom < BCE_GRAD_EPS:
            denom = BCE_GRAD_EPS
        dp[i] = (p[i] - t[i]) / denom / M * dout


# ---------------------------------------------------------------- BCE on logits

@njit(cache=True)
def bce_with_logits_forward(z, t):
    """L = 1/M sum_i max(z[i], 0) - z[i] t[i] + log(1 + exp(-|z[i]|))

    which equals BCE(sigmoid(z), t) but never overflows exp nor takes log(0).
    """
    M = z.shape[0]
    acc = 0.0
    for i in range(M):
        acc += max(z[i], 0.0) - z[i] * t[i] + math.log1p(math.exp(-abs(z[i])))
    return acc / M


@njit(cache=True)
def bce_with_logits_backward(z, t, dout, dz):
    """dz[i] = (sigmoid(z[i]) - t[i]) / M * dout

    sigmoid(z) = 1 / (1 + exp(-z)) for z >= 0 and exp(z) / (1 + exp(z)) for z < 0 (no overflow).
    """
    M = z.shape[0]
    for i in range(M):
        if z[i] >= 0:
            sig = 1.0 / (1.0 + math.exp(-z[i]))
        else:
            e = math.exp(z[i])
            sig = e / (1.0 + e)
        dz[i] = (sig - t[i]) / M * dout
