"""Which kernel runs: one table from (op, method) to kernel functions, per device.

Every forward of ``nbconv.functional`` takes ``method=``:

    "naive"   the teaching loop nest of nbconv.kernels, the formula written as loops
              (every op has one)
    "fast"    the optimized CPU kernel beside it: a GEMM where the math is a matrix
              product, a parallel twin (prange) where the elements are independent, with
              the vectorizable exp and tanh of nbconv.kernels.vecmath where it needs them
    "auto"    the default: "fast" where it pays, "naive" elsewhere (FAST_FROM below)

and its backward runs the method its forward ran (the cache keeps it).  Both forms compute
the same numbers: bit for bit where the fast form only adds threads, to rounding where it sums
in another order (GEMM) or calls vecmath (2 ulp); tests/test_dispatch.py holds them to each other.  The convolutions name
their methods after what they do ("direct", "im2col", "blocked"; see nbconv.functional.conv).

On the GPU (CUDA device arrays in) every op has one form, the ``@cuda.jit`` twin of the naive
loop, one thread per output (nbconv.kernels.cuda): "naive" and "auto" run it, "fast" is refused.

The table is plain imports and dictionaries: to see what ``relu_forward(x, method="fast")`` runs,
read CPU["relu"]["fast"] below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nbconv.kernels import activation, linear, pool

from . import _device

METHODS = ("naive", "fast", "auto")


@dataclass(frozen=True)
class Kernels:
    """The kernel pair of one op in one form: the forward and the backward function."""

    forward: Callable
    backward: Callable


CPU = {
    "linear": {
        "naive": Kernels(linear.linear_forward, linear.linear_backward),
        "fast": Kernels(linear.linear_forward_gemm, linear.linear_backward_gemm),
    },
    "relu": {
        "naive": Kernels(activation.relu_forward, activation.relu_backward),
        "fast": Kernels(activation.relu_forward_parallel, activation.relu_backward_parallel),
    },
    "leaky_relu": {
        "naive": Kernels(activation.leaky_relu_forward, activation.leaky_relu_backward),
        "fast": Kernels(activation.leaky_relu_forward_parallel, activation.leaky_relu_backward_parallel),
    },
    "elu": {
        "naive": Kernels(activation.elu_forward, activation.elu_backward),
        "fast": Kernels(activation.elu_forward_parallel, activation.elu_backward_parallel),
    },
    "sigmoid": {
        "naive": Kernels(activation.sigmoid_forward, activation.sigmoid_backward),
        "fast": Kernels(activation.sigmoid_forward_parallel, activation.sigmoid_backward_parallel),
    },
    "tanh": {
        "naive": Kernels(activation.tanh_forward, activation.tanh_backward),
        "fast": Kernels(activation.tanh_forward_parallel, activation.tanh_backward_parallel),
    },
    "max_pool2d": {
        "naive": Kernels(pool.max_pool2d_forward, pool.max_pool2d_backward),
        "fast": Kernels(pool.max_pool2d_forward_parallel, pool.max_pool2d_backward_parallel),
    },
    "avg_pool2d": {
        "naive": Kernels(pool.avg_pool2d_forward, pool.avg_pool2d_backward),
        "fast": Kernels(pool.avg_pool2d_forward_parallel, pool.avg_pool2d_backward_parallel),
    },
    # one loop each, no optimized twin yet: "fast" is refused, "auto" runs the loop
    "lp_pool2d": {"naive": Kernels(pool.lp_pool2d_forward, pool.lp_pool2d_backward)},
    "global_avg_pool2d": {"naive": Kernels(pool.global_avg_pool2d_forward, pool.global_avg_pool2d_backward)},
    # --- normalization ---
    # --- softmax and the losses ---
    # --- prelu, maxout, dropout, residual ---
}

# "auto" runs "fast" for outputs of at least this many elements, "naive" below: a GEMM pays at
# every size; a parallel twin pays once the work outweighs waking the second thread (measured
# with nbconv bench on the project's 2-core machine: below ~64k elements the naive loop wins).
FAST_FROM = {
    "linear": 0,
    "relu": 1 << 16,
    "leaky_relu": 1 << 16,
    "elu": 1 << 16,
    "sigmoid": 1 << 16,
    "tanh": 1 << 16,
    "max_pool2d": 1 << 16,        # elements of the input (the work), for the pools
    "avg_pool2d": 1 << 16,
    "lp_pool2d": 0,
    "global_avg_pool2d": 0,
    # --- normalization ---
    # --- softmax and the losses ---
    # --- prelu, maxout, dropout, residual ---
}

# --- the convolutions' table ---


def cuda_table() -> dict:
    """The GPU kernels, imported on the first device array (numba.cuda is imported only then)."""
    from nbconv.kernels.cuda import activation as cuda_activation
    from nbconv.kernels.cuda import linear as cuda_linear
    from nbconv.kernels.cuda import pool as cuda_pool

    return {
        "linear": {"naive": Kernels(cuda_linear.linear_forward, cuda_linear.linear_backward)},
        "relu": {"naive": Kernels(cuda_activation.relu_forward, cuda_activation.relu_backward)},
        "leaky_relu": {"naive": Kernels(cuda_activation.leaky_relu_forward, cuda_activation.leaky_relu_backward)},
        "elu": {"naive": Kernels(cuda_activation.elu_forward, cuda_activation.elu_backward)},
        "sigmoid": {"naive": Kernels(cuda_activation.sigmoid_forward, cuda_activation.sigmoid_backward)},
        "tanh": {"naive": Kernels(cuda_activation.tanh_forward, cuda_activation.tanh_backward)},
        "max_pool2d": {"naive": Kernels(cuda_pool.max_pool2d_forward, cuda_pool.max_pool2d_backward)},
        "avg_pool2d": {"naive": Kernels(cuda_pool.avg_pool2d_forward, cuda_pool.avg_pool2d_backward)},
        "lp_pool2d": {"naive": Kernels(cuda_pool.lp_pool2d_forward, cuda_pool.lp_pool2d_backward)},
        "global_avg_pool2d": {"naive": Kernels(cuda_pool.global_avg_pool2d_forward,
                                               cuda_pool.global_avg_pool2d_backward)},
        # --- normalization ---
        # --- softmax and the losses ---
        # --- prelu, maxout, dropout, residual ---
    }


_CUDA: dict = {}


def check_method(op: str, method, device: str) -> str:
    """``method`` checked for ``op`` on ``device``: one of METHODS with a kernel there."""
    allowed = allowed_methods(op, device)
    if not isinstance(method, str) or method not in allowed:
        where = "" if device == _device.CPU else f" on {device}"
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in allowed)} for {op}{where}, "
                         f"got {method!r}")
    return method


def allowed_methods(op: str, device: str) -> tuple[str, ...]:
    forms = _table(device)[op]
    return tuple(m for m in METHODS if m in forms or m == "auto")


def resolve(op: str, method, device: str, size: int) -> str:
    """The form that runs: ``method`` itself, or for "auto" the one FAST_FROM picks for ``size``."""
    method = check_method(op, method, device)
    if method != "auto":
        return method
    forms = _table(device)[op]
    return "fast" if "fast" in forms and size >= FAST_FROM[op] else "naive"


def kernels(op: str, method: str, device: str) -> Kernels:
    """The kernel pair of a resolved ``method`` ("naive" or "fast") of ``op`` on ``device``."""
    return _table(device)[op][method]


def select(op: str, method, device: str, size: int) -> tuple[str, Kernels]:
    """What a forward runs: (the resolved form, to keep in the cache for the backward, and its
    kernel pair)."""
    method = resolve(op, method, device, size)
    return method, kernels(op, method, device)


def _table(device: str) -> dict:
    if device == _device.CPU:
        return CPU
    if not _CUDA:
        _CUDA.update(cuda_table())
    return _CUDA
