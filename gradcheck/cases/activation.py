"""Gradient checks of the activations: relu, leaky_relu, elu, sigmoid, tanh, prelu, maxout."""

from functools import partial

import nbconv.functional as F

from ..registry import KINK_THRESHOLD, Case, away_from_zero, distinct

_AWAY = "x drawn at least 0.1 away from 0, where the derivative jumps"
_ELU_AWAY = ("x drawn at least 0.1 away from 0, where the second derivative jumps "
             "(and the first too unless alpha = 1)")
_DISTINCT = "x values pairwise at least 0.05 apart, so no two pieces tie for the max"

CASES = [
    # relu
    Case("relu", "4-D x (2, 3, 4, 4)", F.relu_forward, F.relu_backward,
         lambda rng: (away_from_zero(rng, (2, 3, 4, 4)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("relu", "2-D x (5, 7)", F.relu_forward, F.relu_backward,
         lambda rng: (away_from_zero(rng, (5, 7)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),

    # leaky_relu
    Case("leaky_relu", "2-D x (5, 7), default slope 0.01", F.leaky_relu_forward, F.leaky_relu_backward,
         lambda rng: (away_from_zero(rng, (5, 7)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("leaky_relu", "4-D x (2, 3, 3, 3), slope 0.1 (the lecture's)",
         partial(F.leaky_relu_forward, negative_slope=0.1), F.leaky_relu_backward,
         lambda rng: (away_from_zero(rng, (2, 3, 3, 3)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("leaky_relu", "1-D x (20,), slope -0.5", partial(F.leaky_relu_forward, negative_slope=-0.5),
         F.leaky_relu_backward, lambda rng: (away_from_zero(rng, (20,)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),

    # elu
    Case("elu", "2-D x (5, 7), alpha 1", F.elu_forward, F.elu_backward,
         lambda rng: (away_from_zero(rng, (5, 7)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_ELU_AWAY),
    Case("elu", "4-D x (2, 3, 3, 3), alpha 0.5", partial(F.elu_forward, alpha=0.5), F.elu_backward,
         lambda rng: (2.0 * away_from_zero(rng, (2, 3, 3, 3)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_ELU_AWAY),

    # sigmoid and tanh are smooth: plain normal inputs, spread wide enough to reach the flat tails
    Case("sigmoid", "2-D x (5, 7)", F.sigmoid_forward, F.sigmoid_backward,
         lambda rng: (rng.standard_normal((5, 7)),), names=("x",)),
    Case("sigmoid", "4-D x (2, 3, 3, 3), |x| up to ~12", F.sigmoid_forward, F.sigmoid_backward,
         lambda rng: (4.0 * rng.standard_normal((2, 3, 3, 3)),), names=("x",)),
    Case("tanh", "2-D x (5, 7)", F.tanh_forward, F.tanh_backward,
         lambda rng: (rng.standard_normal((5, 7)),), names=("x",)),
    Case("tanh", "4-D x (2, 3, 3, 3), |x| up to ~6", F.tanh_forward, F.tanh_backward,
         lambda rng: (2.0 * rng.standard_normal((2, 3, 3, 3)),), names=("x",)),

    # prelu
    Case("prelu", "4-D x (2, 3, 4, 4), one slope per channel", F.prelu_forward, F.prelu_backward,
         lambda rng: (away_from_zero(rng, (2, 3, 4, 4)), 0.25 * rng.standard_normal(3)),
         names=("x", "weight"), threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("prelu", "2-D x (6, 4), one slope per channel", F.prelu_forward, F.prelu_backward,
         lambda rng: (away_from_zero(rng, (6, 4)), 0.25 * rng.standard_normal(4)),
         names=("x", "weight"), threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("prelu", "3-D x (2, 3, 5), a single shared slope", F.prelu_forward, F.prelu_backward,
         lambda rng: (away_from_zero(rng, (2, 3, 5)), 0.25 * rng.standard_normal(1)),
         names=("x", "weight"), threshold=KINK_THRESHOLD, kinks=_AWAY),

    # maxout
    Case("maxout", "4-D x (2, 6, 3, 3), pieces 2", partial(F.maxout_forward, pieces=2), F.maxout_backward,
         lambda rng: (distinct(rng, (2, 6, 3, 3)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_DISTINCT),
    Case("maxout", "2-D x (4, 9), pieces 3", partial(F.maxout_forward, pieces=3), F.maxout_backward,
         lambda rng: (distinct(rng, (4, 9)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_DISTINCT),
    Case("maxout", "3-D x (2, 5, 4), pieces 5 (one output channel)", partial(F.maxout_forward, pieces=5),
         F.maxout_backward, lambda rng: (distinct(rng, (2, 5, 4)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_DISTINCT),
]
