"""The lecture's conventions as switches on the GPU path (docs/conventions.md): the new CUDA kernels
of cross-entropy with probability targets against the CPU's, and each switch through
nbconv.functional on device arrays against the formula or the CPU path."""

import numpy as np
import pytest
import scipy.special

import nbconv.functional as F
from nbconv import devices
from nbconv.gradcheck.device_cases import cuda_cases

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:\s*Compilation is falling back to object mode:numba.core.errors.NumbaWarning"),
]


def _dev(a):
    from numba import cuda
    return cuda.to_device(a)


def _host(a):
    assert devices.is_device_array(a), type(a)
    return a.copy_to_host()


def _soft_targets(rng, N, K, dtype, total=1.0):
    t = rng.uniform(0.05, 1.0, (N, K))
    return (total * t / t.sum(axis=1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("N, K", [(6, 5), (1, 1), (3, 11)])
def test_cross_entropy_soft_kernels_equal_the_cpus(rng, dtype, compare, N, K):
    import nbconv.kernels.cuda.loss as G
    import nbconv.kernels.loss as K_
    logits = (rng.standard_normal((N, K)) * 4).astype(dtype)
    logits[0] += 1000.0                                    # stable only after subtracting the max
    target = _soft_targets(rng, N, K, dtype, total=1.3)    # rows not summing to 1: the sum_k t factor
    cpu = compare(K_.cross_entropy_soft_forward, G.cross_entropy_soft_forward, logits, target,
                  np.full_like(logits, np.nan))
    probs = cpu[2]
    compare(K_.cross_entropy_soft_backward, G.cross_entropy_soft_backward, probs, target, 0.7,
            np.full_like(logits, np.nan))


def test_cross_entropy_probability_targets_on_the_device(rng):
    N, K = 5, 4
    z, t = rng.standard_normal((N, K)) * 2, _soft_targets(rng, N, K, np.float64)
    loss, cache = F.cross_entropy_forward(_dev(z), _dev(t))
    log_y = scipy.special.log_softmax(z, axis=1)
    np.testing.assert_allclose(loss, -np.sum(t * log_y) / N, rtol=1e-12)
    assert devices.is_device_array(loss) and cache.variant == "soft" and devices.is_device_array(cache.target)
    (dz,) = F.cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(_host(dz), (np.exp(log_y) - t) / N, rtol=1e-12, atol=1e-15)
    # one-hot probabilities are the class-index form on the device too
    classes = rng.integers(0, K, N)
    one_hot, _ = F.cross_entropy_forward(_dev(z), _dev(np.eye(K)[classes]))
    indices, _ = F.cross_entropy_forward(_dev(z), _dev(classes))
    np.testing.assert_allclose(one_hot, indices, rtol=1e-14)
    with pytest.raises(TypeError, match="target is a numpy.ndarray on the host"):
        F.cross_entropy_forward(_dev(z), t)
    with pytest.raises(ValueError, match=r"target of probabilities must have logits' shape \(5, 4\)"):
        F.cross_entropy_forward(_dev(z), _dev(t[:, :3].copy()))


def _reference_keep(M, p, seed):
    u = np.uint64
    with np.errstate(over="ignore"):
        z = u(seed) + (np.arange(M, dtype=u) + u(1)) * u(0x9E3779B97F4A7C15)
        z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z = z ^ (z >> u(31))
    return (z >> u(11)).astype(np.float64) * 2.0**-53 >= p


def test_classic_dropout_on_the_device(rng, dtype):
    x = rng.standard_normal((3, 50)).astype(dtype)
    p, seed = 0.3, 99
    keep = _reference_keep(x.size, p, seed).reshape(x.shape)
    out, cache = F.dropout_forward(_dev(x), p=p, seed=seed, mode="classic")
    np.testing.assert_array_equal(_host(cache.keep), keep)
    np.testing.assert_array_equal(_host(out), x * keep)
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(_host(F.dropout_backward(_dev(dout), cache)[0]), dout * keep)
    out, cache = F.dropout_forward(_dev(x), p=p, training=False, mode="classic")     # the scale kernel
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(_host(out), 0.7 * x.astype(np.float64), rtol=eps)
    np.testing.assert_allclose(_host(F.dropout_backward(_dev(dout), cache)[0]), 0.7 * dout.astype(np.float64),
                               rtol=eps)
    empty, _ = F.dropout_forward(_dev(np.zeros((0, 3), dtype)), p=p, training=False, mode="classic")
    assert _host(empty).shape == (0, 3)


def test_batch_norm_unbiased_false_on_the_device(rng):
    x = rng.standard_normal((4, 3, 2)) + 1.0
    gamma, beta = np.ones(3), np.zeros(3)
    rm, rv = _dev(np.zeros(3)), _dev(np.ones(3))
    F.batch_norm_forward(_dev(x), _dev(gamma), _dev(beta), rm, rv, momentum=0.25, unbiased=False)
    np.testing.assert_allclose(_host(rv), 0.75 + 0.25 * x.var(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(_host(rm), 0.25 * x.mean(axis=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize("method", ["direct", "im2col"])
def test_conv2d_flip_on_the_device_equals_the_cpu(rng, method):
    x, w, b = rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(2)
    y, cache = F.conv2d_forward(x, w, b, padding=1, flip=True, method=method)
    y_dev, cache_dev = F.conv2d_forward(_dev(x), _dev(w), _dev(b), padding=1, flip=True, method=method)
    np.testing.assert_allclose(_host(y_dev), y, rtol=1e-12, atol=1e-12)
    assert cache_dev.flip and devices.is_device_array(cache_dev.w)
    dy = rng.standard_normal(y.shape)
    for got, want in zip(F.conv2d_backward(_dev(dy), cache_dev), F.conv2d_backward(dy, cache)):
        np.testing.assert_allclose(_host(got), want, rtol=1e-12, atol=1e-12)


SWITCH_CASES = [c for c in cuda_cases() if any(word in c.label for word in ("flip", "classic", "unbiased=False",
                                                                            "probability targets"))]


@pytest.mark.parametrize("case", SWITCH_CASES, ids=[f"{c.op}: {c.label}" for c in SWITCH_CASES])
def test_the_switches_device_gradient_checks_pass(case):
    check = case.run(device="cuda")
    assert check.passed, str(check)


def test_every_switch_has_a_device_case():
    assert {c.op for c in SWITCH_CASES} == {"conv2d", "cross_entropy", "dropout", "batch_norm"}
    assert len(SWITCH_CASES) == 5
