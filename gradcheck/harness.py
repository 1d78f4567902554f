"""Finite-difference gradient checking.

For a layer ``out, cache = forward(*inputs)`` and ``grads = backward(dout, cache)``
the check builds the scalar ``L = sum(forward(*inputs)[0] * dout)`` for a random
``dout``.  Its gradient with respect to each input is exactly what backward
returns, and central differences estimate it independently:

    dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2 h)

The two are compared by the relative error

    max_i |a_i - n_i| / max(max_i (|a_i| + |n_i|), floor)

(the floor is the rounding noise of the differences themselves, see ``noise_floor``: an
error below it cannot be measured, and a gradient that is exactly 0 must not fail on that
noise).  docs/gradcheck.md explains the
measure, the random ``dout`` and the thresholds, and how to read a failure.

The checker never lets the code under test disturb the check: forward gets private copies of
the inputs, backward a private copy of ``dout``, and every finite-difference evaluation starts
from fresh copies of the untouched inputs.  A forward or backward that writes into its
arguments (the inputs, ``dout``, the cache) is still checked correctly, and the result warns
about it by name: in a network such a write corrupts another layer's values.

``on_device(forward, backward, "cuda")`` checks the GPU path of an op: the inputs stay float64
host arrays, which the finite differences perturb, and are copied to the device at every
evaluation; the output and the gradients are copied back to the host for the comparison.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

DEFAULT_H = 1e-5
DENOMINATOR_FLOOR = 1e-8
NOISE_FACTOR = 10.0      # safety factor on the rounding noise of one central difference (noise_floor)


class InPlaceWarning(UserWarning):
    """A forward or backward under check wrote into one of its arguments."""


def rel_error(analytic, numeric, floor: float = DENOMINATOR_FLOOR) -> float:
    """max|a - n| / max(|a| + |n|), the denominator floored at ``floor`` (1e-8 by default)."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / _denominator(a, n, floor))


def _denominator(a: np.ndarray, n: np.ndarray, floor: float = DENOMINATOR_FLOOR) -> float:
    return max(float(np.max(np.abs(a) + np.abs(n))), floor)


def noise_floor(scale: float, h: float, threshold: float) -> float:
    """The denominator's floor: the rounding noise of the finite differences over the threshold.

    L = sum(out * dout) is computed to about eps * scale, with scale = sum|out * dout| and eps
    = 2^-52, so a central difference carries noise of about eps * scale / h (1e-10 for a scale
    of 10 at h = 1e-5).  A gradient smaller than that cannot be measured: one that is exactly 0
    (a conv bias followed by batch norm) comes out as 1e-16 from backward and as 1e-11 of noise
    from the differences.  Flooring the denominator at NOISE_FACTOR times that noise divided by
    the threshold lets such a gradient pass, while any error above the noise still fails."""
    noise = NOISE_FACTOR * np.finfo(np.float64).eps * scale / h
    return max(DENOMINATOR_FLOOR, noise / threshold)


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


# --- reports ----------------------------------------------------------------------------------

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
    failing: int = 0               # elements whose |analytic - numeric| exceeds threshold * denominator
    diagnosis: list[str] = field(default_factory=list)    # on failure: the pattern of the errors, kinks

    @property
    def passed(self) -> bool:
        return bool(self.max_rel_error <= self.threshold)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = (f"d{self.name} {self.shape}: max relative error {self.max_rel_error:.2e} "
                f"(threshold {self.threshold:.0e}) {verdict}")
        if not self.passed and self.worst_index is not None:
            text += (f"; worst element {self.name}{list(self.worst_index)}: "
                     f"analytic {self.analytic:.8g}, numeric {self.numeric:.8g}")
            text += "".join(f"\n    {line}" for line in self.diagnosis)
        return text


@dataclass
class GradientCheck:
    """Everything one ``check_gradients`` call found: a report per gradient, which inputs were
    and were not differentiated, and warnings about arguments written in place.

    It behaves as the list of its reports (iterate, index, ``len``); ``print(check)`` prints the
    summary, ``check.passed`` is True when every gradient passed."""

    reports: list[GradientReport]
    differentiated: list[str]                    # "x (2, 3)", one per checked input
    not_differentiated: list[str]                # "k: int", "t: no gradient returned", ...
    warnings: list[str] = field(default_factory=list)
    h: float = DEFAULT_H

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports)

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    def __getitem__(self, k):
        return self.reports[k]

    def __str__(self) -> str:
        lines = [f"gradient check: backward against central differences of forward (h = {self.h:g}, float64)",
                 f"  differentiated: {', '.join(self.differentiated) or 'nothing'}"]
        if self.not_differentiated:
            lines.append(f"  not differentiated: {'; '.join(self.not_differentiated)}")
        lines += [f"  {report}" for report in self.reports]
        lines += [f"  warning: {text}" for text in self.warnings]
        failed = sum(not r.passed for r in self.reports)
        lines.append(f"{len(self.reports) - failed} of {len(self.reports)} gradients PASS"
                     + (f", {failed} FAIL" if failed else "")
                     + "  (relative error = max|analytic - numeric| / max(|analytic| + |numeric|))")
        return "\n".join(lines)


# --- the check ----------------------------------------------------------------------------------

def check_gradients(forward: Callable, backward: Callable, inputs: Sequence, *,
                    names: Sequence[str] | None = None, dout=None, h: float = DEFAULT_H,
                    threshold: float = 1e-7, seed: int = 0, allow_in_place: Sequence[str] = (),
                    verbose: bool = False) -> GradientCheck:
    """Compare ``backward`` with central differences of ``forward``, one report per gradient.

    The contract (the cs231n one: a layer is a pair of functions)::

        out, cache = forward(*inputs)       # a pair, always: (out, None) when nothing is kept
        grads = backward(dout, cache)       # a tuple or list, one gradient per differentiated
                                            # input, in order: (dx,) for one input, not dx

    Which inputs are differentiated: the float ones (float arrays of any shape, 0-d arrays,
    Python floats), in order, as many as backward returns gradients for.  Integers (class
    labels, sizes), booleans, strings and None are passed through untouched.  A trailing
    float input with no gradient (a target, a hyper-parameter) is not differentiated, and a
    gradient returned as None (no bias) is skipped; the result lists both kinds.  Float
    inputs are copied to float64: the check always runs in float64.

    ``names`` labels either every input, in order, or only the differentiated ones (default
    ``x0, x1, ...`` by position).  ``dout`` defaults to a standard normal array of the output's
    shape drawn from the stream ``[seed, 1]`` (1.0 for a scalar output, such as a loss).
    ``allow_in_place`` names inputs that forward updates in place by design (batch norm's
    running statistics): no warning for them.  ``verbose=True`` prints the summary.

    Returns a ``GradientCheck``: a list of ``GradientReport`` with ``.passed``, ``.warnings``
    and a printable summary (``print(check_gradients(...))``).
    """
    pristine = [_as_float64(v) for v in inputs]
    candidates = [k for k, v in enumerate(pristine) if _is_float(v)]
    labels = _input_labels(names, pristine, candidates)

    # forward and backward on private copies: what they write cannot reach the check
    call_inputs = [_fresh(v) for v in pristine]
    out, cache = _call_forward(forward, call_inputs)
    if dout is None:
        if np.ndim(out) == 0:
            dout = 1.0
        else:
            # a stream of its own: ``seed`` may also have drawn the inputs, and a dout equal to x
            # is a direction that normalizations ignore (dx ~ 0 would measure rounding noise)
            dout = np.random.default_rng([seed, 1]).standard_normal(np.shape(out))
    dout = _as_float64(dout)
    floor = noise_floor(float(np.sum(np.abs(np.asarray(_to_host(out), dtype=np.float64) * dout))), h, threshold)
    found = _modified_inputs(pristine, call_inputs, labels, allow_in_place, "forward")
    after_forward = [_fresh(v) for v in call_inputs]
    cache_before = _arrays_in(cache)
    cache_copies = {path: a.copy() for path, a in cache_before.items()}
    dout_given = _fresh(dout)
    grads = _call_backward(backward, dout_given, cache, len(candidates), [labels[k] for k in candidates])

    found += _modified_inputs(after_forward, call_inputs, labels, (), "backward")
    if not _same(dout_given, dout):
        found.append("backward modified dout in place: in a network, the same dout may also feed another "
                     "branch (a fan-out: dout goes to both the block and the shortcut of a residual), "
                     "which would then get the modified values; compute a new array "
                     "(dx = dout * ...) instead of dout *= ...")
    input_ids = {id(v) for v in call_inputs}
    for path, before in cache_copies.items():
        array = cache_before[path]
        if id(array) not in input_ids and not _same(array, before):
            found.append(f"backward modified {path} in place: a second backward with the same cache "
                         f"would compute something else")
    for text in found:
        warnings.warn(text, InPlaceWarning, stacklevel=2)

    def loss(k, index, delta) -> float:
        """L = sum(out * dout) with input k moved by delta at index, from fresh copies."""
        args = [_fresh(v) for v in pristine]
        args[k] = _nudged(args[k], index, delta)
        out, _ = forward(*args)
        return float(np.sum(np.asarray(_to_host(out), dtype=np.float64) * dout))

    reports, differentiated = [], []
    not_differentiated = [f"{labels[k]} ({_kind(v)}): not a float" for k, v in enumerate(pristine)
                          if k not in candidates]
    for j, k in enumerate(candidates):
        if j >= len(grads):
            not_differentiated.append(f"{labels[k]} ({_kind(pristine[k])}): no gradient returned")
            continue
        if grads[j] is None:
            not_differentiated.append(f"{labels[k]} ({_kind(pristine[k])}): backward returned None")
            continue
        x = pristine[k]
        analytic = _gradient_array(grads[j], labels[k], np.shape(x))
        numeric = np.zeros(np.shape(x))
        for index in np.ndindex(np.shape(x)):
            numeric[index] = (loss(k, index, h) - loss(k, index, -h)) / (2.0 * h)
        differentiated.append(f"{labels[k]} {np.shape(x)}")
        reports.append(_report(labels[k], analytic, numeric, threshold, floor,
                               lambda index, delta, k=k: loss(k, index, delta), h))
    result = GradientCheck(reports, differentiated, not_differentiated, found, h)
    if verbose:
        print(result)
    return result


def assert_gradients(forward: Callable, backward: Callable, inputs: Sequence, **kwargs) -> GradientCheck:
    """``check_gradients``, raising ``AssertionError`` with the summary when any gradient fails."""
    result = check_gradients(forward, backward, inputs, **kwargs)
    if not result.passed:
        raise AssertionError("gradient check failed:\n" + str(result))
    return result


# --- calling the code under test --------------------------------------------------------------

def _call_forward(forward, inputs):
    result = forward(*inputs)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"forward must return a pair (out, cache), got {_describe(result)}; "
                        f"return (out, None) when backward needs nothing")
    return result


def _call_backward(backward, dout, cache, n_candidates, candidate_names):
    grads = backward(dout, cache)
    if isinstance(grads, (tuple, list)):
        grads = list(grads)
    else:
        hint = " (for one input return a 1-tuple: (dx,))" if hasattr(grads, "shape") or _is_float(grads) else ""
        raise TypeError(f"backward must return a tuple or list with one gradient per input, "
                        f"got {_describe(grads)}{hint}")
    while len(grads) > n_candidates and grads[-1] is None:
        grads.pop()                              # e.g. db of a layer called without a bias
    if len(grads) > n_candidates:
        raise ValueError(f"backward returned {len(grads)} gradients but only {n_candidates} inputs can be "
                         f"differentiated ({', '.join(candidate_names) or 'none'}: the float arrays and "
                         f"float numbers); pass every parameter as an input of forward")
    return grads


def _gradient_array(grad, name, shape) -> np.ndarray:
    g = np.asarray(_to_host(grad), dtype=np.float64)
    if shape == () and g.size == 1:
        return g.reshape(())                     # a scalar parameter's gradient as (1,) is fine
    if g.shape != shape:
        raise ValueError(f"gradient d{name} has shape {g.shape} but input {name} has shape {shape}")
    return g


# --- diagnosis of a failure -------------------------------------------------------------------

def _report(name, analytic, numeric, threshold, floor, loss_at, h) -> GradientReport:
    shape = tuple(np.shape(analytic))
    if analytic.size == 0:
        return GradientReport(name, shape, 0.0, threshold, None, None, None)
    diff = np.abs(analytic - numeric)
    denominator = _denominator(analytic, numeric, floor)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(diff), shape))
    failing = ~(diff <= threshold * denominator)             # NaN counts as failing
    report = GradientReport(name, shape, float(diff[worst] / denominator), threshold, worst,
                            float(analytic[worst]), float(numeric[worst]), failing=int(failing.sum()))
    if not report.passed:
        report.diagnosis = diagnose(name, analytic, numeric, threshold, floor)
        report.diagnosis.insert(1, _kinks(name, worst, analytic, numeric, np.argwhere(failing), loss_at, h))
    return report


def diagnose(name: str, analytic: np.ndarray, numeric: np.ndarray, threshold: float,
             floor: float = DENOMINATOR_FLOOR) -> list[str]:
    """What the wrong elements of a failed gradient have in common, in words.

    Counts the failing elements and looks for the usual mistakes: one element, every element
    scaled by one factor (a sign flip is the factor -1), one constant added, zeros, the
    numerical gradient with axes transposed or flipped, failures confined to one index of an
    axis or to the borders."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    denominator = _denominator(a, n, floor)
    failing = ~(np.abs(a - n) <= threshold * denominator)      # NaN counts as failing
    count, size = int(failing.sum()), a.size
    lines = [f"{count} of {size} elements of d{name} fail"]

    def matches(candidate) -> bool:
        return rel_error(a, candidate, floor) <= threshold

    if not np.all(np.isfinite(a)):
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        return lines + [f"pattern: backward returned NaN or inf, first at {name}{list(index)} "
                        f"(a division by zero, or an overflowing exp?)"]
    if not np.any(a) and np.any(n):
        return lines + ["pattern: backward returned all zeros (was the gradient written into another array, "
                        "or never accumulated?)"]
    if np.max(np.abs(n)) <= threshold * denominator:
        return lines + [f"pattern: the numerical gradient is zero: the output does not depend on {name} "
                        f"(or only through a constant), yet backward returns nonzero values"]
    k = float(np.vdot(a, n) / np.vdot(n, n))
    if matches(k * n) and abs(k - 1.0) > threshold:
        if abs(k + 1.0) <= 10 * threshold:
            return lines + ["pattern: the sign is flipped everywhere (analytic = -numeric)"]
        return lines + [f"pattern: every element is off by the same factor: analytic = {k:.6g} x numeric"
                        + _factor_hint(k)]
    offset = float(np.mean(a - n))
    if matches(n + offset):
        return lines + [f"pattern: every element is off by the same constant: analytic = numeric + {offset:.6g} "
                        f"(a term added once too often, or a sum that should not be there)"]
    for r in range(1, a.ndim + 1):
        for axes in itertools.combinations(range(a.ndim), r):
            if matches(np.flip(n, axes)):
                return lines + [f"pattern: analytic is the numerical gradient flipped along axes {axes} "
                                f"(a kernel flipped once too often, or once too few?)"]
    for perm in itertools.permutations(range(a.ndim)):
        if perm != tuple(range(a.ndim)) and n.transpose(perm).shape == a.shape and matches(n.transpose(perm)):
            what = "the transpose of" if a.ndim == 2 else f"with axes permuted as {perm},"
            return lines + [f"pattern: analytic is {what} the numerical gradient (indices swapped?)"]
    if count == 1:
        index = tuple(int(i) for i in np.argwhere(failing)[0])
        return lines + [f"pattern: one element is wrong, {name}{list(index)}; all others agree "
                        f"(a boundary or a special case?)"]
    where = np.argwhere(failing)
    for axis in range(a.ndim):
        values = np.unique(where[:, axis])
        if len(values) == 1 and a.shape[axis] > 1:
            return lines + [f"pattern: all failing elements have index {int(values[0])} on axis {axis} "
                            f"({name}[{', '.join(':' if d != axis else str(int(values[0])) for d in range(a.ndim))}])"]
    def on_border(axes) -> bool:
        edge = np.zeros(len(where), dtype=bool)
        for axis in axes:
            edge |= (where[:, axis] == 0) | (where[:, axis] == a.shape[axis] - 1)
        return all(a.shape[axis] > 2 for axis in axes) and bool(np.all(edge))

    planes = [(axis,) for axis in range(a.ndim)] + ([(a.ndim - 2, a.ndim - 1)] if a.ndim >= 2 else [])
    for axes in planes:
        if count < size and on_border(axes):
            return lines + [f"pattern: all failing elements lie on the border of axes {axes} "
                            f"(first or last index there): padding, or an edge case?"]
    return lines + ["pattern: none of the usual ones (one element, a factor, a sign, a constant, a transpose "
                    "or flip, one index, the borders)"]


def _factor_hint(k: float) -> str:
    for value, words in ((k, "{r}"), (1.0 / k, "1/{r}")):
        r = round(value)
        if abs(r) >= 2 and abs(value - r) <= 1e-6 * abs(value):
            return (f" (= {words.format(r=r)}: a missing or extra factor, such as the 2 of d(x^2)/dx, "
                    f"or a sum over {abs(r)} values where the forward takes their mean)")
    return ""


KINK_CHECKS = 20       # failing elements tested for a kink (3 evaluations each)


def _kinks(name, worst, analytic, numeric, failing, loss_at, h) -> str:
    """Whether the failing elements sit at kinks, where the one-sided slopes differ.

    At a kink (ReLU at 0, a tie for a max, |x| at 0) the central difference averages the two
    slopes, and a correct backward gives one of them: the check then blames correct code."""
    left, right = _one_sided_slopes(loss_at, worst, h)
    where = f"{name}{list(worst)}"
    if not _is_kink(left, right):
        return f"kink: no, smooth at {where} (slope {left:.6g} from the left, {right:.6g} from the right)"
    side = ""
    for slope, words in ((left, "the left"), (right, "the right")):
        if abs(analytic[worst] - slope) <= 1e-4 * max(abs(slope), 1.0):
            side = f"; the analytic value is the slope from {words}, a valid choice at a kink"
    checked = [tuple(int(i) for i in index) for index in failing[:KINK_CHECKS]]
    kinked = sum(index == worst or _is_kink(*_one_sided_slopes(loss_at, index, h))   # worst: measured above
                 for index in checked)
    return (f"kink: yes, {where} sits at a kink (a tie for a max, x = 0 of ReLU or |x|): the slope is "
            f"{left:.6g} from the left and {right:.6g} from the right, and the central difference averages "
            f"them ({numeric[worst]:.6g}){side}; {kinked} of the {len(checked)} failing elements checked sit at "
            f"kinks; draw the inputs away from kinks")


def _one_sided_slopes(loss_at, index, h) -> tuple[float, float]:
    center = loss_at(index, 0.0)
    return (center - loss_at(index, -h)) / h, (loss_at(index, h) - center) / h


def _is_kink(left: float, right: float) -> bool:
    """One-sided slopes that differ by far more than a smooth function's h * f''."""
    return abs(right - left) > 1e-3 * max(abs(right) + abs(left), DENOMINATOR_FLOOR)


# --- arrays and values ------------------------------------------------------------------------

def _is_float(v) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "f"
    return isinstance(v, (float, np.floating))


def _as_float64(v):
    """Float arrays as float64 copies, 0-d arrays too; Python floats stay Python floats."""
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return np.array(v, dtype=np.float64)
    if isinstance(v, np.floating):
        return np.float64(v)
    return v


def _fresh(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _nudged(v, index, delta):
    if isinstance(v, np.ndarray):
        v[index] += delta
        return v
    return type(v)(v + delta)                    # a Python float or a NumPy scalar


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return True


def _modified_inputs(before, after, labels, allowed, who) -> list[str]:
    found = []
    for k, (b, a) in enumerate(zip(before, after)):
        if labels[k] not in allowed and not _same(a, b):
            found.append(f"{who} modified its input {labels[k]} in place: the caller's array changed "
                         f"(the check used an untouched copy)")
    return found


def _arrays_in(cache, path: str = "cache", depth: int = 3) -> dict[str, np.ndarray]:
    """The NumPy arrays a cache holds, by where they sit (cache[0], cache.xhat, ...)."""
    if isinstance(cache, np.ndarray):
        return {path: cache}
    if depth == 0:
        return {}
    if isinstance(cache, (tuple, list)):
        items = [(f"{path}[{k}]", v) for k, v in enumerate(cache)]
    elif isinstance(cache, dict):
        items = [(f"{path}[{k!r}]", v) for k, v in cache.items()]
    elif dataclasses.is_dataclass(cache) and not isinstance(cache, type):
        items = [(f"{path}.{f.name}", getattr(cache, f.name)) for f in dataclasses.fields(cache)]
    else:
        return {}
    found = {}
    for sub_path, value in items:
        found.update(_arrays_in(value, sub_path, depth - 1))
    return found


def _input_labels(names, inputs, candidates) -> list[str]:
    """One name per input: ``names`` labels every input, or only the differentiable ones."""
    labels = [f"x{k}" for k in range(len(inputs))]
    if names is not None and len(names) == len(inputs):
        return list(names)
    for k, name in zip(candidates, names or ()):
        labels[k] = name
    return labels


def _kind(v) -> str:
    if isinstance(v, np.ndarray):
        return f"{v.dtype} array"
    return "None" if v is None else type(v).__name__


def _describe(v) -> str:
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)}"
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"an array of shape {tuple(v.shape)}"
    return "None" if v is None else f"a {type(v).__name__}"


def _to_host(v):
    return v.copy_to_host() if hasattr(v, "copy_to_host") else v


def on_device(forward: Callable, backward: Callable, device: str = "cuda") -> tuple[Callable, Callable]:
    """(forward, backward) wrappers that run the op on ``device`` ("cpu" returns them unchanged).

    The wrapped forward copies every NumPy array input (float and integer) to the device at each
    call and returns the output as a host array (the cache stays on the device); the wrapped
    backward copies a non-scalar ``dout`` to the device and returns the gradients as host arrays.
    """
    from nbconv import devices

    device = devices.check_device(device)
    if device == devices.CPU:
        return forward, backward

    def forward_on_device(*inputs):
        moved = [devices.to_device(v, device) if isinstance(v, np.ndarray) else v for v in inputs]
        out, cache = forward(*moved)
        return devices.to_host(out), cache

    def backward_on_device(dout, cache):
        if isinstance(dout, np.ndarray) and dout.ndim > 0:
            dout = devices.to_device(dout, device)
        grads = backward(dout, cache)
        if not isinstance(grads, (tuple, list)):
            return grads
        return tuple(None if g is None else devices.to_host(g) for g in grads)

    return forward_on_device, backward_on_device
