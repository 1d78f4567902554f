import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F

# ---------------------------------------------------------------------------------------------
# Plain NumPy references, written here independently of the kernels: forward values and the
# analytic derivatives f'(x) (the backward reference is dout * f'(x)).
# ---------------------------------------------------------------------------------------------


def _stable_sigmoid(x):
    e = np.exp(-np.abs(x))                        # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


REFERENCES = {
    # name: (forward kwargs, f(x), f'(x))
    "relu": ({}, lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype)),
    "leaky_relu": ({"negative_slope": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x),
                   lambda x: np.where(x > 0, 1.0, 0.2)),
    "elu": ({"alpha": 0.7}, lambda x: np.where(x > 0, x, 0.7 * (np.exp(np.minimum(x, 0)) - 1.0)),
            lambda x: np.where(x > 0, 1.0, 0.7 * np.exp(np.minimum(x, 0)))),
    "sigmoid": ({}, _stable_sigmoid,
                lambda x: np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))) ** 2),
    "tanh": ({}, np.tanh, lambda x: 1.0 / np.cosh(x) ** 2),
}
ELEMENTWISE = sorted(REFERENCES)


def _pair(name):
    return getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")


def _prelu_ref(x, w, dout):
    """forward, dx, dweight of PReLU with per-channel (C,) or shared (1,) slopes."""
    if w.shape[0] == 1 or x.ndim == 1:
        wb = w[0]
        axes = tuple(range(x.ndim))
    else:
        wb = w.reshape((1, -1) + (1,) * (x.ndim - 2))
        axes = tuple(a for a in range(x.ndim) if a != 1)
    y = np.where(x > 0, x, wb * x)
    dx = dout * np.where(x > 0, 1.0, wb)
    dw = np.sum(np.where(x > 0, 0.0, dout * x), axis=axes).reshape(w.shape)
    return y, dx, dw


def _maxout_ref(x, pieces, dout):
    """forward, argmax, dx of maxout over channel groups k*pieces ... k*pieces+pieces-1."""
    N, C = x.shape[:2]
    grouped = x.reshape((N, C // pieces, pieces) + x.shape[2:])
    y = grouped.max(axis=2)
    arg = grouped.argmax(axis=2)                  # the first max on ties, as maxout must route
    dgrouped = np.zeros_like(grouped)
    np.put_along_axis(dgrouped, arg[:, :, None], dout[:, :, None], axis=2)
    return y, arg, dgrouped.reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Worked examples
# ---------------------------------------------------------------------------------------------


def test_single_neuron_worked_example():
    # The course's worked example: y = ReLU(0.12 - 0.21 - 0.05 + 0.42) = 0.28, the ReLU passes it through
    x = np.array([[0.8, -0.3, 0.1]])
    w = np.array([[0.15, 0.7, -0.5]])
    z, _ = F.linear_forward(x, w, np.array([0.42]))
    y, cache = F.relu_forward(z)
    assert y.shape == (1, 1)
    assert y[0, 0] == pytest.approx(0.28, abs=1e-12)
    (dz,) = F.relu_backward(np.ones((1, 1)), cache)
    assert dz[0, 0] == 1.0
    # the same neuron with b = -0.42: z = -0.56, the ReLU clips it and blocks the gradient
    z, _ = F.linear_forward(x, w, np.array([-0.42]))
    assert z[0, 0] == pytest.approx(-0.56, abs=1e-12)
    y, cache = F.relu_forward(z)
    assert y[0, 0] == 0.0
    assert F.relu_backward(np.ones((1, 1)), cache)[0][0, 0] == 0.0


def test_dense_layer_with_tanh_worked_example():
    # The course's worked example: Wx + b = [0.285, -0.533, 0.762], tanh -> [0.27753, -0.48767, 0.64225]
    W = np.array([[0.15, -0.7], [0.02, 0.81], [1.1, -0.24]])
    b = np.array([0.0, -0.3, 0.14])
    x = np.array([[0.5, -0.3]])
    z, _ = F.linear_forward(x, W, b)
    np.testing.assert_allclose(z, [[0.285, -0.533, 0.762]], atol=1e-12)
    y, _ = F.tanh_forward(z)
    assert y.shape == (1, 3)
    np.testing.assert_allclose(np.round(y, 5), [[0.27753, -0.48767, 0.64225]], rtol=0, atol=1e-12)


def test_backpropagation_worked_example_through_tanh():
    # The course's worked example: y = tanh(x1 w1 + x2 w2 + b), L = (y - t)^2
    x, w, b, t = np.array([[2.0, -0.5]]), np.array([[1.0, 3.0]]), np.array([-1.2]), -1.0
    v4, lin_cache = F.linear_forward(x, w, b)
    assert v4[0, 0] == pytest.approx(-0.7, abs=1e-12)
    y, tanh_cache = F.tanh_forward(v4)
    assert y[0, 0] == pytest.approx(-0.604368, abs=5e-7)
    assert (y[0, 0] - t) ** 2 == pytest.approx(0.156525, abs=5e-7)
    (local,) = F.tanh_backward(np.ones((1, 1)), tanh_cache)            # dy/dv4 = 1 - y^2
    assert local[0, 0] == pytest.approx(0.634740, abs=5e-7)
    dL_dy = 2.0 * (y - t)
    assert dL_dy[0, 0] == pytest.approx(0.791264, abs=5e-7)
    (dv4,) = F.tanh_backward(dL_dy, tanh_cache)
    assert dv4[0, 0] == pytest.approx(0.502247, abs=5e-7)
    dx, dw, db = F.linear_backward(dv4, lin_cache)
    np.testing.assert_allclose(dw, [[1.004494, -0.251123]], atol=5e-7)
    np.testing.assert_allclose(dx, [[0.502247, 1.506741]], atol=5e-7)
    np.testing.assert_allclose(db, [0.502247], atol=5e-7)


def test_maxout_of_two_affine_maps_is_the_lecture_formula(rng):
    # maxout(x) = max(w1^T x + b1, w2^T x + b2): a linear layer with 2 outputs, then pieces=2
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)
    z, _ = F.linear_forward(x, W, b)
    y, _ = F.maxout_forward(z, pieces=2)
    expected = np.maximum(x @ W[0] + b[0], x @ W[1] + b[1])
    np.testing.assert_allclose(y[:, 0], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Against the NumPy references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2)])
def test_elementwise_matches_numpy(name, shape, rng):
    kwargs, f, df = REFERENCES[name]
    forward, backward = _pair(name)
    x = 3.0 * rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    y, cache = forward(x, **kwargs)
    assert y.shape == shape and y.dtype == np.float64
    np.testing.assert_allclose(y, f(x), rtol=1e-12, atol=1e-14)
    grads = backward(dout, cache)
    assert isinstance(grads, tuple) and len(grads) == 1
    np.testing.assert_allclose(grads[0], dout * df(x), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 2, 2)])
def test_prelu_per_channel_matches_numpy(shape, rng):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    y, cache = F.prelu_forward(x, w)
    y_ref, dx_ref, dw_ref = _prelu_ref(x, w, dout)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    dx, dw = F.prelu_backward(dout, cache)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-10, atol=1e-12)
    assert dw.shape == (shape[1],)


@pytest.mark.parametrize("shape", [(9,), (2, 3), (2, 3, 2, 2)])
def test_prelu_single_slope_matches_numpy(shape, rng):
    x = rng.standard_normal(shape)
    w = np.array([0.3])
    dout = rng.standard_normal(shape)
    y, cache = F.prelu_forward(x, w)
    y_ref, dx_ref, dw_ref = _prelu_ref(x, w, dout)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    dx, dw = F.prelu_backward(dout, cache)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-14)
    assert dw.shape == (1,)
    # the shared slope collects the gradient of every element with x <= 0
    np.testing.assert_allclose(dw, [np.sum(dout[x <= 0] * x[x <= 0])], rtol=1e-10)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-10)


@pytest.mark.parametrize("shape, pieces", [((3, 6), 2), ((2, 6, 4), 3), ((2, 4, 3, 2), 4), ((2, 4, 3, 2), 2)])
def test_maxout_matches_numpy(shape, pieces, rng):
    x = rng.standard_normal(shape)
    y, cache = F.maxout_forward(x, pieces=pieces)
    dout = rng.standard_normal(y.shape)
    y_ref, arg_ref, dx_ref = _maxout_ref(x, pieces, dout)
    assert y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(cache.argmax, arg_ref)
    (dx,) = F.maxout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dx_ref)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(0, 3), K=st.integers(0, 3), pieces=st.integers(1, 4),
       trailing=st.lists(st.integers(1, 3), min_size=0, max_size=2),
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_maxout_matches_numpy_property(N, K, pieces, trailing, ties, seed):
    rng = np.random.default_rng(seed)
    shape = (N, K * pieces, *trailing)
    # with ties=True the values are small integers, so many groups have several maxima
    x = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    y, cache = F.maxout_forward(x, pieces=pieces)
    dout = rng.standard_normal(y.shape)
    y_ref, _, dx_ref = _maxout_ref(x, pieces, dout)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(F.maxout_backward(dout, cache)[0], dx_ref)


def test_maxout_routes_ties_to_the_first_max():
    x = np.array([[1.0, 1.0, 0.5, 0.5, -2.0, 3.0]])        # groups (1, 1), (0.5, 0.5), (-2, 3)
    y, cache = F.maxout_forward(x, pieces=2)
    np.testing.assert_array_equal(y, [[1.0, 0.5, 3.0]])
    (dx,) = F.maxout_backward(np.array([[10.0, 20.0, 30.0]]), cache)
    np.testing.assert_array_equal(dx, [[10.0, 0.0, 20.0, 0.0, 0.0, 30.0]])


# ---------------------------------------------------------------------------------------------
# Algebraic identities and special values
# ---------------------------------------------------------------------------------------------

# values with exact zeros of both signs, to pin down the derivative at the kink
KINKY = np.array([[-2.0, -0.0, 0.0, 1e-300, -1e-300, 3.5], [0.25, -0.25, 0.0, 7.0, -7.0, 0.0]])


def test_derivative_at_zero_comes_from_the_negative_side():
    dout = np.ones_like(KINKY)
    zero = KINKY == 0
    dx = F.relu_backward(dout, F.relu_forward(KINKY)[1])[0]
    assert np.all(dx[zero] == 0.0)
    dx = F.leaky_relu_backward(dout, F.leaky_relu_forward(KINKY, negative_slope=0.3)[1])[0]
    assert np.all(dx[zero] == 0.3)
    dx = F.elu_backward(dout, F.elu_forward(KINKY, alpha=0.6)[1])[0]
    assert np.all(dx[zero] == 0.6)
    dx, _ = F.prelu_backward(dout, F.prelu_forward(KINKY, np.array([0.45]))[1])
    assert np.all(dx[zero] == 0.45)


def test_leaky_relu_with_zero_slope_is_relu(rng):
    x = np.concatenate([KINKY.ravel(), rng.standard_normal(20)])
    dout = rng.standard_normal(x.shape)
    y_relu, c_relu = F.relu_forward(x)
    y_leaky, c_leaky = F.leaky_relu_forward(x, negative_slope=0.0)
    np.testing.assert_array_equal(y_leaky, y_relu)
    np.testing.assert_array_equal(F.leaky_relu_backward(dout, c_leaky)[0], F.relu_backward(dout, c_relu)[0])
    np.testing.assert_array_equal(y_relu, np.maximum(x, 0.0))


def test_elu_with_zero_alpha_is_relu(rng):
    x = np.concatenate([KINKY.ravel(), rng.standard_normal(20)])
    dout = rng.standard_normal(x.shape)
    y_relu, c_relu = F.relu_forward(x)
    y_elu, c_elu = F.elu_forward(x, alpha=0.0)
    np.testing.assert_array_equal(y_elu, y_relu)
    np.testing.assert_array_equal(F.elu_backward(dout, c_elu)[0], F.relu_backward(dout, c_relu)[0])


def test_prelu_per_channel_is_leaky_relu_channel_by_channel(rng):
    x = rng.standard_normal((2, 3, 4, 2))
    x[0, :, 0, 0] = 0.0
    w = np.array([0.1, -0.4, 1.5])
    dout = rng.standard_normal(x.shape)
    y, cache = F.prelu_forward(x, w)
    dx, dw = F.prelu_backward(dout, cache)
    for c in range(3):
        y_c, cache_c = F.leaky_relu_forward(x[:, c], negative_slope=float(w[c]))
        np.testing.assert_array_equal(y[:, c], y_c)
        np.testing.assert_array_equal(dx[:, c], F.leaky_relu_backward(dout[:, c], cache_c)[0])
        # d loss / d slope = sum of dout * x over the positions where the slope acted
        neg = x[:, c] <= 0
        assert dw[c] == pytest.approx(np.sum(dout[:, c][neg] * x[:, c][neg]), rel=1e-12, abs=1e-15)


def test_maxout_with_one_piece_is_the_identity(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    dout = rng.standard_normal(x.shape)
    y, cache = F.maxout_forward(x, pieces=1)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(F.maxout_backward(dout, cache)[0], dout)


def test_tanh_is_two_sigmoid_of_two_x_minus_one(rng):
    # the lecture: tanh(x) = 2 sigma(2x) - 1
    x = rng.standard_normal(11)
    np.testing.assert_allclose(F.tanh_forward(x)[0], 2.0 * F.sigmoid_forward(2.0 * x)[0] - 1.0, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_exact_and_warning_free(dtype):
    x = np.array([-1000.0, 1000.0, -100.0, 100.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s, s_cache = F.sigmoid_forward(x)
            (ds,) = F.sigmoid_backward(np.ones_like(x), s_cache)
            t, t_cache = F.tanh_forward(x)
            (dt,) = F.tanh_backward(np.ones_like(x), t_cache)
            e, e_cache = F.elu_forward(x, alpha=1.5)
            (de,) = F.elu_backward(np.ones_like(x), e_cache)
    assert s[0] == 0.0 and s[1] == 1.0                # exact, not merely close
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds))
    np.testing.assert_array_equal(ds[:2], [0.0, 0.0])
    np.testing.assert_array_equal(t, [-1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(dt, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(e[[0, 1]], np.array([-1.5, 1000.0], dtype=dtype))
    np.testing.assert_array_equal(de[[0, 1]], [0.0, 1.0])


def test_nan_and_inf_propagate():
    x = np.array([np.nan, np.inf, -np.inf])
    assert np.isnan(F.relu_forward(x)[0][0]) and F.relu_forward(x)[0][1] == np.inf
    assert F.relu_forward(x)[0][2] == 0.0
    assert np.isnan(F.leaky_relu_forward(x)[0][0])
    assert np.isnan(F.elu_forward(x)[0][0]) and F.elu_forward(x)[0][2] == -1.0
    np.testing.assert_array_equal(F.sigmoid_forward(x)[0], [np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(F.tanh_forward(x)[0], [np.nan, 1.0, -1.0])
    assert np.isnan(F.prelu_forward(x, np.array([0.1]))[0][0])
    # maxout: a NaN wins its group, as in np.max
    y, cache = F.maxout_forward(np.array([[1.0, np.nan, np.nan, 2.0, 3.0, 4.0]]), pieces=2)
    np.testing.assert_array_equal(y, [[np.nan, np.nan, 4.0]])
    np.testing.assert_array_equal(cache.argmax, [[1, 0, 1]])


# ---------------------------------------------------------------------------------------------
# dtypes, layouts, empty batches, purity
# ---------------------------------------------------------------------------------------------


def _run(name, x, rng_seed=1):
    """forward and backward of op ``name`` on x (dout drawn in float64, cast to x's dtype)."""
    rng = np.random.default_rng(rng_seed)
    if name == "prelu":
        w = np.linspace(-0.5, 0.5, x.shape[1]).astype(x.dtype)
        y, cache = F.prelu_forward(x, w)
    elif name == "maxout":
        y, cache = F.maxout_forward(x, pieces=2)
    else:
        y, cache = _pair(name)[0](x, **REFERENCES[name][0])
    dout = rng.standard_normal(y.shape).astype(x.dtype)
    return y, _pair(name)[1](dout, cache)


ALL_OPS = ELEMENTWISE + ["prelu", "maxout"]


@pytest.mark.parametrize("name", ALL_OPS)
def test_float32_agrees_with_float64(name, rng):
    x64 = (rng.permutation(48) * 0.1 - 2.35).reshape(2, 4, 3, 2)     # no ties (maxout), no zeros (kinks)
    assert np.all(x64 != 0)
    x32 = x64.astype(np.float32)
    y64, g64 = _run(name, x64)
    y32, g32 = _run(name, x32)
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-6)
    assert len(g32) == len(g64)
    for a, b in zip(g32, g64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ALL_OPS)
def test_non_contiguous_input_gives_the_same_result(name, rng):
    base = rng.standard_normal((4, 2, 3, 6))
    x = base.transpose(0, 3, 2, 1)[:, :, ::2, :]        # (4, 6, 2, 2), neither C nor F contiguous
    assert not x.flags.c_contiguous and not x.flags.f_contiguous
    y_nc, g_nc = _run(name, x)
    y_c, g_c = _run(name, np.ascontiguousarray(x))
    np.testing.assert_array_equal(y_nc, y_c)
    for a, b in zip(g_nc, g_c):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_prelu_weight_and_dout(rng):
    x = rng.standard_normal((2, 3, 4))
    w_full = np.array([0.1, 9.0, -0.2, 9.0, 0.3, 9.0])
    dout_base = rng.standard_normal((4, 3, 2))
    dout = dout_base.transpose(2, 1, 0)                  # (2, 3, 4), not contiguous
    y, cache = F.prelu_forward(x, w_full[::2])
    y_c, cache_c = F.prelu_forward(x, np.array([0.1, -0.2, 0.3]))
    np.testing.assert_array_equal(y, y_c)
    for a, b in zip(F.prelu_backward(dout, cache), F.prelu_backward(np.ascontiguousarray(dout), cache_c)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ALL_OPS)
def test_empty_batch(name, dtype):
    x = np.zeros((0, 4, 3), dtype=dtype)
    y, grads = _run(name, x)
    assert y.shape == ((0, 2, 3) if name == "maxout" else (0, 4, 3)) and y.dtype == dtype
    assert grads[0].shape == (0, 4, 3) and grads[0].dtype == dtype
    if name == "prelu":
        np.testing.assert_array_equal(grads[1], np.zeros(4, dtype=dtype))   # an empty sum is 0


def test_maxout_with_no_channels():
    y, cache = F.maxout_forward(np.zeros((2, 0, 3)), pieces=2)
    assert y.shape == (2, 0, 3)
    assert F.maxout_backward(np.zeros((2, 0, 3)), cache)[0].shape == (2, 0, 3)


@pytest.mark.parametrize("name", ALL_OPS)
def test_backward_does_not_mutate_its_inputs(name, rng):
    x = rng.standard_normal((2, 4, 3))
    x_before = x.copy()
    if name == "prelu":
        w = np.array([0.1, 0.2, 0.3, 0.4])
        y, cache = F.prelu_forward(x, w)
    elif name == "maxout":
        y, cache = F.maxout_forward(x, pieces=2)
    else:
        y, cache = _pair(name)[0](x, **REFERENCES[name][0])
    y_before = y.copy()
    dout = rng.standard_normal(y.shape)
    dout_before = dout.copy()
    first = _pair(name)[1](dout, cache)
    second = _pair(name)[1](dout, cache)
    np.testing.assert_array_equal(dout, dout_before)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(y, y_before)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
        assert a is not dout


# ---------------------------------------------------------------------------------------------
# Validation errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_OPS)
def test_input_type_and_dtype_errors(name):
    forward = _pair(name)[0]
    extra = {"prelu": (np.ones(1),)}.get(name, ())
    kwargs = {"maxout": {"pieces": 1}}.get(name, {})
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray of float32 or float64, got list"):
        forward([[1.0, 2.0]], *extra, **kwargs)
    with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
        forward(np.zeros((2, 2), dtype=np.int64), *extra, **kwargs)
    with pytest.raises(TypeError, match=r"x has dtype float16; supported dtypes are float32 or float64"):
        forward(np.zeros((2, 2), dtype=np.float16), *extra, **kwargs)
    with pytest.raises(TypeError, match=r"x has dtype complex128"):
        forward(np.zeros((2, 2), dtype=np.complex128), *extra, **kwargs)
    want = r"x must be at least 2-D \(N, C, \.\.\.\)" if name == "maxout" else r"x must be at least 1-D"
    with pytest.raises(ValueError, match=want + r", got a 0-D array of shape \(\)"):
        forward(np.array(1.0), *extra, **kwargs)


def test_maxout_rank_and_pieces_errors():
    with pytest.raises(ValueError, match=r"x must be at least 2-D \(N, C, \.\.\.\), got a 1-D array of shape \(6,\)"):
        F.maxout_forward(np.zeros(6), pieces=2)
    with pytest.raises(ValueError, match=r"pieces=2 must divide the channels of x \(axis 1\), got C=5 "
                                         r"\(x shape \(3, 5, 2\)\)"):
        F.maxout_forward(np.zeros((3, 5, 2)), pieces=2)
    with pytest.raises(ValueError, match=r"pieces must be >= 1, got 0"):
        F.maxout_forward(np.zeros((3, 4)), pieces=0)
    with pytest.raises(ValueError, match=r"pieces must be >= 1, got -2"):
        F.maxout_forward(np.zeros((3, 4)), pieces=-2)
    with pytest.raises(TypeError, match=r"pieces must be an int, got 2.0"):
        F.maxout_forward(np.zeros((3, 4)), pieces=2.0)
    with pytest.raises(TypeError, match=r"pieces must be an int, got True"):
        F.maxout_forward(np.zeros((3, 4)), pieces=True)
    with pytest.raises(TypeError, match=r"pieces"):
        F.maxout_forward(np.zeros((3, 4)))                              # pieces is required


def test_prelu_weight_errors():
    x = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\) \(one slope per channel of x, axis 1\) "
                                         r"or \(1,\) \(a single slope\) for x of shape \(2, 4, 3\), got \(3,\)"):
        F.prelu_forward(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\) .* got \(0,\)"):
        F.prelu_forward(x, np.zeros(0))
    with pytest.raises(ValueError, match=r"weight must be 1-D, got a 2-D array of shape \(1, 4\)"):
        F.prelu_forward(x, np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"weight must have shape \(1,\) for a 1-D x of shape \(5,\)"):
        F.prelu_forward(np.zeros(5), np.zeros(5))
    with pytest.raises(TypeError, match=r"weight must be a numpy.ndarray of float32 or float64, got float"):
        F.prelu_forward(x, 0.25)
    with pytest.raises(TypeError, match=r"weight has dtype int64; supported dtypes are float32 or float64"):
        F.prelu_forward(x, np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match=r"weight has dtype float32 but x has dtype float64; mixing dtypes"):
        F.prelu_forward(x, np.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match=r"weight has dtype float64 but x has dtype float32; mixing dtypes"):
        F.prelu_forward(x.astype(np.float32), np.zeros(4))


def test_hyper_parameter_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"alpha must be >= 0.0, got -0.5"):
        F.elu_forward(x, alpha=-0.5)
    with pytest.raises(TypeError, match=r"alpha must be a real number, got '1'"):
        F.elu_forward(x, alpha="1")
    with pytest.raises(TypeError, match=r"negative_slope must be a real number, got None"):
        F.leaky_relu_forward(x, negative_slope=None)
    with pytest.raises(TypeError, match=r"negative_slope must be a real number, got True"):
        F.leaky_relu_forward(x, negative_slope=True)
    with pytest.raises(TypeError):
        F.leaky_relu_forward(x, 0.1)                                    # keyword-only


@pytest.mark.parametrize("name", ALL_OPS)
def test_dout_errors(name):
    x = np.zeros((2, 4, 3))
    if name == "prelu":
        _, cache = F.prelu_forward(x, np.ones(4))
        shape = "(2, 4, 3)"
    elif name == "maxout":
        _, cache = F.maxout_forward(x, pieces=2)
        shape = "(2, 2, 3)"
    else:
        _, cache = _pair(name)[0](x)
        shape = "(2, 4, 3)"
    backward = _pair(name)[1]
    with pytest.raises(ValueError, match=rf"dout must have shape {shape.replace('(', '[(]').replace(')', '[)]')}, "
                                         r"got \(3, 4, 2\)"):
        backward(np.zeros((3, 4, 2)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape .*, got \(24,\)"):
        backward(np.zeros(24), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
        backward(np.zeros(cache.argmax.shape if name == "maxout" else x.shape, dtype=np.float32), cache)
    with pytest.raises(TypeError, match=r"dout must be a numpy.ndarray of float32 or float64, got list"):
        backward([[0.0]], cache)
