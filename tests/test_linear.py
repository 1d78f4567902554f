import numpy as np
import pytest

import nbconv.functional as F


def test_linear_matches_numpy(rng):
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    y, _ = F.linear_forward(x, w, b)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-12, atol=1e-12)


def test_single_neuron_worked_example():
    # The course's worked example, single neuron: y = ReLU(w . x + b) = 0.28 (the ReLU is inactive here)
    x = np.array([[0.8, -0.3, 0.1]])
    w = np.array([[0.15, 0.7, -0.5]])
    y, _ = F.linear_forward(x, w, np.array([0.42]))
    assert y.shape == (1, 1)
    assert y[0, 0] == pytest.approx(0.28, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_keeps_dtype_and_handles_empty_batch(dtype):
    w = np.ones((3, 5), dtype=dtype)
    y, cache = F.linear_forward(np.zeros((0, 5), dtype=dtype), w)
    assert y.shape == (0, 3) and y.dtype == dtype
    dx, dw, db = F.linear_backward(np.zeros((0, 3), dtype=dtype), cache)
    assert dx.shape == (0, 5) and np.all(dw == 0) and db is None


def test_linear_errors():
    x, w = np.zeros((2, 5)), np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"w must have shape \(out_features, 5\)"):
        F.linear_forward(x, w)
    with pytest.raises(ValueError, match=r"x must be 2-D"):
        F.linear_forward(np.zeros(5), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        F.linear_forward(np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(4))
    with pytest.raises(TypeError, match=r"w has dtype float32 but x has dtype float64"):
        F.linear_forward(np.zeros((2, 5)), np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(TypeError, match=r"x has dtype int64; supported dtypes are float32 or float64"):
        F.linear_forward(np.zeros((2, 5), dtype=np.int64), np.zeros((3, 5)))
    _, cache = F.linear_forward(np.zeros((2, 5)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3\), got \(3, 2\)"):
        F.linear_backward(np.zeros((3, 2)), cache)
