"""Every file the code, the README, docs/ or the tests cite exists in the repository, and nothing
points outside it.

Citations are collected by regular expressions over the repository's own files (git's list:
tracked and untracked, ignored ones left out):

- a path under one of the repository's folders, ``docs/methods.md``, ``kernels/cuda/``,
  ``bench/gpu_check.py``, ``tests/test_conv.py``, in code, comments, docstrings or Markdown
  (an installed path, ``nbconv/kernels/...``, is read as the folder it is installed from);
- a relative link of a Markdown file, ``[text](docs/methods.md)``, from that file's folder;
- a test named by file and name, ``tests/test_conv.py::test_lecture_convolution_examples``: the
  file must define it;
- ``nbconv example NAME`` and ``nbconv summary NAME`` in the README and docs/: a replay that an
  example module defines, a model that the summary knows.

The self-tests at the end feed the collector made-up citations, so the check is seen to fail.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("docs", "bench", "kernels", "nbconv", "gradcheck", "tests")
INSTALLED = {"nbconv/kernels": "kernels", "nbconv/gradcheck": "gradcheck"}   # pyproject.toml's package-dir
CITING = (".py", ".md", ".toml")

PATH = re.compile(rf"(?<![\w./-])((?:{'|'.join(FOLDERS)})/[\w.*/-]*)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
TEST = re.compile(r"((?:tests|bench)/[\w/]+\.py)::(\w+)")
COMMAND = re.compile(r"nbconv (example|summary) ([a-z0-9][a-z0-9-]*)")

# Nothing in the repository may point at the project's private notes (built here so that this
# file does not mention them itself).
FORBIDDEN = ("DESIGN" + ".md", "WORKED_EXAMPLES" + ".md", "/work/" + "shared")
PRIVATE_TEXT = re.compile("seeds" + r"/\d{3}")      # the course texts' files, not in the repository


def repository_files() -> list[str]:
    """The repository's files, relative to ROOT: git's tracked and untracked files without the
    ignored ones, or, outside a git checkout, a walk that skips what .gitignore ignores."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [f for f in listed.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks", "venv"}
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
                 and not any(part.endswith(".egg-info") for part in p.parts)]
    return [f for f in files if (ROOT / f).is_file()]


def citations(text: str, source: str) -> set[str]:
    """The repository paths ``text`` (the content of ``source``) cites, relative to ROOT."""
    cited = set()
    for match in PATH.finditer(text):
        path = match.group(1).rstrip(".,:;")
        for installed, folder in INSTALLED.items():
            if path == installed or path.startswith(installed + "/"):
                path = folder + path[len(installed):]
        cited.add(path)
    if source.endswith(".md"):
        for match in LINK.finditer(text):
            target = match.group(1).split("#")[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):     # an anchor, https:, mailto:
                continue
            resolved = (ROOT / source).parent / target
            cited.add(str(resolved.resolve().relative_to(ROOT.resolve())) + ("/" if target.endswith("/") else ""))
    return cited


def missing(paths) -> list[str]:
    """The cited paths that are not in the repository (a glob must match at least one file)."""
    gone = []
    for path in sorted(paths):
        found = any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
        if not found:
            gone.append(path)
    return gone


def missing_tests(text: str) -> list[str]:
    """``file::name`` citations whose file does not define ``name``."""
    gone = []
    for path, name in TEST.findall(text):
        source = ROOT / path
        if not source.is_file() or not re.search(rf"^\s*(def|class) {name}\b", source.read_text(), re.M):
            gone.append(f"{path}::{name}")
    return gone


def defined_commands() -> dict[str, set[str]]:
    """The names ``nbconv example`` and ``nbconv summary`` take: every example defined by a module of
    nbconv.examples, every model of nbconv.summary.MODELS."""
    import nbconv.examples
    import nbconv.summary
    examples = set()
    for module in pkgutil.iter_modules(nbconv.examples.__path__):
        examples |= {ex.name for ex in getattr(importlib.import_module(f"nbconv.examples.{module.name}"),
                                               "EXAMPLES", [])}
    return {"example": examples, "summary": set(nbconv.summary.MODELS)}


def _read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8", errors="replace")


FILES = repository_files()
CITERS = [f for f in FILES if f.endswith(CITING)]
DOCUMENTS = ["README.md"] + [f for f in CITERS if f.startswith("docs/") and f.endswith(".md")]


# ----------------------------------------------------------------------------- the repository

def test_the_scan_sees_the_code_the_readme_the_docs_and_the_tests():
    for expected in ("README.md", "nbconv/cli.py", "kernels/conv.py", "gradcheck/registry.py",
                     "docs/design.md", "docs/worked-examples.md", "tests/test_docs.py", "bench/gpu_check.py"):
        assert expected in CITERS, expected


@pytest.mark.parametrize("source", CITERS)
def test_every_cited_file_exists(source):
    text = _read(source)
    assert missing(citations(text, source)) == [], f"{source} cites files that are not in the repository"
    assert missing_tests(text) == [], f"{source} names tests that do not exist"


def test_nothing_mentions_files_outside_the_repository():
    mentions = []
    for f in FILES:
        try:
            text = (ROOT / f).read_text(encoding="utf-8")
        except UnicodeDecodeError:           # a picture
            continue
        mentions += [f"{f}: {word}" for word in FORBIDDEN if word in text]
        mentions += [f"{f}: {m}" for m in PRIVATE_TEXT.findall(text)]
    assert mentions == []


def test_the_docs_name_replays_and_models_that_exist():
    known = defined_commands()
    for document in DOCUMENTS:
        for command, name in COMMAND.findall(_read(document)):
            assert name in known[command], f"{document}: nbconv {command} {name} does not exist"


def test_the_readme_links_every_page_of_docs():
    readme = _read("README.md")
    for page in (f for f in DOCUMENTS if f.startswith("docs/")):
        assert f"]({page})" in readme, page


# ----------------------------------------------------------------------------- the check itself
# Made-up paths are joined at run time (``_made_up``), so that this file cites none of them.

def _made_up(*parts: str) -> str:
    return "/".join(parts)


PAGE = _made_up("docs", "page.md")          # a Markdown file that would sit in docs/


def test_the_collector_finds_each_kind_of_citation():
    text = ("see `docs/methods.md` and kernels/cuda/, the installed nbconv/kernels/conv.py, "
            "tests/test_conv.py::test_lecture_convolution_examples; "
            "[the design](design.md), [numba](https://numba.pydata.org), [above](#top).")
    assert citations(text, PAGE) == {"docs/methods.md", "kernels/cuda/", "kernels/conv.py",
                                     "tests/test_conv.py", "docs/design.md"}
    assert citations("[x](../nbconv/cli.py)", PAGE) == {"nbconv/cli.py"}
    assert citations("[x](docs/methods.md)", "notes.py") == {"docs/methods.md"}     # links only in Markdown


def test_the_check_fails_on_a_missing_file():
    absent_page, absent_code = _made_up("docs", "no-such-page.md"), _made_up("bench", "no_such_script.py")
    text = f"read `{absent_page}`, run {absent_code}, see [there](no-such-link.md) and docs/*.md"
    assert missing(citations(text, PAGE)) == [absent_code, _made_up("docs", "no-such-link.md"), absent_page]
    no_match = _made_up("docs", "*.nothing")
    assert missing([no_match]) == [no_match]
    assert missing(["docs/", "kernels/cuda/", "nbconv/functional/dispatch.py"]) == []


def test_the_check_fails_on_a_missing_test():
    cited = "tests/test_conv.py::" + "test_no_such_thing"
    assert missing_tests(f"{cited} and tests/test_docs.py::test_the_check_fails_on_a_missing_test") == [cited]
    no_file = _made_up("tests", "test_nothing.py") + "::test_x"
    assert missing_tests(no_file) == [no_file]
