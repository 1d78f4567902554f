"""Normalization, the third lecture: batch norm in training and inference, and which values
share their statistics in batch, layer, instance and group norm.

Every normalization splits the values into groups and maps each group to zero mean and unit
variance, xhat = (x - mean) / sqrt(var + eps) (var biased), then out = gamma * xhat + beta.
For x of shape (N, C, H, W), the lecture's T samples of M maps of H x W:

    batch norm      one group per channel c, over (n, h, w)
    layer norm      one group per sample n, over (c, h, w)
    instance norm   one group per (n, c), over (h, w)
    group norm      one group per (n, group of C / G consecutive channels), over those and (h, w)

Batch norm in training uses the batch's statistics and updates running ones,
running = alpha * running + (1 - alpha) * batch statistic (the lecture's alpha is nbconv's
1 - momentum); in inference it uses the running statistics alone.
"""

from __future__ import annotations

import math

import numpy as np

import nbconv.functional as F

from .pictures import new_figure, save_png
from .replay import Example, Replay, fmt

EPS = 1e-5


# --- batch norm -------------------------------------------------------------------------------

# four samples of two features, one row per sample
BATCH = [[1.0, -1.0], [3.0, 0.0], [5.0, 2.0], [7.0, 3.0]]
GAMMA = [2.0, 0.5]
BETA = [1.0, -1.0]
MOMENTUM = 0.1              # the lecture's alpha = 1 - momentum = 0.9
TRAINING_STEPS = 20         # training forwards on the batch before the inference one


def _column(rows, c):
    return [row[c] for row in rows]


def batch_statistics(rows) -> tuple[list[float], list[float]]:
    """Per feature c: mean_c = (1/m) sum_n x[n][c] and the biased var_c = (1/m) sum_n (x[n][c] - mean_c)^2."""
    m = len(rows)
    means = [sum(_column(rows, c)) / m for c in range(len(rows[0]))]
    variances = [sum((v - mu) ** 2 for v in _column(rows, c)) / m for c, mu in enumerate(means)]
    return means, variances


def normalize(rows, means, variances, gamma, beta) -> tuple[list[list[float]], list[list[float]]]:
    """xhat[n][c] = (x[n][c] - mean_c) / sqrt(var_c + eps) and out = gamma_c * xhat + beta_c."""
    xhat = [[(v - means[c]) / math.sqrt(variances[c] + EPS) for c, v in enumerate(row)] for row in rows]
    out = [[gamma[c] * h + beta[c] for c, h in enumerate(row)] for row in xhat]
    return xhat, out


def batch_norm() -> Replay:
    """Batch norm of four samples of two features: training (batch statistics, the running ones
    updated), then inference (the running statistics only)."""
    r = Replay("batch-norm", "Batch norm of a batch of 4 samples: training, then inference")
    m = len(BATCH)
    r.say(f"x (one row per sample, two features) = {BATCH}",
          f"gamma = {GAMMA}, beta = {BETA}, eps = {EPS:g}, momentum = {MOMENTUM} (the lecture's alpha = "
          f"{fmt(1 - MOMENTUM)}),",
          "running statistics start at mean 0 and var 1", "")

    means, variances = batch_statistics(BATCH)
    unbiased = [v * m / (m - 1) for v in variances]
    xhat_true, out_true = normalize(BATCH, means, variances, GAMMA, BETA)
    r.say("Training: the statistics of the batch, per feature (plain Python):",
          f"  mean = (1/4) sum_n x = {fmt(means)}",
          f"  var  = (1/4) sum_n (x - mean)^2 = {fmt(variances)}  (biased: normalizes the batch)",
          f"  var * 4/3 = {fmt(unbiased)}  (unbiased: smooths the running var, as in the paper)")

    x = np.array(BATCH)
    gamma, beta = np.array(GAMMA), np.array(BETA)
    running_mean, running_var = np.zeros(2), np.ones(2)
    out, cache = F.batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True,
                                      momentum=MOMENTUM, eps=EPS)
    r.say("nbconv: out, cache = F.batch_norm_forward(x, gamma, beta, running_mean, running_var, "
          "training=True)")
    var_used = 1.0 / cache.inv_std ** 2 - EPS
    r.show("  the var it used, 1 / inv_std^2 - eps", var_used)
    r.show("  xhat (cache.xhat)", cache.xhat)
    r.show("  out", out)
    r.check("var used, 1/inv_std^2 - eps", var_used, variances, tol=1e-9)
    r.check("xhat, batch statistics", cache.xhat, xhat_true)
    r.check("out = gamma * xhat + beta", out, out_true)
    r.say("", "the running statistics after this step, running = 0.9 running + 0.1 batch statistic:")
    r.show("  running mean", running_mean)
    r.show("  running var", running_var)
    # copies: the running statistics are updated in place by the forwards below
    r.check("running mean", running_mean.copy(), [0.9 * 0.0 + 0.1 * mu for mu in means])
    r.check("running var", running_var.copy(), [0.9 * 1.0 + 0.1 * v for v in unbiased],
            note=f"lecture, biased var: {fmt([0.9 + 0.1 * v for v in variances])}")

    for _ in range(TRAINING_STEPS - 1):
        F.batch_norm_forward(x, gamma, beta, running_mean, running_var, training=True,
                             momentum=MOMENTUM, eps=EPS)
    decay = (1 - MOMENTUM) ** TRAINING_STEPS
    mean_k = [(1 - decay) * mu for mu in means]                      # from 0
    var_k = [v + decay * (1.0 - v) for v in unbiased]                # from 1
    r.say("", f"after {TRAINING_STEPS} training steps on this batch, each running statistic r has "
          f"moved from r_0 toward",
          f"the batch's s as r_k = s + 0.9^k (r_0 - s): 0.9^{TRAINING_STEPS} = {fmt(decay)}")
    r.show("  running mean", running_mean)
    r.show("  running var", running_var)
    r.check(f"running mean, k = {TRAINING_STEPS}", running_mean.copy(), mean_k)
    r.check(f"running var, k = {TRAINING_STEPS}", running_var.copy(), var_k)

    inference, _ = F.batch_norm_forward(x, gamma, beta, running_mean, running_var, training=False, eps=EPS)
    _, inference_true = normalize(BATCH, mean_k, var_k, GAMMA, BETA)
    r.say("", "Inference: training=False normalizes with the running statistics, not the batch's:",
          "  out = gamma * (x - running mean) / sqrt(running var + eps) + beta")
    r.show("  out", inference)
    r.check("out (inference)", inference, inference_true)
    alone, _ = F.batch_norm_forward(x[2:3], gamma, beta, running_mean, running_var, training=False, eps=EPS)
    r.show("  out of sample 3 alone, F.batch_norm_forward(x[2:3], ...)", alone)
    r.check("out of sample 3 alone", alone[0], inference_true[2],
            note="in inference, each on its own")
    r.check("running mean after inference", running_mean, mean_k, note="inference changes nothing")
    return r


# --- which values share their statistics ------------------------------------------------------

SHAPE = (2, 4, 2, 2)        # (N, C, H, W)
GROUPS = 2                  # group norm's G: two groups of two channels


def group_ids(norm: str, shape=SHAPE, num_groups: int = GROUPS) -> np.ndarray:
    """For every element of an (N, C, H, W) tensor, the id of the statistics group it belongs to:

        batch     c                             (one group per channel)
        layer     n                             (one per sample)
        instance  n * C + c                     (one per sample and channel)
        group     n * G + c // (C / G)          (one per sample and group of channels)
    """
    N, C, H, W = shape
    n, c, _, _ = np.indices(shape)
    if norm == "batch":
        return c
    if norm == "layer":
        return n
    if norm == "instance":
        return n * C + c
    if norm == "group":
        return n * num_groups + c // (C // num_groups)
    raise ValueError(f"norm must be 'batch', 'layer', 'instance' or 'group', got {norm!r}")


def draw(ids: np.ndarray) -> list[str]:
    """The ids of an (N, C, H, W) tensor as text: a block of H rows per sample, the channels'
    H x W maps side by side."""
    N, C, H, W = ids.shape
    lines = ["        " + "   ".join(f"c={c}".ljust(2 * W - 1) for c in range(C))]
    for n in range(N):
        for h in range(H):
            label = f"  n={n}   " if h == 0 else "        "
            lines.append(label + "   ".join(" ".join(str(v) for v in ids[n, c, h]) for c in range(C)))
    return lines


def normalize_by_groups(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(x - mean) / sqrt(var + eps), mean and biased var taken over the elements sharing an id."""
    out = np.empty_like(x)
    for g in np.unique(ids):
        members = ids == g
        values = x[members]
        out[members] = (values - values.mean()) / np.sqrt(values.var() + EPS)
    return out


def group_means(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The mean of ``values`` over each group, in the order of the ids."""
    return np.array([values[ids == g].mean() for g in np.unique(ids)])


def nbconv_norm(norm: str, x: np.ndarray) -> np.ndarray:
    """out of nbconv's ``norm`` with gamma = 1 and beta = 0, so out = xhat."""
    N, C, H, W = x.shape
    ones, zeros = np.ones(C), np.zeros(C)
    if norm == "batch":
        out, _ = F.batch_norm_forward(x, ones, zeros, np.zeros(C), np.ones(C), training=True, eps=EPS)
    elif norm == "layer":
        out, _ = F.layer_norm_forward(x, np.ones((C, H, W)), np.zeros((C, H, W)), normalized_ndim=3, eps=EPS)
    elif norm == "instance":
        out, _ = F.instance_norm_forward(x, ones, zeros, eps=EPS)
    elif norm == "group":
        out, _ = F.group_norm_forward(x, ones, zeros, num_groups=GROUPS, eps=EPS)
    else:
        raise ValueError(f"norm must be 'batch', 'layer', 'instance' or 'group', got {norm!r}")
    return out


NORMS = {
    "batch": "F.batch_norm_forward: per channel, over the batch and the map",
    "layer": "F.layer_norm_forward(normalized_ndim=3): per sample, over all its maps",
    "instance": "F.instance_norm_forward: per sample and channel, over one map",
    "group": f"F.group_norm_forward(num_groups={GROUPS}): per sample and group of "
             f"{SHAPE[1] // GROUPS} channels",
}


def norm_groups() -> Replay:
    """For each normalization, every element of a (2, 4, 2, 2) tensor labelled by its statistics
    group; nbconv's output checked to be normalized over exactly those groups."""
    r = Replay("norm-groups", "Which values share a mean: batch, layer, instance and group norm")
    N, C, H, W = SHAPE
    x = np.random.default_rng(0).integers(-9, 10, size=SHAPE).astype(np.float64)
    r.say(f"x of shape (N, C, H, W) = {SHAPE}: {N} samples of {C} channels of {H}x{W} maps, integers drawn",
          "at random; each picture shows x's elements, the 2x2 maps of the channels side by side,",
          "each element labelled by the id of the group whose mean and variance normalize it.",
          "nbconv runs with gamma = 1, beta = 0 (out = xhat); NumPy normalizes over the drawn groups.")
    for norm, what in NORMS.items():
        ids = group_ids(norm)
        expected = normalize_by_groups(x, ids)
        out = nbconv_norm(norm, x)
        r.say("", f"{norm} norm, {what}: {len(np.unique(ids))} groups", *draw(ids))
        r.say(f"  the groups' means (NumPy): {fmt(group_means(x, ids), 4)}")
        r.show("  nbconv's out, its mean over each group", group_means(out, ids))
        r.check(f"  {norm}: out's mean per group", group_means(out, ids), np.zeros(len(np.unique(ids))),
                tol=1e-9)
        r.check(f"  {norm}: out - NumPy's, largest", float(np.max(np.abs(out - expected))), 0.0, tol=1e-9,
                note="(x - group mean) / sqrt(group var + eps)")
    return r


def draw_norm_groups(path) -> None:
    """The (N, C, H, W) tensor of ``norm-groups`` four times, each element coloured (and labelled)
    by the statistics group of batch, layer, instance and group norm: samples down, channels
    across, each channel's H x W map a block."""
    from matplotlib.colors import ListedColormap

    N, C, H, W = SHAPE
    fig = new_figure("norm-groups")
    axes = fig.subplots(2, 2).ravel()
    palette = ListedColormap([f"C{k % 10}" for k in range(N * C)])
    gap = 0.35                                         # between the channels' maps and the samples
    for ax, (name, what) in zip(axes, NORMS.items()):
        ids = group_ids(name)
        for n in range(N):
            for c in range(C):
                for h in range(H):
                    for w in range(W):
                        x0, y0 = c * (W + gap) + w, n * (H + gap) + h
                        g = int(ids[n, c, h, w])
                        ax.add_patch(_cell(x0, y0, palette(g % palette.N)))
                        ax.text(x0 + 0.5, y0 + 0.5, str(g), ha="center", va="center", fontsize=9, color="white")
        ax.set_xlim(-0.2, C * (W + gap) - gap + 0.2)
        ax.set_ylim(N * (H + gap) - gap + 0.2, -0.2)
        ax.set_aspect("equal")
        ax.set_xticks([c * (W + gap) + W / 2 for c in range(C)], [f"c={c}" for c in range(C)])
        ax.set_yticks([n * (H + gap) + H / 2 for n in range(N)], [f"n={n}" for n in range(N)])
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(f"{name} norm: {len(np.unique(ids))} groups\n{what}", fontsize=10)
    fig.suptitle(f"Which values share a mean and variance: x of shape (N, C, H, W) = {SHAPE}, "
                 f"each {H}x{W} map a block, each element coloured by its group", fontsize=11)
    save_png(fig, path)


def _cell(x0: float, y0: float, color):
    from matplotlib.patches import Rectangle
    return Rectangle((x0, y0), 1, 1, facecolor=color, edgecolor="white", lw=1.5)


EXAMPLES = [
    Example("batch-norm", "batch norm of 4 samples: batch statistics, running ones, then inference",
            batch_norm),
    Example("norm-groups", "which values share a mean in batch, layer, instance and group norm, drawn",
            norm_groups, draw_norm_groups),
]
