"""2-D convolution on the GPU, the naive mapping: the twin of nbconv.kernels.conv.

Convolution is cross-correlation (the kernel is not flipped).  Shapes, with G groups:
x (N, C, H, W), w (F, C // G, KH, KW), b (F,), y (N, F, OH, OW); filter f belongs to group
g = f // (F // G) and sees the input channels g*Cg ... (g + 1)*Cg - 1, Cg = C // G.

    y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj]
                           * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(x is zero outside the image).  Only the naive loop nest has a twin here; the optimized CPU
kernels (polyphase, blocked) are CPU-specific.

Mapping.  The forward is one thread per output element, the sum over (c, ki, kj) inside the
thread.  The backward is three kernels, none of them with atomics:

- db[f] sums N*OH*OW terms: one BLOCK per filter f.  Its THREADS threads split the terms
  k = n*OH*OW + i*OW + j (thread tid takes k = tid, tid + THREADS, ..., neighbouring threads
  read neighbouring elements of dy), then add up their running sums in a tree (``block_sum``,
  kernels/cuda/reduce.py: a fixed order, so the result is the same at every run);
- dw[f, c, ki, kj] sums as many terms, dy[n, f, i, j] * x[n, g*Cg + c, row, col]: one block per
  weight, the same block-stride loop over (n, i, j) (neighbouring threads read neighbouring
  dy and, at stride SW, neighbouring x) and the same tree;
- dx: one thread per input pixel (n, g*Cg + c, row, col), GATHERING the terms of the CPU's
  scatter ``dx[...] += dy * w``: it loops over the filters f of its group and the taps
  (ki, kj) and keeps the outputs (i, j) whose window reads this pixel, i.e.
  i = (row + PH - ki*DH) / SH when that is a whole number in [0, OH) (and likewise j).
  No two threads write one element, and the sum's order is fixed (deterministic results).

Precision: the arithmetic runs in the data's dtype.  float32 data is summed in float32
(``acc = y.dtype.type(0)``; a float64 accumulator would run at 1/32 of the float32 rate on a
T4-class GPU), float64 data in float64.  The CPU kernels sum in float64 and round once, so a
float32 result differs from theirs by float32 rounding: about sqrt(terms) units of the last
place of the sum of |terms| (db and dw sum a tree, whose error grows with log2(THREADS) plus
the N*OH*OW / THREADS terms of a thread's running sum).
"""

from numba import cuda

from ._launch import THREADS, launch
from .reduce import block_sum


@cuda.jit
def _conv2d_forward_direct_kernel(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    one thread per (n, f, i, j), summing in y's dtype
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = y.shape[2], y.shape[3]
    if t >= N * F * OH * OW:
        return
    n = t // (F * OH * OW)
    f = t // (OH * OW) % F
    i = t // OW % OH
    j = t % OW
    g = f // (F // groups)
    acc = y.dtype.type(0)
    for c in range(Cg):
        for ki in range(KH):
            row = i * stride_h - pad_h + ki * dil_h
            if row < 0 or row >= H:
                continue
            for kj in range(KW):
                col = j * stride_w - pad_w + kj * dil_w
                if col < 0 or col >= W:
                    continue
                acc += w[f, c, ki, kj] * x[n, g * Cg + c, row, col]
    y[n, f, i, j] = acc + b[f]


def conv2d_forward_direct(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    (device arrays; one thread per element of y)
    """
    launch(_conv2d_forward_direct_kernel, y.size,
           x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)


@cuda.jit
def _conv2d_backward_db_kernel(dy, db):
    """db[f] = sum_{n, i, j} dy[n, f, i, j]        one block per filter f

    Thread tid adds the terms k = tid, tid + THREADS, ... of the N*OH*OW, k = n*OH*OW + i*OW + j;
    block_sum adds up the THREADS running sums in a tree.
    """
    f = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N, F, OH, OW = dy.shape
    sums = cuda.shared.array(THREADS, dy.dtype)
    acc = dy.dtype.type(0)
    for k in range(tid, N * OH * OW, THREADS):
        n = k // (OH * OW)
        i = k // OW % OH
        j = k % OW
        acc += dy[n, f, i, j]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        db[f] = total


@cuda.jit
def _conv2d_backward_dw_kernel(dy, x, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dw[f, c, ki, kj] = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    one block per weight (f, c, ki, kj): thread tid adds the terms k = tid, tid + THREADS, ... of
    the N*OH*OW outputs that weight touched (k = n*OH*OW + i*OW + j; a term whose input falls
    on the padding is 0 and skipped), block_sum adds up the running sums in a tree
    """
    weight = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    N, C, H, W = x.shape
    F, Cg, KH, KW = dw.shape
    OH, OW = dy.shape[2], dy.shape[3]
    f = weight // (Cg * KH * KW)
    c = weight // (KH * KW) % Cg
    ki = weight // KW % KH
    kj = weight % KW
    g = f // (F // groups)
    sums = cuda.shared.array(THREADS, dw.dtype)
    acc = dw.dtype.type(0)
    for k in range(tid, N * OH * OW, THREADS):
        n = k // (OH * OW)
        i = k // OW % OH
        j = k % OW
        row = i * stride_h - pad_h + ki * dil_h
        col = j * stride_w - pad_w + kj * dil_w
        if row >= 0 and row < H and col >= 0 and col < W:
            acc += dy[n, f, i, j] * x[n, g * Cg + c, row, col]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        dw[f, c, ki, kj] = total


@cuda.jit
def _conv2d_backward_dx_kernel(dy, w, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """dx[n, g*Cg + c, row, col] = sum_{f in group g} sum_{ki, kj} dy[n, f, i, j] * w[f, c, ki, kj]

    over the outputs (i, j) that read this pixel: row = i*SH - PH + ki*DH, col = j*SW - PW + kj*DW,
    i.e. i = (row + PH - ki*DH) / SH and j = (col + PW - kj*DW) / SW, whole and in range.
    One thread per input pixel (n, channel, row, col): the CPU's scatter, gathered, summing in
    dx's dtype.
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    F, Cg, KH, KW = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    if t >= N * C * H * W:
        return
    n = t // (C * H * W)
    channel = t // (H * W) % C
    row = t // W % H
    col = t % W
    g = channel // Cg
    c = channel % Cg
    Fg = F // groups
    acc = dx.dtype.type(0)
    for f in range(g * Fg, (g + 1) * Fg):
        for ki in range(KH):
            i_strided = row + pad_h - ki * dil_h          # = i * SH
            if i_strided < 0 or i_strided % stride_h != 0:
                continue
            i = i_strided // stride_h
            if i >= OH:
                continue
            for kj in range(KW):
                j_strided = col + pad_w - kj * dil_w      # = j * SW
                if j_strided < 0 or j_strided % stride_w != 0:
                    continue
                j = j_strided // stride_w
                if j >= OW:
                    continue
                acc += dy[n, f, i, j] * w[f, c, ki, kj]
    dx[n, channel, row, col] = acc


def conv2d_backward_direct(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The forward sum differentiated term by term (device arrays):

        db[f]             = sum_{n, i, j} dy[n, f, i, j]
        dw[f, c, ki, kj]  = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]
        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += dy[n, f, i, j] * w[f, c, ki, kj]

    Three kernels: one block of THREADS threads per filter f for db and per weight
    (f, c, ki, kj) for dw (tree reductions over (n, i, j)), one thread per input pixel for dx
    (which gathers its terms instead of scattering them; see the module docstring).  An empty
    batch gives db = dw = 0.
    """
    if db.size > 0:
        _conv2d_backward_db_kernel[db.size, THREADS](dy, db)
    if dw.size > 0:
        _conv2d_backward_dw_kernel[dw.size, THREADS](
            dy, x, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
    launch(_conv2d_backward_dx_kernel, dx.size,
           dy, w, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)
