"""Every CUDA kernel compiled by the real compiler, for real GPUs, without one (docs/gpu.md).

The other tests of tests/cuda run the kernels in Numba's CUDA simulator, which executes them as
Python and so accepts code that the CUDA compiler refuses.  Here every ``@cuda.jit`` kernel of
nbconv.kernels.cuda, for every argument-type signature of nbconv.kernels.cuda._ptx.SIGNATURES,
goes through numba-cuda's compiler to PTX for sm_75 and sm_90: two child processes with
NUMBA_ENABLE_CUDASIM=0 (this process's numba.cuda is the simulator), one per compute
capability, started when the module's first test begins and run beside the simulator-side
checks.  It needs the CUDA compiler wheels of the dev extra, not a GPU or a driver.

The table is checked against the code in both directions: every kernel of the package is in
it with its number of parameters, and every launch that the functional ops (the GPU gradient
check cases) and the optimizers make on float32 arrays under the simulator has its signature
in it.  A control kernel shows that a kernel the simulator runs but the compiler
refuses is reported as a failure.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba_cuda", reason="the CUDA kernels need numba-cuda (pip install -e '.[dev]')")

from numba import cuda  # noqa: E402  (the simulator here, tests/cuda/conftest.py)
from numba.core import types  # noqa: E402

import nbconv.kernels.cuda as cuda_package  # noqa: E402
from nbconv.kernels.cuda import _ptx  # noqa: E402

CHILD_TIMEOUT = 400          # seconds; the two children take ~30 s each on one free core


# ---------------------------------------------------------------- the control kernels

@cuda.jit
def _fsum_kernel(x):
    """x[i] = math.fsum((x[i], 1.0)): Python runs math.fsum, the simulator with it; CUDA has none"""
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = math.fsum((x[i], 1.0))


@cuda.jit
def _add_one_kernel(x):
    """x[i] = x[i] + 1"""
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = x[i] + 1.0


@cuda.jit
def _scale_kernel(x, alpha):
    """x[i] = alpha * x[i], alpha a Python float: a float32 x is multiplied in float64"""
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = alpha * x[i]


CONTROL_TABLE = [(_fsum_kernel, "D1"), (_add_one_kernel, "D1"), (_scale_kernel, "D1 f")]

# float64 kernels whose PTX rounds a double to float32 (cvt.rn.f32.f64) for an inherent reason
INHERENT_F32_IN_FLOAT64 = {
    # libdevice's tanh (__nv_tanh) rounds 2|x| to float32 to find the power of 2 of its exp
    # (cvt.rn.f32.f64, cvt.rni.f32.f32, ex2.approx.f32), then computes in float64
    "activation._tanh_forward_kernel",
}

# the control child: this file imported by path (the kernels above, compiled for real), the
# control table compiled for sm_75
_CONTROL_CHILD = """
import dataclasses, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("ptx_controls", sys.argv[1])
controls = importlib.util.module_from_spec(spec)
spec.loader.exec_module(controls)
problem = controls._ptx.toolkit_problem((7, 5))
results = [] if problem else controls._ptx.compile_all((7, 5), table=controls.CONTROL_TABLE)
print(json.dumps({"toolkit": problem, "results": [dataclasses.asdict(r) for r in results]}))
"""


# ---------------------------------------------------------------- the children

class _Children:
    """The child processes, started together; ``result(key)`` waits for one and parses its JSON.
    Their output goes to temporary files, so a long report never blocks a child on a full pipe."""

    def __init__(self):
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
        commands = {f"{major}.{minor}": ["-m", "nbconv.kernels.cuda._ptx", "--json", "--cc", f"{major}.{minor}"]
                    for major, minor in _ptx.CCS}
        commands["control"] = ["-c", _CONTROL_CHILD, str(Path(__file__).resolve())]
        self.procs, self.outputs = {}, {}
        for key, arguments in commands.items():
            out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            self.procs[key] = (subprocess.Popen([sys.executable, *arguments], stdout=out, stderr=err, env=env),
                               out, err)

    def result(self, key):
        if key not in self.outputs:
            proc, out, err = self.procs[key]
            try:
                proc.wait(timeout=CHILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"compiling for {key} took more than {CHILD_TIMEOUT} s:\n{_read(err)[-3000:]}")
            stdout = _read(out)
            try:
                self.outputs[key] = json.loads(stdout.strip().splitlines()[-1])
            except (json.JSONDecodeError, IndexError):
                pytest.fail(f"the compiling child for {key} printed no JSON (exit status {proc.returncode}):\n"
                            f"{stdout[-2000:]}\n{_read(err)[-3000:]}")
        return self.outputs[key]

    def close(self):
        for proc, out, err in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            out.close()
            err.close()


def _read(file) -> str:
    file.seek(0)
    return file.read()


@pytest.fixture(scope="module")
def children():
    started = _Children()
    yield started
    started.close()


@pytest.fixture(scope="module", autouse=True)
def _start_compiling_first(children):
    """The children start before this module's first test, so the checks below overlap them."""


# ---------------------------------------------------------------- the table against the code

def test_the_table_lists_every_kernel_with_its_number_of_parameters():
    names = {m.name for m in pkgutil.iter_modules(cuda_package.__path__)} - {"_launch", "_ptx"}
    assert names == {m.__name__.rsplit(".", 1)[-1] for m in _ptx.MODULES}, \
        "a module of nbconv.kernels.cuda is missing from _ptx.MODULES (or MODULES names one that is gone)"
    listed = [kernel for kernel, *_ in _ptx.SIGNATURES]
    missing = [f"{m.__name__}.{k.py_func.__name__}" for m in _ptx.MODULES for k in _ptx.kernels_of(m)
               if not any(k is other for other in listed)]
    assert not missing, f"kernels with no signature in nbconv.kernels.cuda._ptx.SIGNATURES: {missing}"
    wrong = []
    for kernel, *codes_list in _ptx.SIGNATURES:
        parameters = len(inspect.signature(kernel.py_func).parameters)
        wrong += [f"{kernel.py_func.__name__}: {codes!r} has {len(codes.split())} types for {parameters} "
                  f"parameters" for codes in codes_list if len(codes.split()) != parameters]
    assert not wrong, wrong
    assert len(_ptx.signatures()) >= 2 * len(listed) - 4      # float32 and float64 of nearly every kernel


def _numba_type(value):
    """The Numba type the real dispatcher would give a launch argument (a simulator device array
    is typed like the device array it stands for)."""
    from numba import typeof
    from numba.np.numpy_support import from_dtype
    if hasattr(value, "ndim") and hasattr(value, "is_c_contiguous") and not np.isscalar(value):
        layout = "C" if value.is_c_contiguous() else ("F" if value.is_f_contiguous() else "A")
        return types.Array(from_dtype(value.dtype), value.ndim, layout)
    return typeof(value)


def _run_every_op_and_optimizer(dtype):
    """Forward and backward of every GPU gradient-check case and a step of every optimizer, on
    tiny device arrays of ``dtype``."""
    import nbconv.optim as O
    from nbconv import devices
    from nbconv.gradcheck.device_cases import cuda_cases
    from nbconv.layers.base import Parameter

    rng = np.random.default_rng(0)
    with devices.tuned_cuda_run():
        for case in cuda_cases():
            inputs = [cuda.to_device(v.astype(dtype) if v.dtype.kind == "f" else v)
                      if isinstance(v, np.ndarray) else v for v in case.make_inputs(rng)]
            out, cache = case.forward(*inputs)
            dout = 0.5 if np.ndim(out) == 0 else cuda.to_device(np.ones(np.shape(out), dtype))
            case.backward(dout, cache)
        for make in (lambda p: O.SGD(p, lr=0.1, weight_decay=0.01),
                     lambda p: O.SGD(p, lr=0.1, momentum=0.9),
                     lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                     lambda p: O.Adagrad(p), lambda p: O.RMSprop(p), lambda p: O.Adam(p)):
            param = Parameter(cuda.to_device(np.ones(3, dtype)), cuda.to_device(np.ones(3, dtype)))
            make([param]).step()


def test_the_table_holds_every_signature_the_ops_launch(monkeypatch):
    """Recorded in float32 only: there the data's dtype (D, d) differs from the float64 of the
    statistics and the Python floats (F, f), so a launch with a type the table does not give
    that role shows; the float64 launches are the same signatures with D = float64 (and run in
    about 5 s more)."""
    from nbconv import devices
    if not devices.simulator():
        pytest.skip("the launches are recorded in Numba's CUDA simulator")
    from numba.cuda.simulator.kernel import FakeCUDAKernel

    launched = set()
    run_kernel = FakeCUDAKernel.__call__

    def recording(kernel, *args):
        if not kernel._device:
            launched.add((kernel.py_func, tuple(_numba_type(a) for a in args)))
        return run_kernel(kernel, *args)

    monkeypatch.setattr(FakeCUDAKernel, "__call__", recording)
    _run_every_op_and_optimizer(np.float32)

    listed = {(s.kernel.py_func, s.argtypes) for s in _ptx.signatures()}
    unlisted = sorted(f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}: {_ptx.codes_of(argtypes)!r}"
                      for func, argtypes in launched - listed)
    assert not unlisted, ("launched with signatures that nbconv.kernels.cuda._ptx.SIGNATURES lacks (S and F "
                          "are float32 and float64: write D where it is the data's dtype):\n" + "\n".join(unlisted))
    assert len(launched) > 70          # (80 today: the check saw the launches)


# ---------------------------------------------------------------- the compiler

def _fail_without_the_compiler(output):
    if output["toolkit"]:
        pytest.fail(f"the CUDA compiler is not usable, so the kernels cannot be checked for real GPUs: "
                    f"{output['toolkit']}", pytrace=False)


@pytest.mark.parametrize("cc", [f"{major}.{minor}" for major, minor in _ptx.CCS])
def test_every_kernel_compiles_to_ptx(children, cc):
    output = children.result(cc)
    _fail_without_the_compiler(output)
    results = output["results"]
    expected = [(s.name, s.codes, s.dtype) for s in _ptx.signatures()]
    assert [(r["kernel"], r["codes"], r["dtype"]) for r in results] == expected
    failed = [f"{r['kernel']} (D = {r['dtype']}: {r['codes']}): {r['error']}" for r in results if not r["ok"]]
    assert not failed, f"{len(failed)} of {len(results)} signatures do not compile for sm_{cc.replace('.', '')}:\n" + \
        "\n".join(failed)


@pytest.mark.parametrize("cc", [f"{major}.{minor}" for major, minor in _ptx.CCS])
def test_float32_kernels_compute_in_float32(children, cc):
    """No float64 instruction in the PTX of a float32 signature.  Why: T4-class GPUs (cc 7.5) run
    float64 at 1/32 of the float32 rate, and a Python-float scalar, a bare literal such as 1.0 or
    a float64 accumulator silently turns a float32 kernel's arithmetic into float64, which the
    simulator cannot see.  The table's signatures are the launches' own (the test above), scalars
    as the launchers pass them."""
    output = children.result(cc)
    _fail_without_the_compiler(output)
    found = [f"{r['kernel']} ({r['codes']}): {r['f64_ops']} float64 instructions"
             for r in output["results"] if r["ok"] and r["dtype"] == "float32" and r["f64_ops"]]
    assert not found, "float64 arithmetic in float32 kernels:\n" + "\n".join(found)
    assert sum(r["dtype"] == "float32" for r in output["results"]) > 80


@pytest.mark.parametrize("cc", [f"{major}.{minor}" for major, minor in _ptx.CCS])
def test_float64_kernels_stay_float64(children, cc):
    """No float64 value of a float64 signature is rounded to float32 on the way (a float32
    scalar or literal would be), except the inherent rounding of libdevice's tanh."""
    output = children.result(cc)
    _fail_without_the_compiler(output)
    found = [f"{r['kernel']} ({r['codes']}): {r['f32_rounds']} roundings" for r in output["results"]
             if r["ok"] and r["dtype"] == "float64" and r["f32_rounds"] and r["kernel"] not in INHERENT_F32_IN_FLOAT64]
    assert not found, "float64 kernels rounding to float32:\n" + "\n".join(found)


def test_a_kernel_the_simulator_runs_but_the_compiler_refuses_is_reported(children):
    from nbconv import devices
    if devices.simulator():                                    # Python's math.fsum, in the simulator
        x = cuda.to_device(np.zeros(3))
        _fsum_kernel[1, 3](x)
        np.testing.assert_array_equal(x.copy_to_host(), np.ones(3))
    output = children.result("control")
    _fail_without_the_compiler(output)
    results = output["results"]
    by_kernel = {(r["kernel"], r["dtype"]): r for r in results}
    assert len(results) == 6
    for dtype in _ptx.DTYPES:
        refused = by_kernel[("ptx_controls._fsum_kernel", dtype)]
        assert not refused["ok"] and "TypingError" in refused["error"] and "fsum" in refused["error"]
        assert by_kernel[("ptx_controls._add_one_kernel", dtype)]["ok"]
    # the float64 check sees a Python-float scalar in a float32 kernel, and nothing in float64
    assert by_kernel[("ptx_controls._add_one_kernel", "float32")]["f64_ops"] == 0
    assert by_kernel[("ptx_controls._scale_kernel", "float32")]["f64_ops"] >= 2     # cvt up, mul.f64
    assert by_kernel[("ptx_controls._scale_kernel", "float32")]["f32_rounds"] >= 1  # and back down
    assert by_kernel[("ptx_controls._scale_kernel", "float64")]["f32_rounds"] == 0
