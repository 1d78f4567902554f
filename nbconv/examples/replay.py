"""What a replay of a worked example is: text beside the lecture's figures, and checks.

A worked example of the course is one function that runs it through nbconv's public API and
returns a ``Replay``: the lines to print (the setting, each intermediate step beside the figure
the text prints, pictures drawn in text) and the ``Check`` of every value that has a known
answer.  ``nbconv example NAME`` prints it and exits 1 if a check fails; the tests call the same
function and assert ``replay.ok``.

    def neuron() -> Replay:
        r = Replay("neuron", "One neuron: y = f(w . x + b)")
        y, _ = F.linear_forward(x, w, b)
        r.check("w . x + b", y[0, 0], 0.7, lecture="0.7")
        return r

``check`` compares to the exact value (``expected``), and prints the text's own figure beside it
(``lecture``), with a ``note`` wherever the text rounds or misprints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Check:
    """One checked value: what nbconv computed, the exact answer, the text's figure."""

    quantity: str
    value: object              # float or array, as nbconv computed it
    expected: object           # the exact answer (float or array)
    lecture: str = ""          # the figure as the text prints it ("" where it prints none)
    note: str = ""             # where the text rounds, truncates or misprints
    tol: float = 1e-6          # |value - expected| allowed, elementwise

    @property
    def ok(self) -> bool:
        if isinstance(self.expected, str) or isinstance(self.value, str):
            return self.value == self.expected               # a label: "slow", "diverging", ...
        value, expected = np.asarray(self.value), np.asarray(self.expected)
        if value.shape != expected.shape:
            return False
        if value.dtype.kind in "biu" and expected.dtype.kind in "biu":
            return bool(np.array_equal(value, expected))
        return bool(np.allclose(value, expected, rtol=0.0, atol=self.tol, equal_nan=True))


@dataclass
class Replay:
    """A worked example replayed: ``lines`` to print, ``checks`` that decide ``ok``."""

    name: str
    title: str
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def say(self, *lines: str) -> None:
        """Add lines of text (the setting, a step, a picture)."""
        self.lines.extend(lines)

    def check(self, quantity: str, value, expected, *, lecture: str = "", note: str = "",
              tol: float = 1e-6) -> Check:
        """Check ``value`` against ``expected`` and add the row ``quantity  value  lecture  ok``."""
        if not isinstance(value, str):
            value = np.array(value, copy=True)               # the value now, not a later update
        c = Check(quantity, value, expected, lecture, note, tol)
        self.checks.append(c)
        self.lines.append(_check_line(c))
        return c

    def show(self, label: str, value) -> None:
        """Say ``label = value``; an array of several rows goes under its label, indented."""
        rows = fmt(value).splitlines()
        if len(rows) == 1:
            self.say(f"{label} = {rows[0]}")
        else:
            self.say(f"{label} =", *("    " + row for row in rows))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def render(self) -> str:
        """The replay as printed by ``nbconv example``: title, lines, and a last line saying
        how many values agree."""
        bad = self.failures()
        verdict = (f"all {len(self.checks)} checked values agree" if not bad else
                   f"{len(bad)} of {len(self.checks)} checked values DISAGREE: "
                   + ", ".join(c.quantity for c in bad))
        return "\n".join([self.title, "=" * len(self.title), *self.lines, "", verdict])


def fmt(value, digits: int = 6) -> str:
    """A number or a small array as text: floats to ``digits`` places without trailing zeros."""
    if isinstance(value, str):
        return value
    a = np.asarray(value)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, (bool, np.bool_)):
            return str(v)
        if isinstance(v, (int, np.integer)):
            return str(v)
        text = f"{v:.{digits}f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.array_equal(a, np.round(a)):
        a = a.astype(np.int64)                         # 57. -> 57: whole numbers print as such
    return np.array2string(a, precision=digits, suppress_small=True, separator=" ",
                           max_line_width=100)


def _check_line(c: Check) -> str:
    """``quantity  value  ok  [text: figure]  (note)``.  An array that agrees is named by its
    shape only (the replay has drawn it already); one that disagrees is printed with the
    expected array under it."""
    lecture = f"  [text: {c.lecture}]" if c.lecture else ""
    value = np.asarray(c.value)
    if isinstance(c.value, str) or value.ndim == 0:
        ok = "ok" if c.ok else "NO (expected " + fmt(c.expected) + ")"
        return _with_note(f"{c.quantity:<28} {fmt(c.value):>14}  {ok}{lecture}", c.note)
    shape = "x".join(str(n) for n in value.shape)
    if c.ok:
        return _with_note(f"{c.quantity:<28} {'(' + shape + ')':>14}  ok{lecture}", c.note)
    return (_with_note(f"{c.quantity} ({shape}): NO{lecture}", c.note) + "\n" + _indent(fmt(value))
            + "\n  expected:\n" + _indent(fmt(c.expected)))


def _with_note(line: str, note: str, width: int = 100) -> str:
    """line + "  (note)", the note on a line of its own where both would pass ``width``."""
    if not note:
        return line
    if len(line) + len(note) + 4 <= width:
        return f"{line}  ({note})"
    return f"{line}\n{'':<30}({note})"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@dataclass(frozen=True)
class Example:
    """A worked example: its name on the command line, one line saying what it shows, the
    function that replays it, and for the examples that draw one, the function that writes their
    picture to a PNG file (``nbconv example NAME --plot out.png``; needs matplotlib)."""

    name: str
    description: str
    run: Callable[[], Replay]
    draw: Callable[[str], None] | None = None
