"""Inverted dropout: draw the keep mask from a counter-based generator, apply it, rescale by 1 / (1 - p).

Shapes: x, keep, out (M,), flat (the functional layer flattens any shape); keep is a bool
array, True where the unit is kept; scale = 1 / (1 - p), p the probability of dropping
(0 when p = 1: every unit is dropped, and there is nothing to rescale).  Classic dropout
(nbconv.functional.dropout_forward's ``mode="classic"``) runs the same kernels with scale = 1.

The mask is drawn inside the forward kernel, element by element, by a counter-based generator:
element i's random 64-bit word is the i-th output of SplitMix64 started from the int ``seed``
(see ``_splitmix64``), a function of (seed, i) alone.  keep[i] = u_i >= p with u_i uniform in
[0, 1), decided in integers as (z_i >> 11) >= threshold, threshold = ceil(p * 2^53) computed once
by the caller (nbconv.functional.dropout).  So the same seed gives the same mask in both forms of
the kernel (the loop and its parallel twin), on any number of threads, and on the GPU
(nbconv.kernels.cuda.dropout draws the same words); the forward writes the mask into ``keep``
and the backward pass reuses exactly that mask.
"""

import numpy as np
from numba import njit, prange

# SplitMix64's constants (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
# OOPSLA 2014; Vigna's splitmix64.c; Java's SplittableRandom).  np.uint64 globals are frozen into
# the compiled code as uint64 constants: all the arithmetic below stays in wrapping uint64.
GAMMA = np.uint64(0x9E3779B97F4A7C15)     # the increment: 2^64 / golden ratio, odd
MIX1 = np.uint64(0xBF58476D1CE4E5B9)      # the finalizer's multipliers (Stafford's variant 13)
MIX2 = np.uint64(0x94D049BB133111EB)
ONE = np.uint64(1)
S11, S27, S30, S31 = np.uint64(11), np.uint64(27), np.uint64(30), np.uint64(31)


@njit(cache=True)
def _splitmix64_mix(z):
    """SplitMix64's output function: the state z mixed into a 64-bit word (uint64 in, uint64 out).

        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9    (mod 2^64)
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB    (mod 2^64)
        z = z ^ (z >> 31)

    (the form of MurmurHash3's 64-bit finalizer, with the shifts and multipliers of Stafford's
    "Mix13" variant): a bijection of the 64-bit words in which flipping one input bit flips
    about half of the output bits.
    """
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


@njit(cache=True)
def _splitmix64(seed, i):
    """z_i = the i-th output (i = 0, 1, ...) of SplitMix64 started from ``seed``, a uint64.

    SplitMix64 keeps a 64-bit state that starts at ``seed`` and advances by the constant
    GAMMA = 0x9E3779B97F4A7C15 at every draw; a draw outputs the new state passed through the
    mixing function ``_splitmix64_mix``.  After i + 1 draws the state is, in closed form,

        state_i = seed + (i + 1) * GAMMA    (mod 2^64),     z_i = _splitmix64_mix(state_i),

    so the i-th output is computed directly from (seed, i), without running the generator
    through draws 0 .. i - 1: the generator is counter-based.  That is why it suits a mask drawn
    in parallel: every element's draw is independent of the others', threads (and GPU threads)
    share no generator state and need no seeding per stream, and the mask depends on (seed, i)
    only, not on the thread count, the split into spans, or the device: the same seed gives the
    same mask everywhere.  For seed 0 the first outputs are 0xE220A8397B1DCDAF,
    0x6E789E6AA1B965F4, 0x06C45D188009454F (the reference test vector).

    u_i = (z_i >> 11) * 2^-53 is then uniform in [0, 1) on the 2^53 multiples of 2^-53 (the top
    53 bits of z_i, as many as a float64 mantissa holds).

    Numba promotes a mix of uint64 and int64 to float64, which would round the words: seed and
    i are cast to uint64 first and every constant is a uint64, so all of it is wrapping uint64
    arithmetic.
    """
    return _splitmix64_mix(np.uint64(seed) + (np.uint64(i) + ONE) * GAMMA)


@njit(cache=True)
def dropout_forward(x, seed, threshold, scale, keep, out):
    """keep[i] = (z_i >> 11) >= threshold,   z_i = _splitmix64(seed, i)
    out[i]  = x[i] * keep[i] * scale

    With u_i = (z_i >> 11) * 2^-53 uniform in [0, 1) and threshold = ceil(p * 2^53):
    (z_i >> 11) >= threshold  <=>  u_i >= p (an integer k is >= p * 2^53 iff it is >= its
    ceiling), so P(keep[i]) = 1 - threshold * 2^-53, which is 1 - p to within 2^-53: p = 0
    keeps every unit, p = 1 (threshold = 2^53) drops every one.  Decided in integers, with no
    conversion to float.
    """
    T = np.uint64(threshold)
    for i in range(x.shape[0]):
        k = (_splitmix64(seed, i) >> S11) >= T
        keep[i] = k
        out[i] = x[i] * k * scale


@njit(cache=True)
def dropout_backward(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale   (out is linear in x, with the same mask)"""
    M = dout.shape[0]
    for i in range(M):
        dx[i] = dout[i] * keep[i] * scale


# --- parallel twins: the same draw and product for every element, the elements split between the
# threads.  Bit for bit the loops' numbers: element i's draw depends on (seed, i) alone.
#
# The forward is two functions, as the exp-based twins of nbconv.kernels.activation: a serial
# loop over a stretch of elements (_dropout_forward_span, told the index lo of its first element),
# and a prange over fixed spans of SPAN elements that calls it.  A prange over the elements would
# compile the body into a function whose loop LLVM vectorizes worse; the serial loop keeps its
# vector code (4 draws at a time in 256-bit registers), and the threads take spans.  The span
# steps the generator's state by GAMMA from element to element, as SplitMix64 itself does, in
# place of the closed form's multiplication (one of three 64-bit multiplications, which AVX2
# lacks and builds from three 32-bit ones); it draws the span's mask in one loop and applies it in
# a second (the mask still in L1), which runs faster than the two interleaved.
# The backward only applies the stored mask: a memory-bound pass that a plain prange serves.

SPAN = 1 << 14          # elements per task: 64 KiB of float32 for x and out, 16 KiB of mask


@njit(cache=True)
def _dropout_forward_span(x, seed, threshold, scale, keep, out, lo):
    """dropout_forward on a stretch whose first element is element lo of the whole array:
    keep[j] = (_splitmix64(seed, lo + j) >> 11) >= threshold,  out[j] = x[j] * keep[j] * scale.

    The state of element lo + j is seed + (lo + j + 1) * GAMMA: computed for j = 0, then
    advanced by GAMMA (mod 2^64, the same words as the closed form's)."""
    T = np.uint64(threshold)
    state = np.uint64(seed) + (np.uint64(lo) + ONE) * GAMMA
    for j in range(x.shape[0]):
        keep[j] = (_splitmix64_mix(state) >> S11) >= T
        state += GAMMA
    for j in range(x.shape[0]):
        out[j] = x[j] * keep[j] * scale


@njit(cache=True, parallel=True)
def dropout_forward_parallel(x, seed, threshold, scale, keep, out):
    """dropout_forward on every core: _dropout_forward_span on spans of SPAN elements, one task each."""
    M = x.shape[0]
    for t in prange((M + SPAN - 1) // SPAN):
        lo, hi = t * SPAN, min(M, (t + 1) * SPAN)
        _dropout_forward_span(x[lo:hi], seed, threshold, scale, keep[lo:hi], out[lo:hi], lo)


@njit(cache=True, parallel=True)
def dropout_backward_parallel(dout, keep, scale, dx):
    """dx[i] = dout[i] * keep[i] * scale, as dropout_backward, on every core."""
    for i in prange(dout.shape[0]):
        dx[i] = dout[i] * keep[i] * scale
