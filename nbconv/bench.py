"""``nbconv bench``: the naive loops against im2col + GEMM and the optimized kernels, with honest numbers.

    nbconv bench                       the quick set (the default, about a minute with a warm cache)
    nbconv bench --full                the shapes of the performance issue
    nbconv bench --op conv2d --op relu only these ops
    nbconv bench --json out.json       also save every number
    nbconv bench --train               ms per training step of three LeNet-style nets and where it goes
                                       (nbconv.bench_train)
    nbconv bench --train --threads 1   the same on one Numba and one BLAS thread (restored afterwards)

One table per op and shape.  Each row is one method:

- time: the best of two bursts of ``--repeat`` runs, wall clock, after a warm-up call that
  compiles; each burst starts after SETTLE seconds of quiet, so that no thread pool is still
  spinning from the previous measurement;
- GFLOP/s for the compute-bound ops (conv2d, linear: forward + backward, 2 flops per
  multiply-add, the backward twice the forward), GB/s for the memory-bound ones (pooling,
  batch norm, activations; the bytes an op must at least read and write, listed in BYTES);
- speedup: the naive method's time over this method's;
- of limit: the method's rate as a fraction of the machine's limit, measured in the same run
  right before and right after the op (the better of the two): for GEMM-like ops ``np.dot``
  of float32 matrices of the forward GEMM's size (F, C*KH*KW) x (C*KH*KW, N*OH*OW); for
  memory-bound ops copying the same number of bytes (``np.copyto`` of an array half that
  size: read once, written once);
- torch: PyTorch's time for the same op, only when torch happens to be importable.  For conv2d
  it is PyTorch's default convolution (oneDNN's direct kernels, the peer of ``blocked``), and a
  line under the table gives the like-for-like peer of ``im2col``: PyTorch with oneDNN switched
  off (``torch.backends.mkldnn.flags(enabled=False)``), whose CPU convolution is then its own
  im2col + GEMM (unfold, then MKL's sgemm).

Methods: conv2d ``direct`` (the naive loop nest, the reference of the speedups), ``im2col``,
``blocked``; every other op its two forms through nbconv.functional (``method="naive"``, the
loops, and ``method="fast"``, GEMM / parallel twins / vectorized exp; see
nbconv.functional.dispatch), for linear and for each memory-bound op of MEMORY_OPS (an op
without a fast form shows its naive row alone).

The header says under which setting the numbers were taken: the CPU and its SIMD width (from
/proc/cpuinfo), Numba's threads and threading layer, and every BLAS library with its core type
and thread count (threadpoolctl, which comes with scikit-learn).  nbconv never changes BLAS
settings: to compare, set e.g. OPENBLAS_NUM_THREADS or OPENBLAS_CORETYPE yourself.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .measure import (copy_rate, format_machine, gemm_rate, machine_info, measure, settle, torch_header,
                      torch_module, torch_time)

__all__ = ["CONV_SHAPES", "QUICK_CONV_SHAPES", "MAP_SHAPE", "LINEAR_SHAPE", "MEMORY_OPS", "BYTES",
           "bench_conv", "bench_linear", "bench_memory_op", "memory_op_methods", "format_table", "register", "run"]

# (N, C, H, W, F, K, stride, padding), float32: the shapes of the performance issue.
CONV_SHAPES = [
    (32, 3, 32, 32, 32, 3, 1, 1),
    (32, 32, 32, 32, 32, 3, 1, 1),
    (16, 64, 32, 32, 64, 3, 1, 1),
    (16, 128, 16, 16, 128, 3, 1, 1),
    (8, 64, 56, 56, 64, 3, 1, 1),
    (32, 64, 16, 16, 128, 1, 1, 0),
    (16, 64, 32, 32, 128, 3, 2, 1),
]
# The quick set: the same layers on an eighth of the batch (at least one sample).
QUICK_CONV_SHAPES = [(max(1, s[0] // 8),) + s[1:] for s in CONV_SHAPES]
MAP_SHAPE = (32, 64, 32, 32)            # pooling, batch norm, activations
QUICK_MAP_SHAPE = (8, 64, 32, 32)
LINEAR_SHAPE = (256, 1024, 1024)        # x (N, D) times w (M, D)^T
QUICK_LINEAR_SHAPE = (64, 1024, 1024)

CONV_METHODS = ("direct", "im2col", "blocked")

# The memory-bound ops, each called through nbconv.functional with ``method="naive"`` (its loops)
# and ``method="fast"`` (its optimized form), on one (N, C, H, W) float32 input: the op with the
# hyper-parameters of a small network (2x2 pooling, 8 groups, LRN over 5 channels, softmax over the
# channel axis), and PyTorch's twin for the peer column.  ``bytes`` is what the kernels move, in
# units of S = the input's size in bytes, (forward, backward): pooling's output is S/4 and max
# pooling's int64 switches 2 * S/4 for float32; the normalizations cache xhat (written forward,
# read backward); dropout keeps its mask, one byte per element (S/4).
@dataclass(frozen=True)
class MemoryOp:
    forward: object            # (F, x, method) -> (y, cache)
    backward: object           # (F, dout, cache) -> the gradients
    torch: object              # (torch, x) -> y
    bytes: tuple               # (forward, backward), in units of the input's bytes


def _channels(x, value=1.0):
    return np.full(x.shape[1], value, x.dtype)


def _bn(F, x, method):
    return F.batch_norm_forward(x, _channels(x), _channels(x, 0.0), _channels(x, 0.0), _channels(x),
                                training=True, method=method)


def _torch_bn(t, x):
    C = x.shape[1]
    return t.nn.functional.batch_norm(x, t.zeros(C), t.ones(C), t.ones(C, requires_grad=True),
                                      t.zeros(C, requires_grad=True), training=True)


MEMORY_OPS = {
    "max_pool2d": MemoryOp(lambda F, x, m: F.max_pool2d_forward(x, kernel_size=2, method=m),
                           lambda F, dy, c: F.max_pool2d_backward(dy, c),
                           lambda t, x: t.nn.functional.max_pool2d(x, 2),
                           (1.75, 1.75)),            # fwd: x + out + switches; bwd: dout + switches + dx
    "avg_pool2d": MemoryOp(lambda F, x, m: F.avg_pool2d_forward(x, kernel_size=2, method=m),
                           lambda F, dy, c: F.avg_pool2d_backward(dy, c),
                           lambda t, x: t.nn.functional.avg_pool2d(x, 2),
                           (1.25, 1.25)),            # fwd: x + out; bwd: dout + dx
    "lp_pool2d": MemoryOp(lambda F, x, m: F.lp_pool2d_forward(x, norm_type=2, kernel_size=2, method=m),
                          lambda F, dy, c: F.lp_pool2d_backward(dy, c),
                          lambda t, x: t.nn.functional.lp_pool2d(x, 2, 2),
                          (1.25, 2.5)),              # bwd: dout + x + out + dx
    "global_avg_pool2d": MemoryOp(lambda F, x, m: F.global_avg_pool2d_forward(x, method=m),
                                  lambda F, dy, c: F.global_avg_pool2d_backward(dy, c),
                                  lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, 1),
                                  (1.0, 1.0)),       # fwd: x; bwd: dx
    "batch_norm": MemoryOp(_bn,
                           lambda F, dy, c: F.batch_norm_backward(dy, c),
                           _torch_bn, (3.0, 3.0)),   # fwd: x + xhat + out; bwd: dout + xhat + dx
    "layer_norm": MemoryOp(lambda F, x, m: F.layer_norm_forward(x, np.ones(x.shape[1:], x.dtype),
                                                                np.zeros(x.shape[1:], x.dtype),
                                                                normalized_ndim=3, method=m),
                           lambda F, dy, c: F.layer_norm_backward(dy, c),
                           lambda t, x: t.nn.functional.layer_norm(x, x.shape[1:]),
                           (3.0, 3.0)),
    "group_norm": MemoryOp(lambda F, x, m: F.group_norm_forward(x, _channels(x), _channels(x, 0.0),
                                                                num_groups=8, method=m),
                           lambda F, dy, c: F.group_norm_backward(dy, c),
                           lambda t, x: t.nn.functional.group_norm(x, 8),
                           (3.0, 3.0)),
    "local_response_norm": MemoryOp(lambda F, x, m: F.local_response_norm_forward(x, size=5, method=m),
                                    lambda F, dy, c: F.local_response_norm_backward(dy, c),
                                    lambda t, x: t.nn.functional.local_response_norm(x, 5),
                                    (3.0, 4.0)),     # fwd: x + d + out; bwd: dout + x + d + dx
    "relu": MemoryOp(lambda F, x, m: F.relu_forward(x, method=m),
                     lambda F, dy, c: F.relu_backward(dy, c),
                     lambda t, x: t.relu(x),
                     (2.0, 3.0)),                    # fwd: x + y; bwd: dout + x + dx
    "leaky_relu": MemoryOp(lambda F, x, m: F.leaky_relu_forward(x, method=m),
                           lambda F, dy, c: F.leaky_relu_backward(dy, c),
                           lambda t, x: t.nn.functional.leaky_relu(x), (2.0, 3.0)),
    "elu": MemoryOp(lambda F, x, m: F.elu_forward(x, method=m),
                    lambda F, dy, c: F.elu_backward(dy, c),
                    lambda t, x: t.nn.functional.elu(x),
                    (2.0, 3.0)),
    "sigmoid": MemoryOp(lambda F, x, m: F.sigmoid_forward(x, method=m),
                        lambda F, dy, c: F.sigmoid_backward(dy, c),
                        lambda t, x: t.sigmoid(x),
                        (2.0, 3.0)),                 # bwd: dout + y + dx
    "tanh": MemoryOp(lambda F, x, m: F.tanh_forward(x, method=m),
                     lambda F, dy, c: F.tanh_backward(dy, c),
                     lambda t, x: t.tanh(x), (2.0, 3.0)),
    "prelu": MemoryOp(lambda F, x, m: F.prelu_forward(x, _channels(x, 0.25), method=m),
                      lambda F, dy, c: F.prelu_backward(dy, c),
                      lambda t, x: t.nn.functional.prelu(x, t.full((x.shape[1],), 0.25)), (2.0, 3.0)),
    "dropout": MemoryOp(lambda F, x, m: F.dropout_forward(x, p=0.5, seed=0, method=m),
                        lambda F, dy, c: F.dropout_backward(dy, c),
                        lambda t, x: t.nn.functional.dropout(x, 0.5), (2.25, 2.25)),  # + the mask
    "softmax": MemoryOp(lambda F, x, m: F.softmax_forward(x, axis=1, method=m),
                        lambda F, dy, c: F.softmax_backward(dy, c),
                        lambda t, x: t.softmax(x, 1), (2.0, 3.0)),   # fwd: x + s; bwd: dout + s + dx
    "log_softmax": MemoryOp(lambda F, x, m: F.log_softmax_forward(x, axis=1, method=m),
                            lambda F, dy, c: F.log_softmax_backward(dy, c),
                            lambda t, x: t.log_softmax(x, 1), (2.0, 3.0)),
}
BYTES = {op: spec.bytes for op, spec in MEMORY_OPS.items()}
ALL_OPS = ("conv2d", "linear") + tuple(MEMORY_OPS)


# --------------------------------------------------------------------------- one table per op

@dataclass
class Row:
    method: str
    seconds: float
    rate: float                  # GFLOP/s or GB/s
    speedup: float               # the naive method's time / this time
    fraction: float              # rate / the machine's limit measured in the same run
    phase: str = "fwd+bwd"
    torch_seconds: float | None = None
    times: list = field(default_factory=list)


@dataclass
class Table:
    op: str
    shape: str
    unit: str                    # "GFLOP/s" or "GB/s"
    limit: float                 # the limit's rate, in unit
    limit_name: str
    rows: list
    limit_bwd: float | None = None   # memory-bound ops: the copy rate for the backward's byte count
    torch_im2col_seconds: float | None = None   # conv2d: PyTorch's own im2col + GEMM (oneDNN off)


def _conv_inputs(shape, seed=0):
    N, C, H, W, F, K, S, P = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((F, C, K, K), dtype=np.float32) * np.float32(1 / np.sqrt(C * K * K))
    b = rng.standard_normal(F, dtype=np.float32)
    return x, w, b


def bench_conv(shape, methods=CONV_METHODS, repeat=3, torch=None) -> Table:
    """conv2d forward + backward of one shape (N, C, H, W, F, K, stride, padding), float32."""
    import nbconv.functional as F_

    N, C, H, W, F, K, S, P = shape
    x, w, b = _conv_inputs(shape)
    OH = (H + 2 * P - K) // S + 1
    OW = (W + 2 * P - K) // S + 1
    flops = 3 * 2.0 * N * F * OH * OW * C * K * K          # forward + backward (twice the forward)
    dy = np.random.default_rng(1).standard_normal((N, F, OH, OW), dtype=np.float32)
    small = _conv_inputs((1, C, K + 2, K + 2, F, K, S, P))

    def step(method, x, w, b, dy=None):
        y, cache = F_.conv2d_forward(x, w, b, stride=S, padding=P, method=method)
        return F_.conv2d_backward(np.ones_like(y) if dy is None else dy, cache)

    limit = gemm_rate(F, C * K * K, N * OH * OW, repeat=max(3, repeat))
    rows = []
    for method in methods:
        step(method, *small)                              # compile on a tiny input
        seconds, times = measure(lambda: step(method, x, w, b, dy), repeat)
        rows.append(Row(method, seconds, flops / seconds / 1e9, 0.0, 0.0, times=times))
    limit = max(limit, gemm_rate(F, C * K * K, N * OH * OW, repeat=max(3, repeat)))   # before and after
    torch_seconds = torch_im2col_seconds = None
    if torch is not None:
        settle()

        def build():
            tx = torch.from_numpy(x).requires_grad_()
            tw = torch.from_numpy(w).requires_grad_()
            tb = torch.from_numpy(b).requires_grad_()
            tdy = torch.from_numpy(dy)

            def run():
                y = torch.nn.functional.conv2d(tx, tw, tb, stride=S, padding=P)
                torch.autograd.backward(y, tdy)
            return run
        torch_seconds = torch_time(build, repeat)
        if "im2col" in methods:
            with torch.backends.mkldnn.flags(enabled=False):      # PyTorch's im2col + GEMM path
                torch_im2col_seconds = torch_time(build, repeat)
    table = Table("conv2d", "N={} C={} {}x{} F={} K={} stride={} pad={}".format(*shape),
                  "GFLOP/s", limit, f"np.dot {F}x{C * K * K} @ {C * K * K}x{N * OH * OW}", rows,
                  torch_im2col_seconds=torch_im2col_seconds)
    return _finish(table, torch_seconds)


def bench_linear(shape=LINEAR_SHAPE, repeat=3, torch=None) -> Table:
    """linear forward + backward: x (N, D) @ w (M, D)^T, float32; "naive" its loop nest, "fast" the
    three GEMMs through BLAS."""
    import nbconv.functional as F_

    N, D, M = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D), dtype=np.float32)
    w = rng.standard_normal((M, D), dtype=np.float32)
    b = rng.standard_normal(M, dtype=np.float32)
    dy = rng.standard_normal((N, M), dtype=np.float32)
    flops = 3 * 2.0 * N * D * M

    def step(x, w, b, dy, method):
        y, cache = F_.linear_forward(x, w, b, method=method)
        return F_.linear_backward(dy, cache)

    limit = gemm_rate(N, D, M, repeat=max(3, repeat))
    rows = []
    for method in ("naive", "fast"):
        step(x[:1, :4], w[:2, :4], b[:2], dy[:1, :2], method)
        seconds, times = measure(lambda: step(x, w, b, dy, method), repeat)
        rows.append(Row(method, seconds, flops / seconds / 1e9, 0.0, 0.0, times=times))
    limit = max(limit, gemm_rate(N, D, M, repeat=max(3, repeat)))
    torch_seconds = None
    if torch is not None:
        def build():
            tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
            tdy = torch.from_numpy(dy)

            def run():
                torch.autograd.backward(torch.nn.functional.linear(tx, tw, tb), tdy)
            return run
        torch_seconds = torch_time(build, repeat)
    return _finish(Table("linear", f"x {N}x{D}, w {M}x{D}", "GFLOP/s", limit, f"np.dot {N}x{D} @ {D}x{M}", rows),
                   torch_seconds)


def memory_op_forms(op) -> tuple[str, ...]:
    """The forms of ``op`` to time: ("naive", "fast"), or ("naive",) while it has no fast form."""
    from nbconv.functional import dispatch

    return tuple(m for m in ("naive", "fast") if m in dispatch.CPU[op])


def memory_op_methods(op, method):
    """(forward(x) -> (y, cache), backward(dout, cache)) of ``op`` in form ``method``, through
    nbconv.functional with the hyper-parameters of MEMORY_OPS."""
    import nbconv.functional as F_

    spec = MEMORY_OPS[op]
    return (lambda x: spec.forward(F_, x, method)), (lambda dy, cache: spec.backward(F_, dy, cache))


def bench_memory_op(op, shape=MAP_SHAPE, repeat=3, torch=None) -> Table:
    """Forward and backward of a memory-bound op on x of ``shape`` (float32), naive against fast."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    S = x.nbytes
    fwd_bytes, bwd_bytes = BYTES[op][0] * S, BYTES[op][1] * S
    limit_before = (copy_rate(int(fwd_bytes), repeat=max(3, repeat)), copy_rate(int(bwd_bytes), repeat=max(3, repeat)))
    rows = []
    for phase, nbytes in (("forward", fwd_bytes), ("backward", bwd_bytes)):
        for method in memory_op_forms(op):
            f, b = memory_op_methods(op, method)
            small = x[:1, :8, :4, :4].copy()
            y_small, c_small = f(small)
            b(np.ones_like(y_small), c_small)                # compile
            if phase == "forward":
                call = (lambda f=f: f(x))
            else:
                y, cache = f(x)
                dy = rng.standard_normal(y.shape, dtype=np.float32)
                call = (lambda b=b, dy=dy, cache=cache: b(dy, cache))
            seconds, times = measure(call, repeat)
            rows.append(Row(method, seconds, nbytes / seconds / 1e9, 0.0, 0.0, phase=phase, times=times))
    limit = max(limit_before[0], copy_rate(int(fwd_bytes), repeat=max(3, repeat)))
    limit_bwd = max(limit_before[1], copy_rate(int(bwd_bytes), repeat=max(3, repeat)))
    torch_fwd = MEMORY_OPS[op].torch
    if torch is not None:
        for row in rows:
            if row.method != rows[-1].method:            # the peer time beside the fastest form
                continue

            def build(phase=row.phase):
                tx = torch.from_numpy(x).requires_grad_(phase == "backward")
                if phase == "forward":
                    with torch.no_grad():
                        torch_fwd(torch, tx)
                    return lambda: _no_grad(torch, torch_fwd, tx)
                ty = torch_fwd(torch, tx)
                tdy = torch.ones_like(ty)
                return lambda: torch.autograd.grad(ty, tx, tdy, retain_graph=True)
            row.torch_seconds = torch_time(build, repeat)
    table = Table(op, "x " + "x".join(map(str, shape)), "GB/s", limit,
                  f"copying {fwd_bytes / 2**20:.0f} MiB (fwd) / {bwd_bytes / 2**20:.0f} MiB (bwd)", rows)
    for row in rows:
        naive = next(r for r in rows if r.phase == row.phase and r.method == "naive")
        row.speedup = naive.seconds / row.seconds
        row.fraction = row.rate / (limit if row.phase == "forward" else limit_bwd)
    table.limit_bwd = limit_bwd
    return table


def _no_grad(torch, fn, x):
    with torch.no_grad():
        return fn(torch, x)


def _finish(table: Table, torch_seconds) -> Table:
    naive = table.rows[0].seconds
    for row in table.rows:
        row.speedup = naive / row.seconds
        row.fraction = row.rate / table.limit
    if torch_seconds is not None:
        table.rows[-1].torch_seconds = torch_seconds      # one peer time per table, on the last row
    return table


def format_table(table: Table, show_torch: bool = False) -> str:
    limit_text = f"{table.limit:.1f} {table.unit}"
    if table.limit_bwd is not None:
        limit_text += f" fwd, {table.limit_bwd:.1f} {table.unit} bwd"
    lines = [f"{table.op}  {table.shape}   limit: {limit_text} ({table.limit_name})"]
    head = f"  {'phase':<9} {'method':<8} {'time ms':>10} {table.unit:>9} {'speedup':>8} {'of limit':>9}"
    if show_torch:
        head += f" {'torch ms':>9}"
    lines.append(head)
    for row in table.rows:
        line = (f"  {row.phase:<9} {row.method:<8} {row.seconds * 1e3:>10.2f} {row.rate:>9.1f} "
                f"{row.speedup:>7.1f}x {row.fraction:>8.0%}")
        if show_torch:
            line += f" {row.torch_seconds * 1e3:>9.2f}" if row.torch_seconds is not None else f" {'-':>9}"
        lines.append(line)
    im2col = [row for row in table.rows if row.method == "im2col"]
    if show_torch and im2col and table.torch_im2col_seconds:
        lines.append(f"  PyTorch's own im2col + GEMM (oneDNN off): {table.torch_im2col_seconds * 1e3:.2f} ms, "
                     f"im2col's time {im2col[0].seconds / table.torch_im2col_seconds:.2f}x that")
    return "\n".join(lines)


def summarize(tables) -> list[str]:
    """The issue's targets: medians over the conv shapes and the memory-bound ops."""
    lines = []
    conv = [t for t in tables if t.op == "conv2d"]
    for method, target in (("im2col", 0.60), ("blocked", 0.30)):
        fractions = [r.fraction for t in conv for r in t.rows if r.method == method]
        if fractions:
            lines.append(f"conv2d fwd+bwd, {method}: median {statistics.median(fractions):.0%} of the GEMM rate "
                         f"over {len(fractions)} shapes (target {target:.0%})")
    memory = [r.fraction for t in tables if t.op in MEMORY_OPS for r in t.rows if r.method == "fast"]
    if memory:
        lines.append(f"memory-bound ops (fast, fwd and bwd): median {statistics.median(memory):.0%} of the copy "
                     f"bandwidth over {len(memory)} rows, lowest {min(memory):.0%} (target 50%, lowest 25%)")
    for method, target in (("im2col", 1.2), ("blocked", 1.0)):
        ratios = [r.seconds / t.rows[-1].torch_seconds for t in conv for r in t.rows   # the peer time
                  if r.method == method and t.rows[-1].torch_seconds]                 # sits on the last row
        if ratios:
            lines.append(f"conv2d fwd+bwd, {method}: median {statistics.median(ratios):.2f}x PyTorch's time "
                         f"over {len(ratios)} shapes (target {target:.1f}x)")
    like = [r.seconds / t.torch_im2col_seconds for t in conv for r in t.rows
            if r.method == "im2col" and t.torch_im2col_seconds]
    if like:
        lines.append(f"conv2d fwd+bwd, im2col: median {statistics.median(like):.2f}x the time of PyTorch's own "
                     f"im2col + GEMM (oneDNN off) over {len(like)} shapes")
    return lines


# --------------------------------------------------------------------------- the command

def register(commands) -> None:
    from nbconv.cli import int_option
    p = commands.add_parser("bench", help="benchmark the kernels against the machine's GEMM and copy limits")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="full", action="store_false",
                      help="the quick set: the same layers on smaller batches (the default)")
    size.add_argument("--full", dest="full", action="store_true", help="the shapes of the performance issue")
    p.add_argument("--op", action="append", choices=ALL_OPS, help="benchmark only this op (repeatable)")
    p.add_argument("--method", action="append", choices=CONV_METHODS,
                   help="conv2d methods to time (repeatable; default all; speedups are over the first)")
    p.add_argument("--repeat", type=int_option(1), default=5,
                   help="timed runs per measurement, the best is kept (default 5)")
    p.add_argument("--json", metavar="PATH", help="also save every number as JSON")
    p.add_argument("--no-torch", action="store_true", help="leave out the PyTorch column even if torch is importable")
    p.add_argument("--train", action="store_true",
                   help="time whole training steps (forward, loss, backward, Adam) of three LeNet-style nets "
                        "instead, with each layer type's share (nbconv.bench_train; uses --repeat, --json, "
                        "--no-torch)")
    p.add_argument("--threads", type=int_option(1), default=None,
                   help="run with at most this many Numba and BLAS threads (restored afterwards; default: "
                        "as the process is set up). On a small or busy machine, threads that wait for each "
                        "other at every parallel region can cost more than they bring: compare --threads 1")
    p.set_defaults(func=run, full=False)


def run(args) -> int:
    from nbconv.cli import fail, output_path_problem

    if getattr(args, "json", None):             # found now, not after minutes of timing
        problem = output_path_problem(args.json, "--json")
        if problem:
            return fail("bench", problem)
    threads = getattr(args, "threads", None)
    if threads is None:
        return _run(args)
    from nbconv.training import thread_limit

    with thread_limit(threads):           # the header's thread counts show the limit
        return _run(args)


def _run(args) -> int:
    if getattr(args, "train", False):
        from nbconv import bench_train

        return bench_train.run(args)
    ops = args.op or list(ALL_OPS)
    torch = None if args.no_torch else torch_module()
    conv_shapes = CONV_SHAPES if args.full else QUICK_CONV_SHAPES
    map_shape = MAP_SHAPE if args.full else QUICK_MAP_SHAPE
    linear_shape = LINEAR_SHAPE if args.full else QUICK_LINEAR_SHAPE
    methods = args.method or list(CONV_METHODS)
    started = time.perf_counter()

    info = machine_info()
    print(f"nbconv bench ({'full' if args.full else 'quick'} set, float32, best of 2 x {args.repeat} runs, "
          f"wall clock)")
    print(format_machine(info))
    if torch is not None:
        print(torch_header(torch.__version__, torch.get_num_threads(), ops, methods))
    print()
    tables = []

    def show(table):
        tables.append(table)
        print(format_table(table, show_torch=torch is not None), flush=True)
        print()

    if "conv2d" in ops:
        for shape in conv_shapes:
            show(bench_conv(shape, methods, args.repeat, torch))
    if "linear" in ops:
        show(bench_linear(linear_shape, args.repeat, torch))
    for op in MEMORY_OPS:
        if op in ops:
            show(bench_memory_op(op, map_shape, args.repeat, torch))
    for line in summarize(tables):
        print(line)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        payload = {"machine": info, "set": "full" if args.full else "quick", "repeat": args.repeat,
                   "summary": summarize(tables),
                   "tables": [asdict_table(t) for t in tables]}
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"saved {args.json}")
    return 0


def asdict_table(table: Table) -> dict:
    d = {"op": table.op, "shape": table.shape, "unit": table.unit, "limit": table.limit,
         "limit_name": table.limit_name, "rows": [asdict(r) for r in table.rows]}
    if table.limit_bwd is not None:
        d["limit_backward"] = table.limit_bwd
    if table.torch_im2col_seconds is not None:
        d["torch_im2col_seconds"] = table.torch_im2col_seconds
    return d


if __name__ == "__main__":  # pragma: no cover
    from nbconv.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
