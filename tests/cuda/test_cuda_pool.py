"""nbconv.kernels.cuda.pool against the CPU kernels."""

import numpy as np
import pytest

import nbconv.kernels.pool as K
import nbconv.kernels.cuda.pool as G

# (N, C, H, W, (KH, KW), (SH, SW), (PH, PW)): non-overlapping, overlapping (windows share pixels,
# so max pooling's atomic adds collide and the gathers sum several windows), padding, strides
# that skip pixels
CASES = [
    (2, 2, 4, 6, (2, 2), (2, 2), (0, 0)),
    (1, 2, 5, 6, (3, 3), (1, 1), (1, 1)),
    (2, 1, 7, 5, (3, 2), (2, 1), (1, 1)),
    (1, 2, 7, 7, (2, 2), (3, 3), (0, 1)),
]
IDS = ["2x2/2", "3x3/1-pad1", "3x2/(2,1)-pad1", "2x2/3-skips"]


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_max_pool2d(rng, dtype, compare, case):
    N, C, H, W, k, s, p = case
    OH, OW = _out(H, k[0], s[0], p[0]), _out(W, k[1], s[1], p[1])
    x = rng.integers(-3, 4, (N, C, H, W)).astype(dtype)     # small integers: many ties
    x[0, 0, 0, 1] = np.nan                                  # a NaN wins its windows
    cpu = compare(K.max_pool2d_forward, G.max_pool2d_forward,
                  x, np.full((N, C, OH, OW), np.nan, dtype), np.full((N, C, OH, OW), -7, np.int64), *k, *s, *p)
    switches = cpu[2]
    dout = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    compare(K.max_pool2d_backward, G.max_pool2d_backward, dout, switches, np.full(x.shape, np.nan, dtype))


def test_max_pool2d_backward_adds_shared_winners(run_both):
    # one big pixel wins all four overlapping windows: four atomic adds into one element
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    switches = np.full((1, 1, 2, 2), 4, dtype=np.int64)        # row 1 * W 3 + col 1
    dout = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    _, (_, _, dx), _, _ = run_both(K.max_pool2d_backward, G.max_pool2d_backward,
                                   dout, switches, np.full(x.shape, np.nan))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_avg_pool2d(rng, dtype, compare, case):
    N, C, H, W, k, s, p = case
    OH, OW = _out(H, k[0], s[0], p[0]), _out(W, k[1], s[1], p[1])
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    compare(K.avg_pool2d_forward, G.avg_pool2d_forward, x, np.full((N, C, OH, OW), np.nan, dtype), *k, *s, *p)
    dout = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    compare(K.avg_pool2d_backward, G.avg_pool2d_backward, dout, np.full(x.shape, np.nan, dtype), *k, *s, *p)


@pytest.mark.parametrize("p", [2.0, 3.0, 1.5])
@pytest.mark.parametrize("case", [(2, 1, 5, 4, (2, 2), (1, 1)), (1, 2, 6, 7, (3, 2), (2, 3))],
                         ids=["2x2/1", "3x2/(2,3)"])
def test_lp_pool2d(rng, dtype, compare, case, p):
    N, C, H, W, k, s = case
    OH, OW = _out(H, k[0], s[0], 0), _out(W, k[1], s[1], 0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    x[0, 0, :2, :2] = 0.0                                   # a window whose norm is 0 (no gradient)
    x[0, 0, 2, 2] = 0.0                                     # and a zero pixel (sign 0)
    cpu = compare(K.lp_pool2d_forward, G.lp_pool2d_forward, x, np.full((N, C, OH, OW), np.nan, dtype), p, *k, *s)
    out = cpu[1]
    dout = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    compare(K.lp_pool2d_backward, G.lp_pool2d_backward, dout, x, out, np.full(x.shape, np.nan, dtype), p, *k, *s)


def test_global_avg_pool2d(rng, dtype, compare):
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    compare(K.global_avg_pool2d_forward, G.global_avg_pool2d_forward, x, np.full((2, 3), np.nan, dtype))
    dout = rng.standard_normal((2, 3)).astype(dtype)
    compare(K.global_avg_pool2d_backward, G.global_avg_pool2d_backward, dout, np.full(x.shape, np.nan, dtype))


def test_pooling_empty_batch(compare):
    x = np.zeros((0, 2, 4, 4))
    compare(K.max_pool2d_forward, G.max_pool2d_forward,
            x, np.empty((0, 2, 2, 2)), np.empty((0, 2, 2, 2), np.int64), 2, 2, 2, 2, 0, 0)
    compare(K.max_pool2d_backward, G.max_pool2d_backward,
            np.empty((0, 2, 2, 2)), np.empty((0, 2, 2, 2), np.int64), np.empty(x.shape))
    compare(K.avg_pool2d_backward, G.avg_pool2d_backward, np.empty((0, 2, 2, 2)), np.empty(x.shape),
            2, 2, 2, 2, 0, 0)
