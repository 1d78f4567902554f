"""Compile every CUDA kernel to PTX with the real compiler, for real GPUs, without one.

Numba's CUDA simulator (what the tests run without a GPU) executes a kernel as Python: it
accepts code that the CUDA compiler refuses (a Python feature with no device lowering, a type
that does not unify, a call the device cannot make).  This module hands every ``@cuda.jit``
kernel of nbconv.kernels.cuda, for every argument-type signature nbconv launches it with, to
numba-cuda's compiler (``numba.cuda.compile_ptx``: Numba's typing and lowering, then NVIDIA's
NVVM to PTX) for the compute capabilities in CCS, and reports which compiled.  That needs the
CUDA compiler wheels (nvidia-cuda-nvcc-cu12, nvidia-cuda-nvrtc-cu12) but neither a GPU nor a
driver, and the real numba.cuda, so NUMBA_ENABLE_CUDASIM must be 0 (unset):

    NUMBA_ENABLE_CUDASIM=0 python -m nbconv.kernels.cuda._ptx              # sm_75 and sm_90
    NUMBA_ENABLE_CUDASIM=0 python -m nbconv.kernels.cuda._ptx --cc 9.0 --sass

prints one row per kernel, dtype and compute capability, with the number of float64 instructions
in its PTX (arithmetic, compares and conversions: a float32 kernel with many computes in
float64, at 1/32 of the float32 rate on a T4-class GPU); ``--sass`` also assembles each PTX
with ``ptxas`` (the CUDA toolkit's assembler, the step the driver runs when it loads the PTX)
and adds its registers per thread, spilled bytes and shared memory; ``--json`` prints the
results as JSON (what tests/cuda/test_ptx.py reads).  The exit status is 1 when a signature
failed to compile, 2 when the compiler cannot run here.

The signatures.  SIGNATURES below lists, per kernel, the argument types of each way nbconv
launches it, written with the codes of ARRAYS and SCALARS: "D3" is a C-contiguous 3-D array of
the data's dtype D, "F1" a 1-D float64 array, "i" an int64
(a Python int), "f" a float64 (a Python float), ...  A signature with a D is compiled once per
dtype of DTYPES (float32 and float64), one without a D once.  tests/cuda/test_ptx.py checks the
table against the code: every kernel of nbconv.kernels.cuda is in it with its number of
parameters, and every launch the functional ops and optimizers make under the simulator has
its signature here.  A device function (``@cuda.jit(device=True)``) is compiled inside the
kernels that call it (see DEVICE_FUNCTION_HINT for the form that can be compiled without a
driver).  docs/gpu.md explains what this checks and what it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass

from numba.core import types

from . import activation, conv, dropout, elementwise, gemm, im2col, linear, loss, norm, optim, pool, reduce
from . import workspace

CCS = ((7, 5), (9, 0))              # Turing (T4, the common cloud GPU) and Hopper (H100, H200)
DTYPES = ("float32", "float64")     # what D stands for

# the codes of the signature strings: upper case an array (C-contiguous, the digit is its number
# of dimensions), lower case a scalar; D and d are the data's dtype
ARRAYS = {"D": None, "F": types.float64, "S": types.float32, "I": types.int64, "U": types.uint8,
          "B": types.boolean}
SCALARS = {"d": None, "f": types.float64, "s": types.float32, "i": types.int64, "u": types.uint64,
           "b": types.boolean}

MODULES = (activation, conv, dropout, elementwise, gemm, im2col, linear, loss, norm, optim, pool, reduce,
           workspace)   # reduce: device functions only; workspace: no kernel

# (kernel, its signatures): the argument types of each way the launchers call it, in the order
# of the kernel's parameters
SIGNATURES = [
    # activation: flat x (L,), or the (N, C, S) view for prelu and maxout; maxout's argmax int64
    (activation._relu_forward_kernel, "D1 D1"),
    (activation._relu_backward_kernel, "D1 D1 D1"),
    (activation._leaky_relu_forward_kernel, "D1 D1 d"),
    (activation._leaky_relu_backward_kernel, "D1 D1 D1 d"),
    (activation._elu_forward_kernel, "D1 D1 d"),
    (activation._elu_backward_kernel, "D1 D1 D1 d"),
    (activation._sigmoid_forward_kernel, "D1 D1"),
    (activation._sigmoid_backward_kernel, "D1 D1 D1"),
    (activation._tanh_forward_kernel, "D1 D1"),
    (activation._tanh_backward_kernel, "D1 D1 D1"),
    (activation._prelu_forward_kernel, "D3 D1 D3"),
    (activation._prelu_backward_dx_kernel, "D3 D3 D1 D3"),
    (activation._prelu_backward_dw_kernel, "D3 D3 D1"),
    (activation._maxout_forward_kernel, "D3 D3 I3 i"),
    (activation._maxout_backward_kernel, "D3 I3 D3 i"),
    # conv: x, w, (b,) y or their gradients, then stride, padding, dilation (h, w) and groups
    (conv._conv2d_forward_direct_kernel, "D4 D4 D1 D4 i i i i i i i"),
    (conv._conv2d_backward_db_kernel, "D4 D1"),
    (conv._conv2d_backward_dw_kernel, "D4 D4 D4 i i i i i i i"),
    (conv._conv2d_backward_dx_kernel, "D4 D4 D4 i i i i i i i"),
    # dropout: the seed as uint64, the threshold ceil(p 2^53) as int64, keep a bool array
    (dropout._dropout_mask_kernel, "u i B1"),
    (dropout._dropout_forward_kernel, "D1 u i d B1 D1"),
    (dropout._dropout_backward_kernel, "D1 B1 d D1"),
    # elementwise: copy also converts (integer class targets to int64, float to float); the
    # scalars come in the array's dtype; count_outside counts into an int64 counter
    (elementwise._add_kernel, "D1 D1 D1"),
    (elementwise._copy_kernel, "D1 D1", "F1 S1", "S1 F1", "U1 I1"),
    (elementwise._fill_kernel, "D1 d", "I1 i"),
    (elementwise._scale_kernel, "D1 d D1"),
    (elementwise._count_outside_kernel, "D1 d d I1", "I1 i i I1", "U1 i i I1"),
    # gemm: out[g] = A[g] @ B[g], a, b, out (G, ., .) of one dtype, then trans_a, trans_b
    (gemm._matmul_kernel, "D3 D3 D3 b b"),
    # im2col: x (N, C, H, W), cols (G, R, K), then KH, KW, stride, padding, dilation, OH, OW;
    # y_rows and dy_rows (G, Fg, N*OH*OW)
    (im2col._im2col_kernel, "D4 D3 i i i i i i i i i i"),
    (im2col._col2im_kernel, "D3 D4 i i i i i i i i i i"),
    (im2col._rows_to_nchw_kernel, "D3 D1 D4"),
    (im2col._nchw_to_rows_kernel, "D4 D3"),
    (im2col._row_sums_kernel, "D3 D1"),
    # linear: x (N, D), w (M, D), b (M,), y (N, M) and their gradients
    (linear._linear_forward_kernel, "D2 D2 D1 D2"),
    (linear._linear_backward_dx_kernel, "D2 D2 D2"),
    (linear._linear_backward_dw_kernel, "D2 D2 D2"),
    (linear._linear_backward_db_kernel, "D2 D1"),
    (linear._add_bias_kernel, "D2 D1"),
    # loss: the (A, C, B) view (logits and probability targets as (N, C, 1)), statistics and
    # partial sums of the data's dtype, int64 class targets; the mean a 0-d array viewed as (1,),
    # the backward's upstream gradient a 1-element array of the data's dtype, the count in it too
    (loss._sum_kernel, "D1 D1"),
    (loss._mean_kernel, "D1 d D1"),
    (loss._max_sumexp_kernel, "D3 D2 D2"),
    (loss._softmax_forward_kernel, "D3 D2 D2 D3"),
    (loss._dot_over_c_kernel, "D3 D3 D2"),
    (loss._softmax_backward_kernel, "D3 D3 D2 D3"),
    (loss._log_softmax_forward_kernel, "D3 D2 D2 D3"),
    (loss._sum_over_c_kernel, "D3 D2"),
    (loss._log_softmax_backward_kernel, "D3 D3 D2 D3"),
    (loss._cross_entropy_rows_kernel, "D3 I1 D2 D2 D1"),
    (loss._cross_entropy_backward_kernel, "D2 I1 D1 D2"),
    (loss._cross_entropy_soft_rows_kernel, "D3 D3 D2 D2 D1"),
    (loss._cross_entropy_soft_backward_kernel, "D2 D2 D2 D1 D2"),
    (loss._mse_sum_kernel, "D1 D1 D1"),
    (loss._mse_backward_kernel, "D1 D1 D1 D1"),
    (loss._mae_sum_kernel, "D1 D1 D1"),
    (loss._mae_backward_kernel, "D1 D1 D1 D1"),
    (loss._bce_sum_kernel, "D1 D1 D1"),
    (loss._bce_backward_kernel, "D1 D1 D1 D1"),
    (loss._bce_with_logits_sum_kernel, "D1 D1 D1"),
    (loss._bce_with_logits_backward_kernel, "D1 D1 D1 D1"),
    # norm: the (A, C, B) view; the statistics (batch or running), inv_std and the sums in the
    # data's dtype; eps, momentum, the Bessel factor, alpha, beta and k in the data's dtype
    (norm._moments_kernel, "D3 D1 D1"),
    (norm._inv_std_kernel, "D1 d D1"),
    (norm._normalize_forward_kernel, "D3 D1 D1 D3"),
    (norm._running_average_update_kernel, "D1 D1 D1 D1 d d"),
    (norm._channel_sums_kernel, "D3 D3 D1 D1"),
    (norm._normalize_backward_kernel, "D3 D3 D1 D1 D1 D3"),
    (norm._channel_affine_forward_kernel, "D3 D1 D1 D3"),
    (norm._channel_affine_backward_dxhat_kernel, "D3 D1 D3"),
    (norm._batch_norm_backward_kernel, "D3 D3 D1 D1 D1 D1 b D3"),
    (norm._local_response_norm_forward_kernel, "D3 i d d d D3 D3"),
    (norm._local_response_norm_backward_kernel, "D3 D3 D3 i d d D3"),
    # optim: flat theta, grad and state, then the hyper-parameters in theta's dtype
    (optim._sgd_kernel, "D1 D1 d d"),
    (optim._momentum_kernel, "D1 D1 D1 d d d"),
    (optim._nesterov_kernel, "D1 D1 D1 d d d"),
    (optim._adagrad_kernel, "D1 D1 D1 d d d"),
    (optim._rmsprop_kernel, "D1 D1 D1 d d d d d"),
    (optim._adam_kernel, "D1 D1 D1 D1 d d d d d d d d d"),
    # pool: x (N, C, H, W), then the window, stride and padding; max pooling's switches int64
    (pool._max_pool2d_forward_kernel, "D4 D4 I4 i i i i i i"),
    (pool._max_pool2d_backward_kernel, "D4 I4 D4"),
    (pool._avg_pool2d_forward_kernel, "D4 D4 i i i i i i"),
    (pool._avg_pool2d_backward_kernel, "D4 D4 i i i i i i"),
    (pool._lp_pool2d_forward_kernel, "D4 D4 d i i i i"),
    (pool._lp_pool2d_backward_kernel, "D4 D4 D4 D4 d i i i i"),
    (pool._global_avg_pool2d_forward_kernel, "D4 D2"),
    (pool._global_avg_pool2d_backward_kernel, "D2 D4"),
]

# what a failure means when the compiler's message does not say it: numba-cuda asks the driver for
# the current GPU's compute capability when it compiles a called device function, or code that
# needs its runtime (NRT), so these two cannot be compiled for a given cc without a driver
DEVICE_FUNCTION_HINT = (
    "compiling it asked for a CUDA driver: numba-cuda compiles a @cuda.jit(device=True) function "
    "that a kernel calls for the current GPU's compute capability, even inside compile_ptx; "
    "declared @cuda.jit(device=True, inline='always'), the function's body is inlined into the "
    "kernel at Numba's IR level instead, and the kernel compiles for any cc without a driver")
RUNTIME_HINT = (
    "compiling it asked for a CUDA driver: numba-cuda does so for code that needs its runtime "
    "(NRT): a list, a string or an array allocated inside the kernel, which a kernel should not use")

INSTALL_HINT = ('pip install -e ".[dev]" (it brings numba-cuda and the CUDA 12 compiler wheels '
                'nvidia-cuda-nvcc-cu12 and nvidia-cuda-nvrtc-cu12; no GPU or driver is needed)')


@dataclass(frozen=True)
class Signature:
    """One way a kernel is launched: its argument types, for one dtype of D (None: no D in it)."""

    kernel: object               # the @cuda.jit dispatcher (or the simulator's kernel)
    codes: str                   # as written in SIGNATURES, e.g. "D4 D1"
    dtype: str | None            # what D stands for

    @property
    def name(self) -> str:
        """module.kernel, e.g. conv._conv2d_backward_db_kernel"""
        return f"{self.kernel.py_func.__module__.rsplit('.', 1)[-1]}.{self.kernel.py_func.__name__}"

    @property
    def argtypes(self) -> tuple:
        return argument_types(self.codes, self.dtype)


def argument_types(codes: str, dtype: str | None) -> tuple:
    """The Numba types of a signature string, with D (d) standing for ``dtype``:
    argument_types("D2 I1 f", "float32") -> (float32[:, ::1], int64[::1], float64)."""
    result = []
    for code in codes.split():
        if code[0] in ARRAYS and code[1:].isdigit():
            element = ARRAYS[code[0]] or getattr(types, dtype)
            result.append(types.Array(element, int(code[1:]), "C"))
        elif code in SCALARS:
            result.append(SCALARS[code] or getattr(types, dtype))
        else:
            raise ValueError(f"unknown type code {code!r} in {codes!r}")
    return tuple(result)


def codes_of(argtypes) -> str:
    """The signature string of concrete Numba types, the inverse of argument_types with no D:
    codes_of((float32[:, ::1], int64)) -> "S2 i" (a type with no code is written out)."""
    array_codes = {v: k for k, v in ARRAYS.items() if v is not None}
    scalar_codes = {v: k for k, v in SCALARS.items() if v is not None}
    out = []
    for t in argtypes:
        if isinstance(t, types.Array) and t.layout == "C" and t.dtype in array_codes:
            out.append(f"{array_codes[t.dtype]}{t.ndim}")
        else:
            out.append(scalar_codes.get(t, f"<{t}>"))
    return " ".join(out)


def signatures(table=SIGNATURES) -> list[Signature]:
    """Every signature of the table, those with a D once per dtype of DTYPES, in table order,
    without repeats (a float64 signature may also be another one's D = float64)."""
    out, seen = [], set()
    for kernel, *codes_list in table:
        for codes in codes_list:
            for dtype in (DTYPES if re.search(r"\b[Dd]\d?\b", codes) else (None,)):
                key = (id(kernel), argument_types(codes, dtype))
                if key not in seen:
                    seen.add(key)
                    out.append(Signature(kernel, codes, dtype))
    return out


def kernels_of(module) -> list:
    """The @cuda.jit kernels of a module (real or simulated; not its device functions), from its
    globals, each once."""
    found = []
    for value in vars(module).values():
        if _is_kernel(value) and getattr(value.py_func, "__module__", None) == module.__name__ \
                and not any(value is k for k in found):
            found.append(value)
    return found


def _is_kernel(obj) -> bool:
    kind = type(obj).__name__
    if kind == "CUDADispatcher":                    # numba-cuda's @cuda.jit
        return not obj.targetoptions.get("device", False)
    if kind == "FakeCUDAKernel":                    # the simulator's
        return not obj._device
    return False


# ---------------------------------------------------------------- compiling

@dataclass
class Result:
    """What the compiler said about one signature for one compute capability."""

    kernel: str
    codes: str
    dtype: str | None
    cc: str                      # "7.5"
    ok: bool
    error: str | None = None     # the compiler's message (its last lines) when not ok
    seconds: float = 0.0
    registers: int | None = None         # from ptxas (--sass), per thread
    spill_bytes: int | None = None       # ptxas's spill stores + loads (local memory)
    shared_bytes: int | None = None      # static shared memory per block
    f64_ops: int | None = None           # PTX arithmetic, compare and convert instructions on float64
    f32_rounds: int | None = None        # conversions of a float64 to float32 (cvt.rn.f32.f64)


def _probe_kernel(out):
    out[0] = 1.0


def toolkit_problem(cc=CCS[0]) -> str | None:
    """Why the CUDA compiler cannot run here (the simulator chosen, numba-cuda or the compiler
    wheels missing), or None when it can: a one-line kernel compiled for ``cc``."""
    try:
        from numba import cuda
    except ImportError as exc:
        return f"numba.cuda cannot be imported ({exc}); {INSTALL_HINT}"
    if cuda.jit.__module__.startswith("numba.cuda.simulator"):
        return ("numba.cuda is Numba's CUDA simulator here, which has no compiler: run with "
                "NUMBA_ENABLE_CUDASIM=0 (or unset)")
    try:
        cuda.compile_ptx(_probe_kernel, (types.float64[::1],), cc=cc)
    except Exception as exc:  # noqa: BLE001  (the toolkit's many ways to be missing)
        return f"the CUDA compiler cannot run ({type(exc).__name__}: {_last_lines(str(exc))}); {INSTALL_HINT}"
    return None


def compile_all(cc=CCS[0], sass=False, table=SIGNATURES) -> list[Result]:
    """Compile every signature of ``table`` to PTX for the compute capability ``cc`` (a tuple
    like (7, 5)); with ``sass``, also assemble each PTX with ptxas for that GPU and read its
    register and memory use.  One Result per signature, failures included (nothing is raised
    for a kernel that does not compile).  Needs the real numba.cuda (NUMBA_ENABLE_CUDASIM=0)."""
    from numba import cuda

    cc = tuple(cc)
    ptxas = _ptxas() if sass else None
    results = []
    for sig in signatures(table):
        start = time.perf_counter()
        result = Result(sig.name, sig.codes, sig.dtype, f"{cc[0]}.{cc[1]}", ok=True)
        try:
            ptx, _ = cuda.compile_ptx(sig.kernel.py_func, sig.argtypes, cc=cc)
            result.f64_ops = len(_F64_OPS.findall(ptx))
            result.f32_rounds = len(_F32_ROUNDS.findall(ptx))
            if ptxas:
                _assemble(ptxas, ptx, cc, result)
        except Exception as exc:  # noqa: BLE001  (report every kind of failure, per kernel)
            result.ok = False
            result.error = f"{type(exc).__name__}: {_last_lines(str(exc))}"
            hint = _hint(exc)
            if hint:
                result.error += f" [{hint}]"
        result.seconds = time.perf_counter() - start
        results.append(result)
    return results


def _hint(exc) -> str | None:
    """What a driver error while compiling means (see DEVICE_FUNCTION_HINT), else None."""
    if type(exc).__name__ != "CudaSupportError":
        return None
    frames = traceback.extract_tb(exc.__traceback__)
    return DEVICE_FUNCTION_HINT if any(f.name == "compile_device" for f in frames) else RUNTIME_HINT


def _last_lines(message: str, count: int = 6) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def _ptxas() -> str:
    """The path of ptxas: from the nvidia-cuda-nvcc-cu12 wheel, or a CUDA toolkit on the system."""
    try:
        from cuda.pathfinder import find_nvidia_binary_utility
        path = find_nvidia_binary_utility("ptxas")
    except ImportError:
        path = None
    if not path:
        from shutil import which
        path = which("ptxas")
    if not path:
        raise FileNotFoundError(f"ptxas not found (it comes with the CUDA toolkit); {INSTALL_HINT}")
    return path


# a float64 instruction of the PTX (add.f64, fma.rn.f64, setp.lt.f64, cvt.f64.f32, ...): what a
# float32 kernel should not need, as a GPU like the T4 runs float64 at 1/32 of the float32 rate
_F64_OPS = re.compile(r"^\s*(?:add|sub|mul|mad|fma|div|rcp|sqrt|rsqrt|neg|abs|min|max|setp|cvt)[.\w]*\.f64\b",
                      re.MULTILINE)
# a float64 rounded to float32: in a float64 kernel, a value that lost its precision on the way
_F32_ROUNDS = re.compile(r"^\s*cvt\.rn\.f32\.f64\b", re.MULTILINE)
_PTXAS_USE = re.compile(r"Used (\d+) registers")
_PTXAS_SPILL = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_SHARED = re.compile(r"(\d+) bytes smem")


def _assemble(ptxas: str, ptx: str, cc, result: Result) -> None:
    """ptxas -v on one PTX module for sm_XY: its errors raise, its statistics go into ``result``."""
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "kernel.ptx")
        with open(source, "w") as f:
            f.write(ptx)
        run = subprocess.run([ptxas, f"--gpu-name=sm_{cc[0]}{cc[1]}", "--verbose", "--warn-on-spills",
                              "--output-file", os.path.join(folder, "kernel.cubin"), source],
                             capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"ptxas failed: {run.stderr.strip() or run.stdout.strip()}")
    info = run.stderr + run.stdout
    if (m := _PTXAS_USE.search(info)):
        result.registers = int(m.group(1))
    if (m := _PTXAS_SPILL.search(info)):
        result.spill_bytes = int(m.group(1)) + int(m.group(2))
    result.shared_bytes = int(m.group(1)) if (m := _PTXAS_SHARED.search(info)) else 0


# ---------------------------------------------------------------- the command

def _parse_cc(text: str) -> tuple:
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise argparse.ArgumentTypeError(f"a compute capability is MAJOR.MINOR, e.g. 7.5, got {text!r}")
    return int(major), int(minor)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbconv.kernels.cuda._ptx",
                                     description="Compile every CUDA kernel of nbconv to PTX (no GPU needed).")
    parser.add_argument("--cc", type=_parse_cc, action="append",
                        help="compute capability MAJOR.MINOR, repeatable (default: 7.5 and 9.0)")
    parser.add_argument("--sass", action="store_true",
                        help="also assemble with ptxas: registers, spills, shared memory")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    ccs = args.cc or list(CCS)

    problem = toolkit_problem(ccs[0])
    if problem:
        if args.json:
            print(json.dumps({"toolkit": problem, "results": []}))
        else:
            print(f"nbconv.kernels.cuda._ptx: {problem}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = [r for cc in ccs for r in compile_all(cc, sass=args.sass)]
    seconds = time.perf_counter() - start
    failed = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"toolkit": None, "seconds": seconds, "results": [asdict(r) for r in results]}))
        return 1 if failed else 0

    width = max(len(r.kernel) for r in results)
    print(f"{'kernel':<{width}}  {'D':<7}  {'arguments':<26}  cc   {'ok':<4}  f64" +
          ("  regs  spill  smem" if args.sass else ""))
    for r in results:
        line = f"{r.kernel:<{width}}  {r.dtype or '-':<7}  {r.codes:<26}  {r.cc}  {'ok' if r.ok else 'FAIL':<4}"
        if r.ok:
            line += f"  {r.f64_ops:>3}"
        if args.sass and r.ok:
            line += f"  {r.registers:>4}  {r.spill_bytes:>5}  {r.shared_bytes:>4}"
        print(line)
    for r in failed:
        print(f"\nFAILED {r.kernel} ({r.dtype or '-'}: {r.codes}) for sm_{r.cc.replace('.', '')}:\n  {r.error}")
    print(f"\n{len(results) - len(failed)} of {len(results)} compiled ({len(ccs)} compute capabilities) "
          f"in {seconds:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
