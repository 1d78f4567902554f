"""The fast convolution methods: how "im2col" and "blocked" drive their kernels (and, on the
GPU, "im2col" and "fast").

``nbconv.functional.conv`` checks the arguments and picks a method through the tables of
``nbconv.functional.dispatch`` (CONV, and conv_cuda_table for device arrays); their entries
other than the naive nest are the functions here, with the naive kernel's signature, so that
every method is called alike:

    forward(x, w, b, y, SH, SW, PH, PW, DH, DW, groups)              writes y
    backward(dy, x, w, dx, dw, db, SH, SW, PH, PW, DH, DW, groups)   writes dx, dw, db

  - ``im2col_forward`` / ``im2col_backward``: im2col + GEMM, one matrix product per group and
    batch chunk.  The lowering kernels are the fast path of ``nbconv.kernels.im2col`` (a "wide"
    layout whose columns are straight copies, chunks of the batch whose X_col fits COLS_BUDGET
    bytes of cache, prange over independent pieces); the GEMMs are NumPy's np.dot, the BLAS
    whose rate ``nbconv bench`` takes as the machine's limit.
  - ``blocked_forward`` / ``blocked_backward``: the optimized direct kernels of
    ``nbconv.kernels.conv`` (polyphase padding, shifted contiguous rows, register tiles of
    explicit vectors over the whole sum, prange over independent outputs); no BLAS.  The
    forward and dx are one kernel, ``conv2d_tiles``, which writes y's own rows (and at stride
    1 dx's) where that takes no more vectors than the wide layout, and saves the crop; dw is
    ``conv2d_dw_lanes`` (the filters in the vector lanes), or ``conv2d_dw_tiles`` for groups
    of fewer filters than a vector.  "fast" and "auto" are this method on the CPU.
  - ``im2col_forward_cuda`` / ``im2col_backward_cuda``: the GPU's "im2col" (CUDA device
    arrays), the teaching form: the lowering kernels of ``nbconv.kernels.cuda.im2col`` and the
    register-blocked Numba product of ``nbconv.kernels.cuda.gemm``, every group in one launch;
    X_col in a new device array, recomputed in the backward.
  - ``fast_forward_cuda`` / ``fast_backward_cuda``: the GPU's "fast": the same lowering with the
    library GEMM (``gemm.fast_matmul``: cuBLAS through CuPy when CuPy is installed and a GPU
    runs it, the Numba product otherwise), its arrays from the device workspace (below).

Both CPU methods see the input in the polyphase layout (``_Polyphase``: zero-padded, split into
its stride phases, every kernel tap at a fixed offset); see "The optimized direct convolution"
in ``nbconv.kernels.conv``.

Scratch memory (CPU).  The fast methods need large temporary arrays (im2col's X_col is KH*KW
times the input).  They live in a per-thread workspace, reused by every later call and grown when a
call needs more, so a training loop does not allocate (and page-fault) them at every step.
Nothing in a cache ever points into the workspace: im2col's backward recomputes X_col from x
instead of keeping the forward's copy.  Keeping it would cost one X_col per layer until its
backward (9x the input for a 3x3 kernel), and a reused buffer kept in a cache would be
overwritten by the next layer of the same shape before the first one's backward ran.
Recomputing costs one more im2col pass, a memory-bound copy much cheaper than the GEMMs.
``release_workspace()`` frees the calling thread's buffers.

Device memory (the GPU's "fast" method).  Its scratch arrays (the GEMM's rows y_rows and
dy_rows) come from a ``DeviceWorkspace`` (``nbconv.kernels.cuda.workspace``; ``device_workspace()``),
one buffer per role reused by every call and grown when a call needs more.  X_col is built once
per forward and KEPT for the backward, under the forward's x (the cache's x is the same
object): the backward reads it, writes dX_col over it once dW has been computed, and hands it
back; the next forward of that shape reuses it, so a training step of constant shapes
allocates nothing after its first steps.  That holds one X_col per layer from its forward to
its backward (9x the input for a 3x3 kernel); an X_col whose backward never comes (evaluation)
is handed back when its x is garbage-collected.  It assumes what nbconv's ops do: x is not
changed in place between the forward and the backward.

Threads.  The blocked method runs on Numba's threads only.  The im2col method alternates
Numba kernels and BLAS calls, two thread pools that each keep spinning for a while after their
work; on a small machine they take each other's cores.  Its lowering therefore runs on the
calling thread (IM2COL_NUMBA_THREADS = 1) and leaves every core to the GEMMs, which do
nearly all the arithmetic.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cached_property, lru_cache

import numba
import numpy as np

from nbconv.kernels import conv as conv_kernels
from nbconv.kernels import im2col as im2col_kernels
from nbconv.kernels import simd
from nbconv import devices

__all__ = ["im2col_forward", "im2col_backward", "blocked_forward", "blocked_backward",
           "im2col_forward_cuda", "im2col_backward_cuda", "fast_forward_cuda", "fast_backward_cuda",
           "device_workspace", "release_workspace"]


# --- im2col: parallel lowering kernels, NumPy's GEMM -----------------------------------------------

def im2col_forward(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y = W_row @ X_col + b, per batch chunk one GEMM per group."""
    geo = _geometry(x.shape, w.shape, (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), *y.shape[2:], groups)
    with _numba_threads(IM2COL_NUMBA_THREADS):
        _im2col_forward(x, w, b, y, groups, geo)


def im2col_backward(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dW_row = dY @ X_col^T, dX_col = W_row^T @ dY then col2im, db = the sums of dY's rows."""
    geo = _geometry(x.shape, w.shape, (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), *dy.shape[2:], groups)
    with _numba_threads(IM2COL_NUMBA_THREADS):
        _im2col_backward(dy, x, w, dx, dw, db, groups, geo)


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


# X_col of one batch chunk is kept under this many bytes, so that im2col writes it into the cache
# and the GEMMs read it from there (the L3 of a small machine; bench/ measures the effect).
COLS_BUDGET = 4 * 2**20


def _batch_chunk(N: int, per_sample: int, dtype) -> int:
    """Samples per im2col chunk: as many as fit COLS_BUDGET (at least 1, at most N)."""
    return max(1, min(N, COLS_BUDGET // max(1, per_sample * np.dtype(dtype).itemsize)))


# --- blocked: the optimized direct kernels on the polyphase layout -------------------------------

def blocked_forward(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y, bias included, from the tiles: straight into y on its rows (``_Polyphase.output_grid``),
    or into the wide output yw, then cropped."""
    N, F, OH, OW = y.shape
    _, Cg, KH, KW = w.shape
    geo = _geometry(x.shape, w.shape, (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), OH, OW, groups,
                    _lanes(x.dtype))
    xq = geo.padded(x)
    grid, into_y = geo.output_grid
    out = y.reshape(N, F, OH * OW) if into_y else _workspace.get("wide", (N, F, OH * geo.Wq), x.dtype)
    conv_kernels.conv2d_tiles(xq, w.reshape(F, Cg * KH * KW), geo.terms, b, out, groups, grid)
    if not into_y:
        conv_kernels.crop_wide(out, y, geo.Wq)


def blocked_backward(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dy widened after ``front`` zeros (db on the way), then dw, and dx as a gather on the
    polyphase layout: into dx's own rows at stride 1 (``_Polyphase.dx_rows``), else into dxq,
    cropped back.

    dx is the forward's loop nest run backwards: the forward adds w[f, c, kk] * xq[c, taps[kk] + t]
    into yw[f, t], so input position s receives

        dxq[c, s] = sum_{f, kk} w[f, c, kk] * dyw[f, s - taps[kk]]

    (dyw is 0 outside the kept outputs).  That is ``conv2d_tiles`` again, with the channels as
    its output rows, the filters' dy rows as its input, w transposed to (C, Fg*KH*KW), and the
    offsets front - taps[kk] into dy rows that start with ``front`` zeros.  With a stride, the
    positions of each stride phase of xq gather only the taps that read that phase (the others
    would meet zeros): one call per phase, whose positions s and taps lie in one phase plane, so
    that s - taps[kk] >= -(the tap's offset within its plane): ``front`` is the largest of
    those, and a dy row needs front + Hq*Wq entries, not front + the whole polyphase layout.

    dw[f, c, kk] = sum_{n, t} dyw[n, f, front + t] * xq[n, c, taps[kk] + t], the forward's sum
    with the weights as the unknowns: when a group has a vector's worth of filters (16 float32,
    8 float64) and LANES_FROM_TERMS terms, dy is transposed to positions by filters and
    conv2d_dw_lanes keeps 12 terms by 32 (16) filters in registers over all (n, t); narrower
    groups and short sums take conv2d_dw_tiles's dot products along the positions.
    """
    N, F, OH, OW = dy.shape
    C = x.shape[1]
    _, Cg, KH, KW = w.shape
    Fg = F // groups
    geo = _geometry(x.shape, w.shape, (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w), OH, OW, groups,
                    _lanes(x.dtype))
    if geo.wide_is_output:                        # dy is its own wide layout (no front, no junk)
        dyw = dy.reshape(N, F, OH * OW)
        conv_kernels.bias_grad(dyw, db)
    else:
        dyw = _workspace.get("wide", (N, F, geo.dy_row), x.dtype)  # rows: front zeros, dy, zeros
        conv_kernels.widen_with_bias_grad(dy, dyw, db, geo.Wq, geo.front)
    xq = geo.padded(x)
    if Fg >= _lanes(x.dtype) and Cg * KH * KW >= LANES_FROM_TERMS:      # filters in the lanes
        _dw_by_lanes(dy, xq, geo.terms, dw.reshape(F, Cg * KH * KW), groups, geo.Wq, geo.L)
    else:
        _dw_by_tiles(dyw, geo.front, xq, geo.terms, dw.reshape(F, Cg * KH * KW), groups, geo.L, x.dtype)
    dxq = dx.reshape(N, C, -1) if geo.dx_rows else geo.gradient_buffer(dx)
    w_t = w.reshape(groups, Fg, Cg, KH * KW).transpose(0, 2, 1, 3)           # (G, Cg, Fg, KK)
    no_bias = np.zeros(C, x.dtype)
    for kk, gather, grid in geo.dx_phases:
        # the stride phases one by one: the positions of phase p only receive the taps kk of
        # phase p, and only those that hold pixels of x are computed (the crop drops the padding's)
        w_p = np.ascontiguousarray(w_t[..., kk]).reshape(C, Fg * kk.size)
        conv_kernels.conv2d_tiles(dyw, w_p, gather, no_bias, dxq, groups, grid)
    if not geo.dx_rows:
        geo.crop(dxq, dx)


def _dw_by_lanes(dy, xq, offsets, dw_terms, groups, Wq, L):
    """dw through conv2d_dw_lanes: dy by position first (in blocks of 2 vectors of filters), the
    terms padded to a multiple of 12 (the last one repeated), dw_t's rows transposed back to dw's
    and the scratch rows dropped."""
    N, F = dy.shape[:2]
    T = offsets.size
    B = 2 * _lanes(dy.dtype)                                                  # filters a block
    filter_blocks = -(-(F // groups) // B) * groups
    dyt = _workspace.get("dyt", (N, filter_blocks, L, B), dy.dtype)
    conv_kernels.dy_by_position(dy, dyt, Wq, groups)
    padded = _repeat_last(offsets, 12)
    dw_t = _workspace.get("dw", (padded.size, F), dy.dtype)
    tiles = padded.size // 12 * filter_blocks
    conv_kernels.conv2d_dw_lanes(dyt, xq, padded, dw_t, groups, DW_CHUNK, max(1, min(8, tiles // 8)))
    dw_terms[:] = dw_t[:T].T


# dw takes the lane tiles from this many terms (Cg*KH*KW) per group: transposing dy costs about
# as much as 60-100 terms' worth of the lane kernel's gain over the dot products, measured on the
# 2-core AVX-512 machine (1x1 with 64 channels: 64 terms, both 3.2 ms; 3 channels of 3x3, 27
# terms: the dot products 0.6-1.0 ms, lanes 1.1-1.5; 64 channels of 3x3, 576 terms: 9.2-17.6
# against 7.3-13.0).
LANES_FROM_TERMS = 128

# conv2d_dw_lanes runs each tile over chunks of this many positions: the chunk of dy by position
# (2 vectors of filters per position) is then reused from cache by all the tiles of a task.  Runs
# of up to 8 tiles per task, at least 8 tasks where there are 8 tiles (1024 and 8: the fastest of
# 64-1024 positions and 2-8 tiles at the benchmark shapes on the 2-core AVX-512 machine).
DW_CHUNK = 1024


def _lanes(dtype) -> int:
    """The lanes of one vector of nbconv.kernels.simd (64 bytes): 16 float32, 8 float64."""
    return simd.VECTOR_BYTES // np.dtype(dtype).itemsize


def _repeat_last(offsets, multiple):
    """The term offsets padded to a multiple of ``multiple`` entries by repeating the last (the
    dw kernels' tiles take terms 12 or 4 at a time; the repeated terms' sums are scratch)."""
    return np.concatenate([offsets, np.full(-offsets.size % multiple, offsets[-1], dtype=offsets.dtype)])


def _dw_by_tiles(dyw, front, xq, offsets, dw_terms, groups, L, dtype):
    """dw through conv2d_dw_tiles: its terms padded to a multiple of 4 (the last one repeated),
    its filters in blocks of 4 per group; the scratch rows and columns dropped on the way back."""
    F, T = dw_terms.shape
    Fg = F // groups
    nblocks = (Fg + 3) // 4
    padded = _repeat_last(offsets, 4)
    blocks = _workspace.get("dw", (groups * nblocks * 4, padded.size), dtype)
    conv_kernels.conv2d_dw_tiles(dyw, front, xq, padded, blocks, groups, L, _chunk(dtype))
    f = np.arange(F)
    dw_terms[:] = blocks[(f // Fg * nblocks * 4) + f % Fg, :T]


# dy's wide rows (dyw) start and end on multiples of this many elements (64 bytes of float32, two
# lines of float64), so that dw's loads of dy, whole vectors from chunk starts, each read one
# cache line: they are half of dw's loads, and a vector that straddles two lines costs two.
ROW_ALIGN = 16


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# The blocked dw kernel works on chunks of this many bytes of each row, so that its 8 rows
# (4 dy rows and 4 inputs) stay in a 32 KiB L1 cache.
BLOCKED_CHUNK_BYTES = 4096


def _chunk(dtype) -> int:
    """Positions per inner-loop chunk of the blocked dw kernel."""
    return max(1, BLOCKED_CHUNK_BYTES // np.dtype(dtype).itemsize)


def _inside(offset: int, step: int, size: int, count: int) -> tuple[int, int]:
    """[lo, hi): the u < count with 0 <= u*step + offset < size (lo >= hi when there is none; the
    same bounds as the rows of pad_polyphase in nbconv.kernels.conv)."""
    lo = -(offset // step) if offset < 0 else 0
    hi = min(count, (size - 1 - offset) // step + 1) if size - 1 - offset >= 0 else 0
    return lo, hi


class _Polyphase:
    """The fast kernels' view of the input: zero-padded and split into SH*SW stride phases of
    Hq x Wq, and the offset ``taps[ki*KW + kj]`` of every kernel tap in a channel's planes
    (see ``nbconv.kernels.conv``, "The optimized direct convolution")."""

    def __init__(self, x_shape, w_shape, stride, padding, dilation, OH, OW, groups=1, lanes=16):
        N, C, H, W = x_shape
        KH, KW = w_shape[2], w_shape[3]
        (SH, SW), (PH, PW), (DH, DW) = stride, padding, dilation
        self.shape, self.stride, self.padding = x_shape, stride, padding
        self.w_shape, self.groups, self.lanes = w_shape, groups, lanes
        self.OH, self.OW = OH, OW
        self.Hq = -(-(H + 2 * PH) // SH)
        self.Wq = -(-(W + 2 * PW) // SW)
        ki = np.arange(KH)[:, None] * DH
        kj = np.arange(KW)[None, :] * DW
        taps = ((ki % SH) * SW + kj % SW) * self.Hq * self.Wq + (ki // SH) * self.Wq + kj // SW
        self.taps = np.ascontiguousarray(taps.reshape(-1), dtype=np.int64)
        self.plane = SH * SW * self.Hq * self.Wq
        self.identity = (SH, SW, PH, PW) == (1, 1, 0, 0)        # xq is x, viewed as (N, C, H*W)
        self.wide_is_output = self.identity and (KH, KW) == (1, 1)   # and the wide output is y (Wq = OW)
        self.L = (OH - 1) * self.Wq + OW          # one past the last wide output position that is kept

    def inside(self, p):
        """The positions [start, stop) of stride phase p that hold the pixels of x (the first
        row's first pixel to the last row's last one), for gathering dx."""
        (_, H, W), (SH, SW), (PH, PW) = self.shape[1:], self.stride, self.padding
        ph, pw = divmod(p, SW)
        u_lo, u_hi = _inside(ph - PH, SH, H, self.Hq)
        v_lo, v_hi = _inside(pw - PW, SW, W, self.Wq)
        if u_lo >= u_hi or v_lo >= v_hi:
            return 0, 0
        base = p * self.Hq * self.Wq
        return base + u_lo * self.Wq + v_lo, base + (u_hi - 1) * self.Wq + v_hi

    def term_offsets(self, Cg):
        """Where term k = c*KH*KW + tap of the sum reads a group's input: c*plane + taps[tap]."""
        return (np.arange(Cg)[:, None] * self.plane + self.taps[None, :]).reshape(-1)

    @cached_property
    def terms(self):
        """term_offsets of the weights' channels per group (w_shape[1])."""
        return self.term_offsets(self.w_shape[1])

    @cached_property
    def front(self):
        """The zeros before each of dx's dy rows: the largest tap offset within its phase plane
        (see blocked_backward), rounded up so that the rows start on a 64-byte line."""
        return _round_up(int((self.taps % (self.Hq * self.Wq)).max()), ROW_ALIGN)

    @cached_property
    def dy_row(self):
        """The length of a dy row for dx and dw: front zeros, then one phase plane (dy's own rows
        when the wide output is y)."""
        if self.wide_is_output:
            return self.Hq * self.Wq
        return _round_up(self.front + self.Hq * self.Wq, ROW_ALIGN)

    @cached_property
    def output_grid(self):
        """(grid, into_y): where conv2d_tiles computes the forward.  y's own rows (OH rows of OW,
        read at i*Wq + j, written at i*OW + j: no junk computed, no crop) when they take no more
        vectors than the wide layout, each row's last vector being partial (float32: a row of 32
        takes 2 vectors where a wide row of 34 takes about 2.1, but a row of 8 takes a whole one
        where a wide row of 10 takes 0.6); otherwise the wide positions t < L, written at t into
        yw, which is y when the wide output is y."""
        OH, OW, Wq, L, V = self.OH, self.OW, self.Wq, self.L, self.lanes
        if OH * -(-OW // V) <= -(-L // V):
            return conv_kernels.Grid(OH, OW, 0, Wq, 0, OW), True
        return conv_kernels.wide_row(0, L), self.wide_is_output

    @cached_property
    def dx_rows(self):
        """True when dx's gather computes dx's own rows (H rows of W, read at (i + PH)*Wq + j + PW
        of the padded plane, written at i*W + j of dx: no crop): at stride 1 with padding, when
        they take no more vectors than the span of the pixels in the padded plane."""
        if self.identity or self.stride != (1, 1):
            return False
        (H, W), V = self.shape[2:], self.lanes
        start, stop = self.inside(0)
        return H * -(-W // V) <= -(-(stop - start) // V)

    @cached_property
    def dx_phases(self):
        """(kk, gather, grid) for every stride phase that holds pixels of x: the taps kk that read
        it, where term (f, kk) of dx's gather reads the dy rows, f*dy_row + front - taps[kk], for
        the Fg filters of a group, and the grid of positions it computes: dx's rows
        (``dx_rows``), or the positions [start, stop) of the phase that hold pixels of x
        (``inside``), written at the same place of dxq.  A phase that no tap reads has kk empty
        and still gets its zeros."""
        phase = self.Hq * self.Wq
        Fg = self.w_shape[0] // self.groups
        (H, W), (PH, PW) = self.shape[2:], self.padding
        phases = []
        for p in range(self.stride[0] * self.stride[1]):
            start, stop = self.inside(p)
            if start < stop:
                kk = np.flatnonzero(self.taps // phase == p)
                gather = (np.arange(Fg)[:, None] * self.dy_row + (self.front - self.taps[kk])[None, :]).reshape(-1)
                if self.dx_rows:
                    grid = conv_kernels.Grid(H, W, PH * self.Wq + PW, self.Wq, 0, W)
                else:
                    grid = conv_kernels.wide_row(start, stop - start)
                phases.append((kk, gather, grid))
        return tuple(phases)

    def padded(self, x):
        """x in the polyphase layout: a view of x itself when there is neither padding nor stride."""
        N, C = self.shape[:2]
        if self.identity:
            return x.reshape(N, C, self.plane)
        xq = _workspace.get("xq", (N, C, self.plane), x.dtype)
        conv_kernels.pad_polyphase(x, xq, *self.stride, *self.padding, self.Hq, self.Wq)
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
            conv_kernels.crop_polyphase(dxq, dx, *self.stride, *self.padding, self.Hq, self.Wq)


# The geometry of a convolution, computed once per shape: a training loop calls every layer with
# the same shapes at every step, and building it (the offsets above, a few NumPy operations each)
# took about 50 microseconds per call, a fifth of the Python time of a digits layer's backward.
# Its arrays are shared by every call of that shape; the kernels only read them (they stay
# writable: a read-only array is another type to Numba, and every kernel would compile twice).
_geometry = lru_cache(maxsize=256)(_Polyphase)


# --- scratch memory --------------------------------------------------------------------------------

class _Workspace(threading.local):
    """Scratch arrays of the calling thread, one flat buffer per (role, dtype), grown on demand.

    ``get`` returns a C-contiguous view of the first prod(shape) elements, starting on a 64-byte
    boundary (a cache line, and one vector of nbconv.kernels.simd: rows whose length is a multiple
    of 64 bytes then load whole vectors from one line each).  Within one call every array has its
    own role; no view outlives the call that asked for it.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, role: str, shape: tuple, dtype) -> np.ndarray:
        size = 1
        for extent in shape:
            size *= int(extent)
        dtype = np.dtype(dtype)
        key = (role, dtype)
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < size:
            raw = np.empty(size * dtype.itemsize + ALIGNMENT, dtype=np.uint8)
            start = -raw.ctypes.data % ALIGNMENT
            buffer = raw[start:start + size * dtype.itemsize].view(dtype)
            self.buffers[key] = buffer
        return buffer[:size].reshape(shape)


ALIGNMENT = 64          # bytes: where every workspace array starts


_workspace = _Workspace()


def release_workspace() -> None:
    """Free the scratch buffers the fast conv methods keep for the calling thread, and the
    device workspace of the GPU's "fast" method (once nothing else refers to its arrays)."""
    _workspace.buffers.clear()
    if _device_workspace is not None:
        _device_workspace.clear()


# --- im2col on the GPU: the lowering kernels of nbconv.kernels.cuda.im2col and a GEMM ------------

def im2col_forward_cuda(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The device's "im2col" method, the teaching form: im2col + the register-blocked Numba product
    (every group in one launch), X_col (G, Cg*KH*KW, N*OH*OW) in a new device array."""
    from nbconv.kernels.cuda import im2col as cuda_im2col        # numba.cuda only with a device array

    N, F, OH, OW = y.shape
    _, Cg, KH, KW = w.shape
    cols = devices.empty((groups, Cg * KH * KW, N * OH * OW), x.dtype, devices.CUDA)
    cuda_im2col.conv2d_forward_im2col(x, w.reshape(groups, F // groups, Cg * KH * KW), b, y, cols, KH, KW,
                                      stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)


def im2col_backward_cuda(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dx, dw, db on the device: im2col's backward on X_col recomputed from x, as on the CPU."""
    from nbconv.kernels.cuda import im2col as cuda_im2col

    N, F, OH, OW = dy.shape
    _, Cg, KH, KW = w.shape
    hyper = (stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)
    cols = devices.empty((groups, Cg * KH * KW, N * OH * OW), x.dtype, devices.CUDA)
    cuda_im2col.im2col(x, cols, KH, KW, *hyper, OH, OW)
    cuda_im2col.conv2d_backward_im2col(dy, cols, w.reshape(groups, F // groups, Cg * KH * KW), dx,
                                       dw.reshape(groups, F // groups, Cg * KH * KW), db, KH, KW, *hyper)


def fast_forward_cuda(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The device's "fast" method: im2col + the library GEMM (``gemm.fast_matmul``: cuBLAS when
    CuPy is there), with its arrays from the device workspace:

        X_col  = im2col(x)              kept for x, for the backward (workspace.keep)
        Y_row  = W_row @ X_col          per group, into scratch y_rows
        y      = Y_row reordered + b
    """
    from nbconv.kernels.cuda import gemm, im2col as cuda_im2col

    N, F, OH, OW = y.shape
    _, Cg, KH, KW = w.shape
    hyper = (stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)
    workspace = device_workspace()
    L = N * OH * OW
    cols = workspace.keep(x, _columns_key(w, hyper, groups), (groups, Cg * KH * KW, L), x.dtype)
    cuda_im2col.im2col(x, cols, KH, KW, *hyper, OH, OW)
    y_rows = workspace.scratch("y_rows", (groups, F // groups, L), x.dtype)
    gemm.fast_matmul(w.reshape(groups, F // groups, Cg * KH * KW), cols, y_rows)
    cuda_im2col.rows_to_output(y_rows, b, y)


def fast_backward_cuda(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The backward of the device's "fast" method, on the X_col its forward kept:

        dY     = dy reordered as the GEMM's rows      scratch dy_rows; db = the sums of its rows
        dW_row = dY @ X_col^T                          per group
        dX_col = W_row^T @ dY                          written over X_col, which dW no longer needs
        dx     = col2im(dX_col)

    then X_col is handed back to the workspace.  Without a kept X_col (a second backward of the
    same forward) it is recomputed from x into scratch.
    """
    from nbconv.kernels.cuda import gemm, im2col as cuda_im2col

    N, F, OH, OW = dy.shape
    _, Cg, KH, KW = w.shape
    hyper = (stride_h, stride_w, pad_h, pad_w, dil_h, dil_w)
    workspace = device_workspace()
    key = _columns_key(w, hyper, groups)
    L = N * OH * OW
    cols = workspace.kept(x, key)
    if cols is None:
        cols = workspace.scratch("cols", (groups, Cg * KH * KW, L), x.dtype)
        cuda_im2col.im2col(x, cols, KH, KW, *hyper, OH, OW)
    dy_rows = workspace.scratch("dy_rows", (groups, F // groups, L), dy.dtype)
    cuda_im2col.output_to_rows(dy, dy_rows)
    cuda_im2col.row_sums(dy_rows, db)
    w_rows, dw_rows = w.reshape(groups, F // groups, Cg * KH * KW), dw.reshape(groups, F // groups, Cg * KH * KW)
    gemm.fast_matmul(dy_rows, cols, dw_rows, trans_b=True)          # dW_row = dY @ X_col^T
    gemm.fast_matmul(w_rows, dy_rows, cols, trans_a=True)           # dX_col = W_row^T @ dY, over X_col
    cuda_im2col.col2im(cols, dx, KH, KW, *hyper, OH, OW)
    workspace.release(x, key)


def _columns_key(w, hyper, groups) -> tuple:
    """What X_col depends on besides x: the kernel size, stride, padding, dilation and groups."""
    return ("cols", w.shape[2], w.shape[3], *hyper, groups)


_device_workspace = None


def device_workspace():
    """The device workspace of the "fast" GPU method (nbconv.kernels.cuda.workspace), made on
    the first call, so that numba.cuda is imported only with a device array."""
    global _device_workspace
    if _device_workspace is None:
        from nbconv.kernels.cuda.workspace import DeviceWorkspace
        _device_workspace = DeviceWorkspace()
    return _device_workspace
