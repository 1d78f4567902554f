"""Grade a student's own forward/backward pair of an op against nbconv and finite differences.

    from nbconv.gradcheck import check_op, assert_op
    print(check_op("conv2d", conv2d_forward, conv2d_backward))   # the table, one row per value
    assert_op("conv2d", conv2d_forward, conv2d_backward)        # raises AssertionError with it

The student's pair has the signature of nbconv.functional's, without ``method``::

    out, cache = conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1)
    dx, dw, db = conv2d_backward(dout, cache)        # as many gradients as nbconv returns

The cache is the student's own (a tuple, anything).  ``check_op`` runs every case of the
gradient-check registry for the op (``nbconv gradcheck --op conv2d`` runs the same ones on
nbconv's kernels): on each case's inputs it compares

- the forward's output, and the inputs a forward updates in place by design (batch norm's
  running statistics), with nbconv's forward on the same inputs;
- every gradient with nbconv's backward for the same ``dout``, and with central differences of
  the student's own forward (``check_gradients``): the backward must be the derivative of the
  forward the student wrote, and that forward must be nbconv's.

A value passes when ``max |yours - expected| <= threshold * max(|yours| + |expected|)``, the
relative error of docs/gradcheck.md, with the case's threshold (1e-7; 1e-6 for ops with kinks,
whose inputs the registry draws away from them).  A failing row names the first wrong element
(in C order) by its index, with the student's value and the expected one.

Which cases belong to an exercise.  The exercise is the op in nbconv's default convention: its
forward takes the keywords listed in ``EXERCISES`` (those of nbconv.functional's forward that
pick the op's geometry or mode: stride, padding, axis, training, ...).  A registry case that
passes any other keyword (a convention switch such as conv2d's flipped kernel or dropout's
mode) at a value other than nbconv's default, or whose inputs the exercise does not take
(cross_entropy with probabilities as its target), is listed as SKIP, "not part of the
exercise", and does not count.  Cases that differ only by nbconv's ``method`` (the
convolutions list each of "direct", "im2col", "blocked") are the same exercise, checked once.

Code that breaks the contract (a forward that does not return a pair, a backward that returns
another number of gradients than nbconv's, a signature without the exercise's keywords) raises
``ContractError``: the table would mean nothing.  An exception raised inside the student's
code is a FAIL row that names it and the line it came from.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import nbconv.functional as F

from .harness import DENOMINATOR_FLOOR, check_gradients
from .registry import Case, all_cases


class ContractError(TypeError):
    """The code under check breaks the forward/backward contract of the exercise."""


# --- the exercises ------------------------------------------------------------------------------

def _class_index_target(inputs) -> str | None:
    """cross_entropy's exercise takes class indices: a float target (probabilities) is not part of it."""
    target = inputs[1] if len(inputs) > 1 else None
    if isinstance(target, np.ndarray) and target.dtype.kind not in "iu":
        return (f"a {target.dtype} target (probabilities); the exercise's target is integer "
                f"class indices")
    return None


@dataclass(frozen=True)
class Exercise:
    """One op a student can write: nbconv's pair it is graded against, and what it takes."""

    op: str
    forward: Callable                 # nbconv.functional's forward, for the signature and its defaults
    backward: Callable
    keywords: tuple[str, ...]         # the keyword parameters of the exercise's forward
    gradients: tuple[str, ...]        # what the backward returns, in order
    takes: Callable | None = None     # inputs -> None, or why a case's inputs are not part of it

    def signature(self) -> str:
        """The forward's signature as the student writes it: nbconv's, without ``method`` and the
        keywords that are not part of the exercise."""
        parameters = [p for p in inspect.signature(self.forward).parameters.values()
                      if p.kind is not p.KEYWORD_ONLY or p.name in self.keywords]
        return f"{self.op}_forward{inspect.Signature(parameters)}"

    def default(self, keyword: str):
        """nbconv's default value of a keyword of the forward (inspect.Parameter.empty: none)."""
        parameter = inspect.signature(self.forward).parameters.get(keyword)
        return inspect.Parameter.empty if parameter is None else parameter.default


EXERCISES = {e.op: e for e in (
    Exercise("linear", F.linear_forward, F.linear_backward, (), ("dx", "dw", "db")),
    Exercise("conv2d", F.conv2d_forward, F.conv2d_backward, ("stride", "padding", "dilation", "groups"),
             ("dx", "dw", "db")),
    Exercise("max_pool2d", F.max_pool2d_forward, F.max_pool2d_backward, ("kernel_size", "stride", "padding"),
             ("dx",)),
    Exercise("avg_pool2d", F.avg_pool2d_forward, F.avg_pool2d_backward, ("kernel_size", "stride", "padding"),
             ("dx",)),
    Exercise("relu", F.relu_forward, F.relu_backward, (), ("dx",)),
    Exercise("sigmoid", F.sigmoid_forward, F.sigmoid_backward, (), ("dx",)),
    Exercise("softmax", F.softmax_forward, F.softmax_backward, ("axis",), ("dx",)),
    Exercise("cross_entropy", F.cross_entropy_forward, F.cross_entropy_backward, (), ("dlogits",),
             takes=_class_index_target),
    Exercise("batch_norm", F.batch_norm_forward, F.batch_norm_backward, ("training", "momentum", "eps"),
             ("dx", "dgamma", "dbeta")),
    Exercise("dropout", F.dropout_forward, F.dropout_backward, ("p", "training", "seed"), ("dx",)),
)}


def exercise_ops() -> list[str]:
    """The ops a student can write, in the order of the course."""
    return list(EXERCISES)


# --- the report ---------------------------------------------------------------------------------

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Row:
    """One checked value of one case: the forward's output ("out"), an input the forward
    updates ("running_mean"), or a gradient ("dx"); or a whole case skipped (value "-")."""

    case: str
    value: str
    status: str                       # PASS, FAIL or SKIP
    error: float | None = None        # relative error against nbconv
    fd_error: float | None = None     # relative error against central differences of the student's forward
    threshold: float | None = None
    details: list[str] = field(default_factory=list)   # why it failed: the first wrong element, ...

    @property
    def passed(self) -> bool:
        return self.status != FAIL


@dataclass
class ExerciseReport:
    """What ``check_op`` found: a row per case and value, ``.passed`` when no row failed;
    ``print(report)`` prints the table."""

    op: str
    rows: list[Row]
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def failed(self) -> list[Row]:
        return [row for row in self.rows if row.status == FAIL]

    def __str__(self) -> str:
        header = f"{'case':<50} {'value':<13} {'vs nbconv':>9}  {'vs finite diff':>14}  {'limit':>5}  result"
        lines = [f"check of {self.op}_forward / {self.op}_backward on the cases of "
                 f"`nbconv gradcheck --op {self.op}` (seed {self.seed})",
                 "vs nbconv: yours against nbconv.functional's; vs finite diff: your backward against central "
                 "differences of your forward",
                 "error = max|yours - expected| / max(|yours| + |expected|); a value passes when it is at or "
                 "below the limit",
                 header, "-" * len(header)]
        for row in self.rows:
            if row.status == SKIP:
                lines.append(f"{row.case[:50]:<50} {'-':<13} {'':>9}  {'':>14}  {'':>5}  SKIP")
                lines += [f"    {text}" for text in row.details]
                continue
            lines.append(f"{row.case[:50]:<50} {row.value:<13} {_number(row.error):>9}  {_number(row.fd_error):>14}  "
                         f"{_limit(row.threshold):>5}  {row.status}")
            lines += [f"    {text}" for text in row.details]
        lines += [f"warning: {text}" for text in self.warnings]
        lines.append("-" * len(header))
        checked = [row for row in self.rows if row.status != SKIP]
        failed, skipped = len(self.failed), len(self.rows) - len(checked)
        summary = f"{len(checked) - failed} of {len(checked)} values PASS" + (f", {failed} FAIL" if failed else "")
        if skipped:
            summary += f"; {skipped} case{'s' if skipped > 1 else ''} not part of the exercise (SKIP)"
        lines.append(summary)
        return "\n".join(lines)


def _number(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def _limit(value) -> str:
    return "-" if value is None else f"{value:.0e}"


# --- the check ----------------------------------------------------------------------------------

def check_op(op: str, forward: Callable, backward: Callable, *, seed: int = 0) -> ExerciseReport:
    """Grade ``forward``/``backward``, a student's pair for ``op`` (one of ``EXERCISES``), on
    every registry case of the op: a row per case for the output (and for the inputs the
    forward updates in place), a row per gradient; see the module's docstring.

    Raises ValueError for an op without an exercise, ContractError for code that breaks the
    contract (no pair from forward, another number of gradients than nbconv's, a signature
    without the exercise's keywords)."""
    if op not in EXERCISES:
        raise ValueError(f"op {op!r} has no exercise; the exercises are: {', '.join(EXERCISES)}")
    exercise = EXERCISES[op]
    _check_signature(exercise, forward)
    rows: list[Row] = []
    report = ExerciseReport(op, rows, seed)
    for label, case, function, args, keywords, inputs in _exercise_cases(op, seed):
        reason = _not_part_of_the_exercise(exercise, function, keywords, inputs)
        if reason:
            rows.append(Row(label, "-", SKIP, details=[f"not part of the exercise: {reason}"]))
            continue
        student = functools.partial(forward, *args, **_exercise_keywords(exercise, keywords))
        rows += _check_case(exercise, case, label, student, backward, inputs, seed, report.warnings)
    return report


def assert_op(op: str, forward: Callable, backward: Callable, *, seed: int = 0) -> ExerciseReport:
    """``check_op``, raising AssertionError with the table when a value fails."""
    __tracebackhide__ = True                     # pytest shows the caller's line and the table
    report = check_op(op, forward, backward, seed=seed)
    if not report.passed:
        raise AssertionError(f"{op}: {len(report.failed)} values FAIL\n{report}")
    return report


def _exercise_cases(op: str, seed: int):
    """(label, case, forward function, positional args, keywords, inputs) for every registry case
    of ``op``: its forward taken apart (a functools.partial of nbconv's, as a rule), the keywords
    without ``method``.  Cases that differ only by method come once, under the first one's label
    without its method."""
    seen = set()
    for case in all_cases():
        if case.op != op:
            continue
        forward, args, keywords = case.forward, (), {}
        if isinstance(forward, functools.partial):
            forward, args, keywords = forward.func, forward.args, dict(forward.keywords)
        method = keywords.pop("method", None)
        inputs = case.make_inputs(np.random.default_rng(seed))
        key = (repr(args), repr(sorted(keywords.items())), _digest(inputs))
        if key in seen:
            continue
        seen.add(key)
        label = case.label
        if method is not None and label.startswith(f"{method}, "):
            label = label[len(method) + 2:]
        elif method is not None and label == method:
            label = "default"
        yield label, case, forward, args, keywords, inputs


def _digest(inputs) -> str:
    h = hashlib.sha1()
    for v in inputs:
        a = np.asarray(v)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _not_part_of_the_exercise(exercise: Exercise, function, keywords: dict, inputs) -> str | None:
    """Why a case is not part of the exercise (None: it is): a forward other than nbconv's, a
    keyword the exercise does not take at a value other than nbconv's default, or inputs the
    exercise does not take (``Exercise.takes``)."""
    if function is not exercise.forward:
        return f"the case calls {getattr(function, '__name__', 'a function')} of its own, not {exercise.op}_forward"
    for name, value in keywords.items():
        if name in exercise.keywords:
            continue
        default = exercise.default(name)
        if default is inspect.Parameter.empty or not _equal(value, default):
            shown = "" if default is inspect.Parameter.empty else f"; the exercise keeps nbconv's default {default!r}"
            return f"{name}={value!r}{shown}"
    if exercise.takes is not None:
        return exercise.takes(inputs)
    return None


def _equal(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:            # arrays and other values without a plain ==
        return False


def _exercise_keywords(exercise: Exercise, keywords: dict) -> dict:
    """The case's keywords the student's forward takes (the others are at nbconv's default)."""
    return {k: v for k, v in keywords.items() if k in exercise.keywords}


def _check_signature(exercise: Exercise, forward: Callable) -> None:
    """The student's forward takes every keyword of the exercise, with nbconv's defaults."""
    try:
        parameters = inspect.signature(forward).parameters
    except (TypeError, ValueError):              # no signature to read: the calls will tell
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    expected = exercise.signature()
    for name in exercise.keywords:
        if name not in parameters or parameters[name].kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ContractError(f"{exercise.op}_forward has no parameter {name!r}; its signature must be "
                                f"{expected}")
        default, nbconv_default = parameters[name].default, exercise.default(name)
        if nbconv_default is not inspect.Parameter.empty and (
                default is inspect.Parameter.empty or not _equal(default, nbconv_default)):
            given = "no default" if default is inspect.Parameter.empty else f"the default {default!r}"
            raise ContractError(f"{exercise.op}_forward gives {name} {given}, nbconv's is {nbconv_default!r}; "
                                f"its signature must be {expected}")


def _check_case(exercise: Exercise, case: Case, label: str, forward, backward, inputs, seed: int,
                warnings_found: list[str]) -> list[Row]:
    names = _labels(case.names, inputs)
    threshold = case.threshold
    expected_inputs = [_copy(v) for v in inputs]
    expected_out, expected_cache = case.forward(*expected_inputs)
    expected_out = np.asarray(expected_out, dtype=np.float64)
    dout = 1.0 if expected_out.ndim == 0 else np.random.default_rng([seed, 1]).standard_normal(expected_out.shape)
    expected_grads = list(case.backward(_copy(dout), expected_cache))
    floats = [k for k, v in enumerate(inputs) if _is_float(v)]
    gradient_names = [f"d{names[floats[j]]}" if j < len(floats) else exercise.gradients[j]
                      for j in range(len(expected_grads))]
    gradient_rows = [j for j, g in enumerate(expected_grads) if g is not None]

    def failed_gradients(why: str) -> list[Row]:
        return [Row(label, gradient_names[j], FAIL, threshold=threshold, details=[why]) for j in gradient_rows]

    # the forward, on private copies
    student_inputs = [_copy(v) for v in inputs]
    try:
        result = forward(*student_inputs)
    except Exception as exc:
        why = f"your forward raised {_exception(exc, forward)}"
        return [Row(label, "out", FAIL, threshold=threshold, details=[why])] + \
            failed_gradients("not checked: the forward raised")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise ContractError(f"{exercise.op}_forward must return a pair (out, cache), got {_describe(result)}")
    out, cache = result
    rows = [_compare(label, "out", out, expected_out, threshold)]
    for name in case.in_place:                   # batch norm's running statistics: updated by the forward
        k = names.index(name)
        rows.append(_compare(label, name, student_inputs[k], expected_inputs[k], threshold))
    out_ok = rows[0].status == PASS or _shape(out) == expected_out.shape

    # the backward, for the same dout as nbconv's
    try:
        grads = backward(_copy(dout), cache)
    except Exception as exc:
        return rows + failed_gradients(f"your backward raised {_exception(exc, backward)}")
    if not isinstance(grads, (tuple, list)):
        hint = " (for one input return a 1-tuple: (dx,))" if hasattr(grads, "shape") else ""
        raise ContractError(f"{exercise.op}_backward must return a tuple of {len(expected_grads)} gradients "
                            f"({', '.join(exercise.gradients)}), got {_describe(grads)}{hint}")
    if len(grads) != len(expected_grads):
        raise ContractError(f"{exercise.op}_backward returned {len(grads)} gradients, nbconv's returns "
                            f"{len(expected_grads)}: ({', '.join(exercise.gradients)})"
                            + (", None for a missing bias" if "db" in exercise.gradients else ""))
    grads = [None if expected_grads[j] is None else grads[j] for j in range(len(grads))]
    gradient_rows_found = {j: _compare(label, gradient_names[j], grads[j], expected_grads[j], threshold)
                           for j in gradient_rows}
    # a gradient of the wrong shape has its FAIL row already; the others are still checked
    usable = [j for j in gradient_rows if _shape(grads[j]) == np.shape(expected_grads[j])]

    # the backward against central differences of the student's own forward
    fd = {}
    skip = None
    if not out_ok:
        skip = "not checked against finite differences: your out has the wrong shape"
    elif usable:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check = check_gradients(forward, lambda d, c: _grads_of(backward, d, c, usable), inputs,
                                        names=case.names, dout=dout, threshold=threshold, seed=seed,
                                        allow_in_place=case.in_place)
            fd = {f"d{report.name}": report for report in check}
            warnings_found += [f"{label}: {text}" for text in dict.fromkeys(check.warnings)]
        except Exception as exc:
            skip = f"not checked against finite differences: your code raised {_exception(exc, forward)}"
    for j in gradient_rows:
        row = gradient_rows_found[j]
        report = fd.get(row.value)
        if report is not None:
            row.fd_error = report.max_rel_error
            if not report.passed:
                if row.status == PASS:
                    where = f"{report.name}[{', '.join(map(str, report.worst_index or ()))}]"
                    row.details.append(f"agrees with nbconv's {row.value} but not with central differences of "
                                       f"your forward: worst element {where}, yours {report.analytic:.8g}, "
                                       f"finite differences {report.numeric:.8g} (is your forward right?)")
                row.details += [f"finite differences: {line.strip()}" for line in report.diagnosis
                                if line.startswith("pattern") and "none of the usual" not in line]
                row.status = FAIL
        elif skip is not None or row.status == PASS:
            row.status = FAIL
            row.details.append(skip or "not checked against finite differences")
        rows.append(row)
    return rows


def _grads_of(backward, dout, cache, usable):
    """The student's backward with None for the gradients not to check against finite
    differences: where nbconv's is None (no bias) or the student's has the wrong shape."""
    grads = backward(dout, cache)
    return [g if j in usable else None for j, g in enumerate(grads)]


def _compare(case: str, name: str, yours, expected, threshold: float) -> Row:
    """A row comparing ``yours`` with ``expected`` element by element; on failure the first
    wrong element (C order) with both values."""
    expected = np.asarray(expected, dtype=np.float64)
    if yours is None:
        return Row(case, name, FAIL, threshold=threshold, details=[f"yours is None, expected an array of shape "
                                                                   f"{expected.shape}"])
    try:
        a = _as_array(yours)
    except (TypeError, ValueError):
        return Row(case, name, FAIL, threshold=threshold,
                   details=[f"yours is {_describe(yours)}, not numbers; expected an array of shape {expected.shape}"])
    if a.shape != expected.shape:
        return Row(case, name, FAIL, threshold=threshold,
                   details=[f"yours has shape {a.shape}, expected {expected.shape}"])
    if a.size == 0:
        return Row(case, name, PASS, 0.0, threshold=threshold)
    diff = np.abs(a - expected)
    denominator = max(float(np.max(np.abs(a) + np.abs(expected))), DENOMINATOR_FLOOR)
    if not np.isfinite(denominator):
        denominator = DENOMINATOR_FLOOR if not np.all(np.isfinite(expected)) else \
            max(float(np.max(np.abs(expected))), DENOMINATOR_FLOOR)
    failing = ~(diff <= threshold * denominator)             # NaN counts as failing
    error = float(np.max(np.where(np.isnan(diff), np.inf, diff)) / denominator)
    if not failing.any():
        return Row(case, name, PASS, error, threshold=threshold)
    first = tuple(int(i) for i in np.argwhere(failing)[0])
    where = name if a.ndim == 0 else f"{name}[{', '.join(map(str, first))}]"
    details = [f"first wrong element {where}: yours {a[first]:.8g}, expected {expected[first]:.8g}; "
               f"{int(failing.sum())} of {a.size} elements wrong"]
    return Row(case, name, FAIL, error, threshold=threshold, details=details)


# --- small helpers ------------------------------------------------------------------------------

def _labels(names, inputs) -> list[str]:
    """One name per input: ``names`` labels every input, or the float ones in order."""
    labels = [f"x{k}" for k in range(len(inputs))]
    if len(names) == len(inputs):
        return list(names)
    floats = [k for k, v in enumerate(inputs) if _is_float(v)]
    for k, name in zip(floats, names):
        labels[k] = name
    return labels


def _is_float(v) -> bool:
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "f"
    return isinstance(v, (float, np.floating))


def _copy(v):
    return v.copy() if isinstance(v, np.ndarray) else v


def _as_array(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _shape(v) -> tuple | None:
    """The shape of ``v`` as an array of numbers, None if it is not one."""
    if v is None:
        return None
    try:
        return _as_array(v).shape
    except (TypeError, ValueError):
        return None


def _describe(v) -> str:
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of {len(v)}"
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"an array of shape {tuple(v.shape)}"
    return "None" if v is None else f"a {type(v).__name__}"


def _exception(exc: BaseException, function) -> str:
    """"IndexError: index 5 is out of bounds ... (line 42 of conv2d.py: dx[n, c, row, col] += ...)":
    the line is the deepest one of the student's file in the traceback, else the deepest one."""
    frames = traceback.extract_tb(exc.__traceback__)
    function = getattr(function, "func", function)                 # a partial: the student's function
    target = getattr(getattr(function, "py_func", function), "__code__", None)    # Numba: the Python one
    path = target.co_filename if target is not None else None
    mine = [f for f in frames if f.filename == path] or frames[-1:]
    text = f"{type(exc).__name__}: {exc}".split("\n")[0]
    if mine:
        frame = mine[-1]
        source = f": {frame.line.strip()}" if frame.line else ""
        text += f" (line {frame.lineno} of {frame.filename.rsplit('/', 1)[-1]}{source})"
    return text
