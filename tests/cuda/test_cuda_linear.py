"""nbconv.kernels.cuda.linear against the CPU kernels: the naive form (one thread per output)
and the fast form (the products through nbconv.kernels.cuda.gemm), forward and backward."""

import numpy as np
import pytest

import nbconv.kernels.linear as K
import nbconv.kernels.cuda.linear as G
from nbconv import devices
from nbconv.kernels.cuda import gemm

# (N, D, M): x (N, D), w (M, D).  The fast form runs in small tiles (8 x 8, fixture small_blocks):
# 19 rows of x and 10 features cross tile edges in every product (dw's k = N = 19 spans 5
# k-slices of 4); a batch of 0 (dw and db are zeros); one of everything.
SHAPES = [(4, 5, 3), (19, 10, 9), (0, 3, 2), (1, 1, 1)]


def _problem(rng, dtype, N, D, M):
    x = rng.standard_normal((N, D)).astype(dtype)
    w = rng.standard_normal((M, D)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    dy = rng.standard_normal((N, M)).astype(dtype)
    return x, w, b, dy


# the naive device form, one thread per output, and the fast one, GEMMs: both against the CPU's loops
FORMS = {"naive": (G.linear_forward, G.linear_backward), "fast": (G.linear_forward_gemm, G.linear_backward_gemm)}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("N, D, M", SHAPES)
def test_linear_forward_and_backward(rng, dtype, compare, small_blocks, N, D, M, form):
    forward, backward = FORMS[form]
    x, w, b, dy = _problem(rng, dtype, N, D, M)
    compare(K.linear_forward, forward, x, w, b, np.full((N, M), np.nan, dtype))
    compare(K.linear_backward, backward, dy, x, w,
            np.full((N, D), np.nan, dtype), np.full((M, D), np.nan, dtype), np.full(M, np.nan, dtype))


@pytest.mark.parametrize("N", [1, 130])
def test_db_sums_the_batch_at_the_real_block_size(rng, run_both, N):
    # one block of 128 threads per feature (both forms share the kernel): one term, and
    # 130 = 128 + 2 (a second, partial round of the block-stride loop)
    x, w, b, dy = _problem(rng, np.float64, N, 1, 2)
    _, (_, _, _, _, _, db), _, _ = run_both(K.linear_backward, G.linear_backward, dy, x, w,
                                           np.empty((N, 1)), np.empty((2, 1)), np.full(2, np.nan))
    np.testing.assert_allclose(db, dy.sum(axis=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("form", [G.linear_forward, G.linear_forward_gemm], ids=["naive", "fast"])
def test_linear_against_numpy(rng, run_both, small_blocks, form):
    # an independent check of the launchers themselves, not only agreement with the CPU kernel
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    _, (_, _, _, y), _, _ = run_both(K.linear_forward, form, x, w, b, np.empty((6, 3)))
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-12, atol=1e-12)
