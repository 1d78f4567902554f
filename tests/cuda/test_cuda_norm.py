"""nbconv.kernels.cuda.norm against the CPU kernels, both given the same arrays.

The statistics (mean, var, inv_std) are arrays of the data's dtype here, as nbconv.functional
passes them on the device; the CPU kernels then sum in float64 and round once when they store,
the GPU sums in the data's dtype.  tests/cuda/test_cuda_norm_reductions.py compares with the CPU
path's float64 statistics, at group sizes around and above the block size.
"""

import numpy as np
import pytest

import nbconv.kernels.norm as K
import nbconv.kernels.cuda.norm as G

VIEWS = [(2, 2, 5), (1, 3, 7), (6, 2, 1)]     # (A, C, B): batch-norm like, layer/group-norm like, (N, C)


def _x(rng, dtype, shape):
    x = rng.standard_normal(shape) * 2
    x[:, 0, :] += 1000.0                       # a large common offset (shifted sums keep precision)
    if shape[1] > 1:
        x[:, 1, :] = 3.25                      # a constant group: var = 0 exactly
    return x.astype(dtype)


@pytest.mark.parametrize("shape", VIEWS)
def test_moments_and_normalize_forward(rng, dtype, compare, shape):
    A, C, B = shape
    x = _x(rng, dtype, shape)
    nan = np.full(C, np.nan, dtype)
    cpu = compare(K.moments, G.moments, x, nan, nan)
    mean, var = cpu[1], cpu[2]
    compare(K.normalize_forward, G.normalize_forward, x, mean, var, 1e-5, np.full_like(x, np.nan), nan)


def test_running_average_update(rng, dtype, compare):
    rm, rv = rng.standard_normal(4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    mean, var = rng.standard_normal(4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    compare(K.running_average_update, G.running_average_update, rm, rv, mean, var, 0.1, 10 / 9)


def _normalized(rng, dtype, shape):
    x = rng.standard_normal(shape)
    xhat = (x - x.mean(axis=(0, 2), keepdims=True)) / x.std(axis=(0, 2), keepdims=True)
    inv_std = rng.uniform(0.5, 2.0, shape[1])
    return xhat.astype(dtype), inv_std.astype(dtype)


@pytest.mark.parametrize("shape", VIEWS)
def test_normalize_backward(rng, dtype, compare, shape):
    xhat, inv_std = _normalized(rng, dtype, shape)
    dxhat = rng.standard_normal(shape).astype(dtype)
    compare(K.normalize_backward, G.normalize_backward, dxhat, xhat, inv_std, np.full_like(xhat, np.nan))


@pytest.mark.parametrize("shape", VIEWS)
def test_channel_affine(rng, dtype, compare, shape):
    C = shape[1]
    xhat, _ = _normalized(rng, dtype, shape)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    compare(K.channel_affine_forward, G.channel_affine_forward, xhat, gamma, beta, np.full_like(xhat, np.nan))
    dout = rng.standard_normal(shape).astype(dtype)
    nan_c = np.full(C, np.nan, dtype)
    compare(K.channel_affine_backward, G.channel_affine_backward,
            dout, xhat, gamma, np.full_like(xhat, np.nan), nan_c, nan_c)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 2, 4), (5, 2, 1)])
def test_batch_norm_backward(rng, dtype, compare, shape, training):
    C = shape[1]
    xhat, inv_std = _normalized(rng, dtype, shape)
    gamma = rng.standard_normal(C).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    nan_c = np.full(C, np.nan, dtype)
    compare(K.batch_norm_backward, G.batch_norm_backward,
            dout, xhat, gamma, inv_std, training, np.full_like(xhat, np.nan), nan_c, nan_c)


@pytest.mark.parametrize("size", [1, 3, 4, 7])
def test_local_response_norm(rng, dtype, compare, size):
    shape = (2, 5, 3)                                       # (N, C, S); size 7 > C: the window is clipped
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    alpha, beta, k = 0.3, 0.75, 2.0
    cpu = compare(K.local_response_norm_forward, G.local_response_norm_forward,
                  x, size, alpha, beta, k, np.full_like(x, np.nan), np.full_like(x, np.nan))
    d = cpu[5]
    dout = rng.standard_normal(shape).astype(dtype)
    compare(K.local_response_norm_backward, G.local_response_norm_backward,
            dout, x, d, size, alpha, beta, np.full_like(x, np.nan))
