"""Exercises: write an op's forward and backward yourself, and have them graded.

    nbconv exercise conv2d mywork          writes mywork/conv2d.py, a skeleton with TODOs
    nbconv check mywork/conv2d.py          grades it: PASS/FAIL per case and value, exit 0 when all pass

A skeleton (``nbconv/exercise/templates/``) holds the op's ``OP_forward`` and ``OP_backward``
with nbconv.functional's signatures (without ``method``), the formula in the docstrings and the
arithmetic left as TODO; it runs as it is and returns zeros.  ``nbconv check`` imports the two
functions from the file and grades them with ``nbconv.gradcheck.check_op``: on every case of
the gradient-check registry for the op, the output against nbconv's, every gradient against
nbconv's and against central differences of your forward.  docs/exercises.md is the guide.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from nbconv.gradcheck.exercise import EXERCISES

__all__ = ["OPS", "keep_mask", "template", "write_skeleton", "load_solution", "Solution", "SolutionError"]

OPS = tuple(EXERCISES)       # the ops with an exercise, in the order of the course


def template(op: str) -> str:
    """The text of the skeleton of ``op``: its file in nbconv/exercise/templates/."""
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; the exercises are: {', '.join(OPS)}")
    return importlib.resources.files("nbconv.exercise.templates").joinpath(f"{op}.py").read_text(encoding="utf-8")


def write_skeleton(op: str, folder, *, force: bool = False) -> str:
    """Write the skeleton of ``op`` to ``folder/OP.py`` (the folder is created if needed) and return
    the path.  An existing file is kept unless ``force``: FileExistsError."""
    text = template(op)
    path = os.path.join(os.fspath(folder), f"{op}.py")
    if os.path.exists(path) and not force:
        raise FileExistsError(path)
    os.makedirs(os.fspath(folder), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def keep_mask(shape, p: float, seed) -> np.ndarray:
    """The units nbconv's dropout keeps for ``p`` and ``seed``: a bool array of ``shape``, True
    where ``F.dropout_forward(x, p=p, seed=seed)`` keeps the unit, for any x of that shape (the
    mask depends on the seed, p and the element's place only).  A numpy.random.Generator as the
    seed is advanced as nbconv's dropout advances it."""
    from nbconv.functional import dropout_forward

    out, _ = dropout_forward(np.ones(shape), p=p, training=True, seed=seed)
    return out != 0.0            # kept: 1 / (1 - p) > 0; dropped: 0 (and p = 1 drops them all)


# --- a student's file ---------------------------------------------------------------------------

class SolutionError(Exception):
    """A student's file that cannot be graded: it does not import, or lacks the functions."""


@dataclass(frozen=True)
class Solution:
    """One op's pair of functions found in a student's file."""

    op: str
    forward: Callable
    backward: Callable


def load_solution(path, op: str | None = None) -> list[Solution]:
    """Import the file ``path`` and find the pairs ``OP_forward`` / ``OP_backward`` in it.

    Which op: ``op`` if given; else the ops whose two functions the file defines, only the one
    named by the file if that is among them (a cross_entropy.py may import softmax's pair); a
    file that defines one function of a pair, or none, is a SolutionError naming what is
    missing.  The file's folder is on sys.path while it imports, so it may import its neighbours."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SolutionError(f"{path}: no such file" if not os.path.exists(path) else f"{path}: not a file")
    if op is not None and op not in OPS:
        raise SolutionError(f"unknown op {op!r}; the exercises are: {', '.join(OPS)}")
    module = _import(path)
    stem = os.path.splitext(os.path.basename(path))[0]

    def pair(name):
        return tuple(getattr(module, f"{name}_{part}", None) for part in ("forward", "backward"))

    if op is None:
        complete = [name for name in OPS if all(callable(f) for f in pair(name))]
        if stem in complete:
            complete = [stem]
        if complete:
            return [Solution(name, *pair(name)) for name in complete]
        halves = [name for name in OPS if any(callable(f) for f in pair(name))]
        if halves:
            op = stem if stem in halves else halves[0]
        elif stem in OPS:
            op = stem
        else:
            raise SolutionError(f"{path} defines no OP_forward / OP_backward pair of an exercise "
                                f"(OP one of {', '.join(OPS)})")
    forward, backward = pair(op)
    missing = [f"{op}_{part}" for part, f in (("forward", forward), ("backward", backward)) if not callable(f)]
    if missing:
        found = [f"{op}_{part}" for part, f in (("forward", forward), ("backward", backward)) if callable(f)]
        also = f" (it defines {found[0]})" if found else ""
        raise SolutionError(f"{path} lacks {' and '.join(missing)}{also}")
    return [Solution(op, forward, backward)]


def _import(path: str):
    """The module of the file ``path``, imported under a name of its own; any error on the way is
    a SolutionError of one line: the exception and the line of the file it came from."""
    name = "nbconv_exercise_" + "".join(ch if ch.isalnum() else "_" for ch in os.path.basename(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SolutionError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    sys.modules[name] = module                   # as an import would (dataclasses, pickling look it up)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise SolutionError(f"{path} does not import: SyntaxError: {exc.msg} (line {exc.lineno})") from None
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise SolutionError(f"{path} does not import: {_where(exc, path)}") from None
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
    return module


def _where(exc: BaseException, path: str) -> str:
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if os.path.abspath(f.filename) == os.path.abspath(path)]
    text = f"{type(exc).__name__}: {exc}".split("\n")[0]
    if frames:
        text += f" (line {frames[-1].lineno})"
    return text
