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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["tiles", "tiles in panels", "blas"])
def test_fast_form_equals_numpy_on_each_of_its_paths(monkeypatch, rng, dtype, path):
    # the fast form's two paths (nbconv.kernels.linear): the tiled products below BLAS_FROM, in
    # several column panels when PANEL_BYTES is small, and the BLAS from BLAS_FROM on; against
    # NumPy's products in float64
    from nbconv.kernels import linear as kernels

    if path == "blas":
        monkeypatch.setattr(kernels, "BLAS_FROM", 0)
    if path == "tiles in panels":
        monkeypatch.setattr(kernels, "PANEL_BYTES", 1)
    N, D, M = 53, 37, 70                       # 70 rows: blocks of 4 and a partial one; 53 columns: a partial tile
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((N, D), (M, D), (M,)))
    dy = rng.standard_normal((N, M)).astype(dtype)
    y, cache = F.linear_forward(x, w, b, method="fast")
    dx, dw, db = F.linear_backward(dy, cache)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, x64 @ w64.T + b, **tol)
    np.testing.assert_allclose(dx, dy64 @ w64, **tol)
    np.testing.assert_allclose(dw, dy64.T @ x64, **tol)
    np.testing.assert_allclose(db, dy64.sum(axis=0), **tol)
