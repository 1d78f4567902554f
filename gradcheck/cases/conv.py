from functools import partial

import nbconv.functional as F
from nbconv.functional import dispatch

from ..registry import Case


def _conv2d_inputs(N, C, H, W, F_, Cg, K, bias=True):
    def make(rng):
        arrays = (rng.standard_normal((N, C, H, W)), rng.standard_normal((F_, Cg, K, K)))
        return arrays + ((rng.standard_normal(F_),) if bias else ())
    return make


def _conv2d_inputs_hw(N, C, H, W, F_, Cg, KH, KW):
    """x, w (F_, Cg, KH, KW) with a kernel that is not square (a flip of the wrong axis shows), b."""
    return lambda rng: (rng.standard_normal((N, C, H, W)), rng.standard_normal((F_, Cg, KH, KW)),
                        rng.standard_normal(F_))


def _conv1d_inputs(N, C, L, F_, Cg, K):
    return lambda rng: (rng.standard_normal((N, C, L)), rng.standard_normal((F_, Cg, K)),
                        rng.standard_normal(F_))


# every conv method of the table (the common names "naive", "fast", "auto" are aliases of these);
# the convolutions are not in dispatch.CPU, so each case names its method itself
METHODS = tuple(dispatch.CONV)

CASES = [
    case
    for method in METHODS
    for case in (
        Case("conv2d", f"{method}, 3x3, stride 1, padding 1",
             partial(F.conv2d_forward, padding=1, method=method), F.conv2d_backward,
             _conv2d_inputs(2, 3, 5, 5, 4, 3, 3), names=("x", "w", "b")),
        Case("conv2d", f"{method}, stride 2, padding (1, 0), dilation 2, groups 2",
             partial(F.conv2d_forward, stride=2, padding=(1, 0), dilation=2, groups=2, method=method),
             F.conv2d_backward, _conv2d_inputs(2, 4, 7, 6, 4, 2, 2), names=("x", "w", "b")),
        Case("conv2d", f"{method}, no bias",
             partial(F.conv2d_forward, stride=(1, 2), method=method), F.conv2d_backward,
             _conv2d_inputs(1, 2, 4, 5, 3, 2, 2, bias=False), names=("x", "w")),
        # the lecture's true convolution: w flipped in the forward, dw flipped back in the backward
        Case("conv2d", f"{method}, flip, 3x2, S 2, P (2,1), D (1,2), groups 2",
             partial(F.conv2d_forward, stride=2, padding=(2, 1), dilation=(1, 2), groups=2, flip=True,
                     method=method),
             F.conv2d_backward, _conv2d_inputs_hw(1, 4, 5, 6, 4, 2, 3, 2), names=("x", "w", "b")),
    )
]
CASES += [
    # a vector of float64 filters (8) and 135 terms per filter: blocked's dw takes the lane tiles
    # (nbconv.kernels.conv.conv2d_dw_lanes); the cases above, with fewer, take the dot products
    Case("conv2d", "blocked, 15 channels, 8 filters: dw in lanes",
         partial(F.conv2d_forward, padding=1, method="blocked"), F.conv2d_backward,
         _conv2d_inputs(1, 15, 4, 4, 8, 15, 3), names=("x", "w", "b")),
]
CASES += [
    case
    for method in METHODS
    for case in (
        Case("conv1d", f"{method}, K 3, stride 2, padding 1, dilation 2, groups 2",
             partial(F.conv1d_forward, stride=2, padding=1, dilation=2, groups=2, method=method),
             F.conv1d_backward, _conv1d_inputs(2, 4, 9, 6, 2, 3), names=("x", "w", "b")),
        Case("conv1d", f"{method}, flip, K 3, padding 2 (the full convolution)",
             partial(F.conv1d_forward, padding=2, flip=True, method=method),
             F.conv1d_backward, _conv1d_inputs(2, 2, 5, 3, 2, 3), names=("x", "w", "b")),
    )
]
CASES += [
    Case("residual", "conv 3x3 + x", partial(F.residual_forward, method="im2col"), F.residual_backward,
         _conv2d_inputs(2, 3, 4, 4, 3, 3, 3), names=("x", "w", "b")),
    Case("residual", "direct, 3x3 dilation 2, groups 3",
         partial(F.residual_forward, dilation=2, groups=3, method="direct"), F.residual_backward,
         _conv2d_inputs(1, 3, 5, 5, 3, 1, 3), names=("x", "w", "b")),
    Case("residual", "blocked, 3x1, no bias",
         partial(F.residual_forward, method="blocked"), F.residual_backward,
         lambda rng: (rng.standard_normal((2, 2, 4, 3)), rng.standard_normal((2, 2, 3, 1))), names=("x", "w")),
]
