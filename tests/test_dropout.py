import warnings

import numpy as np
import pytest

import nbconv.functional as F


def reference_keep(shape, p, seed):
    """The documented mask: unit kept where U >= p, U ~ uniform[0, 1) from default_rng(seed)."""
    return np.random.default_rng(seed).random(shape) >= p


def test_dropout_matches_documented_mask_and_formula(rng):
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    p = 0.3
    out, cache = F.dropout_forward(x, p=p, seed=42)
    keep = reference_keep(x.shape, p, 42)
    np.testing.assert_allclose(out, np.where(keep, x / (1 - p), 0.0), rtol=1e-15, atol=0)
    (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_allclose(dx, np.where(keep, dout / (1 - p), 0.0), rtol=1e-15, atol=0)


def test_same_seed_same_mask_different_seeds_differ():
    x = np.ones((8, 16))
    a, _ = F.dropout_forward(x, p=0.5, seed=1)
    b, _ = F.dropout_forward(x, p=0.5, seed=1)
    c, _ = F.dropout_forward(x, p=0.5, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    d, _ = F.dropout_forward(x, p=0.5)                  # seed None: fresh entropy each call
    e, _ = F.dropout_forward(x, p=0.5)
    assert not np.array_equal(d, e)                      # equal with probability 2**-128


def test_generator_seed_is_used_and_advanced():
    x = np.ones(64)
    gen = np.random.default_rng(5)
    a, _ = F.dropout_forward(x, p=0.5, seed=gen)
    b, _ = F.dropout_forward(x, p=0.5, seed=gen)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, F.dropout_forward(x, p=0.5, seed=5)[0])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_kept_is_close_to_1_minus_p(p):
    n = 100_000
    out, _ = F.dropout_forward(np.ones(n), p=p, seed=123)
    kept = out != 0
    sd = np.sqrt(p * (1 - p) / n)                        # binomial standard deviation of the fraction
    assert abs(kept.mean() - (1 - p)) < 5 * sd
    np.testing.assert_allclose(out[kept], 1.0 / (1 - p), rtol=1e-15)


@pytest.mark.parametrize("p", [0.25, 0.6])
def test_expected_output_equals_input(p):
    row = np.array([1.0, -2.0, 3.0, 0.5])
    n = 25_000
    x = np.tile(row, (n, 1))
    out, _ = F.dropout_forward(x, p=p, seed=7)
    sd = np.abs(row) * np.sqrt(p / (1 - p) / n)          # standard deviation of the column mean
    assert np.all(np.abs(out.mean(axis=0) - row) < 5 * sd)


def test_backward_uses_the_forward_mask(rng):
    x = rng.standard_normal((6, 7)) + 0.0
    x[x == 0] = 1.0                                      # nonzero x: out == 0 exactly where dropped
    dout = rng.standard_normal((6, 7))
    out, cache = F.dropout_forward(x, p=0.5, seed=3)
    (dx,) = F.dropout_backward(dout, cache)
    dropped = out == 0
    assert dropped.any() and (~dropped).any()
    assert np.all(dx[dropped] == 0)
    np.testing.assert_allclose(dx[~dropped], dout[~dropped] * 2.0, rtol=1e-15)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_inference_is_the_identity(rng, p):
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out, cache = F.dropout_forward(x, p=p, training=False, seed=0)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)
    (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    assert not np.shares_memory(dx, dout)


def test_p_zero_is_the_identity_in_training(rng):
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    out, cache = F.dropout_forward(x, p=0.0, seed=0)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(F.dropout_backward(dout, cache)[0], dout)


def test_p_one_gives_zeros_without_division_by_zero(rng):
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out, cache = F.dropout_forward(x, p=1.0, seed=0)
            (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(dx, 0.0)


def test_float32_keeps_dtype_and_agrees_with_float64(rng):
    x, dout = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    out64, c64 = F.dropout_forward(x, p=0.4, seed=11)
    out32, c32 = F.dropout_forward(x.astype(np.float32), p=0.4, seed=11)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-6, atol=0)
    (dx32,) = F.dropout_backward(dout.astype(np.float32), c32)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, F.dropout_backward(dout, c64)[0], rtol=1e-6, atol=0)


def test_non_contiguous_input_and_dout(rng):
    x = rng.standard_normal((6, 4)).T                    # (4, 6), a transpose
    dout = rng.standard_normal((4, 12))[:, ::2]          # (4, 6), a slice
    assert not x.flags.c_contiguous and not dout.flags.c_contiguous
    out, cache = F.dropout_forward(x, p=0.5, seed=9)
    out_c, cache_c = F.dropout_forward(np.ascontiguousarray(x), p=0.5, seed=9)
    np.testing.assert_array_equal(out, out_c)
    np.testing.assert_array_equal(F.dropout_backward(dout, cache)[0],
                                  F.dropout_backward(np.ascontiguousarray(dout), cache_c)[0])


@pytest.mark.parametrize("shape", [(), (7,), (2, 3, 2, 2), (0, 3), (2, 0, 4, 4)])
def test_any_rank_and_empty(rng, shape):
    x = rng.standard_normal(shape)
    out, cache = F.dropout_forward(x, p=0.5, seed=4)
    keep = reference_keep(shape, 0.5, 4)
    assert out.shape == shape and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.where(keep, 2.0 * x, 0.0))
    (dx,) = F.dropout_backward(np.ones(shape), cache)
    assert dx.shape == shape
    np.testing.assert_array_equal(dx, np.where(keep, 2.0, 0.0))


def test_backward_does_not_mutate_dout(rng):
    dout = rng.standard_normal((3, 3))
    keep = dout.copy()
    _, cache = F.dropout_forward(np.ones((3, 3)), p=0.5, seed=0)
    F.dropout_backward(dout, cache)
    np.testing.assert_array_equal(dout, keep)


def test_dropout_errors():
    x = np.ones((2, 3))
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"p \(the probability of dropping a unit\) must be in \[0, 1\], got"):
            F.dropout_forward(x, p=p)
    with pytest.raises(TypeError, match=r"p must be a real number, got '0.5'"):
        F.dropout_forward(x, p="0.5")
    with pytest.raises(TypeError, match=r"training must be a bool, got 'yes'"):
        F.dropout_forward(x, training="yes")
    with pytest.raises(TypeError, match=r"training must be a bool, got 1"):
        F.dropout_forward(x, training=1)
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got -1"):
        F.dropout_forward(x, seed=-1)
    with pytest.raises(TypeError, match=r"seed must be None, a non-negative int or a numpy.random.Generator, "
                                        r"got 1.5"):
        F.dropout_forward(x, seed=1.5)
    with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
        F.dropout_forward(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=r"x must be a numpy.ndarray of float32 or float64, got list"):
        F.dropout_forward([1.0, 2.0])
    for training in (True, False):
        _, cache = F.dropout_forward(x, p=0.5, training=training, seed=0)
        with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3, 2\)"):
            F.dropout_backward(np.ones((3, 2)), cache)
        with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
            F.dropout_backward(np.ones((2, 3), dtype=np.float32), cache)
