"""The lecture's backpropagation worked example, replayed through nbconv.functional.

    y = tanh(x1*w1 + x2*w2 + b),  L = (y - t)^2
    x = [2.0, -0.5], t = -1, w = [1.0, 3.0], b = -1.2, one SGD step with eta = 0.7

The graph of the lecture names its nodes v1 = x1*w1, v2 = x2*w2, v3 = v1 + v2,
v4 = v3 + b.  The forward pass runs the neuron as ``linear`` (v4) -> ``tanh``
(y) -> ``mse`` (L, the mean of one squared error); the backward pass runs their
``*_backward`` in reverse.  Each value is printed next to the lecture's figure
(the text rounds and truncates; LECTURE below keeps the exact value beside each figure).

Every derivative d<a>/d<n> is also estimated numerically, without nbconv: ``graph``
writes the same graph as a plain-Python function of the inputs in which any node (or
input) can be nudged by +-h where it is computed, and ``backprop_numeric`` takes the
central difference (a(n + h) - a(n - h)) / 2h of the target a for d<a>/d<n>.

``nbconv example backprop`` (and ``nbconv gradcheck --example backprop``) prints the table
of ``backprop``: one checked row per quantity, nbconv's value beside the numeric estimate,
the true value and the lecture's figure.
"""

from __future__ import annotations

import math

import numpy as np

import nbconv.functional as F

from .replay import Check, Example, Replay

# name -> (the exact value, the figure as the lecture prints it)
LECTURE = {
    "v1": (2.0, "2"), "v2": (-1.5, "-1.5"), "v3": (0.5, "0.5"), "v4": (-0.7, "-0.7"),
    "y": (-0.604368, "-0.6043"), "L": (0.156525, "0.1567"),
    "dv1/dx1": (1.0, "1"), "dv1/dw1": (2.0, "2"), "dv2/dx2": (3.0, "3"), "dv2/dw2": (-0.5, "-0.5"),
    "dy/dv4": (0.634740, "0.635"),
    "dL/dy": (0.791264, "0.7912"), "dL/dv4": (0.502247, "0.5022"), "dL/db": (0.502247, "0.5022"),
    "dL/dv3": (0.502247, "0.5022"), "dL/dv1": (0.502247, "0.5022"), "dL/dv2": (0.502247, "0.5022"),
    "dL/dw1": (1.004494, "1.0044"), "dL/dw2": (-0.251123, "-0.2511"),
    "dL/dx1": (0.502247, "0.5022"), "dL/dx2": (1.506741, "1.5067"),
    "w1 after step": (0.296854, "0.2969"), "w2 after step": (3.175786, "3.1757"),
    "b after step": (-1.551573, "-1.5515"),
}

# how close nbconv's value must be to the true value (LECTURE keeps 6 places)
TOLERANCE = 1e-6

# the worked example's inputs: x = [x1, x2], w = [w1, w2], b, the target t and the SGD step eta
X1, X2, W1, W2, B, T, ETA = 2.0, -0.5, 1.0, 3.0, -1.2, -1.0, 0.7

# the step of the numeric derivatives: central differences err by about h^2 times the third
# derivative (up to 1e-9 at h = 1e-5 for dL/dx2, whose nudge reaches v4 times w2 = 3) and
# rounding by about 1e-16 / h; h = 1e-6 keeps both near 1e-11, far below NUMERIC_TOLERANCE
NUMERIC_H = 1e-6
NUMERIC_TOLERANCE = 1e-8

GRAPH = "v1 = x1*w1, v2 = x2*w2, v3 = v1 + v2, v4 = v3 + b, y = tanh(v4), L = (y - t)^2"


def backprop_example(eta: float = ETA) -> dict[str, float]:
    """Every intermediate value of the worked example, computed by the functional ops."""
    x = np.array([[X1, X2]])             # one sample, two inputs
    w = np.array([[W1, W2]])             # one neuron
    b = np.array([B])
    t = np.array([[T]])

    # forward
    v4, lin_cache = F.linear_forward(x, w, b)            # v4 = x1*w1 + x2*w2 + b
    y, tanh_cache = F.tanh_forward(v4)
    L, mse_cache = F.mse_forward(y, t)
    v1, v2 = x[0, 0] * w[0, 0], x[0, 1] * w[0, 1]      # the graph's named nodes inside linear
    v3 = v1 + v2

    # backward, the chain rule one node at a time
    (dL_dy,) = F.mse_backward(1.0, mse_cache)            # 2 (y - t)
    (dL_dv4,) = F.tanh_backward(dL_dy, tanh_cache)       # dL/dy * (1 - y^2)
    dL_dx, dL_dw, dL_db = F.linear_backward(dL_dv4, lin_cache)
    # v4 = v3 + b and v3 = v1 + v2: addition hands its gradient unchanged to each summand
    dL_dv3 = dL_dv1 = dL_dv2 = dL_dv4[0, 0]

    w_new = w - eta * dL_dw                               # one SGD step
    b_new = b - eta * dL_db
    return {
        "v1": v1, "v2": v2, "v3": v3, "v4": v4[0, 0], "y": y[0, 0], "L": float(L),
        "dv1/dx1": w[0, 0], "dv1/dw1": x[0, 0], "dv2/dx2": w[0, 1], "dv2/dw2": x[0, 1],
        "dy/dv4": 1.0 - y[0, 0] ** 2,
        "dL/dy": dL_dy[0, 0], "dL/dv4": dL_dv4[0, 0], "dL/db": dL_db[0],
        "dL/dv3": dL_dv3, "dL/dv1": dL_dv1, "dL/dv2": dL_dv2,
        "dL/dw1": dL_dw[0, 0], "dL/dw2": dL_dw[0, 1], "dL/dx1": dL_dx[0, 0], "dL/dx2": dL_dx[0, 1],
        "w1 after step": w_new[0, 0], "w2 after step": w_new[0, 1], "b after step": b_new[0],
    }


def graph(x1=X1, x2=X2, w1=W1, w2=W2, b=B, t=T, nudge=None) -> dict[str, float]:
    """The worked example's graph in plain Python (no nbconv), node by node:

        v1 = x1*w1, v2 = x2*w2, v3 = v1 + v2, v4 = v3 + b, y = tanh(v4), L = (y - t)^2

    ``nudge`` maps names of nodes or inputs to a number added where that value is
    computed, so every node after it sees the change: ``graph(nudge={"v3": h})`` is the
    graph with v3 + h in place of v3.  Returns every input and node by name."""
    nudge = nudge or {}
    unknown = set(nudge) - {"x1", "x2", "w1", "w2", "b", "t", "v1", "v2", "v3", "v4", "y", "L"}
    if unknown:
        raise ValueError(f"graph has no node or input {sorted(unknown)}")

    def node(name, value):
        return value + nudge.get(name, 0.0)

    x1, x2 = node("x1", x1), node("x2", x2)             # the inputs can be nudged too
    w1, w2, b, t = node("w1", w1), node("w2", w2), node("b", b), node("t", t)
    v1 = node("v1", x1 * w1)
    v2 = node("v2", x2 * w2)
    v3 = node("v3", v1 + v2)
    v4 = node("v4", v3 + b)
    y = node("y", math.tanh(v4))
    L = node("L", (y - t) ** 2)
    return {"x1": x1, "x2": x2, "w1": w1, "w2": w2, "b": b, "t": t,
            "v1": v1, "v2": v2, "v3": v3, "v4": v4, "y": y, "L": L}


def numeric_derivative(target: str, source: str, h: float = NUMERIC_H) -> float:
    """d target / d source by central differences on ``graph``:
    (target(source + h) - target(source - h)) / 2h."""
    up = graph(nudge={source: h})[target]
    down = graph(nudge={source: -h})[target]
    return (up - down) / (2.0 * h)


def _derivative(name: str):
    """'dL/dw1' -> ('L', 'w1'); None for the rows that are not derivatives."""
    top, slash, bottom = name.partition("/")
    if slash and top.startswith("d") and bottom.startswith("d"):
        return top[1:], bottom[1:]
    return None


def backprop_numeric(eta: float = ETA, h: float = NUMERIC_H) -> dict[str, float]:
    """name -> numeric value, for the rows of ``backprop_example`` that have one: every
    derivative d<a>/d<n> by ``numeric_derivative``, and the "after step" rows as the SGD
    step taken with the numeric gradients.  The value rows (v1 ... L) have none."""
    numeric = {}
    for name in LECTURE:                      # the rows of backprop_example, in order
        pair = _derivative(name)
        if pair:
            numeric[name] = numeric_derivative(*pair, h=h)
    for param, start in (("w1", W1), ("w2", W2), ("b", B)):
        numeric[f"{param} after step"] = start - eta * numeric[f"dL/d{param}"]
    return numeric


def backprop() -> Replay:
    """The worked example as a table: a row per quantity, checked against its true value, and
    one more check that the numeric derivatives agree with nbconv's."""
    r = Replay("backprop", "Backpropagation worked example of the lecture \"Introduction to neural networks\"")
    values = backprop_example()
    numeric = backprop_numeric()
    r.say("y = tanh(x1*w1 + x2*w2 + b), L = (y - t)^2",
          f"x = [{X1}, {X2}], t = {T:g}, w = [{W1}, {W2}], b = {B}, SGD step eta = {ETA}",
          f"graph nodes: {GRAPH}",
          "",
          f"{'quantity':<15} {'nbconv':>12} {'numeric':>12} {'true value':>12} {'lecture':>9}  ok")
    for name, value in values.items():
        true, text = LECTURE[name]
        row = Check(name, value, true, lecture=text, tol=TOLERANCE)
        r.checks.append(row)                  # the table row below is its line
        num = f"{numeric[name]:>12.6f}" if name in numeric else f"{'-':>12}"
        r.say(f"{name:<15} {value:>12.6f} {num} {true:>12.6f} {text:>9}  {'yes' if row.ok else 'NO'}")
    r.say("",
          "nbconv      the functional ops: linear, tanh and mse forward, their *_backward in reverse",
          f"numeric     d<a>/d<n> as (a(n + h) - a(n - h)) / 2h with h = {NUMERIC_H:g}: the graph above in",
          "            plain Python, node n nudged by +-h where it is computed; after-step rows: the",
          "            SGD step with the numeric gradient; value rows: no derivative (-)",
          "true value  the exact value, to 6 places",
          "lecture     the figure as the lecture prints it: it truncates the gradients to 4 places, and",
          "            its L = 0.1567 is a slip (its own rounded y gives (-0.6043 + 1)^2 = 0.15658)",
          f"ok          nbconv's value matches the true value to {TOLERANCE:g}",
          "")
    worst = max(abs(numeric[name] - values[name]) for name in numeric)
    r.check("largest |numeric - nbconv|", worst, 0.0, tol=NUMERIC_TOLERANCE,
            note=f"{worst:.1e}, allowed {NUMERIC_TOLERANCE:g}")
    return r


EXAMPLES = [
    Example("backprop", "the lecture's backpropagation example: every node, derivative and the SGD step",
            backprop),
]
