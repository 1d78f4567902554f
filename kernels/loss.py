"""Softmax, log-softmax and the losses of the lecture: cross-entropy, MSE, MAE, BCE.

Shapes:
  softmax, log_softmax      x (A, C, B) -> out (A, C, B): one distribution over c for every
                            (a, b).  The functional layer views an array of any shape so: C the
                            softmax axis, A the product of the axes before it, B of those after
                            (a reshape of the contiguous array, no copy; B = 1 for the last axis).
  cross_entropy             logits (N, C), target (N,) int64 class indices, probs (N, C) written
                            for the backward pass -> the mean loss, returned as a float.
  cross_entropy_soft        the same with probability targets: target (N, K) of logits' dtype
                            and shape (K = C classes), one distribution t[n] per sample.
  mse, mae, bce,            y, t (M,) (the functional layer flattens any shape) -> the mean
  bce_with_logits           loss over the M elements, returned as a float.

Every loss is a MEAN, so every backward divides by the count (N or M) and multiplies by the
upstream gradient ``dout``, a float (1.0 when the loss is the end of the graph).

Numerical stability: softmax and log-softmax subtract the maximum of the distribution before
exp (it cancels mathematically), so every exponent is <= 0 and exp cannot overflow;
cross-entropy and BCE-with-logits never take the log of a probability that may have rounded to 0.

Every op comes twice: first its naive loop nest, the formula written as loops; then, in the
second half of the module, its fast form ``<name>_fast`` (vectorized, on every core; the note
above them says how), which nbconv.functional runs for method="fast".
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from . import vecmath

BCE_LOG_CLAMP = -100.0   # BCE clamps log(p) and log(1 - p) at -100, as PyTorch does
BCE_GRAD_EPS = 1e-12     # and floors p (1 - p) at 1e-12 in the gradient, as PyTorch does


# ---------------------------------------------------------------- softmax

@njit(cache=True)
def softmax_forward(x, s):
    """s[a, c, b] = exp(x[a, c, b] - m[a, b]) / sum_k exp(x[a, k, b] - m[a, b]),
    m[a, b] = max_k x[a, k, b]"""
    A, C, B = x.shape
    for a in range(A):
        for b in range(B):
            m = -np.inf
            for c in range(C):
                if x[a, c, b] > m:
                    m = x[a, c, b]
            acc = 0.0
            for c in range(C):
                s[a, c, b] = math.exp(x[a, c, b] - m)
                acc += s[a, c, b]
            for c in range(C):
                s[a, c, b] = s[a, c, b] / acc


@njit(cache=True)
def softmax_backward(s, dout, dx):
    """dx[a, c, b] = s[a, c, b] * (dout[a, c, b] - sum_k dout[a, k, b] s[a, k, b])

    (the Jacobian ds_c/dx_k = s_c (delta_ck - s_k), applied to dout)
    """
    A, C, B = s.shape
    for a in range(A):
        for b in range(B):
            acc = 0.0
            for k in range(C):
                acc += dout[a, k, b] * s[a, k, b]
            for c in range(C):
                dx[a, c, b] = s[a, c, b] * (dout[a, c, b] - acc)


# ---------------------------------------------------------------- log-softmax

@njit(cache=True)
def log_softmax_forward(x, out):
    """out[a, c, b] = (x[a, c, b] - m[a, b]) - log(sum_k exp(x[a, k, b] - m[a, b])),
    m[a, b] = max_k x[a, k, b]"""
    A, C, B = x.shape
    for a in range(A):
        for b in range(B):
            m = -np.inf
            for c in range(C):
                if x[a, c, b] > m:
                    m = x[a, c, b]
            acc = 0.0
            for c in range(C):
                acc += math.exp(x[a, c, b] - m)
            log_acc = math.log(acc)
            for c in range(C):
                out[a, c, b] = (x[a, c, b] - m) - log_acc


@njit(cache=True)
def log_softmax_backward(out, dout, dx):
    """dx[a, c, b] = dout[a, c, b] - softmax[a, c, b] * sum_k dout[a, k, b],   softmax = exp(out)

    (d out_k / d x_c = delta_kc - softmax_c)
    """
    A, C, B = out.shape
    for a in range(A):
        for b in range(B):
            acc = 0.0
            for k in range(C):
                acc += dout[a, k, b]
            for c in range(C):
                dx[a, c, b] = dout[a, c, b] - math.exp(out[a, c, b]) * acc


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


@njit(cache=True)
def cross_entropy_soft_forward(logits, target, probs):
    """L = -1/N sum_n sum_k t[n, k] ln softmax(logits[n])[k],     t = target (N, K)

    The lecture's CrossEntropy = -sum_i t_i ln(y_i), y = softmax(logits[n]), with a whole
    distribution t[n] per sample (soft labels, label smoothing), averaged over the batch like
    cross_entropy_forward; a one-hot t[n] keeps only the target's term, which is that kernel's
    loss.  ln y is taken as a stable log-softmax, never the log of a probability that rounded to 0:

        ln softmax(logits[n])[k] = (logits[n, k] - m_n) - ln Z_n,
        m_n = max_k logits[n, k],   Z_n = sum_k exp(logits[n, k] - m_n)

    Also writes probs[n, k] = softmax(logits[n])[k] for the backward pass.
    """
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        m = -np.inf
        for k in range(K):
            if logits[n, k] > m:
                m = logits[n, k]
        Z = 0.0
        for k in range(K):
            probs[n, k] = math.exp(logits[n, k] - m)
            Z += probs[n, k]
        for k in range(K):
            probs[n, k] = probs[n, k] / Z
        log_Z = math.log(Z)
        for k in range(K):
            log_y = (logits[n, k] - m) - log_Z          # ln softmax(logits[n])[k]
            total -= target[n, k] * log_y
    return total / N


@njit(cache=True)
def cross_entropy_soft_backward(probs, target, dout, dlogits):
    """dlogits[n, k] = (probs[n, k] * T_n - t[n, k]) / N * dout,   T_n = sum_j t[n, j]

    From L_n = -sum_j t[n, j] (logits[n, j] - ln sum_i exp(logits[n, i])):
    dL_n/dlogits[n, k] = -t[n, k] + (sum_j t[n, j]) softmax(logits[n])[k].  For a probability
    vector t[n] (T_n = 1) this is probs - t, the class-index kernel's probs - onehot.
    """
    N, K = probs.shape
    for n in range(N):
        T = 0.0
        for k in range(K):
            T += target[n, k]
        for k in range(K):
            dlogits[n, k] = (probs[n, k] * T - target[n, k]) / N * dout


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


# =================================================================================================
# The fast forms: the same formulas, arranged so that LLVM vectorizes them and numba.prange
# splits them between the threads.
#
# * exp and log are vecmath's (branch-free, inlined: 4 float64 or 8 float32 per instruction)
#   instead of the C library's, one element at a time; within 2 ulp of it.
# * softmax over the (A, C, B) view, B = 1: every distribution is a contiguous row; a task takes
#   whole rows and makes one vectorized pass per step (the max, exp into the output, the sum,
#   the scaling), the row staying in L1 between them.  The row's maximum uses LLVM's
#   llvm.maximum (_maximum): a running max written as compare-and-select does not vectorize.
# * B > 1: the C values of one (a, b) are B apart in memory.  Rather than stride through them, a
#   task takes a tile of neighbouring b, b0 <= b < b1, and walks c outermost, keeping one running
#   maximum and one running sum per b in a buffer: every innermost loop runs over b, contiguous,
#   and vectorizes (one small helper per loop: LLVM keeps vecmath's constants in registers there).
#   The tile, C x (b1 - b0) elements, is sized to stay in L2 between the passes.  The sums add
#   the terms in the naive loop's order, c = 0, 1, ...
# * the sums along a contiguous row (vecmath.vsum, _dot) let LLVM reassociate (fastmath "reassoc"): it
#   keeps several vector lanes of running sums and adds them at the end.  That order is fixed by
#   the compiled code, not by the data or the threads; the sum is in float64, as in the naive
#   loops, and differs from their sequential order by rounding only.
# * the factors of a distribution (1 / Z, log Z, the sum of dout for log-softmax) are rounded to
#   x's dtype before the loops over its elements use them, so those loops run in float32 for
#   float32 data (8 per instruction, not 4 converted to float64): one more rounding, within an ulp.
# * the losses' sums over M elements: fixed chunks of CHUNK elements, each summed by one task
#   (prange over the chunks), then the partial sums added in chunk order.
# * so every output element, and every sum, is computed by the same code in the same order
#   whichever thread runs it: the results do not depend on the number of threads.
# =================================================================================================

TILE = 1 << 16    # elements of a softmax tile (B > 1): 256 KB of float32, within L2
MIN_TILE_B = 64   # but at least 64 b per tile (long enough vector loops)
CHUNK = 1 << 13   # elements per partial sum of the mean losses


@njit(cache=True, fastmath={"reassoc"})
def _dot(u, v):
    """sum_i u[i] v[i] in float64, in the order LLVM picks to vectorize it (see above)."""
    acc = 0.0
    for i in range(u.shape[0]):
        acc += u[i] * v[i]
    return acc


@njit(cache=True)
def _sum_in_order(v):
    """v[0] + v[1] + ... in this order: the partial sums of the chunks."""
    acc = 0.0
    for i in range(v.shape[0]):
        acc += v[i]
    return acc


@intrinsic
def _maximum(typingctx, a, b):
    """max(a, b) as LLVM's llvm.maximum: NaN if either is NaN.  A running maximum of it
    vectorizes: it is associative, NaN or not, so LLVM may split it into vector lanes.  Written
    as ``v if v > m else m`` it does not: with a NaN the result would depend on the order."""
    if a not in (types.float32, types.float64) or b != a:
        return None

    def codegen(context, builder, signature, args):
        t = context.get_value_type(a)
        f = builder.module.declare_intrinsic("llvm.maximum", [t], ir.FunctionType(t, [t, t]))
        return builder.call(f, args)

    return a(a, b), codegen


@njit(cache=True)
def _max(v):
    """max_i v[i] for a non-empty v, in v's dtype (NaN if one is NaN)."""
    m = v[0]
    for i in range(1, v.shape[0]):
        m = _maximum(m, v[i])
    return m


@njit(cache=True)
def _chunk(k, M):
    """The elements [lo, hi) of chunk k of M."""
    lo = k * CHUNK
    return lo, min(lo + CHUNK, M)


# ---------------------------------------------------------------- softmax and log-softmax, fast: rows (B = 1)

@njit(cache=True, error_model="numpy")
def _exp_minus_scalar(v, m, out):
    """out[c] = exp(v[c] - m)"""
    for c in range(v.shape[0]):
        out[c] = vecmath.exp(v[c] - m)


@njit(cache=True, error_model="numpy")
def _softmax_row(x, s):
    """s = softmax(x) for one contiguous, non-empty row; returns (m, Z): the row's maximum and
    sum_c exp(x[c] - m).  The scaling by 1 / Z runs in x's dtype (8 float32 per instruction)."""
    m = _max(x)
    _exp_minus_scalar(x, m, s)
    Z = vecmath.vsum(s)
    inv = x.dtype.type(1.0 / Z)
    for c in range(x.shape[0]):
        s[c] = s[c] * inv
    return m, Z


@njit(cache=True, parallel=True)
def _softmax_rows(x, s):
    for a in prange(x.shape[0]):
        _softmax_row(x[a], s[a])


@njit(cache=True, parallel=True, error_model="numpy")
def _softmax_backward_rows(s, dout, dx):
    for a in prange(s.shape[0]):
        d = _dot(dout[a], s[a])
        for c in range(s.shape[1]):
            dx[a, c] = s[a, c] * (dout[a, c] - d)


@njit(cache=True, parallel=True, error_model="numpy")
def _log_softmax_rows(x, out):
    """exp(x - m) goes into the output row to be summed, then is overwritten."""
    for a in prange(x.shape[0]):
        row, o = x[a], out[a]
        m = _max(row)
        _exp_minus_scalar(row, m, o)
        log_Z = x.dtype.type(math.log(vecmath.vsum(o)))
        for c in range(row.shape[0]):
            o[c] = (row[c] - m) - log_Z


@njit(cache=True, parallel=True, error_model="numpy")
def _log_softmax_backward_rows(out, dout, dx):
    for a in prange(out.shape[0]):
        total = out.dtype.type(vecmath.vsum(dout[a]))
        for c in range(out.shape[1]):
            dx[a, c] = dout[a, c] - vecmath.exp(out[a, c]) * total


# ---------------------------------------------------------------- softmax and log-softmax, fast: tiles (B > 1)
# One loop over j per helper; v, out, m, acc, ... are the rows x[a, c, b0:b1] of a tile and its
# per-b buffers.

@njit(cache=True)
def _running_max(v, m, out):
    """out[j] = max(m[j], v[j]), out not m: written in place, m[j] = (v[j] if v[j] > m[j] else
    m[j]) becomes a masked store (store v[j] where it is larger), which AMD's CPUs run 5x slower
    than a plain store of the maximum."""
    for j in range(v.shape[0]):
        out[j] = v[j] if v[j] > m[j] else m[j]


@njit(cache=True, error_model="numpy")
def _exp_minus(v, m, out):
    """out[j] = exp(v[j] - m[j])"""
    for j in range(v.shape[0]):
        out[j] = vecmath.exp(v[j] - m[j])


@njit(cache=True)
def _accumulate(v, acc):
    """acc[j] += v[j]"""
    for j in range(v.shape[0]):
        acc[j] += v[j]


@njit(cache=True)
def _accumulate_product(u, v, acc):
    """acc[j] += u[j] v[j]"""
    for j in range(u.shape[0]):
        acc[j] += u[j] * v[j]


@njit(cache=True)
def _scale(v, f):
    """v[j] = v[j] f[j]"""
    for j in range(v.shape[0]):
        v[j] = v[j] * f[j]


@njit(cache=True)
def _shift(v, m, log_Z, out):
    """out[j] = (v[j] - m[j]) - log_Z[j]: log-softmax"""
    for j in range(v.shape[0]):
        out[j] = (v[j] - m[j]) - log_Z[j]


@njit(cache=True)
def _softmax_grad(s, g, d, dx):
    """dx[j] = s[j] (g[j] - d[j])"""
    for j in range(s.shape[0]):
        dx[j] = s[j] * (g[j] - d[j])


@njit(cache=True, error_model="numpy")
def _log_softmax_grad(o, g, total, dx):
    """dx[j] = g[j] - exp(o[j]) total[j]"""
    for j in range(o.shape[0]):
        dx[j] = g[j] - vecmath.exp(o[j]) * total[j]


@njit(cache=True)
def _tile_width(C, B):
    """b per tile: TILE // C, at least MIN_TILE_B, at most B."""
    return min(B, max(MIN_TILE_B, TILE // max(C, 1)))


@njit(cache=True)
def _tile(task, tiles, bt, B):
    """Task -> (a, b0, b1): its a and its b0 <= b < b1, ``tiles`` tiles of bt per a."""
    a = task // tiles
    b0 = (task % tiles) * bt
    return a, b0, min(b0 + bt, B)


@njit(cache=True)
def _max_over_c(x, a, b0, b1):
    """m[j] = max_c x[a, c, b0 + j], the running maximum kept in two buffers in turn."""
    m = x[a, 0, b0:b1].copy()
    other = np.empty_like(m)
    for c in range(1, x.shape[1]):
        _running_max(x[a, c, b0:b1], m, other)
        m, other = other, m
    return m


@njit(cache=True, parallel=True)
def _softmax_tiles(x, s, bt):
    A, C, B = x.shape
    tiles = (B + bt - 1) // bt
    for task in prange(A * tiles):
        a, b0, b1 = _tile(task, tiles, bt, B)
        m = _max_over_c(x, a, b0, b1)
        Z = np.zeros(b1 - b0)                    # Z[j] = sum_c exp(x[a, c, b0 + j] - m[j])
        for c in range(C):
            _exp_minus(x[a, c, b0:b1], m, s[a, c, b0:b1])
            _accumulate(s[a, c, b0:b1], Z)
        inv = (1.0 / Z).astype(x.dtype)
        for c in range(C):
            _scale(s[a, c, b0:b1], inv)


@njit(cache=True, parallel=True)
def _softmax_backward_tiles(s, dout, dx, bt):
    A, C, B = s.shape
    tiles = (B + bt - 1) // bt
    for task in prange(A * tiles):
        a, b0, b1 = _tile(task, tiles, bt, B)
        d = np.zeros(b1 - b0)                    # d[j] = sum_c dout[a, c, b0 + j] s[a, c, b0 + j]
        for c in range(C):
            _accumulate_product(dout[a, c, b0:b1], s[a, c, b0:b1], d)
        for c in range(C):
            _softmax_grad(s[a, c, b0:b1], dout[a, c, b0:b1], d, dx[a, c, b0:b1])


@njit(cache=True, parallel=True)
def _log_softmax_tiles(x, out, bt):
    A, C, B = x.shape
    tiles = (B + bt - 1) // bt
    for task in prange(A * tiles):
        a, b0, b1 = _tile(task, tiles, bt, B)
        m = _max_over_c(x, a, b0, b1)
        Z = np.zeros(b1 - b0)
        for c in range(C):
            _exp_minus(x[a, c, b0:b1], m, out[a, c, b0:b1])     # scratch, overwritten below
            _accumulate(out[a, c, b0:b1], Z)
        log_Z = np.log(Z).astype(x.dtype)
        for c in range(C):
            _shift(x[a, c, b0:b1], m, log_Z, out[a, c, b0:b1])


@njit(cache=True, parallel=True)
def _log_softmax_backward_tiles(out, dout, dx, bt):
    A, C, B = out.shape
    tiles = (B + bt - 1) // bt
    for task in prange(A * tiles):
        a, b0, b1 = _tile(task, tiles, bt, B)
        total = np.zeros(b1 - b0)                # total[j] = sum_c dout[a, c, b0 + j]
        for c in range(C):
            _accumulate(dout[a, c, b0:b1], total)
        total = total.astype(out.dtype)
        for c in range(C):
            _log_softmax_grad(out[a, c, b0:b1], dout[a, c, b0:b1], total, dx[a, c, b0:b1])


# ---------------------------------------------------------------- softmax and log-softmax, fast: the entry points

@njit(cache=True)
def softmax_forward_fast(x, s):
    """softmax_forward's numbers to a few ulp (vecmath's exp, the sum's order), vectorized, on
    every core."""
    A, C, B = x.shape
    if A * C * B == 0:
        return
    if B == 1:
        _softmax_rows(x.reshape(A, C), s.reshape(A, C))
    else:
        _softmax_tiles(x, s, _tile_width(C, B))


@njit(cache=True)
def softmax_backward_fast(s, dout, dx):
    """softmax_backward's numbers (bit for bit when B > 1, to rounding when B = 1), vectorized,
    on every core."""
    A, C, B = s.shape
    if A * C * B == 0:
        return
    if B == 1:
        _softmax_backward_rows(s.reshape(A, C), dout.reshape(A, C), dx.reshape(A, C))
    else:
        _softmax_backward_tiles(s, dout, dx, _tile_width(C, B))


@njit(cache=True)
def log_softmax_forward_fast(x, out):
    """log_softmax_forward's numbers to a few ulp (vecmath's exp, the sum's order), vectorized, on
    every core."""
    A, C, B = x.shape
    if A * C * B == 0:
        return
    if B == 1:
        _log_softmax_rows(x.reshape(A, C), out.reshape(A, C))
    else:
        _log_softmax_tiles(x, out, _tile_width(C, B))


@njit(cache=True)
def log_softmax_backward_fast(out, dout, dx):
    """log_softmax_backward's numbers to a few ulp (vecmath's exp), vectorized, on every core."""
    A, C, B = out.shape
    if A * C * B == 0:
        return
    if B == 1:
        _log_softmax_backward_rows(out.reshape(A, C), dout.reshape(A, C), dx.reshape(A, C))
    else:
        _log_softmax_backward_tiles(out, dout, dx, _tile_width(C, B))


# ---------------------------------------------------------------- cross-entropy, fast

@njit(cache=True, parallel=True, error_model="numpy")
def cross_entropy_forward_fast(logits, target, probs):
    """cross_entropy_forward with the rows of _softmax_row split between the threads; each row's
    loss term goes to terms[n], added in row order at the end."""
    N, C = logits.shape
    terms = np.empty(N)
    for n in prange(N):
        m, Z = _softmax_row(logits[n], probs[n])
        terms[n] = (np.float64(m) - logits[n, target[n]]) + math.log(Z)
    return _sum_in_order(terms) / N


@njit(cache=True, parallel=True)
def cross_entropy_backward_fast(probs, target, dout, dlogits):
    """cross_entropy_backward, bit for bit, the rows split between the threads (the one-hot is a
    select on c, so the loop over c vectorizes)."""
    N, C = probs.shape
    for n in prange(N):
        for c in range(C):
            onehot = 1.0 if c == target[n] else 0.0
            dlogits[n, c] = (probs[n, c] - onehot) / N * dout


@njit(cache=True, fastmath={"reassoc"})
def _soft_target_sums(z, t, m):
    """(sum_k t[k], sum_k t[k] (z[k] - m)) in float64, in the order LLVM picks to vectorize them
    (see _dot)."""
    T = 0.0
    tz = 0.0
    for k in range(z.shape[0]):
        T += t[k]
        tz += t[k] * (np.float64(z[k]) - m)
    return T, tz


@njit(cache=True, parallel=True, error_model="numpy")
def cross_entropy_soft_forward_fast(logits, target, probs):
    """cross_entropy_soft_forward with the rows of _softmax_row split between the threads; row n's
    term, -sum_k t[k] ((z[k] - m) - ln Z) = T ln Z - sum_k t[k] (z[k] - m) with T = sum_k t[k],
    goes to terms[n], added in row order at the end."""
    N, K = logits.shape
    terms = np.empty(N)
    for n in prange(N):
        m, Z = _softmax_row(logits[n], probs[n])
        T, tz = _soft_target_sums(logits[n], target[n], np.float64(m))
        terms[n] = T * math.log(Z) - tz
    return _sum_in_order(terms) / N


@njit(cache=True, parallel=True)
def cross_entropy_soft_backward_fast(probs, target, dout, dlogits):
    """cross_entropy_soft_backward, bit for bit, the rows split between the threads (T_n summed in
    the loop's order; the loop over k vectorizes)."""
    N, K = probs.shape
    for n in prange(N):
        T = 0.0
        for k in range(K):
            T += target[n, k]
        for k in range(K):
            dlogits[n, k] = (probs[n, k] * T - target[n, k]) / N * dout


# ---------------------------------------------------------------- MSE, MAE, fast

@njit(cache=True, fastmath={"reassoc"})
def _sum_of_differences(y, t, squared):
    """sum_i (y[i] - t[i])^2 if ``squared``, else sum_i |y[i] - t[i]|: the case chosen once,
    outside the loops, so that each loop vectorizes."""
    acc = 0.0
    if squared:
        for i in range(y.shape[0]):
            d = y[i] - t[i]
            acc += d * d
    else:
        for i in range(y.shape[0]):
            acc += abs(y[i] - t[i])
    return acc


@njit(cache=True, parallel=True)
def _mean_of_differences(y, t, squared):
    """The mean of (y - t)^2 or |y - t|: chunks of CHUNK elements summed in parallel, the
    partial sums added in order."""
    M = y.shape[0]
    partial = np.empty((M + CHUNK - 1) // CHUNK)
    for k in prange(partial.shape[0]):
        lo, hi = _chunk(k, M)
        partial[k] = _sum_of_differences(y[lo:hi], t[lo:hi], squared)
    return _sum_in_order(partial) / M


@njit(cache=True)
def mse_forward_fast(y, t):
    """mse_forward: the mean of the squared differences, chunks summed in parallel."""
    return _mean_of_differences(y, t, True)


@njit(cache=True, parallel=True)
def mse_backward_fast(y, t, dout, dy):
    """mse_backward, bit for bit, on every core."""
    M = y.shape[0]
    for i in prange(M):
        dy[i] = 2.0 * (y[i] - t[i]) / M * dout


@njit(cache=True)
def mae_forward_fast(y, t):
    """mae_forward: the mean of the absolute differences, chunks summed in parallel."""
    return _mean_of_differences(y, t, False)


@njit(cache=True, parallel=True)
def mae_backward_fast(y, t, dout, dy):
    """mae_backward, bit for bit, on every core."""
    M = y.shape[0]
    for i in prange(M):
        dy[i] = np.sign(y[i] - t[i]) / M * dout


# ---------------------------------------------------------------- BCE, fast

@njit(cache=True, parallel=True, error_model="numpy")
def bce_forward_fast(p, t):
    """bce_forward with vecmath's log, each term in p's dtype: per chunk, the terms into a buffer
    (a vectorized loop), then their sum in float64; the chunks in parallel, their sums added in
    order.  (The terms, -t log p and -(1 - t) log(1 - p), are both >= 0: no cancellation.)"""
    M = p.shape[0]
    one = p.dtype.type(1.0)                           # 1 and the clamp in p's dtype: float32 stays
    clamp = one * BCE_LOG_CLAMP                       # float32, 8 elements per instruction
    partial = np.empty((M + CHUNK - 1) // CHUNK)
    for k in prange(partial.shape[0]):
        lo, hi = _chunk(k, M)
        terms = np.empty(hi - lo, p.dtype)
        for i in range(lo, hi):
            log_p = vecmath.log(p[i])
            log_p = clamp if log_p < clamp else log_p
            log_1mp = vecmath.log(one - p[i])
            log_1mp = clamp if log_1mp < clamp else log_1mp
            terms[i - lo] = -(t[i] * log_p + (one - t[i]) * log_1mp)
        partial[k] = vecmath.vsum(terms)
    return _sum_in_order(partial) / M


@njit(cache=True, parallel=True, error_model="numpy")
def bce_backward_fast(p, t, dout, dp):
    """bce_backward, bit for bit, on every core (the floor is a select)."""
    M = p.shape[0]
    for i in prange(M):
        denom = p[i] * (1.0 - p[i])
        denom = BCE_GRAD_EPS if denom < BCE_GRAD_EPS else denom
        dp[i] = (p[i] - t[i]) / denom / M * dout


@njit(cache=True, parallel=True, error_model="numpy")
def bce_with_logits_forward_fast(z, t):
    """bce_with_logits_forward with vecmath's exp and log, each term in z's dtype, summed as in
    bce_forward_fast.  vecmath has no log1p: log(1 + e) is computed as log(u) - ((u - 1) - e) / u
    with u = 1 + e rounded, which corrects the rounding of u (exact to a few ulp, and e itself
    when u rounds to 1)."""
    M = z.shape[0]
    one = z.dtype.type(1.0)
    zero = one - one
    partial = np.empty((M + CHUNK - 1) // CHUNK)
    for k in prange(partial.shape[0]):
        lo, hi = _chunk(k, M)
        terms = np.empty(hi - lo, z.dtype)
        for i in range(lo, hi):
            e = vecmath.exp(-abs(z[i]))
            u = one + e
            log1p_e = vecmath.log(u) - ((u - one) - e) / u
            relu = z[i] if z[i] > zero else zero
            terms[i - lo] = (relu - z[i] * t[i]) + log1p_e
        partial[k] = vecmath.vsum(terms)
    return _sum_in_order(partial) / M


@njit(cache=True, parallel=True, error_model="numpy")
def bce_with_logits_backward_fast(z, t, dout, dz):
    """bce_with_logits_backward with vecmath's sigmoid (the stable form, one select), on every core."""
    M = z.shape[0]
    for i in prange(M):
        dz[i] = (vecmath.sigmoid(z[i]) - t[i]) / M * dout
