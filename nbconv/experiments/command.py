"""``nbconv experiment``: list the training experiments, or run one (exit 1 if its effect did not appear).

    nbconv experiment --list                    the experiments, one line each
    nbconv experiment NAME                      run one: its table, the lecture's conclusion, the checks
    nbconv experiment NAME --plot out.png       also draw it (needs matplotlib, the plot extra)

The digits come with scikit-learn (the train extra).  A ``--plot`` that cannot be honoured
(matplotlib missing, a path that cannot be written) and an unknown NAME print one line and exit 2
before anything is trained.
"""

from __future__ import annotations


def register(commands) -> None:
    p = commands.add_parser("experiment", help="run a training experiment of the lectures on the digits")
    p.add_argument("name", nargs="?", help="the experiment to run (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments, one per line, and exit")
    p.add_argument("--plot", metavar="PATH", help="also draw the experiment to this PNG file (needs matplotlib)")
    p.set_defaults(func=run)


def run(args) -> int:
    from nbconv.experiments import EXPERIMENTS, perform

    if args.list or not args.name:
        if args.plot and not args.list:
            return _fail(f"--plot needs an experiment NAME; choose from: {', '.join(EXPERIMENTS)}")
        width = max(len(name) for name in EXPERIMENTS)
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:<{width}}  {experiment.description}")
        return 0
    if args.name not in EXPERIMENTS:
        return _fail(f"unknown experiment {args.name!r}; choose from: {', '.join(EXPERIMENTS)}")
    if args.plot:
        problem = _plot_problem(args.plot)
        if problem:
            return _fail(problem)
    outcome = perform(args.name)
    print(outcome.render())
    print(f"ran in {outcome.seconds:.1f} s")
    if args.plot:
        EXPERIMENTS[args.name].draw(outcome, args.plot)
        print(f"wrote {args.plot}")
    return 0 if outcome.ok else 1


def _plot_problem(path) -> str | None:
    """Why ``--plot path`` cannot be honoured, or None: matplotlib is missing, or the file cannot
    be written there."""
    from nbconv.cli import install_hint, output_path_problem
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return f"--plot needs matplotlib, an optional extra of nbconv: {install_hint('plot')}"
    return output_path_problem(path, "--plot")


def _fail(message: str) -> int:
    from nbconv.cli import fail
    return fail("experiment", message)
