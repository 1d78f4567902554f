"""One dispatch (nbconv.functional.dispatch): every op's naive and fast forms agree, "auto" picks
by size, a backward runs its forward's form, a bad method is refused, and one switch sets a model."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nbconv.functional as F
import nbconv.layers as L
from nbconv.functional import dispatch

ELEMENTWISE = {
    "relu": {}, "leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7}, "sigmoid": {}, "tanh": {},
}


def _forms(op, args, kwargs, dout):
    """{form: (out, grads)} for the naive and the fast form of ``op``."""
    results = {}
    for form in ("naive", "fast"):
        out, cache = getattr(F, f"{op}_forward")(*args, **kwargs, method=form)
        assert cache.method == form
        results[form] = (out, getattr(F, f"{op}_backward")(dout(out), cache))
    return results


@settings(max_examples=20, deadline=None)
@given(N=st.integers(0, 3), C=st.integers(1, 3), H=st.integers(2, 7), W=st.integers(2, 7), k=st.integers(1, 3),
       s=st.integers(1, 3), pad=st.integers(0, 1), op=st.sampled_from(["max_pool2d", "avg_pool2d"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_pooling_naive_and_parallel_agree_bit_for_bit(N, C, H, W, k, s, pad, op, dtype, seed):
    k, pad = min(k, H, W), min(pad, min(k, H, W) // 2)
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    results = _forms(op, (x,), {"kernel_size": k, "stride": s, "padding": pad}, lambda out: (2 * out).astype(dtype))
    (y0, (dx0,)), (y1, (dx1,)) = results["naive"], results["fast"]
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)


def _close(a, b, dtype, scale=1.0):
    if dtype == np.float64:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * scale)
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=8 * np.finfo(np.float32).eps * scale)


@settings(max_examples=25, deadline=None)
@given(N=st.integers(0, 6), D=st.integers(1, 9), M=st.integers(1, 6), bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_linear_naive_and_gemm_agree(N, D, M, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((M, D)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype) if bias else None
    dy = rng.standard_normal((N, M)).astype(dtype)
    results = _forms("linear", (x, w, b), {}, lambda out: dy)
    (y0, g0), (y1, g1) = results["naive"], results["fast"]
    scale = D * max(1.0, float(np.abs(x).max(initial=0)) * float(np.abs(w).max()))  # GEMM sums in the dtype
    _close(y1, y0, dtype, scale)
    for a, e in zip(g1, g0):
        if e is None:
            assert a is None
        else:
            assert a.dtype == dtype
            _close(a, e, dtype, scale * max(1, N))


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4), op=st.sampled_from(sorted(ELEMENTWISE)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_elementwise_naive_and_fast_agree(shape, op, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    results = _forms(op, (x,), ELEMENTWISE[op], lambda out: dy)
    (y0, (dx0,)), (y1, (dx1,)) = results["naive"], results["fast"]
    if op in ("relu", "leaky_relu"):               # the same formula per element, on more threads
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(dx1, dx0)
        return
    eps = np.finfo(dtype).eps                      # vecmath's exp, expm1, tanh: within 2 ulp, and
    np.testing.assert_allclose(y1, y0, rtol=4 * eps, atol=0)     # the loop's libm call within 1
    # dx = dy * f'(y): an error of 2 ulp in y moves f'(y) = 1 - y^2 or y (1 - y) by up to 4 eps
    np.testing.assert_allclose(dx1, dx0, rtol=4 * eps, atol=8 * eps * float(np.abs(dy).max(initial=0)))


TWO_FORMS = sorted(op for op, forms in dispatch.CPU.items() if "fast" in forms)


def test_every_op_of_the_table_has_a_naive_form_and_an_auto_threshold():
    assert set(TWO_FORMS) >= {"linear", "relu", "sigmoid", "tanh", "max_pool2d", "avg_pool2d"}
    for op, forms in dispatch.CPU.items():
        assert "naive" in forms and op in dispatch.FAST_FROM
        assert hasattr(F, f"{op}_forward") and hasattr(F, f"{op}_backward")


def test_an_op_with_one_form_runs_it_for_auto_and_refuses_fast(monkeypatch):
    # every op has both forms now; an op added with its loop alone must still work
    table = dict(dispatch.CPU, lp_pool2d={"naive": dispatch.CPU["lp_pool2d"]["naive"]})
    monkeypatch.setattr(dispatch, "CPU", table)
    assert dispatch.resolve("lp_pool2d", "auto", "cpu", 10**9) == "naive"
    with pytest.raises(ValueError, match=r"^method must be one of 'naive', 'auto' for lp_pool2d, got 'fast'$"):
        dispatch.resolve("lp_pool2d", "fast", "cpu", 1)
    with pytest.raises(ValueError, match=r"^method must be one of 'naive', 'auto' for lp_pool2d, got 'fast'$"):
        F.lp_pool2d_forward(np.ones((1, 1, 2, 2)), norm_type=2, kernel_size=2, method="fast")


@pytest.mark.parametrize("op", TWO_FORMS)
def test_auto_picks_the_fast_form_from_its_size(op):
    limit = dispatch.FAST_FROM[op]
    if limit > 0:
        assert dispatch.resolve(op, "auto", "cpu", limit - 1) == "naive"
    assert dispatch.resolve(op, "auto", "cpu", limit) == "fast"
    assert dispatch.resolve(op, "naive", "cpu", 10**9) == "naive"
    assert dispatch.resolve(op, "fast", "cpu", 0) == "fast"


def test_auto_runs_the_fast_form_on_large_arrays_and_the_backward_follows(monkeypatch):
    calls = []
    table = dict(dispatch.CPU)
    for form in ("naive", "fast"):
        k = dispatch.CPU["relu"][form]
        table_entry = dispatch.Kernels(
            lambda *a, k=k, form=form: (calls.append(("forward", form)), k.forward(*a)),
            lambda *a, k=k, form=form: (calls.append(("backward", form)), k.backward(*a)))
        table["relu"] = dict(table.get("relu", {}), **{form: table_entry})
    monkeypatch.setattr(dispatch, "CPU", table)
    big = np.ones(dispatch.FAST_FROM["relu"], np.float32)
    y, cache = F.relu_forward(big)
    F.relu_backward(y, cache)
    small = np.ones(3, np.float32)
    y, cache = F.relu_forward(small)
    F.relu_backward(y, cache)
    assert calls == [("forward", "fast"), ("backward", "fast"), ("forward", "naive"), ("backward", "naive")]


@pytest.mark.parametrize("op, call", [
    ("linear", lambda m: F.linear_forward(np.ones((2, 3)), np.ones((4, 3)), method=m)),
    ("relu", lambda m: F.relu_forward(np.ones(3), method=m)),
    ("elu", lambda m: F.elu_forward(np.ones(3), method=m)),
])
@pytest.mark.parametrize("bad", ["gpu", "Fast", None, 3])
def test_an_unknown_method_is_refused_with_the_allowed_ones(op, call, bad):
    with pytest.raises(ValueError, match=rf"^method must be one of 'naive', 'fast', 'auto' for {op}, got {bad!r}$"):
        call(bad)


def test_conv_takes_the_common_names_too():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    expected = {"naive": "direct", "fast": "blocked", "auto": "blocked"}
    outputs = {}
    for name, method in expected.items():
        outputs[name], cache = F.conv2d_forward(x, w, padding=1, method=name)
        assert cache.method == method
    np.testing.assert_allclose(outputs["fast"], outputs["naive"], rtol=1e-12, atol=1e-12)


def test_the_cuda_table_has_every_op_of_the_cpu_table_in_a_naive_and_a_fast_form():
    pytest.importorskip("numba_cuda")
    table = dispatch.cuda_table()
    assert set(table) == set(dispatch.CPU)
    assert all(set(forms) == {"naive", "fast"} for forms in table.values())
    assert dispatch.allowed_methods("relu", "cuda") == ("naive", "fast", "auto")
    assert table["relu"]["fast"] == table["relu"]["naive"]          # one mapping: a thread per element
    assert table["linear"]["fast"] != table["linear"]["naive"]      # the GEMM form
    with pytest.raises(ValueError, match=r"^method must be one of 'naive', 'fast', 'auto' for relu on cuda, "
                                         r"got 'blocked'$"):
        dispatch.check_method("relu", "blocked", "cuda")


def test_one_switch_sets_the_method_of_a_whole_model():
    model = L.Sequential(L.Conv2d(1, 2, 3, padding=1, seed=0), L.ReLU(), L.Flatten(),
                         L.Sequential(L.Linear(2 * 4 * 4, 3, seed=1), L.Tanh()))
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y_auto = model.forward(x)
    assert model.set_method("naive") is model
    assert [getattr(layer, "method", None) for layer in (model[0], model[1], model[3][0], model[3][1])] == \
        ["naive"] * 4
    y_naive = model.forward(x)
    assert model[0].cache.method == "direct" and model[3][0].cache.method == "naive"
    np.testing.assert_allclose(y_naive, y_auto, rtol=1e-5, atol=1e-6)
    dx = model.backward(np.ones_like(y_naive))
    assert dx.shape == x.shape
    with pytest.raises(ValueError, match=r"method must be 'naive', 'fast' or 'auto', got 'loops'"):
        model.set_method("loops")


def test_layers_take_a_method():
    layer = L.Linear(3, 2, method="naive", seed=0)
    layer.forward(np.ones((1, 3), np.float32))
    assert layer.cache.method == "naive"
    relu = L.LeakyReLU(0.2, method="fast")
    relu.forward(np.ones(4, np.float32))
    assert relu.cache.method == "fast"


def test_docs_methods_names_every_op_of_the_table_and_its_fast_kernel():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "methods.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    for op, forms in dispatch.CPU.items():
        row = next((r for r in rows if op in r.split("|")[1].replace(",", " ").split()), None)
        assert row is not None, f"docs/methods.md has no row for {op}"
        first = row.split("|")[1].replace(",", " ").split()[0]        # the row's kernels are its first op's
        for form, kernels in forms.items():
            name = kernels.forward.__name__
            name = first + name[len(op):] if name.startswith(op) else name
            assert f"`{name}`" in row, f"docs/methods.md: the {form} forward of {op} ({name}) is not in its row"
    for name in dispatch.CONV:
        assert f'"{name}"' in text
