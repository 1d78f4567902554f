import warnings

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.kernels import dropout as K

# SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c), written here independently of the
# kernels: the generator as published, a state stepped by GAMMA and mixed, in Python ints, and
# the closed form z_i = mix(seed + (i + 1) GAMMA) on NumPy uint64 arrays (which wrap silently).
MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
SEED0_OUTPUTS = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]   # seed 0, published


def splitmix64_python(seed, n):
    """The first n outputs of SplitMix64 from ``seed``: the sequential generator in Python ints."""
    state, out = seed & MASK64, []
    for _ in range(n):
        state = (state + GAMMA) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        out.append(z ^ (z >> 31))
    return out


def splitmix64_numpy(seed, n):
    """The same n outputs, vectorized: z_i = mix(seed + (i + 1) * GAMMA), uint64 arrays."""
    u = np.uint64
    z = u(seed & MASK64) + (np.arange(n, dtype=u) + u(1)) * u(GAMMA)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    return z ^ (z >> u(31))


def reference_keep(shape, p, seed):
    """The documented mask: unit i (C order) kept where u_i >= p, u_i = (z_i >> 11) * 2^-53."""
    u = (splitmix64_numpy(seed, int(np.prod(shape))) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (u >= p).reshape(shape)


def int_seed_of(seed):
    """The int seed that a Generator seeded with ``seed`` hands to the kernels (its first draw)."""
    return int(np.random.default_rng(seed).integers(0, 2**63 - 1))


def test_splitmix64_references_give_the_published_outputs():
    assert splitmix64_python(0, 3) == SEED0_OUTPUTS
    assert [int(z) for z in splitmix64_numpy(0, 3)] == SEED0_OUTPUTS
    for seed in (1, 12345, 2**63 - 1, 2**64 - 1):           # the closed form is the generator
        assert [int(z) for z in splitmix64_numpy(seed, 50)] == splitmix64_python(seed, 50)


def test_the_kernels_word_is_splitmix64():
    assert [int(K._splitmix64(np.uint64(0), i)) for i in range(3)] == SEED0_OUTPUTS
    for seed in (7, 2**64 - 1):
        words = splitmix64_python(seed, 1000)
        for i in (0, 1, 2, 999):
            assert int(K._splitmix64(np.uint64(seed), i)) == words[i], (seed, i)


def test_dropout_matches_documented_mask_and_formula(rng):
    x, dout = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    p = 0.3
    out, cache = F.dropout_forward(x, p=p, seed=42)
    keep = reference_keep(x.shape, p, 42)
    assert keep.any() and not keep.all()
    np.testing.assert_array_equal(cache.keep, keep)
    np.testing.assert_allclose(out, np.where(keep, x / (1 - p), 0.0), rtol=1e-15, atol=0)
    (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_allclose(dx, np.where(keep, dout / (1 - p), 0.0), rtol=1e-15, atol=0)


@pytest.mark.parametrize("method", ["naive", "fast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_large_mask_equals_the_reference_in_both_forms(method, dtype):
    # several of the parallel twin's spans and a partial one: every span starts at its own index
    n = 3 * K.SPAN + 1234
    x = np.random.default_rng(1).standard_normal(n).astype(dtype)
    for p, seed in ((0.5, 99), (0.1, 2**64 - 2)):
        out, cache = F.dropout_forward(x, p=p, seed=seed, method=method)
        keep = reference_keep((n,), p, seed)
        np.testing.assert_array_equal(cache.keep, keep)
        scale = 1.0 / (1.0 - p)                          # out = x * keep * scale, rounded once to x's type
        np.testing.assert_array_equal(out, np.where(keep, (x.astype(np.float64) * scale).astype(dtype), 0))


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_the_threshold_is_exact_at_u_equal_to_p(method):
    # p set to element 0's own u: u >= p keeps it; the next float above drops it (the integer
    # threshold ceil(p 2^53) must neither round down nor use >)
    seed = 31
    u0 = float(splitmix64_numpy(seed, 1)[0] >> np.uint64(11)) * 2.0**-53
    assert 0.0 < u0 < 1.0
    x = np.ones(5)
    for p, kept in ((u0, True), (np.nextafter(u0, 1.0), False), (np.nextafter(u0, 0.0), True)):
        _, cache = F.dropout_forward(x, p=p, seed=seed, method=method)
        assert cache.keep[0] == kept, (p, kept)
        np.testing.assert_array_equal(cache.keep, reference_keep(x.shape, p, seed))


def test_an_int_seed_counts_modulo_2_64():
    x = np.ones(40)
    _, a = F.dropout_forward(x, p=0.5, seed=3)
    _, b = F.dropout_forward(x, p=0.5, seed=2**64 + 3)
    np.testing.assert_array_equal(a.keep, b.keep)


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
    # the Generator hands its first int draw to the kernels, then its second
    first, second = np.random.default_rng(5).integers(0, 2**63 - 1, size=2)
    np.testing.assert_array_equal(a, F.dropout_forward(x, p=0.5, seed=int(first))[0])
    np.testing.assert_array_equal(b, F.dropout_forward(x, p=0.5, seed=int(second))[0])
    np.testing.assert_array_equal(a != 0, reference_keep(x.shape, 0.5, int_seed_of(5)))


def test_inference_does_not_advance_a_generator():
    x = np.ones(64)
    gen = np.random.default_rng(8)
    F.dropout_forward(x, p=0.5, training=False, seed=gen)
    a, _ = F.dropout_forward(x, p=0.5, seed=gen)
    np.testing.assert_array_equal(a, F.dropout_forward(x, p=0.5, seed=np.random.default_rng(8))[0])


@pytest.mark.parametrize("method", ["naive", "fast"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_fraction_kept_is_close_to_1_minus_p(p, method):
    n = 200_000
    out, cache = F.dropout_forward(np.ones(n), p=p, seed=123, method=method)
    kept = out != 0
    np.testing.assert_array_equal(kept, cache.keep)
    sd = np.sqrt(p * (1 - p) / n)                        # binomial standard deviation of the fraction
    assert abs(kept.mean() - (1 - p)) < 5 * sd
    np.testing.assert_allclose(out[kept], 1.0 / (1 - p), rtol=1e-15)
    # no structure along the array: both halves and the even and odd elements keep as many
    for part in (kept[: n // 2], kept[n // 2:], kept[::2], kept[1::2]):
        assert abs(part.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / part.size)


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


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_p_zero_is_the_identity_in_training(rng, method):
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    out, cache = F.dropout_forward(x, p=0.0, seed=0, method=method)
    np.testing.assert_array_equal(out, x)
    assert cache.keep.all()
    np.testing.assert_array_equal(F.dropout_backward(dout, cache)[0], dout)
    _, big = F.dropout_forward(np.ones(3 * 2**15), p=0.0, seed=1, method=method)
    assert big.keep.all()


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_p_one_gives_zeros_without_division_by_zero(rng, method):
    x, dout = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            out, cache = F.dropout_forward(x, p=1.0, seed=0, method=method)
            (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(dx, 0.0)
    assert not cache.keep.any()
    _, big = F.dropout_forward(np.ones(3 * 2**15), p=1.0, seed=1, method=method)
    assert not big.keep.any()


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
