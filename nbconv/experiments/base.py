"""What an experiment is: a seeded training run whose table is printed, whose conclusion is checked,
and whose figure can be drawn.

An experiment trains small networks on the digits (nbconv.data.load_digits) and returns an
``Outcome``: the lines to print (the setting, the table, the lecture's conclusion) and the
``Finding`` of every claim it checks, such as "the plain net's first layer gets a gradient at
least 10x smaller than the residual net's".  ``nbconv experiment NAME`` prints it and exits 1 if
a finding does not hold; the tests run the same function, smaller (``quick=True``).

    def run(quick: bool = False) -> Outcome:
        out = Outcome("symmetry", "Zero and constant initialization: every unit of a layer stays the same")
        ...train...
        out.table(["init", "accuracy"], rows)
        out.find("random init reaches 90 % accuracy", f"{acc:.3f}", acc >= 0.9)
        return out

Everything is seeded (the weights, the shuffling, the dropout masks, the label noise) and runs on
one thread (``nbconv.training.thread_limit(1)``): the parallel kernels could add their sums in
another order on another number of threads, and on 8x8 images one thread is the fastest anyway.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable

DPI = 100


@dataclass
class Finding:
    """One checked conclusion: the claim, what was measured, whether the claim holds."""

    claim: str
    measured: str
    holds: bool


@dataclass
class Outcome:
    """An experiment's run: ``lines`` to print, ``findings`` that decide ``ok``, and ``data``, the
    numbers its figure is drawn from (per experiment: see its ``draw``)."""

    name: str
    title: str
    lines: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    seconds: float = math.nan          # wall time of the run, set by nbconv.experiments.perform

    def say(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list]) -> None:
        """Add a table: a header, a rule, one line per row; each cell right-aligned to its column
        (the first column left-aligned), numbers formatted with ``cell``."""
        text = [[str(h) for h in header]] + [[cell(v) for v in row] for row in rows]
        widths = [max(len(r[k]) for r in text) for k in range(len(header))]

        def line(r):
            return "  ".join(r[0].ljust(widths[0]) if k == 0 else r[k].rjust(widths[k])
                             for k in range(len(r))).rstrip()
        self.say(line(text[0]), "-" * len(line(text[0])), *(line(r) for r in text[1:]))

    def find(self, claim: str, measured: str, holds: bool) -> Finding:
        """Check a conclusion: ``holds`` says whether the run shows it, ``measured`` the numbers."""
        f = Finding(claim, measured, bool(holds))
        self.findings.append(f)
        return f

    @property
    def ok(self) -> bool:
        return all(f.holds for f in self.findings)

    def render(self) -> str:
        """The outcome as ``nbconv experiment`` prints it: title, lines, the checked findings, a verdict."""
        checks = [f"  {'ok ' if f.holds else 'NO '} {f.claim}: {f.measured}" for f in self.findings]
        bad = [f for f in self.findings if not f.holds]
        verdict = (f"all {len(self.findings)} findings hold" if not bad else
                   f"{len(bad)} of {len(self.findings)} findings DO NOT HOLD: the expected effect did not appear")
        return "\n".join([self.title, "=" * len(self.title), *self.lines, "", "Checked:", *checks, verdict])


@dataclass(frozen=True)
class Experiment:
    """An experiment: its name on the command line, one line saying what it shows, the function
    that runs it (``run(quick=False) -> Outcome``; ``quick=True`` is a smaller run for the tests)
    and the one that draws its outcome to a PNG file (``draw(outcome, path)``; needs matplotlib)."""

    name: str
    description: str
    run: Callable[..., Outcome]
    draw: Callable[[Outcome, str], None]


def cell(value) -> str:
    """A table cell: a float to 3 significant digits (scientific when tiny or huge), nan and inf
    as words, anything else as str."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0.0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.4g}"
    return str(value)


@functools.lru_cache(maxsize=1)
def digits():
    """The digits split of nbconv.data.load_digits(seed=0), float32 (loaded once)."""
    from nbconv.data import load_digits
    return load_digits(seed=0)


# ---------------------------------------------------------------- figures

def new_figure(width: float, height: float):
    """An empty figure of width x height inches (matplotlib's object API: no pyplot, no backend
    chosen; matplotlib is imported here, not before)."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(fig, path) -> None:
    fig.savefig(path, dpi=DPI, format="png")
