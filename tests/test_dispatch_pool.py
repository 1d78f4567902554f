"""Lp and global average pooling's two forms (nbconv.functional.dispatch): the parallel twins of
nbconv.kernels.pool agree with the naive loops on hypothesis-drawn shapes, windows and powers,
forward and backward, in float64 to 1e-12 and in float32 to a few units of rounding (bit for bit
where the twins keep the loops' arithmetic); special values come out alike; and the twins give
the same bits on one thread as on two.

The kernels are taken from the dispatch table (what nbconv.functional runs for each form) and
called directly, so that both backwards are fed the same forward output."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
from nbconv.functional import dispatch
from nbconv.kernels import pool

FORMS = ("naive", "fast")
DTYPES = st.sampled_from([np.float32, np.float64])
# p: the cases the twins compute exactly (1, 2, 3: |x|, x*x, x*x*x) and any other real >= 1
# (vecmath's exp and log)
POWERS = st.one_of(st.sampled_from([1.0, 2.0, 3.0]), st.floats(1.0, 6.0))


def _kernels(op, form):
    return dispatch.kernels(op, form, "cpu")


def _close(actual, expected, dtype, scale, ulps=4):
    """float64: 1e-12 relative, and 1e-12 of ``scale`` absolute (where terms cancel); float32:
    ``ulps`` float32 units, relative and of ``scale``.  NaN and inf where the other has them."""
    assert actual.dtype == expected.dtype == dtype and actual.shape == expected.shape
    tol = 1e-12 if dtype == np.float64 else ulps * np.finfo(np.float32).eps
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


# ----------------------------------------------------------------------------- Lp pooling

def _lp_forward(form, x, p, kernel, stride):
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = x.shape
    out = np.empty((N, C, (H - kh) // sh + 1, (W - kw) // sw + 1), x.dtype)
    _kernels("lp_pool2d", form).forward(x, out, p, kh, kw, sh, sw)
    return out


def _lp_backward(form, dout, x, out, p, kernel, stride):
    dx = np.full_like(x, np.nan)                   # every pixel must be written (zeroed or a share)
    _kernels("lp_pool2d", form).backward(dout, x, out, dx, p, *kernel, *stride)
    return dx


def _windows_per_pixel(kernel, stride):
    return -(-kernel[0] // stride[0]) * -(-kernel[1] // stride[1])


@st.composite
def lp_problems(draw):
    """(x, dout, p, kernel, stride): a small x, windows that fit it (half of the time the 2x2
    window with stride 2, which the fast form computes apart), some zeros (whole windows of
    zeros: norm 0, no gradient; single zeros: sign 0), magnitudes far from 1 now and then."""
    N, C = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    if H >= 2 and W >= 2 and draw(st.booleans()):
        kernel, stride = (2, 2), (2, 2)
    else:
        kernel = (draw(st.integers(1, min(3, H))), draw(st.integers(1, min(3, W))))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = draw(POWERS)
    dtype = draw(DTYPES)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((N, C, H, W)) * draw(st.sampled_from([1.0, 1e-3, 1e3]))
    x[rng.random(x.shape) < draw(st.sampled_from([0.0, 0.3, 0.8]))] = 0.0
    out_shape = (N, C, (H - kernel[0]) // stride[0] + 1, (W - kernel[1]) // stride[1] + 1)
    dout = rng.standard_normal(out_shape)
    return x.astype(dtype), dout.astype(dtype), p, kernel, stride


@settings(max_examples=60, deadline=None)
@given(problem=lp_problems())
def test_lp_pool_naive_and_fast_agree(problem):
    x, dout, p, kernel, stride = problem
    dtype = x.dtype.type
    out0, out1 = (_lp_forward(form, x, p, kernel, stride) for form in FORMS)
    _close(out1, out0, dtype, scale=0.0)                         # norms: relative accuracy
    if p == 1.0:                                                 # sums of |x| in the loop's order
        np.testing.assert_array_equal(out1, out0)
    # the backwards on the same forward output: each share is dout * sign(x) * (|x| / norm)^(p-1),
    # |x| <= norm, so a pixel's shares are at most |dout| each
    dx0, dx1 = (_lp_backward(form, dout, x, out0, p, kernel, stride) for form in FORMS)
    scale = float(np.abs(dout).max(initial=0.0)) * _windows_per_pixel(kernel, stride)
    _close(dx1, dx0, dtype, scale)
    if p in (1.0, 2.0):                                          # powers 0 and 1: exact, same order
        np.testing.assert_array_equal(dx1, dx0)
    # and each form's backward on its own output, as nbconv.functional chains them: an ulp of
    # the norm moves (|x| / norm)^(p-1) by p - 1 ulps
    _close(_lp_backward("fast", dout, x, out1, p, kernel, stride), dx0, dtype, scale, ulps=4 * p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 2), (1, 2))])
def test_lp_pool_fast_form_covers_every_plane_of_several_tasks(dtype, kernel, stride):
    """3 x 7 = 21 planes: a task of LP_PLANES planes and a shorter one, each reusing its scratch
    planes from plane to plane; every plane matches the naive loops, forward and backward."""
    assert pool.LP_PLANES < 21 < 2 * pool.LP_PLANES
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7, 8, 6)).astype(dtype)
    x[1, 4, :3, :2] = 0.0                                        # a window of zeros in the second task
    out0, out1 = (_lp_forward(form, x, 2.5, kernel, stride) for form in FORMS)
    _close(out1, out0, dtype, scale=0.0)
    dout = rng.standard_normal(out0.shape).astype(dtype)
    dx0, dx1 = (_lp_backward(form, dout, x, out0, 2.5, kernel, stride) for form in FORMS)
    _close(dx1, dx0, dtype, scale=float(np.abs(dout).max()) * _windows_per_pixel(kernel, stride))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 2.5])
@pytest.mark.parametrize("kernel, stride", [((2, 2), (2, 2)), ((3, 2), (1, 2))])
def test_lp_pool_special_values_come_out_alike(p, kernel, stride):
    """0, inf and NaN pixels: the naive loops' norms and gradients (inf, NaN, 0) in both forms."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 6, 6))
    x[0, 0, :3, :2] = 0.0                                        # a window of zeros: norm 0
    x[0, 0, 2, 3] = 0.0
    x[0, 1, 0, 0], x[0, 1, 3, 4], x[0, 1, 5, 1] = np.inf, -np.inf, np.nan
    out0, out1 = (_lp_forward(form, x, p, kernel, stride) for form in FORMS)
    assert np.isnan(out0).any() and np.isinf(out0).any() and (out0 == 0).any()
    _close(out1, out0, np.float64, scale=0.0)
    dout = rng.standard_normal(out0.shape)
    dx0, dx1 = (_lp_backward(form, dout, x, out0, p, kernel, stride) for form in FORMS)
    assert (dx0 == 0).any() and (np.isnan(dx0).any() or p == 1.0)   # p = 1: (|x| / norm)^0 = 1, even NaN
    _close(dx1, dx0, np.float64, scale=float(np.abs(dout).max()) * _windows_per_pixel(kernel, stride))


def test_lp_pool_fast_form_through_the_functional_api():
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out0, _ = F.lp_pool2d_forward(x, norm_type=3, kernel_size=2, method="naive")
    out1, _ = F.lp_pool2d_forward(x, norm_type=3, kernel_size=2, method="fast")
    _close(out1, out0, np.float32, scale=0.0)


# ----------------------------------------------------------------------------- global average pooling

def _gap_forward(form, x):
    out = np.empty(x.shape[:2], x.dtype)
    _kernels("global_avg_pool2d", form).forward(x, out)
    return out


def _gap_backward(form, dout, shape):
    dx = np.full(shape, np.nan, dout.dtype)
    _kernels("global_avg_pool2d", form).backward(dout, dx)
    return dx


@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 3), C=st.integers(1, 4), H=st.integers(1, 9), W=st.integers(1, 40),
       offset=st.sampled_from([0.0, 10.0]), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_global_avg_pool_naive_and_fast_agree(N, C, H, W, offset, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C, H, W)) + offset).astype(dtype)
    out0, out1 = _gap_forward("naive", x), _gap_forward("fast", x)
    # the sums in another order: rounding errors of the order of the mean of |x| (the terms)
    _close(out1, out0, dtype, scale=float(np.abs(x).mean(axis=(2, 3)).max(initial=0.0)))
    dout = rng.standard_normal((N, C)).astype(dtype)
    np.testing.assert_array_equal(_gap_backward("fast", dout, x.shape), _gap_backward("naive", dout, x.shape))


def test_global_avg_pool_fast_form_through_the_functional_api():
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 7))
    out0, _ = F.global_avg_pool2d_forward(x, method="naive")
    out1, _ = F.global_avg_pool2d_forward(x, method="fast")
    _close(out1, out0, np.float64, scale=float(np.abs(x).mean()))
    np.testing.assert_allclose(out1, x.mean(axis=(2, 3)), rtol=1e-12, atol=1e-15)   # NumPy's mean


# ----------------------------------------------------------------------------- threads

def _fast_results():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 9, 10))
    results = []
    for p, kernel, stride in [(2.0, (2, 2), (2, 2)), (2.5, (2, 2), (2, 2)), (3.0, (3, 3), (1, 2))]:
        out = _lp_forward("fast", x, p, kernel, stride)
        dout = rng.standard_normal(out.shape)
        results += [out, _lp_backward("fast", dout, x, out, p, kernel, stride)]
    out = _gap_forward("fast", x)
    return results + [out, _gap_backward("fast", rng.standard_normal(out.shape), x.shape)]


def test_the_fast_forms_give_the_same_bits_on_one_thread_as_on_two():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _fast_results()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = _fast_results()
    finally:
        numba.set_num_threads(before)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
