"""The dispatch of prelu, maxout, dropout and the convolutions (nbconv.functional.dispatch).

- prelu, maxout, dropout: the naive loops and their parallel twins agree (bit for bit, except
  prelu's dweight, a sum added in another order: to rounding), "fast" and "naive" are what the
  cache keeps, and dropout's mask is the same SplitMix64 draw in both forms, on any thread count;
- the convolutions: forward and backward run the pair that dispatch.CONV names for the method,
  the common names are aliases, a bad method is refused with the allowed ones, residual follows.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
import nbconv.layers as L
from nbconv.functional import conv_fast, dispatch
from nbconv.kernels import activation as KA

DTYPES = st.sampled_from([np.float32, np.float64])


def _both(forward, backward, dout, *args, **kwargs):
    """{form: (out, cache, grads)} for method="naive" and method="fast"."""
    results = {}
    for form in ("naive", "fast"):
        out, cache = forward(*args, **kwargs, method=form)
        assert cache.method == form
        results[form] = (out, cache, backward(dout, cache))
    return results


def _assert_same(a, e):
    assert a.dtype == e.dtype and a.shape == e.shape
    np.testing.assert_array_equal(a, e)


# ----------------------------------------------------------------------------- prelu

def _dweight_reference(x, w, dy):
    """dweight from NumPy: the sum of dy * x over x <= 0, per slope (float64), and the sum of
    the terms' magnitudes (the scale of its rounding error)."""
    terms = np.where(x <= 0, dy.astype(np.float64) * x.astype(np.float64), 0.0)
    if w.shape[0] == 1 or x.ndim == 1:
        return np.array([terms.sum()]), np.array([np.abs(terms).sum()])
    axes = (0,) + tuple(range(2, x.ndim))
    return terms.sum(axis=axes), np.abs(terms).sum(axis=axes)


def _check_prelu_forms(x, w, dy):
    results = _both(F.prelu_forward, F.prelu_backward, dy, x, w)
    (y0, _, (dx0, dw0)), (y1, _, (dx1, dw1)) = results["naive"], results["fast"]
    _assert_same(y1, y0)                          # the same formula per element
    _assert_same(dx1, dx0)
    assert dw1.dtype == dw0.dtype == x.dtype
    expected, scale = _dweight_reference(x, w, dy)
    eps = np.finfo(x.dtype).eps
    tol = 1e-12 if x.dtype == np.float64 else 4 * eps            # float64 sums in both forms
    for got in (dw0, dw1):
        np.testing.assert_array_less(np.abs(got - expected), tol * scale + 4 * eps * np.abs(expected) + 1e-300)
    np.testing.assert_array_less(np.abs(dw1.astype(np.float64) - dw0), tol * scale + 4 * eps * np.abs(dw0) + 1e-300)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), shared=st.booleans(), dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_prelu_naive_and_fast_agree(shape, shared, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::3] = 0.0                                     # the kink belongs to the x <= 0 side
    C = 1 if shared or len(shape) == 1 else shape[1]
    w = rng.uniform(-0.5, 0.5, C).astype(dtype)
    _check_prelu_forms(x, w, rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, slopes", [((1, 1, 2 * KA.PRELU_BLOCK + 7), 1),     # one row, 3 blocks
                                           ((3, 2, KA.PRELU_BLOCK + 1), 2),         # 2 blocks per row
                                           ((2, 3, 2 * KA.PRELU_BLOCK), 1)])        # whole blocks, shared
def test_prelu_fast_form_over_several_blocks_per_row(shape, slopes, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.0, 0.5, slopes).astype(dtype)
    _check_prelu_forms(x, w, rng.standard_normal(shape).astype(dtype))


def test_prelu_fast_dweight_does_not_depend_on_the_thread_count(rng):
    x = rng.standard_normal((3, 2, KA.PRELU_BLOCK + 100))
    dy = rng.standard_normal(x.shape)
    w = np.array([0.1, 0.2])
    y, cache = F.prelu_forward(x, w, method="fast")
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            results.append(F.prelu_backward(dy, cache))
    finally:
        numba.set_num_threads(before)
    for dx, dw in results[1:]:
        _assert_same(dx, results[0][0])
        _assert_same(dw, results[0][1])


def test_prelu_special_values_in_both_forms():
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 2.0]])
    w = np.array([0.5])
    dy = np.array([[1.0, np.inf, 2.0, 3.0, 4.0, np.nan]])
    results = _both(F.prelu_forward, F.prelu_backward, dy, x, w)
    for a, e in zip((results["fast"][0],) + results["fast"][2], (results["naive"][0],) + results["naive"][2]):
        _assert_same(a, e)


# ----------------------------------------------------------------------------- maxout

@settings(max_examples=30, deadline=None)
@given(N=st.integers(0, 3), K=st.integers(1, 3), pieces=st.integers(1, 4),
       trailing=st.lists(st.integers(0, 4), max_size=2), ties=st.booleans(), dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_maxout_naive_and_fast_agree_bit_for_bit(N, K, pieces, trailing, ties, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (N, K * pieces, *trailing)
    x = rng.standard_normal(shape)
    if ties:                                      # equal values (the first maximum wins), NaN (it wins)
        x = np.round(x)
        x.reshape(-1)[::7] = np.nan
    x = x.astype(dtype)
    dy = rng.standard_normal((N, K, *trailing)).astype(dtype)
    results = _both(F.maxout_forward, F.maxout_backward, dy, x, pieces=pieces)
    (y0, c0, (dx0,)), (y1, c1, (dx1,)) = results["naive"], results["fast"]
    _assert_same(y1, y0)
    _assert_same(c1.argmax, c0.argmax)
    _assert_same(dx1, dx0)


def test_maxout_is_the_max_over_channel_groups_in_both_forms(rng):
    # the reference: NumPy's max and first argmax over each group of `pieces` channels
    x = rng.standard_normal((2, 6, 3, 4))
    grouped = x.reshape(2, 3, 2, 3, 4)
    for form in ("naive", "fast"):
        y, cache = F.maxout_forward(x, pieces=2, method=form)
        np.testing.assert_array_equal(y, grouped.max(axis=2))
        np.testing.assert_array_equal(cache.argmax, grouped.argmax(axis=2))


# ----------------------------------------------------------------------------- dropout

def _splitmix64_keep(shape, p, seed):
    """The documented mask, independently: z_i = SplitMix64's i-th output from seed (closed form
    mix(seed + (i + 1) GAMMA) on uint64 arrays), unit i kept where (z_i >> 11) * 2^-53 >= p."""
    u = np.uint64
    z = u(seed % 2**64) + (np.arange(int(np.prod(shape)), dtype=u) + u(1)) * u(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z = z ^ (z >> u(31))
    return ((z >> u(11)).astype(np.float64) * 2.0**-53 >= p).reshape(shape)


def test_the_dropout_reference_gives_splitmix64s_published_outputs():
    z = np.uint64(0) + np.arange(1, 4, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    assert [int(v) for v in z] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    # and the mask of the first three: u = (z >> 11) 2^-53 against p
    u = [(v >> 11) * 2.0**-53 for v in (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F)]
    np.testing.assert_array_equal(_splitmix64_keep((3,), 0.5, 0), [v >= 0.5 for v in u])


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 6), max_size=4), p=st.sampled_from([0.0, 0.2, 0.5, 0.9, 1.0]),
       dtype=DTYPES, seed=st.integers(0, 2**64 - 1))
def test_dropout_forms_draw_the_same_mask_from_the_same_seed(shape, p, dtype, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape), dtype=dtype)         # shape () gives a 0-d array
    dy = np.asarray(rng.standard_normal(shape), dtype=dtype)
    results = _both(F.dropout_forward, F.dropout_backward, dy, x, p=p, seed=seed)
    (y0, c0, (dx0,)), (y1, c1, (dx1,)) = results["naive"], results["fast"]
    _assert_same(c1.keep, c0.keep)
    _assert_same(y1, y0)
    _assert_same(dx1, dx0)
    # independent truth: the documented draw and formula
    keep = _splitmix64_keep(shape, p, seed)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    np.testing.assert_array_equal(c0.keep, keep)
    np.testing.assert_allclose(y0, x * keep * dtype(scale), rtol=2 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_forms_agree_bit_for_bit_on_many_spans_and_threads(dtype):
    # the parallel twin splits x into spans of SPAN elements between the threads: the mask and the
    # output are the loop's whatever the thread count, and the documented draw
    from nbconv.kernels import dropout as KD
    n = 5 * KD.SPAN + 77
    x = np.random.default_rng(2).standard_normal(n).astype(dtype)
    expected, cache = F.dropout_forward(x, p=0.3, seed=2024, method="naive")
    np.testing.assert_array_equal(cache.keep, _splitmix64_keep((n,), 0.3, 2024))
    threads = numba.get_num_threads()
    try:
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            y, c = F.dropout_forward(x, p=0.3, seed=2024, method="fast")
            _assert_same(c.keep, cache.keep)
            _assert_same(y, expected)
    finally:
        numba.set_num_threads(threads)


def test_dropout_forms_follow_one_generator_alike():
    x = np.ones((4, 50))
    outputs = {}
    for form in ("naive", "fast"):
        gen = np.random.default_rng(3)
        outputs[form] = [F.dropout_forward(x, p=0.5, seed=gen, method=form)[0] for _ in range(3)]
    for a, e in zip(outputs["fast"], outputs["naive"]):
        _assert_same(a, e)
    assert not np.array_equal(outputs["fast"][0], outputs["fast"][1])     # the generator advanced
    # each forward's int seed is the Generator's next draw
    seeds = np.random.default_rng(3).integers(0, 2**63 - 1, size=3)
    for out, seed in zip(outputs["naive"], seeds):
        np.testing.assert_array_equal(out != 0, _splitmix64_keep(x.shape, 0.5, int(seed)))


@pytest.mark.parametrize("form", ["naive", "fast", "auto"])
def test_dropout_at_inference_is_the_identity_in_every_form(form, rng):
    x = rng.standard_normal((3, 4))
    y, cache = F.dropout_forward(x, p=0.5, training=False, method=form)
    np.testing.assert_array_equal(y, x)
    assert cache.method in ("naive", "fast")
    np.testing.assert_array_equal(F.dropout_backward(2 * x, cache)[0], 2 * x)


# ----------------------------------------------------------------------------- method checks, auto, layers

@pytest.mark.parametrize("op, call", [
    ("prelu", lambda m: F.prelu_forward(np.ones((2, 3)), np.ones(3), method=m)),
    ("maxout", lambda m: F.maxout_forward(np.ones((2, 4)), pieces=2, method=m)),
    ("dropout", lambda m: F.dropout_forward(np.ones(3), method=m)),
])
@pytest.mark.parametrize("bad", ["direct", "Fast", None])
def test_a_bad_method_is_refused_with_the_allowed_ones(op, call, bad):
    with pytest.raises(ValueError, match=rf"^method must be one of 'naive', 'fast', 'auto' for {op}, got {bad!r}$"):
        call(bad)


@pytest.mark.parametrize("op, call", [
    ("prelu", lambda x, m: F.prelu_forward(x, np.ones(x.shape[1], x.dtype), method=m)),
    ("maxout", lambda x, m: F.maxout_forward(x, pieces=2, method=m)),
    ("dropout", lambda x, m: F.dropout_forward(x, p=0.5, seed=0, method=m)),
])
def test_auto_runs_the_fast_form_from_fast_from_elements(op, call):
    limit = dispatch.FAST_FROM[op]
    small, large = max(0, limit - 2), max(2, limit)
    for size, expected in ((small, "naive" if limit > 0 else "fast"), (large, "fast")):
        x = np.ones((size // 2, 2), np.float32)
        assert call(x, "auto")[1].method == expected, (size, limit)


def test_layers_take_a_method_and_one_switch_sets_it():
    model = L.Sequential(L.PReLU(4), L.Maxout(2), L.Dropout(0.5, seed=0))
    layers = [model[k] for k in range(3)]
    assert [layer.method for layer in layers] == ["auto"] * 3
    x = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    outputs = {}
    for form in ("naive", "fast"):
        model.set_method(form)
        model[2].rng = np.random.default_rng(1)                  # the same mask for both forms
        outputs[form] = model.forward(x)
        assert [layer.cache.method for layer in layers] == [form] * 3
        outputs[form] = (outputs[form], model.backward(np.ones_like(outputs[form])))
    for a, e in zip(outputs["fast"], outputs["naive"]):
        np.testing.assert_array_equal(a, e)
    assert L.PReLU(method="naive").method == "naive" and L.Dropout(method="fast").method == "fast"
    assert L.Maxout(3, method="fast").method == "fast"


# ----------------------------------------------------------------------------- the convolutions

def _recording_table(monkeypatch):
    """Wrap every pair of dispatch.CONV so that the calls are recorded as (phase, method)."""
    calls, table = [], {}
    for name, pair in dispatch.CONV.items():
        table[name] = dispatch.Kernels(
            lambda *a, pair=pair, name=name: (calls.append(("forward", name)), pair.forward(*a)),
            lambda *a, pair=pair, name=name: (calls.append(("backward", name)), pair.backward(*a)))
    monkeypatch.setattr(dispatch, "CONV", table)
    return calls


def test_the_conv_table_names_the_three_methods_and_the_aliases():
    assert set(dispatch.CONV) == {"direct", "im2col", "blocked"}
    assert dispatch.CONV_ALIASES == {"naive": "direct", "fast": "blocked", "auto": "blocked"}
    assert dispatch.CONV["im2col"].forward is conv_fast.im2col_forward
    assert dispatch.CONV["blocked"].backward is conv_fast.blocked_backward
    assert F.conv2d_forward.__kwdefaults__["method"] == "auto"


@pytest.mark.parametrize("method, runs", [("direct", "direct"), ("im2col", "im2col"), ("blocked", "blocked"),
                                          ("naive", "direct"), ("fast", "blocked"), ("auto", "blocked")])
def test_conv_forward_and_backward_run_the_pair_of_the_table(method, runs, monkeypatch, rng):
    calls = _recording_table(monkeypatch)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    y, cache = F.conv2d_forward(x, w, padding=1, method=method)
    assert cache.method == runs
    F.conv2d_backward(np.ones_like(y), cache)
    y1, cache1 = F.conv1d_forward(x[:, :, 0], w[:, :, 0], padding=1, method=method)
    F.conv1d_backward(np.ones_like(y1), cache1)
    y2, cache2 = F.residual_forward(x[:, :, :, :4], w[:3, :, :, :], method=method)
    assert cache2.conv.method == runs
    F.residual_backward(np.ones_like(y2), cache2)
    assert calls == [("forward", runs), ("backward", runs)] * 3


def test_an_empty_conv_runs_the_direct_nest_and_keeps_the_method_asked_for(monkeypatch):
    calls = _recording_table(monkeypatch)
    y, cache = F.conv2d_forward(np.zeros((0, 2, 4, 4)), np.ones((3, 2, 3, 3)), method="blocked")
    assert y.shape == (0, 3, 2, 2) and cache.method == "blocked"
    dx, dw, db = F.conv2d_backward(y, cache)
    assert calls == [("forward", "direct"), ("backward", "direct")]
    np.testing.assert_array_equal(dw, 0.0)


@pytest.mark.parametrize("bad", ["fft", "Direct", None, 2])
def test_a_bad_conv_method_is_refused_with_the_methods_and_the_aliases(bad):
    message = (rf"^method must be one of 'direct', 'im2col', 'blocked', 'naive', 'fast', 'auto', got {bad!r} "
               r"\('naive' is 'direct'; 'fast' is 'blocked'; 'auto' is 'blocked'\)$")
    x, w = np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3))
    for call in (lambda: F.conv2d_forward(x, w, method=bad),
                 lambda: F.conv1d_forward(x[:, :, 0], w[:, :, 0], method=bad),
                 lambda: F.residual_forward(x, w, method=bad)):
        with pytest.raises(ValueError, match=message):
            call()


def test_the_moved_workspace_is_reachable_where_it_was():
    from nbconv.functional import conv

    assert F.release_workspace is conv.release_workspace is conv_fast.release_workspace
    assert conv.METHODS == ("direct", "im2col", "blocked") and conv.ALIASES is dispatch.CONV_ALIASES


def test_the_cuda_conv_table_maps_blocked_to_the_direct_kernels():
    pytest.importorskip("numba_cuda")
    table = dispatch.conv_cuda_table()
    assert set(table) == set(dispatch.CONV) | {"fast"}
    assert table["blocked"] == table["direct"]
    assert table["im2col"] == dispatch.Kernels(conv_fast.im2col_forward_cuda, conv_fast.im2col_backward_cuda)
