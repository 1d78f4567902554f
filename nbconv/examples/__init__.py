"""The course's worked examples, replayed through nbconv's public API (``nbconv example``).

Each module holds the examples of one topic as functions returning a ``Replay`` (see
``nbconv.examples.replay``), and lists them in its ``EXAMPLES``; ``EXAMPLES`` here gathers them
all, by name, in the order of the course.  ``nbconv example --list`` prints the names and what
each shows, ``nbconv example NAME`` replays one and exits 1 if a value disagrees; the tests run
every one.
"""

from __future__ import annotations

from . import backprop, neurons, descent, convolution, pooling, normalization, regularization, residual
from . import shapes
from . import pictures
from .replay import Check, Example, Replay

__all__ = ["EXAMPLES", "Check", "Example", "Replay", "replay"]

_TOPICS = (neurons, descent, backprop, convolution, pooling, normalization, regularization, residual,
           shapes, pictures)

EXAMPLES: dict[str, Example] = {ex.name: ex for topic in _TOPICS for ex in topic.EXAMPLES}


def replay(name: str) -> Replay:
    """Run the worked example ``name`` (a key of EXAMPLES)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose from: {', '.join(EXAMPLES)}")
    return EXAMPLES[name].run()
