"""nbconv.devices and the argument checks on device arrays."""

import os
import subprocess
import sys

import numpy as np
import pytest

import nbconv.functional as F
from nbconv import devices
from nbconv.functional._checks import as_dout, as_float_array, check_shape, same_dtype

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")


def _dev(a):
    from numba import cuda
    return cuda.to_device(a)


# ---------------------------------------------------------------- device_of and the kernel modules

def test_device_of():
    x = np.zeros(3)
    assert devices.device_of(x=x, w=x) == "cpu"
    assert devices.device_of() == "cpu"
    assert devices.device_of(x=_dev(x), w=_dev(x), b=None, dout=1.0) == "cuda"
    assert devices.device_of(x=x, dout=1.0, label=[1, 2]) == "cpu"        # non-arrays are left to the checks


def test_device_of_names_both_arguments_when_mixing():
    with pytest.raises(TypeError, match=r"^w is a numpy\.ndarray on the host \(cpu\) but x is a CUDA device array "
                                        r"\(cuda\); the arrays of one call must be on the same device: move them "
                                        r"with numba\.cuda\.to_device\(a\) or d\.copy_to_host\(\)"):
        devices.device_of(x=_dev(np.zeros(2)), w=np.zeros(2))


def test_allocation_and_moving_helpers():
    for device in ("cpu", "cuda"):
        z = devices.zeros((2, 3), np.float32, device)
        f = devices.full(4, 2.5, np.float64, device)
        e = devices.empty((0, 2), np.float64, device)
        assert devices.array_device(z) == device and devices.array_device(f) == device
        np.testing.assert_array_equal(devices.to_host(z), np.zeros((2, 3), np.float32))
        assert devices.to_host(z).dtype == np.float32
        np.testing.assert_array_equal(devices.to_host(f), np.full(4, 2.5))
        assert e.shape == (0, 2)
    d = devices.to_device(np.arange(6.0).reshape(2, 3).T, "cuda")          # a transposed host array
    assert devices.is_device_array(d)
    np.testing.assert_array_equal(d.copy_to_host(), np.arange(6.0).reshape(2, 3).T)
    assert devices.to_device(d, "cuda") is d
    back = devices.to_device(d, "cpu")
    assert isinstance(back, np.ndarray)
    c = devices.copy(d)
    devices.assign(d, 0.0)
    np.testing.assert_array_equal(c.copy_to_host(), back)                  # the copy is its own memory
    np.testing.assert_array_equal(d.copy_to_host(), np.zeros((3, 2)))
    devices.assign(d, back)                                                 # host -> device
    np.testing.assert_array_equal(d.copy_to_host(), back)
    f32 = devices.zeros((3, 2), np.float32, "cuda")
    devices.assign(f32, d)                                                  # device -> device, converted
    np.testing.assert_array_equal(f32.copy_to_host(), back.astype(np.float32))
    with pytest.raises(ValueError, match=r"cannot copy an array of shape \(2, 3\) into one of shape \(3, 2\)"):
        devices.assign(d, np.zeros((2, 3)))
    host = np.zeros(3)
    devices.assign(host, _dev(np.ones(3)))                                  # device -> host
    np.testing.assert_array_equal(host, np.ones(3))
    s = devices.add(_dev(np.ones(4)), _dev(np.arange(4.0)))
    np.testing.assert_array_equal(s.copy_to_host(), np.arange(4.0) + 1)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'gpu'"):
        devices.to_device(host, "gpu")


# ---------------------------------------------------------------- the checks on device arrays

def test_as_float_array_on_device_arrays():
    x = _dev(np.zeros((2, 3), np.float32))
    assert as_float_array("x", x, ndim=2) is x
    with pytest.raises(TypeError, match="^x has dtype int64; supported dtypes are float32 or float64$"):
        as_float_array("x", _dev(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match=r"^x must be 3-D or 4-D, got a 2-D array of shape \(2, 3\)$"):
        as_float_array("x", x, ndim=(3, 4))
    with pytest.raises(ValueError, match=r"^w is a non-contiguous CUDA device array \(shape \(2, 2\), strides "
                                         r"\(12, 4\)\); the CUDA kernels need C-contiguous memory"):
        as_float_array("w", x[:, 1:])
    zero_d = _dev(np.asarray(1.5))
    assert as_float_array("x", zero_d).shape == ()


def test_same_dtype_check_shape_and_as_dout_on_device_arrays():
    x64, x32 = _dev(np.zeros((2, 3))), _dev(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match="^w has dtype float32 but x has dtype float64; mixing dtypes is not supported"):
        same_dtype("x", x64, w=x32)
    with pytest.raises(ValueError, match=r"^b must have shape \(3,\), got \(2, 3\)$"):
        check_shape("b", x64, (3,))
    assert as_dout(x64, (2, 3), np.float64) is x64
    with pytest.raises(ValueError, match=r"^dout must have shape \(3, 2\), got \(2, 3\)$"):
        as_dout(x64, (3, 2), np.float64)
    with pytest.raises(TypeError, match="^dout has dtype float32 but the forward output has dtype float64$"):
        as_dout(x32, (2, 3), np.float64)
    g = as_dout(_dev(np.asarray(2.0)), (), np.float64)     # the gradient of a loss: stays on the device
    assert devices.is_device_array(g) and float(g.copy_to_host()) == 2.0


def test_ops_refuse_non_contiguous_device_arrays():
    x = _dev(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="x is a non-contiguous CUDA device array"):
        F.relu_forward(x[:, ::2])


# ---------------------------------------------------------------- __cuda_array_interface__ objects

class _Interface:
    """Stands for a CuPy or PyTorch array: only __cuda_array_interface__ (here: a numba device array)."""

    def __init__(self, device_array):
        self.device_array = device_array
        self.__cuda_array_interface__ = {"shape": device_array.shape}


def test_objects_with_the_cuda_array_interface_are_wrapped(monkeypatch):
    from numba import cuda
    wrapped = _Interface(_dev(np.array([-1.0, 2.0])))
    assert devices.is_device_array(wrapped) and devices.device_of(x=wrapped) == "cuda"
    monkeypatch.setattr(cuda, "as_cuda_array", lambda obj: obj.device_array, raising=False)
    y, cache = F.relu_forward(wrapped)
    assert devices.is_device_array(y) and cache.x is wrapped.device_array
    np.testing.assert_array_equal(y.copy_to_host(), [0.0, 2.0])


def test_the_simulator_cannot_wrap_foreign_device_memory():
    if not devices.simulator():
        pytest.skip("a real GPU wraps __cuda_array_interface__ objects")
    with pytest.raises(TypeError, match="an object with __cuda_array_interface__\\) under Numba's CUDA simulator"):
        F.relu_forward(_Interface(_dev(np.zeros(2))))


def test_the_elementwise_kernels_against_numpy(rng):
    import nbconv.kernels.cuda.elementwise as E
    a, b = rng.standard_normal(7), rng.standard_normal(7)
    out = _dev(np.full(7, np.nan))
    E.add(_dev(a), _dev(b), out)
    np.testing.assert_array_equal(out.copy_to_host(), a + b)
    E.scale(_dev(a), -2.5, out)
    np.testing.assert_array_equal(out.copy_to_host(), -2.5 * a)
    E.fill(out, 3)
    np.testing.assert_array_equal(out.copy_to_host(), np.full(7, 3.0))
    ints = _dev(np.zeros(7, np.int64))
    E.copy(_dev(np.arange(7, dtype=np.uint8)), ints)                     # with a dtype conversion
    np.testing.assert_array_equal(ints.copy_to_host(), np.arange(7))
    count = _dev(np.zeros(1, np.int64))
    E.count_outside(_dev(np.array([0.5, -0.1, 1.0, 1.2, np.nan, 0.0])), 0.0, 1.0, count)
    assert count.copy_to_host()[0] == 2                                 # NaN is not counted
    E.add(_dev(np.zeros(0)), _dev(np.zeros(0)), _dev(np.zeros(0)))       # empty: no launch


def test_the_gpu_only_kernel_modules_import_only_numba_math_numpy():
    import importlib
    for family in ("elementwise", "optim"):
        module = importlib.import_module(f"nbconv.kernels.cuda.{family}")
        with open(module.__file__) as f:
            lines = [ln.split() for ln in f if ln.startswith(("import ", "from "))]
        for words in lines:
            assert words[1].split(".")[0] in {"numba", "math", "numpy"} or words[1].startswith("."), words


# ---------------------------------------------------------------- without numba-cuda, and import cost

def _run(code):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd="/", timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_device_array_without_numba_cuda_names_the_extra():
    out = _run("import sys; sys.modules['numba_cuda'] = None\n"
               "import nbconv.functional as F\n"
               "class Fake:\n"
               "    __cuda_ndarray__ = True\n"
               "try:\n"
               "    F.relu_forward(Fake())\n"
               "except ImportError as e:\n"
               "    print('ERR', e)\n")
    assert ('ERR CUDA arrays need the numba-cuda package (and, on a real GPU, the CUDA toolkit wheels): '
            'pip install "nbconv[cuda]"') in out


def test_the_cpu_paths_do_not_import_numba_cuda():
    out = _run("import sys, numpy as np\n"
               "import nbconv.functional as F, nbconv.optim as O, nbconv.checkpoint\n"
               "from nbconv.layers import Linear, Sequential, ReLU\n"
               "m = Sequential(Linear(3, 2, seed=0), ReLU())\n"
               "y = m.forward(np.ones((4, 3), np.float32)); m.backward(np.ones_like(y))\n"
               "opt = O.Adam(m.parameters()); opt.step(); opt.zero_grad(); m.to('cpu')\n"
               "F.softmax_forward(np.ones((2, 3)), axis=0); F.dropout_forward(np.ones(3), seed=1)\n"
               "F.cross_entropy_forward(np.ones((2, 3)), np.array([0, 1]))\n"
               "print('numba.cuda' in sys.modules)\n")
    assert out.strip() == "False"
