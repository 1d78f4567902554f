"""The harness itself, the registry that covers every backward, and the command line."""

import warnings

import numpy as np
import pytest

import nbconv.functional as F
import nbconv.layers
from nbconv.cli import main
from nbconv.gradcheck import (InPlaceWarning, all_cases, assert_gradients, check_gradients, check_layer,
                              numeric_gradient, registry, rel_error)

CASES = all_cases()


def square_forward(x):
    return x * x, x


def square_backward(dout, x):
    return (2 * x * dout,)


def square_backward_wrong_at_one_element(dout, x):
    dx = 2 * x * dout
    dx[1, 2] += 0.5                 # a bug in one element
    return (dx,)


def test_numeric_gradient_of_a_known_function():
    x = np.array([1.0, -2.0, 0.5])
    g = numeric_gradient(lambda: float(np.sum(x ** 3)), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 0.5])        # restored after perturbing


def test_rel_error_measure():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 3.0], [1.0, 2.0]) == pytest.approx(1.0 / 5.0)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0        # the floor avoids 0/0


def test_correct_backward_passes():
    reports = check_gradients(square_forward, square_backward, [np.random.default_rng(1).standard_normal((3, 4))],
                              names=["x"])
    assert len(reports) == 1 and reports[0].passed and reports[0].max_rel_error < 1e-9


def test_wrong_backward_is_caught_at_the_wrong_element():
    x = np.random.default_rng(2).standard_normal((3, 4))
    (report,) = check_gradients(square_forward, square_backward_wrong_at_one_element, [x], names=["x"])
    assert not report.passed
    assert report.worst_index == (1, 2)
    assert report.analytic - report.numeric == pytest.approx(0.5, rel=1e-6)
    assert "x[1, 2]" in str(report) and "FAIL" in str(report)
    with pytest.raises(AssertionError, match=r"worst element x\[1, 2\]: analytic .*, numeric"):
        assert_gradients(square_forward, square_backward_wrong_at_one_element, [x], names=["x"])


def test_report_gives_analytic_and_numeric_values_of_the_worst_element():
    x = np.array([[0.5, -1.0, 2.0]])
    dout = np.array([[1.0, 1.0, 1.0]])
    twice_too_large = lambda d, c: (4 * c * d,)          # noqa: E731  d(x^2)/dx written as 4x
    (report,) = check_gradients(square_forward, twice_too_large, [x], names=["x"], dout=dout)
    assert report.worst_index == (0, 2)
    assert report.analytic == pytest.approx(8.0) and report.numeric == pytest.approx(4.0, rel=1e-8)


def test_student_layer_with_two_inputs_and_an_integer_argument():
    # forward(x, w, k): k is an int and not differentiated
    def forward(x, w, k):
        return x @ w * k, (x, w, k)

    def backward(dout, cache):
        x, w, k = cache
        return dout @ w.T * k, x.T @ dout * k

    rng = np.random.default_rng(3)
    reports = assert_gradients(forward, backward, [rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), 3],
                               names=["x", "w"])
    assert [r.name for r in reports] == ["x", "w"]


def test_every_backward_is_in_the_registry():
    backwards = {name for name in dir(F) if name.endswith("_backward") and callable(getattr(F, name))}
    checked = {case.backward.__name__ for case in CASES if case.backward is getattr(F, case.backward.__name__, None)}
    missing = sorted(backwards - checked)
    assert not missing, f"backward functions with no gradient check in the registry: {missing}"


def test_registry_op_names_follow_design():
    for case in CASES:
        assert case.backward.__name__ == f"{case.op}_backward", (case.op, case.backward.__name__)


FORMS = [(case, form) for case in CASES for form in case.forms()]


@pytest.mark.parametrize("case, form", FORMS, ids=[f"{c.op}: {c.label} [{f}]" for c, f in FORMS])
def test_registry_case(case, form):
    check = case.run(method=form)
    assert check.passed, str(check)


def test_the_registry_checks_both_forms_of_the_ops_that_have_them():
    from nbconv.functional import dispatch
    for op, forms in dispatch.CPU.items():
        assert {f for c, f in FORMS if c.op == op} == set(forms), op


def test_cli_gradcheck_one_op(capsys):
    assert main(["gradcheck", "--op", "linear"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("linear")]
    assert len(rows) == 10 and all(line.endswith("PASS") for line in rows)      # naive and fast
    assert {line.split()[-5] for line in rows} == {"naive", "fast"}
    assert "dw" in out and "threshold" in out


def test_cli_unknown_op(capsys):
    assert main(["gradcheck", "--op", "nosuchop"]) == 2
    assert "unknown op nosuchop" in capsys.readouterr().err


def test_cli_exits_1_when_a_gradient_fails(monkeypatch, capsys):
    import nbconv.gradcheck
    from nbconv.gradcheck import registry
    bad = registry.Case("square", "deliberately wrong", square_forward, square_backward_wrong_at_one_element,
                        lambda rng: (rng.standard_normal((3, 4)),), names=("x",))
    monkeypatch.setattr(registry, "all_cases", lambda: [bad])
    monkeypatch.setattr(nbconv.gradcheck, "all_cases", lambda: [bad])
    assert main(["gradcheck"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "worst element x[1, 2]" in out


# ----------------------------------------------------------------------------- private copies

def sigmoid_forward(x):
    s = 1.0 / (1.0 + np.exp(-x))
    return s, s


def sigmoid_backward_in_place(dout, s):
    dout *= s * (1 - s)             # correct, but writes into the caller's dout
    return (dout,)


def test_an_in_place_backward_passes_with_a_warning_naming_dout():
    x = np.random.default_rng(0).standard_normal((2, 3))
    with pytest.warns(InPlaceWarning, match="backward modified dout in place.*fan-out"):
        check = check_gradients(sigmoid_forward, sigmoid_backward_in_place, [x], names=["x"])
    assert check.passed and check[0].max_rel_error < 1e-9
    assert len(check.warnings) == 1 and "dout" in check.warnings[0]
    assert "warning: backward modified dout" in str(check)


def test_a_clean_backward_gives_no_warning():
    x = np.random.default_rng(0).standard_normal((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InPlaceWarning)
        check = check_gradients(sigmoid_forward, lambda d, s: (d * s * (1 - s),), [x], names=["x"])
    assert check.passed and check.warnings == []


def test_an_in_place_forward_is_checked_on_untouched_inputs():
    # ReLU computed in place: the input's negative entries become 0, a kink.  The numerical
    # estimate must still see the original x, so the correct backward passes.
    def relu_in_place(x):
        np.maximum(x, 0.0, out=x)
        return x, x > 0

    x = registry.away_from_zero(np.random.default_rng(1), (3, 4))
    given = x.copy()
    with pytest.warns(InPlaceWarning, match="forward modified its input x in place"):
        check = check_gradients(relu_in_place, lambda d, mask: (d * mask,), [x], names=["x"])
    assert check.passed
    np.testing.assert_array_equal(x, given)           # the caller's array is never touched


def test_a_backward_writing_into_an_input_held_by_the_cache_is_still_checked_right():
    def backward(dout, x):
        x *= 2.0                    # d(x^2)/dx = 2x, computed in the cached input itself
        return (x * dout,)

    x = np.random.default_rng(2).standard_normal((3, 2))
    with pytest.warns(InPlaceWarning, match="backward modified its input x in place"):
        check = check_gradients(square_forward, backward, [x], names=["x"])
    assert check.passed


def test_a_backward_writing_into_the_cache_is_named():
    def forward(x):
        s = np.tanh(x)
        return s, {"s": s}

    def backward(dout, cache):
        s = cache["s"]
        s **= 2                     # overwrites the cached output with s^2
        return (dout * (1 - s),)

    x = np.random.default_rng(3).standard_normal(5)
    with pytest.warns(InPlaceWarning, match=r"backward modified cache\['s'\] in place"):
        check = check_gradients(forward, backward, [x], names=["x"])
    assert check.passed


def test_batch_norm_updating_its_running_statistics_is_no_warning():
    case = next(c for c in CASES if c.op == "batch_norm" and c.label.startswith("training"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InPlaceWarning)
        check = case.run()
    assert check.passed and check.warnings == []
    assert [r.name for r in check] == ["x", "gamma", "beta"]
    assert any(text.startswith("running_mean") for text in check.not_differentiated)


# ----------------------------------------------------------------------------- what is differentiated

def test_python_floats_and_0d_arrays_are_differentiated():
    def forward(x, alpha, beta):
        return alpha * x + beta * x ** 2, (x, alpha, beta)

    def backward(dout, cache):
        x, alpha, beta = cache
        return [dout * (alpha + 2 * beta * x), float(np.sum(dout * x)), np.array([np.sum(dout * x ** 2)])]

    x = np.random.default_rng(4).standard_normal((2, 2))
    check = assert_gradients(forward, backward, [x, 0.3, np.array(-1.5)], names=["x", "alpha", "beta"])
    assert [r.name for r in check] == ["x", "alpha", "beta"]
    assert check.differentiated == ["x (2, 2)", "alpha ()", "beta ()"]


def test_a_python_float_is_passed_to_forward_as_a_float():
    seen = []

    def forward(x, alpha):
        seen.append(type(alpha))
        return alpha * x, (x, alpha)

    check_gradients(forward, lambda d, c: (d * c[1], float(np.sum(d * c[0]))), [np.ones(2), 0.5])
    assert set(seen) == {float}


def test_the_summary_says_what_is_and_is_not_differentiated(capsys):
    def forward(x, w, k):
        return x @ w * k, (x, w, k)

    def backward(dout, cache):
        x, w, k = cache
        return dout @ w.T * k, None

    rng = np.random.default_rng(3)
    check = check_gradients(forward, backward, [rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), 3],
                            names=["x", "w", "k"], verbose=True)
    printed = capsys.readouterr().out
    assert printed.strip() == str(check)
    assert "differentiated: x (2, 3)" in printed
    assert "w (float64 array): backward returned None" in printed
    assert "k (int): not a float" in printed
    assert "1 of 1 gradients PASS" in printed


def test_a_forward_that_does_not_return_a_pair_gets_a_one_line_error():
    with pytest.raises(TypeError, match=r"^forward must return a pair \(out, cache\), got an array of shape "
                                        r"\(2, 3\); return \(out, None\) when backward needs nothing$"):
        check_gradients(lambda x: x * 2, lambda d, c: (2 * d,), [np.ones((2, 3))])


def test_a_backward_returning_a_bare_array_is_told_about_the_1_tuple():
    with pytest.raises(TypeError, match=r"tuple or list with one gradient per input, got an array of shape "
                                        r"\(2, 3\) \(for one input return a 1-tuple: \(dx,\)\)"):
        check_gradients(lambda x: (x * 2, None), lambda d, c: 2 * d, [np.ones((2, 3))])


def test_too_many_gradients_name_the_inputs_that_can_be_differentiated():
    with pytest.raises(ValueError, match=r"backward returned 2 gradients but only 1 inputs can be differentiated "
                                         r"\(x: the float arrays"):
        check_gradients(lambda x, n: (x * n, n), lambda d, n: (d * n, d), [np.ones(2), 3], names=["x"])


# ----------------------------------------------------------------------------- diagnosis of failures

def _failed(forward, backward, inputs, **kwargs):
    (report,) = check_gradients(forward, backward, inputs, names=["x"], **kwargs)
    assert not report.passed
    return report, "\n".join(report.diagnosis)


X34 = np.random.default_rng(5).standard_normal((3, 4))


def test_one_wrong_element_is_called_one_element():
    report, text = _failed(square_forward, square_backward_wrong_at_one_element, [X34])
    assert report.failing == 1
    assert "1 of 12 elements of dx fail" in text and "one element is wrong, x[1, 2]" in text
    assert "kink: no" in text


@pytest.mark.parametrize("factor, words", [(2.0, "analytic = 2 x numeric"), (0.25, "analytic = 0.25 x numeric"),
                                           (-1.0, "the sign is flipped everywhere")])
def test_a_constant_factor_is_named(factor, words):
    report, text = _failed(square_forward, lambda d, x: (factor * 2 * x * d,), [X34])
    assert report.failing == 12 and "12 of 12 elements of dx fail" in text and words in text
    if factor == 0.25:
        assert "= 1/4" in text


def test_a_constant_offset_is_named():
    _, text = _failed(square_forward, lambda d, x: (2 * x * d + 0.3,), [X34], dout=np.ones((3, 4)))
    assert "off by the same constant: analytic = numeric + 0.3" in text


def test_the_transpose_is_named():
    w = np.random.default_rng(6).standard_normal((3, 3))
    x = np.random.default_rng(7).standard_normal((2, 3))
    _, text = _failed(lambda w: (x @ w, None), lambda d, c: ((x.T @ d).T,), [w])
    assert "analytic is the transpose of the numerical gradient" in text


def test_a_flipped_kernel_is_named():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))

    def backward(dout, cache):
        dx, dw, db = F.conv2d_backward(dout, cache)
        return (np.flip(dw, (2, 3)),)

    _, text = _failed(lambda w: F.conv2d_forward(x, w, method="direct"), backward, [w])
    assert "flipped along axes (2, 3)" in text


def test_all_zeros_and_nan_are_named():
    _, text = _failed(square_forward, lambda d, x: (np.zeros_like(x),), [X34])
    assert "backward returned all zeros" in text
    _, text = _failed(square_forward, lambda d, x: (np.where(x > 0, np.nan, 2 * x * d),), [X34])
    assert "backward returned NaN or inf" in text


def test_errors_confined_to_one_channel_or_to_the_border_are_named():
    x = np.random.default_rng(9).standard_normal((2, 3, 5, 5))

    def one_channel(d, x):
        dx = 2 * x * d
        dx[:, 1] *= 3
        return (dx,)

    _, text = _failed(square_forward, one_channel, [x])
    assert "all failing elements have index 1 on axis 1 (x[:, 1, :, :])" in text

    def border(d, x):
        dx = 2 * x * d
        dx[:, :, [0, -1], :] = 0.0
        dx[:, :, :, [0, -1]] = 0.0
        return (dx,)

    _, text = _failed(square_forward, border, [x])
    assert "lie on the border of axes (2, 3)" in text


def test_a_tie_in_max_pooling_is_reported_as_a_kink():
    # two equal values in one window: the correct backward picks one winner, the central
    # difference averages the two one-sided slopes
    x = np.array([[[[1.0, 1.0], [0.5, 0.2]]]])
    report, text = _failed(lambda x: F.max_pool2d_forward(x, kernel_size=2), F.max_pool2d_backward, [x],
                           dout=np.array([[[[-0.98]]]]))
    assert report.worst_index == (0, 0, 0, 1)
    assert report.analytic == 0.0 and report.numeric == pytest.approx(-0.49)
    assert "kink: yes, x[0, 0, 0, 1] sits at a kink" in text
    assert "the slope is 0 from the left and -0.98 from the right" in text
    assert "the analytic value is the slope from the left, a valid choice at a kink" in text
    assert "2 of the 2 failing elements checked sit at kinks" in text


def test_the_cli_prints_in_place_warnings(monkeypatch, capsys):
    import nbconv.gradcheck
    case = registry.Case("my_sigmoid", "written in place", sigmoid_forward, sigmoid_backward_in_place,
                         lambda rng: (rng.standard_normal((2, 3)),), names=("x",))
    monkeypatch.setattr(nbconv.gradcheck, "all_cases", lambda: [case])
    with pytest.warns(InPlaceWarning):
        assert main(["gradcheck"]) == 0
    assert "warning: backward modified dout in place" in capsys.readouterr().out


# ----------------------------------------------------------------------------- check_layer

class Scale(nbconv.layers.Layer):
    """A student's own layer: y = a * x with one learned scalar per channel, a of shape (C,)."""

    def __init__(self, channels, wrong=False):
        self.init_params({"a": (channels,)}, {"a": lambda shape: np.linspace(0.5, 1.5, shape[0])})
        self.wrong = wrong

    def forward(self, x):
        a = self.params()["a"].data
        self._cache = (x, a)
        return x * a[None, :, None, None]

    def backward(self, dout):
        x, a = self.cache
        da = (dout * x).sum(axis=(0, 2, 3))
        self.store_grads(a=2 * da if self.wrong else da)
        return dout * a[None, :, None, None]


def test_check_layer_checks_an_own_layer_and_every_parameter():
    x = np.random.default_rng(10).standard_normal((2, 3, 2, 2))
    check = check_layer(Scale(3), x)
    assert check.passed and [r.name for r in check] == ["x", "a"]
    (_, da) = check_layer(Scale(3, wrong=True), x)
    assert not da.passed and "analytic = 2 x numeric" in "\n".join(da.diagnosis)


def test_check_layer_runs_in_float64_and_leaves_the_layer_as_it_was():
    model = nbconv.layers.Sequential(nbconv.layers.Conv2d(2, 3, 3, padding=1, seed=0),
                                     nbconv.layers.BatchNorm2d(3), nbconv.layers.Tanh(),
                                     nbconv.layers.Dropout(0.5, seed=1))
    params = {name: p.data.copy() for name, p in model.named_parameters()}
    buffers = {name: b.copy() for name, b in model.named_buffers()}
    state = model.layers[3].rng.bit_generator.state
    check = check_layer(model, np.random.default_rng(11).standard_normal((2, 2, 3, 3)))
    assert check.passed, str(check)      # float32 parameters, yet float64 precision; the same mask each time
    assert [r.name for r in check] == ["x", "0.w", "0.b", "1.gamma", "1.beta"]
    for name, p in model.named_parameters():
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        np.testing.assert_array_equal(p.data, params[name])
    for name, b in model.named_buffers():
        assert b.dtype == np.float32
        np.testing.assert_array_equal(b, buffers[name])          # running statistics put back
    assert model.layers[3].rng.bit_generator.state == state


def test_an_exactly_zero_gradient_passes_despite_the_noise_of_the_differences():
    # out = x - mean(x) per row: d sum(out) / dx is exactly 0 for dout = ones, and the central
    # differences return rounding noise (about 1e-11) instead of 0
    def center(x):
        return x - x.mean(axis=1, keepdims=True), None

    x = np.random.default_rng(12).standard_normal((3, 50)) * 10
    check = check_gradients(center, lambda d, _: (d - d.mean(axis=1, keepdims=True),), [x], dout=np.ones((3, 50)))
    assert check.passed, str(check)
    assert check[0].analytic == 0.0 and abs(check[0].numeric) > 1e-10          # the differences' noise
    assert rel_error(check[0].analytic, check[0].numeric) > 1e-7               # which a fixed 1e-8 floor blames


def test_a_small_but_wrong_gradient_still_fails():
    scale = 1e-4          # every gradient element is about 1e-4: a factor 2 must still be caught
    (report,) = check_gradients(lambda x: (scale * x * x, x), lambda d, x: (4 * scale * x * d,), [X34], names=["x"])
    assert not report.passed and report.max_rel_error > 0.3


def test_the_noise_floor_grows_with_the_loss_and_never_drops_below_1e_8():
    from nbconv.gradcheck.harness import noise_floor
    assert noise_floor(0.0, 1e-5, 1e-7) == 1e-8
    assert noise_floor(10.0, 1e-5, 1e-7) == pytest.approx(10 * 2.0 ** -52 * 10.0 / 1e-5 / 1e-7)


def test_the_command_line_lets_openmp_threads_sleep_unless_the_user_chose(monkeypatch, capsys):
    import os
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["gradcheck", "--list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert main(["gradcheck", "--list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("chosen, expected", [
    ({}, "true"),                                   # nothing chosen: bound
    ({"OMP_PROC_BIND": "false"}, "false"),          # the user's binding kept
    ({"OMP_PLACES": "cores"}, None),                # places chosen: the binding left to the user
])
def test_the_command_line_binds_openmp_threads_unless_the_user_chose(monkeypatch, chosen, expected):
    import os
    for name in ("OMP_PROC_BIND", "OMP_PLACES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in chosen.items():
        monkeypatch.setenv(name, value)
    assert main(["gradcheck", "--list"]) == 0
    assert os.environ.get("OMP_PROC_BIND") == expected
