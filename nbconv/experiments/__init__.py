"""The lectures' training experiments, run on the digits (``nbconv experiment``).

Each module trains small networks to show one point of the lectures, prints a table and checks
that the expected effect appeared (see ``nbconv.experiments.base``):

    vanishing-gradients   the gradient norm per layer of a 10-layer sigmoid net, plain vs residual
    symmetry              zero / constant initialization keeps every unit of a layer the same
    batch-norm-lr         the same net with and without batch norm at several learning rates
    dropout-gap           dropout and the gap between training and validation accuracy
    learning-rate         SGD with a learning rate too small, right, too large, far too large

``EXPERIMENTS`` maps each name to its ``Experiment``; ``perform(name)`` runs one and times it.
Every run is seeded and single-threaded, so its numbers (and its checks) are the same on every
run; each takes seconds (well under a minute) on two cores.  docs/experiments.md explains them.
"""

from __future__ import annotations

import time

from . import batchnorm, dropout, learning_rate, symmetry, vanishing
from .base import Experiment, Finding, Outcome

__all__ = ["EXPERIMENTS", "Experiment", "Finding", "Outcome", "perform"]

EXPERIMENTS: dict[str, Experiment] = {module.EXPERIMENT.name: module.EXPERIMENT for module in
                                      (vanishing, symmetry, batchnorm, dropout, learning_rate)}


def perform(name: str, quick: bool = False) -> Outcome:
    """Run the experiment ``name`` (a key of EXPERIMENTS) and return its Outcome, ``seconds`` set to
    its wall time.  ``quick=True`` is the smaller run of the tests."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose from: {', '.join(EXPERIMENTS)}")
    tic = time.perf_counter()
    outcome = EXPERIMENTS[name].run(quick=quick)
    outcome.seconds = time.perf_counter() - tic
    return outcome
