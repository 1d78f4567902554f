"""The normalizations' two forms (nbconv.functional.dispatch): the fast twins agree with the naive
steps on hypothesis-drawn shapes, forward and backward, in float64 to 1e-12 and in float32 to a
few units of rounding; batch norm's running statistics come out the same; the fast forms give the
same bits on one thread as on two; and the layers carry a method."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
import nbconv.layers as L
from nbconv.functional import dispatch

NORM_OPS = ["batch_norm", "layer_norm", "instance_norm", "group_norm", "weight_standardize", "local_response_norm"]
DTYPES = st.sampled_from([np.float32, np.float64])


def _close(actual, expected, dtype, ulps=8, scale=1.0):
    """float64: 1e-12 relative; float32: ``ulps`` units of float32 rounding, relative to the
    array's largest value or ``scale``, whichever is larger (at least 1: the values are of
    order 1)."""
    assert actual.dtype == expected.dtype == dtype and actual.shape == expected.shape
    scale = max(1.0, scale, float(np.abs(expected).max(initial=0.0)))
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=ulps * np.finfo(np.float32).eps * scale)


def _both_forms(forward, backward, inputs, dout, **hyper):
    """{form: (out, grads, inputs after the call)} for "naive" and "fast", each on fresh copies."""
    results = {}
    for form in ("naive", "fast"):
        args = [a.copy() for a in inputs]
        out, cache = forward(*args, **hyper, method=form)
        assert cache.method == form
        results[form] = (out, backward(dout, cache), args)
    return results


def _agree(results, dtype, ulps=8, dx_scale=1.0):
    """The fast form's out, gradients and inputs after the call equal the naive form's.  dx (the
    first gradient) to the scale of the terms its formula adds, ``dx_scale``: where they cancel,
    dx is smaller than its rounding errors, in either form."""
    (out0, grads0, args0), (out1, grads1, args1) = results["naive"], results["fast"]
    _close(out1, out0, dtype, ulps)
    for k, (g1, g0) in enumerate(zip(grads1, grads0)):
        _close(g1, g0, dtype, ulps, scale=dx_scale if k == 0 else 1.0)
    for a1, a0 in zip(args1, args0):               # batch norm's running statistics
        _close(a1, a0, dtype, ulps)


def _data(seed, shape, dtype, offset=0.0, scale=1.0):
    """(x, dout): x with a common offset (the shifted sums must keep it), dout standard normal."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale + offset
    return x.astype(dtype), rng.standard_normal(shape).astype(dtype)


def _dx_scale(groups, gamma, dout, eps=1e-5):
    """inv_std * |gamma * dout| at its largest: the size of the terms of dx = inv_std * (dxhat -
    mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = gamma * dout.  ``groups``: x reshaped to
    one group per row (NumPy's variance, in float64), or the variances themselves (1-D)."""
    var = groups.astype(np.float64)
    var = var.var(axis=1) if var.ndim == 2 else var
    inv_std = 1.0 / np.sqrt(var.min(initial=np.inf) + eps)
    return float(inv_std * np.abs(gamma).max(initial=0.0) * np.abs(dout).max(initial=0.0))


def _affine(seed, shape, dtype):
    rng = np.random.default_rng(seed + 1)
    return rng.uniform(0.5, 1.5, shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


SPATIAL = st.lists(st.integers(1, 5), min_size=0, max_size=2)          # () (N, C), (L,), (H, W)
OFFSET = st.sampled_from([0.0, 3.0, -50.0])


# ----------------------------------------------------------------------------- naive == fast

@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 6), C=st.integers(1, 5), spatial=SPATIAL, training=st.booleans(), offset=OFFSET,
       dtype=DTYPES, seed=st.integers(0, 2**16))
def test_batch_norm_forms_agree_and_update_the_same_running_statistics(N, C, spatial, training, offset, dtype,
                                                                       seed):
    shape = (N, C, *spatial)
    if training and N * int(np.prod(spatial)) < 2:
        N, shape = 2, (2, C, *spatial)                 # training needs two values per channel
    x, dout = _data(seed, shape, dtype, offset)
    gamma, beta = _affine(seed, C, dtype)
    rng = np.random.default_rng(seed + 2)
    running = [rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype)]
    results = _both_forms(F.batch_norm_forward, F.batch_norm_backward, [x, gamma, beta, *running], dout,
                          training=training, momentum=0.3)
    groups = np.moveaxis(x, 1, 0).reshape(C, -1) if training else running[1]   # inference: running var
    _agree(results, dtype, dx_scale=_dx_scale(groups, gamma, dout))
    if not training:                                   # inference leaves them alone, in both forms
        for form in ("naive", "fast"):
            for after, before in zip(results[form][2][3:], running):
                np.testing.assert_array_equal(after, before)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4), data=st.data(), offset=OFFSET, dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_layer_norm_forms_agree(shape, data, offset, dtype, seed):
    normalized_ndim = data.draw(st.integers(1, len(shape)))
    x, dout = _data(seed, tuple(shape), dtype, offset)
    gamma, beta = _affine(seed, tuple(shape[len(shape) - normalized_ndim:]), dtype)
    _agree(_both_forms(F.layer_norm_forward, F.layer_norm_backward, [x, gamma, beta], dout,
                       normalized_ndim=normalized_ndim), dtype,
           dx_scale=_dx_scale(x.reshape(-1, gamma.size), gamma, dout))


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 4), C=st.integers(1, 5), spatial=st.lists(st.integers(1, 5), min_size=1, max_size=2),
       offset=OFFSET, dtype=DTYPES, seed=st.integers(0, 2**16))
def test_instance_norm_forms_agree(N, C, spatial, offset, dtype, seed):
    x, dout = _data(seed, (N, C, *spatial), dtype, offset)
    gamma, beta = _affine(seed, C, dtype)
    _agree(_both_forms(F.instance_norm_forward, F.instance_norm_backward, [x, gamma, beta], dout), dtype,
           dx_scale=_dx_scale(x.reshape(N * C, -1), gamma, dout))


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 4), G=st.integers(1, 3), K=st.integers(1, 3), spatial=SPATIAL, offset=OFFSET,
       dtype=DTYPES, seed=st.integers(0, 2**16))
def test_group_norm_forms_agree(N, G, K, spatial, offset, dtype, seed):
    x, dout = _data(seed, (N, G * K, *spatial), dtype, offset)
    gamma, beta = _affine(seed, G * K, dtype)
    _agree(_both_forms(F.group_norm_forward, F.group_norm_backward, [x, gamma, beta], dout, num_groups=G), dtype,
           dx_scale=_dx_scale(x.reshape(N * G, -1), gamma, dout))


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4), offset=OFFSET, dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_weight_standardize_forms_agree(shape, offset, dtype, seed):
    w, dout = _data(seed, tuple(shape), dtype, offset)
    _agree(_both_forms(F.weight_standardize_forward, F.weight_standardize_backward, [w], dout), dtype,
           dx_scale=_dx_scale(w.reshape(shape[0], -1), np.ones(1), dout))


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 7), spatial=st.lists(st.integers(1, 5), min_size=1, max_size=2),
       size=st.integers(1, 6), alpha=st.sampled_from([1e-4, 0.5, 2.0]), beta=st.sampled_from([0.5, 0.75, 2.0]),
       k=st.sampled_from([1.0, 2.0]), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_local_response_norm_forms_agree(N, C, spatial, size, alpha, beta, k, dtype, seed):
    # the fast form's power is exp(-beta * log d) with vecmath (2 ulp each, in x's dtype): its
    # error grows with |beta * log d| (here below 6), hence more room in float32
    x, dout = _data(seed, (N, C, *spatial), dtype, scale=1.5)
    _agree(_both_forms(F.local_response_norm_forward, F.local_response_norm_backward, [x], dout,
                       size=size, alpha=alpha, beta=beta, k=k), dtype, ulps=32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_forms_of_a_constant_group_give_beta_exactly(dtype):
    x = np.full((3, 4, 2, 3), 7.25, dtype)
    gamma, beta = _affine(0, 4, dtype)
    per_channel = np.broadcast_to(beta[None, :, None, None], x.shape)
    stats = [np.zeros(4, dtype), np.ones(4, dtype)]
    checks = [
        (F.batch_norm_forward(x, gamma, beta, *stats, method="fast")[0], per_channel),
        (F.instance_norm_forward(x, gamma, beta, method="fast")[0], per_channel),
        (F.group_norm_forward(x, gamma, beta, num_groups=2, method="fast")[0], per_channel),
        (F.layer_norm_forward(x, np.ones((2, 3), dtype), np.full((2, 3), -0.5, dtype), normalized_ndim=2,
                              method="fast")[0], np.full(x.shape, -0.5, dtype)),
        (F.weight_standardize_forward(x, method="fast")[0], np.zeros(x.shape, dtype)),
    ]
    for out, expected in checks:
        np.testing.assert_array_equal(out, expected)


def test_fast_float32_keeps_its_precision_under_a_large_offset():
    # the statistics are shifted float64 sums in both forms: x = 1000 + noise in float32 must
    # normalize as well as its float64 copy does (NumPy in float64 is the reference)
    rng = np.random.default_rng(3)
    x32 = (1000.0 + rng.standard_normal((4, 3, 5, 5))).astype(np.float32)
    x64 = x32.astype(np.float64)
    for axes, out in [((0, 2, 3), F.batch_norm_forward(x32, np.ones(3, np.float32), np.zeros(3, np.float32),
                                                       np.zeros(3, np.float32), np.ones(3, np.float32),
                                                       method="fast")[0]),
                      ((2, 3), F.instance_norm_forward(x32, np.ones(3, np.float32), np.zeros(3, np.float32),
                                                       method="fast")[0]),
                      ((1, 2, 3), F.layer_norm_forward(x32, np.ones((3, 5, 5), np.float32),
                                                       np.zeros((3, 5, 5), np.float32), normalized_ndim=3,
                                                       method="fast")[0])]:
        mean, var = x64.mean(axis=axes, keepdims=True), x64.var(axis=axes, keepdims=True)
        np.testing.assert_allclose(out, (x64 - mean) / np.sqrt(var + 1e-5), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------- threads

def _every_fast_result(seed=0):
    """Forward and backward of every norm op in its fast form, on shapes with several tasks per
    thread (layer norm: 360 columns, two column blocks), as one flat list of arrays."""
    x, dout = _data(seed, (6, 8, 5, 9), np.float32, offset=2.0)
    gamma, beta = _affine(seed, 8, np.float32)
    results = []
    for training in (True, False):
        stats = [np.zeros(8, np.float32), np.ones(8, np.float32)]
        out, cache = F.batch_norm_forward(x, gamma, beta, *stats, training=training, method="fast")
        results += [out, *stats, *F.batch_norm_backward(dout, cache)]
    g3, b3 = _affine(seed, (8, 5, 9), np.float32)
    calls = [(F.layer_norm_forward, F.layer_norm_backward, (x, g3, b3), {"normalized_ndim": 3}),
             (F.instance_norm_forward, F.instance_norm_backward, (x, gamma, beta), {}),
             (F.group_norm_forward, F.group_norm_backward, (x, gamma, beta), {"num_groups": 4}),
             (F.weight_standardize_forward, F.weight_standardize_backward, (x,), {}),
             (F.local_response_norm_forward, F.local_response_norm_backward, (x,), {"size": 5, "alpha": 0.5})]
    for forward, backward, args, hyper in calls:
        out, cache = forward(*args, **hyper, method="fast")
        results += [out, *backward(dout, cache)]
    return results


def test_fast_forms_give_the_same_bits_on_one_thread_as_on_two():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba runs on one thread here")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        two = _every_fast_result()
        numba.set_num_threads(1)
        one = _every_fast_result()
    finally:
        numba.set_num_threads(before)
    assert len(one) == len(two) == 28
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- the table, the layers

@pytest.mark.parametrize("op", NORM_OPS)
def test_every_norm_op_has_both_forms_and_auto_switches_at_fast_from(op):
    assert set(dispatch.CPU[op]) == {"naive", "fast"}
    limit = dispatch.FAST_FROM[op]
    assert dispatch.resolve(op, "auto", "cpu", limit) == "fast"
    if limit > 0:
        assert dispatch.resolve(op, "auto", "cpu", limit - 1) == "naive"


def test_instance_and_group_norm_share_their_kernels():
    assert dispatch.CPU["instance_norm"] == dispatch.CPU["group_norm"]


def _auto_method(op, x):
    """The form "auto" ran for x, read from the cache."""
    C = x.shape[1]
    ones, zeros = np.ones(C, x.dtype), np.zeros(C, x.dtype)
    calls = {
        "batch_norm": lambda: F.batch_norm_forward(x, ones, zeros, zeros.copy(), ones.copy()),
        "layer_norm": lambda: F.layer_norm_forward(x, np.ones(x.shape[1:], x.dtype), np.zeros(x.shape[1:], x.dtype),
                                                   normalized_ndim=x.ndim - 1),
        "instance_norm": lambda: F.instance_norm_forward(x, ones, zeros),
        "group_norm": lambda: F.group_norm_forward(x, ones, zeros, num_groups=1),
        "weight_standardize": lambda: F.weight_standardize_forward(x),
        "local_response_norm": lambda: F.local_response_norm_forward(x, size=3),
    }
    out, cache = calls[op]()
    return cache.method


@pytest.mark.parametrize("op", NORM_OPS)
def test_auto_runs_the_fast_form_from_fast_from_elements_on(op):
    limit = max(dispatch.FAST_FROM[op], 2 * 4 * 4)
    per_sample = 2 * 4 * 4
    small = np.ones((1, 2, 4, 4), np.float32) + np.arange(4, dtype=np.float32)      # (1, 2, 4, 4)
    big = np.ones((-(-limit // per_sample), 2, 4, 4), np.float32) + np.arange(4, dtype=np.float32)
    assert big.size >= dispatch.FAST_FROM[op]
    assert _auto_method(op, big) == "fast"
    if small.size < dispatch.FAST_FROM[op]:
        assert _auto_method(op, small) == "naive"


@pytest.mark.parametrize("op, call", [
    ("batch_norm", lambda m: F.batch_norm_forward(np.ones((2, 3)), np.ones(3), np.ones(3), np.zeros(3), np.ones(3),
                                                  method=m)),
    ("layer_norm", lambda m: F.layer_norm_forward(np.ones((2, 3)), np.ones(3), np.ones(3), normalized_ndim=1,
                                                  method=m)),
    ("instance_norm", lambda m: F.instance_norm_forward(np.ones((2, 3, 4)), np.ones(3), np.ones(3), method=m)),
    ("group_norm", lambda m: F.group_norm_forward(np.ones((2, 3)), np.ones(3), np.ones(3), num_groups=3, method=m)),
    ("weight_standardize", lambda m: F.weight_standardize_forward(np.ones((2, 3)), method=m)),
    ("local_response_norm", lambda m: F.local_response_norm_forward(np.ones((2, 3, 4)), size=3, method=m)),
])
@pytest.mark.parametrize("bad", ["fastest", "Naive", None, 1])
def test_an_unknown_method_is_refused_with_the_allowed_ones(op, call, bad):
    with pytest.raises(ValueError, match=rf"^method must be one of 'naive', 'fast', 'auto' for {op}, got {bad!r}$"):
        call(bad)


def test_the_backward_runs_the_form_of_its_forward(monkeypatch):
    calls = []
    table = dict(dispatch.CPU)
    for form in ("naive", "fast"):
        k = dispatch.CPU["group_norm"][form]
        table["group_norm"] = dict(table["group_norm"], **{form: dispatch.Kernels(
            lambda *a, k=k, form=form: (calls.append(("forward", form)), k.forward(*a)),
            lambda *a, k=k, form=form: (calls.append(("backward", form)), k.backward(*a)))})
    monkeypatch.setattr(dispatch, "CPU", table)
    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    for form in ("fast", "naive"):
        out, cache = F.group_norm_forward(x, np.ones(4), np.zeros(4), num_groups=2, method=form)
        F.group_norm_backward(out, cache)
    assert calls == [("forward", "fast"), ("backward", "fast"), ("forward", "naive"), ("backward", "naive")]


LAYERS = [
    (lambda m: L.BatchNorm1d(3, method=m), (4, 3)),
    (lambda m: L.BatchNorm2d(3, method=m), (2, 3, 2, 2)),
    (lambda m: L.LayerNorm((2, 2), method=m), (3, 2, 2)),
    (lambda m: L.InstanceNorm2d(3, method=m), (2, 3, 2, 2)),
    (lambda m: L.GroupNorm(1, 3, method=m), (2, 3, 2, 2)),
    (lambda m: L.LocalResponseNorm(3, method=m), (2, 3, 2, 2)),
]


@pytest.mark.parametrize("make, shape", LAYERS)
def test_norm_layers_keep_their_method_and_run_it(make, shape):
    assert make("auto").method == "auto"
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    outputs = {}
    for form in ("naive", "fast"):
        layer = make("auto").set_method(form)
        assert layer.method == form
        outputs[form] = layer.forward(x)
        assert layer.cache.method == form
        assert layer.backward(np.ones_like(outputs[form])).shape == x.shape
    np.testing.assert_allclose(outputs["fast"], outputs["naive"], rtol=0, atol=1e-5)
