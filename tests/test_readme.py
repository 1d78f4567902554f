"""Every python block of the README (and of docs/*.md) runs as written.

A block is run on its own, in a fresh namespace, the way a reader pastes it into a new
interpreter, with the working directory a temporary folder.  A block that is only an excerpt
says so in its first line, ``# excerpt of FILE, ...``; it is not run, but each of its lines must
appear in FILE, so the excerpt cannot drift from the code it quotes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXCERPT = re.compile(r"^# excerpt of ([^\s,]+)")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of a Markdown file, dedented."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    k = 0
    while k < len(lines):
        fence = re.match(r"^(\s*)```python\s*$", lines[k])
        if fence:
            indent, start, body = len(fence.group(1)), k + 1, []
            k += 1
            while not lines[k].strip().startswith("```"):
                body.append(lines[k][indent:])
                k += 1
            blocks.append((start, "\n".join(body) + "\n"))
        k += 1
    return blocks


BLOCKS = [(path, line, code) for path in DOCUMENTS for line, code in python_blocks(path)]
RUNNABLE = [b for b in BLOCKS if not EXCERPT.match(b[2])]
EXCERPTS = [b for b in BLOCKS if EXCERPT.match(b[2])]


def _id(block) -> str:
    path, line, _ = block
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_readme_has_runnable_blocks_and_excerpts():
    assert len([b for b in RUNNABLE if b[0].name == "README.md"]) >= 6
    assert len(EXCERPTS) >= 2


@pytest.mark.parametrize("block", RUNNABLE, ids=[_id(b) for b in RUNNABLE])
def test_block_runs_as_written(block, tmp_path, monkeypatch):
    path, line, code = block
    if "numba import cuda" in code:
        pytest.importorskip("numba_cuda", reason="the GPU block needs numba-cuda (the [dev] extra has it)")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    exec(compile(code, f"{path.name}:{line}", "exec"), namespace)


@pytest.mark.parametrize("block", EXCERPTS, ids=[_id(b) for b in EXCERPTS])
def test_excerpt_quotes_its_file(block):
    path, line, code = block
    source_lines = code.splitlines()
    quoted = ROOT / EXCERPT.match(source_lines[0]).group(1)
    assert quoted.is_file(), f"{_id(block)}: the excerpt names {quoted}, which does not exist"
    source = {_code(text) for text in quoted.read_text(encoding="utf-8").splitlines()}
    for text in source_lines[1:]:
        if _code(text) and _code(text) != "...":
            assert _code(text) in source, f"{_id(block)}: {text.strip()!r} is not a line of {quoted.relative_to(ROOT)}"


def _code(line: str) -> str:
    """A line without its comment and indentation."""
    return line.split("#")[0].strip()
