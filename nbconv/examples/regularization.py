"""Dropout, the third lecture: inverted dropout and its expectation.

In training each unit is kept with probability q and dropped (set to 0) otherwise; the kept
ones are divided by q, so that the expectation of a unit's output is its input,

    E[out] = q * (x / q) + (1 - q) * 0 = x,

and inference needs no rescaling (the lecture's second variant; the first multiplies by q at
test time instead).  Beware the names: the lecture's p is the probability of KEEPING a unit
(q here); nbconv's ``p`` (as PyTorch's) is the probability of DROPPING one, 1 - q.

nbconv draws the mask in the kernel from an int seed by SplitMix64: element i is kept when
(z_i >> 11) >= ceil(p * 2^53), z_i the i-th output of SplitMix64 started from the seed
(nbconv.functional.dropout).  ``splitmix64_mask`` below redraws it in plain Python.
"""

from __future__ import annotations

import math

import numpy as np

import nbconv.functional as F

from .replay import Example, Replay, fmt

DROP = 0.2                  # nbconv's p: the probability of dropping a unit
KEEP = 1.0 - DROP           # the lecture's p: the probability of keeping it (0.8)
X = [1.0, -2.0, 0.5, 3.0, -1.5, 2.5]
SEED = 7
DRAWS = 100_000             # masks averaged for the expectation
STANDARD_ERRORS = 4         # the tolerance of the statistical checks, in standard errors

_MASK64 = 2**64 - 1


def splitmix64(seed: int, i: int) -> int:
    """The i-th output (i = 0, 1, ...) of SplitMix64 started from ``seed``, in plain Python:
    the state after i + 1 draws is seed + (i + 1) * 0x9E3779B97F4A7C15 (mod 2^64), mixed by
    z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9, z = (z ^ z >> 27) * 0x94D049BB133111EB, z ^ z >> 31."""
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def splitmix64_mask(seed: int, count: int, p: float) -> list[bool]:
    """keep[i] = u_i >= p, u_i = (z_i >> 11) / 2^53 uniform in [0, 1), z_i = splitmix64(seed, i)."""
    threshold = math.ceil(p * 2.0**53)
    return [(splitmix64(seed, i) >> 11) >= threshold for i in range(count)]


def dropout() -> Replay:
    """One mask, its scale 1/(1 - p), the backward pass through the same mask, and the mean of
    out over many masks approaching x."""
    r = Replay("dropout", "Inverted dropout: a mask, the scale 1 / (1 - p), and E[out] = x")
    r.say(f"the lecture keeps a unit with probability p = {KEEP}; nbconv's p is the probability of",
          f"dropping it: F.dropout_forward(x, p={fmt(DROP)}) keeps each unit with probability "
          f"1 - p = {KEEP}",
          f"x = {X}, seed = {SEED}", "")

    x = np.array(X)
    out, cache = F.dropout_forward(x, p=DROP, seed=SEED)
    mask = splitmix64_mask(SEED, len(X), DROP)
    scale = 1.0 / KEEP
    r.say("nbconv: out, cache = F.dropout_forward(x, p=0.2, seed=7); the mask redrawn in plain Python")
    r.show("  mask (cache.keep)", cache.keep.astype(int))
    r.show("  out", out)
    r.check("mask (1 = kept)", cache.keep.astype(int), np.array(mask, dtype=int))
    r.check("scale = 1 / (1 - p)", cache.scale, 1.0 / (1.0 - DROP), lecture="divide by p",
            note="its p = 0.8 keeps")
    r.check("out = x * mask * scale", out, [xi * scale if kept else 0.0 for xi, kept in zip(X, mask)])
    (dx,) = F.dropout_backward(np.ones_like(x), cache)
    inference, _ = F.dropout_forward(x, p=DROP, training=False)
    r.show("  dL/dx = F.dropout_backward(ones, cache)", dx)
    r.show("  out at inference, training=False", inference)
    r.check("dL/dx for dL/dout = 1", dx, [scale if kept else 0.0 for kept in mask],
            note="the same units dropped")
    r.check("out at inference", inference, X, note="the identity: nothing to rescale")

    # many masks at once: x repeated DRAWS times, one row per draw (each element its own counter)
    many, cache = F.dropout_forward(np.tile(x, (DRAWS, 1)), p=DROP, seed=SEED + 1)
    # out = x * B / q, B ~ Bernoulli(q): var(out) = x^2 (1 - q) / q, so the mean of DRAWS draws
    # has standard error |x| sqrt((1 - q) / (q DRAWS)); a Bernoulli mean, sqrt(q (1 - q) / count)
    mean_tol = STANDARD_ERRORS * max(abs(v) for v in X) * math.sqrt(DROP / (KEEP * DRAWS))
    kept_tol = STANDARD_ERRORS * math.sqrt(KEEP * DROP / many.size)
    r.say("", f"E[out] = q * x / q + (1 - q) * 0 = x: the mean of out over {DRAWS} masks (x repeated",
          f"{DRAWS} times, seed {SEED + 1}), allowed {STANDARD_ERRORS} standard errors of the mean:",
          f"{kept_tol:.1e} for the fraction kept, {mean_tol:.1e} for the mean of out")
    r.show("  mean of out over the draws", many.mean(axis=0))
    r.check("fraction kept", float(cache.keep.mean()), KEEP, lecture="p = 0.8", tol=kept_tol)
    r.check("mean of out over the draws", many.mean(axis=0), X, tol=mean_tol)
    return r


EXAMPLES = [
    Example("dropout", "inverted dropout: a seeded mask, scale 1/(1-p), mean of out over many masks -> x",
            dropout),
]
