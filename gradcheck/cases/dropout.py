"""Gradient checks for dropout.

Each forward is bound to a fixed seed with ``partial``, so every finite-difference
evaluation draws the same mask and the output is linear in x (no kinks).
"""

from functools import partial

import nbconv.functional as F

from ..registry import Case

CASES = [
    Case("dropout", "x (4, 6), p 0.5, seed 0", partial(F.dropout_forward, p=0.5, seed=0),
         F.dropout_backward, lambda rng: (rng.standard_normal((4, 6)),), names=("x",)),
    Case("dropout", "x (2, 3, 3, 3), p 0.2, seed 7", partial(F.dropout_forward, p=0.2, seed=7),
         F.dropout_backward, lambda rng: (rng.standard_normal((2, 3, 3, 3)),), names=("x",)),
    Case("dropout", "x (3, 4), p 0.5, inference (identity)",
         partial(F.dropout_forward, p=0.5, training=False), F.dropout_backward,
         lambda rng: (rng.standard_normal((3, 4)),), names=("x",)),
    # classic dropout: the kept units unscaled in training, every unit times 1 - p at inference
    Case("dropout", "x (4, 6), p 0.3, seed 0, classic: x * mask",
         partial(F.dropout_forward, p=0.3, seed=0, mode="classic"), F.dropout_backward,
         lambda rng: (rng.standard_normal((4, 6)),), names=("x",)),
    Case("dropout", "x (3, 4), p 0.3, inference, classic: 0.7 x",
         partial(F.dropout_forward, p=0.3, training=False, mode="classic"), F.dropout_backward,
         lambda rng: (rng.standard_normal((3, 4)),), names=("x",)),
]
