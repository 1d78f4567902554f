"""``nbconv gradcheck --example NAME``: the worked examples that check gradients.

The backpropagation example lives in ``nbconv.examples.backprop`` (``nbconv example
backprop`` replays it too); its pieces stay importable from here.
"""

from __future__ import annotations

from nbconv.examples.backprop import (GRAPH, LECTURE, NUMERIC_H, backprop, backprop_example,
                                      backprop_numeric, graph, numeric_derivative)

__all__ = ["EXAMPLES", "GRAPH", "LECTURE", "NUMERIC_H", "backprop", "backprop_example",
           "backprop_numeric", "graph", "numeric_derivative"]

# name -> the function that replays it (a Replay: print its render(), exit 1 unless ok)
EXAMPLES = {"backprop": backprop}
