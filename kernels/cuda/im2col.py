"""Convolution lowered to matrix multiplication on the GPU: the twin of nbconv.kernels.im2col.

Shapes, with G groups, Cg = C // G input and Fg = F // G output channels per group:
    x    (N, C, H, W)
    cols (G, Cg*KH*KW, N*OH*OW)   row r = (c*KH + ki)*KW + kj, column k = (n*OH + i)*OW + j
    w    (G, Fg, Cg*KH*KW)        the filters of each group, flattened (w_rows)
    y    (N, F, OH, OW)

    cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(zero where that pixel lies in the padding).  The convolution is then one matrix product per
group, y_rows = W_row @ X_col, computed on the GPU by ``nbconv.kernels.cuda.gemm`` where the CPU
calls np.dot (BLAS).

Mapping:
- im2col: one thread per element of cols (a copy, no reduction).
- col2im: one thread per pixel of dx, GATHERING every column entry that was copied from it
  (the CPU's scatter ``dx[...] += cols[...]`` inverted: the tap (ki, kj) reads this pixel for
  the output i = (row + PH - ki*DH) / SH when that is whole and in [0, OH), likewise j).  No
  atomics, and a fixed order of the additions.
- the products: ``nbconv.kernels.cuda.gemm``, every group in one launch (the group on the
  grid's z axis).  ``conv2d_forward_im2col`` and ``conv2d_backward_im2col`` run its
  register-blocked Numba kernel (``gemm.matmul``), the teaching form; the device's "fast"
  method (``nbconv.functional.conv_fast``) calls the same lowering kernels with cuBLAS
  (``gemm.fast_matmul``) and reused scratch arrays.
- the reorderings between y (N, F, OH, OW) and the GEMM's rows (G, Fg, N*OH*OW), with the bias
  on the way (``rows_to_output``, ``output_to_rows``): one thread per element.  The bias
  gradient (``row_sums``): one block per filter, its threads splitting the row of dY, their
  running sums combined by ``block_sum`` (a tree, fixed order).

Arithmetic in the data's dtype: float32 data is summed in float32 (the products, as in BLAS
sgemm; col2im's sum of at most KH*KW entries; db's tree), float64 in float64.  A float32
result can differ from the CPU kernels' (which sum in float64) by float32 rounding.
"""

from numba import cuda

from . import gemm
from ._launch import THREADS, launch
from .reduce import block_sum


# ----------------------------------------------------------------------------- im2col / col2im

@cuda.jit
def _im2col_kernel(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    one thread per element (g, r, k) of cols; 0 where the pixel lies in the padding
    """
    t = cuda.grid(1)
    N, C, H, W = x.shape
    G, R, K = cols.shape
    if t >= G * R * K:
        return
    Cg = C // G
    g = t // (R * K)
    r = t // K % R
    k = t % K
    c = r // (KH * KW)
    ki = r // KW % KH
    kj = r % KW
    n = k // (OH * OW)
    i = k // OW % OH
    j = k % OW
    row = i * stride_h - pad_h + ki * dil_h
    col = j * stride_w - pad_w + kj * dil_w
    if 0 <= row < H and 0 <= col < W:
        cols[g, r, k] = x[n, g * Cg + c, row, col]
    else:
        cols[g, r, k] = 0.0


def im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

    (device arrays; one thread per element of cols)
    """
    launch(_im2col_kernel, cols.size, x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)


@cuda.jit
def _col2im_kernel(cols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """dx[n, g*Cg + c, row, col] = sum_{ki, kj} cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j]

    over the taps whose output (i, j) read this pixel: i = (row + PH - ki*DH) / SH and
    j = (col + PW - kj*DW) / SW, whole numbers in [0, OH) and [0, OW).
    One thread per pixel of dx (the adjoint of im2col, gathered: no atomics).
    """
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    G = cols.shape[0]
    if t >= N * C * H * W:
        return
    Cg = C // G
    n = t // (C * H * W)
    channel = t // (H * W) % C
    row = t // W % H
    col = t % W
    g = channel // Cg
    c = channel % Cg
    acc = dx.dtype.type(0)                            # in dx's dtype: float32 sums in float32
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
            acc += cols[g, (c * KH + ki) * KW + kj, (n * OH + i) * OW + j]
    dx[n, channel, row, col] = acc


def col2im(cols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """The adjoint of im2col: every column entry is added back to the pixel it was copied from.

        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j]

    (device arrays; one thread per pixel of dx, gathering its entries; dx is fully overwritten)
    """
    launch(_col2im_kernel, dx.size, cols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)


# ----------------------------------------------------------------------------- between y and the GEMM's rows

@cuda.jit
def _rows_to_nchw_kernel(y_rows, b, y):
    """y[n, g*Fg + fg, i, j] = y_rows[g, fg, (n*OH + i)*OW + j] + b[g*Fg + fg]        one thread per element of y"""
    t = cuda.grid(1)
    N, F, OH, OW = y.shape
    G, Fg, _ = y_rows.shape
    if t >= N * F * OH * OW:
        return
    n = t // (F * OH * OW)
    f = t // (OH * OW) % F
    i = t // OW % OH
    j = t % OW
    y[n, f, i, j] = y_rows[f // Fg, f % Fg, (n * OH + i) * OW + j] + b[f]


def rows_to_output(y_rows, b, y):
    """y[n, g*Fg + fg, i, j] = y_rows[g, fg, (n*OH + i)*OW + j] + b[g*Fg + fg]   (one thread per element of y)"""
    launch(_rows_to_nchw_kernel, y.size, y_rows, b, y)


@cuda.jit
def _nchw_to_rows_kernel(dy, dy_rows):
    """dy_rows[g, fg, (n*OH + i)*OW + j] = dy[n, g*Fg + fg, i, j]        one thread per element of dy"""
    t = cuda.grid(1)
    N, F, OH, OW = dy.shape
    G, Fg, _ = dy_rows.shape
    if t >= N * F * OH * OW:
        return
    n = t // (F * OH * OW)
    f = t // (OH * OW) % F
    i = t // OW % OH
    j = t % OW
    dy_rows[f // Fg, f % Fg, (n * OH + i) * OW + j] = dy[n, f, i, j]


def output_to_rows(dy, dy_rows):
    """dy_rows[g, fg, (n*OH + i)*OW + j] = dy[n, g*Fg + fg, i, j]   (one thread per element of dy)"""
    launch(_nchw_to_rows_kernel, dy.size, dy, dy_rows)


@cuda.jit
def _row_sums_kernel(dy_rows, db):
    """db[g*Fg + fg] = sum_k dy_rows[g, fg, k]        one block per filter f = g*Fg + fg

    The block's THREADS threads split the row: thread tid adds the terms k = tid, tid + THREADS,
    ... (consecutive threads read consecutive k), then ``block_sum`` adds the THREADS running
    sums in a tree.  In dy's dtype.
    """
    f = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    G, Fg, K = dy_rows.shape
    sums = cuda.shared.array(THREADS, dy_rows.dtype)
    acc = dy_rows.dtype.type(0)
    for k in range(tid, K, THREADS):
        acc += dy_rows[f // Fg, f % Fg, k]
    total = block_sum(sums, tid, acc)
    if tid == 0:
        db[f] = total


def row_sums(dy_rows, db):
    """db[g*Fg + fg] = sum_k dy_rows[g, fg, k]: the bias gradient (one block of THREADS threads per filter)"""
    if db.size > 0:
        _row_sums_kernel[db.size, THREADS](dy_rows, db)


# ----------------------------------------------------------------------------- conv2d by im2col + GEMM

def conv2d_forward_im2col(x, w_rows, b, y, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y = W_row @ X_col + b, the product of every group in one launch (device arrays).

    w_rows (G, Fg, Cg*KH*KW) are the filters flattened; cols is filled by im2col and kept for
    the backward pass.  Launches im2col, the register-blocked product into a new scratch
    y_rows (G, Fg, N*OH*OW), and the reordering into y with the bias.
    """
    G, Fg, _ = w_rows.shape
    OH, OW = y.shape[2], y.shape[3]
    im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
    y_rows = cuda.device_array((G, Fg, cols.shape[2]), dtype=y.dtype)
    gemm.matmul(w_rows, cols, y_rows)                              # Y_row[g] = W_row[g] @ X_col[g]
    rows_to_output(y_rows, b, y)


def conv2d_backward_im2col(dy, cols, w_rows, dx, dw_rows, db, KH, KW, stride_h, stride_w, pad_h, pad_w,
                           dil_h, dil_w):
    """The backward of y = W_row @ X_col + b, every group in one launch per product (device arrays):

        dW_row = dY @ X_col^T          (G, Fg, Cg*KH*KW)        trans_b
        dX_col = W_row^T @ dY          (G, Cg*KH*KW, N*OH*OW)   trans_a, then col2im -> dx
        db[f]  = sum over the row f of dY

    where dY (G, Fg, N*OH*OW) is dy with its rows ordered like y_rows of the forward.
    """
    N, F, OH, OW = dy.shape
    G, Fg, _ = w_rows.shape
    dy_rows = cuda.device_array((G, Fg, cols.shape[2]), dtype=dy.dtype)
    output_to_rows(dy, dy_rows)
    row_sums(dy_rows, db)
    dcols = cuda.device_array(cols.shape, dtype=cols.dtype)
    gemm.matmul(dy_rows, cols, dw_rows, trans_b=True)              # dW_row = dY @ X_col^T
    gemm.matmul(w_rows, dy_rows, dcols, trans_a=True)              # dX_col = W_row^T @ dY
    col2im(dcols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
