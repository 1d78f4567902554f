"""The lecture's worked examples that chain several ops: backpropagation and gradient descent."""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.gradcheck.examples import backprop_example

# WORKED_EXAMPLES.md, "Backpropagation worked example", the corrected values
TRUE_VALUES = {
    "v1": 2.0, "v2": -1.5, "v3": 0.5, "v4": -0.7, "y": -0.604368, "L": 0.156525,
    "dv1/dx1": 1.0, "dv1/dw1": 2.0, "dv2/dx2": 3.0, "dv2/dw2": -0.5, "dy/dv4": 0.634740,
    "dL/dy": 0.791264, "dL/dv4": 0.502247, "dL/db": 0.502247, "dL/dv3": 0.502247, "dL/dv1": 0.502247,
    "dL/dv2": 0.502247, "dL/dw1": 1.004494, "dL/dw2": -0.251123, "dL/dx1": 0.502247, "dL/dx2": 1.506741,
    "w1 after step": 0.296854, "w2 after step": 3.175786, "b after step": -1.551573,
}


def test_backprop_example_matches_the_corrected_values():
    values = backprop_example()
    assert set(values) == set(TRUE_VALUES)
    for name, true in TRUE_VALUES.items():
        assert values[name] == pytest.approx(true, abs=1e-6), name


def test_backprop_example_cli(capsys):
    assert main(["gradcheck", "--example", "backprop"]) == 0
    out = capsys.readouterr().out
    assert "dL/dw1" in out and "1.004494" in out and "1.0044" in out and " NO" not in out


def test_fan_out_rule():
    # Where a node feeds several edges its gradient is the sum over them (lecture: 0.7 + 1.5 = 2.2,
    # 1.1 - 0.3 + 0.9 = 1.7).  x feeds three linear units; dx sums what each hands back.
    x = np.array([[1.0]])
    w = np.array([[0.7], [1.5]])
    _, cache = F.linear_forward(x, w)
    dx, _, _ = F.linear_backward(np.array([[1.0, 1.0]]), cache)
    assert dx[0, 0] == pytest.approx(2.2)
    _, cache = F.linear_forward(x, np.array([[1.1], [-0.3], [0.9]]))
    dx, _, _ = F.linear_backward(np.array([[1.0, 1.0, 1.0]]), cache)
    assert dx[0, 0] == pytest.approx(1.7)


def test_gradient_descent_on_x_squared_minus_2():
    # f(x) = x^2 - 2 = mse(x, 0) - 2 for one element; x0 = 3, alpha = 0.4
    expected = [(0.6, -1.64), (0.12, -1.9856), (0.024, -1.999424), (0.0048, -1.99997696),
                (0.00096, -1.9999990784)]
    x = np.array([3.0])
    zero = np.array([0.0])
    for x_true, f_true in expected:
        _, cache = F.mse_forward(x, zero)
        (grad,) = F.mse_backward(1.0, cache)          # d(x^2)/dx = 2x
        x = x - 0.4 * grad
        f, _ = F.mse_forward(x, zero)
        assert x[0] == pytest.approx(x_true, rel=1e-12)
        assert float(f) - 2.0 == pytest.approx(f_true, rel=1e-12)
