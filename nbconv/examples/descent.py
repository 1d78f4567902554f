"""Gradient descent on f(x) = x^2 - 2, the lecture's example ("Introduction to neural networks").

    x_{k+1} = x_k - alpha * f'(x_k),   f'(x) = 2x

Each step is nbconv's: x is a ``Parameter``, ``nbconv.optim.SGD(lr=alpha)`` takes the step, and
f and f' come from the functional ops, since the mean squared error of the single value x
against 0 is x^2 (``F.mse_forward``) and its gradient is 2x (``F.mse_backward``).

The expected iterates are the closed form: each step multiplies x by 1 - 2 alpha,

    x_{k+1} = x_k - alpha * 2 x_k = (1 - 2 alpha) x_k,   so   x_k = (1 - 2 alpha)^k x0,

and the factor 1 - 2 alpha decides how the iterates behave, the lecture's four step sizes:

    alpha = 0.1   factor  0.8    slow: every iterate on the same side, a little closer
    alpha = 0.5   factor  0      one step: x_1 is the minimum
    alpha = 0.8   factor -0.6    oscillating: the sides alternate, the distance shrinks
    alpha = 1.01  factor -1.02   diverging: the distance grows

``classify`` names the regime from the iterates alone, without the formula.
"""

from __future__ import annotations

import math

import numpy as np

import nbconv.functional as F
from nbconv.layers import Parameter
from nbconv.optim import SGD

from .replay import Example, Replay, fmt

X0 = 3.0
ALPHA = 0.4
MINIMUM = 0.0               # f's minimum is at x = 0, where f = -2

# the iterates agree with the closed form to rounding (a few units in the 16th place)
ITERATE_TOLERANCE = 1e-12


def f_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
    """f(x) = x^2 - 2 and f'(x) = 2x, by nbconv: x^2 is the mean squared error of the one value
    x against 0, mse_forward(x, 0), and 2x its gradient, mse_backward(1, cache)."""
    zero = np.zeros_like(x)
    square, cache = F.mse_forward(x, zero)
    (gradient,) = F.mse_backward(1.0, cache)
    return float(square) - 2.0, gradient


def descend(x0: float, alpha: float, steps: int) -> list[float]:
    """[x_0, x_1, ..., x_steps]: x_{k+1} = x_k - alpha * f'(x_k), each step taken by
    nbconv.optim.SGD(lr=alpha) on a Parameter holding x, f' from ``f_and_gradient``."""
    x = Parameter(np.array([x0]))
    optimizer = SGD([x], lr=alpha)
    iterates = [float(x.data[0])]
    for _ in range(steps):
        _, gradient = f_and_gradient(x.data)
        x.grad[...] = gradient
        optimizer.step()                       # x = x - alpha * x.grad
        iterates.append(float(x.data[0]))
    return iterates


def closed_form(x0: float, alpha: float, steps: int) -> list[float]:
    """[x_0, ..., x_steps] with x_k = (1 - 2 alpha)^k x0, the exact iterates on f = x^2 - 2."""
    return [(1.0 - 2.0 * alpha) ** k * x0 for k in range(steps + 1)]


# the text's figures for x_1 ... x_5 and f(x_1) ... f(x_5), and where they slip
TEXT_X = ("0.6", "0.12", "0.024", "0.0048", "0.00096")
TEXT_F = ("-1.64", "-1.9856", "-1.9994", "-1.9997", "-1.9999")
TEXT_F_NOTES = {
    4: "misprint: it is -2.0000",
    5: "labelled f(x_4) there; truncated",
}


def gradient_descent() -> Replay:
    """Five steps from x0 = 3 with alpha = 0.4: x_k = 0.2^k * 3, f(x_k) = x_k^2 - 2."""
    r = Replay("gradient-descent", "Gradient descent on f(x) = x^2 - 2 from x0 = 3, alpha = 0.4")
    r.say("f'(x) = 2x; the step x_{k+1} = x_k - alpha * f'(x_k)",
          "nbconv: x a Parameter, the step by nbconv.optim.SGD(lr=0.4), f and f' by",
          "        F.mse_forward / F.mse_backward against 0 (one value's squared error is x^2)",
          "expected: x_k = (1 - 2 alpha)^k x0 = 0.2^k * 3, f(x_k) = x_k^2 - 2",
          "")
    steps = len(TEXT_X)
    iterates = descend(X0, ALPHA, steps)
    exact = closed_form(X0, ALPHA, steps)
    for k in range(1, steps + 1):
        before = iterates[k - 1]
        f_k, _ = f_and_gradient(np.array([iterates[k]]))
        r.say(f"step {k}: x_{k} = {fmt(before, 8)} - {fmt(ALPHA)} * 2 * {fmt(before, 8)}")
        r.check(f"x_{k}", iterates[k], exact[k], lecture=TEXT_X[k - 1], tol=ITERATE_TOLERANCE)
        r.check(f"f(x_{k})", f_k, exact[k] ** 2 - 2.0, lecture=TEXT_F[k - 1],
                note=TEXT_F_NOTES.get(k, ""), tol=ITERATE_TOLERANCE)
    r.say("", f"x_k -> 0 and f(x_k) -> -2, the minimum; after {steps} steps x_{steps} = "
          f"{fmt(iterates[steps], 10)}")
    return r


# --- the four step sizes --------------------------------------------------------------------------

REGIMES = {
    "slow": "monotone approach: the same side of the minimum, a little closer each step",
    "one step": "reaches the minimum in one step and stays there",
    "oscillating": "alternating sides of the minimum, the distance shrinking",
    "diverging": "the distance to the minimum growing at every step",
}


def classify(iterates, minimum: float = MINIMUM, tol: float = 1e-12) -> str:
    """The regime of a run of gradient descent, from its iterates x_0, x_1, ... alone, by their
    distances d_k = |x_k - minimum| and the side of the minimum each lies on:

        "one step"     d_k <= tol * d_0 for every k >= 1 (x_1 is the minimum, and it stays)
        "diverging"    d_0 < d_1 < d_2 < ...
        "slow"         d_0 > d_1 > ... and every x_k on x_0's side
        "oscillating"  d_0 > d_1 > ... and the side changes at every step

    ValueError for fewer than 2 iterates, for x_0 at the minimum, and for a run that fits none
    of the four (a constant distance, a mixed pattern, an iterate landing on the minimum later).
    """
    xs = [float(x) for x in iterates]
    if len(xs) < 2:
        raise ValueError(f"iterates must hold at least x_0 and x_1 to show a trend, got {xs}")
    d = [abs(x - minimum) for x in xs]
    if d[0] == 0.0:
        raise ValueError(f"iterates start at the minimum {minimum} (x_0 = {xs[0]}): every regime fits")
    if all(dk <= tol * d[0] for dk in d[1:]):
        return "one step"
    sides = [math.copysign(1.0, x - minimum) if x != minimum else 0.0 for x in xs]
    pairs = list(zip(d, d[1:]))
    if all(after > before for before, after in pairs):
        return "diverging"
    if all(after < before for before, after in pairs):
        if all(side == sides[0] for side in sides):
            return "slow"
        if all(after == -before != 0.0 for before, after in zip(sides, sides[1:])):
            return "oscillating"
    raise ValueError(f"the iterates {xs} fit none of the regimes: {', '.join(REGIMES)}")


# alpha -> (the regime, the text's caption of its figure)
STEP_SIZES = {
    0.1: ("slow", "step too small: slow convergence"),
    0.5: ("one step", "ideal step: instant convergence"),
    0.8: ("oscillating", "large step: the gradient flips sign"),
    1.01: ("diverging", "very large step: divergence"),
}
STEP_SIZE_STEPS = 8


def step_size() -> Replay:
    """Gradient descent on x^2 - 2 from x0 = 3 with alpha = 0.1, 0.5, 0.8, 1.01: each run's
    regime named by ``classify`` from its iterates and checked against the lecture's."""
    r = Replay("step-size", "The step size alpha: slow, one step, oscillating, diverging")
    r.say(f"f(x) = x^2 - 2 from x0 = {fmt(X0)}, {STEP_SIZE_STEPS} steps of nbconv.optim.SGD(lr=alpha) each;",
          "every step multiplies x by 1 - 2 alpha, so x_k = (1 - 2 alpha)^k x0 (the expected iterates);",
          "the regime is named from the iterates alone (distance to the minimum 0, and its side):")
    for name, meaning in REGIMES.items():
        r.say(f"  {name:<12} {meaning}")
    for alpha, (expected, caption) in STEP_SIZES.items():
        iterates = descend(X0, alpha, STEP_SIZE_STEPS)
        regime = classify(iterates)
        exact = closed_form(X0, alpha, STEP_SIZE_STEPS)
        r.say("", f"alpha = {alpha}: factor 1 - 2 alpha = {fmt(1.0 - 2.0 * alpha)}",
              f"  x_0 .. x_{STEP_SIZE_STEPS} = " + "  ".join(fmt(x, 4) for x in iterates))
        r.check(f"  x_k - exact, alpha = {alpha}", max(abs(a - b) for a, b in zip(iterates, exact)), 0.0,
                tol=ITERATE_TOLERANCE, note="the largest |x_k - (1 - 2 alpha)^k x0|")
        r.check(f"  regime, alpha = {alpha}", regime, expected, lecture=caption,
                note="classified from the iterates alone")
    return r


EXAMPLES = [
    Example("gradient-descent", "gradient descent on x^2 - 2 from x0 = 3, alpha = 0.4: five iterates",
            gradient_descent),
    Example("step-size", "alpha = 0.1, 0.5, 0.8, 1.01 on x^2 - 2: slow, one step, oscillating, diverging",
            step_size),
]
