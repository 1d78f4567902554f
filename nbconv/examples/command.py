"""``nbconv example``: list the worked examples, or replay one (exit 1 if a value disagrees).

    nbconv example --list                       the examples; "--plot" marks those that draw
    nbconv example NAME                         replay one
    nbconv example NAME --plot out.png          replay it and write its picture (needs matplotlib)

A ``--plot`` that cannot be honoured (an example without a picture, matplotlib missing, a path
that cannot be written) prints one line and exits 2 before anything is replayed.
"""

from __future__ import annotations

import sys

# matplotlib is the plot extra; from a checkout, the second form installs it
MATPLOTLIB_MISSING = ('the pictures need matplotlib, an optional extra of nbconv: pip install "nbconv[plot]" '
                      '(from a checkout: pip install -e ".[plot]")')


def register(commands) -> None:
    p = commands.add_parser("example", help="replay a worked example of the course, step by step")
    p.add_argument("name", nargs="?", help="the example to replay (see --list)")
    p.add_argument("--list", action="store_true", help="list the examples, one per line, and exit")
    p.add_argument("--plot", metavar="PATH",
                   help="also write the example's picture to this PNG file (the examples marked --plot "
                        "in --list; needs matplotlib)")
    p.set_defaults(func=run)


def run(args) -> int:
    from nbconv.examples import EXAMPLES

    plot = getattr(args, "plot", None)
    if args.list or not args.name:
        if plot and not args.list:
            return _fail(f"--plot needs an example NAME; these draw: {', '.join(_drawing(EXAMPLES))}")
        _print_list(EXAMPLES)
        return 0
    if args.name not in EXAMPLES:
        return _fail(f"unknown example {args.name!r}; `nbconv example --list` shows them")
    example = EXAMPLES[args.name]
    if plot:
        problem = _plot_problem(example, plot, EXAMPLES)
        if problem:
            return _fail(problem)
    result = example.run()
    print(result.render())
    if plot:
        example.draw(plot)
        print(f"wrote {plot}")
    return 0 if result.ok else 1


def _print_list(examples) -> None:
    """One line per example: its name, "--plot" where it draws a picture, what it shows."""
    width = max((len(name) for name in examples), default=0)
    for ex in examples.values():
        mark = "--plot" if ex.draw is not None else ""
        print(f"{ex.name:<{width}}  {mark:<6}  {ex.description}")


def _drawing(examples) -> list[str]:
    return [name for name, ex in examples.items() if ex.draw is not None]


def _plot_problem(example, path, examples) -> str | None:
    """Why ``--plot path`` cannot be honoured for ``example``, or None: it draws no picture,
    matplotlib is missing, or the file cannot be written there."""
    if example.draw is None:
        return f"{example.name} draws no picture; these do: {', '.join(_drawing(examples))}"
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return MATPLOTLIB_MISSING
    from nbconv.cli import output_path_problem
    return output_path_problem(path, "--plot")


def _fail(message: str) -> int:
    """One line on stderr, "nbconv example: message"; the exit status 2."""
    print(f"nbconv example: {message}", file=sys.stderr)
    return 2
