import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F


# ---------------------------------------------------------------- NumPy references (independent of nbconv)

def ref_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ref_bce(p, t):
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)))


LOSSES = ["mse", "mae", "bce", "bce_with_logits"]


def pair_inputs(rng, name, shape, dtype=np.float64):
    """(prediction, target) valid for the loss ``name``."""
    if name == "bce":
        y = rng.uniform(0.05, 0.95, shape)
    else:
        y = rng.standard_normal(shape)
    t = rng.uniform(0.0, 1.0, shape) if name.startswith("bce") else rng.standard_normal(shape)
    return y.astype(dtype), t.astype(dtype)


# ---------------------------------------------------------------- softmax

def test_softmax_worked_example():
    # The course's worked example, softmax (004): z = [1, 0, 0.5, -1, 1]
    z = np.array([1.0, 0.0, 0.5, -1.0, 1.0])
    expected = [0.32157, 0.11830, 0.19504, 0.04352, 0.32157]
    by_hand = [math.exp(v) / sum(math.exp(u) for u in z) for v in z]
    s, _ = F.softmax_forward(z)
    np.testing.assert_allclose(s, expected, atol=5e-6)
    np.testing.assert_allclose(s, by_hand, rtol=1e-14)
    s32, _ = F.softmax_forward(z.astype(np.float32))
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, expected, atol=5e-6)


@pytest.mark.parametrize("shape, axis", [((5,), 0), ((5,), -1), ((3, 4), -1), ((3, 4), 0),
                                         ((2, 3, 4), 1), ((2, 3, 4), -3), ((2, 3, 2, 2), 2)])
def test_softmax_matches_numpy_any_axis(rng, shape, axis):
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    s, cache = F.softmax_forward(x, axis=axis)
    assert s.shape == shape and s.dtype == np.float64
    np.testing.assert_allclose(s, ref_softmax(x, axis), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-12)
    (dx,) = F.softmax_backward(dout, cache)
    r = ref_softmax(x, axis)
    np.testing.assert_allclose(dx, r * (dout - (dout * r).sum(axis=axis, keepdims=True)), rtol=1e-10, atol=1e-14)


def test_softmax_backward_is_the_jacobian_transpose_times_dout(rng):
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    s, cache = F.softmax_forward(x)
    (dx,) = F.softmax_backward(dout, cache)
    for n in range(3):
        sn = ref_softmax(x[n])
        jacobian = np.diag(sn) - np.outer(sn, sn)        # J[c, k] = ds_c / dx_k
        np.testing.assert_allclose(dx[n], jacobian.T @ dout[n], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("shape, axis", [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((6,), 0)])
def test_log_softmax_matches_numpy_any_axis(rng, shape, axis):
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    out, cache = F.log_softmax_forward(x, axis=axis)
    np.testing.assert_allclose(out, ref_log_softmax(x, axis), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out, np.log(ref_softmax(x, axis)), rtol=1e-12, atol=1e-14)
    (dx,) = F.log_softmax_backward(dout, cache)
    expected = dout - ref_softmax(x, axis) * dout.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-14)


def test_log_softmax_equals_log_of_softmax(rng):
    x = 3.0 * rng.standard_normal((4, 6))
    s, _ = F.softmax_forward(x)
    ls, _ = F.log_softmax_forward(x)
    np.testing.assert_allclose(ls, np.log(s), rtol=1e-12, atol=1e-13)


def test_large_inputs_do_not_overflow(rng):
    x = rng.standard_normal((3, 5))
    target = np.array([0, 4, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            s, _ = F.softmax_forward(x)
            s_big, _ = F.softmax_forward(x + 1000.0)
            ls_big, _ = F.log_softmax_forward(x + 1000.0)
            ce, _ = F.cross_entropy_forward(x, target)
            ce_big, _ = F.cross_entropy_forward(x + 1000.0, target)
            spread, _ = F.log_softmax_forward(np.array([0.0, -1000.0]))
    np.testing.assert_allclose(s_big, s, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ls_big, ref_log_softmax(x), rtol=1e-10, atol=1e-12)
    assert float(ce_big) == pytest.approx(float(ce), rel=1e-10)
    # softmax(-1000 vs 0) underflows to 0, log_softmax stays exact: [0, -1000]
    np.testing.assert_allclose(spread, [0.0, -1000.0], rtol=1e-15, atol=0)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_softmax_property(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    seed = data.draw(st.integers(0, 2**31 - 1))
    x = 20.0 * np.random.default_rng(seed).standard_normal(shape)
    s, _ = F.softmax_forward(x, axis=axis)
    assert np.all(s >= 0)
    np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-12)
    np.testing.assert_allclose(s, ref_softmax(x, axis), rtol=1e-10, atol=1e-300)


def test_softmax_float32_agrees_with_float64(rng):
    x, dout = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    for forward, backward in [(F.softmax_forward, F.softmax_backward),
                              (F.log_softmax_forward, F.log_softmax_backward)]:
        out64, c64 = forward(x, axis=0)
        out32, c32 = forward(x.astype(np.float32), axis=0)
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-6)
        (dx32,) = backward(dout.astype(np.float32), c32)
        (dx64,) = backward(dout, c64)
        assert dx32.dtype == np.float32
        np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)


def test_softmax_non_contiguous_input_and_dout(rng):
    base = rng.standard_normal((5, 3, 4))
    x = base.transpose(2, 0, 1)[:, ::2]                  # (4, 3, 3), non-contiguous
    dout = rng.standard_normal((3, 4, 6))[..., ::2].transpose(1, 0, 2)
    assert not x.flags.c_contiguous and not dout.flags.c_contiguous
    for forward, backward in [(F.softmax_forward, F.softmax_backward),
                              (F.log_softmax_forward, F.log_softmax_backward)]:
        out, cache = forward(x, axis=1)
        out_c, cache_c = forward(np.ascontiguousarray(x), axis=1)
        np.testing.assert_array_equal(out, out_c)
        np.testing.assert_array_equal(backward(dout, cache)[0], backward(np.ascontiguousarray(dout), cache_c)[0])


def test_softmax_backward_does_not_mutate_dout(rng):
    x, dout = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    keep = dout.copy()
    _, cache = F.softmax_forward(x)
    F.softmax_backward(dout, cache)
    np.testing.assert_array_equal(dout, keep)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", [((0, 4), -1), ((0, 4), 0), ((3, 0), -1), ((2, 0, 3), 2)])
def test_softmax_empty(dtype, shape, axis):
    for forward, backward in [(F.softmax_forward, F.softmax_backward),
                              (F.log_softmax_forward, F.log_softmax_backward)]:
        out, cache = forward(np.zeros(shape, dtype=dtype), axis=axis)
        assert out.shape == shape and out.dtype == dtype
        (dx,) = backward(np.zeros(shape, dtype=dtype), cache)
        assert dx.shape == shape and dx.dtype == dtype


def test_softmax_nan_propagates_to_its_row_only():
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    s, _ = F.softmax_forward(x)
    assert np.all(np.isnan(s[0]))
    np.testing.assert_allclose(s[1], ref_softmax(x[1]), rtol=1e-14)


def test_softmax_errors():
    x = np.zeros((3, 4))
    for forward in (F.softmax_forward, F.log_softmax_forward):
        with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
            forward(np.zeros((3, 4), dtype=np.int64))
        with pytest.raises(TypeError, match=r"x has dtype float16"):
            forward(np.zeros((3, 4), dtype=np.float16))
        with pytest.raises(TypeError, match=r"x must be a numpy.ndarray of float32 or float64, got list"):
            forward([[1.0, 2.0]])
        with pytest.raises(ValueError, match=r"x must be at least 1-D \(the softmax axis\), got a 0-D array of shape \(\)"):
            forward(np.array(1.0))
        with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for x of shape \(3, 4\), got 2"):
            forward(x, axis=2)
        with pytest.raises(ValueError, match=r"axis must be in \[-2, 2\) for x of shape \(3, 4\), got -3"):
            forward(x, axis=-3)
        with pytest.raises(TypeError, match=r"axis must be an int, got 1.0"):
            forward(x, axis=1.0)
        with pytest.raises(TypeError, match=r"axis must be an int, got True"):
            forward(x, axis=True)
    for forward, backward in [(F.softmax_forward, F.softmax_backward),
                              (F.log_softmax_forward, F.log_softmax_backward)]:
        _, cache = forward(x, axis=0)
        with pytest.raises(ValueError, match=r"dout must have shape \(3, 4\), got \(4, 3\)"):
            backward(np.zeros((4, 3)), cache)
        with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
            backward(np.zeros((3, 4), dtype=np.float32), cache)


# ---------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.int8, np.uint8, np.uint64])
def test_cross_entropy_matches_numpy(rng, tdtype):
    logits = rng.standard_normal((5, 4))
    target = np.array([0, 3, 1, 1, 2], dtype=tdtype)
    loss, cache = F.cross_entropy_forward(logits, target)
    assert loss.shape == () and loss.dtype == np.float64
    expected = np.mean(-ref_log_softmax(logits)[np.arange(5), target.astype(np.int64)])
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    # the lecture's form: -sum_i t_i ln y_i with one-hot t and y = softmax, averaged over the batch
    onehot = np.eye(4)[target.astype(np.int64)]
    assert float(loss) == pytest.approx(np.mean(-(onehot * np.log(ref_softmax(logits))).sum(axis=1)), rel=1e-12)
    (dlogits,) = F.cross_entropy_backward(2.5, cache)
    np.testing.assert_allclose(dlogits, (ref_softmax(logits) - onehot) / 5 * 2.5, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-15)


def test_cross_entropy_float32_and_non_contiguous(rng):
    logits = rng.standard_normal((4, 6))[:, ::2]          # (4, 3), non-contiguous
    target = np.array([2, 0, 1, 1, 0, 2, 1, 0])[::2]      # non-contiguous target [2, 1, 0, 1]
    assert not logits.flags.c_contiguous
    loss, cache = F.cross_entropy_forward(logits, target)
    loss_c, _ = F.cross_entropy_forward(np.ascontiguousarray(logits), np.ascontiguousarray(target))
    assert float(loss) == float(loss_c)
    loss32, cache32 = F.cross_entropy_forward(logits.astype(np.float32), target)
    assert loss32.dtype == np.float32 and loss32.shape == ()
    assert float(loss32) == pytest.approx(float(loss), rel=1e-6)
    (d32,) = F.cross_entropy_backward(np.float32(1.0), cache32)
    (d64,) = F.cross_entropy_backward(1.0, cache)
    assert d32.dtype == np.float32
    np.testing.assert_allclose(d32, d64, rtol=1e-5, atol=1e-7)


def test_cross_entropy_errors():
    logits = np.zeros((4, 3))
    good = np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"logits must be 2-D, got a 1-D array"):
        F.cross_entropy_forward(np.zeros(3), np.array([0]))
    with pytest.raises(TypeError, match=r"logits has dtype int64; supported dtypes are float32 or float64"):
        F.cross_entropy_forward(np.zeros((4, 3), dtype=np.int64), good)
    with pytest.raises(TypeError, match=r"target has dtype float64; class targets must have an integer dtype"):
        F.cross_entropy_forward(logits, good.astype(np.float64))
    with pytest.raises(TypeError, match=r"target has dtype bool; class targets must have an integer dtype"):
        F.cross_entropy_forward(logits, good.astype(bool))
    with pytest.raises(TypeError, match=r"target must be a numpy.ndarray of integer class indices, got list"):
        F.cross_entropy_forward(logits, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"target must have shape \(4,\) to match logits of shape \(4, 3\), "
                                         r"got \(4, 1\)"):
        F.cross_entropy_forward(logits, good[:, None])
    with pytest.raises(ValueError, match=r"target must have shape \(4,\) to match logits of shape \(4, 3\), "
                                         r"got \(3,\)"):
        F.cross_entropy_forward(logits, good[:3])
    with pytest.raises(ValueError, match=r"target values must be class indices in \[0, 3\) for logits of "
                                         r"shape \(4, 3\), got values from 0 to 3"):
        F.cross_entropy_forward(logits, np.array([0, 3, 1, 2]))
    with pytest.raises(ValueError, match=r"target values must be class indices in \[0, 3\) .* from -1 to 2"):
        F.cross_entropy_forward(logits, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match=r"logits must have at least one class, got shape \(4, 0\)"):
        F.cross_entropy_forward(np.zeros((4, 0)), good)
    with pytest.raises(ValueError, match=r"logits is empty \(shape \(0, 3\)\); the mean loss over no sample"):
        F.cross_entropy_forward(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    _, cache = F.cross_entropy_forward(logits, good)
    with pytest.raises(ValueError, match=r"dout must have shape \(\), got \(1,\)"):
        F.cross_entropy_backward(np.ones(1), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
        F.cross_entropy_backward(np.array(1.0, dtype=np.float32), cache)


# ---------------------------------------------------------------- MSE, MAE

def test_mse_mae_worked_forms():
    y, t = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])
    loss, cache = F.mse_forward(y, t)
    assert float(loss) == pytest.approx(8.0 / 3.0, rel=1e-15)          # (0 + 4 + 4) / 3
    np.testing.assert_allclose(F.mse_backward(1.0, cache)[0], [0.0, 4.0 / 3.0, -4.0 / 3.0], rtol=1e-15)
    loss, cache = F.mae_forward(y, t)
    assert float(loss) == pytest.approx(4.0 / 3.0, rel=1e-15)          # (0 + 2 + 2) / 3
    (dy,) = F.mae_backward(1.0, cache)
    np.testing.assert_array_equal(dy, [0.0, 1.0 / 3.0, -1.0 / 3.0])     # sign(0) = 0 at the kink


def test_mse_backprop_worked_example():
    # The course's worked example, backpropagation (004): y = tanh(-0.7), t = -1, L = (y - t)^2
    y, t = np.array([np.tanh(-0.7)]), np.array([-1.0])
    assert y[0] == pytest.approx(-0.604368, abs=5e-7)
    loss, cache = F.mse_forward(y, t)
    assert float(loss) == pytest.approx(0.156525, abs=5e-7)
    (dy,) = F.mse_backward(1.0, cache)
    assert dy[0] == pytest.approx(0.791264, abs=5e-7)


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2, 2), ()])
def test_mse_mae_match_numpy(rng, shape):
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    count = max(1, int(np.prod(shape)))
    loss, cache = F.mse_forward(y, t)
    assert loss.shape == () and float(loss) == pytest.approx(np.mean((y - t) ** 2), rel=1e-12)
    np.testing.assert_allclose(F.mse_backward(0.5, cache)[0], 2 * (y - t) / count * 0.5, rtol=1e-12)
    loss, cache = F.mae_forward(y, t)
    assert float(loss) == pytest.approx(np.mean(np.abs(y - t)), rel=1e-12)
    (dy,) = F.mae_backward(0.5, cache)
    assert dy.shape == shape
    np.testing.assert_allclose(dy, np.sign(y - t) / count * 0.5, rtol=1e-12)


# ---------------------------------------------------------------- BCE

def test_bce_matches_numpy(rng):
    p, t = rng.uniform(0.05, 0.95, (3, 4)), rng.integers(0, 2, (3, 4)).astype(float)
    loss, cache = F.bce_forward(p, t)
    assert float(loss) == pytest.approx(ref_bce(p, t), rel=1e-12)
    (dp,) = F.bce_backward(1.0, cache)
    np.testing.assert_allclose(dp, (-t / p + (1 - t) / (1 - p)) / 12, rtol=1e-10)


def test_bce_clamps_log_at_minus_100():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = F.bce_forward(np.array([0.0, 1.0]), np.array([1.0, 0.0]))   # both maximally wrong
        assert float(loss) == 100.0
        loss_ok, _ = F.bce_forward(np.array([0.0, 1.0]), np.array([0.0, 1.0]))    # both exactly right
        assert float(loss_ok) == 0.0
        (dp,) = F.bce_backward(1.0, cache)
    # (p - t) / max(p (1 - p), 1e-12) / 2: finite, as in PyTorch
    np.testing.assert_allclose(dp, [-1.0 / 1e-12 / 2, 1.0 / 1e-12 / 2], rtol=1e-12)
    assert np.all(np.isfinite(dp))


def test_bce_with_logits_matches_bce_of_sigmoid(rng):
    z, t = 3.0 * rng.standard_normal((4, 5)), rng.uniform(0, 1, (4, 5))
    loss, cache = F.bce_with_logits_forward(z, t)
    assert float(loss) == pytest.approx(ref_bce(ref_sigmoid(z), t), rel=1e-10)
    assert float(loss) == pytest.approx(np.mean(np.logaddexp(0.0, z) - z * t), rel=1e-12)   # softplus(z) - z t
    (dz,) = F.bce_with_logits_backward(2.0, cache)
    np.testing.assert_allclose(dz, (ref_sigmoid(z) - t) / 20 * 2.0, rtol=1e-12, atol=1e-15)
    loss_p, _ = F.bce_forward(ref_sigmoid(z), t)
    assert float(loss_p) == pytest.approx(float(loss), rel=1e-10)


def test_bce_with_logits_is_exact_for_large_logits():
    z, t = np.array([800.0, -800.0, 800.0]), np.array([1.0, 1.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, cache = F.bce_with_logits_forward(z, t)
        (dz,) = F.bce_with_logits_backward(1.0, cache)
    assert float(loss) == pytest.approx((0.0 + 800.0 + 800.0) / 3, rel=1e-15)
    np.testing.assert_allclose(dz, [0.0, -1.0 / 3, 1.0 / 3], atol=1e-15)


# ---------------------------------------------------------------- shared behaviour of the mean losses

@pytest.mark.parametrize("name", LOSSES)
def test_losses_float32_agree_with_float64(rng, name):
    y, t = pair_inputs(rng, name, (3, 5))
    forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    l64, c64 = forward(y, t)
    l32, c32 = forward(y.astype(np.float32), t.astype(np.float32))
    assert l64.shape == () and l64.dtype == np.float64
    assert l32.shape == () and l32.dtype == np.float32
    assert float(l32) == pytest.approx(float(l64), rel=1e-5)
    (d32,) = backward(1.0, c32)
    (d64,) = backward(1.0, c64)
    assert d32.dtype == np.float32 and d32.shape == y.shape
    np.testing.assert_allclose(d32, d64, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_losses_non_contiguous(rng, name):
    y, t = pair_inputs(rng, name, (4, 6))
    y, t = y.T[::2], t[:, ::-1].T[::2]                  # (3, 4) views, non-contiguous
    assert not y.flags.c_contiguous and not t.flags.c_contiguous
    forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    loss, cache = forward(y, t)
    loss_c, cache_c = forward(np.ascontiguousarray(y), np.ascontiguousarray(t))
    assert float(loss) == float(loss_c)
    np.testing.assert_array_equal(backward(1.0, cache)[0], backward(1.0, cache_c)[0])


@pytest.mark.parametrize("name", LOSSES)
def test_loss_dout_forms(rng, name):
    y, t = pair_inputs(rng, name, (2, 3))
    forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    _, cache = forward(y, t)
    (g1,) = backward(1.0, cache)
    for dout in (1, np.float64(1.0), np.array(1.0)):
        np.testing.assert_array_equal(backward(dout, cache)[0], g1)
    np.testing.assert_allclose(backward(np.array(-3.0), cache)[0], -3.0 * g1, rtol=1e-15)
    _, cache32 = forward(y.astype(np.float32), t.astype(np.float32))
    assert backward(np.array(1.0, dtype=np.float32), cache32)[0].dtype == np.float32
    assert backward(1.0, cache32)[0].dtype == np.float32
    with pytest.raises(TypeError, match=r"dout has dtype float64 but the forward output has dtype float32"):
        backward(np.array(1.0), cache32)
    with pytest.raises(ValueError, match=r"dout must have shape \(\), got \(2, 3\)"):
        backward(np.ones((2, 3)), cache)


@pytest.mark.parametrize("name, arg", [("mse", "y"), ("mae", "y"), ("bce", "p"), ("bce_with_logits", "z")])
def test_loss_errors(name, arg):
    forward = getattr(F, f"{name}_forward")
    y = np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=rf"t must have the shape of {arg}, \(2, 3\), got \(3, 2\)"):
        forward(y, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=rf"t must have the shape of {arg}, \(2, 3\), got \(6,\)"):
        forward(y, np.zeros(6))
    with pytest.raises(TypeError, match=rf"t has dtype float32 but {arg} has dtype float64"):
        forward(y, np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match=rf"{arg} has dtype int64; supported dtypes are float32 or float64"):
        forward(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"t has dtype int64; supported dtypes are float32 or float64"):
        forward(y, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=rf"{arg} must be a numpy.ndarray of float32 or float64, got list"):
        forward([0.5, 0.5], np.zeros(2))
    with pytest.raises(ValueError, match=rf"{arg} is empty \(shape \(0, 3\)\); the mean loss over no element "
                                         r"is undefined"):
        forward(np.zeros((0, 3)), np.zeros((0, 3)))


def test_bce_refuses_values_outside_0_1():
    t = np.zeros(3)
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\] .* got values from -0.5 to 0.5"):
        F.bce_forward(np.array([-0.5, 0.5, 0.2]), t)
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\] .* got values from 0.2 to 1.5"):
        F.bce_forward(np.array([1.5, 0.5, 0.2]), t)
    loss, _ = F.bce_forward(np.array([np.nan, 0.5, 0.2]), t)       # NaN is not an error: it propagates
    assert np.isnan(loss)
