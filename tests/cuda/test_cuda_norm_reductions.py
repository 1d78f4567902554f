"""The reductions of nbconv.kernels.cuda.norm against the CPU path, at group sizes that are not
multiples of the block size, and 1.

Every per-group sum on the GPU (the moments, the backward's sums of dout and dout * xhat, dgamma
and dbeta) is one block of THREADS threads per group: thread tid adds the terms tid, tid +
THREADS, ... and block_sum adds up the block's running sums in a tree.  The sizes below put
m = 1, 2, 70, 128, 135, 140 and 300 terms in a group (fewer terms than threads, exactly one
block's worth, and one, two or three strides of the loop, in the GPU's blocks of 128; in the
simulator's blocks of 16, tests/cuda/conftest.py, they are 1 to 19 strides, 128 a multiple of the
block and the others not), and m = 0 for the sums.

What is compared: the CPU kernels as the CPU path runs them (float64 statistics and sums) with
the GPU launchers as the device path runs them (statistics in the data's dtype).  float64 data
must agree to 1e-12.  float32 data computes in float32 on the GPU, so it agrees to float32
rounding: the statistics and the sums to the bound of the module's docstring, about
(m / THREADS + log2 THREADS) float32 roundings of the sum of the terms' sizes (``_float32_bound``),
and what is computed from them (xhat, out, dx, the running statistics) to the float32 tolerance
of tests/cuda/conftest.py, 1e-5.
"""

import math

import numpy as np
import pytest

import nbconv.kernels.norm as K
import nbconv.kernels.cuda.norm as G

from numba import cuda

FLOAT64 = dict(rtol=1e-12, atol=1e-12)
FLOAT32 = dict(rtol=1e-5, atol=1e-5)


def _tol(dtype):
    return FLOAT32 if dtype == np.float32 else FLOAT64


def _float32_bound(m):
    """The rounding error of a float32 block sum of m terms, in units of the sum of their sizes:
    ceil(m / THREADS) - 1 additions in a thread's running sum, log2(THREADS) levels of the tree,
    and a few more roundings (the shift, the division by m, the store)."""
    threads = G.THREADS              # the block size the kernels run with (16 in the simulator's tests)
    return (math.ceil(m / threads) + math.log2(threads) + 4) * 2.0 ** -24


def _close(got, want, tol, what):
    got = got.copy_to_host() if hasattr(got, "copy_to_host") else got
    np.testing.assert_allclose(got, want, err_msg=what, **tol)


def _data(rng, dtype, shape, offset=0.5):
    return (rng.standard_normal(shape) * 2 + offset).astype(dtype)


# --- the statistics, and the backward through them, per group (A, C, B) -----------------------

STAT_VIEWS = [
    (3, 2, 45),       # m = 135 = one block plus 7, over both a and b (batch norm's view)
    (1, 1, 128),      # m = 128: exactly one term per thread (layer norm's and weight standardization's view)
]                     # (m = 1: test_layer_norm_of_one_value_per_row)


@pytest.mark.parametrize("shape", STAT_VIEWS, ids=[f"m={s[0] * s[2]}" for s in STAT_VIEWS])
def test_moments_normalize_and_backward_equal_the_cpu_path(rng, dtype, shape):
    A, C, B = shape
    m = A * B
    x = _data(rng, dtype, shape)
    dxhat = _data(rng, dtype, shape, offset=0.0)
    # the CPU path: float64 statistics (the functional layer's NormCache.inv_std is float64 there)
    mean, var, inv_std, xhat, dx = np.empty(C), np.empty(C), np.empty(C), np.empty_like(x), np.empty_like(x)
    K.moments(x, mean, var)
    K.normalize_forward(x, mean, var, 1e-5, xhat, inv_std)
    K.normalize_backward(dxhat, xhat, inv_std, dx)
    # the device path: statistics in x's dtype
    d_x, d_dxhat = cuda.to_device(x), cuda.to_device(dxhat)
    d_mean, d_var, d_inv_std = (cuda.to_device(np.full(C, np.nan, dtype)) for _ in range(3))
    d_xhat, d_dx = cuda.to_device(np.full_like(x, np.nan)), cuda.to_device(np.full_like(x, np.nan))
    G.moments(d_x, d_mean, d_var)
    G.normalize_forward(d_x, d_mean, d_var, 1e-5, d_xhat, d_inv_std)
    G.normalize_backward(d_dxhat, d_xhat, d_inv_std, d_dx)

    if dtype == np.float32:
        bound = _float32_bound(m)
        x64 = x.astype(np.float64).transpose(1, 0, 2).reshape(C, m)
        sizes = np.abs(x64 - x64[:, :1]).mean(axis=1) + np.abs(mean)        # the shifted terms, and the shift
        assert np.all(np.abs(d_mean.copy_to_host() - mean) <= bound * sizes), (d_mean.copy_to_host(), mean)
        assert np.all(np.abs(d_var.copy_to_host() - var) <= bound * var), (d_var.copy_to_host(), var)
        _close(d_inv_std, inv_std, dict(rtol=bound, atol=0), "inv_std")      # (var + eps)^(-1/2): half var's error
    else:
        for got, want, name in ((d_mean, mean, "mean"), (d_var, var, "var"), (d_inv_std, inv_std, "inv_std")):
            _close(got, want, FLOAT64, name)
    _close(d_xhat, xhat, _tol(dtype), "xhat")
    _close(d_dx, dx, _tol(dtype), "dx")


SUM_VIEWS = [
    (0, 1, 3),        # m = 0: an empty batch sums to 0
    (135, 2, 1),      # m = 135 down the rows (layer norm's dgamma and dbeta: a block per column)
    (1, 1, 300),      # m = 300: two strides and a part
]


@pytest.mark.parametrize("shape", SUM_VIEWS, ids=[f"m={s[0] * s[2]}" for s in SUM_VIEWS])
def test_dgamma_and_dbeta_sums_equal_the_cpu_path(rng, dtype, shape):
    A, C, B = shape
    m = A * B
    dout, xhat, gamma = _data(rng, dtype, shape), _data(rng, dtype, shape, 0.0), _data(rng, dtype, (C,))
    dgamma, dbeta, dxhat = np.empty(C), np.empty(C), np.empty_like(dout)       # float64 sums on the CPU
    K.channel_affine_backward(dout, xhat, gamma, dxhat, dgamma, dbeta)
    d_dgamma, d_dbeta = cuda.to_device(np.full(C, np.nan, dtype)), cuda.to_device(np.full(C, np.nan, dtype))
    d_dxhat = cuda.to_device(np.full_like(dout, np.nan))
    G.channel_affine_backward(cuda.to_device(dout), cuda.to_device(xhat), cuda.to_device(gamma), d_dxhat,
                              d_dgamma, d_dbeta)

    d64, x64 = dout.astype(np.float64), xhat.astype(np.float64)
    size_dbeta = np.abs(d64).sum(axis=(0, 2))
    size_dgamma = np.abs(d64 * x64).sum(axis=(0, 2))
    if dtype == np.float32:
        bound = _float32_bound(m)
        assert np.all(np.abs(d_dbeta.copy_to_host() - dbeta) <= bound * size_dbeta)
        assert np.all(np.abs(d_dgamma.copy_to_host() - dgamma) <= bound * size_dgamma)
    else:
        _close(d_dbeta, dbeta, dict(rtol=0, atol=1e-14 * (size_dbeta.max(initial=0) + 1)), "dbeta")
        _close(d_dgamma, dgamma, dict(rtol=0, atol=1e-14 * (size_dgamma.max(initial=0) + 1)), "dgamma")
    _close(d_dxhat, dxhat, _tol(dtype), "dxhat")
    if m == 0:
        assert np.all(d_dbeta.copy_to_host() == 0) and np.all(d_dgamma.copy_to_host() == 0)


# --- the ops: batch norm (with the running statistics), group norm, layer norm ------------------

@pytest.mark.parametrize("shape", [(2, 2, 1), (5, 1, 27)], ids=["m=2", "m=135"])
def test_batch_norm_training_equals_the_cpu_path(rng, dtype, shape):
    N, C, S = shape
    m = N * S
    x, gamma, beta = _data(rng, dtype, shape), _data(rng, dtype, (C,)), _data(rng, dtype, (C,))
    dout = _data(rng, dtype, shape, 0.0)
    running = (rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2.0, C).astype(dtype))
    eps, momentum, unbiased = 1e-5, 0.1, m / (m - 1)

    # CPU: float64 batch statistics and inv_std, the running statistics in x's dtype
    mean, var, inv_std = np.empty(C), np.empty(C), np.empty(C)
    xhat, out, dx = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(gamma)
    rm, rv = running[0].copy(), running[1].copy()
    K.batch_norm_forward(x, gamma, beta, eps, True, mean, var, xhat, inv_std, out)
    K.running_average_update(rm, rv, mean, var, momentum, unbiased)
    K.batch_norm_backward(dout, xhat, gamma, inv_std, True, dx, dgamma, dbeta)

    # GPU: everything in x's dtype
    d = {name: cuda.to_device(np.full(C, np.nan, dtype)) for name in ("mean", "var", "inv_std", "dgamma", "dbeta")}
    d_xhat, d_out, d_dx = (cuda.to_device(np.full_like(x, np.nan)) for _ in range(3))
    d_rm, d_rv = cuda.to_device(running[0]), cuda.to_device(running[1])
    d_x, d_gamma = cuda.to_device(x), cuda.to_device(gamma)
    G.batch_norm_forward(d_x, d_gamma, cuda.to_device(beta), eps, True, d["mean"], d["var"], d_xhat,
                         d["inv_std"], d_out)
    G.running_average_update(d_rm, d_rv, d["mean"], d["var"], momentum, unbiased)
    G.batch_norm_backward(cuda.to_device(dout), d_xhat, d_gamma, d["inv_std"], True, d_dx, d["dgamma"], d["dbeta"])

    tol = _tol(dtype)
    for got, want, name in ((d["mean"], mean, "mean"), (d["var"], var, "var"), (d["inv_std"], inv_std, "inv_std"),
                            (d_xhat, xhat, "xhat"), (d_out, out, "out"), (d_rm, rm, "running_mean"),
                            (d_rv, rv, "running_var"), (d_dx, dx, "dx"), (d["dgamma"], dgamma, "dgamma"),
                            (d["dbeta"], dbeta, "dbeta")):
        _close(got, want, tol, name)


def test_group_norm_equals_the_cpu_path(rng, dtype):
    N, G_, K_, S = 1, 1, 2, 70                   # a group of m = K * S = 140, channels of N * S = 70
    shape = (N, G_, K_, S)
    x, dout = _data(rng, dtype, shape), _data(rng, dtype, shape, 0.0)
    gamma, beta = _data(rng, dtype, (G_ * K_,)), _data(rng, dtype, (G_ * K_,))
    inv_std, xhat, out = np.empty(N * G_), np.empty_like(x), np.empty_like(x)
    dx, dgamma, dbeta = np.empty_like(x), np.empty_like(gamma), np.empty_like(gamma)
    K.group_norm_forward(x, gamma, beta, 1e-5, xhat, inv_std, out)
    K.group_norm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta)

    d_inv_std = cuda.to_device(np.full(N * G_, np.nan, dtype))
    d_xhat, d_out, d_dx = (cuda.to_device(np.full_like(x, np.nan)) for _ in range(3))
    d_dgamma, d_dbeta = cuda.to_device(np.full_like(gamma, np.nan)), cuda.to_device(np.full_like(gamma, np.nan))
    d_gamma = cuda.to_device(gamma)
    G.group_norm_forward(cuda.to_device(x), d_gamma, cuda.to_device(beta), 1e-5, d_xhat, d_inv_std, d_out)
    G.group_norm_backward(cuda.to_device(dout), d_xhat, d_gamma, d_inv_std, d_dx, d_dgamma, d_dbeta)

    tol = _tol(dtype)
    for got, want, name in ((d_inv_std, inv_std, "inv_std"), (d_xhat, xhat, "xhat"), (d_out, out, "out"),
                            (d_dx, dx, "dx"), (d_dgamma, dgamma, "dgamma"), (d_dbeta, dbeta, "dbeta")):
        _close(got, want, tol, name)


def test_layer_norm_of_one_value_per_row(rng, dtype):
    """M = 1: each row is normalized over its single value (var = 0, xhat = 0, out = beta, dx = 0)."""
    R, M = 2, 1
    x, dout = _data(rng, dtype, (R, M)), _data(rng, dtype, (R, M), 0.0)
    gamma, beta = _data(rng, dtype, (M,)), _data(rng, dtype, (M,))
    d_inv_std = cuda.to_device(np.full(R, np.nan, dtype))
    d_xhat, d_out, d_dx = (cuda.to_device(np.full_like(x, np.nan)) for _ in range(3))
    d_dgamma, d_dbeta = cuda.to_device(np.full(M, np.nan, dtype)), cuda.to_device(np.full(M, np.nan, dtype))
    d_gamma = cuda.to_device(gamma)
    G.layer_norm_forward(cuda.to_device(x), d_gamma, cuda.to_device(beta), 1e-5, d_xhat, d_inv_std, d_out)
    G.layer_norm_backward(cuda.to_device(dout), d_xhat, d_gamma, d_inv_std, d_dx, d_dgamma, d_dbeta)
    np.testing.assert_array_equal(d_xhat.copy_to_host(), 0)
    np.testing.assert_array_equal(d_out.copy_to_host(), np.broadcast_to(beta, (R, M)))
    np.testing.assert_array_equal(d_dx.copy_to_host(), 0)
    np.testing.assert_array_equal(d_dgamma.copy_to_host(), 0)                    # sum dout * xhat, xhat = 0
    _close(d_dbeta, dout.astype(np.float64).sum(axis=0), _tol(dtype), "dbeta")
    _close(d_inv_std, np.full(R, 1 / math.sqrt(1e-5)), _tol(dtype), "inv_std")
