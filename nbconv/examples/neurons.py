"""The lecture's first examples ("Introduction to neural networks"): one neuron, a tanh layer,
softmax.

    neuron      y = f(w . x + b), f = ReLU, three inputs
    tanh-layer  y = tanh(W x + b), two inputs and three outputs
    softmax     softmax(z)_i = e^{z_i} / sum_k e^{z_k} of a vector of five logits

nbconv's linear computes y = x W^T + b with one row of x per sample: the lecture's column
vector x is one row, and the lecture's W (one row per output) is nbconv's weight as it is.
The expected values are the exact ones, written out in plain Python beside each step.
"""

from __future__ import annotations

import math

import numpy as np

import nbconv.functional as F

from .replay import Example, Replay, fmt


def _factor(value) -> str:
    """A number as a factor of a product: negative ones in parentheses, (-0.3)."""
    return f"({fmt(value)})" if value < 0 else fmt(value)


def neuron() -> Replay:
    """y = ReLU(w1*x1 + w2*x2 + w3*x3 + b) = ReLU(0.12 - 0.21 - 0.05 + 0.42) = 0.28."""
    r = Replay("neuron", "One neuron: y = f(w1*x1 + w2*x2 + w3*x3 + b), f = ReLU")
    x = [0.8, -0.3, 0.1]
    w = [0.15, 0.7, -0.5]
    b = 0.42
    r.say(f"x = {x}, w = {w}, b = {b}, f(s) = s for s > 0, 0 otherwise", "")

    terms = [wi * xi for wi, xi in zip(w, x)]
    r.say("each input times its weight:")
    for i, (wi, xi, term) in enumerate(zip(w, x, terms), start=1):
        r.say(f"  w{i} * x{i} = {fmt(wi)} * {_factor(xi)} = {fmt(term)}")
    total = " + ".join(fmt(t) for t in [*terms, b]).replace("+ -", "- ")
    r.say(f"  y = f({total}) = f({fmt(sum(terms) + b)})", "")

    s, _ = F.linear_forward(np.array([x]), np.array([w]), np.array([b]))   # one sample, one neuron
    y, _ = F.relu_forward(s)
    r.say("nbconv: s = F.linear_forward(x, w, b), y = F.relu_forward(s)")
    r.check("s = w . x + b", s[0, 0], 0.28, lecture="0.12 - 0.21 - 0.05 + 0.42")
    r.check("y = ReLU(s)", y[0, 0], 0.28, lecture="0.28", note="s > 0, so ReLU passes it")
    return r


def tanh_layer() -> Replay:
    """y = tanh(W x + b) for the lecture's 3x2 weight: W x + b = [0.285, -0.533, 0.762]."""
    r = Replay("tanh-layer", "A layer of three neurons with tanh: y = tanh(W x + b)")
    W = [[0.15, -0.7], [0.02, 0.81], [1.1, -0.24]]
    b = [0.0, -0.3, 0.14]
    x = [0.5, -0.3]
    r.say(f"W = {W}", f"b = {b}, x = {x}", "")

    # the exact values, one row of W at a time
    s_true = [row[0] * x[0] + row[1] * x[1] + bi for row, bi in zip(W, b)]
    r.say("row by row, W x + b:")
    for i, (row, bi, si) in enumerate(zip(W, b, s_true), start=1):
        r.say(f"  s{i} = {fmt(row[0])} * {_factor(x[0])} + {_factor(row[1])} * {_factor(x[1])} + {_factor(bi)}"
              f" = {fmt(si)}")
    r.say("")

    s, _ = F.linear_forward(np.array([x]), np.array(W), np.array(b))
    y, _ = F.tanh_forward(s)
    r.say("nbconv: s = F.linear_forward(x, W, b) (W as the lecture writes it, a row per output),",
          "        y = F.tanh_forward(s)")
    r.say(f"  s = {fmt(s[0])}", f"  y = {fmt(y[0])}")
    r.check("W x + b", s[0], s_true, lecture="[0.285 -0.533 0.762]")
    for i, (value, si, text) in enumerate(zip(y[0], s_true, ("0.277", "-0.487", "0.642")), start=1):
        r.check(f"y{i} = tanh(s{i})", value, math.tanh(si), lecture=text,
                note="truncated to 3 places" if i < 3 else "")
    return r


SOFTMAX_TEXT = ("0.322", "0.118", "0.195", "0.043", "0.322")


def softmax() -> Replay:
    """softmax([1, 0, 0.5, -1, 1]) = [0.32157, 0.11830, 0.19504, 0.04352, 0.32157]."""
    r = Replay("softmax", "Softmax: softmax(z)_i = e^{z_i} / sum_k e^{z_k}")
    z = [1.0, 0.0, 0.5, -1.0, 1.0]
    r.say(f"z = {z}", "")

    exps = [math.exp(zi) for zi in z]
    total = sum(exps)
    r.say("the exponentials and their sum, in plain Python:",
          "  e^z = [" + ", ".join(fmt(e, 5) for e in exps) + "]",
          f"  sum = {fmt(total, 5)}", "")

    p, _ = F.softmax_forward(np.array(z))
    r.say("nbconv: F.softmax_forward(z) (it subtracts max z first: the same numbers, no overflow)")
    for i, (value, e, text) in enumerate(zip(p, exps, SOFTMAX_TEXT), start=1):
        note = "truncated: it rounds to 0.044" if i == 4 else ""
        r.check(f"softmax(z)_{i} = e^{fmt(z[i - 1])} / sum", value, e / total, lecture=text, note=note)
    r.check("sum of softmax(z)", float(np.sum(p)), 1.0, lecture="1", note="a probability vector")
    return r


EXAMPLES = [
    Example("neuron", "one neuron with ReLU: y = f(w . x + b) = 0.28", neuron),
    Example("tanh-layer", "a 2-input, 3-output layer with tanh: W x + b, then tanh", tanh_layer),
    Example("softmax", "softmax of z = [1, 0, 0.5, -1, 1], each e^{z_i} over the sum", softmax),
]
