"""The lecture's conventions as switches (docs/conventions.md), each against independent truth:

- batch norm's ``unbiased=False``: the running variance smoothed with the biased batch variance;
- dropout's ``mode="classic"``: training out = x * mask, inference out = (1 - p) x;
- cross-entropy with probability targets: -1/N sum_n sum_k t[n, k] ln softmax(z[n])[k];
- convolution's ``flip=True``: the true convolution, against scipy.signal.convolve2d.

The expected values are NumPy / SciPy formulas written here, the SplitMix64 mask computed
independently, and identities (a one-hot t is the class-index loss; flip=True is flip=False on
the flipped kernel).  The defaults are checked to stay what they were.
"""

import numpy as np
import pytest
import scipy.signal
import scipy.special

import nbconv.functional as F
from nbconv import layers as L
from nbconv.gradcheck import all_cases, check_layer

# ------------------------------------------------------------------------------ helpers


def reference_keep(shape, p, seed):
    """The documented dropout mask, written independently: SplitMix64's i-th word
    z_i = mix(seed + (i + 1) * GAMMA) on uint64 arrays, unit i kept where (z_i >> 11) 2^-53 >= p."""
    u = np.uint64
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = u(seed) + (np.arange(n, dtype=u) + u(1)) * u(0x9E3779B97F4A7C15)
        z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z = z ^ (z >> u(31))
    return ((z >> u(11)).astype(np.float64) * 2.0**-53 >= p).reshape(shape)


def new_cases(op, words):
    """The registry's cases of ``op`` whose label holds ``words``."""
    cases = [c for c in all_cases() if c.op == op and words in c.label]
    assert cases, (op, words)
    return cases


def assert_cases_pass(cases):
    for case in cases:
        for form in case.forms():
            check = case.run(method=form)
            assert check.passed, str(check)


FORMS = ("naive", "fast")

# ------------------------------------------------------------------------------ batch norm: unbiased


def _bn_inputs(rng, shape, dtype=np.float64):
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma, beta = rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    return x, gamma, beta, rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype)


@pytest.mark.parametrize("method", FORMS)
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4, 5)])
def test_batch_norm_unbiased_false_smooths_the_biased_variance_as_the_lecture(rng, method, shape):
    x, gamma, beta, rm, rv = _bn_inputs(rng, shape)
    axes = (0,) + tuple(range(2, x.ndim))
    mean, var = x.mean(axis=axes), x.var(axis=axes)                 # the batch's, var biased (ddof 0)
    m = x.size // x.shape[1]
    momentum = 0.3

    rm_lecture, rv_lecture = rm.copy(), rv.copy()
    y_lecture, _ = F.batch_norm_forward(x, gamma, beta, rm_lecture, rv_lecture, momentum=momentum,
                                        unbiased=False, method=method)
    np.testing.assert_allclose(rv_lecture, (1 - momentum) * rv + momentum * var, rtol=1e-12)
    np.testing.assert_allclose(rm_lecture, (1 - momentum) * rm + momentum * mean, rtol=1e-12)

    rm_default, rv_default = rm.copy(), rv.copy()                   # the default is still the unbiased var
    y_default, _ = F.batch_norm_forward(x, gamma, beta, rm_default, rv_default, momentum=momentum, method=method)
    np.testing.assert_allclose(rv_default, (1 - momentum) * rv + momentum * var * m / (m - 1), rtol=1e-12)
    np.testing.assert_array_equal(rm_default, rm_lecture)
    np.testing.assert_array_equal(y_default, y_lecture)             # only the running variance differs


def test_batch_norm_unbiased_changes_nothing_at_inference(rng):
    x, gamma, beta, rm, rv = _bn_inputs(rng, (4, 3))
    a, _ = F.batch_norm_forward(x, gamma, beta, rm, rv, training=False, unbiased=False)
    b, _ = F.batch_norm_forward(x, gamma, beta, rm, rv, training=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, gamma * (x - rm) / np.sqrt(rv + 1e-5) + beta, rtol=1e-12)


@pytest.mark.parametrize("bad", [0, 1, "no", None, 1.0])
def test_batch_norm_unbiased_must_be_a_bool(rng, bad):
    x, gamma, beta, rm, rv = _bn_inputs(rng, (4, 3))
    with pytest.raises(TypeError, match=rf"^unbiased must be a bool .*got {bad!r}$"):
        F.batch_norm_forward(x, gamma, beta, rm, rv, unbiased=bad)
    with pytest.raises(TypeError, match=rf"^unbiased must be a bool .*got {bad!r}$"):
        L.BatchNorm2d(3, unbiased=bad)


@pytest.mark.parametrize("layer, shape", [(L.BatchNorm1d, (6, 2, 5)), (L.BatchNorm2d, (3, 2, 2, 3))])
def test_batch_norm_layers_take_unbiased(rng, layer, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    lecture, default = layer(2, momentum=0.5, unbiased=False), layer(2, momentum=0.5)
    assert lecture.unbiased is False and default.unbiased is True
    np.testing.assert_array_equal(lecture.forward(x), default.forward(x))
    var = x.astype(np.float64).var(axis=(0,) + tuple(range(2, x.ndim)))
    m = x.size // 2
    np.testing.assert_allclose(lecture.running_var, 0.5 + 0.5 * var, rtol=1e-6)
    np.testing.assert_allclose(default.running_var, 0.5 + 0.5 * var * m / (m - 1), rtol=1e-6)
    assert "unbiased=False" in repr(lecture) and "unbiased" not in repr(default)
    assert check_layer(layer(2, unbiased=False, dtype=np.float64), x.astype(np.float64)).passed


def test_batch_norm_unbiased_false_is_in_the_registry_and_passes():
    assert_cases_pass(new_cases("batch_norm", "unbiased=False"))


# ------------------------------------------------------------------------------ dropout: classic


@pytest.mark.parametrize("method", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classic_dropout_trains_unscaled_on_inverted_dropouts_mask(rng, method, dtype):
    x = rng.standard_normal((5, 7, 3)).astype(dtype)
    p, seed = 0.3, 12345
    keep = reference_keep(x.shape, p, seed)
    out, cache = F.dropout_forward(x, p=p, seed=seed, mode="classic", method=method)
    np.testing.assert_array_equal(cache.keep, keep)
    np.testing.assert_array_equal(out, x * keep)                    # out = x * mask, no 1 / (1 - p)
    inverted, inverted_cache = F.dropout_forward(x, p=p, seed=seed, method=method)
    np.testing.assert_array_equal(inverted_cache.keep, keep)        # the same mask
    np.testing.assert_allclose(inverted, x * keep / (1 - p), rtol=1e-6)
    dout = rng.standard_normal(x.shape).astype(dtype)
    (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout * keep)


@pytest.mark.parametrize("method", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_classic_dropout_multiplies_by_the_keep_probability_at_inference(rng, method, dtype):
    x = rng.standard_normal((4, 6)).astype(dtype)
    out, cache = F.dropout_forward(x, p=0.25, training=False, mode="classic", method=method)
    assert out.dtype == dtype and cache.keep is None
    np.testing.assert_allclose(out, 0.75 * x.astype(np.float64), rtol=np.finfo(dtype).eps)
    dout = rng.standard_normal(x.shape).astype(dtype)
    (dx,) = F.dropout_backward(dout, cache)
    np.testing.assert_allclose(dx, 0.75 * dout.astype(np.float64), rtol=np.finfo(dtype).eps)
    same, _ = F.dropout_forward(x, p=0.25, training=False, method=method)   # the default: the identity
    np.testing.assert_array_equal(same, x)


def test_classic_dropout_inference_is_the_training_expectation():
    # E[x * mask] = (1 - p) x: the mean of many training outputs of ones, against inference's 1 - p
    p, M = 0.4, 200_000
    out, _ = F.dropout_forward(np.ones(M), p=p, seed=7, mode="classic")
    inference, _ = F.dropout_forward(np.ones(M), p=p, training=False, mode="classic")
    np.testing.assert_allclose(inference, 1 - p)
    assert abs(out.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / M)


def test_classic_dropout_extremes():
    x = np.arange(1.0, 7.0)
    out, _ = F.dropout_forward(x, p=1.0, seed=0, mode="classic")
    np.testing.assert_array_equal(out, 0.0)
    out, _ = F.dropout_forward(x, p=1.0, training=False, mode="classic")
    np.testing.assert_array_equal(out, 0.0)
    out, _ = F.dropout_forward(x, p=0.0, seed=0, mode="classic")
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("bad", ["Classic", "standard", None, 1])
def test_an_unknown_dropout_mode_names_mode_the_value_and_the_allowed_ones(bad):
    pattern = rf"^mode must be one of 'inverted', 'classic' .*got {bad!r}$"
    with pytest.raises(ValueError, match=pattern):
        F.dropout_forward(np.ones(3), p=0.5, seed=0, mode=bad)
    with pytest.raises(ValueError, match=pattern):
        F.dropout_forward(np.ones(3), p=0.5, training=False, mode=bad)
    with pytest.raises(ValueError, match=pattern):
        L.Dropout(0.5, mode=bad)


def test_the_dropout_layer_takes_mode(rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    layer = L.Dropout(0.5, seed=3, mode="classic")
    assert layer.mode == "classic" and "mode='classic'" in repr(layer) and "classic" in layer.summary_detail()
    assert repr(L.Dropout(0.5)).endswith("(p=0.5)")                 # the default prints as before
    y = layer.forward(x)
    kept = layer.cache.keep
    np.testing.assert_array_equal(y, x * kept)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), kept.astype(np.float32))
    layer.eval()
    np.testing.assert_allclose(layer.forward(x), 0.5 * x)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), np.full_like(x, 0.5))
    assert check_layer(L.Dropout(0.3, seed=1, mode="classic"), x.astype(np.float64)).passed


def test_classic_dropout_is_in_the_registry_and_passes():
    assert_cases_pass(new_cases("dropout", "classic"))


# ------------------------------------------------------------------------------ cross-entropy: probability targets


def soft_targets(rng, N, K, dtype=np.float64, total=1.0):
    t = rng.uniform(0.05, 1.0, (N, K))
    return (total * t / t.sum(axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("method", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("total", [1.0, 1.7])
def test_cross_entropy_with_probability_targets_is_the_lectures_formula(rng, method, dtype, total):
    N, K = 6, 5
    z = (rng.standard_normal((N, K)) * 3).astype(dtype)
    t = soft_targets(rng, N, K, dtype, total)
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    log_y = scipy.special.log_softmax(z64, axis=1)
    expected = -np.sum(t64 * log_y) / N                             # -1/N sum_n sum_k t[n, k] ln y[n, k]
    loss, cache = F.cross_entropy_forward(z, t, method=method)
    assert loss.shape == () and loss.dtype == dtype
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(loss, expected, rtol=rtol)
    (dz,) = F.cross_entropy_backward(0.7, cache)
    expected_dz = (np.exp(log_y) * t64.sum(axis=1, keepdims=True) - t64) / N * 0.7
    assert dz.dtype == dtype
    np.testing.assert_allclose(dz, expected_dz, rtol=rtol, atol=rtol * np.abs(expected_dz).max())


@pytest.mark.parametrize("method", FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_hot_probability_targets_equal_the_class_index_form(rng, method, dtype):
    N, K = 9, 4
    z = (rng.standard_normal((N, K)) * 2).astype(dtype)
    classes = rng.integers(0, K, N)
    one_hot = np.eye(K, dtype=dtype)[classes]
    loss_classes, cache_classes = F.cross_entropy_forward(z, classes, method=method)
    loss_one_hot, cache_one_hot = F.cross_entropy_forward(z, one_hot, method=method)
    np.testing.assert_allclose(loss_one_hot, loss_classes, rtol=4 * np.finfo(dtype).eps)
    (dz_classes,) = F.cross_entropy_backward(1.3, cache_classes)
    (dz_one_hot,) = F.cross_entropy_backward(1.3, cache_one_hot)
    np.testing.assert_allclose(dz_one_hot, dz_classes, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_probability_targets_fast_agrees_with_naive_and_stays_finite_for_large_logits(rng):
    N, K = 257, 37                                                  # rows split between the threads
    z = rng.standard_normal((N, K)) * 4
    z[0] += 1000.0                                                  # exp only after subtracting the max
    z[1, :] = -1000.0
    t = soft_targets(rng, N, K)
    naive, cache_naive = F.cross_entropy_forward(z, t, method="naive")
    fast, cache_fast = F.cross_entropy_forward(z, t, method="fast")
    assert np.isfinite(naive)
    np.testing.assert_allclose(fast, naive, rtol=1e-13)
    np.testing.assert_allclose(F.cross_entropy_backward(1.0, cache_fast)[0],
                               F.cross_entropy_backward(1.0, cache_naive)[0], rtol=1e-13, atol=1e-17)
    log_y = scipy.special.log_softmax(z, axis=1)
    np.testing.assert_allclose(naive, -np.sum(t * log_y) / N, rtol=1e-12)
    assert cache_fast.variant == "soft" and cache_naive.method == "naive"


def test_probability_target_errors():
    z = np.zeros((4, 3))
    with pytest.raises(TypeError, match=r"^target has dtype float32 but logits has dtype float64; probability "
                                        r"targets must have logits' dtype"):
        F.cross_entropy_forward(z, np.full((4, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match=r"^target of probabilities must have logits' shape \(4, 3\) .*"
                                         r"got \(4, 2\)"):
        F.cross_entropy_forward(z, np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match=r"got \(3, 3\)"):
        F.cross_entropy_forward(z, np.full((3, 3), 1 / 3))
    # a 1-D float target is class indices stored as floats: the class path's error, with the way out
    with pytest.raises(TypeError, match=r"^target has dtype float64; class targets must have an integer dtype .*"
                                        r"probability targets a float dtype and logits' shape \(4, 3\)"):
        F.cross_entropy_forward(z, np.zeros(4))
    with pytest.raises(TypeError, match=r"class targets must have an integer dtype"):
        F.cross_entropy_forward(z, np.zeros((4, 3, 1)))


def test_cross_entropy_probability_targets_are_in_the_registry_and_pass():
    assert_cases_pass(new_cases("cross_entropy", "probability targets")
                      + new_cases("cross_entropy", "summing to 1.5"))


# ------------------------------------------------------------------------------ convolution: flip

METHODS = ("direct", "im2col", "blocked")


def true_convolution(x, w, b, mode):
    """y[n, f] = b[f] + sum_c scipy.signal.convolve2d(x[n, c], w[f, c], mode): the lecture's formula."""
    return np.array([[b[f] + sum(scipy.signal.convolve2d(x[n, c], w[f, c], mode=mode) for c in range(x.shape[1]))
                      for f in range(w.shape[0])] for n in range(x.shape[0])])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode, kernel, padding", [
    ("valid", (3, 2), 0),            # P = 0
    ("full", (3, 2), (2, 1)),        # P = K - 1
    ("same", (3, 5), (1, 2)),        # P = (K - 1) / 2, odd K
])
def test_flip_is_scipys_true_convolution(rng, method, mode, kernel, padding):
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3) + kernel)
    b = rng.standard_normal(4)
    y, cache = F.conv2d_forward(x, w, b, padding=padding, flip=True, method=method)
    assert cache.flip
    np.testing.assert_allclose(y, true_convolution(x, w, b, mode), rtol=1e-12, atol=1e-12)
    y_default, _ = F.conv2d_forward(x, w, b, padding=padding, method=method)        # the default: no flip
    assert not np.allclose(y_default, y)


def test_flip_gives_the_lectures_4x6_example_with_the_kernel_flipped():
    from nbconv.examples.convolution import FLIPPED_KERNEL_ROW, IMAGE, KERNEL
    y, _ = F.conv2d_forward(IMAGE[None, None], KERNEL[None, None], flip=True, method="direct")
    np.testing.assert_array_equal(y[0, 0, 0], FLIPPED_KERNEL_ROW)
    np.testing.assert_array_equal(y[0, 0], scipy.signal.convolve2d(IMAGE, KERNEL, mode="valid"))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flip_is_cross_correlation_with_the_flipped_kernel_forward_and_backward(rng, method, dtype):
    x = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    hyper = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, method=method)
    y, cache = F.conv2d_forward(x, w, b, flip=True, **hyper)
    w_flipped = w[..., ::-1, ::-1]
    y_ref, cache_ref = F.conv2d_forward(x, w_flipped, b, **hyper)
    np.testing.assert_array_equal(y, y_ref)                 # the same kernels on the same numbers
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dy, cache)
    dx_ref, dw_ref, db_ref = F.conv2d_backward(dy, cache_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_array_equal(dw, dw_ref[..., ::-1, ::-1])     # the gradient of the w passed in
    np.testing.assert_array_equal(db, db_ref)
    assert dw.shape == w.shape and dw.flags.c_contiguous


@pytest.mark.parametrize("method", METHODS)
def test_conv1d_flip_is_numpys_convolve(rng, method):
    x, w, b = rng.standard_normal((2, 3, 9)), rng.standard_normal((2, 3, 4)), rng.standard_normal(2)
    for padding, mode in ((0, "valid"), (3, "full")):
        y, _ = F.conv1d_forward(x, w, b, padding=padding, flip=True, method=method)
        expected = np.array([[b[f] + sum(np.convolve(x[n, c], w[f, c], mode=mode) for c in range(3))
                              for f in range(2)] for n in range(2)])
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    y, cache = F.conv1d_forward(x, w, b, stride=2, dilation=2, flip=True, method=method)
    y_ref, cache_ref = F.conv1d_forward(x, w[..., ::-1], b, stride=2, dilation=2, method=method)
    np.testing.assert_array_equal(y, y_ref)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_array_equal(F.conv1d_backward(dy, cache)[1], F.conv1d_backward(dy, cache_ref)[1][..., ::-1])


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_flip_must_be_a_bool(bad):
    with pytest.raises(TypeError, match=rf"^flip must be a bool .*got {bad!r}$"):
        F.conv2d_forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), flip=bad)
    with pytest.raises(TypeError, match=rf"^flip must be a bool .*got {bad!r}$"):
        F.conv1d_forward(np.ones((1, 1, 3)), np.ones((1, 1, 2)), flip=bad)
    with pytest.raises(TypeError, match=rf"^flip must be a bool .*got {bad!r}$"):
        L.Conv2d(1, 1, 2, flip=bad)


def test_the_conv_layers_take_flip(rng):
    x = rng.standard_normal((2, 2, 5, 5))
    conv = L.Conv2d(2, 3, (3, 2), padding=1, flip=True, seed=0, dtype=np.float64, method="direct")
    assert "flip=True" in repr(conv) and "flip" not in repr(L.Conv2d(2, 3, 3))
    p = conv.params()
    y = conv.forward(x)
    np.testing.assert_allclose(y, F.conv2d_forward(x, p["w"].data[..., ::-1, ::-1], p["b"].data, padding=1)[0],
                               rtol=1e-12, atol=1e-12)
    conv.backward(np.ones_like(y))
    unflipped = L.Conv2d(2, 3, (3, 2), padding=1, seed=0, dtype=np.float64, method="direct")
    unflipped.params()["w"].data[...] = p["w"].data[..., ::-1, ::-1]
    unflipped.forward(x)
    unflipped.backward(np.ones_like(y))
    np.testing.assert_allclose(p["w"].grad, unflipped.params()["w"].grad[..., ::-1, ::-1], rtol=1e-12)
    assert check_layer(conv, x).passed
    assert check_layer(L.Conv1d(2, 2, 3, padding=2, flip=True, seed=1, dtype=np.float64),
                       rng.standard_normal((2, 2, 5))).passed
    ws = L.WSConv2d(2, 2, 3, flip=True, seed=2, dtype=np.float64)              # the standardized w, flipped
    assert ws.forward(x).shape == (2, 2, 3, 3) and ws.cache[1].flip


def test_flip_is_in_the_registry_and_passes():
    assert_cases_pass(new_cases("conv2d", "flip") + new_cases("conv1d", "flip"))
