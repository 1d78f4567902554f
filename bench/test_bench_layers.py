"""The memory-bound ops (max/avg pooling, batch norm, activations) on (32, 64, 32, 32) and
linear on (256, 1024) x (1024, 1024), float32: naive kernels against nbconv's.

    pytest bench/ --benchmark-only

``naive`` calls the reference kernels as nbconv.functional did before the parallel twins;
``nbconv`` is nbconv.functional as it is.  Each group also times the machine's limit: copying
the same number of bytes (memory-bound ops) or np.dot of the same size (linear).  Not part of
the default test run.
"""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.bench import BYTES, LINEAR_SHAPE, MAP_SHAPE, MEMORY_OPS, memory_op_methods


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal(MAP_SHAPE, dtype=np.float32)


@pytest.mark.parametrize("method", ["naive", "nbconv"])
@pytest.mark.parametrize("op", MEMORY_OPS)
def test_forward(benchmark, x, op, method):
    naive_fwd, _, fwd, _, _ = memory_op_methods(op)
    f = naive_fwd if method == "naive" else fwd
    f(x)                                                       # compile outside the timing
    benchmark.group = f"{op} forward"
    benchmark.pedantic(f, args=(x,), rounds=20, warmup_rounds=2)


@pytest.mark.parametrize("method", ["naive", "nbconv"])
@pytest.mark.parametrize("op", MEMORY_OPS)
def test_backward(benchmark, x, op, method):
    naive_fwd, naive_bwd, fwd, bwd, _ = memory_op_methods(op)
    f, b = (naive_fwd, naive_bwd) if method == "naive" else (fwd, bwd)
    y, cache = f(x)
    dy = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    b(dy, cache)
    benchmark.group = f"{op} backward"
    benchmark.pedantic(b, args=(dy, cache), rounds=20, warmup_rounds=2)


@pytest.mark.parametrize("phase", ["forward", "backward"])
@pytest.mark.parametrize("op", MEMORY_OPS)
def test_copy_limit(benchmark, x, op, phase):
    """Copying as many bytes as the op must move (BYTES): half read, half written."""
    nbytes = BYTES[op][phase == "backward"] * x.nbytes
    src = np.ones(int(nbytes) // 8, np.float32)
    dst = np.empty_like(src)
    benchmark.group = f"{op} {phase}"
    benchmark.pedantic(np.copyto, args=(dst, src), rounds=20, warmup_rounds=2)


def _linear_inputs():
    N, D, M = LINEAR_SHAPE
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N, D), dtype=np.float32), rng.standard_normal((M, D), dtype=np.float32),
            rng.standard_normal(M, dtype=np.float32))


def test_linear_forward(benchmark):
    x, w, b = _linear_inputs()
    F.linear_forward(x[:1], w, b)
    benchmark.group = "linear forward"
    benchmark.pedantic(F.linear_forward, args=(x, w, b), rounds=3, warmup_rounds=0)


def test_linear_backward(benchmark):
    x, w, b = _linear_inputs()
    y, cache = F.linear_forward(x, w, b)
    benchmark.group = "linear backward"
    benchmark.pedantic(F.linear_backward, args=(np.ones_like(y), cache), rounds=3, warmup_rounds=0)


@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_linear_gemm_limit(benchmark, phase):
    x, w, _ = _linear_inputs()
    out = np.empty((x.shape[0], w.shape[0]), np.float32)
    wt = np.ascontiguousarray(w.T)
    benchmark.group = f"linear {phase}"
    benchmark.pedantic(np.dot, args=(x, wt, out), rounds=5, warmup_rounds=1)
