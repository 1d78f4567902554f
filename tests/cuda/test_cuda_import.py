"""The CUDA kernel package: one launcher per CPU kernel, same name and signature; the install hint."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

import pytest

FAMILIES = ["activation", "conv", "dropout", "im2col", "linear", "loss", "norm", "optim", "pool"]
# modules of nbconv.kernels that hold no op: scalar functions the CPU kernels call (vectorizable
# exp, log, tanh), which a GPU has in hardware
HELPERS = {"vecmath", "simd"}          # building blocks of the CPU kernels, not op families

# Extra launchers the GPU modules provide beyond the CPU kernels (documented in their modules).
GPU_ONLY = {"dropout": {"dropout_mask"},
            "im2col": {"rows_to_output", "output_to_rows", "row_sums"},
            "linear": {"linear_forward_gemm", "linear_backward_gemm"},
            "loss": {"device_mean"}}


def _naive_cpu_kernels(module):
    """The public @njit kernels of a CPU module, except the parallel (optimized) variants."""
    from numba.core.registry import CPUDispatcher
    found = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or not isinstance(obj, CPUDispatcher):
            continue
        if obj.targetoptions.get("parallel") or name.endswith(("_fast", "_parallel")):
            continue                       # an optimized variant beside a naive kernel
        found[name] = obj
    return found


def test_the_family_list_is_every_cpu_kernel_module():
    import nbconv.kernels as kernels
    modules = {m.name for m in pkgutil.iter_modules(kernels.__path__) if not m.ispkg}
    assert modules - HELPERS == set(FAMILIES)


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
@pytest.mark.parametrize("family", FAMILIES)
def test_every_cpu_kernel_has_a_launcher_with_the_same_signature(family):
    cpu = importlib.import_module(f"nbconv.kernels.{family}")
    gpu = importlib.import_module(f"nbconv.kernels.cuda.{family}")
    kernels = _naive_cpu_kernels(cpu)
    assert kernels, family
    for name, dispatcher in kernels.items():
        launcher = getattr(gpu, name, None)
        assert launcher is not None, f"nbconv.kernels.cuda.{family} has no {name}"
        assert inspect.isfunction(launcher), f"{family}.{name} must be a host-side launcher"
        assert inspect.signature(launcher) == inspect.signature(dispatcher.py_func), name
    public = {n for n, o in vars(gpu).items()
              if inspect.isfunction(o) and not n.startswith("_") and o.__module__ == gpu.__name__}
    assert public == set(kernels) | GPU_ONLY.get(family, set())


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None, reason="numba-cuda is not installed")
def test_cuda_modules_import_only_numba_math_numpy():
    allowed = {"numba", "math", "numpy"}
    for family in FAMILIES + ["_launch"]:
        module = importlib.import_module(f"nbconv.kernels.cuda.{family}")
        with open(module.__file__) as f:
            lines = [ln.split() for ln in f if ln.startswith(("import ", "from "))]
        for words in lines:
            top = words[1].split(".")[0]
            assert top in allowed or words[1].startswith("."), (family, " ".join(words))


def test_import_without_numba_cuda_names_the_extra():
    # numba_cuda blocked: importing the package must fail with the install hint
    code = ("import sys; sys.modules['numba_cuda'] = None\n"
            "try:\n"
            "    import nbconv.kernels.cuda\n"
            "except ImportError as e:\n"
            "    print('ERR', e)\n")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'ERR nbconv.kernels.cuda: the CUDA kernels need the numba-cuda package' in out.stdout
    assert 'pip install "nbconv[cuda]"' in out.stdout


def test_import_nbconv_does_not_import_numba_cuda():
    code = "import sys, nbconv, nbconv.functional; print('numba.cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
