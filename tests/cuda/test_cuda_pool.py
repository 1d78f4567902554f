"""nbconv.kernels.cuda.pool against the CPU kernels."""

import numpy as np
import pytest

import nbconv.kernels.pool as K
import nbconv.kernels.cuda.pool as G
from nbconv import devices

# (N, C, H, W, (KH, KW), (SH, SW), (PH, PW)): non-overlapping, overlapping (windows share pixels,
# so several windows can route their gradient to one winner, and the gathers sum several
# windows), padding, strides that skip pixels
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
def test_max_pool2d(rng, dtype, compare, run_both, small_blocks, case):
    N, C, H, W, k, s, p = case
    OH, OW = _out(H, k[0], s[0], p[0]), _out(W, k[1], s[1], p[1])
    x = rng.integers(-3, 4, (N, C, H, W)).astype(dtype)     # small integers: many ties
    x[0, 0, 0, 1] = np.nan                                  # a NaN wins its windows
    cpu = compare(K.max_pool2d_forward, G.max_pool2d_forward,
                  x, np.full((N, C, OH, OW), np.nan, dtype), np.full((N, C, OH, OW), -7, np.int64), *k, *s, *p)
    switches = cpu[2]
    dout = rng.standard_normal((N, C, OH, OW)).astype(dtype)
    (_, _, dx_cpu), (_, _, dx_gpu), _, _ = run_both(K.max_pool2d_backward, G.max_pool2d_backward,
                                                    dout, switches, np.full(x.shape, np.nan, dtype))
    np.testing.assert_array_equal(dx_gpu, dx_cpu)           # the CPU's additions, in its order: bit for bit


def _scatter_in_reverse(dout, switches, shape):
    """The CPU's scatter with the outputs taken last to first (another order of the same additions)."""
    dx = np.zeros(shape, dout.dtype)
    N, C, OH, OW = dout.shape
    for n, c, i, j in reversed(list(np.ndindex(N, C, OH, OW))):
        s = switches[n, c, i, j]
        dx[n, c, s // shape[3], s % shape[3]] += dout[n, c, i, j]
    return dx


@pytest.mark.parametrize("blocks", ["blocks-of-8", "blocks-of-128"])
def test_max_pool2d_backward_adds_in_the_cpu_order(rng, dtype, run_both, monkeypatch, blocks):
    # 3x3 windows at stride 1 on a 5x5 plane padded by 1: 25 windows, each pixel in up to 9 of
    # them.  A plateau of equal values (ties: the first pixel of a window wins) and a few larger
    # values make pixels that win several windows.  In each plane, the pixel that wins the most
    # windows gets the gradients 1, big, -big, 0, ... from them in row-major order: the CPU's
    # sum, ((0 + 1) + big) - big, is 0 (1 + big rounds to big); another order gives 1 (checked
    # below: the test can tell the orders apart).  In blocks of 8 the 25 outputs take 4 rounds
    # and a winner's windows fall into several rounds; in blocks of 128, into one.
    if devices.simulator():                 # (the conftest's simulator default is 16)
        monkeypatch.setattr(G, "THREADS", 8 if blocks == "blocks-of-8" else 128)
    x = np.zeros((2, 1, 5, 5), dtype)
    x[0, 0, 2, 2] = 1.0
    x[0, 0, 0, 4] = 1.0
    x[1, 0, 1:4, 1:4] = 2.0
    x[1, 0, 4, 0] = 3.0
    switches = np.empty((2, 1, 5, 5), np.int64)
    K.max_pool2d_forward(x, np.empty((2, 1, 5, 5), dtype), switches, 3, 3, 1, 1, 1, 1)
    big = 1e8 if dtype == np.float32 else 1e17              # 1 + big rounds to big
    dout = rng.choice([-3.0, -1.0, 1.0, 3.0], (2, 1, 5, 5)).astype(dtype)
    for n in range(2):
        winners = switches[n, 0].ravel()
        most = np.bincount(winners).argmax()
        windows = np.flatnonzero(winners == most)           # row-major order
        assert len(windows) >= 3
        dout[n, 0].flat[windows] = 0.0
        dout[n, 0].flat[windows[:3]] = [1.0, big, -big]
    (_, _, dx_cpu), (_, _, dx_gpu), _, _ = run_both(K.max_pool2d_backward, G.max_pool2d_backward,
                                                    dout, switches, np.full(x.shape, np.nan, dtype))
    assert np.any(dx_cpu != _scatter_in_reverse(dout, switches, x.shape))
    np.testing.assert_array_equal(dx_gpu, dx_cpu)


def test_max_pool2d_backward_adds_shared_winners(run_both):
    # one big pixel wins all four overlapping windows: four gradients added into one element
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


# (N, C, H, W): the forward sums H*W pixels in one block per (n, c).  In blocks of 8: 20 pixels
# (not a multiple of 8, three rounds) and 1 pixel; at the real 128 threads: 11*13 = 143
# (two rounds, the second one with 15 pixels) and 1 pixel.
@pytest.mark.parametrize("shape, blocks", [((2, 3, 4, 5), "blocks-of-8"), ((2, 2, 1, 1), "blocks-of-8"),
                                           ((1, 2, 11, 13), "blocks-of-128"), ((1, 1, 1, 1), "blocks-of-128")],
                         ids=["20px-blocks-of-8", "1px-blocks-of-8", "143px-blocks-of-128", "1px-blocks-of-128"])
def test_global_avg_pool2d(rng, dtype, compare, monkeypatch, shape, blocks):
    if devices.simulator():                 # (the conftest's simulator default is 16)
        monkeypatch.setattr(G, "THREADS", 8 if blocks == "blocks-of-8" else 128)
    x = rng.standard_normal(shape).astype(dtype)
    compare(K.global_avg_pool2d_forward, G.global_avg_pool2d_forward, x, np.full(shape[:2], np.nan, dtype))
    dout = rng.standard_normal(shape[:2]).astype(dtype)
    compare(K.global_avg_pool2d_backward, G.global_avg_pool2d_backward, dout, np.full(x.shape, np.nan, dtype))


def test_pooling_empty_batch(compare):
    x = np.zeros((0, 2, 4, 4))
    compare(K.max_pool2d_forward, G.max_pool2d_forward,
            x, np.empty((0, 2, 2, 2)), np.empty((0, 2, 2, 2), np.int64), 2, 2, 2, 2, 0, 0)
    compare(K.max_pool2d_backward, G.max_pool2d_backward,
            np.empty((0, 2, 2, 2)), np.empty((0, 2, 2, 2), np.int64), np.empty(x.shape))
    compare(K.avg_pool2d_backward, G.avg_pool2d_backward, np.empty((0, 2, 2, 2)), np.empty(x.shape),
            2, 2, 2, 2, 0, 0)
    compare(K.global_avg_pool2d_forward, G.global_avg_pool2d_forward, x, np.empty((0, 2)))
    compare(K.global_avg_pool2d_backward, G.global_avg_pool2d_backward, np.empty((0, 2)), np.empty(x.shape))
