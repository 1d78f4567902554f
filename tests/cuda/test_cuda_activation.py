"""nbconv.kernels.cuda.activation against the CPU kernels."""

import numpy as np
import pytest

import nbconv.kernels.activation as K
import nbconv.kernels.cuda.activation as G


def _inputs(rng, dtype):
    """37 values: random, exact zeros (the kinks), large magnitudes (sigmoid/elu tails), a NaN."""
    x = rng.standard_normal(37) * 3
    x[:6] = [0.0, -0.0, 1000.0, -1000.0, 40.0, -40.0]
    x[6] = np.nan
    return x.astype(dtype)


ELEMENTWISE = [
    ("relu", (), "x"),
    ("leaky_relu", (0.01,), "x"),
    ("leaky_relu", (0.0,), "x"),
    ("elu", (1.0,), "x"),
    ("elu", (0.3,), "x"),
    ("sigmoid", (), "y"),
    ("tanh", (), "y"),
]


@pytest.mark.parametrize("op, params, saved", ELEMENTWISE, ids=[f"{o}{p}" for o, p, _ in ELEMENTWISE])
def test_elementwise(rng, dtype, compare, op, params, saved):
    x = _inputs(rng, dtype)
    fwd_cpu, fwd_gpu = getattr(K, f"{op}_forward"), getattr(G, f"{op}_forward")
    cpu = compare(fwd_cpu, fwd_gpu, x, np.full_like(x, np.nan), *params)
    y = cpu[1]
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = np.full_like(x, np.nan)
    s = x if saved == "x" else y                       # relu/leaky/elu use x, sigmoid/tanh the output
    compare(getattr(K, f"{op}_backward"), getattr(G, f"{op}_backward"), dy, s, dx, *params)


def test_elementwise_empty(compare):
    x = np.zeros(0)
    compare(K.relu_forward, G.relu_forward, x, np.zeros(0))
    compare(K.sigmoid_backward, G.sigmoid_backward, x, x, np.zeros(0))


def test_prelu(rng, dtype, compare):
    x = (rng.standard_normal((2, 3, 5)) * 2).astype(dtype)
    x[0, 1, :2] = 0.0
    w = rng.standard_normal(3).astype(dtype)
    compare(K.prelu_forward, G.prelu_forward, x, w, np.full_like(x, np.nan))
    dy = rng.standard_normal(x.shape).astype(dtype)
    compare(K.prelu_backward, G.prelu_backward, dy, x, w, np.full_like(x, np.nan), np.full_like(w, np.nan))


@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_maxout(rng, dtype, compare, pieces):
    N, K_, S = 2, 2, 5
    x = rng.integers(-2, 3, (N, K_ * pieces, S)).astype(dtype)   # small integers: ties go to the lowest p
    x[1, 0, 0] = np.nan
    cpu = compare(K.maxout_forward, G.maxout_forward,
                  x, np.full((N, K_, S), np.nan, dtype), np.full((N, K_, S), -7, np.int64), pieces)
    argmax = cpu[2]
    dy = rng.standard_normal((N, K_, S)).astype(dtype)
    compare(K.maxout_backward, G.maxout_backward, dy, argmax, np.full(x.shape, np.nan, dtype), pieces)
