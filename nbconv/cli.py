"""The ``nbconv`` command line.

    nbconv gradcheck                     check every backward in the registry
    nbconv gradcheck --op conv2d         check one op
    nbconv gradcheck --example backprop  replay the lecture's backprop example
    nbconv gradcheck --device cuda       check every op on the GPU path

A command that cannot run (a missing optional extra, a file that cannot be read or written, a
bad option value) prints one line, "nbconv COMMAND: what is wrong: what to do", and exits 2
without a traceback: argparse does it for the option values it checks, the commands check
their paths up front (``output_path_problem``), and ``main`` turns the ImportError of an
optional extra and an OSError about a file into that line (``command_error``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that add a sub-command: each has ``register(subparsers)``, which adds its parser and
# sets ``func=run`` with ``run(args) -> exit status``.
COMMANDS = ("nbconv.cli", "nbconv.examples.command", "nbconv.summary", "nbconv.train_cli", "nbconv.bench",
            "nbconv.experiments.command", "nbconv.exercise.command")


# Numba's OpenMP threads keep spinning for a while after each parallel region (libgomp's default
# OMP_WAIT_POLICY is active) and take the core that OpenBLAS's threads need for the next GEMM:
# on the 2-core machine a training step of the digits net ran 3x slower on 2 threads than with
# the threads asleep between regions.  Asleep, though, a worker is woken at the next region on
# the waking thread's own core more often than not (Linux places a wakee near its waker), where
# it waits for that core: a 1 ms parallel kernel then ran at one thread's speed, 1.4 ms instead
# of 0.75, for whole bursts of calls.  Bound to a core each (OMP_PROC_BIND), the threads stay
# apart.  The command line is nbconv's own process, so it asks the OpenMP runtime for both,
# unless the user chose (either variable, or OMP_PLACES for the binding); `nbconv bench` prints
# the setting.  The library (import nbconv) changes nothing of the kind.
OPENMP_SETTINGS = {
    "OMP_WAIT_POLICY": "PASSIVE",     # idle threads sleep
    "OMP_PROC_BIND": "true",          # each thread stays on its core
}


def openmp_settings() -> None:
    """Set OPENMP_SETTINGS in this process's environment, each only where the user chose nothing."""
    os.environ.setdefault("OMP_WAIT_POLICY", OPENMP_SETTINGS["OMP_WAIT_POLICY"])
    if "OMP_PROC_BIND" not in os.environ and "OMP_PLACES" not in os.environ:
        os.environ["OMP_PROC_BIND"] = OPENMP_SETTINGS["OMP_PROC_BIND"]


def main(argv=None) -> int:
    openmp_settings()                            # before Numba's first parallel region starts OpenMP
    parser = OneLineErrors(prog="nbconv", description=__doc__.splitlines()[0])   # sub-commands inherit it
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(module).register(commands)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ImportError, OSError) as exc:
        message = command_error(exc)
        if message is None:                      # not a missing extra, not a file: a bug, with its traceback
            raise
        return fail(args.command, message)


# ----------------------------------------------------------------------------- command-line errors

class OneLineErrors(argparse.ArgumentParser):
    """argparse's parser, with a bad option value reported on one line (no usage block):
    "nbconv train: argument --epochs: must be >= 1, got 0 (nbconv train --help lists the options)",
    exit status 2.  ``add_subparsers`` makes the sub-commands' parsers of the same class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help lists the options)\n")


# The optional extras of pyproject.toml: the top-level module -> (its package, the extra holding it).
EXTRAS = {
    "sklearn": ("scikit-learn", "train"),
    "tqdm": ("tqdm", "train"),
    "matplotlib": ("matplotlib", "plot"),
    "numba_cuda": ("numba-cuda", "cuda"),
}


def install_hint(extra: str) -> str:
    """The command that installs an extra.  pip takes nbconv itself as installed (a checkout's
    editable install too) and adds only the extra's packages."""
    return f'pip install "nbconv[{extra}]"'


def fail(command: str, message: str) -> int:
    """Print "nbconv COMMAND: message" on stderr, one line; return the exit status 2."""
    print(f"nbconv {command}: {message}", file=sys.stderr)
    return 2


def command_error(exc: BaseException) -> str | None:
    """The one line for an error a user can fix, or None for any other error.

    - an ImportError of an optional extra's module (``EXTRAS``; the error itself, or the one it
      was raised from): its message if it already names the pip command, else which package is
      missing and how to install it;
    - an OSError about a file (it names one): the file, the reason and what to check."""
    if isinstance(exc, ImportError):
        for error in (exc, exc.__cause__):
            name = getattr(error, "name", None) or ""
            top = name.split(".")[0]
            if top in EXTRAS:
                package, extra = EXTRAS[top]
                if "pip install" in str(exc):
                    return str(exc)
                return f"{package} is not installed, an optional extra of nbconv: {install_hint(extra)}"
        return None
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or type(exc).__name__
        return f"{exc.filename}: {reason}; check the path and its folder's permissions"
    return None


def int_option(minimum: int):
    """An argparse ``type`` for an integer option of at least ``minimum``: a bad value is one
    line from argparse ("argument --epochs: must be >= 1, got 0") and exit status 2."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def output_path_problem(path, option: str) -> str | None:
    """Why the file ``path`` given to ``option`` cannot be written, or None: it must not be a
    folder, its folder must exist and be writable, and an existing file must be writable."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"{option} {path}: is a folder; give a file name"
    if not os.path.isdir(folder):
        return f"{option} {path}: the folder {folder} does not exist; create it first"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{option} {path}: the folder {folder} is not writable; choose another path"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return f"{option} {path}: the file is not writable; choose another path"
    return None


def register(commands) -> None:
    gc = commands.add_parser("gradcheck", help="finite-difference check of every backward pass")
    gc.add_argument("--op", action="append", help="check only this op (repeatable), e.g. conv2d")
    gc.add_argument("--example", help="replay a worked example instead: backprop")
    gc.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    gc.add_argument("--list", action="store_true", help="list the ops in the registry and exit")
    gc.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cpu (default): the registry on the CPU kernels; cuda: every op on the GPU kernels, "
                         "inputs copied to the device at each evaluation, on the small shapes of "
                         "nbconv.gradcheck.device_cases (Numba's CUDA simulator is slow)")
    gc.set_defaults(func=gradcheck)


def gradcheck(args) -> int:
    from nbconv.gradcheck import all_cases, ops
    from nbconv.gradcheck.examples import EXAMPLES

    if args.example:
        if args.example not in EXAMPLES:
            print(f"nbconv gradcheck: unknown example {args.example!r}; choose from {sorted(EXAMPLES)}",
                  file=sys.stderr)
            return 2
        result = EXAMPLES[args.example]()
        print(result.render())
        return 0 if result.ok else 1
    known = ops()
    if args.list:
        print("\n".join(known))
        return 0
    unknown = [op for op in args.op or [] if op not in known]
    if unknown:
        print(f"nbconv gradcheck: unknown op {', '.join(unknown)}; the registry has: {', '.join(known)}",
              file=sys.stderr)
        return 2
    device = getattr(args, "device", "cpu")
    if device == "cuda":
        from nbconv.devices import cuda_unavailable
        from nbconv.gradcheck.device_cases import cuda_cases
        problem = cuda_unavailable()
        if problem:
            print(f"nbconv gradcheck: --device cuda: {problem}", file=sys.stderr)
            return 2
        cases = [c for c in cuda_cases() if not args.op or c.op in args.op]
        print("device cuda: every op of the registry on the GPU kernels, small shapes "
              "(nbconv.gradcheck.device_cases)")
    else:
        cases = [c for c in all_cases() if not args.op or c.op in args.op]

    header = (f"{'op':<18} {'case':<52} {'form':<6} {'grad':<8} {'max rel err':>11} {'threshold':>9}  result")
    print(header)
    print("-" * len(header))
    failures = rows = 0
    for case in cases:
        # every form of the op (naive and fast, nbconv.functional.dispatch); the GPU has one
        for form in (case.forms() if device == "cpu" else (None,)):
            check = _run_case(case, args.seed, device, form)
            for report in check:
                verdict = "PASS" if report.passed else "FAIL"
                failures += not report.passed
                rows += 1
                print(f"{case.op:<18} {case.label[:52]:<52} {form or '':<6} {'d' + report.name:<8} "
                      f"{report.max_rel_error:>11.2e} {report.threshold:>9.0e}  {verdict}")
                if not report.passed:
                    print(f"    {report}")
            for text in check.warnings:
                print(f"    warning: {text}")
    kinked = sorted({c.op for c in cases if c.kinks})
    print("-" * len(header))
    if kinked:
        print(f"inputs drawn away from kinks for: {', '.join(kinked)}")
    print(f"{rows - failures} of {rows} gradients PASS" + (f", {failures} FAIL" if failures else ""))
    return 1 if failures else 0


def _run_case(case, seed: int, device: str, form=None):
    """case.run on ``device`` in ``form``; on the GPU inside devices.tuned_cuda_run (under Numba's
    CUDA simulator a shorter thread switch interval makes its barriers several times faster)."""
    if device == "cpu":
        return case.run(seed=seed, method=form)
    from nbconv import devices
    with devices.tuned_cuda_run():
        return case.run(seed=seed, device=device)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
