"""exp, expm1, log, tanh and a sum that vectorize: range reduction, a polynomial and bit tricks.

Why
---
Numba compiles ``math.exp(x)`` (and ``np.exp``, ``math.log``, ``math.tanh``) to a call into the
C library, one element at a time.  LLVM cannot vectorize a loop around such a call (it could
with Intel's SVML library, which is usually absent), so an elementwise sigmoid, tanh, elu or
softmax runs at a few percent of the memory bandwidth.  The functions here use nothing but
+ - * /, comparisons and integer operations on the bit patterns of floats, so once they are
inlined, a loop such as

    for i in range(n):
        out[i] = exp(x[i])

becomes vector code: 8 float32 or 4 float64 lanes per instruction with AVX2.

Use them as the ``math`` functions inside any ``@njit`` kernel.  For the loop to vectorize, the
kernel's own code must be free of branches and calls too: write choices as selects, and
compile with ``error_model="numpy"`` if it divides (the default tests every divisor for zero
to raise ZeroDivisionError, a branch).  An ELU that vectorizes:

    from nbconv.kernels import vecmath

    @njit(cache=True, error_model="numpy")
    def elu(x, y, alpha):
        for i in range(x.shape[0]):
            a = vecmath.cast(alpha, x[i])                      # alpha in x's float type
            y[i] = x[i] if x[i] > 0 else a * vecmath.expm1(x[i])   # a select, not a branch

Each takes a float32 or a float64 and returns the same type.  A float32 argument is computed in
float32 throughout, with shorter polynomials, so that a vector holds twice as many lanes.  The
kernel must keep it so: a Python float (a literal, or an argument such as alpha) mixed into a
float32 expression promotes it to float64, and the loop runs half the lanes; ``cast(value, x)``
gives value in x's type.  The algorithm is written once; the constants
that depend on the precision (polynomial lengths, exponent bias, ...) come from a table per
type, ``_F32`` or ``_F64``, which ``_consts(x)`` picks when Numba compiles for x's type.
``sigmoid(x)``, the logistic function in its stable form, is built on exp the same way.
``exp_array``, ``expm1_array``, ``log_array`` and ``tanh_array`` apply them over a flat array.

exp(x)
------
1. Clamp x to [EXP_MIN, EXP_MAX] = [-746, 710] (float32: [-104, 89]).  Beyond ln(DBL_MAX) =
   709.78 (88.72) the result is +inf and below ln(2^-1075) = -745.13 (ln(2^-150) = -103.97) it
   rounds to 0, so clamping changes no result, keeps the integers below small, and replaces
   the early returns for +-inf (a branch would stop the vectorizer): exp(inf) = inf and
   exp(-inf) = 0 come out of the ordinary path.  NaN fails both comparisons and stays NaN.
2. Range reduction: x = k ln2 + r, k an integer, |r| <= ln2/2.  k = round(x / ln2) is found
   with the "shifter" S = 1.5 * 2^52 (1.5 * 2^23): in t = x * log2(e) + S the float addition
   itself rounds x log2(e) to an integer, because the ulp of S is 1; k = t - S exactly, and the
   low bits of t's pattern hold k as an integer too, so no float -> int conversion is needed
   (AVX2 has none for 64-bit integers).  r = x - k ln2 is computed with ln2 split Cody-Waite
   style, ln2 = LN2_HI + LN2_LO, LN2_HI with its low bits zero, so that k * LN2_HI and
   x - k * LN2_HI are exact:  r = (x - k * LN2_HI) - k * LN2_LO.
3. e^r = 1 + q with q = e^r - 1 = r + r^2/2! + ... + r^13/13! (float32: up to r^7/7!), the
   Taylor polynomial in Horner form.  On |r| <= ln2/2 the first omitted term is below 6e-18
   relative (float32: 8e-9), a few hundredths of an ulp.
4. e^x = (1 + q) * 2^k.  2^n is built from its bits: the biased exponent n + 1023 (127)
   shifted into the exponent field, mantissa zero.  2^k itself may not be a normal float
   (k = 1024 overflows, k < -1022 is subnormal), so it is applied as two factors, 2^(k - j) from
   bits and the constant 2^j with j = +-64 by the sign of k: both are normal over the clamped
   range, (1 + q) * 2^(k - j) is exact, and only the last multiplication rounds, to +inf, to a
   subnormal or to 0 as the product (1 + q) 2^k does.  Subnormal results are therefore
   computed, not flushed to zero.

expm1(x) = e^x - 1
------------------
The same reduction, with the lower clamp at EXPM1_MIN = -40 (float32: -20), below which
e^x - 1 rounds to -1.  e^x - 1 = 2^k (1 + q) - 1 = 2 ((2^(k-1) - 1/2) + 2^(k-1) q): for
k = 0 this is q itself, which the polynomial gives to its last bits however small r is
(q = r (1 + r/2 + ...)), so small x keep their relative accuracy; 2^(k-1) is a normal float
for every k of the clamped range, and the final doubling overflows to +inf where e^x does.
Below |x| = 2^-54 (float32: 2^-25) e^x - 1 rounds to x, and a select returns x itself, which
keeps the subnormals (halving them would lose their last bit) and the sign of -0.

log(x)
------
1. A subnormal x is first multiplied by 2^52 (2^23), which makes it normal; the exponent found
   below is corrected by -52 (-23).  The choice is a select, not a branch.
2. x = 2^e m with m in [sqrt(1/2), sqrt(2)), read from the bits (a frexp without the call):
   subtracting the bit pattern of sqrt(1/2) from that of x leaves e in the exponent field
   (an arithmetic shift right by 52 (23) reads it), and x's pattern minus e shifted into the
   exponent field is m's.  e becomes a float through the shifter again: the float with the
   bits of S + e is S + e.
3. log m = log(1 + f) with f = m - 1 (exact) and |f| < 0.42.  With s = f / (2 + f),
   |s| <= 0.1716, log(1 + f) = 2 atanh(s) = 2s + 2s^3/3 + 2s^5/5 + ..., a series in s^2 <= 0.0295.
   As in fdlibm it is rearranged as  log(1 + f) = f - (f^2/2 - s (f^2/2 + R)),  with
   R = 2s^2/3 + 2s^4/5 + ... + 2s^20/21 (float32: up to 2s^8/9), the atanh (Taylor) series:
   f is exact and the rounding errors sit in the correction, which is under |f|/4.  The first
   omitted term is below 1e-18 relative (float32: 2e-9).
4. log x = e ln2 + log m, with ln2 = LN2_HI + LN2_LO again, so that e * LN2_HI is exact.
5. Special values, by selects at the end: log(+inf) = +inf, log(NaN) = NaN, log(+-0) = -inf,
   log(x < 0) = NaN.

tanh(x)
-------
tanh is odd: it is computed for a = |x| and given the sign of x at the end (copysign, so
tanh(-0) = -0).  Two formulas, both always evaluated, one chosen by a select on a:

* a < ln(3)/2 = 0.549 (where tanh = 1/2): the odd series tanh a = a + a^3 P(a^2), Horner in
  a^2.  float64: P is the Taylor series -1/3 + 2a^2/15 - 17a^4/315 + ..., 19 terms, exact
  fractions from tanh' = 1 - tanh^2 (``_tanh_series``); the first omitted term is below 5e-18
  relative at a = 0.549.  float32: the minimax polynomial of degree 4 in a^2 on that range
  (``_fit_tanh_poly``), 5 terms where the Taylor series needs 10, within 6.6e-8 of P with
  its coefficients rounded to float32.  a is exact and the correction a^3 P is under a/10
  (which also divides P's error), so tanh x ~ x keeps its relative accuracy down to the
  smallest subnormal.  The exponential formula would not: 1 - e^(-2a) cancels, and even the
  expm1 form em / (em + 2) sums three roundings to 3-4 ulp there.
* a >= ln(3)/2: tanh a = 1 - 2 / (e^(2a) + 1).  The expm1 steps give e^(2a) = 2^k (1 + q),
  and e^(2a) + 1 = 2^k q + (2^k + 1) is one multiply-add (2^k + 1 is exact up to k = 23,
  float64: 52; beyond, its rounding, under 2^-k relative, reaches the result multiplied by
  2 / (e^(2a) + 1) < 2^(1-k), far below an ulp).  2 / (e^(2a) + 1) <= 1/2 and its rounding
  errors shrink when subtracted from 1.  2a is clamped to 40 (float32: 20), past which tanh
  rounds to 1: for a > 19.06 (9.01) the result is exactly 1, and +-inf give +-1 through the
  same path.

Accuracy
--------
Measured against NumPy (glibc's libm for float64; for float32, NumPy's float64 result rounded
to float32, since NumPy's own float32 routines are approximations), in ulps, the distance
between bit patterns.  float32: all 2^32 inputs.  float64: 72 million samples (random bit
patterns, the busy range, random magnitudes down to 1e-20); the float64 figures are the same
against a long double reference.

    max error (ulp)     exp   expm1   log   tanh
    float32              1      2      1      1
    float64              1      2      1      2

(Measured with FMA, on an AVX2 + FMA machine; without FMA the results may differ in the last
bit, within the same bounds.)  Guaranteed by the tests (tests/test_vecmath.py: millions of
random bit patterns per function and type, uniform and logarithmic grids, every special
value): float32 within 2 ulp, float64 within 4 ulp, everywhere, subnormal inputs and results
included.  At the overflow threshold of exp the result may be +inf where the correctly rounded
one is the largest float, or the reverse: that is one ulp (tested).  Special values are exact:
exp(-inf) = 0, exp(inf) = inf, log(+-0) = -inf, log(x < 0) = NaN, log(inf) = inf,
tanh(+-inf) = +-1, tanh(-0) = -0, NaN in gives NaN out.

Rules that keep this vectorizable
---------------------------------
* No calls left in the loop: every step is arithmetic, and the functions are compiled with
  ``forceinline=True``, which marks them ``alwaysinline`` for LLVM, so they are inlined
  whatever their size (tanh in float64 is past LLVM's usual threshold).  LLVM inlines them
  with the options they were compiled with, unlike Numba's ``inline="always"``, which compiles
  the body again with the caller's options: with the default error model that adds a
  zero test, a branch, before every division.
* Explicit options, not inherited: a function that Numba compiles on behalf of a caller takes
  the caller's ``fastmath`` and ``error_model`` unless it sets them, and a fastmath caller
  would break the shifter ((x + S) - S folds to x) and the NaN / inf selects.
  ``error_model="numpy"``: divisions are not tested for zero (none can be).
  ``fastmath={"contract"}`` and nothing else: LLVM may fuse a * b + c into one FMA, which is
  faster and rounds once instead of twice (the error bounds hold with or without FMA).
* No branches: a choice is ``a if cond else b`` between two values that are cheap to compute
  either way, which LLVM turns into a blend (select).  Out-of-range inputs are clamped, and
  special values fixed by a select on the result, never by an early return.
* Bit patterns are reinterpreted with an LLVM bitcast (``_bits``, ``_as_float``), free in a
  register; integers reach floats through the shifter, not a conversion.
* The polynomials are straight-line code: ``_horner`` unrolls itself when Numba compiles.
"""

import math
from collections import namedtuple
from fractions import Fraction

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# The options of the scalar functions (module docstring, "Rules that keep this vectorizable").
_JIT = dict(cache=True, forceinline=True, error_model="numpy", fastmath={"contract"})


# --- the constants of each float type -------------------------------------------------------------

_Consts = namedtuple("_Consts", [
    "ZERO", "HALF", "ONE", "TWO", "INF", "NAN",
    "MANT_BITS",          # bits of the mantissa field: 52 (float64), 23 (float32)
    "BIAS",               # exponent bias: the exponent field of 2^n holds n + BIAS
    "SHIFTER",            # 1.5 * 2^MANT_BITS: the ulp is 1, so adding it rounds to an integer
    "SHIFTER_BITS",       # its bit pattern; SHIFTER + n has the pattern SHIFTER_BITS + n
    "LOG2E",              # 1 / ln 2
    "LN2_HI", "LN2_LO",   # ln 2 = LN2_HI + LN2_LO, LN2_HI with its low bits zero (Cody-Waite)
    "EXP_MIN", "EXP_MAX", # exp's clamp: below, e^x rounds to 0; above, it overflows
    "EXPM1_MIN",          # expm1's lower clamp: below, e^x - 1 rounds to -1
    "EXPM1_TINY",         # 2^-(MANT_BITS + 2): below in magnitude, e^x - 1 rounds to x
    "TWO_64", "TWO_MINUS_64",  # 2^64 and 2^-64, the second factor of 2^k in _ldexp
    "EXPM1_POLY",         # 1/1!, 1/2!, ...: e^r - 1 = r * horner(r, EXPM1_POLY)
    "MIN_NORMAL",         # the smallest normal float; log scales smaller x up by ...
    "SUBNORMAL_SCALE",    # ... 2^MANT_BITS
    "SQRT_HALF_BITS",     # bit pattern of sqrt(1/2), where log's mantissa range starts
    "LOG_POLY",           # 2/3, 2/5, 2/7, ...: the atanh series, R = s^2 * horner(s^2, LOG_POLY)
    "TANH_SPLIT",         # ln(3)/2, where tanh = 1/2: above, tanh = 1 - 2 / (e^(2|x|) + 1)
    "TANH_POLY",          # about -1/3, 2/15, -17/315, ...: tanh a = a + a^3 horner(a^2, TANH_POLY)
    "TANH_CLAMP",         # tanh's clamp of 2|x|: beyond, tanh|x| rounds to 1
])


def _tanh_series(n):
    """The first n coefficients of tanh a = t_0 a + t_1 a^3 + t_2 a^5 + ..., exact fractions.

    From tanh' = 1 - tanh^2: comparing the coefficients of a^(2k) on both sides gives
    (2k + 1) t_k = [k == 0] - sum_{i + j = k - 1} t_i t_j.
    """
    t = []
    for k in range(n):
        t.append((Fraction(k == 0) - sum(t[i] * t[k - 1 - i] for i in range(k))) / (2 * k + 1))
    return t


def _fit_tanh_poly(degree, nodes=2000, rounds=200):
    """The minimax polynomial of ``degree`` in u = a^2 for P(u) = (tanh a - a) / a^3 on
    [0, (ln(3)/2)^2], where the series is used: its coefficients (float64) and the largest
    relative error of P.

    Least squares in the relative error on Chebyshev nodes, reweighted by each node's error
    (Lawson's iteration), which converges to the minimax fit.  P is evaluated from 40 terms of
    the Taylor series (``_tanh_series``), exact to float64 rounding here.  The float32 table's
    TANH_POLY holds _fit_tanh_poly(4)'s coefficients (tests/test_vecmath.py fits them again).
    """
    series = [float(t) for t in _tanh_series(41)[1:]]         # P(u) = sum_k series[k] u^k

    def p_exact(u):
        return np.polynomial.polynomial.polyval(u, series)

    top = (math.log(3.0) / 2.0) ** 2
    u = top / 2 * (1 - np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes))
    target = p_exact(u)
    powers = np.vander(u, degree + 1, increasing=True) / target[:, None]     # rows: u^j / P(u)
    weights = np.full(nodes, 1.0 / nodes)
    for _ in range(rounds):
        root = np.sqrt(weights)
        coeffs = np.linalg.lstsq(powers * root[:, None], root, rcond=None)[0]
        error = np.abs(powers @ coeffs - 1.0)
        weights = weights * error / (weights * error).sum()
    check = np.linspace(0.0, top, 200001)
    worst = float(np.abs(np.polynomial.polynomial.polyval(check, coeffs) / p_exact(check) - 1.0).max())
    return tuple(float(c) for c in coeffs), worst


def _table(ft, it, mant_bits, bias, ln2_hi, ln2_lo, exp_min, exp_max, expm1_min,
           exp_degree, log_terms, tanh_poly):
    """The constants for the float type ft (np.float32 or np.float64) and its integer type it."""
    shifter = ft(1.5 * 2.0 ** mant_bits)
    return _Consts(
        ZERO=ft(0.0), HALF=ft(0.5), ONE=ft(1.0), TWO=ft(2.0), INF=ft(np.inf), NAN=ft(np.nan),
        MANT_BITS=mant_bits, BIAS=bias,
        SHIFTER=shifter, SHIFTER_BITS=int(shifter.view(it)),
        LOG2E=ft(1.0 / math.log(2.0)), LN2_HI=ft(ln2_hi), LN2_LO=ft(ln2_lo),
        EXP_MIN=ft(exp_min), EXP_MAX=ft(exp_max), EXPM1_MIN=ft(expm1_min),
        EXPM1_TINY=ft(2.0 ** -(mant_bits + 2)),
        TWO_64=ft(2.0 ** 64), TWO_MINUS_64=ft(2.0 ** -64),
        EXPM1_POLY=tuple(ft(1.0 / math.factorial(n)) for n in range(1, exp_degree + 1)),
        MIN_NORMAL=ft(np.finfo(ft).tiny), SUBNORMAL_SCALE=ft(2.0 ** mant_bits),
        SQRT_HALF_BITS=int(ft(math.sqrt(0.5)).view(it)),
        LOG_POLY=tuple(ft(2.0 / (2 * j + 1)) for j in range(1, log_terms + 1)),
        TANH_SPLIT=ft(math.log(3.0) / 2.0), TANH_CLAMP=ft(-expm1_min),
        TANH_POLY=tuple(ft(t) for t in tanh_poly),
    )


# float64: fdlibm's split of ln 2 (LN2_HI has 32 significant bits, so k * LN2_HI is exact for
# |k| < 2^21); Taylor polynomials: degree 13 for e^r - 1, 10 terms of the atanh series for log,
# 19 terms of the tanh series (its first omitted term below 5e-18 relative at a = ln(3)/2).
_F64 = _table(np.float64, np.int64, mant_bits=52, bias=1023,
              ln2_hi=6.93147180369123816490e-01,     # 0x3fe62e42fee00000
              ln2_lo=1.90821492927058770002e-10,     # ln 2 - LN2_HI, rounded
              exp_min=-746.0, exp_max=710.0, expm1_min=-40.0,
              exp_degree=13, log_terms=10,
              tanh_poly=[float(t) for t in _tanh_series(19)[1:]])

# float32: SLEEF's split of ln 2 (LN2_HI has 15 significant bits, k * LN2_HI exact for
# |k| < 2^9); Taylor polynomials: degree 7 for e^r - 1, 4 terms of the atanh series for log;
# for tanh's series the minimax polynomial of degree 4 (_fit_tanh_poly(4): 5 terms where the
# Taylor series needs 10; relative error 3.9e-8, 6.6e-8 once rounded to float32, which
# reaches the result multiplied by a^3 |P| / tanh a <= 0.1: about 0.1 ulp).
_F32 = _table(np.float32, np.int32, mant_bits=23, bias=127,
              ln2_hi=0.693145751953125,              # 0x3f317200
              ln2_lo=1.428606765330187045e-06,
              exp_min=-104.0, exp_max=89.0, expm1_min=-20.0,
              exp_degree=7, log_terms=4,
              tanh_poly=[-0.33333332025439444, 0.13333115987555144, -0.053909870486209106,
                         0.021312087653569546, -0.0066152909065183806])


def _consts(x):
    """The constant table of x's float type (resolved at compile time: see the overload)."""
    raise NotImplementedError("_consts is only usable inside @njit code")


@overload(_consts, jit_options=_JIT)
def _consts_overload(x):
    if x == types.float32:
        return lambda x: _F32
    if x == types.float64:
        return lambda x: _F64
    return None                                      # no implementation: a typing error


# --- bit patterns ---------------------------------------------------------------------------------

@intrinsic
def _bits(typingctx, x):
    """The bit pattern of a float as a signed integer of the same width (no conversion)."""
    if x == types.float32:
        int_type = types.int32
    elif x == types.float64:
        int_type = types.int64
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(int_type.bitwidth))

    return int_type(x), codegen


@intrinsic
def _as_float(typingctx, n, like):
    """The float, of like's type, whose bit pattern is the integer n (cut to the float's width)."""
    if not isinstance(n, types.Integer) or like not in (types.float32, types.float64):
        return None

    def codegen(context, builder, signature, args):
        width = like.bitwidth
        v = args[0]
        if n.bitwidth > width:
            v = builder.trunc(v, ir.IntType(width))
        elif n.bitwidth < width:
            v = builder.sext(v, ir.IntType(width))
        return builder.bitcast(v, context.get_value_type(like))

    return like(n, like), codegen


@njit(**_JIT)
def _pow2(n, like):
    """2^n in like's float type, for n in the normal range (-BIAS < n <= BIAS).

    The biased exponent n + BIAS goes into the exponent field, the mantissa is zero.
    """
    c = _consts(like)
    return _as_float((n + c.BIAS) << c.MANT_BITS, like)


@njit(**_JIT)
def _int_to_float(n, like):
    """The integer n (|n| < 2^22) as a float of like's type: the float with the bits
    SHIFTER_BITS + n is SHIFTER + n.  Cheaper than a conversion, which AVX2 lacks for int64."""
    c = _consts(like)
    return _as_float(n + c.SHIFTER_BITS, like) - c.SHIFTER


# --- the pieces ---------------------------------------------------------------------------------

def _horner(x, coeffs):
    """coeffs[0] + x (coeffs[1] + x (coeffs[2] + ...)): the polynomial in Horner form."""
    p = coeffs[-1]
    for a in coeffs[-2::-1]:
        p = a + x * p
    return p


@overload(_horner, jit_options=_JIT)
def _horner_overload(x, coeffs):
    # The recursion runs when Numba compiles, one level per coefficient (coeffs[1:] has a shorter
    # tuple type), and leaves straight-line code: a loop over the tuple would index it at run
    # time, with a bounds test that LLVM does not always remove.
    if len(coeffs) == 1:
        return lambda x, coeffs: coeffs[0]
    return lambda x, coeffs: coeffs[0] + x * _horner(x, coeffs[1:])


@njit(**_JIT)
def _reduce(x):
    """x = k ln2 + r with k an integer and |r| <= ln2/2 (ties aside): returns k, as an
    integer, and r."""
    c = _consts(x)
    t = x * c.LOG2E + c.SHIFTER          # the addition rounds x / ln2 to an integer, k + SHIFTER
    k = t - c.SHIFTER                    # exact
    n = _bits(t) - c.SHIFTER_BITS        # k again, from the low bits of t's pattern
    r = (x - k * c.LN2_HI) - k * c.LN2_LO
    return n, r


@njit(**_JIT)
def _ldexp(p, n):
    """p * 2^n for p near 1 and n from exp's clamped range, [-1076, 1024] (float32:
    [-150, 128]), rounded once.

    2^(n - j) 2^j with j = +-64 by the sign of n: both factors are normal floats, the first
    product is exact, and the second rounds (to +inf, a subnormal or 0) as p * 2^n would.
    """
    c = _consts(p)
    negative = n < 0
    j = -64 if negative else 64
    return (p * _pow2(n - j, p)) * (c.TWO_MINUS_64 if negative else c.TWO_64)


@njit(**_JIT)
def _exp_halves(y):
    """e^y = 2 s (1 + q) with s = 2^(k-1) and q = e^r - 1, for y in [EXPM1_MIN, EXP_MAX].

    expm1 and tanh combine s and q without first forming e^y, which would round off the
    digits of e^y - 1 when y is small.  k - 1 stays in the normal range for every such y.
    """
    c = _consts(y)
    n, r = _reduce(y)
    q = r * _horner(r, c.EXPM1_POLY)            # e^r - 1
    return _pow2(n - 1, y), q


# --- the functions --------------------------------------------------------------------------------

@njit(**_JIT)
def exp(x):
    """e^x for a float32 or float64 x, in its type (module docstring: exp)."""
    c = _consts(x)
    x = c.EXP_MIN if x < c.EXP_MIN else x       # NaN fails both tests and stays NaN
    x = c.EXP_MAX if x > c.EXP_MAX else x
    n, r = _reduce(x)
    q = r * _horner(r, c.EXPM1_POLY)            # e^r - 1
    return _ldexp(c.ONE + q, n)


@njit(**_JIT)
def expm1(x):
    """e^x - 1 for a float32 or float64 x, accurate near 0 (module docstring: expm1)."""
    c = _consts(x)
    y = c.EXPM1_MIN if x < c.EXPM1_MIN else x
    y = c.EXP_MAX if y > c.EXP_MAX else y
    s, q = _exp_halves(y)
    result = ((s - c.HALF) + s * q) * c.TWO     # 2^k (1 + q) - 1 = 2 ((2^(k-1) - 1/2) + 2^(k-1) q)
    return x if abs(x) < c.EXPM1_TINY else result   # e^x - 1 rounds to x: keeps subnormals, -0


@njit(**_JIT)
def log(x):
    """The natural logarithm of a float32 or float64 x, in its type (module docstring: log)."""
    c = _consts(x)
    # 1. subnormal x: scale into the normal range, and remember the scale
    subnormal = x < c.MIN_NORMAL
    xs = x * c.SUBNORMAL_SCALE if subnormal else x
    e_scale = -c.MANT_BITS if subnormal else 0
    # 2. x = 2^e m, sqrt(1/2) <= m < sqrt(2), from the bits
    bits = _bits(xs)
    e = (bits - c.SQRT_HALF_BITS) >> c.MANT_BITS
    m = _as_float(bits - (e << c.MANT_BITS), x)
    ef = _int_to_float(e + e_scale, x)
    # 3. log m = log(1 + f) = f - (f^2/2 - s (f^2/2 + R)), s = f / (2 + f), R the atanh series
    f = m - c.ONE
    s = f / (c.TWO + f)
    s2 = s * s
    half_f2 = c.HALF * f * f
    R = s2 * _horner(s2, c.LOG_POLY)
    # 4. log x = e ln2 + log m
    y = ef * c.LN2_HI - ((half_f2 - (s * (half_f2 + R) + ef * c.LN2_LO)) - f)
    # 5. special values
    y = y if x < c.INF else x                   # log(inf) = inf; NaN stays NaN
    y = -c.INF if x == c.ZERO else y            # log(+-0) = -inf
    return c.NAN if x < c.ZERO else y           # log(x < 0) = NaN


@njit(**_JIT)
def tanh(x):
    """The hyperbolic tangent of a float32 or float64 x, in its type (module docstring: tanh)."""
    c = _consts(x)
    a = abs(x)
    # |x| < ln(3)/2: the odd series  tanh a = a + a^3 P(a^2), P(u) about -1/3 + 2/15 u - 17/315 u^2 + ...
    a2 = a * a
    t_series = a + a * a2 * _horner(a2, c.TANH_POLY)
    # |x| >= ln(3)/2: tanh a = 1 - 2 / (e^(2a) + 1), e^(2a) + 1 = 2^k (1 + q) + 1 in one multiply-add
    y = a + a
    y = c.TANH_CLAMP if y > c.TANH_CLAMP else y  # beyond, tanh a rounds to 1 (inf is clamped too)
    s, q = _exp_halves(y)
    two_k = s + s                                # 2^k, exact
    t_exp = c.ONE - c.TWO / (two_k * q + (two_k + c.ONE))
    t = t_series if a < c.TANH_SPLIT else t_exp  # NaN takes the second, and stays NaN
    return math.copysign(t, x)


@njit(**_JIT)
def sigmoid(x):
    """The logistic function 1 / (1 + e^-x) of a float32 or float64 x, in its type.

    In the stable form, e = e^-|x| never overflows: 1 / (1 + e) for x >= 0 and e / (1 + e) for
    x < 0 (there e^-x would overflow for x < -EXP_MAX), chosen by a select.  exp is within 1 ulp
    and 1 + e and the division add half an ulp each: within 2 ulp, subnormal results included.
    NaN stays NaN; sigmoid(inf) = 1, sigmoid(-inf) = 0.
    """
    c = _consts(x)
    e = exp(-abs(x))
    return (c.ONE if x >= c.ZERO else e) / (c.ONE + e)


def cast(value, like):
    """value (a Python or NumPy number) as a float of like's type, inside @njit code.

    A float32 kernel that multiplies by a float64 argument (an alpha, a scale) computes in
    float64: Numba promotes the mixed product, and the loop runs half as many lanes.
    ``a = cast(alpha, x[i])`` keeps it in x's type.
    """
    raise NotImplementedError("cast is only usable inside @njit code")


@overload(cast, jit_options=_JIT)
def _cast_overload(value, like):
    if like == types.float32:
        return lambda value, like: np.float32(value)
    if like == types.float64:
        return lambda value, like: np.float64(value)
    return None


# --- array kernels ------------------------------------------------------------------------------
# x and out: flat (1-D) arrays of one float type; out may be x itself.

@njit(cache=True)
def exp_array(x, out):
    """out[i] = exp(x[i])"""
    for i in range(x.shape[0]):
        out[i] = exp(x[i])


@njit(cache=True)
def expm1_array(x, out):
    """out[i] = expm1(x[i])"""
    for i in range(x.shape[0]):
        out[i] = expm1(x[i])


@njit(cache=True)
def log_array(x, out):
    """out[i] = log(x[i])"""
    for i in range(x.shape[0]):
        out[i] = log(x[i])


@njit(cache=True)
def tanh_array(x, out):
    """out[i] = tanh(x[i])"""
    for i in range(x.shape[0]):
        out[i] = tanh(x[i])


# --- a sum that vectorizes ----------------------------------------------------------------------

@njit(cache=True, fastmath={"reassoc"})
def vsum(v):
    """sum_i v[i] in float64, for a 1-D array, the additions reassociated into vector lanes.

    A sequential sum, acc += v[i], is one long chain of dependent additions (about 4 cycles
    each); with fastmath "reassoc" LLVM keeps several vector lanes of running sums and adds them
    at the end.  That order is fixed by the compiled code, not by the data or the threads; it
    differs from the sequential order by rounding only.  (The softmax and loss kernels and the
    global average pooling twin call it.)
    """
    acc = 0.0
    for i in range(v.shape[0]):
        acc += v[i]
    return acc
