"""The registry: every backward of ``nbconv.functional`` with the inputs it is checked on.

Each op family lists its cases in ``nbconv.gradcheck.cases.<family>`` as
``CASES``; ``all_cases()`` gathers them.  ``tests/test_gradcheck.py``
fails when ``nbconv.functional`` has a ``*_backward`` that no case checks.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from .harness import GradientCheck, check_gradients, on_device

SMOOTH_THRESHOLD = 1e-7   # ops that are differentiable everywhere
KINK_THRESHOLD = 1e-6     # ops with kinks (ReLU at 0, max ties, |x| at 0), inputs drawn away from them


@dataclass(frozen=True)
class Case:
    """One gradient check: ``forward(*make_inputs(rng))`` against ``backward``."""

    op: str                                   # the op's name in nbconv.functional, e.g. "conv2d"
    label: str                                # what this case exercises, e.g. "im2col, stride 2"
    forward: Callable                         # (*inputs) -> (out, cache)
    backward: Callable                        # (dout, cache) -> grads; the nbconv.functional function
    make_inputs: Callable[[np.random.Generator], tuple]
    names: tuple[str, ...]                    # every input, or the differentiated ones, in order
    threshold: float = SMOOTH_THRESHOLD
    kinks: str | None = None                  # how the inputs avoid the op's kinks, if it has any
    in_place: tuple[str, ...] = ()            # inputs the forward updates in place by design (named in names)

    def forms(self) -> tuple:
        """The forms this op's forward takes as ``method`` (nbconv.functional.dispatch):
        ("naive", "fast"), or (None,) for an op whose case fixes its kernel itself (the
        convolutions name theirs: "direct", "im2col", "blocked")."""
        from nbconv.functional import dispatch
        return tuple(m for m in ("naive", "fast") if m in dispatch.CPU.get(self.op, {})) or (None,)

    def run(self, seed: int = 0, device: str = "cpu", method: str | None = None) -> GradientCheck:
        """The check on ``device``: "cpu", or "cuda" (inputs copied to the GPU at every
        evaluation of the finite differences, outputs and gradients copied back; see
        ``harness.on_device``), of the form ``method`` (one of ``forms()``; None: the default)."""
        rng = np.random.default_rng(seed)
        forward = self.forward if method is None else partial(self.forward, method=method)
        forward, backward = on_device(forward, self.backward, device)
        return check_gradients(forward, backward, self.make_inputs(rng), names=self.names,
                               threshold=self.threshold, seed=seed, allow_in_place=self.in_place)


def all_cases() -> list[Case]:
    from . import cases as package
    names = [info.name for info in pkgutil.iter_modules(package.__path__)]
    names.sort(key=lambda name: (package.ORDER.index(name) if name in package.ORDER else len(package.ORDER), name))
    found = []
    for name in names:
        found.extend(importlib.import_module(f"{package.__name__}.{name}").CASES)
    return found


def ops() -> list[str]:
    """The op names in the registry, in registry order, each once."""
    return list(dict.fromkeys(c.op for c in all_cases()))


def away_from_zero(rng: np.random.Generator, shape, margin: float = 0.1) -> np.ndarray:
    """Standard normal values pushed at least ``margin`` away from 0 (the kink of ReLU, |x|, ...)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def distinct(rng: np.random.Generator, shape, gap: float = 0.05) -> np.ndarray:
    """Values that differ pairwise by at least ``gap``, so max pooling and maxout have no ties."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * gap - size * gap / 2).reshape(shape)
