from functools import partial

import nbconv.functional as F

from ..registry import KINK_THRESHOLD, Case, away_from_zero, distinct

MAX_KINKS = ("inputs drawn by `distinct`: values differ pairwise by >= 0.05 >> h, so no window "
             "has a tie and the perturbation never changes a window's winner")
LP1_KINKS = "p = 1 is |x|: inputs drawn by `away_from_zero` (|x| >= 0.1 >> h)"


def _normal(*shape):
    return lambda rng: (rng.standard_normal(shape),)


def _distinct(*shape):
    return lambda rng: (distinct(rng, shape),)


CASES = [
    # max pooling: no ties, so the max is differentiable at the drawn inputs
    Case("max_pool2d", "2x2, stride 2 (disjoint windows)",
         partial(F.max_pool2d_forward, kernel_size=2), F.max_pool2d_backward,
         _distinct(2, 2, 4, 6), names=("x",), threshold=KINK_THRESHOLD, kinks=MAX_KINKS),
    Case("max_pool2d", "3x3, stride 1 (overlapping windows share winners)",
         partial(F.max_pool2d_forward, kernel_size=3, stride=1), F.max_pool2d_backward,
         _distinct(1, 2, 5, 5), names=("x",), threshold=KINK_THRESHOLD, kinks=MAX_KINKS),
    Case("max_pool2d", "3x3, stride 2, padding 1 (-inf padding, overlapping)",
         partial(F.max_pool2d_forward, kernel_size=3, stride=2, padding=1), F.max_pool2d_backward,
         _distinct(2, 2, 5, 6), names=("x",), threshold=KINK_THRESHOLD, kinks=MAX_KINKS),
    Case("max_pool2d", "kernel (2, 3), stride (1, 2), padding (1, 1)",
         partial(F.max_pool2d_forward, kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)),
         F.max_pool2d_backward,
         _distinct(1, 3, 4, 5), names=("x",), threshold=KINK_THRESHOLD, kinks=MAX_KINKS),

    # average pooling: linear, hence smooth
    Case("avg_pool2d", "2x2, stride 2",
         partial(F.avg_pool2d_forward, kernel_size=2), F.avg_pool2d_backward,
         _normal(2, 2, 4, 6), names=("x",)),
    Case("avg_pool2d", "3x3, stride 1, padding 1 (zero padding counted)",
         partial(F.avg_pool2d_forward, kernel_size=3, stride=1, padding=1), F.avg_pool2d_backward,
         _normal(1, 2, 5, 5), names=("x",)),
    Case("avg_pool2d", "kernel (3, 2), stride (2, 1), padding (1, 0)",
         partial(F.avg_pool2d_forward, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
         F.avg_pool2d_backward,
         _normal(2, 2, 5, 4), names=("x",)),

    # Lp pooling: smooth wherever no window norm is 0 (and, for p = 1, no x is 0)
    Case("lp_pool2d", "p = 2 (L2-norm pooling), 2x2, stride 2",
         partial(F.lp_pool2d_forward, norm_type=2, kernel_size=2), F.lp_pool2d_backward,
         _normal(2, 2, 4, 6), names=("x",)),
    Case("lp_pool2d", "p = 3, 3x3, stride 2 (overlapping)",
         partial(F.lp_pool2d_forward, norm_type=3, kernel_size=3, stride=2), F.lp_pool2d_backward,
         _normal(1, 2, 5, 7), names=("x",)),
    Case("lp_pool2d", "p = 2.5, kernel (2, 3), stride (1, 2)",
         partial(F.lp_pool2d_forward, norm_type=2.5, kernel_size=(2, 3), stride=(1, 2)),
         F.lp_pool2d_backward,
         _normal(2, 1, 4, 7), names=("x",)),
    Case("lp_pool2d", "p = 1 (sum of |x|), 2x2, stride 1",
         partial(F.lp_pool2d_forward, norm_type=1, kernel_size=2, stride=1), F.lp_pool2d_backward,
         lambda rng: (away_from_zero(rng, (1, 2, 4, 4)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=LP1_KINKS),

    # global average pooling: linear
    Case("global_avg_pool2d", "x (2, 3, 4, 5)",
         F.global_avg_pool2d_forward, F.global_avg_pool2d_backward,
         _normal(2, 3, 4, 5), names=("x",)),
]
