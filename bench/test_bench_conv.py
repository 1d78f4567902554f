"""conv2d forward and backward: the naive loop nest, im2col + GEMM and the blocked direct kernel.

    pytest bench/ --benchmark-only                       everything (the naive method takes minutes)
    pytest bench/test_bench_conv.py --benchmark-only -k "not direct"

The shapes are those of the performance issue (``nbconv.bench.CONV_SHAPES``), float32.  Each
benchmark group is one shape and phase, with np.dot of the forward GEMM's size beside the
methods as the machine's limit.  Not part of the default test run (pytest's testpaths is
tests/).  Compare the methods within one run; absolute times depend on the machine and its
load.  ``nbconv bench`` prints the same comparison as tables with GFLOP/s and speedups.
"""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.bench import CONV_SHAPES


def _id(shape):
    return "N{}-C{}-{}x{}-F{}-K{}-S{}-P{}".format(*shape)


def _inputs(shape):
    N, C, H, W, Fn, K, stride, pad = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((Fn, C, K, K), dtype=np.float32)
    b = rng.standard_normal(Fn, dtype=np.float32)
    return x, w, b, dict(stride=stride, padding=pad)


def _rounds(method):
    return (1, 0) if method == "direct" else (5, 1)       # (rounds, warm-up rounds): the naive nest is slow


@pytest.mark.parametrize("method", ["direct", "im2col", "blocked"])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=_id)
def test_conv2d_forward(benchmark, shape, method):
    x, w, b, hyper = _inputs(shape)
    F.conv2d_forward(x[:1], w, b, method=method, **hyper)          # compile outside the timing
    benchmark.group = f"conv2d forward {_id(shape)}"
    rounds, warmup = _rounds(method)
    benchmark.pedantic(F.conv2d_forward, args=(x, w, b), kwargs=dict(method=method, **hyper),
                       rounds=rounds, warmup_rounds=warmup)


@pytest.mark.parametrize("method", ["direct", "im2col", "blocked"])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=_id)
def test_conv2d_backward(benchmark, shape, method):
    x, w, b, hyper = _inputs(shape)
    y, cache = F.conv2d_forward(x, w, b, method=method, **hyper)
    dy = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    benchmark.group = f"conv2d backward {_id(shape)}"
    rounds, warmup = _rounds(method)
    benchmark.pedantic(F.conv2d_backward, args=(dy, cache), rounds=rounds, warmup_rounds=max(warmup, 0))


@pytest.mark.parametrize("phase", ["forward", "backward"])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=_id)
def test_gemm_limit(benchmark, shape, phase):
    """np.dot of float32 matrices of the forward GEMM's size, (F, C*K*K) @ (C*K*K, N*OH*OW)."""
    N, C, H, W, Fn, K, stride, pad = shape
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    rng = np.random.default_rng(0)
    a = rng.standard_normal((Fn, C * K * K), dtype=np.float32)
    bm = rng.standard_normal((C * K * K, N * OH * OW), dtype=np.float32)
    out = np.empty((Fn, N * OH * OW), np.float32)
    benchmark.group = f"conv2d {phase} {_id(shape)}"
    benchmark.pedantic(np.dot, args=(a, bm, out), rounds=5, warmup_rounds=1)
