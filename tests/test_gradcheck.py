"""The harness itself, the registry that covers every backward, and the command line."""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.gradcheck import all_cases, assert_gradients, check_gradients, numeric_gradient, rel_error

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


@pytest.mark.parametrize("case", CASES, ids=[f"{c.op}: {c.label}" for c in CASES])
def test_registry_case(case):
    for report in case.run():
        assert report.passed, str(report)


def test_cli_gradcheck_one_op(capsys):
    assert main(["gradcheck", "--op", "linear"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("linear")]
    assert len(rows) == 5 and all(line.endswith("PASS") for line in rows)
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
