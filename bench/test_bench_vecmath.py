"""exp, expm1, log and tanh on 1 << 22 elements, float32 and float64: the vectorizable functions
of nbconv.kernels.vecmath against the same @njit loop calling libm.

    pytest bench/test_bench_vecmath.py --benchmark-only

Each group is one function and dtype:

    vecmath   vecmath.<f>_array: the loop over vecmath.<f>, vectorized by LLVM
    libm      the same loop calling math.<f> (Numba's np.<f> on a scalar is the same libm call),
              one element at a time
    numpy     the NumPy ufunc np.<f>(x, out=out), for reference
    copy      np.copyto(out, x): the same bytes read and written, the machine's limit

Inputs: standard normal times 3 (log: its absolute value plus 1e-3), where the functions do
real work (no saturation to 0, 1 or inf).  Not part of the default test run.
"""

import math

import numpy as np
import pytest
from numba import njit

from nbconv.kernels import vecmath

N = 1 << 22
OPS = ["exp", "expm1", "log", "tanh"]
DTYPES = ["float32", "float64"]


@njit
def exp_libm(x, out):
    for i in range(x.shape[0]):
        out[i] = math.exp(x[i])


@njit
def expm1_libm(x, out):
    for i in range(x.shape[0]):
        out[i] = math.expm1(x[i])


@njit
def log_libm(x, out):
    for i in range(x.shape[0]):
        out[i] = math.log(x[i])


@njit
def tanh_libm(x, out):
    for i in range(x.shape[0]):
        out[i] = math.tanh(x[i])


LIBM = {"exp": exp_libm, "expm1": expm1_libm, "log": log_libm, "tanh": tanh_libm}


def _method(op, method):
    if method == "vecmath":
        return getattr(vecmath, op + "_array")
    if method == "libm":
        return LIBM[op]
    if method == "numpy":
        ufunc = getattr(np, op)
        return lambda x, out: ufunc(x, out=out)
    return lambda x, out: np.copyto(out, x)


def _input(op, dtype):
    x = 3 * np.random.default_rng(0).standard_normal(N)
    if op == "log":
        x = np.abs(x) + 1e-3
    return x.astype(dtype)


@pytest.mark.parametrize("method", ["vecmath", "libm", "numpy", "copy"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_elementwise(benchmark, op, dtype, method):
    x = _input(op, dtype)
    out = np.empty_like(x)
    f = _method(op, method)
    f(x, out)                                                  # compile outside the timing
    benchmark.group = f"{op} {dtype} (1 << 22 elements)"
    benchmark.pedantic(f, args=(x, out), rounds=20, warmup_rounds=2)
