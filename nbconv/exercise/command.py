"""``nbconv exercise`` and ``nbconv check``: write an op yourself, have it graded.

    nbconv exercise conv2d mywork            writes mywork/conv2d.py, the skeleton with TODOs
    nbconv exercise conv2d mywork --force    overwrites an existing mywork/conv2d.py
    nbconv check mywork/conv2d.py            grades it: one row per case and value, PASS or FAIL

``check`` exits 0 when every row passes and 1 when one fails; a file that cannot be graded (it
does not import, lacks the two functions, returns another number of gradients than nbconv's)
is one line and exit status 2, as are an unknown op and an existing file without --force.
docs/exercises.md is the guide.
"""

from __future__ import annotations

import sys

from nbconv.cli import fail


def register(commands) -> None:
    from nbconv.exercise import OPS

    p = commands.add_parser("exercise", help="write an op's skeleton with TODOs, to fill in and `nbconv check`",
                            description=f"Write DIR/OP.py, the skeleton of OP's forward and backward pass with "
                                        f"the arithmetic left as TODO. OP is one of: {', '.join(OPS)}.")
    p.add_argument("op", metavar="OP", help=f"the op: {', '.join(OPS)}")
    p.add_argument("folder", metavar="DIR", help="the folder to write OP.py into (created if needed)")
    p.add_argument("--force", action="store_true", help="overwrite an existing DIR/OP.py")
    p.set_defaults(func=run_exercise)

    c = commands.add_parser("check", help="grade your own forward and backward of an op (from `nbconv exercise`)",
                            description="Import OP_forward and OP_backward from FILE and compare them with "
                                        "nbconv.functional and central differences on every gradient-check "
                                        "case of OP. Exit 0 when all pass, 1 when one fails, 2 when the file "
                                        "cannot be graded.")
    c.add_argument("file", metavar="FILE", help="your Python file, e.g. mywork/conv2d.py")
    c.add_argument("--op", help="the op to grade (default: the one whose functions FILE defines)")
    c.add_argument("--seed", type=int, default=0, help="seed of the cases' random inputs (default 0)")
    c.set_defaults(func=run_check)


def run_exercise(args) -> int:
    import os

    from nbconv.exercise import OPS, write_skeleton

    if args.op not in OPS:
        return fail("exercise", f"unknown op {args.op!r}; the exercises are: {', '.join(OPS)}")
    if os.path.exists(args.folder) and not os.path.isdir(args.folder):
        return fail("exercise", f"{args.folder} is a file, not a folder; give the folder to write {args.op}.py into")
    try:
        path = write_skeleton(args.op, args.folder, force=args.force)
    except FileExistsError as exc:
        return fail("exercise", f"{exc.args[0]} exists; pass --force to overwrite it (your work in it is lost)")
    print(f"wrote {path}: fill in the TODOs, then grade it with: nbconv check {path}")
    return 0


def run_check(args) -> int:
    from nbconv.exercise import SolutionError, load_solution
    from nbconv.gradcheck.exercise import ContractError, check_op

    try:
        solutions = load_solution(args.file, args.op)
    except SolutionError as exc:
        return fail("check", str(exc))
    passed = True
    for k, solution in enumerate(solutions):
        try:
            report = check_op(solution.op, solution.forward, solution.backward, seed=args.seed)
        except ContractError as exc:
            return fail("check", f"{args.file}: {exc}")
        if k:
            print()
        print(report)
        sys.stdout.flush()
        passed = passed and report.passed
    return 0 if passed else 1
