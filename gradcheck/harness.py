"""Finite-difference gradient checking.

For a layer ``out, cache = forward(*inputs)`` and ``grads = backward(dout, cache)``
the check builds the scalar ``L = sum(forward(*inputs)[0] * dout)`` for a random
``dout``.  Its gradient with respect to each input is exactly what backward
returns, and central differences estimate it independently:

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

The two are compared by the relative error

    max_i |a_i - n_i| / max(max_i (|a_i| + |n_i|), floor)

(the floor keeps an all-zero gradient from dividing 0 by 0).

``on_device(forward, backward, "cuda")`` checks the GPU path of an op: the inputs stay float64
host arrays, which the finite differences perturb, and are copied to the device at every
evaluation; the output and the gradients are copied back to the host for the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

DEFAULT_H = 1e-5
DENOMINATOR_FLOOR = 1e-8


def rel_error(analytic, numeric) -> float:
    """max|a - n| / max(|a| + |n|), the denominator floored at 1e-8."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), DENOMINATOR_FLOOR))


def numeric_gradient(f: Callable[[], float], x: np.ndarray, h: float = DEFAULT_H) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every element of ``x``.

    ``x`` is perturbed in place, one element at a time, and restored.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


@dataclass
class GradientReport:
    """The result of checking one gradient (one differentiable input)."""

    name: str
    shape: tuple
    max_rel_error: float
    threshold: float
    worst_index: tuple | None      # the element with the largest |analytic - numeric|
    analytic: float | None         # backward's value there
    numeric: float | None          # the finite-difference value there

    @property
    def passed(self) -> bool:
        return bool(self.max_rel_error <= self.threshold)

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"d{self.name} {self.shape}: max relative error {self.max_rel_error:.2e} "
                f"(threshold {self.threshold:.0e}) {verdict}")
        if not self.passed and self.worst_index is not None:
            text += (f"; worst element {self.name}{list(self.worst_index)}: "
                     f"analytic {self.analytic:.8g}, numeric {self.numeric:.8g}")
        return text


def check_gradients(forward: Callable, backward: Callable, inputs: Sequence, *,
                    names: Sequence[str] | None = None, dout=None, h: float = DEFAULT_H,
                    threshold: float = 1e-7, seed: int = 0) -> list[GradientReport]:
    """Compare ``backward`` with central differences of ``forward``, one report per gradient.

    ``forward(*inputs)`` returns ``(out, cache)``; ``backward(dout, cache)`` returns a
    tuple with one gradient per differentiable input, in the inputs' order.  The
    differentiable inputs are the leading floating-point arrays of ``inputs``
    (integer class labels and trailing targets are not differentiated); a
    gradient returned as ``None`` (no bias, say) is skipped.  Float arrays are
    copied to float64 first: the check always runs in float64.

    ``names`` labels the gradients (default ``x0, x1, ...``); ``dout`` defaults to
    a standard normal array of the output's shape drawn from the stream ``[seed, 1]``
    (independent of inputs drawn from ``seed``; 1.0 for a scalar output, such as a loss).
    """
    inputs = [np.array(v, dtype=np.float64) if _is_float_array(v) else v for v in inputs]
    out, cache = forward(*inputs)
    if dout is None:
        if np.ndim(out) == 0:
            dout = 1.0
        else:
            # a stream of its own: ``seed`` may also have drawn the inputs, and a dout equal to x
            # is a direction that normalizations ignore (dx ~ 0 would measure rounding noise)
            dout = np.random.default_rng([seed, 1]).standard_normal(np.shape(out))
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        raise TypeError(f"backward must return a tuple of gradients, got {type(grads).__name__}")

    float_positions = [k for k, v in enumerate(inputs) if _is_float_array(v)]
    while len(grads) > len(float_positions) and grads[-1] is None:
        grads = grads[:-1]                      # e.g. db of a layer called without a bias
    if len(grads) > len(float_positions):
        raise ValueError(f"backward returned {len(grads)} gradients but only "
                         f"{len(float_positions)} inputs are float arrays")
    names = list(names) if names is not None else [f"x{k}" for k in range(len(grads))]

    def loss() -> float:
        return float(np.sum(np.asarray(forward(*inputs)[0], dtype=np.float64) * dout))

    reports = []
    for name, k, analytic in zip(names, float_positions, grads):
        if analytic is None:
            continue
        x = inputs[k]
        analytic = np.asarray(analytic, dtype=np.float64)
        if analytic.shape != x.shape:
            raise ValueError(f"gradient d{name} has shape {analytic.shape} but input {name} "
                             f"has shape {x.shape}")
        numeric = numeric_gradient(loss, x, h)
        err = rel_error(analytic, numeric)
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(analytic - numeric)), x.shape)) \
            if x.size else None
        reports.append(GradientReport(
            name=name, shape=tuple(x.shape), max_rel_error=err, threshold=threshold,
            worst_index=worst,
            analytic=float(analytic[worst]) if worst is not None else None,
            numeric=float(numeric[worst]) if worst is not None else None,
        ))
    return reports


def assert_gradients(forward: Callable, backward: Callable, inputs: Sequence, **kwargs) -> list[GradientReport]:
    """``check_gradients``, raising ``AssertionError`` with the report when any gradient fails."""
    reports = check_gradients(forward, backward, inputs, **kwargs)
    failed = [r for r in reports if not r.passed]
    if failed:
        raise AssertionError("gradient check failed:\n" + "\n".join(f"  {r}" for r in reports))
    return reports


def on_device(forward: Callable, backward: Callable, device: str = "cuda") -> tuple[Callable, Callable]:
    """(forward, backward) wrappers that run the op on ``device`` ("cpu" returns them unchanged).

    The wrapped forward copies every NumPy array input (float and integer) to the device at each
    call and returns the output as a host array (the cache stays on the device); the wrapped
    backward copies a non-scalar ``dout`` to the device and returns the gradients as host arrays.
    """
    from nbconv.functional import _device

    device = _device.check_device(device)
    if device == _device.CPU:
        return forward, backward

    def forward_on_device(*inputs):
        moved = [_device.to_device(v, device) if isinstance(v, np.ndarray) else v for v in inputs]
        out, cache = forward(*moved)
        return _device.to_host(out), cache

    def backward_on_device(dout, cache):
        if isinstance(dout, np.ndarray) and dout.ndim > 0:
            dout = _device.to_device(dout, device)
        grads = backward(dout, cache)
        if not isinstance(grads, tuple):
            return grads
        return tuple(None if g is None else _device.to_host(g) for g in grads)

    return forward_on_device, backward_on_device


def _is_float_array(v) -> bool:
    return isinstance(v, np.ndarray) and v.dtype.kind == "f"
