"""Weight initializers, each seeded through a numpy Generator.

fan_in is the number of inputs of one unit, fan_out the number of units an
input feeds: for a linear weight (out, in) they are in and out; for a conv
weight (F, C, KH, KW) they are C*KH*KW and F*KH*KW.

    normal(shape, rng)          N(0, 1/fan_in)            the lecture's choice (LeCun)
    xavier_normal(shape, rng)   N(0, 2/(fan_in + fan_out))  Glorot & Bengio
    xavier_uniform(shape, rng)  U(-a, a), a = sqrt(6/(fan_in + fan_out))
    he_normal(shape, rng)       N(0, 2/fan_in)            He et al., for ReLU nets
    he_uniform(shape, rng)      U(-a, a), a = sqrt(6/fan_in)

The layers draw their weights through two helpers: ``as_rng(seed)`` (a Generator from a seed,
a Generator or None) and ``weight_init(name_or_fn, rng)`` (the initializer as a function of the
shape alone, as ``Layer.init_params`` takes it).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fans", "normal", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "zeros", "ones",
           "INITIALIZERS", "as_rng", "weight_init"]


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of ``shape``: (out, in) or (out, in, *kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fan_in and fan_out need a weight of rank >= 2, got shape {tuple(shape)}")
    if any(int(size) < 1 for size in shape):
        raise ValueError(f"fan_in and fan_out need every dimension >= 1, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def normal(shape, rng: np.random.Generator) -> np.ndarray:
    fan_in, _ = fans(shape)
    return rng.normal(0.0, math.sqrt(1.0 / fan_in), size=shape)


def xavier_normal(shape, rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def xavier_uniform(shape, rng: np.random.Generator) -> np.ndarray:
    fan_in, fan_out = fans(shape)
    a = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def he_normal(shape, rng: np.random.Generator) -> np.ndarray:
    fan_in, _ = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)


def he_uniform(shape, rng: np.random.Generator) -> np.ndarray:
    fan_in, _ = fans(shape)
    a = math.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape)


def zeros(shape, rng=None) -> np.ndarray:
    return np.zeros(shape)


def ones(shape, rng=None) -> np.ndarray:
    return np.ones(shape)


INITIALIZERS = {"normal": normal, "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform,
                "he_normal": he_normal, "he_uniform": he_uniform}


def as_rng(seed) -> np.random.Generator:
    """A numpy Generator from a seed, a Generator, or None (fresh entropy)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def weight_init(name_or_fn, rng):
    """``shape -> array``: the initializer named ``name_or_fn`` (a key of INITIALIZERS) or the
    function ``name_or_fn(shape, rng)`` itself, drawing from ``rng``."""
    fn = INITIALIZERS[name_or_fn] if isinstance(name_or_fn, str) else name_or_fn
    return lambda shape: fn(shape, rng)
