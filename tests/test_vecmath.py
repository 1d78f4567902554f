"""nbconv.kernels.vecmath: exp, expm1, log and tanh against NumPy, over the whole float range.

Errors are counted in ulps: the distance between the bit patterns of result and reference,
read as integers on a line where the floats are in order (-0 and +0 meet at 0).  The
reference is NumPy: in float64 (glibc's libm) for float64; for float32 the float64 result
rounded to float32, as NumPy's own float32 routines are approximations of their own.
The bounds are the module's promise: 2 ulp in float32, 4 ulp in float64.
"""

import math
import re

import numpy as np
import pytest
from numba import njit, types

from nbconv.kernels import vecmath as vm

FUNCTIONS = ["exp", "expm1", "log", "tanh"]
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 2, np.float64: 4}            # ulp
INT = {np.float32: np.int32, np.float64: np.int64}
UINT = {np.float32: np.uint32, np.float64: np.uint64}


def ulp_distance(a, b):
    """|a - b| in ulps, elementwise: 0 where both are NaN, the largest integer where one is."""
    dt = a.dtype.type
    lowest = np.iinfo(INT[dt]).min

    def ordered(v):                                    # the bits as a monotone signed integer
        i = v.view(INT[dt])
        return np.where(i < 0, lowest - i, i)          # negative floats count down from 0

    oa, ob = ordered(a), ordered(b)
    ua, ub = oa.view(UINT[dt]), ob.view(UINT[dt])      # the difference can exceed the int range
    d = np.where(oa >= ob, ua - ub, ub - ua)
    na, nb = np.isnan(a), np.isnan(b)
    d[na & nb] = 0
    d[na ^ nb] = np.iinfo(UINT[dt]).max
    return d


def reference(name, x):
    with np.errstate(all="ignore"):
        if x.dtype == np.float32:
            return getattr(np, name)(x.astype(np.float64)).astype(np.float32)
        return getattr(np, name)(x)


def evaluate(name, x):
    out = np.empty_like(x)
    getattr(vm, name + "_array")(x, out)
    return out


def assert_ulp(name, x, tolerance=None):
    x = np.ascontiguousarray(x)
    dt = x.dtype.type
    tolerance = TOLERANCE[dt] if tolerance is None else tolerance
    got, want = evaluate(name, x), reference(name, x)
    d = ulp_distance(got, want)
    i = int(np.argmax(d))
    assert d[i] <= tolerance, (f"{name}({x[i]!r}) = {got[i]!r}, NumPy {want[i]!r}: "
                               f"{d[i]} ulp > {tolerance}")
    return d


def random_bits(dt, n, seed):
    """n floats with uniformly random bit patterns: every exponent, both signs, NaNs, infs."""
    it = INT[dt]
    info = np.iinfo(it)
    rng = np.random.default_rng(seed)
    return rng.integers(info.min, info.max, n, dtype=it, endpoint=True).view(dt)


# The range where each function is neither constant nor saturated, for uniform sampling.
BUSY = {"exp": {np.float32: (-105.0, 90.0), np.float64: (-746.0, 711.0)},
        "expm1": {np.float32: (-20.0, 90.0), np.float64: (-40.0, 711.0)},
        "log": {np.float32: (0.0, 4.0), np.float64: (0.0, 4.0)},
        "tanh": {np.float32: (-10.0, 10.0), np.float64: (-20.0, 20.0)}}


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_random_bit_patterns(name, dt):
    """2 million uniformly random bit patterns: the whole range, NaN and inf included."""
    assert_ulp(name, random_bits(dt, 2_000_000, seed=FUNCTIONS.index(name)))


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_busy_range_and_log_grid(name, dt):
    """1 million uniform samples where the function varies, and a logarithmic grid over
    every magnitude from the smallest subnormal to the largest float, both signs."""
    lo, hi = BUSY[name][dt]
    rng = np.random.default_rng(7)
    assert_ulp(name, rng.uniform(lo, hi, 1_000_000).astype(dt))
    info = np.finfo(dt)
    with np.errstate(over="ignore"):
        grid = np.logspace(np.log10(info.smallest_subnormal), np.log10(info.max), 200_000,
                           dtype=np.float64).astype(dt)
    assert_ulp(name, np.concatenate([grid, -grid]))


@njit
def _exp(x):
    return vm.exp(x)


@njit
def _expm1(x):
    return vm.expm1(x)


@njit
def _log(x):
    return vm.log(x)


@njit
def _tanh(x):
    return vm.tanh(x)


# The scalar functions, called from @njit code.
_scalar = {"exp": _exp, "expm1": _expm1, "log": _log, "tanh": _tanh}


SPECIAL = {   # x: exact result (with the sign of zeros)
    "exp": [(-np.inf, 0.0), (np.inf, np.inf), (np.nan, np.nan), (0.0, 1.0), (-0.0, 1.0),
            (1e4, np.inf), (-1e4, 0.0), ("max", np.inf), ("-max", 0.0), ("tiny", 1.0),
            ("subnormal", 1.0), ("-subnormal", 1.0)],
    "expm1": [(-np.inf, -1.0), (np.inf, np.inf), (np.nan, np.nan), (0.0, 0.0), (-0.0, -0.0),
              (-100.0, -1.0), (1e4, np.inf), ("max", np.inf), ("-max", -1.0),
              ("subnormal", "subnormal"), ("-subnormal", "-subnormal")],
    "log": [(0.0, -np.inf), (-0.0, -np.inf), (-1.0, np.nan), (-np.inf, np.nan),
            ("-subnormal", np.nan), (np.inf, np.inf), (np.nan, np.nan), (1.0, 0.0)],
    "tanh": [(np.inf, 1.0), (-np.inf, -1.0), (np.nan, np.nan), (0.0, 0.0), (-0.0, -0.0),
             (100.0, 1.0), (-100.0, -1.0), ("max", 1.0), ("-max", -1.0),
             ("subnormal", "subnormal"), ("-subnormal", "-subnormal"), ("tiny", "tiny")],
}


def _value(v, dt):
    info = np.finfo(dt)
    named = {"max": info.max, "-max": -info.max, "tiny": info.tiny,
             "subnormal": info.smallest_subnormal, "-subnormal": -info.smallest_subnormal}
    return dt(named[v]) if isinstance(v, str) else dt(v)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_special_values(name, dt):
    x = np.array([_value(a, dt) for a, _ in SPECIAL[name]], dtype=dt)
    want = np.array([_value(b, dt) for _, b in SPECIAL[name]], dtype=dt)
    got = evaluate(name, x)
    np.testing.assert_array_equal(got, want)                   # NaN matches NaN
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg="sign of zero")
    for v, w in zip(x, want):                                  # the scalar function agrees
        r = _scalar[name](v)
        assert (np.isnan(r) and np.isnan(w)) or (r == w and np.signbit(r) == np.signbit(w))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_scalar_keeps_the_type(name):
    """Called in @njit code, each function returns its argument's type, float32 or float64."""
    f = _scalar[name]
    f(np.float32(0.5))
    f(np.float64(0.5))
    returned = {sig.args[0]: sig.return_type for sig in f.nopython_signatures}
    assert returned[types.float32] == types.float32
    assert returned[types.float64] == types.float64
    assert vm.exp(1.0) == pytest.approx(math.e, rel=1e-15)       # and it runs from Python


def _neighbours(dt, center, count):
    """count floats of type dt on each side of center, one ulp apart."""
    c = np.asarray(center, dtype=dt).reshape(1).view(INT[dt])[0]
    return (c + np.arange(-count, count + 1, dtype=INT[dt])).view(dt)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_exp_overflow_threshold(dt):
    """Around ln(max float), exp turns to +inf where NumPy does, give or take one ulp (the
    largest float counts one ulp from inf); well past the threshold both are inf."""
    x = _neighbours(dt, math.log(np.finfo(dt).max), 2000)
    assert_ulp("exp", x, tolerance=1)
    got = evaluate("exp", x)
    assert np.isinf(got[-1]) and np.isfinite(got[0])


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_exp_subnormal_results(dt):
    """Results below the smallest normal float are rounded to subnormals, not flushed to 0,
    and 0 starts where it does for NumPy: below ln(2^-1075) (float32: ln(2^-150)), where e^x
    is under half the smallest subnormal."""
    info = np.finfo(dt)
    zero_below = math.log(float(info.smallest_subnormal)) - math.log(2.0)
    normal_above = math.log(float(info.tiny))
    x = np.linspace(zero_below - 1, normal_above, 500_000, dtype=np.float64).astype(dt)
    assert_ulp("exp", x)
    got = evaluate("exp", x)
    inside = (x > zero_below + 0.01) & (x < normal_above - 0.01)
    assert np.all((got[inside] > 0) & (got[inside] < info.tiny))
    assert np.all(got[x < zero_below - 0.01] == 0)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_log_subnormal_inputs(dt):
    """Every subnormal binade, and random subnormal mantissas."""
    info = np.finfo(dt)
    mant = {np.float32: 23, np.float64: 52}[dt]
    rng = np.random.default_rng(3)
    bits = rng.integers(1, 1 << mant, 500_000, dtype=INT[dt])      # exponent field 0
    powers = (np.ones(1, INT[dt]) << np.arange(mant, dtype=INT[dt]))  # 2^-1074 ... 2^-1023
    x = np.concatenate([bits, powers]).view(dt)
    assert np.all(x < info.tiny)
    assert_ulp("log", x)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_tanh_near_zero_keeps_relative_accuracy(dt):
    """tanh x ~ x - x^3/3: for small |x| the error stays within the bound relative to x
    itself, down to the subnormals, and below about 3e-4 (float32) or 1e-8 (float64), where
    x^3/3 is under half an ulp of x, tanh x is x exactly."""
    info = np.finfo(dt)
    x = np.logspace(np.log10(info.smallest_subnormal), 0, 300_000, dtype=np.float64).astype(dt)
    x = np.concatenate([x, -x])
    assert_ulp("tanh", x)
    tiny = x[np.abs(x) < {np.float32: 1e-4, np.float64: 1e-9}[dt]]
    np.testing.assert_array_equal(evaluate("tanh", tiny), tiny)


def test_tanh_series_polynomials_are_the_taylor_series_and_the_minimax_fit():
    """float64's P(a^2) = (tanh a - a) / a^3 is the Taylor series from tanh' = 1 - tanh^2
    (-1/3, 2/15, -17/315, 62/2835, ...: the known coefficients); float32's is the minimax fit of
    degree 4, fitted here again: within 7e-8 of P as stored (float32 coefficients), where the
    Taylor series cut to the same 5 terms is off by more than 10 times that."""
    polyval = np.polynomial.polynomial.polyval
    f64 = vm._F64.TANH_POLY
    assert len(f64) == 18
    assert f64[:4] == (-1 / 3, 2 / 15, -17 / 315, 62 / 2835)
    u = np.linspace(0.0, (np.log(3.0) / 2) ** 2, 100_001)         # a^2 where the series is used
    exact = polyval(u, [float(t) for t in vm._tanh_series(41)[1:]])
    table = [float(c) for c in vm._F32.TANH_POLY]
    table_error = np.abs(polyval(u, table) / exact - 1).max()
    assert table_error < 7e-8
    coeffs, worst = vm._fit_tanh_poly(4)
    assert worst < 4e-8
    assert np.abs(polyval(u, coeffs) / polyval(u, table) - 1).max() < 5e-8    # the same fit
    assert np.abs(polyval(u, f64[:5]) / exact - 1).max() > 10 * table_error


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_tanh_saturates_to_exactly_one(dt):
    """Past the point where tanh rounds to 1 (about 9.01 in float32, 19.06 in float64) the
    result is exactly +-1, never 1 - ulp."""
    start = {np.float32: 9.1, np.float64: 19.1}[dt]
    x = np.concatenate([np.linspace(start, 100, 100_000), np.logspace(2, 38, 1000)]).astype(dt)
    x = np.concatenate([x, -x])
    np.testing.assert_array_equal(evaluate("tanh", x), np.sign(x))


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_inside_a_fastmath_kernel(dt):
    """A caller compiled with fastmath does not pass it on (Numba would, to a function it
    compiles for the caller, unless the function sets the option itself): the shifter,
    (x + S) - S, would fold to x under reassociation, and the NaN / inf selects would go.
    (Whichever compiles first, the function's one compiled version serves both.)"""
    @njit(fastmath=True)
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[0, i] = vm.exp(x[i])
            out[1, i] = vm.log(x[i])
            out[2, i] = vm.tanh(x[i])

    x = np.array([0.3, -2.5, 40.0, 1e-30, np.inf, -np.inf, np.nan], dtype=dt)
    out = np.empty((3, x.size), dtype=dt)
    kernel(x, out)
    for row, name in zip(out, ["exp", "log", "tanh"]):
        d = ulp_distance(row, reference(name, x))
        assert d.max() <= TOLERANCE[dt], f"{name}: {row} for {x}"


def test_ulp_distance():
    """The yardstick itself: neighbours are 1 apart, the two zeros 0, across zero the steps
    add up, the largest float is 1 from inf, NaN is 0 from NaN and far from anything else."""
    for dt in DTYPES:
        info = np.finfo(dt)
        one, sub, big = dt(1), info.smallest_subnormal, info.max
        a = np.array([one, -0.0, -sub, big, -big, np.nan, np.nan], dtype=dt)
        b = np.array([np.nextafter(one, dt(2)), 0.0, sub, np.inf, big, np.nan, one], dtype=dt)
        d = ulp_distance(a, b)
        width = {np.float32: 32, np.float64: 64}[dt]
        assert d[:4].tolist() == [1, 0, 2, 1]
        assert d[4] == 2 * (int(big.view(INT[dt])))           # -max to max, through 0
        assert d[5] == 0 and d[6] == 2 ** width - 1


# --- vectorization --------------------------------------------------------------------------------

def _loop_ir(kernel, dt):
    """The optimized LLVM IR of kernel's own function (not its Python wrapper), compiled afresh
    for 1-D arrays of dt: a kernel loaded from Numba's cache has no IR to show."""
    fresh = njit(kernel.py_func)                         # same code, no cache
    x = np.ones(64, dt)
    fresh(x, np.empty_like(x))
    module = fresh.inspect_llvm(fresh.signatures[0])
    name = kernel.py_func.__name__
    for function in module.split("\ndefine ")[1:]:
        header = function.split("{", 1)[0]
        symbol = header.split("@", 1)[1]
        if name in symbol and symbol.startswith("_ZN"):  # not cpython./cfunc. wrappers
            return function
    raise AssertionError(f"no function for {name} in the module")


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_array_kernel_is_vectorized(name, dt):
    """The loop of <name>_array holds vector arithmetic, <N x float> or <N x double> with
    N >= 2 (8 / 4 with AVX2, 4 / 2 with SSE only; fmul, fadd, fsub or fused multiply-adds),
    and calls no libm function."""
    ir = _loop_ir(getattr(vm, name + "_array"), dt)
    elem = {np.float32: "float", np.float64: "double"}[dt]
    suffix = {np.float32: "f32", np.float64: "f64"}[dt]
    arithmetic = (rf"= (?:fmul|fadd|fsub)(?: \w+)* <(\d+) x {elem}>"      # flags: contract, ...
                  rf"|@llvm\.(?:fma|fmuladd)\.v(\d+){suffix}")
    widths = [int(a or b) for a, b in re.findall(arithmetic, ir)]
    assert widths and max(widths) >= 2, f"no vector {elem} arithmetic in the loop"
    assert "vector.body" in ir
    calls = set(re.findall(r"call [^@]*@([\w.$]+)", ir))
    assert not {c for c in calls if re.fullmatch(r"(llvm\.)?(exp|expm1|log|tanh)(f|\..*)?", c)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 64, 1001])
def test_vsum_is_the_float64_sum_to_rounding(dtype, n):
    v = np.random.default_rng(n).standard_normal(n).astype(dtype)
    exact = math.fsum(float(a) for a in v)           # the float64 values summed exactly
    bound = n * 2.0 ** -52 * float(np.abs(v).sum())  # n roundings of float64 partial sums at most
    assert vm.vsum(v) == pytest.approx(exact, rel=0, abs=bound)
    assert vm.vsum(v[::-1].copy()) == pytest.approx(exact, rel=0, abs=bound)


# ----------------------------------------------------------------------------- sigmoid and cast

@njit
def _sigmoid_loop(x, out):
    for i in range(x.shape[0]):
        out[i] = vm.sigmoid(x[i])


def _sigmoid_reference(x):
    """1 / (1 + e^-x) in long double where the platform has it (float64 otherwise), rounded to x's type."""
    wide = np.longdouble if np.finfo(np.longdouble).precision > 15 else np.float64
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x.astype(wide)))).astype(x.dtype)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_sigmoid_within_two_ulp_everywhere(dt):
    rng = np.random.default_rng(7)
    edge = 110.0 if dt is np.float32 else 750.0                 # past the subnormal results
    x = np.concatenate([rng.uniform(-edge, edge, 200_000), rng.standard_normal(200_000),
                        -np.geomspace(1e-30, edge, 10_000), np.geomspace(1e-30, edge, 10_000)]).astype(dt)
    out = np.empty_like(x)
    _sigmoid_loop(x, out)
    if np.finfo(np.longdouble).precision > 15:
        assert ulp_distance(out, _sigmoid_reference(x)).max() <= 2
    else:                                                        # no long double: 3 ulp of float64
        np.testing.assert_allclose(out, _sigmoid_reference(x), rtol=4 * np.finfo(dt).eps, atol=0)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda t: t.__name__)
def test_sigmoid_special_values(dt):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dt)
    out = np.empty_like(x)
    _sigmoid_loop(x, out)
    np.testing.assert_array_equal(out, np.array([0.5, 0.5, 1.0, 0.0, np.nan], dt))


@njit
def _scaled(value, x):
    return vm.cast(value, x) * x


def test_cast_keeps_a_float32_product_in_float32():
    # a float64 argument times a float32 would be float64; cast(value, x) makes it x's type
    assert _scaled(0.1, np.float32(3.0)) == np.float32(0.1) * np.float32(3.0)
    assert _scaled.nopython_signatures[0].return_type == types.float32
    assert _scaled(0.1, 3.0) == 0.1 * 3.0
    assert _scaled.nopython_signatures[1].return_type == types.float64
