"""Convolution lowered to matrix multiplication: im2col + GEMM, and col2im for the backward.

im2col stretches every receptive field of the input into a column (the notes'
X_col): for AlexNet's conv1, 227x227x3 with 11x11 filters at stride 4, X_col
is 363 x 3025.  The filters become rows (W_row, 96 x 363) and the whole
convolution is the single product W_row @ X_col (96 x 3025), one per group.

Shapes, with G groups, Cg = C // G input and Fg = F // G output channels per group:
    x    (N, C, H, W)
    cols (G, Cg*KH*KW, N*OH*OW)   row (c, ki, kj), column (n, i, j)
    w    (G, Fg, Cg*KH*KW)        the filters of each group, flattened
    y    (N, F, OH, OW)

    cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

(zero where that pixel lies in the padding).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j] = x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]"""
    N, C, H, W = x.shape
    G = cols.shape[0]
    Cg = C // G
    for g in range(G):
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    r = (c * KH + ki) * KW + kj
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                k = (n * OH + i) * OW + j
                                if 0 <= row < H and 0 <= col < W:
                                    cols[g, r, k] = x[n, g * Cg + c, row, col]
                                else:
                                    cols[g, r, k] = 0.0


@njit(cache=True)
def col2im(cols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW):
    """The adjoint of im2col: every column entry is added back to the pixel it was copied from.

        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += cols[g, (c*KH + ki)*KW + kj, (n*OH + i)*OW + j]

    A pixel that sits in several receptive fields collects the sum (the fan-out rule).
    """
    N, C, H, W = dx.shape
    G = cols.shape[0]
    Cg = C // G
    dx[:] = 0.0
    for g in range(G):
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    r = (c * KH + ki) * KW + kj
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if 0 <= col < W:
                                    dx[n, g * Cg + c, row, col] += cols[g, r, (n * OH + i) * OW + j]


@njit(cache=True)
def conv2d_forward_im2col(x, w_rows, b, y, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """y = W_row @ X_col + b, one matrix product per group.

    w_rows (G, Fg, Cg*KH*KW) are the filters flattened; cols is filled by im2col
    and kept for the backward pass.
    """
    N = x.shape[0]
    G, Fg, _ = w_rows.shape
    OH, OW = y.shape[2], y.shape[3]
    im2col(x, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
    for g in range(G):
        y_rows = np.dot(w_rows[g], cols[g])          # (Fg, N*OH*OW)
        for fg in range(Fg):
            f = g * Fg + fg
            for n in range(N):
                for i in range(OH):
                    for j in range(OW):
                        y[n, f, i, j] = y_rows[fg, (n * OH + i) * OW + j] + b[f]


@njit(cache=True)
def conv2d_backward_im2col(dy, cols, w_rows, dx, dw_rows, db, KH, KW, stride_h, stride_w, pad_h, pad_w,
                           dil_h, dil_w):
    """The backward of y = W_row @ X_col + b, per group:

        dW_row = dY @ X_col^T          (Fg, Cg*KH*KW)
        dX_col = W_row^T @ dY          (Cg*KH*KW, N*OH*OW), then col2im -> dx
        db[f]  = sum over the row f of dY

    where dY (Fg, N*OH*OW) is dy with its rows ordered like y_rows of the forward.
    """
    N, F, OH, OW = dy.shape
    G, Fg, CKK = w_rows.shape
    dcols = np.empty_like(cols)
    for g in range(G):
        dy_rows = np.empty((Fg, N * OH * OW), dtype=dy.dtype)
        for fg in range(Fg):
            f = g * Fg + fg
            acc = 0.0
            for n in range(N):
                for i in range(OH):
                    for j in range(OW):
                        dy_rows[fg, (n * OH + i) * OW + j] = dy[n, f, i, j]
                        acc += dy[n, f, i, j]
            db[f] = acc
        dw_rows[g] = np.dot(dy_rows, cols[g].T)
        dcols[g] = np.dot(w_rows[g].T, dy_rows)
    col2im(dcols, dx, KH, KW, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, OH, OW)
