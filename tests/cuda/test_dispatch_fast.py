"""The methods on the device (nbconv.functional.dispatch): every op takes "naive", "fast" and
"auto"; linear and the convolutions have a fast form of their own, every other op runs its one
kernel pair under both names; "auto" is "fast"; an unknown method is refused with the op, the
device and the allowed names."""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv import devices
from nbconv.functional import conv_fast, dispatch

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

from numba import cuda  # noqa: E402  (the simulator, tests/cuda/conftest.py)

from nbconv.kernels.cuda import gemm, linear as cuda_linear  # noqa: E402


def test_every_op_takes_the_three_methods_on_the_device():
    table = dispatch.cuda_table()
    assert set(table) == set(dispatch.CPU)
    for op in dispatch.CPU:
        assert set(table[op]) == {"naive", "fast"}, op
        assert dispatch.allowed_methods(op, devices.CUDA) == ("naive", "fast", "auto")
        assert dispatch.resolve(op, "auto", devices.CUDA, 1) == "fast"
        assert dispatch.resolve(op, "naive", devices.CUDA, 10**9) == "naive"
    variants = dispatch.cuda_variants()
    assert set(variants) == set(dispatch.VARIANTS)
    assert all(forms["fast"] is forms["naive"] for forms in variants.values())


def test_only_linear_has_a_fast_form_of_its_own_among_the_ops():
    table = dispatch.cuda_table()
    own = {op for op, forms in table.items() if forms["fast"] is not forms["naive"]}
    assert own == {"linear"}
    assert table["linear"]["fast"] == dispatch.Kernels(cuda_linear.linear_forward_gemm,
                                                       cuda_linear.linear_backward_gemm)
    assert table["linear"]["naive"] == dispatch.Kernels(cuda_linear.linear_forward, cuda_linear.linear_backward)


@pytest.mark.parametrize("bad", ["gpu", "Fast", None, 3])
def test_an_unknown_method_is_refused_with_the_op_the_device_and_the_methods(bad):
    with pytest.raises(ValueError, match=rf"^method must be one of 'naive', 'fast', 'auto' for relu on cuda, "
                                         rf"got {bad!r}$"):
        dispatch.check_method("relu", bad, devices.CUDA)
    x = cuda.to_device(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"for linear on cuda"):
        F.linear_forward(x, cuda.to_device(np.zeros((2, 3))), method=bad)


def test_the_conv_methods_on_the_device():
    table = dispatch.conv_cuda_table()
    assert set(table) == {"direct", "im2col", "blocked", "fast"} == set(dispatch.CONV_CUDA_METHODS)
    assert table["fast"] == dispatch.Kernels(conv_fast.fast_forward_cuda, conv_fast.fast_backward_cuda)
    assert table["im2col"] == dispatch.Kernels(conv_fast.im2col_forward_cuda, conv_fast.im2col_backward_cuda)
    assert table["blocked"] == table["direct"]
    resolved = {m: dispatch.conv_method(m, devices.CUDA) for m in ("naive", "fast", "auto", "direct", "im2col")}
    assert resolved == {"naive": "direct", "fast": "fast", "auto": "fast", "direct": "direct", "im2col": "im2col"}
    assert dispatch.conv_method("fast") == "blocked"         # on the CPU "fast" is blocked
    message = (r"^method must be one of 'direct', 'im2col', 'blocked', 'fast', 'naive', 'auto' on cuda, got 'fft' "
               r"\('naive' is 'direct'; 'auto' is 'fast'\)$")
    with pytest.raises(ValueError, match=message):
        dispatch.conv_method("fft", devices.CUDA)


@pytest.mark.parametrize("method, runs", [("naive", "naive"), ("fast", "fast"), ("auto", "fast")])
def test_the_functional_ops_keep_the_form_that_ran(monkeypatch, method, runs):
    if devices.simulator():          # gemm's tiles 8 x 8, the same code on fewer simulated threads
        small = dict(BM=8, BN=8, BK=4, TM=2, TN=2, THREADS_Y=4, THREADS_X=4, THREADS=16, A_SLICE=(8, 5),
                     B_SLICE=(4, 9))
        for name, value in small.items():
            monkeypatch.setattr(gemm, name, value)
    with devices.tuned_cuda_run():
        x = cuda.to_device(np.array([[-1.0, 2.0, 0.5]]))
        y, cache = F.relu_forward(x, method=method)
        assert cache.method == runs
        (dx,) = F.relu_backward(cuda.to_device(np.ones((1, 3))), cache)
        np.testing.assert_array_equal(dx.copy_to_host(), [[0.0, 1.0, 1.0]])
        w, b = np.arange(6.0).reshape(2, 3), np.array([0.5, -1.0])
        y, cache = F.linear_forward(x, cuda.to_device(w), cuda.to_device(b), method=method)
        assert cache.method == runs
        np.testing.assert_allclose(y.copy_to_host(), x.copy_to_host() @ w.T + b, rtol=1e-12)
        dx, dw, db = F.linear_backward(cuda.to_device(np.ones((1, 2))), cache)
        np.testing.assert_allclose(dx.copy_to_host(), [w.sum(axis=0)], rtol=1e-12)
        np.testing.assert_allclose(dw.copy_to_host(), np.ones((2, 1)) * x.copy_to_host(), rtol=1e-12)
        np.testing.assert_allclose(db.copy_to_host(), [1.0, 1.0], rtol=1e-12)
