"""float32 kernels compute in float32: the compiled code of nbconv.kernels.cuda's activation,
elementwise, dropout and optim kernels holds no double-precision instruction.

Why: T4-class GPUs (compute capability 7.5) run float64 at 1/32 of the float32 rate.  A Python
float argument (a slope, lr, dropout's scale), a bare literal such as 1.0, or a float64
accumulator silently turns a float32 kernel's arithmetic into float64.  The simulator cannot see
this (it runs the kernels as Python), so this test reads the PTX that the real compiler makes.

How: a subprocess with NUMBA_ENABLE_CUDASIM=0 (the real compiler; it needs NVVM, not a GPU)
calls every launcher the way the functional layer does: NumPy arrays stand in for the device
arrays (Numba gives a C-contiguous array of one dtype and rank the same type either way), and
the hyperparameters are Python floats.  Every kernel launch is recorded instead of run, then
compiled with numba.cuda.compile_ptx for compute capability 7.5.
"""

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

pytest.importorskip("numba_cuda", reason="the CUDA kernels need numba-cuda (pip install -e '.[dev]')")

# float64 kernels whose PTX rounds a double to float32 (cvt.rn.f32.f64) for an inherent reason
INHERENT_F32_IN_FLOAT64 = {
    # libdevice's tanh (__nv_tanh) rounds 2|x| to float32 to find the power of 2 of its exp
    # (cvt.rn.f32.f64, cvt.rni.f32.f32, ex2.approx.f32), then computes in float64
    "_tanh_forward_kernel",
}

_SCRIPT = r'''
import json, sys
import numpy as np
import numba
from numba import cuda
from numba.cuda.cudadrv import nvvm

if not nvvm.is_available():
    print(json.dumps({"nvvm": False}))
    sys.exit(0)

from nbconv.kernels.cuda import activation as A, elementwise as E, dropout as D, optim as O

MODULES = {"activation": A, "elementwise": E, "dropout": D, "optim": O}
launches = []


class Recorded:
    """Stands for a kernel: kernel[blocks, threads](*args) records (kernel, args), runs nothing."""

    def __init__(self, kernel):
        self.kernel = kernel

    def __getitem__(self, config):
        return lambda *args: launches.append((self.kernel, args))


kernel_names = []
for module in MODULES.values():
    for name, value in list(vars(module).items()):
        if name.startswith("_") and name.endswith("_kernel"):
            kernel_names.append(name)
            setattr(module, name, Recorded(value))


def launch_all(dtype):
    """Every launcher, called with the argument types the functional layer and the optimizers pass."""
    def a(*shape, dt=dtype):
        return np.zeros(shape, dt)
    x, y, dx, w, dw = a(8), a(8), a(8), a(3), a(3)
    x3 = a(2, 3, 4)
    A.relu_forward(x, y)
    A.relu_backward(x, x, dx)
    A.leaky_relu_forward(x, y, 0.01)
    A.leaky_relu_backward(x, x, dx, 0.01)
    A.elu_forward(x, y, 1.0)
    A.elu_backward(x, x, dx, 1.0)
    A.sigmoid_forward(x, y)
    A.sigmoid_backward(x, y, dx)
    A.tanh_forward(x, y)
    A.tanh_backward(x, y, dx)
    A.prelu_forward(x3, w, a(2, 3, 4))
    A.prelu_backward(x3, x3, w, a(2, 3, 4), dw)
    A.maxout_forward(a(2, 6, 4), a(2, 3, 4), a(2, 3, 4, dt=np.int64), 2)
    A.maxout_backward(a(2, 3, 4), a(2, 3, 4, dt=np.int64), a(2, 6, 4), 2)
    E.add(x, x, y)
    E.copy(x, y)
    E.fill(y, 0)                          # devices.zeros
    E.fill(y, 0.5)                        # devices.assign of a Python float
    E.scale(x, 1.0 / 0.7, y)              # dropout's inference scale
    E.count_outside(x, 0.0, 1.0, a(1, dt=np.int64))     # bce's check of p
    keep = a(8, dt=np.bool_)
    D.dropout_mask(keep, 0.3, 5)
    D.dropout_forward(x, np.uint64(5), 2**52, 1.0 / 0.7, keep, y)
    D.dropout_backward(x, keep, 1.0 / 0.7, dx)
    O.sgd_step(x, x, 0.05, 0.01)
    O.momentum_step(x, x, a(8), 0.05, 0.9, 0.01)
    O.nesterov_step(x, x, a(8), 0.05, 0.9, 0.01)
    O.adagrad_step(x, x, a(8), 0.05, 1e-8, 0.01)
    O.rmsprop_step(x, x, a(8), 0.05, 0.9, 1e-8, 0.01)
    O.adam_step(x, x, a(8), a(8), 0.05, 0.9, 0.999, 1e-8, 3, 0.01)


def ptx_of(pyfunc, args):
    """The PTX lines (comments left out) of pyfunc compiled as a kernel for args' types, cc 7.5."""
    sig = tuple(numba.typeof(v) for v in args)
    ptx, _ = cuda.compile_ptx(pyfunc, sig, cc=(7, 5))
    return [line.strip() for line in ptx.splitlines() if line.strip() and not line.strip().startswith("//")]


def control(x, y, alpha):
    """A float32 kernel with a float64 scalar: the checks must see its mul.f64."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        y[i] = alpha * x[i]


out = {"nvvm": True, "kernel_names": kernel_names, "launches": {}}
for dtype in ("float32", "float64"):
    launches.clear()
    launch_all(np.dtype(dtype))
    out["launches"][dtype] = [[k.__name__, ptx_of(k.py_func, args)] for k, args in launches]
out["control"] = ptx_of(control, (np.zeros(4, np.float32), np.zeros(4, np.float32), 2.5))
print(json.dumps(out))
'''


@pytest.fixture(autouse=True)
def _need_a_device():
    """Overrides tests/cuda/conftest.py's: this module compiles in a subprocess of its own and
    needs no GPU, under the simulator or not."""


@pytest.fixture(scope="module")
def compiled():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, cwd="/",
                         timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if not result["nvvm"]:
        pytest.skip("compiling to PTX needs NVVM: pip install nvidia-cuda-nvcc-cu12 (or nbconv[cuda])")
    return result


def _double_precision(lines):
    """The PTX lines that name a float64 register, parameter or instruction (.f64)."""
    return [line for line in lines if ".f64" in line]


def _summary(lines):
    """'mul.f64 x2, cvt.f64.f32 x1, ...': the opcodes of PTX lines (declarations by their first two words)."""
    counts = Counter(" ".join(line.split()[:2]) if line.startswith(".") else line.split()[0] for line in lines)
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))


def test_the_check_sees_a_float64_scalar_in_a_float32_kernel(compiled):
    # the negative control: y[i] = alpha * x[i] with a Python-float alpha multiplies in float64
    lines = _double_precision(compiled["control"])
    assert any(line.startswith("mul.f64") for line in lines), lines
    assert any(line.startswith("cvt.rn.f32.f64") for line in lines), lines


def test_every_kernel_of_the_four_modules_is_compiled(compiled):
    for dtype, launches in compiled["launches"].items():
        assert sorted({name for name, _ in launches}) == sorted(compiled["kernel_names"]), dtype
    assert len(compiled["kernel_names"]) >= 29          # the kernels' names were found (_<name>_kernel)


def test_float32_kernels_have_no_double_precision_instruction(compiled):
    found = {f"launch {k}, {name}": _double_precision(lines)
             for k, (name, lines) in enumerate(compiled["launches"]["float32"])}
    found = {name: lines for name, lines in found.items() if lines}
    assert not found, "float64 in float32 kernels:\n" + "\n".join(
        f"  {name}: {_summary(lines)}" for name, lines in found.items())


def test_float64_kernels_stay_float64(compiled):
    # no scalar reaches a float64 kernel as float32, and no value is rounded to float32 on the
    # way (the casts follow the array's dtype; the simulator tests check the float64 numbers)
    for name, lines in compiled["launches"]["float64"]:
        assert not [line for line in lines if line.startswith(".param .f32")], name
        if name not in INHERENT_F32_IN_FLOAT64:
            assert not [line for line in lines if line.startswith("cvt.rn.f32.f64")], name
        assert _double_precision(lines) or name == "_dropout_mask_kernel", name     # the mask: integers
