"""Gradient checks of the normalizations: batch, layer, instance and group norm, weight
standardization and local response normalization.  All are smooth (eps > 0 keeps
sqrt(var + eps) differentiable, k > 0 keeps LRN's base positive).

Batch norm's inputs are (x, gamma, beta, running_mean, running_var); only the first
three are differentiated.  In training every forward call updates the running
statistics in place, by design: the cases name them in ``in_place``, so the checker
does not warn about it (it gives every evaluation fresh copies of them anyway).

Every case runs in both forms of nbconv.functional.dispatch ("naive" and "fast"), which
Case.forms() reads from the table under the op names used here.
"""

from functools import partial


import nbconv.functional as F

from ..registry import Case


def _normal(shape):
    return lambda rng: (rng.standard_normal(shape),)


def _affine_inputs(x_shape, affine_shape):
    """x standard normal with an offset, gamma away from 0, beta standard normal."""
    def make(rng):
        return (rng.standard_normal(x_shape) + 0.5,
                rng.uniform(0.5, 1.5, affine_shape) * rng.choice([-1.0, 1.0], affine_shape),
                rng.standard_normal(affine_shape))
    return make


def _batch_norm_inputs(x_shape):
    """(x, gamma, beta, running_mean, running_var): fresh running statistics, the variance positive."""
    C = x_shape[1]
    affine = _affine_inputs(x_shape, (C,))
    return lambda rng: affine(rng) + (rng.standard_normal(C), rng.uniform(0.5, 2.0, C))


_XGB = ("x", "gamma", "beta")
RUNNING = ("running_mean", "running_var")        # updated in place by batch norm's forward in training
BATCH_NORM_NAMES = _XGB + RUNNING

CASES = [
    # batch norm: training through the batch statistics, and inference with the running ones
    Case("batch_norm", "training, x (6, 4)", F.batch_norm_forward, F.batch_norm_backward,
         _batch_norm_inputs((6, 4)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "training, x (3, 2, 3, 4), momentum 0.3",
         partial(F.batch_norm_forward, momentum=0.3), F.batch_norm_backward,
         _batch_norm_inputs((3, 2, 3, 4)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "training, x (2, 3, 5) (BatchNorm1d on a signal), eps 1e-3",
         partial(F.batch_norm_forward, eps=1e-3), F.batch_norm_backward,
         _batch_norm_inputs((2, 3, 5)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "training, x (4, 3, 2), unbiased=False (the lecture)",
         partial(F.batch_norm_forward, unbiased=False), F.batch_norm_backward,
         _batch_norm_inputs((4, 3, 2)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "inference, x (2, 3, 3, 3), running statistics",
         partial(F.batch_norm_forward, training=False), F.batch_norm_backward,
         _batch_norm_inputs((2, 3, 3, 3)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "inference, x (5, 4)",
         partial(F.batch_norm_forward, training=False), F.batch_norm_backward,
         _batch_norm_inputs((5, 4)), names=BATCH_NORM_NAMES, in_place=RUNNING),

    # layer norm
    Case("layer_norm", "x (2, 3, 3, 3) over (C, H, W)", partial(F.layer_norm_forward, normalized_ndim=3),
         F.layer_norm_backward, _affine_inputs((2, 3, 3, 3), (3, 3, 3)), names=_XGB),
    Case("layer_norm", "x (4, 6) over the features", partial(F.layer_norm_forward, normalized_ndim=1),
         F.layer_norm_backward, _affine_inputs((4, 6), (6,)), names=_XGB),
    Case("layer_norm", "x (7, 5), 7 rows (fast column sums: 4 + 3)",
         partial(F.layer_norm_forward, normalized_ndim=1),
         F.layer_norm_backward, _affine_inputs((7, 5), (5,)), names=_XGB),
    Case("layer_norm", "x (2, 3, 4) over the last 2 axes, eps 1e-3",
         partial(F.layer_norm_forward, normalized_ndim=2, eps=1e-3),
         F.layer_norm_backward, _affine_inputs((2, 3, 4), (3, 4)), names=_XGB),

    # instance norm
    Case("instance_norm", "x (2, 3, 3, 4)", F.instance_norm_forward, F.instance_norm_backward,
         _affine_inputs((2, 3, 3, 4), (3,)), names=_XGB),
    Case("instance_norm", "x (3, 2, 6) (1-D signal)", F.instance_norm_forward, F.instance_norm_backward,
         _affine_inputs((3, 2, 6), (2,)), names=_XGB),

    # group norm
    Case("group_norm", "x (2, 6, 2, 3), 3 groups", partial(F.group_norm_forward, num_groups=3),
         F.group_norm_backward, _affine_inputs((2, 6, 2, 3), (6,)), names=_XGB),
    Case("group_norm", "x (2, 4, 5), 1 group (layer norm)", partial(F.group_norm_forward, num_groups=1),
         F.group_norm_backward, _affine_inputs((2, 4, 5), (4,)), names=_XGB),
    Case("group_norm", "x (3, 6), 2 groups (no spatial axes)", partial(F.group_norm_forward, num_groups=2),
         F.group_norm_backward, _affine_inputs((3, 6), (6,)), names=_XGB),

    # weight standardization
    Case("weight_standardize", "conv weight (4, 3, 3, 3)", F.weight_standardize_forward,
         F.weight_standardize_backward, _normal((4, 3, 3, 3)), names=("w",)),
    Case("weight_standardize", "linear weight (5, 4), eps 1e-3", partial(F.weight_standardize_forward, eps=1e-3),
         F.weight_standardize_backward, _normal((5, 4)), names=("w",)),

    # local response norm: a large alpha makes the cross-channel term count in the check
    Case("local_response_norm", "x (2, 5, 3, 3), size 3, alpha 0.5, beta 0.75, k 2",
         partial(F.local_response_norm_forward, size=3, alpha=0.5, beta=0.75, k=2.0),
         F.local_response_norm_backward, _normal((2, 5, 3, 3)), names=("x",)),
    Case("local_response_norm", "x (2, 6, 4), size 4 (even, asymmetric window), alpha 1, beta 0.5",
         partial(F.local_response_norm_forward, size=4, alpha=1.0, beta=0.5, k=1.0),
         F.local_response_norm_backward, _normal((2, 6, 4)), names=("x",)),
    Case("local_response_norm", "x (1, 4, 2, 3), size 5 (AlexNet's), defaults alpha 1e-4, beta 0.75, k 1",
         partial(F.local_response_norm_forward, size=5),
         F.local_response_norm_backward, _normal((1, 4, 2, 3)), names=("x",)),
]
