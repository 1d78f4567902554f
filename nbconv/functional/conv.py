"""conv2d and conv1d: cross-correlation with stride, padding, dilation and groups.

Three methods compute the same numbers (to rounding); the names every op takes map onto them
(``ALIASES``): "naive" is "direct", "fast" and "auto" are "im2col".
  - ``"direct"``: the naive loop nest of ``nbconv.kernels.conv``, the teaching reference;
  - ``"im2col"`` (default): im2col + GEMM, one matrix product per group and batch chunk.  The
    lowering kernels are the fast path of ``nbconv.kernels.im2col`` (a "wide" layout whose
    columns are straight copies, chunks of the batch whose X_col fits COLS_BUDGET bytes of
    cache, prange over independent pieces); the GEMMs are NumPy's np.dot, the BLAS whose rate
    ``nbconv bench`` takes as the machine's limit.  The naive im2col kernels of that module
    (``im2col``, ``col2im``, ``conv2d_forward_im2col``) are the reference it is tested against;
  - ``"blocked"``: the optimized direct kernel of ``nbconv.kernels.conv``: polyphase padding,
    shift-and-add over contiguous rows, 4 output channels per inner loop, prange over
    independent outputs; no BLAS.

The fast methods add their sums in another order (BLAS, fastmath), so they agree with the
naive nest to rounding, not bit for bit.  Problems with an empty dimension run the naive nest.

conv1d is conv2d on signals of height 1: x (N, C, L) is viewed as (N, C, 1, L)
and w (F, C // G, K) as (F, C // G, 1, K), so every method serves it unchanged.

Scratch memory.  The fast methods need large temporary arrays (im2col's X_col is KH*KW times
the input).  They live in a per-thread workspace, reused by every later call and grown when a
call needs more, so a training loop does not allocate (and page-fault) them at every step.
Nothing in a cache ever points into the workspace: im2col's backward recomputes X_col from x
instead of keeping the forward's copy.  Keeping it would cost one X_col per layer until its
backward (9x the input for a 3x3 kernel), and a reused buffer kept in a cache would be
overwritten by the next layer of the same shape before the first one's backward ran.
Recomputing costs one more im2col pass, a memory-bound copy much cheaper than the GEMMs.
``release_workspace()`` frees the calling thread's buffers.

Threads.  The blocked method runs on Numba's threads only.  The im2col method alternates
Numba kernels and BLAS calls, two thread pools that each keep spinning for a while after their
work; on a small machine they take each other's cores.  Its lowering therefore runs on the
calling thread (IM2COL_NUMBA_THREADS = 1) and leaves every core to the GEMMs, which do
nearly all the arithmetic.

On the GPU (CUDA device arrays in, see ``_device``) the methods map to the CUDA twins of the
naive kernels: ``"direct"`` runs nbconv.kernels.cuda.conv (one thread per output, the backward
gathered per input pixel); ``"im2col"`` runs nbconv.kernels.cuda.im2col (im2col, the tiled
shared-memory matrix product, col2im; X_col is recomputed in the backward, as on the CPU);
``"blocked"`` is a CPU optimization (polyphase layout, cache-sized chunks) with no GPU
counterpart and runs the direct kernels.  Outputs, gradients and the cache stay on the device.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from nbconv.kernels import conv as direct_kernels
from nbconv.kernels import im2col as im2col_kernels
from nbconv.shapes import conv_output_size
from . import _device
from ._checks import as_dout, as_float_array, as_int, as_pair, check_cache, check_shape, same_dtype

__all__ = ["Conv2dCache", "conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward"]

METHODS = ("direct", "im2col", "blocked")
# the names every op takes (nbconv.functional.dispatch), and the conv method each one means
ALIASES = {"naive": "direct", "fast": "im2col", "auto": "im2col"}


@dataclass(frozen=True)
class Conv2dCache:
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    method: str


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="im2col"):
    """x (N, C, H, W), w (F, C // groups, KH, KW), b (F,) or None -> y (N, F, OH, OW).

        y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*S - P + ki*D, j*S - P + kj*D]

    with OH = floor((H + 2P - D(KH - 1) - 1) / S) + 1 and likewise OW.
    """
    device = _device.device_of(x=x, w=w, b=b)
    x = as_float_array("x", x, ndim=4)
    w = as_float_array("w", w, ndim=4)
    same_dtype("x", x, w=w)
    stride = as_pair("stride", stride, 1)
    padding = as_pair("padding", padding, 0)
    dilation = as_pair("dilation", dilation, 1)
    groups = as_int("groups", groups, 1)
    if not isinstance(method, str) or method not in METHODS + tuple(ALIASES):
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in METHODS + tuple(ALIASES))}, "
                         f"got {method!r}")
    method = ALIASES.get(method, method)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    if C % groups != 0:
        raise ValueError(f"groups={groups} must divide the input channels of x, got C={C} (x shape {x.shape})")
    if F % groups != 0:
        raise ValueError(f"groups={groups} must divide the output channels of w, got F={F} (w shape {w.shape})")
    if Cg != C // groups:
        raise ValueError(f"w must have C // groups = {C // groups} input channels to match x of shape {x.shape} "
                         f"with groups={groups}, got w shape {w.shape}")
    bias = _bias(b, F, x)
    OH = conv_output_size(H, KH, stride=stride[0], padding=padding[0], dilation=dilation[0], name="x height")
    OW = conv_output_size(W, KW, stride=stride[1], padding=padding[1], dilation=dilation[1], name="x width")

    if device == _device.CUDA:
        y = _device.empty((N, F, OH, OW), x.dtype, device)
        _conv2d_forward_cuda(x, w, bias, y, stride, padding, dilation, groups, method)
        return y, Conv2dCache(x, w, b is not None, stride, padding, dilation, groups, method)
    y = np.empty((N, F, OH, OW), dtype=x.dtype)
    if method == "direct" or x.size == 0 or w.size == 0 or y.size == 0:
        direct_kernels.conv2d_forward_direct(x, w, bias, y, *stride, *padding, *dilation, groups)
    elif method == "im2col":
        with _numba_threads(IM2COL_NUMBA_THREADS):
            _im2col_forward(x, w, bias, y, groups, _Polyphase(x.shape, w.shape, stride, padding, dilation, OH, OW))
    else:
        geo = _Polyphase(x.shape, w.shape, stride, padding, dilation, OH, OW)
        xq = geo.padded(x)
        yw = _workspace.get("wide", (N, F, OH * geo.Wq), x.dtype)
        direct_kernels.conv2d_forward_blocked(xq, w.reshape(F, Cg * KH * KW), geo.taps, yw, groups, OW, geo.Wq,
                                              _chunk(x.dtype))
        direct_kernels.crop_wide(yw, bias, y, geo.Wq)
    return y, Conv2dCache(x, w, b is not None, stride, padding, dilation, groups, method)


def conv2d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db); db is None when the forward had no bias."""
    check_cache(cache, Conv2dCache, "conv2d_forward")
    x, w = cache.x, cache.w
    device = _device.device_of(dout=dout, **{"the forward's x": x})
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH = conv_output_size(H, KH, stride=cache.stride[0], padding=cache.padding[0], dilation=cache.dilation[0])
    OW = conv_output_size(W, KW, stride=cache.stride[1], padding=cache.padding[1], dilation=cache.dilation[1])
    dy = as_dout(dout, (N, F, OH, OW), x.dtype)
    if device == _device.CUDA:
        dx, dw, db = _device.empty_like(x), _device.empty_like(w), _device.empty(F, x.dtype, device)
        _conv2d_backward_cuda(dy, x, w, dx, dw, db, cache)
        return dx, dw, (db if cache.has_bias else None)
    dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty(F, dtype=x.dtype)
    G = cache.groups
    if cache.method == "direct" or x.size == 0 or w.size == 0 or dy.size == 0:
        direct_kernels.conv2d_backward_direct(dy, x, w, dx, dw, db, *cache.stride, *cache.padding,
                                              *cache.dilation, G)
    elif cache.method == "im2col":
        geo = _Polyphase(x.shape, w.shape, cache.stride, cache.padding, cache.dilation, OH, OW)
        with _numba_threads(IM2COL_NUMBA_THREADS):
            _im2col_backward(dy, x, w, dx, dw, db, G, geo)
    else:
        geo = _Polyphase(x.shape, w.shape, cache.stride, cache.padding, cache.dilation, OH, OW)
        L = geo.L
        dyw = _workspace.get("wide", (N, F, OH * geo.Wq), x.dtype)
        direct_kernels.widen_with_bias_grad(dy, dyw, db, geo.Wq)
        xq = geo.padded(x)
        chunk = _chunk(x.dtype)
        direct_kernels.conv2d_backward_blocked_dw(dyw, xq, geo.taps, dw.reshape(F, Cg * KH * KW), G, L, chunk)
        dxq = geo.gradient_buffer(dx)
        direct_kernels.conv2d_backward_blocked_dx(dyw, w.reshape(F, Cg * KH * KW), geo.taps, dxq, G, L, chunk)
        geo.crop(dxq, dx)
    return dx, dw, (db if cache.has_bias else None)


def conv1d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="im2col"):
    """x (N, C, L), w (F, C // groups, K), b (F,) or None -> y (N, F, L_out).

        y[n, f, i] = b[f] + sum_{c, k} w[f, c, k] * x[n, g*Cg + c, i*S - P + k*D]

    Computed as conv2d on a signal of height 1.
    """
    _device.device_of(x=x, w=w, b=b)
    x = as_float_array("x", x, ndim=3)
    w = as_float_array("w", w, ndim=3)
    stride, padding, dilation = as_int("stride", stride, 1), as_int("padding", padding, 0), as_int("dilation", dilation, 1)
    if w.shape[2] >= 1:
        conv_output_size(x.shape[2], w.shape[2], stride=stride, padding=padding, dilation=dilation, name="x length")
    y, cache = conv2d_forward(_with_height(x), _with_height(w), b, stride=(1, stride),
                              padding=(0, padding), dilation=(1, dilation), groups=groups, method=method)
    return _without_height(y), cache


def conv1d_backward(dout, cache: Conv2dCache):
    """-> (dx, dw, db) for conv1d; db is None when the forward had no bias."""
    check_cache(cache, Conv2dCache, "conv1d_forward")
    dout = as_float_array("dout", dout, ndim=3)
    dx, dw, db = conv2d_backward(_with_height(dout), cache)
    return _without_height(dx), _without_height(dw), db


def _with_height(a):
    """(A, B, L) -> (A, B, 1, L): a view (an indexing view on the host, a reshape on the device)."""
    if _device.is_device_array(a):
        return a.reshape(a.shape[0], a.shape[1], 1, a.shape[2])
    return a[:, :, None, :]


def _without_height(a):
    """(A, B, 1, L) -> (A, B, L), the inverse view."""
    if _device.is_device_array(a):
        return a.reshape(a.shape[0], a.shape[1], a.shape[3])
    return a[:, :, 0, :]


def _bias(b, F, x):
    if b is None:
        return _device.zeros(F, x.dtype, _device.array_device(x))
    b = as_float_array("b", b, ndim=1)
    same_dtype("x", x, b=b)
    check_shape("b", b, (F,))
    return b


# --- on the GPU: the CUDA twins of the naive kernels ------------------------------------------------

def _conv2d_forward_cuda(x, w, bias, y, stride, padding, dilation, groups, method):
    """y on the device: the direct kernel ("direct", "blocked", or anything empty), else im2col +
    the tiled matmul with X_col (G, Cg*KH*KW, N*OH*OW) in a device scratch array."""
    if method != "im2col" or x.size == 0 or w.size == 0 or y.size == 0:
        _device.kernels("conv", _device.CUDA).conv2d_forward_direct(x, w, bias, y, *stride, *padding, *dilation,
                                                                    groups)
        return
    N, F, OH, OW = y.shape
    _, Cg, KH, KW = w.shape
    cols = _device.empty((groups, Cg * KH * KW, N * OH * OW), x.dtype, _device.CUDA)
    _device.kernels("im2col", _device.CUDA).conv2d_forward_im2col(
        x, w.reshape(groups, F // groups, Cg * KH * KW), bias, y, cols, KH, KW, *stride, *padding, *dilation)


def _conv2d_backward_cuda(dy, x, w, dx, dw, db, cache):
    """dx, dw, db on the device: the direct kernels, or im2col's backward on X_col recomputed from x."""
    G = cache.groups
    if cache.method != "im2col" or x.size == 0 or w.size == 0 or dy.size == 0:
        _device.kernels("conv", _device.CUDA).conv2d_backward_direct(dy, x, w, dx, dw, db, *cache.stride,
                                                                     *cache.padding, *cache.dilation, G)
        return
    N, F, OH, OW = dy.shape
    _, Cg, KH, KW = w.shape
    hyper = (*cache.stride, *cache.padding, *cache.dilation)
    kernels = _device.kernels("im2col", _device.CUDA)
    cols = _device.empty((G, Cg * KH * KW, N * OH * OW), x.dtype, _device.CUDA)
    kernels.im2col(x, cols, KH, KW, *hyper, OH, OW)
    kernels.conv2d_backward_im2col(dy, cols, w.reshape(G, F // G, Cg * KH * KW), dx,
                                   dw.reshape(G, F // G, Cg * KH * KW), db, KH, KW, *hyper)


# --- the im2col fast path: parallel lowering kernels, NumPy's GEMM --------------------------------

# Numba threads for the lowering kernels of the im2col method (None: Numba's setting).  The
# GEMMs between them run on the BLAS's own thread pool, and Numba's OpenMP workers keep
# spinning for milliseconds after each parallel kernel, taking cores from the BLAS threads that
# follow: on a 2-core machine a GEMM right after a parallel kernel ran at a quarter of its speed.
# The lowering is a small, memory-bound share of the work, so it runs on the calling thread and
# the GEMMs get every core (median over the benchmark shapes, 2 cores: 68% of the GEMM rate with
# one thread, 9% with Numba's two).  Set None to let the lowering use every core (e.g. with
# OMP_WAIT_POLICY=PASSIVE, or Numba's workqueue or TBB threading layer, whose workers sleep).
IM2COL_NUMBA_THREADS = 1


@contextmanager
def _numba_threads(count):
    """Run the block with at most ``count`` Numba threads (None: unchanged), then restore the setting."""
    if count is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(count, before)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _im2col_forward(x, w, bias, y, G, geo):
    """y = W_row @ X_col + b, per batch chunk one GEMM per group (nbconv.kernels.im2col, the
    fast path).  The GEMMs run here, through NumPy's np.dot into scratch (out=): the same BLAS
    whose rate ``nbconv bench`` measures as the machine's limit."""
    N, C = x.shape[:2]
    F, Cg, KH, KW = w.shape
    Fg, CKK, L = F // G, Cg * KH * KW, geo.L
    xq = geo.padded(x)
    chunk = _batch_chunk(N, G * CKK * L, x.dtype)
    cols_buffer = _workspace.get("cols", (G * CKK * chunk * L,), x.dtype)
    rows_buffer = _workspace.get("rows", (F * chunk * L,), x.dtype)
    w_rows = w.reshape(G, Fg, CKK)
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        cols = cols_buffer[:G * CKK * nb * L].reshape(G, CKK, nb * L)
        y_rows = rows_buffer[:F * nb * L].reshape(G, Fg, nb * L)
        im2col_kernels.im2col_wide(xq[n0:n0 + nb], geo.taps, cols, L)
        for g in range(G):
            np.dot(w_rows[g], cols[g], out=y_rows[g])                  # (Fg, CKK) @ (CKK, nb*L)
        im2col_kernels.rows_to_nchw(y_rows, bias, y[n0:n0 + nb], geo.Wq, L)


def _im2col_backward(dy, x, w, dx, dw, db, G, geo):
    """Per batch chunk and group: dW_row += dY @ X_col^T, dX_col = W_row^T @ dY, col2im.

    X_col is recomputed from x (see the module docstring), and dX_col overwrites it once dW
    no longer needs it: one X_col-sized scratch buffer in all."""
    N, C = x.shape[:2]
    F, Cg, KH, KW = w.shape
    Fg, CKK, L = F // G, Cg * KH * KW, geo.L
    xq = geo.padded(x)
    dxq = geo.gradient_buffer(dx)
    chunk = _batch_chunk(N, G * CKK * L, x.dtype)
    cols_buffer = _workspace.get("cols", (G * CKK * chunk * L,), x.dtype)
    rows_buffer = _workspace.get("rows", (F * chunk * L,), x.dtype)
    dw_part = _workspace.get("dw", (Fg, CKK), x.dtype)
    w_rows, dw_rows = w.reshape(G, Fg, CKK), dw.reshape(G, Fg, CKK)
    db[:] = 0.0
    for n0 in range(0, N, chunk):
        nb = min(chunk, N - n0)
        cols = cols_buffer[:G * CKK * nb * L].reshape(G, CKK, nb * L)
        dy_rows = rows_buffer[:F * nb * L].reshape(G, Fg, nb * L)
        im2col_kernels.nchw_to_rows(dy[n0:n0 + nb], dy_rows, db, geo.Wq, L)
        im2col_kernels.im2col_wide(xq[n0:n0 + nb], geo.taps, cols, L)
        for g in range(G):
            if n0 == 0:
                np.dot(dy_rows[g], cols[g].T, out=dw_rows[g])          # dW = dY @ X_col^T
            else:
                np.dot(dy_rows[g], cols[g].T, out=dw_part)
                dw_rows[g] += dw_part
            np.dot(w_rows[g].T, dy_rows[g], out=cols[g])               # dX_col = W^T @ dY, over X_col
        im2col_kernels.col2im_wide(cols, geo.taps, dxq[n0:n0 + nb], L)
    geo.crop(dxq, dx)


# --- scratch memory and the blocked method's geometry ---------------------------------------------

class _Workspace(threading.local):
    """Scratch arrays of the calling thread, one flat buffer per (role, dtype), grown on demand.

    ``get`` returns a C-contiguous view of the first prod(shape) elements.  Within one call every
    array has its own role; no view outlives the call that asked for it.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, role: str, shape: tuple, dtype) -> np.ndarray:
        size = 1
        for extent in shape:
            size *= int(extent)
        key = (role, np.dtype(dtype))
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size, dtype=dtype)
            self.buffers[key] = buffer
        return buffer[:size].reshape(shape)


_workspace = _Workspace()


def release_workspace() -> None:
    """Free the scratch buffers the fast conv methods keep for the calling thread."""
    _workspace.buffers.clear()


# X_col of one batch chunk is kept under this many bytes, so that im2col writes it into the cache
# and the GEMMs read it from there (the L3 of a small machine; bench/ measures the effect).
COLS_BUDGET = 4 * 2**20


def _batch_chunk(N: int, per_sample: int, dtype) -> int:
    """Samples per im2col chunk: as many as fit COLS_BUDGET (at least 1, at most N)."""
    return max(1, min(N, COLS_BUDGET // max(1, per_sample * np.dtype(dtype).itemsize)))


# The blocked kernels work on chunks of this many bytes of each row, so that the 4 output rows
# and 2 input rows of the inner loop stay in a 32 KiB L1 cache.
BLOCKED_CHUNK_BYTES = 4096


def _chunk(dtype) -> int:
    """Positions per inner-loop chunk of the blocked kernels."""
    return max(1, BLOCKED_CHUNK_BYTES // np.dtype(dtype).itemsize)


class _Polyphase:
    """The blocked kernels' view of the input: zero-padded and split into SH*SW stride phases of
    Hq x Wq, and the offset ``taps[ki*KW + kj]`` of every kernel tap in a channel's planes
    (see ``nbconv.kernels.conv``, "The optimized direct convolution")."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, OH, OW):
        N, C, H, W = x_shape
        KH, KW = w_shape[2], w_shape[3]
        (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
        self.shape, self.stride, self.padding = x_shape, stride, padding
        self.Hq = -(-(H + 2 * PH) // SH)
        self.Wq = -(-(W + 2 * PW) // SW)
        ki = np.arange(KH)[:, None] * DH
        kj = np.arange(KW)[None, :] * DW
        taps = ((ki % SH) * SW + kj % SW) * self.Hq * self.Wq + (ki // SH) * self.Wq + kj // SW
        self.taps = np.ascontiguousarray(taps.reshape(-1), dtype=np.int64)
        self.plane = SH * SW * self.Hq * self.Wq
        self.identity = (SH, SW, PH, PW) == (1, 1, 0, 0)        # xq is x, viewed as (N, C, H*W)
        self.L = (OH - 1) * self.Wq + OW          # one past the last wide output position that is kept

    def padded(self, x):
        """x in the polyphase layout: a view of x itself when there is neither padding nor stride."""
        N, C = self.shape[:2]
        if self.identity:
            return x.reshape(N, C, self.plane)
        xq = _workspace.get("xq", (N, C, self.plane), x.dtype)
        direct_kernels.pad_polyphase(x, xq, *self.stride, *self.padding, self.Hq, self.Wq)
        return xq

    def gradient_buffer(self, dx):
        """Where the backward kernels write dxq: dx itself when the layout is the identity."""
        N, C = self.shape[:2]
        if self.identity:
            return dx.reshape(N, C, self.plane)
        return _workspace.get("dxq", (N, C, self.plane), dx.dtype)

    def crop(self, dxq, dx):
        """dx from dxq (nothing to do when dxq is dx)."""
        if not self.identity:
            direct_kernels.crop_polyphase(dxq, dx, *self.stride, *self.padding, self.Hq, self.Wq)
