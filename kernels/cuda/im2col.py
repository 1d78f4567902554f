"""Convolution lowered to matrix multiplication on the GPU: the twin of nbconv.kernels.im2col.

Shapes, with G groups, Cg = C // G input and Fg = F // G output channels per group:
    x    (N, C, H, W)
    cols (G, Cg*KH*KW, N*OH*OW)   row r = (c*KH + ki)*KW + kj, column k = (n*OH + i)*OW + j
    w    (G, Fg, Cg*KH*KW)        the filters of each group, flattened (w_rows)
    y    (N, F, OH, OW)

    cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(zero where that pixel lies in the padding).  The convolution is then one matrix product per
group, y_rows = W_row @ X_col, computed by the tiled shared-memory kernel below (``matmul``),
which takes the place of the CPU's np.dot (BLAS).

Mapping:
- im2col: one thread per element of cols (a copy, no reduction).
- col2im: one thread per pixel of dx, GATHERING every column entry that was copied from it
  (the CPU's scatter ``dx[...] += cols[...]`` inverted: the tap (ki, kj) reads this pixel for
  the output i = (row + PH - ki*DH) / SH when that is whole and in [0, OH), likewise j).  No
  atomics, and a fixed order of the additions.
- matmul / matmul_nt / matmul_tn: the classic tiled product, one thread per element of the
  result, 16 x 16 threads per block, the operands staged through shared memory tile by tile.
  It accumulates in the arrays' dtype (float32 stays float32, as in BLAS sgemm).
- the reorderings between y (N, F, OH, OW) and the GEMM's rows (G, Fg, N*OH*OW): one thread
  per element; the bias gradient: one thread per filter summing its row of dY.
"""

from numba import cuda, float32, float64
import numpy as np

from ._launch import launch

TILE = 16          # the tiles of the matrix product are TILE x TILE, one thread per entry


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
    acc = float64(0.0)
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


# ----------------------------------------------------------------------------- tiled matrix product

def _make_matmul_kernel(dtype):
    """The tiled product kernel for one dtype (shared arrays need their dtype at compile time)."""

    @cuda.jit
    def _matmul_tiled_kernel(a, b, out, trans_a, trans_b):
        """out[r, q] = sum_k A[r, k] * B[k, q],   A = a^T if trans_a else a,  B = b^T if trans_b else b

        One thread per element (r, q) of out, in blocks of TILE x TILE threads: block
        (bx, by) computes the tile out[by*TILE : (by+1)*TILE, bx*TILE : (bx+1)*TILE].  The sum
        over k runs tile by tile: the block's threads first copy one TILE x TILE tile of A and
        one of B into shared memory (one element each, 0 past the matrices' edges), wait for
        each other (syncthreads), then every thread adds its TILE products from the fast shared
        copies.  Each element of A and B is read from global memory once per tile instead of
        once per product: TILE times fewer global reads than the naive loop.
        """
        a_tile = cuda.shared.array((TILE, TILE), dtype)
        b_tile = cuda.shared.array((TILE, TILE), dtype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        r = cuda.blockIdx.y * TILE + ty          # the row of out this thread computes
        q = cuda.blockIdx.x * TILE + tx          # and its column
        R, Q = out.shape
        if trans_a:
            K = a.shape[0]
        else:
            K = a.shape[1]
        acc = dtype(0.0)
        for k0 in range(0, K, TILE):
            k = k0 + tx                            # this thread loads A[r, k0 + tx]
            if r < R and k < K:
                if trans_a:
                    a_tile[ty, tx] = a[k, r]
                else:
                    a_tile[ty, tx] = a[r, k]
            else:
                a_tile[ty, tx] = 0.0
            k = k0 + ty                            # and B[k0 + ty, q]
            if k < K and q < Q:
                if trans_b:
                    b_tile[ty, tx] = b[q, k]
                else:
                    b_tile[ty, tx] = b[k, q]
            else:
                b_tile[ty, tx] = 0.0
            cuda.syncthreads()                     # the tiles are complete
            for kk in range(TILE):
                acc += a_tile[ty, kk] * b_tile[kk, tx]
            cuda.syncthreads()                     # everyone is done with them
        if r < R and q < Q:
            out[r, q] = acc

    return _matmul_tiled_kernel


_MATMUL_KERNELS = {np.dtype(np.float32): _make_matmul_kernel(float32),
                   np.dtype(np.float64): _make_matmul_kernel(float64)}


def _matmul_launch(a, b, out, trans_a, trans_b):
    R, Q = out.shape
    if R == 0 or Q == 0:
        return
    grid = ((Q + TILE - 1) // TILE, (R + TILE - 1) // TILE)
    _MATMUL_KERNELS[np.dtype(out.dtype)][grid, (TILE, TILE)](a, b, out, trans_a, trans_b)


def matmul(a, b, out):
    """out = a @ b:  out[r, q] = sum_k a[r, k] * b[k, q]   (a (R, K), b (K, Q), out (R, Q), one dtype)"""
    _matmul_launch(a, b, out, False, False)


def matmul_nt(a, b, out):
    """out = a @ b^T:  out[r, q] = sum_k a[r, k] * b[q, k]   (a (R, K), b (Q, K)); the backward's dW = dY X_col^T"""
    _matmul_launch(a, b, out, False, True)


def matmul_tn(a, b, out):
    """out = a^T @ b:  out[r, q] = sum_k a[k, r] * b[k, q]   (a (K, R), b (K, Q)); the backward's dX_col = W_row^T dY"""
    _matmul_launch(a, b, out, True, False)


# ----------------------------------------------------------------------------- conv2d by im2col + GEMM

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


@cuda.jit
def _row_sums_kernel(dy_rows, db):
    """db[g*Fg + fg] = sum_k dy_rows[g, fg, k]        one thread per filter (a per-element reduction)"""
    f = cuda.grid(1)
    G, Fg, K = dy_rows.shape
    if f >= G * Fg:
        return
    acc = float64(0.0)
    for k in range(K):
        acc += dy_rows[f // Fg, f % Fg, k]
    db[f] = acc


def conv2d_forward_im2col(x, w_rows, b, y, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y = W_row @ X_col + b, one matrix product per group (device arrays).

    w_rows (G, Fg, Cg*KH*KW) are the filters flattened; cols is filled by im2col and kept for
    the backward pass.  Launches im2col, G tiled products into a scratch y_rows
    (G, Fg, N*OH*OW), and the reordering into y with the bias.
    """
    G, Fg, _ = w_rows.shape
    OH, OW = y.shape[2], y.shape[3]
    im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
    y_rows = cuda.device_array((G, Fg, cols.shape[2]), dtype=y.dtype)
    for g in range(G):
        matmul(w_rows[g], cols[g], y_rows[g])
    launch(_rows_to_nchw_kernel, y.size, y_rows, b, y)


def conv2d_backward_im2col(dy, cols, w_rows, dx, dw_rows, db, KH, KW, stride_h, stride_w, pad_h, pad_w,
                           dil_h, dil_w):
    """The backward of y = W_row @ X_col + b, per group (device arrays):

        dW_row = dY @ X_col^T          (Fg, Cg*KH*KW)        matmul_nt
        dX_col = W_row^T @ dY          (Cg*KH*KW, N*OH*OW)   matmul_tn, then col2im -> dx
        db[f]  = sum over the row f of dY

    where dY (Fg, N*OH*OW) is dy with its rows ordered like y_rows of the forward.
    """
    N, F, OH, OW = dy.shape
    G, Fg, _ = w_rows.shape
    dy_rows = cuda.device_array((G, Fg, cols.shape[2]), dtype=dy.dtype)
    launch(_nchw_to_rows_kernel, dy.size, dy, dy_rows)
    launch(_row_sums_kernel, db.size, dy_rows, db)
    dcols = cuda.device_array(cols.shape, dtype=cols.dtype)
    for g in range(G):
        matmul_nt(dy_rows[g], cols[g], dw_rows[g])
        matmul_tn(w_rows[g], dy_rows[g], dcols[g])
    col2im(dcols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
