"""2-D convolution as the naive loop nest: the teaching reference.

Convolution here is cross-correlation (the kernel is not flipped), as in every
worked example of the course and every framework.

Shapes: x (N, C, H, W), w (F, C // G, KH, KW), b (F,), y (N, F, OH, OW),
with G groups: filter f sees the C // G input channels of its group
g = f // (F // G), i.e. channels g * C // G ... (g + 1) * C // G - 1.

Forward, for every output y[n, f, i, j]:

    y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj]
                           * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]

where x is zero outside the image (zero padding), SH/SW the stride, PH/PW the
padding and DH/DW the dilation.
"""

from numba import njit


@njit(cache=True)
def conv2d_forward_direct(x, w, b, y, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """y[n, f, i, j] = b[f] + sum_{c, ki, kj} w[f, c, ki, kj] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]"""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = y.shape[2], y.shape[3]
    Fg = F // groups
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
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


@njit(cache=True)
def conv2d_backward_direct(dy, x, w, dx, dw, db, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups):
    """The forward sum differentiated term by term:

        db[f]             = sum_{n, i, j} dy[n, f, i, j]
        dw[f, c, ki, kj]  = sum_{n, i, j} dy[n, f, i, j] * x[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW]
        dx[n, g*Cg + c, i*SH - PH + ki*DH, j*SW - PW + kj*DW] += dy[n, f, i, j] * w[f, c, ki, kj]

    Every input pixel feeds several outputs, so its gradient is the sum over
    them (the fan-out rule); dx is zeroed first and accumulated.
    """
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    Fg = F // groups

    for f in range(F):
        acc = 0.0
        for n in range(N):
            for i in range(OH):
                for j in range(OW):
                    acc += dy[n, f, i, j]
        db[f] = acc

    for f in range(F):
        g = f // Fg
        for c in range(Cg):
            for ki in range(KH):
                for kj in range(KW):
                    acc = 0.0
                    for n in range(N):
                        for i in range(OH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for j in range(OW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if col < 0 or col >= W:
                                    continue
                                acc += dy[n, f, i, j] * x[n, g * Cg + c, row, col]
                    dw[f, c, ki, kj] = acc

    dx[:] = 0.0
    for n in range(N):
        for f in range(F):
            g = f // Fg
            for i in range(OH):
                for j in range(OW):
                    for c in range(Cg):
                        for ki in range(KH):
                            row = i * stride_h - pad_h + ki * dil_h
                            if row < 0 or row >= H:
                                continue
                            for kj in range(KW):
                                col = j * stride_w - pad_w + kj * dil_w
                                if col < 0 or col >= W:
                                    continue
                                dx[n, g * Cg + c, row, col] += dy[n, f, i, j] * w[f, c, ki, kj]
