"""Checks of scalar hyper-parameters (learning rates, decay rates, counts, sizes), shared by
nbconv.optim, nbconv.schedule, nbconv.training, the layers (nbconv.layers), nbconv.shapes and
nbconv.summary.  Each raises TypeError or ValueError naming the argument.

(The functional ops check theirs in nbconv.functional._checks, next to their array checks.)

    _real, _positive, _non_negative   a finite real number (> 0, >= 0): TypeError / ValueError
    _positive_int                     an int >= 1: TypeError for a non-int, ValueError below 1
    _int_at_least                     an int >= minimum, ValueError for both (a layer's sizes:
                                      "num_features must be an int >= 1, got 0")
"""

from __future__ import annotations

import math
import numbers


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _positive(name: str, value) -> float:
    value = _real(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _non_negative(name: str, value) -> float:
    value = _real(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _int_at_least(name: str, value, minimum: int = 1, *, hint: str = "") -> int:
    """A size or count (an int, not a bool) of at least ``minimum``; anything else is a ValueError
    "<name> must be an int >= <minimum><hint>, got <value!r>".  Returns ``value`` itself."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}{hint}, got {value!r}")
    return value
