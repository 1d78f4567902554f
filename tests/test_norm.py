import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
from nbconv.gradcheck import assert_gradients
from nbconv.shapes import batch_norm_param_count

EPS = 1e-5
METHODS = ["naive", "fast"]          # every op's two forms (nbconv.functional.dispatch)


# ----------------------------------------------------------------------------- NumPy references

def _per_channel(v, ndim):
    """A (C,) vector shaped to broadcast along axis 1 of an ndim-D array."""
    return np.asarray(v).reshape((1, -1) + (1,) * (ndim - 2))


def _standardize(x, axes, eps=EPS):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)          # biased
    return (x - mean) / np.sqrt(var + eps)


def ref_batch_norm(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=EPS):
    """-> (out, new running_mean, new running_var), all fresh arrays."""
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        m = x.size // x.shape[1]
        new_mean = (1 - momentum) * running_mean + momentum * mean
        new_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    xhat = (x - _per_channel(mean, x.ndim)) / np.sqrt(_per_channel(var, x.ndim) + eps)
    return _per_channel(gamma, x.ndim) * xhat + _per_channel(beta, x.ndim), new_mean, new_var


def ref_batch_norm_backward(dout, x, gamma, eps=EPS):
    """Training mode, node by node through the graph mu -> xc -> var -> std -> xhat -> out."""
    axes = (0,) + tuple(range(2, x.ndim))
    m = x.size // x.shape[1]
    g = _per_channel(gamma, x.ndim)
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = (xc ** 2).mean(axis=axes, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = xc / std
    dgamma = (dout * xhat).sum(axis=axes)
    dbeta = dout.sum(axis=axes)
    dxhat = dout * g
    dxc = dxhat / std
    dstd = -(dxhat * xc / std ** 2).sum(axis=axes, keepdims=True)
    dvar = dstd * 0.5 / std
    dxc = dxc + 2.0 * xc / m * dvar
    dmu = -dxc.sum(axis=axes, keepdims=True)
    return dxc + dmu / m, dgamma, dbeta


def ref_layer_norm(x, gamma, beta, normalized_ndim, eps=EPS):
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    return gamma * _standardize(x, axes, eps) + beta


def ref_instance_norm(x, gamma, beta, eps=EPS):
    xhat = _standardize(x, tuple(range(2, x.ndim)), eps)
    return _per_channel(gamma, x.ndim) * xhat + _per_channel(beta, x.ndim)


def ref_group_norm(x, gamma, beta, num_groups, eps=EPS):
    N = x.shape[0]
    xhat = _standardize(x.reshape(N, num_groups, -1), (2,), eps).reshape(x.shape)
    return _per_channel(gamma, x.ndim) * xhat + _per_channel(beta, x.ndim)


def ref_weight_standardize(w, eps=EPS):
    return _standardize(w.reshape(w.shape[0], -1), (1,), eps).reshape(w.shape)


def ref_local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """Plain loop over channels: window c - size // 2 ... c + (size - 1) // 2, clipped."""
    C = x.shape[1]
    out = np.empty_like(x)
    for c in range(C):
        lo, hi = max(0, c - size // 2), min(C - 1, c + (size - 1) // 2)
        sumsq = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (k + alpha / size * sumsq) ** beta
    return out


# ----------------------------------------------------------------------------- helpers

def _affine(rng, shape, dtype=np.float64):
    gamma = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    return gamma.astype(dtype), rng.standard_normal(shape).astype(dtype)


def _running(rng, C, dtype=np.float64):
    return rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype)


def _fresh_stats(C, dtype=np.float64):
    return np.zeros(C, dtype=dtype), np.ones(C, dtype=dtype)


# Each op as a function of x alone (gamma, beta drawn for x's channel count), returning
# (out, grads) for a fixed dout: the generic property tests below loop over this table.
def _bn(training):
    def run(x, dout, method="auto"):
        rng = np.random.default_rng(7)
        g, b = _affine(rng, (x.shape[1],), x.dtype)
        rm, rv = _running(rng, x.shape[1], x.dtype)
        out, cache = F.batch_norm_forward(x, g, b, rm, rv, training=training, method=method)
        return out, F.batch_norm_backward(dout, cache)
    return run


def _with_affine(forward, backward, affine_shape, **hyper):
    def run(x, dout, method="auto"):
        g, b = _affine(np.random.default_rng(7), affine_shape(x), x.dtype)
        out, cache = forward(x, g, b, **hyper, method=method)
        return out, backward(dout, cache)
    return run


def _without_affine(forward, backward, **hyper):
    def run(x, dout, method="auto"):
        out, cache = forward(x, **hyper, method=method)
        return out, backward(dout, cache)
    return run


OPS = {
    "batch_norm_training": _bn(True),
    "batch_norm_inference": _bn(False),
    "layer_norm": _with_affine(F.layer_norm_forward, F.layer_norm_backward, lambda x: x.shape[1:],
                               normalized_ndim=3),
    "instance_norm": _with_affine(F.instance_norm_forward, F.instance_norm_backward, lambda x: (x.shape[1],)),
    "group_norm": _with_affine(F.group_norm_forward, F.group_norm_backward, lambda x: (x.shape[1],),
                               num_groups=2),
    "weight_standardize": _without_affine(F.weight_standardize_forward, F.weight_standardize_backward),
    "local_response_norm": _without_affine(F.local_response_norm_forward, F.local_response_norm_backward,
                                           size=3, alpha=0.5, k=2.0),
}
EMPTY_OK = [op for op in OPS if op != "batch_norm_training"]


# ============================================================================= batch norm

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 3, 4)])
def test_batch_norm_training_matches_numpy_and_updates_running_stats_in_place(rng, shape, method):
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = _affine(rng, (shape[1],))
    rm, rv = _running(rng, shape[1])
    want, want_rm, want_rv = ref_batch_norm(x, gamma, beta, rm, rv, momentum=0.2)
    rm_id, rv_id = id(rm), id(rv)
    out, _ = F.batch_norm_forward(x, gamma, beta, rm, rv, momentum=0.2, method=method)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    assert id(rm) == rm_id and id(rv) == rv_id
    np.testing.assert_allclose(rm, want_rm, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rv, want_rv, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 3, 4)])
def test_batch_norm_inference_matches_numpy(rng, shape, method):
    x = rng.standard_normal(shape)
    gamma, beta = _affine(rng, (shape[1],))
    rm, rv = _running(rng, shape[1])
    want, _, _ = ref_batch_norm(x, gamma, beta, rm, rv, training=False)
    out, _ = F.batch_norm_forward(x, gamma, beta, rm, rv, training=False, method=method)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 3, 4)])
def test_batch_norm_training_backward_matches_the_staged_chain_rule(rng, shape, method):
    x = rng.standard_normal(shape) + 0.3
    gamma, beta = _affine(rng, (shape[1],))
    dout = rng.standard_normal(shape)
    _, cache = F.batch_norm_forward(x, gamma, beta, *_fresh_stats(shape[1]), method=method)
    got = F.batch_norm_backward(dout, cache)
    for g, w in zip(got, ref_batch_norm_backward(dout, x, gamma)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_batch_norm_inference_backward_is_the_affine_gradient(rng, method):
    x, dout = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal((3, 2, 2, 3))
    gamma, beta = _affine(rng, (2,))
    rm, rv = _running(rng, 2)
    _, cache = F.batch_norm_forward(x, gamma, beta, rm, rv, training=False, method=method)
    dx, dgamma, dbeta = F.batch_norm_backward(dout, cache)
    xhat = (x - _per_channel(rm, 4)) / np.sqrt(_per_channel(rv, 4) + EPS)
    np.testing.assert_allclose(dx, dout * _per_channel(gamma / np.sqrt(rv + EPS), 4), rtol=1e-12)
    np.testing.assert_allclose(dgamma, (dout * xhat).sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(dbeta, dout.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 3)])
def test_batch_norm_training_gradients(shape):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape) + 0.5
    gamma, beta = _affine(rng, (shape[1],))
    rm, rv = _fresh_stats(shape[1])

    def forward(x, gamma, beta):
        return F.batch_norm_forward(x, gamma, beta, rm, rv, training=True)

    assert_gradients(forward, F.batch_norm_backward, [x, gamma, beta], names=["x", "gamma", "beta"],
                     dout=rng.standard_normal(shape), threshold=1e-7)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 3)])
def test_batch_norm_inference_gradients(shape):
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape)
    gamma, beta = _affine(rng, (shape[1],))
    rm, rv = _running(rng, shape[1])

    def forward(x, gamma, beta):
        return F.batch_norm_forward(x, gamma, beta, rm, rv, training=False)

    assert_gradients(forward, F.batch_norm_backward, [x, gamma, beta], names=["x", "gamma", "beta"],
                     dout=rng.standard_normal(shape), threshold=1e-7)


def test_batch_norm_nchw_equals_batch_norm_of_the_n_h_w_by_c_reshaping(rng):
    N, C, H, W = 2, 3, 2, 3
    x, dout = rng.standard_normal((N, C, H, W)), rng.standard_normal((N, C, H, W))
    gamma, beta = _affine(rng, (C,))
    rm4, rv4 = _running(rng, C)
    rm2, rv2 = rm4.copy(), rv4.copy()

    def to_rows(a):
        return a.transpose(0, 2, 3, 1).reshape(N * H * W, C)

    for training in (True, False):
        out4, cache4 = F.batch_norm_forward(x, gamma, beta, rm4, rv4, training=training, momentum=0.3)
        out2, cache2 = F.batch_norm_forward(to_rows(x), gamma, beta, rm2, rv2, training=training, momentum=0.3)
        np.testing.assert_allclose(to_rows(out4), out2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(rm4, rm2, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rv4, rv2, rtol=1e-12, atol=1e-15)
        dx4, dg4, db4 = F.batch_norm_backward(dout, cache4)
        dx2, dg2, db2 = F.batch_norm_backward(to_rows(dout), cache2)
        np.testing.assert_allclose(to_rows(dx4), dx2, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dg4, dg2, rtol=1e-12)
        np.testing.assert_allclose(db4, db2, rtol=1e-12)


def test_batch_norm_can_learn_the_identity(rng):
    # the lecture's remark: gamma = sqrt(var_B + eps), beta = mu_B gives Y = X in training
    x = rng.standard_normal((4, 3, 2, 2)) * 3 - 2
    gamma = np.sqrt(x.var(axis=(0, 2, 3)) + EPS)
    beta = x.mean(axis=(0, 2, 3))
    out, _ = F.batch_norm_forward(x, gamma, beta, *_fresh_stats(3), training=True)
    np.testing.assert_allclose(out, x, rtol=1e-12, atol=1e-12)


def test_running_statistics_after_k_steps_are_the_closed_form_exponential_average(rng):
    C, k, momentum = 3, 5, 0.25
    batches = [rng.standard_normal((4, C, 2)) * (j + 1) + j for j in range(k)]
    rm, rv = _fresh_stats(C)                                  # the lecture's start: 0 and 1
    for x in batches:
        F.batch_norm_forward(x, np.ones(C), np.zeros(C), rm, rv, momentum=momentum)
    m = 4 * 2
    mean_k = (1 - momentum) ** k * 0.0 + sum(
        momentum * (1 - momentum) ** (k - j) * x.mean(axis=(0, 2)) for j, x in enumerate(batches, 1))
    var_k = (1 - momentum) ** k * 1.0 + sum(
        momentum * (1 - momentum) ** (k - j) * x.var(axis=(0, 2), ddof=1) for j, x in enumerate(batches, 1))
    np.testing.assert_allclose(rm, mean_k, rtol=1e-12)
    np.testing.assert_allclose(rv, var_k, rtol=1e-12)
    assert m / (m - 1) * batches[0].var(axis=(0, 2)) == pytest.approx(batches[0].var(axis=(0, 2), ddof=1))


def test_momentum_zero_keeps_and_momentum_one_replaces_the_running_statistics(rng):
    x = rng.standard_normal((5, 2, 3))
    rm, rv = _running(rng, 2)
    before = rm.copy(), rv.copy()
    F.batch_norm_forward(x, np.ones(2), np.zeros(2), rm, rv, momentum=0.0)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])
    F.batch_norm_forward(x, np.ones(2), np.zeros(2), rm, rv, momentum=1.0)
    np.testing.assert_allclose(rm, x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(rv, x.var(axis=(0, 2), ddof=1), rtol=1e-12)


def test_batch_norm_inference_output_of_a_sample_ignores_the_rest_of_the_batch(rng):
    gamma, beta = _affine(rng, (3,))
    rm, rv = _running(rng, 3)
    sample = rng.standard_normal((1, 3, 2, 2))
    alone, _ = F.batch_norm_forward(sample, gamma, beta, rm, rv, training=False)
    for other in (rng.standard_normal((4, 3, 2, 2)), 100 * rng.standard_normal((2, 3, 2, 2))):
        batch = np.concatenate([other[:1], sample, other[1:]])
        out, _ = F.batch_norm_forward(batch, gamma, beta, rm, rv, training=False)
        np.testing.assert_array_equal(out[1], alone[0])
    trained, _ = F.batch_norm_forward(batch, gamma, beta, rm.copy(), rv.copy(), training=True)
    assert not np.allclose(trained[1], alone[0])               # training mode does mix the batch


def test_batch_norm_inference_changes_nothing(rng):
    x = rng.standard_normal((3, 2, 2))
    gamma, beta = _affine(rng, (2,))
    rm, rv = _running(rng, 2)
    saved = [a.copy() for a in (x, gamma, beta, rm, rv)]
    _, cache = F.batch_norm_forward(x, gamma, beta, rm, rv, training=False)
    F.batch_norm_backward(np.ones_like(x), cache)
    for a, b in zip((x, gamma, beta, rm, rv), saved):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_batch_norm_inference_accepts_read_only_and_strided_running_stats(rng, method):
    x = rng.standard_normal((3, 2))
    rm, rv = _running(rng, 4)
    rm_view, rv_view = rm[::2], rv[::2]
    rv_view.flags.writeable = False
    out, _ = F.batch_norm_forward(x, np.ones(2), np.zeros(2), rm_view, rv_view, training=False, method=method)
    np.testing.assert_allclose(out, (x - rm[::2]) / np.sqrt(rv[::2] + EPS), rtol=1e-12)


def test_batch_norm_parameter_count_is_4_L_M():
    # the lecture: 4 numbers per feature map (2 statistics, 2 trainable), N_BN = 4 L M
    L, M = 5, 16
    arrays = [(np.ones(M), np.zeros(M), *_fresh_stats(M)) for _ in range(L)]
    x = np.random.default_rng(0).standard_normal((2, M, 2, 2))
    for gamma, beta, rm, rv in arrays:                 # every layer accepts exactly these four (M,) arrays
        F.batch_norm_forward(x, gamma, beta, rm, rv)
    assert batch_norm_param_count(L, M) == sum(a.size for layer in arrays for a in layer) == 4 * L * M
    assert batch_norm_param_count(1, 96) == 384
    assert batch_norm_param_count(0, 64) == 0
    with pytest.raises(ValueError, match=r"num_layers and maps_per_layer must be ints >= 0, got \(2, -1\)"):
        batch_norm_param_count(2, -1)


def test_batch_norm_float32_running_stats_stay_float32(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    rm, rv = _fresh_stats(3, np.float32)
    out, _ = F.batch_norm_forward(x, np.ones(3, np.float32), np.zeros(3, np.float32), rm, rv)
    assert out.dtype == rm.dtype == rv.dtype == np.float32
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=0), rtol=1e-5, atol=1e-7)


def test_batch_norm_training_refuses_a_single_value_per_channel():
    for shape in [(1, 3), (1, 3, 1), (1, 3, 1, 1), (0, 3), (0, 3, 2, 2)]:
        with pytest.raises(ValueError, match=r"batch_norm in training needs more than one value per channel"):
            F.batch_norm_forward(np.zeros(shape), np.ones(3), np.zeros(3), *_fresh_stats(3))
    F.batch_norm_forward(np.zeros((1, 3, 1, 2)), np.ones(3), np.zeros(3), *_fresh_stats(3))  # 2 values: fine


def test_batch_norm_inference_on_an_empty_batch(rng):
    rm, rv = _running(rng, 3)
    out, cache = F.batch_norm_forward(np.zeros((0, 3, 2, 2)), np.ones(3), np.zeros(3), rm, rv,
                                      training=False)
    assert out.shape == (0, 3, 2, 2)
    dx, dgamma, dbeta = F.batch_norm_backward(np.zeros((0, 3, 2, 2)), cache)
    assert dx.shape == (0, 3, 2, 2) and np.all(dgamma == 0) and np.all(dbeta == 0)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(2, 4), C=st.integers(1, 3), S=st.integers(1, 4), scale=st.floats(0.1, 100),
       offset=st.floats(-100, 100), seed=st.integers(0, 2**16))
def test_batch_norm_training_output_has_mean_beta_and_std_gamma(N, C, S, scale, offset, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, S)) * scale + offset
    gamma, beta = _affine(rng, (C,))
    out, _ = F.batch_norm_forward(x, gamma, beta, *_fresh_stats(C))
    np.testing.assert_allclose(out.mean(axis=(0, 2)), beta, atol=1e-9)
    var = x.var(axis=(0, 2))
    np.testing.assert_allclose(out.std(axis=(0, 2)), np.abs(gamma) * np.sqrt(var / (var + EPS)), rtol=1e-9)


# ============================================================================= layer / instance / group norm

@pytest.mark.parametrize("shape, normalized_ndim", [((4, 6), 1), ((2, 3, 4), 2), ((2, 3, 2, 3), 3),
                                                     ((2, 3, 2, 3), 1), ((5,), 1), ((2, 3), 2)])
@pytest.mark.parametrize("method", METHODS)
def test_layer_norm_matches_numpy(rng, shape, normalized_ndim, method):
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = _affine(rng, shape[len(shape) - normalized_ndim:])
    out, _ = F.layer_norm_forward(x, gamma, beta, normalized_ndim=normalized_ndim, method=method)
    np.testing.assert_allclose(out, ref_layer_norm(x, gamma, beta, normalized_ndim), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(3, 2, 5), (2, 3, 2, 3)])
def test_instance_norm_matches_numpy(rng, shape, method):
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = _affine(rng, (shape[1],))
    out, _ = F.instance_norm_forward(x, gamma, beta, method=method)
    np.testing.assert_allclose(out, ref_instance_norm(x, gamma, beta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape, num_groups", [((2, 6, 2, 2), 1), ((2, 6, 2, 2), 2), ((2, 6, 2, 2), 3),
                                                ((3, 4, 5), 2), ((3, 6), 3)])
@pytest.mark.parametrize("method", METHODS)
def test_group_norm_matches_numpy(rng, shape, num_groups, method):
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = _affine(rng, (shape[1],))
    out, _ = F.group_norm_forward(x, gamma, beta, num_groups=num_groups, method=method)
    np.testing.assert_allclose(out, ref_group_norm(x, gamma, beta, num_groups), rtol=1e-12, atol=1e-12)


def test_layer_norm_gradients():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 3, 2, 2))
    gamma, beta = _affine(rng, (3, 2, 2))
    assert_gradients(lambda x, g, b: F.layer_norm_forward(x, g, b, normalized_ndim=3), F.layer_norm_backward,
                     [x, gamma, beta], names=["x", "gamma", "beta"], dout=rng.standard_normal(x.shape))


def test_instance_norm_gradients():
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 3, 2, 3))
    gamma, beta = _affine(rng, (3,))
    assert_gradients(F.instance_norm_forward, F.instance_norm_backward, [x, gamma, beta],
                     names=["x", "gamma", "beta"], dout=rng.standard_normal(x.shape))


def test_group_norm_gradients():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 4, 2, 3))
    gamma, beta = _affine(rng, (4,))
    assert_gradients(lambda x, g, b: F.group_norm_forward(x, g, b, num_groups=2), F.group_norm_backward,
                     [x, gamma, beta], names=["x", "gamma", "beta"], dout=rng.standard_normal(x.shape))


def test_group_norm_with_one_group_is_layer_norm_over_c_h_w(rng):
    x, dout = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))
    gamma, beta = _affine(rng, (3,))
    gn, gn_cache = F.group_norm_forward(x, gamma, beta, num_groups=1)
    wide = (3, 2, 2)                                   # the per-channel affine broadcast over (C, H, W)
    ln, ln_cache = F.layer_norm_forward(x, np.broadcast_to(gamma[:, None, None], wide),
                                        np.broadcast_to(beta[:, None, None], wide), normalized_ndim=3)
    np.testing.assert_allclose(gn, ln, rtol=1e-12, atol=1e-12)
    dx_g, dgamma_g, dbeta_g = F.group_norm_backward(dout, gn_cache)
    dx_l, dgamma_l, dbeta_l = F.layer_norm_backward(dout, ln_cache)
    np.testing.assert_allclose(dx_g, dx_l, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma_g, dgamma_l.sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(dbeta_g, dbeta_l.sum(axis=(1, 2)), rtol=1e-12)


def test_group_norm_with_c_groups_is_instance_norm(rng):
    x, dout = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3))
    gamma, beta = _affine(rng, (4,))
    gn, gn_cache = F.group_norm_forward(x, gamma, beta, num_groups=4)
    inn, in_cache = F.instance_norm_forward(x, gamma, beta)
    np.testing.assert_allclose(gn, inn, rtol=1e-12, atol=1e-12)
    for a, b in zip(F.group_norm_backward(dout, gn_cache), F.instance_norm_backward(dout, in_cache)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# ============================================================================= weight standardization

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(4, 3, 3, 3), (5, 4), (3, 2, 5)])
def test_weight_standardize_matches_numpy(rng, shape, method):
    w = rng.standard_normal(shape) * 0.1 + 0.02
    w_hat, _ = F.weight_standardize_forward(w, method=method)
    np.testing.assert_allclose(w_hat, ref_weight_standardize(w), rtol=1e-12, atol=1e-12)
    flat = w_hat.reshape(shape[0], -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-12)


def test_weight_standardize_gradients():
    rng = np.random.default_rng(31)
    w = rng.standard_normal((3, 2, 3, 3))
    assert_gradients(F.weight_standardize_forward, F.weight_standardize_backward, [w], names=["w"],
                     dout=rng.standard_normal(w.shape))


def test_weight_standardize_output_is_not_the_cache(rng):
    w = rng.standard_normal((2, 3, 2, 2))
    dout = rng.standard_normal(w.shape)
    w_hat, cache = F.weight_standardize_forward(w)
    (dw1,) = F.weight_standardize_backward(dout, cache)
    w_hat[...] = 0.0                                   # a caller scribbling over the output
    (dw2,) = F.weight_standardize_backward(dout, cache)
    np.testing.assert_array_equal(dw1, dw2)


# ============================================================================= local response norm

@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 6, 2, 2)])
@pytest.mark.parametrize("method", METHODS)
def test_local_response_norm_matches_numpy(rng, size, shape, method):
    x = rng.standard_normal(shape) * 2
    out, _ = F.local_response_norm_forward(x, size=size, alpha=0.7, beta=0.6, k=1.5, method=method)
    np.testing.assert_allclose(out, ref_local_response_norm(x, size, 0.7, 0.6, 1.5), rtol=1e-12)


def test_local_response_norm_by_hand():
    # size 2: the window of channel c is c - 1 ... c (PyTorch pads size // 2 = 1 channel in
    # front and (size - 1) // 2 = 0 behind); alpha = beta = k = 1:
    # d = 1 + (0 + 1) / 2, 1 + (1 + 4) / 2, 1 + (4 + 9) / 2 = 1.5, 3.5, 7.5
    x = np.array([[[1.0], [2.0], [3.0]]])
    out, _ = F.local_response_norm_forward(x, size=2, alpha=1.0, beta=1.0, k=1.0)
    np.testing.assert_allclose(out.ravel(), [1 / 1.5, 2 / 3.5, 3 / 7.5], rtol=1e-15)


def test_local_response_norm_alexnet_defaults(rng):
    x = rng.standard_normal((1, 7, 2, 2)) * 10
    out, _ = F.local_response_norm_forward(x, size=5)
    np.testing.assert_allclose(out, ref_local_response_norm(x, 5, 1e-4, 0.75, 1.0), rtol=1e-12)


@pytest.mark.parametrize("size, beta", [(3, 0.75), (4, 0.5), (1, 2.0)])
def test_local_response_norm_gradients(size, beta):
    rng = np.random.default_rng(41)
    x = rng.standard_normal((2, 5, 2, 2))
    assert_gradients(lambda x: F.local_response_norm_forward(x, size=size, alpha=0.8, beta=beta, k=1.5),
                     F.local_response_norm_backward, [x], names=["x"], dout=rng.standard_normal(x.shape))


# ============================================================================= every op

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", list(OPS))
def test_float32_agrees_with_float64(rng, op, method):
    x, dout = rng.standard_normal((3, 4, 2, 3)), rng.standard_normal((3, 4, 2, 3))
    out64, grads64 = OPS[op](x, dout, method)
    out32, grads32 = OPS[op](x.astype(np.float32), dout.astype(np.float32), method)
    assert out32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32)
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    for g32, g64 in zip(grads32, grads64):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", list(OPS))
def test_non_contiguous_input_gives_the_same_result(rng, op, method):
    big = rng.standard_normal((3, 8, 2, 6))
    x = big[:, ::2, :, 1::2]                           # strided in two axes
    dout = rng.standard_normal((6, 2, 4, 3)).transpose(0, 2, 1, 3)[::2]   # a transposed slice
    assert not x.flags.c_contiguous and not dout.flags.c_contiguous and x.shape == dout.shape
    out, grads = OPS[op](x, dout, method)
    want_out, want_grads = OPS[op](np.ascontiguousarray(x), np.ascontiguousarray(dout), method)
    np.testing.assert_array_equal(out, want_out)
    for g, w in zip(grads, want_grads):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", EMPTY_OK)
def test_empty_batch(op, method):
    x = np.zeros((0, 4, 2, 3))
    out, grads = OPS[op](x, np.zeros_like(x), method)
    assert out.shape == x.shape and grads[0].shape == x.shape
    assert all(np.all(g == 0) for g in grads[1:])


@pytest.mark.parametrize("op", ["batch_norm_training", "layer_norm", "instance_norm", "group_norm"])
@pytest.mark.parametrize("value", [0.0, 0.1, -3.7, 1e6])
@pytest.mark.parametrize("method", METHODS)
def test_constant_input_gives_beta_exactly(op, value, method):
    x = np.full((2, 4, 2, 3), value)
    _, beta = _affine(np.random.default_rng(7),        # the OPS table draws gamma, beta from seed 7
                      x.shape[1:] if op == "layer_norm" else (4,))
    out, grads = OPS[op](x, np.random.default_rng(1).standard_normal(x.shape), method)
    expected = beta if op == "layer_norm" else _per_channel(beta, 4)
    np.testing.assert_array_equal(out, np.broadcast_to(expected, x.shape))
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_constant_filter_standardizes_to_zero_and_constant_lrn_input_is_finite():
    w = np.full((3, 2, 2, 2), 0.3)
    w_hat, cache = F.weight_standardize_forward(w)
    np.testing.assert_array_equal(w_hat, 0.0)
    assert np.all(np.isfinite(F.weight_standardize_backward(np.ones_like(w), cache)[0]))
    out, cache = F.local_response_norm_forward(np.zeros((1, 3, 2)), size=3, beta=2.0, k=1e-3)
    assert np.all(out == 0) and np.all(np.isfinite(F.local_response_norm_backward(np.ones((1, 3, 2)), cache)[0]))


@pytest.mark.parametrize("method", METHODS)
def test_float32_batch_norm_of_a_large_offset_keeps_precision(rng, method):
    # float64 sums over shifted data: an offset of 1e4 on unit-variance data must not eat float32 precision
    x = (rng.standard_normal((8, 2, 4)) + 1e4).astype(np.float32)
    out, _ = F.batch_norm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32), *_fresh_stats(2, np.float32),
                                  method=method)
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(axis=(0, 2), keepdims=True)) / np.sqrt(x64.var(axis=(0, 2), keepdims=True) + EPS)
    np.testing.assert_allclose(out, want, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("op", list(OPS))
def test_backward_does_not_mutate_dout_or_the_cache(rng, op, method):
    x, dout = rng.standard_normal((2, 4, 2, 2)), rng.standard_normal((2, 4, 2, 2))
    saved = dout.copy()
    _, first = OPS[op](x, dout, method)
    np.testing.assert_array_equal(dout, saved)
    _, second = OPS[op](x, dout, method)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# ============================================================================= validation errors

def _bn_args(x_shape=(4, 3, 2, 2), C=3):
    return np.zeros(x_shape), np.ones(C), np.zeros(C), *_fresh_stats(C)


def test_batch_norm_errors_on_x():
    with pytest.raises(ValueError, match=r"x must be 2-D or 3-D or 4-D, got a 1-D array of shape \(3,\)"):
        F.batch_norm_forward(np.zeros(3), np.ones(3), np.zeros(3), *_fresh_stats(3))
    with pytest.raises(ValueError, match=r"x must be 2-D or 3-D or 4-D, got a 5-D array"):
        F.batch_norm_forward(np.zeros((2, 3, 1, 1, 2)), np.ones(3), np.zeros(3), *_fresh_stats(3))
    with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
        F.batch_norm_forward(np.zeros((4, 3), dtype=np.int64), np.ones(3), np.zeros(3), *_fresh_stats(3))
    with pytest.raises(TypeError, match=r"x has dtype float16; supported dtypes are float32 or float64"):
        F.batch_norm_forward(np.zeros((4, 3), dtype=np.float16), np.ones(3), np.zeros(3), *_fresh_stats(3))


def test_batch_norm_errors_on_gamma_and_beta():
    x, g, b, rm, rv = _bn_args()
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\) \(one value per channel of x, axis 1\) "
                                         r"for x of shape \(4, 3, 2, 2\), got \(4,\)"):
        F.batch_norm_forward(x, np.ones(4), b, rm, rv)
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\) .* got \(3, 1\)"):
        F.batch_norm_forward(x, g, np.zeros((3, 1)), rm, rv)
    with pytest.raises(TypeError, match=r"gamma has dtype float32 but x has dtype float64"):
        F.batch_norm_forward(x, g.astype(np.float32), b, rm, rv)
    with pytest.raises(TypeError, match=r"beta must be a numpy.ndarray of float32 or float64, got list"):
        F.batch_norm_forward(x, g, [0.0, 0.0, 0.0], rm, rv)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_errors_on_running_statistics(training):
    x, g, b, rm, rv = _bn_args()
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\), got \(4,\)"):
        F.batch_norm_forward(x, g, b, np.zeros(4), rv, training=training)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\), got \(1, 3\)"):
        F.batch_norm_forward(x, g, b, rm, np.ones((1, 3)), training=training)
    with pytest.raises(TypeError, match=r"running_mean has dtype float32 but x has dtype float64; "
                                        r"the running statistics must have x's dtype"):
        F.batch_norm_forward(x, g, b, rm.astype(np.float32), rv, training=training)
    with pytest.raises(TypeError, match=r"running_var must be a numpy.ndarray of shape \(3,\), got list"):
        F.batch_norm_forward(x, g, b, rm, [1.0, 1.0, 1.0], training=training)


def test_batch_norm_refuses_running_statistics_it_cannot_update_in_place():
    x, g, b, rm, rv = _bn_args()
    with pytest.raises(ValueError, match=r"running_mean must be C-contiguous: it is updated in place"):
        F.batch_norm_forward(x, g, b, np.zeros(6)[::2], rv)
    read_only = np.ones(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"running_var must be writable: it is updated in place in training"):
        F.batch_norm_forward(x, g, b, rm, read_only)
    np.testing.assert_array_equal(rm, 0.0)             # nothing was touched before refusing


def test_batch_norm_errors_on_hyper_parameters():
    x, g, b, rm, rv = _bn_args()
    for momentum in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\] \(the weight of the new batch\)"):
            F.batch_norm_forward(x, g, b, rm, rv, momentum=momentum)
    with pytest.raises(TypeError, match=r"momentum must be a real number, got '0.1'"):
        F.batch_norm_forward(x, g, b, rm, rv, momentum="0.1")
    for eps in (0.0, -1e-5, float("nan")):
        with pytest.raises(ValueError, match=r"eps must be > 0"):
            F.batch_norm_forward(x, g, b, rm, rv, eps=eps)
    with pytest.raises(TypeError, match=r"training must be a bool, got 'no'"):
        F.batch_norm_forward(x, g, b, rm, rv, training="no")
    np.testing.assert_array_equal(rv, 1.0)


def test_batch_norm_backward_errors_on_dout():
    x, g, b, rm, rv = _bn_args()
    _, cache = F.batch_norm_forward(x, g, b, rm, rv)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 3, 2, 2\), got \(4, 3, 4\)"):
        F.batch_norm_backward(np.zeros((4, 3, 4)), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32 but the forward output has dtype float64"):
        F.batch_norm_backward(np.zeros((4, 3, 2, 2), dtype=np.float32), cache)


def test_layer_norm_errors():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"normalized_ndim must be >= 1, got 0"):
        F.layer_norm_forward(x, np.ones(4), np.zeros(4), normalized_ndim=0)
    with pytest.raises(ValueError, match=r"normalized_ndim must be between 1 and x.ndim = 3 .* got 4"):
        F.layer_norm_forward(x, np.ones(4), np.zeros(4), normalized_ndim=4)
    with pytest.raises(TypeError, match=r"normalized_ndim must be an int, got 1.0"):
        F.layer_norm_forward(x, np.ones(4), np.zeros(4), normalized_ndim=1.0)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3, 4\) \(the last 2 axes of x, "
                                         r"normalized_ndim=2\) for x of shape \(2, 3, 4\), got \(4,\)"):
        F.layer_norm_forward(x, np.ones(4), np.zeros((3, 4)), normalized_ndim=2)
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\) .* got \(3,\)"):
        F.layer_norm_forward(x, np.ones(4), np.zeros(3), normalized_ndim=1)
    with pytest.raises(ValueError, match=r"layer_norm: the last 1 axes of x \(shape \(2, 0\)\) hold no values"):
        F.layer_norm_forward(np.zeros((2, 0)), np.ones(0), np.zeros(0), normalized_ndim=1)
    with pytest.raises(ValueError, match=r"eps must be > 0"):
        F.layer_norm_forward(x, np.ones(4), np.zeros(4), normalized_ndim=1, eps=0)
    with pytest.raises(TypeError, match=r"x has dtype float16"):
        F.layer_norm_forward(x.astype(np.float16), np.ones(4), np.zeros(4), normalized_ndim=1)
    _, cache = F.layer_norm_forward(x, np.ones(4), np.zeros(4), normalized_ndim=1)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 4\), got \(2, 12\)"):
        F.layer_norm_backward(np.zeros((2, 12)), cache)


def test_instance_norm_errors():
    with pytest.raises(ValueError, match=r"x must be 3-D or 4-D, got a 2-D array of shape \(2, 3\)"):
        F.instance_norm_forward(np.zeros((2, 3)), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\) \(one value per channel of x, axis 1\)"):
        F.instance_norm_forward(np.zeros((2, 3, 4)), np.ones(4), np.zeros(3))
    with pytest.raises(ValueError, match=r"instance_norm: the spatial axes of x \(shape \(2, 3, 0, 2\)\) hold no values"):
        F.instance_norm_forward(np.zeros((2, 3, 0, 2)), np.ones(3), np.zeros(3))
    with pytest.raises(TypeError, match=r"x has dtype complex128"):
        F.instance_norm_forward(np.zeros((2, 3, 4), dtype=complex), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"eps must be > 0"):
        F.instance_norm_forward(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3), eps=-1.0)
    _, cache = F.instance_norm_forward(np.zeros((2, 3, 4)), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 4\), got \(2, 3, 5\)"):
        F.instance_norm_backward(np.zeros((2, 3, 5)), cache)


def test_group_norm_errors():
    x = np.zeros((2, 6, 2, 2))
    with pytest.raises(ValueError, match=r"num_groups must divide the number of channels C = 6 of x "
                                         r"\(shape \(2, 6, 2, 2\)\), got num_groups=4"):
        F.group_norm_forward(x, np.ones(6), np.zeros(6), num_groups=4)
    with pytest.raises(ValueError, match=r"num_groups must be >= 1, got 0"):
        F.group_norm_forward(x, np.ones(6), np.zeros(6), num_groups=0)
    with pytest.raises(TypeError, match=r"num_groups must be an int, got 2.0"):
        F.group_norm_forward(x, np.ones(6), np.zeros(6), num_groups=2.0)
    with pytest.raises(ValueError, match=r"gamma must have shape \(6,\) .* got \(3,\)"):
        F.group_norm_forward(x, np.ones(3), np.zeros(6), num_groups=3)
    with pytest.raises(ValueError, match=r"x must be 2-D or 3-D or 4-D, got a 1-D array"):
        F.group_norm_forward(np.zeros(6), np.ones(6), np.zeros(6), num_groups=3)
    with pytest.raises(ValueError, match=r"group_norm: the channels and spatial axes of x .* hold no values"):
        F.group_norm_forward(np.zeros((2, 6, 0)), np.ones(6), np.zeros(6), num_groups=3)
    _, cache = F.group_norm_forward(x, np.ones(6), np.zeros(6), num_groups=3)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 6, 2, 2\), got \(2, 6, 4\)"):
        F.group_norm_backward(np.zeros((2, 6, 4)), cache)


def test_weight_standardize_errors():
    with pytest.raises(ValueError, match=r"w must have rank >= 2 \(an output-filter axis first\), got a 1-D"):
        F.weight_standardize_forward(np.zeros(5))
    with pytest.raises(ValueError, match=r"weight_standardize: the axes after the first of w \(shape "
                                         r"\(3, 0, 2\)\) hold no values"):
        F.weight_standardize_forward(np.zeros((3, 0, 2)))
    with pytest.raises(ValueError, match=r"eps must be > 0"):
        F.weight_standardize_forward(np.zeros((3, 2)), eps=0.0)
    with pytest.raises(TypeError, match=r"w has dtype int32"):
        F.weight_standardize_forward(np.zeros((3, 2), dtype=np.int32))
    _, cache = F.weight_standardize_forward(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 2\), got \(2, 3\)"):
        F.weight_standardize_backward(np.zeros((2, 3)), cache)
    with pytest.raises(TypeError, match=r"dout has dtype float32"):
        F.weight_standardize_backward(np.zeros((3, 2), dtype=np.float32), cache)


def test_local_response_norm_errors():
    x = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match=r"size must be >= 1, got 0"):
        F.local_response_norm_forward(x, size=0)
    with pytest.raises(TypeError, match=r"size must be an int, got 2.5"):
        F.local_response_norm_forward(x, size=2.5)
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got -0.1"):
        F.local_response_norm_forward(x, size=3, alpha=-0.1)
    with pytest.raises(ValueError, match=r"k must be > 0 \(it keeps the base .* positive\), got 0.0"):
        F.local_response_norm_forward(x, size=3, k=0)
    with pytest.raises(ValueError, match=r"beta must be a finite number, got inf"):
        F.local_response_norm_forward(x, size=3, beta=float("inf"))
    with pytest.raises(TypeError, match=r"alpha must be a real number, got None"):
        F.local_response_norm_forward(x, size=3, alpha=None)
    with pytest.raises(ValueError, match=r"x must be 3-D or 4-D, got a 2-D array"):
        F.local_response_norm_forward(np.zeros((2, 4)), size=3)
    with pytest.raises(TypeError, match=r"x has dtype float16"):
        F.local_response_norm_forward(x.astype(np.float16), size=3)
    _, cache = F.local_response_norm_forward(x, size=3)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 3\), got \(2, 4\)"):
        F.local_response_norm_backward(np.zeros((2, 4)), cache)
