"""nbconv.kernels.cuda.linear against the CPU kernels."""

import numpy as np
import pytest

import nbconv.kernels.linear as K
import nbconv.kernels.cuda.linear as G


@pytest.mark.parametrize("N, D, M", [(4, 5, 3), (7, 1, 9), (0, 3, 2)])
def test_linear_forward_and_backward(rng, dtype, compare, N, D, M):
    x = rng.standard_normal((N, D)).astype(dtype)
    w = rng.standard_normal((M, D)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    compare(K.linear_forward, G.linear_forward, x, w, b, np.full((N, M), np.nan, dtype))
    dy = rng.standard_normal((N, M)).astype(dtype)
    compare(K.linear_backward, G.linear_backward, dy, x, w,
            np.full((N, D), np.nan, dtype), np.full((M, D), np.nan, dtype), np.full(M, np.nan, dtype))


def test_linear_against_numpy(rng, run_both):
    # an independent check of the launcher itself, not only agreement with the CPU kernel
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    _, (_, _, _, y), _, _ = run_both(K.linear_forward, G.linear_forward, x, w, b, np.empty((6, 3)))
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-12, atol=1e-12)
