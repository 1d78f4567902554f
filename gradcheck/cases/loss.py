"""Gradient checks for softmax, log_softmax and the losses.

Targets are not differentiated: the harness differentiates the leading float arrays that
``names`` lists (the loss backward returns the prediction's gradient only), and the integer
class target of cross_entropy comes last.  So does its float target of probabilities (the
(N, K) form): a float input, but cross_entropy_backward returns one gradient, so the harness
leaves the trailing target alone.
"""

from functools import partial

import nbconv.functional as F

from ..registry import KINK_THRESHOLD, Case, away_from_zero


def _probabilities(rng, shape):
    """BCE probabilities in (0.05, 0.95): the loss is smooth there, far from the log clamp."""
    return rng.uniform(0.05, 0.95, shape)


def _probability_rows(rng, shape, total=1.0):
    """Rows of positive weights that sum to ``total`` (1: a distribution per sample)."""
    t = rng.uniform(0.1, 1.0, shape)
    return total * t / t.sum(axis=-1, keepdims=True)


def _mae_inputs(rng, shape):
    """t standard normal and y = t + d with |d| >= 0.1: y - t stays off the kink of |.|."""
    t = rng.standard_normal(shape)
    return t + away_from_zero(rng, shape), t


CASES = [
    Case("softmax", "x (3, 5), axis -1", F.softmax_forward, F.softmax_backward,
         lambda rng: (rng.standard_normal((3, 5)),), names=("x",)),
    Case("softmax", "x (2, 4, 3), axis 1", partial(F.softmax_forward, axis=1), F.softmax_backward,
         lambda rng: (rng.standard_normal((2, 4, 3)),), names=("x",)),
    Case("softmax", "x (6,) scaled by 2, axis 0", partial(F.softmax_forward, axis=0), F.softmax_backward,
         lambda rng: (2.0 * rng.standard_normal(6),), names=("x",)),
    Case("softmax", "x (2, 3, 9), axis 1: 9 distributions side by side", partial(F.softmax_forward, axis=1),
         F.softmax_backward, lambda rng: (rng.standard_normal((2, 3, 9)),), names=("x",)),
    Case("log_softmax", "x (3, 5), axis -1", F.log_softmax_forward, F.log_softmax_backward,
         lambda rng: (rng.standard_normal((3, 5)),), names=("x",)),
    Case("log_softmax", "x (2, 3, 2, 2), axis -3", partial(F.log_softmax_forward, axis=-3),
         F.log_softmax_backward, lambda rng: (rng.standard_normal((2, 3, 2, 2)),), names=("x",)),
    Case("log_softmax", "x (2, 11), axis -1: rows longer than a vector", F.log_softmax_forward,
         F.log_softmax_backward, lambda rng: (rng.standard_normal((2, 11)),), names=("x",)),
    Case("cross_entropy", "logits (4, 5), int64 target", F.cross_entropy_forward, F.cross_entropy_backward,
         lambda rng: (rng.standard_normal((4, 5)), rng.integers(0, 5, size=4)), names=("logits",)),
    Case("cross_entropy", "logits (6, 3) scaled by 3, uint8 target", F.cross_entropy_forward,
         F.cross_entropy_backward,
         lambda rng: (3.0 * rng.standard_normal((6, 3)), rng.integers(0, 3, size=6).astype("uint8")),
         names=("logits",)),
    Case("cross_entropy", "logits (4, 5), probability targets t (4, 5)", F.cross_entropy_forward,
         F.cross_entropy_backward,
         lambda rng: (rng.standard_normal((4, 5)), _probability_rows(rng, (4, 5))), names=("logits",)),
    Case("cross_entropy", "logits (3, 6) x 3, t rows summing to 1.5 (not 1)",
         F.cross_entropy_forward, F.cross_entropy_backward,
         lambda rng: (3.0 * rng.standard_normal((3, 6)), _probability_rows(rng, (3, 6), total=1.5)),
         names=("logits",)),
    Case("mse", "y, t (3, 4)", F.mse_forward, F.mse_backward,
         lambda rng: (rng.standard_normal((3, 4)), rng.standard_normal((3, 4))), names=("y",)),
    Case("mse", "y, t (2, 3, 2, 2)", F.mse_forward, F.mse_backward,
         lambda rng: (rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3, 2, 2))), names=("y",)),
    Case("mae", "y, t (3, 4)", F.mae_forward, F.mae_backward,
         lambda rng: _mae_inputs(rng, (3, 4)), names=("y",), threshold=KINK_THRESHOLD,
         kinks="y - t drawn with |y - t| >= 0.1 (away_from_zero), off the kink of |y - t| at 0"),
    Case("mae", "y, t (2, 2, 5)", F.mae_forward, F.mae_backward,
         lambda rng: _mae_inputs(rng, (2, 2, 5)), names=("y",), threshold=KINK_THRESHOLD,
         kinks="y - t drawn with |y - t| >= 0.1 (away_from_zero), off the kink of |y - t| at 0"),
    Case("bce", "p in (0.05, 0.95), t in {0, 1}, (4, 3)", F.bce_forward, F.bce_backward,
         lambda rng: (_probabilities(rng, (4, 3)), rng.integers(0, 2, size=(4, 3)).astype(float)),
         names=("p",)),
    Case("bce", "p in (0.05, 0.95), soft t in [0, 1], (2, 5)", F.bce_forward, F.bce_backward,
         lambda rng: (_probabilities(rng, (2, 5)), rng.uniform(0.0, 1.0, (2, 5))), names=("p",)),
    Case("bce_with_logits", "z (4, 3) scaled by 3, t in {0, 1}", F.bce_with_logits_forward,
         F.bce_with_logits_backward,
         lambda rng: (3.0 * rng.standard_normal((4, 3)), rng.integers(0, 2, size=(4, 3)).astype(float)),
         names=("z",)),
    Case("bce_with_logits", "z (2, 5), soft t in [0, 1]", F.bce_with_logits_forward,
         F.bce_with_logits_backward,
         lambda rng: (rng.standard_normal((2, 5)), rng.uniform(0.0, 1.0, (2, 5))), names=("z",)),
]
