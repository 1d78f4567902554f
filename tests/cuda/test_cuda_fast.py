"""The device's fast forms: the register-blocked matrix product (nbconv.kernels.cuda.gemm)
against NumPy, the GPU's "fast" convolution (nbconv.functional.conv_fast, im2col + the library
GEMM + the device workspace) against the device's "im2col" and the CPU's direct kernels, and
the workspace's reuse of its arrays.

Under the simulator every GPU thread is a Python thread: the products against NumPy run the
real tiles (64 x 64, 256 threads, what compiles for a GPU) on few blocks; the convolutions run
small tiles (fixture ``small_blocks``), the same code on 8 x 8 tiles of 16 threads, so that
even the tiny shapes here cross several tiles in every direction.
"""

import numpy as np
import pytest

import nbconv.functional as F
import nbconv.kernels.conv as KC
from nbconv import devices
from nbconv.functional import conv_fast, dispatch

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

from numba import cuda  # noqa: E402  (the simulator, tests/cuda/conftest.py)

from nbconv.kernels.cuda import gemm, im2col as cuda_im2col  # noqa: E402

TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-10),
             np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5)}


@pytest.fixture
def workspace():
    """The device workspace of the "fast" convolution, empty at the start and at the end."""
    conv_fast.release_workspace()
    yield conv_fast.device_workspace()
    conv_fast.release_workspace()


# ----------------------------------------------------------------------------- the product

# (G, R, K, Q, trans_a, trans_b): out (G, R, Q) = A (G, R, K) @ B (G, K, Q).  1x1x1; 17x33x5 in
# the four transposes (33 = 4 k-slices and 1 more); 70 rows (two row tiles) and 70 columns (two
# column tiles); a batch of 3 groups; K = 0 (zeros)
PRODUCTS = [(1, 1, 1, 1, False, False),
            (1, 17, 33, 5, False, False), (1, 17, 33, 5, False, True),
            (1, 17, 33, 5, True, False), (1, 17, 33, 5, True, True),
            (1, 70, 9, 2, True, False), (1, 2, 9, 70, False, True),
            (3, 5, 4, 6, False, False), (3, 5, 4, 6, True, True),
            (1, 3, 0, 4, False, False)]


def _operands(rng, dtype, G, R, K, Q, trans_a, trans_b):
    """A, B for the NumPy product and a, b as the kernel takes them (transposed copies)."""
    A = rng.standard_normal((G, R, K)).astype(dtype)
    B = rng.standard_normal((G, K, Q)).astype(dtype)
    a = np.ascontiguousarray(A.transpose(0, 2, 1)) if trans_a else A
    b = np.ascontiguousarray(B.transpose(0, 2, 1)) if trans_b else B
    return A, B, a, b


@pytest.mark.real_blocks
@pytest.mark.parametrize("G, R, K, Q, trans_a, trans_b", PRODUCTS)
def test_the_register_blocked_product_equals_numpy(rng, G, R, K, Q, trans_a, trans_b):
    dtype = np.float32
    A, B, a, b = _operands(rng, dtype, G, R, K, Q, trans_a, trans_b)
    out = cuda.to_device(np.full((G, R, Q), np.nan, dtype))
    gemm.matmul(cuda.to_device(a), cuda.to_device(b), out, trans_a, trans_b)
    got = out.copy_to_host()
    assert got.dtype == dtype
    np.testing.assert_allclose(got, A.astype(np.float64) @ B.astype(np.float64), **TOLERANCE[np.dtype(dtype)])


@pytest.mark.real_blocks
@pytest.mark.parametrize("trans_a, trans_b", [(False, True), (True, False)])
def test_the_register_blocked_product_in_float64(rng, trans_a, trans_b):
    A, B, a, b = _operands(rng, np.float64, 2, 5, 9, 3, trans_a, trans_b)
    out = cuda.to_device(np.full((2, 5, 3), np.nan))
    gemm.matmul(cuda.to_device(a), cuda.to_device(b), out, trans_a, trans_b)
    np.testing.assert_allclose(out.copy_to_host(), A @ B, rtol=1e-12, atol=1e-12)


def test_fast_matmul_is_the_numba_kernel_without_cublas(rng, small_blocks):
    assert gemm.CUBLAS is False          # no CuPy here (and the simulator has no cuBLAS)
    A, B, a, b = _operands(rng, np.float64, 2, 9, 5, 11, True, False)
    out = cuda.to_device(np.full((2, 9, 11), np.nan))
    gemm.fast_matmul(cuda.to_device(a), cuda.to_device(b), out, trans_a=True)
    np.testing.assert_allclose(out.copy_to_host(), A @ B, rtol=1e-12, atol=1e-12)


class _HostCupy:
    """Stands for CuPy under the simulator: ``asarray`` is the NumPy array behind a simulated
    device array (the same memory, as CuPy's view of a device array), ``dot`` is NumPy's, which
    like CuPy's writes into ``out`` only when it is C-contiguous and of the result's dtype."""

    @staticmethod
    def asarray(a):
        return a._ary

    dot = staticmethod(np.dot)


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (False, True), (True, False), (True, True)])
def test_the_cublas_branch_writes_every_group_into_out_in_place(rng, monkeypatch, trans_a, trans_b):
    """The CuPy branch's own logic (views, transposes, out[g] written in place), with NumPy in
    CuPy's place; CuPy itself runs it on a GPU (bench/gpu_check.py)."""
    monkeypatch.setattr(gemm, "cupy", _HostCupy)
    monkeypatch.setattr(gemm, "CUBLAS", True)
    A, B, a, b = _operands(rng, np.float64, 3, 4, 5, 6, trans_a, trans_b)
    out = cuda.to_device(np.full((3, 4, 6), np.nan))
    gemm.fast_matmul(cuda.to_device(a), cuda.to_device(b), out, trans_a, trans_b)
    np.testing.assert_allclose(out.copy_to_host(), A @ B, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- the fast convolution

# (N, C, H, W, F, KH, KW, (SH, SW), (PH, PW), (DH, DW), groups)
CONVS = [
    (2, 2, 5, 5, 3, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (1, 4, 6, 5, 4, 3, 2, (2, 1), (1, 2), (1, 1), 2),      # stride, padding, 2 groups
    (2, 2, 7, 6, 2, 2, 3, (1, 2), (2, 1), (2, 2), 1),      # dilation
    (1, 3, 5, 5, 3, 3, 3, (2, 2), (1, 1), (1, 1), 3),      # depthwise
]
CONV_IDS = ["pad", "stride-pad-groups2", "dilation", "depthwise"]


def _out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_problem(rng, dtype, N, C, H, W, F, KH, KW, stride, pad, dil, groups):
    OH, OW = _out(H, KH, stride[0], pad[0], dil[0]), _out(W, KW, stride[1], pad[1], dil[1])
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C // groups, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, OH, OW)).astype(dtype)
    return x, w, b, dy, (*stride, *pad, *dil, groups)


def _run_on_device(pair, x, w, b, dy, hyper):
    """pair.forward then pair.backward on device copies (outputs filled with NaN first), the
    same device x in both, as the functional layer calls them -> (y, dx, dw, db) on the host."""
    xd, wd, bd, dyd = (cuda.to_device(a) for a in (x, w, b, dy))
    y, dx, dw, db = (cuda.to_device(np.full(shape, np.nan, x.dtype))
                     for shape in (dy.shape, x.shape, w.shape, b.shape))
    pair.forward(xd, wd, bd, y, *hyper)
    pair.backward(dyd, xd, wd, dx, dw, db, *hyper)
    return tuple(a.copy_to_host() for a in (y, dx, dw, db))


def _run_on_cpu(x, w, b, dy, hyper):
    y, dx, dw, db = (np.full(shape, np.nan, x.dtype) for shape in (dy.shape, x.shape, w.shape, b.shape))
    KC.conv2d_forward_direct(x, w, b, y, *hyper)
    KC.conv2d_backward_direct(dy, x, w, dx, dw, db, *hyper)
    return y, dx, dw, db


@pytest.mark.parametrize("case", CONVS, ids=CONV_IDS)
def test_fast_conv_equals_the_cpu(rng, dtype, small_blocks, workspace, case):
    """The device's "fast" pair of the conv table, forward and backward on one device x (the
    backward reads the X_col its forward kept), against the CPU's direct kernels.  (The device's
    "im2col" and "direct" pairs are held to the CPU in tests/cuda/test_cuda_conv.py and by the
    GPU gradient checks.)"""
    x, w, b, dy, hyper = _conv_problem(rng, dtype, *case)
    cpu = _run_on_cpu(x, w, b, dy, hyper)
    fast = _run_on_device(dispatch.conv_cuda_table()["fast"], x, w, b, dy, hyper)
    for name, c, f in zip(("y", "dx", "dw", "db"), cpu, fast):
        assert f.dtype == dtype and f.shape == c.shape
        np.testing.assert_allclose(f, c, err_msg=name, **TOLERANCE[dtype])


def test_the_fast_backward_without_the_kept_columns_recomputes_them(rng, small_blocks, workspace):
    x, w, b, dy, hyper = _conv_problem(rng, np.float64, 1, 2, 4, 3, 2, 2, 2, (2, 1), (1, 0), (1, 1), 2)
    pair = dispatch.conv_cuda_table()["fast"]
    xd, wd, bd, dyd = (cuda.to_device(a) for a in (x, w, b, dy))
    y = cuda.device_array(dy.shape)
    pair.forward(xd, wd, bd, y, *hyper)
    grads = []
    for _ in range(2):             # the first backward reads (and hands back) the kept X_col
        dx, dw, db = cuda.device_array(x.shape), cuda.device_array(w.shape), cuda.device_array(b.shape)
        pair.backward(dyd, xd, wd, dx, dw, db, *hyper)
        grads.append([a.copy_to_host() for a in (dx, dw, db)])
        assert workspace.kept_arrays[id(xd)] == {}
    for first, second, expected in zip(*grads, _run_on_cpu(x, w, b, dy, hyper)[1:]):
        np.testing.assert_allclose(first, expected, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(second, first)


def test_the_public_ops_run_the_fast_form_on_the_device(rng, small_blocks, workspace):
    x, w, b, dy, _ = _conv_problem(rng, np.float64, 2, 2, 4, 4, 2, 3, 3, (1, 1), (1, 1), (1, 1), 1)
    y_cpu, cache_cpu = F.conv2d_forward(x, w, b, padding=1)
    grads_cpu = F.conv2d_backward(dy, cache_cpu)
    for method in ("fast", "auto"):
        y, cache = F.conv2d_forward(cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), padding=1,
                                    method=method)
        assert cache.method == "fast", ("conv2d_forward must resolve its method for the device: "
                                        "dispatch.conv_method(method, device) in nbconv/functional/conv.py")
        np.testing.assert_allclose(y.copy_to_host(), y_cpu, rtol=1e-10, atol=1e-10)
        for got, expected in zip(F.conv2d_backward(cuda.to_device(dy), cache), grads_cpu):
            np.testing.assert_allclose(got.copy_to_host(), expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- the workspace

def _forward(pair, x, w, hyper):
    """pair.forward on device arrays x, w (zero bias) -> y on the device."""
    y = cuda.device_array((x.shape[0], w.shape[0], *[_out(x.shape[2 + k], w.shape[2 + k], hyper[k], hyper[2 + k],
                                                          hyper[4 + k]) for k in range(2)]), x.dtype)
    pair.forward(x, w, cuda.to_device(np.zeros(w.shape[0], x.dtype)), y, *hyper)
    return y


def _backward(pair, x, w, y, hyper):
    """pair.backward with dy = 1 -> dx on the host."""
    dx, dw, db = cuda.device_array(x.shape, x.dtype), cuda.device_array(w.shape, x.dtype), \
        cuda.device_array(w.shape[0], x.dtype)
    pair.backward(cuda.to_device(np.ones(y.shape, x.dtype)), x, w, dx, dw, db, *hyper)
    return dx.copy_to_host()


def test_the_workspace_reuses_its_arrays_across_steps_of_one_shape(rng, small_blocks, workspace):
    pair = dispatch.conv_cuda_table()["fast"]
    hyper = (1, 1, 1, 1, 1, 1, 1)
    key = ("cols", 3, 3, *hyper)
    w = cuda.to_device(rng.standard_normal((2, 2, 3, 3)))
    steps = []
    for step in range(2):                       # two training steps of one shape
        x = cuda.to_device(rng.standard_normal((1, 2, 4, 4)))
        y = _forward(pair, x, w, hyper)
        cols = workspace.kept(x, key)
        assert cols is not None and cols.shape == (1, 18, 16)
        _backward(pair, x, w, y, hyper)
        assert workspace.kept(x, key) is None                      # handed back after the backward
        steps.append((cols, workspace.buffers[("y_rows", np.dtype(np.float64))],
                      workspace.buffers[("dy_rows", np.dtype(np.float64))]))
    assert all(a is b for a, b in zip(steps[1], steps[0])), "the second step allocated anew"
    assert ("cols", np.dtype(np.float64)) not in workspace.buffers      # X_col came from the forward


def test_the_workspace_grows_for_a_larger_shape_and_serves_smaller_ones(rng, small_blocks, workspace):
    pair = dispatch.conv_cuda_table()["fast"]
    hyper = (1, 1, 0, 0, 1, 1, 1)
    w = cuda.to_device(rng.standard_normal((2, 1, 2, 2)))
    role = ("y_rows", np.dtype(np.float64))
    _forward(pair, cuda.to_device(rng.standard_normal((1, 1, 3, 3))), w, hyper)
    first = workspace.buffers[role]
    _forward(pair, cuda.to_device(rng.standard_normal((2, 1, 5, 5))), w, hyper)     # a new, larger shape
    larger = workspace.buffers[role]
    assert larger is not first and larger.size >= 2 * 2 * 4 * 4
    _forward(pair, cuda.to_device(rng.standard_normal((1, 1, 4, 4))), w, hyper)     # smaller: no new buffer
    assert workspace.buffers[role] is larger


def test_columns_whose_backward_never_comes_are_handed_back_with_their_input(rng, small_blocks, workspace):
    pair = dispatch.conv_cuda_table()["fast"]
    hyper = (1, 1, 0, 0, 1, 1, 1)
    w = cuda.to_device(rng.standard_normal((1, 1, 2, 2)))
    x = cuda.to_device(rng.standard_normal((1, 1, 3, 3)))
    _forward(pair, x, w, hyper)                  # evaluation: no backward
    cols = workspace.kept(x, ("cols", 2, 2, *hyper))
    del x
    spare = workspace.spare[((1, 4, 4), np.dtype(np.float64))]
    assert workspace.kept_arrays == {} and len(spare) == 1 and spare[0] is cols
    x2 = cuda.to_device(rng.standard_normal((1, 1, 3, 3)))
    _forward(pair, x2, w, hyper)                 # the next forward of that shape takes it
    assert workspace.kept(x2, ("cols", 2, 2, *hyper)) is cols


def test_release_workspace_empties_the_device_workspace(rng, small_blocks, workspace):
    pair = dispatch.conv_cuda_table()["fast"]
    x = cuda.to_device(rng.standard_normal((1, 1, 3, 3)))
    _forward(pair, x, cuda.to_device(rng.standard_normal((1, 1, 2, 2))), (1, 1, 0, 0, 1, 1, 1))
    assert workspace.buffers and workspace.kept_arrays
    F.release_workspace()
    assert not workspace.buffers and not workspace.kept_arrays and not workspace.spare
