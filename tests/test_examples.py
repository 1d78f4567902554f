"""The lecture's worked examples that chain several ops: backpropagation and gradient descent."""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.examples.backprop import backprop_example, backprop_numeric, graph
from nbconv.gradcheck import examples as gradcheck_examples

# The course's worked example, "Backpropagation worked example", the corrected values
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


def test_backprop_pieces_stay_importable_from_gradcheck():
    assert gradcheck_examples.backprop_example is backprop_example
    assert gradcheck_examples.backprop_numeric is backprop_numeric and gradcheck_examples.graph is graph


def test_backprop_example_cli(capsys):
    assert main(["gradcheck", "--example", "backprop"]) == 0
    out = capsys.readouterr().out
    assert "dL/dw1" in out and "1.004494" in out and "1.0044" in out and " NO" not in out


DERIVATIVES = [name for name in TRUE_VALUES if "/" in name]      # dv1/dx1 ... dL/dx2


def test_backprop_numeric_derivatives_match_the_analytic_ones():
    values, numeric = backprop_example(), backprop_numeric()
    assert len(DERIVATIVES) == 15 and set(DERIVATIVES) <= set(numeric)
    for name in DERIVATIVES:
        assert abs(numeric[name] - values[name]) <= 1e-8, name
    for name in ("w1 after step", "w2 after step", "b after step"):   # the step with the numeric gradient
        assert abs(numeric[name] - values[name]) <= 1e-8, name
    assert not {"v1", "v2", "v3", "v4", "y", "L"} & set(numeric)        # value rows: no derivative


def test_backprop_graph_nudges_a_node_for_everything_after_it():
    plain, nudged = graph(), graph(nudge={"v3": 0.25})
    assert [plain[n] for n in ("v1", "v2", "v3", "v4", "y", "L")] == pytest.approx(
        [2.0, -1.5, 0.5, -0.7, -0.604368, 0.156525], abs=1e-6)
    assert (nudged["v1"], nudged["v2"]) == (plain["v1"], plain["v2"])  # before v3: unchanged
    assert nudged["v3"] == plain["v3"] + 0.25 and nudged["v4"] == pytest.approx(plain["v4"] + 0.25)
    with pytest.raises(ValueError, match="no node or input"):
        graph(nudge={"v5": 1.0})


def test_backprop_cli_defines_the_nodes_and_prints_the_numeric_column(capsys):
    assert main(["gradcheck", "--example", "backprop"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("quantity"))
    for definition in ("v1 = x1*w1", "v2 = x2*w2", "v3 = v1 + v2", "v4 = v3 + b", "y = tanh(v4)",
                       "L = (y - t)^2"):
        assert definition in "\n".join(lines[:header]), definition     # defined above the table
    assert lines[header].split() == ["quantity", "nbconv", "numeric", "true", "value", "lecture", "ok"]
    rows = {line.split()[0]: line.split() for line in lines[header + 1:] if line.split()
            and line.split()[0] in TRUE_VALUES and "after" not in line}
    for name in DERIVATIVES:                                         # name, nbconv, numeric, true, ...
        assert float(rows[name][2]) == pytest.approx(float(rows[name][1]), abs=1e-6), name
    for name in ("v1", "v2", "v3", "v4", "y", "L"):
        assert rows[name][2] == "-", name
    assert any(line.startswith("numeric ") for line in lines[header + 1:])   # the footer explains it
    assert max(len(line) for line in lines) <= 100


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
