"""The gradient checks of the GPU path: every op of the registry once or more, on small shapes.

``nbconv gradcheck --device cuda`` runs these cases (``cuda_cases()``), each through
``Case.run(device="cuda")``: the finite differences perturb float64 host arrays, which are
copied to the device at every evaluation, and the outputs and gradients come back to the host.

Why not the whole registry: without a GPU the CUDA kernels run in Numba's CUDA simulator, which
executes every GPU thread as a Python thread.  One forward pass there takes from 0.05 s (an
element-wise kernel) to 0.6 s (a loss, whose sum is a shared-memory tree reduction) and more
(the tiled matrix product of the im2col convolution), and a gradient check runs two forward
passes per input element: the full registry takes tens of minutes in the simulator.  So this
set has every op of the registry with inputs of a few to a few dozen elements, still covering
the hyper-parameters that change the GPU code path (stride, padding, dilation, groups, every
conv method, a softmax axis other than the last, an integer target to convert, training and
inference).  The registry's own cases run on the CPU; ``Case.run(device="cuda")`` runs any of
them on the GPU as well.
"""

from __future__ import annotations

from functools import partial

import nbconv.functional as F

from .cases.norm import BATCH_NORM_NAMES, RUNNING, _affine_inputs, _batch_norm_inputs
from .registry import KINK_THRESHOLD, Case, away_from_zero, distinct

_AWAY = "x drawn at least 0.1 away from 0, where the derivative jumps"
_DISTINCT = "x values pairwise at least 0.05 apart, so no two candidates tie for the max"
_XGB = ("x", "gamma", "beta")


def _normal(*shape, scale=1.0):
    return lambda rng: (scale * rng.standard_normal(shape),)


def _normals(*shapes):
    return lambda rng: tuple(rng.standard_normal(shape) for shape in shapes)


def _probability_targets(rng):
    t = rng.uniform(0.1, 1.0, (2, 3))
    return 2.0 * rng.standard_normal((2, 3)), t / t.sum(axis=1, keepdims=True)


def _mae(rng):
    t = rng.standard_normal((2, 2))
    return t + away_from_zero(rng, (2, 2)), t


CASES = [
    Case("linear", "x (2, 3), w (2, 3), b (2,)", F.linear_forward, F.linear_backward,
         _normals((2, 3), (2, 3), (2,)), names=("x", "w", "b")),

    Case("conv2d", "direct, stride (2, 1), padding (1, 0), dilation (1, 2), groups 2",
         partial(F.conv2d_forward, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, method="direct"),
         F.conv2d_backward, _normals((1, 2, 4, 3), (2, 1, 2, 2), (2,)), names=("x", "w", "b")),
    Case("conv2d", "im2col (register-blocked matmul), 2x2",
         partial(F.conv2d_forward, method="im2col"), F.conv2d_backward,
         _normals((1, 1, 3, 3), (2, 1, 2, 2), (2,)), names=("x", "w", "b")),
    Case("conv2d", "fast (the library GEMM, X_col kept for the backward), stride 2, padding 1, groups 2",
         partial(F.conv2d_forward, stride=2, padding=1, groups=2, method="fast"), F.conv2d_backward,
         _normals((1, 2, 4, 4), (2, 1, 3, 3), (2,)), names=("x", "w", "b")),
    Case("conv2d", "blocked (the direct kernels on the GPU), padding 1, no bias",
         partial(F.conv2d_forward, padding=1, stride=2, method="blocked"), F.conv2d_backward,
         _normals((1, 1, 3, 3), (1, 1, 2, 2)), names=("x", "w")),
    Case("conv2d", "direct, flip (the true convolution), 3x2, padding 1",
         partial(F.conv2d_forward, padding=1, flip=True, method="direct"), F.conv2d_backward,
         _normals((1, 1, 3, 3), (1, 1, 3, 2), (1,)), names=("x", "w", "b")),
    Case("conv1d", "direct, K 3, stride 2, padding 1, groups 2",
         partial(F.conv1d_forward, stride=2, padding=1, groups=2, method="direct"), F.conv1d_backward,
         _normals((1, 2, 5), (2, 1, 3), (2,)), names=("x", "w", "b")),
    Case("residual", "direct, 3x3, groups 2 (conv + x by the add kernel)",
         partial(F.residual_forward, groups=2, method="direct"), F.residual_backward,
         _normals((1, 2, 3, 3), (2, 1, 3, 3), (2,)), names=("x", "w", "b")),

    Case("max_pool2d", "3x3, stride 2, padding 1", partial(F.max_pool2d_forward, kernel_size=3, stride=2, padding=1),
         F.max_pool2d_backward, lambda rng: (distinct(rng, (1, 1, 4, 4)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_DISTINCT),
    Case("avg_pool2d", "2x2, stride 1, padding 1",
         partial(F.avg_pool2d_forward, kernel_size=2, stride=1, padding=1), F.avg_pool2d_backward,
         _normal(1, 2, 3, 3), names=("x",)),
    Case("lp_pool2d", "p = 3, 2x2, stride (1, 2)",
         partial(F.lp_pool2d_forward, norm_type=3, kernel_size=2, stride=(1, 2)), F.lp_pool2d_backward,
         _normal(1, 1, 3, 4), names=("x",)),
    Case("global_avg_pool2d", "x (2, 2, 2, 2)", F.global_avg_pool2d_forward, F.global_avg_pool2d_backward,
         _normal(2, 2, 2, 2), names=("x",)),

    Case("relu", "x (2, 6)", F.relu_forward, F.relu_backward,
         lambda rng: (away_from_zero(rng, (2, 6)),), names=("x",), threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("leaky_relu", "x (2, 5), slope 0.1", partial(F.leaky_relu_forward, negative_slope=0.1),
         F.leaky_relu_backward, lambda rng: (away_from_zero(rng, (2, 5)),), names=("x",),
         threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("elu", "x (2, 5), alpha 0.5", partial(F.elu_forward, alpha=0.5), F.elu_backward,
         lambda rng: (2.0 * away_from_zero(rng, (2, 5)),), names=("x",), threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("sigmoid", "x (2, 5) scaled by 4", F.sigmoid_forward, F.sigmoid_backward, _normal(2, 5, scale=4.0),
         names=("x",)),
    Case("tanh", "x (2, 5) scaled by 2", F.tanh_forward, F.tanh_backward, _normal(2, 5, scale=2.0), names=("x",)),
    Case("prelu", "x (2, 3, 2), one slope per channel", F.prelu_forward, F.prelu_backward,
         lambda rng: (away_from_zero(rng, (2, 3, 2)), 0.25 * rng.standard_normal(3)), names=("x", "weight"),
         threshold=KINK_THRESHOLD, kinks=_AWAY),
    Case("maxout", "x (2, 4, 2), pieces 2", partial(F.maxout_forward, pieces=2), F.maxout_backward,
         lambda rng: (distinct(rng, (2, 4, 2)),), names=("x",), threshold=KINK_THRESHOLD, kinks=_DISTINCT),

    Case("softmax", "x (2, 3, 2), axis 1 (the (A, C, B) view)",
         partial(F.softmax_forward, axis=1), F.softmax_backward, _normal(2, 3, 2), names=("x",)),
    Case("log_softmax", "x (2, 4), axis -1", F.log_softmax_forward, F.log_softmax_backward, _normal(2, 4),
         names=("x",)),
    Case("cross_entropy", "logits (2, 3), uint8 target (converted on the device)", F.cross_entropy_forward,
         F.cross_entropy_backward,
         lambda rng: (2.0 * rng.standard_normal((2, 3)), rng.integers(0, 3, size=2).astype("uint8")),
         names=("logits",)),
    Case("cross_entropy", "logits (2, 3), probability targets (2, 3)", F.cross_entropy_forward,
         F.cross_entropy_backward, _probability_targets, names=("logits",)),
    Case("mse", "y, t (2, 2)", F.mse_forward, F.mse_backward, _normals((2, 2), (2, 2)), names=("y",)),
    Case("mae", "y, t (2, 2)", F.mae_forward, F.mae_backward, _mae, names=("y",), threshold=KINK_THRESHOLD,
         kinks="y - t drawn with |y - t| >= 0.1 (away_from_zero), off the kink of |y - t| at 0"),
    Case("bce", "p in (0.05, 0.95), t in {0, 1}, (2, 2)", F.bce_forward, F.bce_backward,
         lambda rng: (rng.uniform(0.05, 0.95, (2, 2)), rng.integers(0, 2, size=(2, 2)).astype(float)),
         names=("p",)),
    Case("bce_with_logits", "z (2, 2) scaled by 3, soft t", F.bce_with_logits_forward, F.bce_with_logits_backward,
         lambda rng: (3.0 * rng.standard_normal((2, 2)), rng.uniform(0.0, 1.0, (2, 2))), names=("z",)),

    Case("dropout", "x (2, 3), p 0.5, seed 3 (the CPU's mask)", partial(F.dropout_forward, p=0.5, seed=3),
         F.dropout_backward, _normal(2, 3), names=("x",)),
    Case("dropout", "x (2, 2), inference (identity)", partial(F.dropout_forward, p=0.5, training=False),
         F.dropout_backward, _normal(2, 2), names=("x",)),
    Case("dropout", "x (2, 3), p 0.5, seed 3, classic: x * mask",
         partial(F.dropout_forward, p=0.5, seed=3, mode="classic"), F.dropout_backward, _normal(2, 3),
         names=("x",)),
    Case("dropout", "x (2, 2), p 0.25, inference, classic: 0.75 x",
         partial(F.dropout_forward, p=0.25, training=False, mode="classic"), F.dropout_backward, _normal(2, 2),
         names=("x",)),

    Case("batch_norm", "training, x (3, 2)", F.batch_norm_forward, F.batch_norm_backward, _batch_norm_inputs((3, 2)),
         names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "training, x (3, 2), unbiased=False", partial(F.batch_norm_forward, unbiased=False),
         F.batch_norm_backward, _batch_norm_inputs((3, 2)), names=BATCH_NORM_NAMES, in_place=RUNNING),
    Case("batch_norm", "inference, x (2, 2, 2)", partial(F.batch_norm_forward, training=False),
         F.batch_norm_backward, _batch_norm_inputs((2, 2, 2)), names=BATCH_NORM_NAMES,
         in_place=RUNNING),
    Case("layer_norm", "x (2, 2, 2) over the last 2 axes", partial(F.layer_norm_forward, normalized_ndim=2),
         F.layer_norm_backward, _affine_inputs((2, 2, 2), (2, 2)), names=_XGB),
    Case("instance_norm", "x (2, 2, 3)", F.instance_norm_forward, F.instance_norm_backward,
         _affine_inputs((2, 2, 3), (2,)), names=_XGB),
    Case("group_norm", "x (2, 4, 2), 2 groups", partial(F.group_norm_forward, num_groups=2),
         F.group_norm_backward, _affine_inputs((2, 4, 2), (4,)), names=_XGB),
    Case("weight_standardize", "w (2, 2, 2)", F.weight_standardize_forward, F.weight_standardize_backward,
         _normal(2, 2, 2), names=("w",)),
    Case("local_response_norm", "x (1, 4, 2), size 3, alpha 0.5, k 2",
         partial(F.local_response_norm_forward, size=3, alpha=0.5, beta=0.75, k=2.0),
         F.local_response_norm_backward, _normal(1, 4, 2), names=("x",)),
]


def cuda_cases() -> list[Case]:
    """The cases ``nbconv gradcheck --device cuda`` runs: every op of the registry, small shapes."""
    return list(CASES)
