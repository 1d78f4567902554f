"""conv2d forward + backward: the naive loop nest against im2col + GEMM.

    pytest bench/ --benchmark-only

Not part of the default test run (pytest's testpaths is tests/).  Compare the
methods within one run; absolute times depend on the machine and its load.
"""

import numpy as np
import pytest

import nbconv.functional as F

# (N, C, H, W, F, K, stride, pad), float32
SHAPES = [
    (8, 3, 32, 32, 16, 3, 1, 1),
    (8, 16, 16, 16, 32, 3, 1, 1),
    (8, 32, 16, 16, 32, 1, 1, 0),
]


def _ids(shape):
    return "N{}-C{}-{}x{}-F{}-K{}-S{}-P{}".format(*shape)


@pytest.mark.parametrize("method", ["direct", "im2col"])
@pytest.mark.parametrize("shape", SHAPES, ids=_ids)
def test_conv2d_forward_backward(benchmark, shape, method):
    N, C, H, W, Fn, K, stride, pad = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((Fn, C, K, K)).astype(np.float32)
    b = np.zeros(Fn, np.float32)

    def step():
        y, cache = F.conv2d_forward(x, w, b, stride=stride, padding=pad, method=method)
        return F.conv2d_backward(np.ones_like(y), cache)

    step()  # compile outside the timing
    benchmark.group = _ids(shape)
    benchmark(step)
