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
their methods after what they do ("direct", "im2col", "blocked", and on the GPU "fast"; see
nbconv.functional.conv).

On the GPU (CUDA device arrays in) every op takes the same three names (``cuda_table``):

    "naive"   the ``@cuda.jit`` twin of the naive loop, one thread per output
              (nbconv.kernels.cuda), one block per reduced element for the sums
    "fast"    where the math is a matrix product, the GEMM form: linear's three products and
              the convolutions' im2col lowering through ``nbconv.kernels.cuda.gemm`` (cuBLAS
              when CuPy is installed, the register-blocked Numba kernel otherwise; the
              convolution's scratch from a reused device workspace, conv_cuda_table).  Every
              other op's kernel already is the one mapping a GPU wants (a thread per element, a
              block per reduced element), so its "fast" runs the same kernels as "naive".
    "auto"    "fast": FAST_FROM measures when waking the CPU's threads pays; a GPU's fast form
              pays at every size

The table is plain imports and dictionaries: to see what ``relu_forward(x, method="fast")`` runs,
read CPU["relu"]["fast"] below.  An op that takes another kind of argument on other kernels (the
probability targets of cross_entropy) keeps its name, methods and FAST_FROM, and finds its kernels
in VARIANTS, under (op, variant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from nbconv.kernels import activation, linear, pool
from nbconv.kernels import conv, dropout          # the convolutions' table; prelu, maxout, dropout
from nbconv.kernels import norm                   # the normalizations
from nbconv.kernels import loss                   # softmax and the losses

from nbconv import devices
from . import conv_fast                            # the fast conv methods (the convolutions' table)

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
    # parallel twins, one task per plane: Lp's powers as products, sqrt or vecmath's exp and log
    "lp_pool2d": {
        "naive": Kernels(pool.lp_pool2d_forward, pool.lp_pool2d_backward),
        "fast": Kernels(pool.lp_pool2d_forward_parallel, pool.lp_pool2d_backward_parallel),
    },
    "global_avg_pool2d": {
        "naive": Kernels(pool.global_avg_pool2d_forward, pool.global_avg_pool2d_backward),
        "fast": Kernels(pool.global_avg_pool2d_forward_parallel, pool.global_avg_pool2d_backward_parallel),
    },
    # --- normalization ---
    # naive: each op's steps in a row (moments, normalize, the affine step: nbconv.kernels.norm);
    # fast: one parallel task per group, statistics, xhat and out in one visit (LRN: the power
    # through vecmath).  Instance norm shares group norm's kernels (one channel per group).
    "batch_norm": {
        "naive": Kernels(norm.batch_norm_forward, norm.batch_norm_backward),
        "fast": Kernels(norm.batch_norm_forward_parallel, norm.batch_norm_backward_parallel),
    },
    "layer_norm": {
        "naive": Kernels(norm.layer_norm_forward, norm.layer_norm_backward),
        "fast": Kernels(norm.layer_norm_forward_parallel, norm.layer_norm_backward_parallel),
    },
    "instance_norm": {
        "naive": Kernels(norm.group_norm_forward, norm.group_norm_backward),
        "fast": Kernels(norm.group_norm_forward_parallel, norm.group_norm_backward_parallel),
    },
    "group_norm": {
        "naive": Kernels(norm.group_norm_forward, norm.group_norm_backward),
        "fast": Kernels(norm.group_norm_forward_parallel, norm.group_norm_backward_parallel),
    },
    "weight_standardize": {
        "naive": Kernels(norm.standardize, norm.normalize_backward),
        "fast": Kernels(norm.standardize_parallel, norm.normalize_backward_parallel),
    },
    "local_response_norm": {
        "naive": Kernels(norm.local_response_norm_forward, norm.local_response_norm_backward),
        "fast": Kernels(norm.local_response_norm_forward_parallel, norm.local_response_norm_backward_parallel),
    },
    # --- softmax and the losses ---
    # fast: vecmath's exp and log in loops that LLVM vectorizes, rows (softmax over the last
    # axis, cross_entropy), tiles of the (A, C, B) view (another axis) or fixed chunks (the
    # mean losses' sums, added in chunk order) split between the threads (nbconv.kernels.loss)
    "softmax": {
        "naive": Kernels(loss.softmax_forward, loss.softmax_backward),
        "fast": Kernels(loss.softmax_forward_fast, loss.softmax_backward_fast),
    },
    "log_softmax": {
        "naive": Kernels(loss.log_softmax_forward, loss.log_softmax_backward),
        "fast": Kernels(loss.log_softmax_forward_fast, loss.log_softmax_backward_fast),
    },
    "cross_entropy": {          # class indices; probability targets: VARIANTS below
        "naive": Kernels(loss.cross_entropy_forward, loss.cross_entropy_backward),
        "fast": Kernels(loss.cross_entropy_forward_fast, loss.cross_entropy_backward_fast),
    },
    "mse": {
        "naive": Kernels(loss.mse_forward, loss.mse_backward),
        "fast": Kernels(loss.mse_forward_fast, loss.mse_backward_fast),
    },
    "mae": {
        "naive": Kernels(loss.mae_forward, loss.mae_backward),
        "fast": Kernels(loss.mae_forward_fast, loss.mae_backward_fast),
    },
    "bce": {
        "naive": Kernels(loss.bce_forward, loss.bce_backward),
        "fast": Kernels(loss.bce_forward_fast, loss.bce_backward_fast),
    },
    "bce_with_logits": {
        "naive": Kernels(loss.bce_with_logits_forward, loss.bce_with_logits_backward),
        "fast": Kernels(loss.bce_with_logits_forward_fast, loss.bce_with_logits_backward_fast),
    },
    # --- prelu, maxout, dropout, residual ---
    # parallel twins: prelu over blocks of the (n, c) rows, maxout over the (n, k) output rows,
    # dropout over spans of the elements (the mask drawn in the kernel by SplitMix64, the same
# words in both forms);
    # residual is conv2d + x and takes the convolution's methods (CONV below)
    "prelu": {
        "naive": Kernels(activation.prelu_forward, activation.prelu_backward),
        "fast": Kernels(activation.prelu_forward_parallel, activation.prelu_backward_parallel),
    },
    "maxout": {
        "naive": Kernels(activation.maxout_forward, activation.maxout_backward),
        "fast": Kernels(activation.maxout_forward_parallel, activation.maxout_backward_parallel),
    },
    "dropout": {
        "naive": Kernels(dropout.dropout_forward, dropout.dropout_backward),
        "fast": Kernels(dropout.dropout_forward_parallel, dropout.dropout_backward_parallel),
    },
}

# --- variants: an op of the table above on other kernels, for another kind of argument ---
# The op keeps its name, its methods and its FAST_FROM; the functional layer names the variant,
# and the cache keeps it for the backward: kernels(op, method, device, variant).
VARIANTS = {
    # cross_entropy with probability targets, t (N, K) floats in place of the class indices:
    # L = -1/N sum_n sum_k t[n, k] ln softmax(logits[n])[k] (nbconv.kernels.loss); fast: rows
    # split between the threads, as the class-index form
    ("cross_entropy", "soft"): {
        "naive": Kernels(loss.cross_entropy_soft_forward, loss.cross_entropy_soft_backward),
        "fast": Kernels(loss.cross_entropy_soft_forward_fast, loss.cross_entropy_soft_backward_fast),
    },
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
    "lp_pool2d": 1 << 13,         # fwd + bwd, float32, 2x2 windows (p = 2, 2.5, 3) and 3x3: from 8k
    "global_avg_pool2d": 1 << 17,  # fwd + bwd, float32, 7x7 to 32x32 maps: from 128k
    # --- normalization ---
    # elements of x (w for weight_standardize), from where fast wins forward and backward (the
    # loops' statistics are scalar float64 sums, the twins' vectorized): measured on x (n, 16, 8, 8)
    # float32, 2 threads, OMP_WAIT_POLICY=PASSIVE.  Batch norm in inference (no statistics to
    # take) runs its forward as fast as the loops only from ~512k elements; training decides.
    "batch_norm": 1 << 15,
    "layer_norm": 1 << 12,
    "instance_norm": 1 << 15,
    "group_norm": 1 << 14,
    "weight_standardize": 1 << 14,
    "local_response_norm": 0,     # vecmath's exp and log against libm's pow: faster at every size
    # --- softmax and the losses ---
    # elements of x (logits for cross_entropy, y for the mean losses); measured fwd + bwd through
    # nbconv.functional, float32 and float64, OMP_WAIT_POLICY=PASSIVE as nbconv sets it: a fast
    # form's two parallel regions cost ~50 us of waking; vecmath's exp repays it sooner for the
    # exp-heavy ops, the plain sums of mse and mae only from ~128k elements
    "softmax": 1 << 15,           # rows of 10 to 1000 classes, or an inner axis: fast wins from 8k-32k
    "log_softmax": 1 << 15,
    "cross_entropy": 1 << 16,     # 10 classes: even at 16k-64k, 100 to 1000 classes: fast wins from 16k
    "mse": 1 << 17,
    "mae": 1 << 17,
    "bce": 1 << 14,
    "bce_with_logits": 1 << 13,
    # --- prelu, maxout, dropout, residual ---
    # elements of x; measured fwd + bwd through nbconv.functional, float32, 2 cores: the twins of
    # prelu and maxout also vectorize (a select in place of the naive loop's branch) and win from
    # 2^14; dropout's twin draws and applies the mask in vector lanes, span by span, and wins
    # forward and fwd + bwd from 2^17 (278 against 190 us)
    "prelu": 1 << 14,
    "maxout": 1 << 14,
    "dropout": 1 << 17,
}

# --- the convolutions' table ---
# The convolutions name their methods after what they do (nbconv.functional.conv): "direct" is
# the naive loop nest, "im2col" lowers to a GEMM, "blocked" is the optimized direct kernel.  The
# names every op takes mean one of them (CONV_ALIASES), and the cache keeps the method itself.
# All three pairs are called alike, with the naive kernel's arguments:
#     forward(x, w, b, y, SH, SW, PH, PW, DH, DW, groups)
#     backward(dy, x, w, dx, dw, db, SH, SW, PH, PW, DH, DW, groups)
# The fast two are the drivers of nbconv.functional.conv_fast (scratch memory, the polyphase
# layout, the GEMMs) around the kernels of nbconv.kernels.im2col and nbconv.kernels.conv.
# Residual (conv2d + x) takes the convolution's methods and runs this table through conv2d.
CONV = {
    "direct": Kernels(conv.conv2d_forward_direct, conv.conv2d_backward_direct),
    "im2col": Kernels(conv_fast.im2col_forward, conv_fast.im2col_backward),
    "blocked": Kernels(conv_fast.blocked_forward, conv_fast.blocked_backward),
}
CONV_ALIASES = {"naive": "direct", "fast": "blocked", "auto": "blocked"}


def conv_cuda_table() -> dict:
    """The convolutions on the GPU, imported on the first device array:

        "direct"   the CUDA twin of the direct nest (nbconv.kernels.cuda.conv)
        "im2col"   the teaching form of im2col: the register-blocked Numba product, every group
                   in one launch, X_col recomputed in the backward
        "blocked"  a CPU layout (polyphase rows, cache-sized chunks) with no GPU counterpart:
                   it runs the direct kernels
        "fast"     im2col with the library GEMM (cuBLAS through CuPy when it is installed) and
                   its arrays from the device workspace, X_col kept from the forward for the
                   backward (nbconv.functional.conv_fast)
    """
    from nbconv.kernels.cuda import conv as cuda_conv

    direct = Kernels(cuda_conv.conv2d_forward_direct, cuda_conv.conv2d_backward_direct)
    return {
        "direct": direct,
        "im2col": Kernels(conv_fast.im2col_forward_cuda, conv_fast.im2col_backward_cuda),
        "blocked": direct,
        "fast": Kernels(conv_fast.fast_forward_cuda, conv_fast.fast_backward_cuda),
    }


# On the GPU "fast" is a conv method of its own (the device table above); "naive" is still
# "direct", and "auto" is "fast".
CONV_CUDA_METHODS = ("direct", "im2col", "blocked", "fast")
CONV_CUDA_ALIASES = {"naive": "direct", "auto": "fast"}

_CONV_CUDA: dict = {}


def conv_method(method, device: str = devices.CPU) -> str:
    """A conv ``method`` checked, and resolved to a method of the ``device``'s table: on the CPU
    one of CONV ("naive" is "direct", "fast" and "auto" are "blocked"), on the GPU one of
    CONV_CUDA_METHODS ("naive" is "direct", "auto" is "fast")."""
    if device == devices.CPU:
        names, aliases, where = tuple(CONV), CONV_ALIASES, ""
    else:
        names, aliases, where = CONV_CUDA_METHODS, CONV_CUDA_ALIASES, f" on {device}"
    allowed = names + tuple(aliases)
    if not isinstance(method, str) or method not in allowed:
        meanings = "; ".join(f"{alias!r} is {name!r}" for alias, name in aliases.items())
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in allowed)}{where}, got {method!r} "
                         f"({meanings})")
    return aliases.get(method, method)


def conv_kernels(method: str, device: str) -> Kernels:
    """The kernel pair of the conv ``method`` (one of CONV, or of CONV_CUDA_METHODS) on ``device``."""
    if device == devices.CPU:
        return CONV[method]
    if not _CONV_CUDA:
        _CONV_CUDA.update(conv_cuda_table())
    return _CONV_CUDA[method]


def cuda_table() -> dict:
    """The GPU kernels, imported on the first device array (numba.cuda is imported only then)."""
    from nbconv.kernels.cuda import activation as cuda_activation
    from nbconv.kernels.cuda import linear as cuda_linear
    from nbconv.kernels.cuda import pool as cuda_pool
    from nbconv.kernels.cuda import dropout as cuda_dropout       # prelu, maxout, dropout
    from nbconv.kernels.cuda import norm as cuda_norm             # the normalizations
    from nbconv.kernels.cuda import loss as cuda_loss             # softmax and the losses

    # The ops whose one GPU kernel pair already is the right mapping: a thread per element, or a
    # block per reduced element (the statistics, the row sums of softmax, the loss sums).
    # "fast" runs the same kernels as "naive" (the line after this dictionary).
    one_form = {
        "relu": Kernels(cuda_activation.relu_forward, cuda_activation.relu_backward),
        "leaky_relu": Kernels(cuda_activation.leaky_relu_forward, cuda_activation.leaky_relu_backward),
        "elu": Kernels(cuda_activation.elu_forward, cuda_activation.elu_backward),
        "sigmoid": Kernels(cuda_activation.sigmoid_forward, cuda_activation.sigmoid_backward),
        "tanh": Kernels(cuda_activation.tanh_forward, cuda_activation.tanh_backward),
        "max_pool2d": Kernels(cuda_pool.max_pool2d_forward, cuda_pool.max_pool2d_backward),
        "avg_pool2d": Kernels(cuda_pool.avg_pool2d_forward, cuda_pool.avg_pool2d_backward),
        "lp_pool2d": Kernels(cuda_pool.lp_pool2d_forward, cuda_pool.lp_pool2d_backward),
        "global_avg_pool2d": Kernels(cuda_pool.global_avg_pool2d_forward, cuda_pool.global_avg_pool2d_backward),
        # --- normalization ---
        "batch_norm": Kernels(cuda_norm.batch_norm_forward, cuda_norm.batch_norm_backward),
        "layer_norm": Kernels(cuda_norm.layer_norm_forward, cuda_norm.layer_norm_backward),
        "instance_norm": Kernels(cuda_norm.group_norm_forward, cuda_norm.group_norm_backward),
        "group_norm": Kernels(cuda_norm.group_norm_forward, cuda_norm.group_norm_backward),
        "weight_standardize": Kernels(cuda_norm.standardize, cuda_norm.normalize_backward),
        "local_response_norm": Kernels(cuda_norm.local_response_norm_forward,
                                       cuda_norm.local_response_norm_backward),
        # --- softmax and the losses ---
        "softmax": Kernels(cuda_loss.softmax_forward, cuda_loss.softmax_backward),
        "log_softmax": Kernels(cuda_loss.log_softmax_forward, cuda_loss.log_softmax_backward),
        "cross_entropy": Kernels(cuda_loss.cross_entropy_forward, cuda_loss.cross_entropy_backward),
        "mse": Kernels(cuda_loss.mse_forward, cuda_loss.mse_backward),
        "mae": Kernels(cuda_loss.mae_forward, cuda_loss.mae_backward),
        "bce": Kernels(cuda_loss.bce_forward, cuda_loss.bce_backward),
        "bce_with_logits": Kernels(cuda_loss.bce_with_logits_forward, cuda_loss.bce_with_logits_backward),
        # --- prelu, maxout, dropout ---
        "prelu": Kernels(cuda_activation.prelu_forward, cuda_activation.prelu_backward),
        "maxout": Kernels(cuda_activation.maxout_forward, cuda_activation.maxout_backward),
        "dropout": Kernels(cuda_dropout.dropout_forward, cuda_dropout.dropout_backward),
    }
    table = {op: {"naive": pair, "fast": pair} for op, pair in one_form.items()}     # fast = naive
    # linear has a fast form of its own: its three products as GEMMs (gemm.fast_matmul)
    table["linear"] = {
        "naive": Kernels(cuda_linear.linear_forward, cuda_linear.linear_backward),
        "fast": Kernels(cuda_linear.linear_forward_gemm, cuda_linear.linear_backward_gemm),
    }
    return table


_CUDA: dict = {}


def cuda_variants() -> dict:
    """VARIANTS on the GPU, imported on the first device array: one kernel pair, "fast" = "naive"."""
    from nbconv.kernels.cuda import loss as cuda_loss

    soft = Kernels(cuda_loss.cross_entropy_soft_forward, cuda_loss.cross_entropy_soft_backward)
    return {("cross_entropy", "soft"): {"naive": soft, "fast": soft}}


_CUDA_VARIANTS: dict = {}


def check_method(op: str, method, device: str) -> str:
    """``method`` checked for ``op`` on ``device``: one of METHODS with a kernel there."""
    allowed = allowed_methods(op, device)
    if not isinstance(method, str) or method not in allowed:
        where = "" if device == devices.CPU else f" on {device}"
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in allowed)} for {op}{where}, "
                         f"got {method!r}")
    return method


def allowed_methods(op: str, device: str) -> tuple[str, ...]:
    forms = _table(device)[op]
    return tuple(m for m in METHODS if m in forms or m == "auto")


def resolve(op: str, method, device: str, size: int) -> str:
    """The form that runs: ``method`` itself, or for "auto" the one FAST_FROM picks for ``size``
    (on the GPU, "fast")."""
    method = check_method(op, method, device)
    if method != "auto":
        return method
    if device != devices.CPU:
        return "fast"
    forms = _table(device)[op]
    return "fast" if "fast" in forms and size >= FAST_FROM[op] else "naive"


def kernels(op: str, method: str, device: str, variant: str | None = None) -> Kernels:
    """The kernel pair of a resolved ``method`` ("naive" or "fast") of ``op`` on ``device``; of
    its ``variant`` (VARIANTS[(op, variant)]) when one is named."""
    if variant is None:
        return _table(device)[op][method]
    return _variant_table(device)[(op, variant)][method]


def select(op: str, method, device: str, size: int, variant: str | None = None) -> tuple[str, Kernels]:
    """What a forward runs: (the resolved form, to keep in the cache for the backward, and its
    kernel pair; the ``variant``'s pair when one is named)."""
    method = resolve(op, method, device, size)
    return method, kernels(op, method, device, variant)


def _table(device: str) -> dict:
    if device == devices.CPU:
        return CPU
    if not _CUDA:
        _CUDA.update(cuda_table())
    return _CUDA


def _variant_table(device: str) -> dict:
    if device == devices.CPU:
        return VARIANTS
    if not _CUDA_VARIANTS:
        _CUDA_VARIANTS.update(cuda_variants())
    return _CUDA_VARIANTS
