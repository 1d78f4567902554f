"""Every memory-bound op of nbconv.bench.MEMORY_OPS (pooling, normalizations, activations,
dropout, softmax) on (32, 64, 32, 32), and linear on (256, 1024) x (1024, 1024), float32: each in
its naive and its fast form (``method=``), through nbconv.functional.

    pytest bench/ --benchmark-only

Each group also times the machine's limit: copying the same number of bytes (memory-bound ops)
or np.dot of the same size (linear).  Not part of the default test run.
"""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.bench import BYTES, LINEAR_SHAPE, MAP_SHAPE, MEMORY_OPS, memory_op_forms, memory_op_methods

CASES = [(op, method) for op in MEMORY_OPS for method in memory_op_forms(op)]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal(MAP_SHAPE, dtype=np.float32)


@pytest.mark.parametrize("op, method", CASES)
def test_forward(benchmark, x, op, method):
    f, _ = memory_op_methods(op, method)
    f(x)                                                       # compile outside the timing
    benchmark.group = f"{op} forward"
    benchmark.pedantic(f, args=(x,), rounds=20, warmup_rounds=2)


@pytest.mark.parametrize("op, method", CASES)
def test_backward(benchmark, x, op, method):
    f, b = memory_op_methods(op, method)
    y, cache = f(x)
    dy = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    b(dy, cache)
    benchmark.group = f"{op} backward"
    benchmark.pedantic(b, args=(dy, cache), rounds=20, warmup_rounds=2)


@pytest.mark.parametrize("phase", ["forward", "backward"])
@pytest.mark.parametrize("op", list(MEMORY_OPS))
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


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_linear_forward(benchmark, method):
    x, w, b = _linear_inputs()
    F.linear_forward(x[:1], w, b, method=method)
    benchmark.group = "linear forward"
    benchmark.pedantic(F.linear_forward, args=(x, w, b), kwargs={"method": method}, rounds=3, warmup_rounds=0)


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_linear_backward(benchmark, method):
    x, w, b = _linear_inputs()
    y, cache = F.linear_forward(x, w, b, method=method)
    benchmark.group = "linear backward"
    benchmark.pedantic(F.linear_backward, args=(np.ones_like(y), cache), rounds=3, warmup_rounds=0)


@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_linear_gemm_limit(benchmark, phase):
    x, w, _ = _linear_inputs()
    out = np.empty((x.shape[0], w.shape[0]), np.float32)
    wt = np.ascontiguousarray(w.T)
    benchmark.group = f"linear {phase}"
    benchmark.pedantic(np.dot, args=(x, wt, out), rounds=5, warmup_rounds=1)
