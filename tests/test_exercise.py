"""The exercises: `nbconv exercise OP DIR` writes a skeleton, `nbconv check FILE` grades it.

The skeleton of every op fails the check, the reference solutions of tests/exercise_solutions/
(the skeletons with the TODOs filled in, plain loops written from the formulas) pass it, and a
solution with one wrong element fails on that element, named with both values.  Files that
cannot be graded are one line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nbconv.functional as F
import nbconv.gradcheck.exercise as exercise_module
from nbconv.cli import main
from nbconv.exercise import OPS, keep_mask, load_solution, template
from nbconv.gradcheck import Case, all_cases, assert_op, check_op
from nbconv.gradcheck.exercise import EXERCISES, FAIL, PASS, SKIP, ContractError

SOLUTIONS = Path(__file__).parent / "exercise_solutions"
TEMPLATES = Path(__file__).parent.parent / "nbconv" / "exercise" / "templates"


def solution(op: str):
    (found,) = load_solution(SOLUTIONS / f"{op}.py")
    assert found.op == op
    return found


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- what there is ------------------------------------------------------------------------------

def test_every_exercise_has_a_template_and_a_solution():
    assert set(OPS) >= {"linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "sigmoid", "softmax",
                        "cross_entropy", "batch_norm", "dropout"}
    assert list(OPS) == list(EXERCISES)
    assert sorted(p.stem for p in TEMPLATES.glob("*.py") if p.stem != "__init__") == sorted(OPS)
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(OPS)
    registry = {case.op for case in all_cases()}
    assert set(OPS) <= registry, "an exercise without gradient-check cases grades nothing"


@pytest.mark.parametrize("op", OPS)
def test_skeleton_and_solution_have_the_exercise_signature(op):
    """The skeleton's forward is nbconv's signature without method and convention switches, and
    the solution's is the skeleton's."""
    exercise = EXERCISES[op]
    for path in (TEMPLATES / f"{op}.py", SOLUTIONS / f"{op}.py"):
        (found,) = load_solution(path)
        assert f"{op}_forward{inspect.signature(found.forward)}" == exercise.signature(), path
        assert list(inspect.signature(found.backward).parameters) == ["dout", "cache"]
    assert "method" not in exercise.signature()
    assert "TODO" in template(op)


# --- skeletons fail, solutions pass -------------------------------------------------------------

@pytest.mark.parametrize("op", OPS)
def test_the_skeleton_fails_the_check(op, tmp_path, capsys):
    assert main(["exercise", op, str(tmp_path)]) == 0
    path = tmp_path / f"{op}.py"
    assert path.read_text() == template(op)
    assert f"nbconv check {path}" in capsys.readouterr().out
    assert main(["check", str(path)]) == 1                 # runs (returns zeros), grades FAIL, no crash
    out = capsys.readouterr().out
    assert f"check of {op}_forward / {op}_backward" in out
    (found,) = load_solution(path)
    report = check_op(op, found.forward, found.backward)
    outputs = [row for row in report.rows if row.value == "out"]
    assert outputs and all(row.status == FAIL for row in outputs)
    assert any(row.status == FAIL and row.value.startswith("d") for row in report.rows)
    assert "first wrong element out" in out


@pytest.mark.parametrize("op", OPS)
def test_a_correct_solution_passes(op):
    found = solution(op)
    report = assert_op(op, found.forward, found.backward)
    checked = [row for row in report.rows if row.status != SKIP]
    assert report.passed and all(row.status == PASS for row in checked)
    # every checked case has its output row and one row per gradient nbconv returns, both
    # comparisons measured
    assert {row.value for row in checked} >= {"out"} | set(g for g in EXERCISES[op].gradients if g != "db")
    for row in checked:
        assert row.error is not None and row.error <= row.threshold
        if row.value.startswith("d"):
            assert row.fd_error is not None and row.fd_error <= row.threshold


def test_the_rows_are_one_per_case_and_value():
    report = check_op("linear", *dataclasses.astuple(solution("linear"))[1:])
    assert [(row.case, row.value) for row in report.rows] == [
        ("x (4, 5), w (3, 5), b (3,)", "out"), ("x (4, 5), w (3, 5), b (3,)", "dx"),
        ("x (4, 5), w (3, 5), b (3,)", "dw"), ("x (4, 5), w (3, 5), b (3,)", "db"),
        ("no bias", "out"), ("no bias", "dx"), ("no bias", "dw")]


def test_cases_that_differ_by_method_are_checked_once():
    report = check_op("conv2d", *dataclasses.astuple(solution("conv2d"))[1:])
    pairs = [(row.case, row.value) for row in report.rows]
    assert len(pairs) == len(set(pairs))
    assert not any(row.case.startswith(("direct", "im2col", "blocked")) for row in report.rows)
    registry = [c for c in all_cases() if c.op == "conv2d"]
    outputs = [row for row in report.rows if row.value in ("out", "-")]
    assert len(outputs) < len(registry)


def test_batch_norm_grades_the_running_statistics_update():
    """A forward that rebinds running_mean instead of updating the caller's array fails the
    running_mean row (and only in training), with the value it should have had."""
    right = solution("batch_norm")

    def forward(x, gamma, beta, running_mean, running_var, *, training=True, momentum=0.1, eps=1e-5):
        kept = running_mean.copy()
        out, cache = right.forward(x, gamma, beta, running_mean, running_var, training=training,
                                   momentum=momentum, eps=eps)
        running_mean[:] = kept                   # the update lost
        return out, cache

    report = check_op("batch_norm", forward, right.backward)
    failed = {(row.case, row.value) for row in report.failed}
    assert failed and all(value == "running_mean" for _, value in failed)
    assert all(case.startswith("training") for case, _ in failed)
    # the expected value: momentum * mean of the channel + (1 - momentum) * the old value
    case = next(c for c in all_cases() if c.op == "batch_norm" and c.label == "training, x (6, 4)")
    x, _, _, old_mean, _ = case.make_inputs(np.random.default_rng(0))
    row = next(r for r in report.failed if r.case == "training, x (6, 4)")
    expected = 0.9 * old_mean[0] + 0.1 * x[:, 0].mean()
    assert f"running_mean[0]: yours {old_mean[0]:.8g}, expected {expected:.8g}" in row.details[0]


# --- a wrong element is named --------------------------------------------------------------------

def test_one_wrong_gradient_element_is_named_with_both_values():
    right = solution("linear")

    def backward(dout, cache):
        dx, dw, db = right.backward(dout, cache)
        dw = dw.copy()
        dw[1, 2] += 0.25
        return dx, dw, db

    report = check_op("linear", right.forward, backward)
    assert not report.passed
    assert [(row.case, row.value) for row in report.failed] == [("x (4, 5), w (3, 5), b (3,)", "dw"),
                                                               ("no bias", "dw")]
    # the true dw of the first case, from the formula dw = dout^T x, on the check's inputs and dout
    x, w, b = next(c for c in all_cases() if c.op == "linear").make_inputs(np.random.default_rng(0))
    dout = np.random.default_rng([0, 1]).standard_normal((4, 3))
    true = (dout.T @ x)[1, 2]
    row = report.failed[0]
    assert row.details[0] == (f"first wrong element dw[1, 2]: yours {true + 0.25:.8g}, expected {true:.8g}; "
                              f"1 of 15 elements wrong")
    assert any("one element is wrong, w[1, 2]" in line for line in row.details)   # finite differences agree
    with pytest.raises(AssertionError, match=re.escape("first wrong element dw[1, 2]")):
        assert_op("linear", right.forward, backward)


def test_a_wrong_element_in_a_students_file_fails_the_command(tmp_path, capsys):
    path = tmp_path / "conv2d.py"
    path.write_text((SOLUTIONS / "conv2d.py").read_text() + (
        "\n\n_right_backward = conv2d_backward\n\n\n"
        "def conv2d_backward(dout, cache):\n"
        "    dx, dw, db = _right_backward(dout, cache)\n"
        "    dx[0, 1, 2, 3] -= 0.5\n"
        "    return dx, dw, db\n"))
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    failing = [line for line in lines if line.rstrip().endswith("FAIL")]
    assert failing and all(re.search(r"\sdx\s", line) for line in failing)
    named = re.findall(r"first wrong element dx\[0, 1, 2, 3\]: yours (\S+), expected (\S+);", out)
    assert named and all(abs(float(yours) - float(expected) + 0.5) < 1e-6 for yours, expected in named)
    assert re.search(r"\d+ of \d+ values PASS, \d+ FAIL", lines[-1])


def test_a_forward_that_disagrees_with_its_backward_fails_the_finite_difference_column():
    """A right backward under a wrong forward: the gradient agrees with nbconv's but not with
    central differences of the student's forward, and the row says so."""
    right = solution("relu")

    def forward(x):
        out, cache = right.forward(x)
        return 2.0 * out, cache

    report = check_op("relu", forward, right.backward)
    dx = [row for row in report.rows if row.value == "dx"]
    assert dx and all(row.status == FAIL and row.error <= row.threshold and row.fd_error > 0.1 for row in dx)
    assert "agrees with nbconv's dx but not with central differences of your forward" in dx[0].details[0]


def test_a_gradient_off_by_a_factor_is_diagnosed():
    right = solution("sigmoid")
    report = check_op("sigmoid", right.forward, lambda dout, cache: (2.0 * right.backward(dout, cache)[0],))
    dx = next(row for row in report.rows if row.value == "dx")
    assert dx.status == FAIL and dx.error > 0.3
    assert any("analytic = 2 x numeric" in line for line in dx.details)


def test_an_exception_in_the_students_code_is_a_fail_row_naming_the_line(tmp_path, capsys):
    path = tmp_path / "relu.py"
    path.write_text("import numpy as np\n\n\n"
                    "def relu_forward(x):\n"
                    "    return np.maximum(x, 0), x\n\n\n"
                    "def relu_backward(dout, cache):\n"
                    "    return (dout * (cache > 0) * cache[100000],)\n")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "your backward raised IndexError" in out
    assert "line 9 of relu.py: return (dout * (cache > 0) * cache[100000],)" in out


def test_a_backward_that_writes_into_dout_passes_with_a_warning():
    def backward(dout, x):
        dout *= x > 0
        return (dout,)

    report = check_op("relu", lambda x: (np.maximum(x, 0.0), x), backward)
    assert report.passed
    assert report.warnings and all("backward modified dout in place" in text for text in report.warnings)
    assert "warning: 4-D x (2, 3, 4, 4): backward modified dout in place" in str(report)


# --- plain NumPy or Numba -----------------------------------------------------------------------

def test_a_numba_solution_is_graded_too(tmp_path, capsys):
    path = tmp_path / "relu.py"
    path.write_text("import numpy as np\nfrom numba import njit\n\n\n"
                    "@njit(cache=False)\n"
                    "def relu_forward(x):\n"
                    "    y = np.zeros_like(x)\n"
                    "    flat, out = x.ravel(), y.ravel()\n"
                    "    for i in range(flat.size):\n"
                    "        out[i] = flat[i] if flat[i] > 0 else 0.0\n"
                    "    return y, x\n\n\n"
                    "@njit(cache=False)\n"
                    "def relu_backward(dout, x):\n"
                    "    dx = np.zeros_like(dout)\n"
                    "    flat, d, g = x.ravel(), dout.ravel(), dx.ravel()\n"
                    "    for i in range(flat.size):\n"
                    "        g[i] = d[i] if flat[i] > 0 else 0.0\n"
                    "    return (dx,)\n")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "4 of 4 values PASS"


def test_keep_mask_is_nbconvs_splitmix64_mask():
    """SplitMix64 from seed 0 starts 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F
    (its reference vector): with p = 0.5 a unit is kept when the top bit is set."""
    assert keep_mask((3,), 0.5, 0).tolist() == [True, False, False]
    assert keep_mask((2, 2), 0.0, 5).all() and not keep_mask((2, 2), 1.0, 5).any()
    out, _ = F.dropout_forward(np.arange(1.0, 13.0).reshape(3, 4), p=0.3, seed=11)
    assert np.array_equal(keep_mask((3, 4), 0.3, 11), out != 0)


# --- cases that are not part of the exercise ------------------------------------------------------

def _with_cases(monkeypatch, extra):
    cases = all_cases() + extra
    monkeypatch.setattr(exercise_module, "all_cases", lambda: cases)


def test_cases_with_a_convention_switch_or_float_targets_are_skipped_visibly(monkeypatch):
    _with_cases(monkeypatch, [
        Case("sigmoid", "a made-up switch", functools.partial(F.sigmoid_forward, method="naive", switch=True),
             F.sigmoid_backward, lambda rng: (rng.standard_normal((2, 3)),), names=("x",)),
        Case("sigmoid", "a forward of its own", lambda x: F.sigmoid_forward(2.0 * x), F.sigmoid_backward,
             lambda rng: (rng.standard_normal((2, 3)),), names=("x",)),
        Case("cross_entropy", "probability targets", F.cross_entropy_forward, F.cross_entropy_backward,
             lambda rng: (rng.standard_normal((3, 4)), np.full((3, 4), 0.25)), names=("logits",)),
    ])
    report = check_op("sigmoid", *dataclasses.astuple(solution("sigmoid"))[1:])
    skipped = [row for row in report.rows if row.status == SKIP]
    assert [(row.case, row.details) for row in skipped][-2:] == [
        ("a made-up switch", ["not part of the exercise: switch=True"]),
        ("a forward of its own", ["not part of the exercise: the case calls <lambda> of its own, "
                                  "not sigmoid_forward"])]
    assert report.passed and f"{len(skipped)} cases not part of the exercise (SKIP)" in str(report).splitlines()[-1]
    report = check_op("cross_entropy", *dataclasses.astuple(solution("cross_entropy"))[1:])
    row = next(row for row in report.rows if row.case == "probability targets")
    assert row.status == SKIP and "class indices" in row.details[0]


def test_a_keyword_at_nbconvs_default_is_part_of_the_exercise(monkeypatch):
    """With axis left out of the exercise, a case at axis=-1 (nbconv's default) is checked
    without it, and a case at another axis is skipped."""
    monkeypatch.setitem(EXERCISES, "softmax", dataclasses.replace(EXERCISES["softmax"], keywords=()))
    _with_cases(monkeypatch, [
        Case("softmax", "axis -1 given", functools.partial(F.softmax_forward, axis=-1), F.softmax_backward,
             lambda rng: (rng.standard_normal((2, 5)),), names=("x",))])
    right = solution("softmax")
    report = check_op("softmax", lambda x: right.forward(x), right.backward)
    rows = {row.case: row for row in report.rows}
    assert rows["axis -1 given"].status == PASS
    assert rows["x (2, 4, 3), axis 1"].status == SKIP
    assert rows["x (2, 4, 3), axis 1"].details == ["not part of the exercise: axis=1; the exercise keeps "
                                                   "nbconv's default -1"]


# --- files that cannot be graded: one line, exit status 2 -----------------------------------------

BROKEN = {
    "syntax": ("relu.py", "def relu_forward(x)\n    return x, None\n",
               r"{path} does not import: SyntaxError: .* \(line 1\)"),
    "import error": ("relu.py", "import numpy as np\nundefined_name + 1\n",
                     r"{path} does not import: NameError: name 'undefined_name' is not defined \(line 2\)"),
    "no backward": ("relu.py", "def relu_forward(x):\n    return x, None\n",
                    r"{path} lacks relu_backward \(it defines relu_forward\)"),
    "no functions": ("mine.py", "x = 1\n",
                     r"{path} defines no OP_forward / OP_backward pair of an exercise \(OP one of linear, .*\)"),
    "named but empty": ("softmax.py", "x = 1\n", r"{path} lacks softmax_forward and softmax_backward"),
    "gradient count": ("conv2d.py", "from conv2d_right import conv2d_forward\n\n\n"
                       "def conv2d_backward(dout, cache):\n"
                       "    from conv2d_right import conv2d_backward as right\n"
                       "    return right(dout, cache)[:2]\n",
                       r"{path}: conv2d_backward returned 2 gradients, nbconv's returns 3: \(dx, dw, db\), "
                       r"None for a missing bias"),
    "bare array": ("relu.py", "def relu_forward(x):\n    return x * (x > 0), x\n\n\n"
                   "def relu_backward(dout, x):\n    return dout * (x > 0)\n",
                   r"{path}: relu_backward must return a tuple of 1 gradients \(dx\), got an array of shape "
                   r"\(2, 3, 4, 4\) \(for one input return a 1-tuple: \(dx,\)\)"),
    "no pair": ("relu.py", "def relu_forward(x):\n    return x\n\n\n"
                "def relu_backward(dout, x):\n    return (dout,)\n",
                r"{path}: relu_forward must return a pair \(out, cache\), got an array of shape \(2, 3, 4, 4\)"),
    "signature": ("max_pool2d.py", "def max_pool2d_forward(x, *, kernel_size, stride=None):\n    return x, None\n\n\n"
                  "def max_pool2d_backward(dout, cache):\n    return (dout,)\n",
                  r"{path}: max_pool2d_forward has no parameter 'padding'; its signature must be "
                  r"max_pool2d_forward\(x, \*, kernel_size, stride=None, padding=0\)"),
    "default": ("batch_norm.py", "def batch_norm_forward(x, gamma, beta, running_mean, running_var, *, "
                "training=True, momentum=0.9, eps=1e-5):\n    return x, None\n\n\n"
                "def batch_norm_backward(dout, cache):\n    return (dout, None, None)\n",
                r"{path}: batch_norm_forward gives momentum the default 0.9, nbconv's is 0.1; .*"),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_a_file_that_cannot_be_graded_is_one_line_and_exit_2(kind, tmp_path, capsys):
    name, text, pattern = BROKEN[kind]
    shutil.copy(SOLUTIONS / "conv2d.py", tmp_path / "conv2d_right.py")
    path = tmp_path / name
    path.write_text(text)
    assert main(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = _one_line(err)
    assert re.fullmatch("nbconv check: " + pattern.format(path=re.escape(str(path))), line), line


def test_check_of_a_missing_file_or_an_unknown_op(tmp_path, capsys):
    missing = tmp_path / "nothing.py"
    assert main(["check", str(missing)]) == 2
    assert _one_line(capsys.readouterr().err) == f"nbconv check: {missing}: no such file"
    assert main(["check", str(SOLUTIONS / "relu.py"), "--op", "tanh"]) == 2
    assert _one_line(capsys.readouterr().err).startswith("nbconv check: unknown op 'tanh'; the exercises are: linear")


def test_exercise_refuses_an_unknown_op_and_an_existing_file(tmp_path, capsys):
    assert main(["exercise", "conv3d", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and _one_line(err) == f"nbconv exercise: unknown op 'conv3d'; the exercises are: {', '.join(OPS)}"
    path = tmp_path / "relu.py"
    path.write_text("my work\n")
    assert main(["exercise", "relu", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert _one_line(err) == (f"nbconv exercise: {path} exists; pass --force to overwrite it "
                              f"(your work in it is lost)")
    assert path.read_text() == "my work\n"
    assert main(["exercise", "relu", str(tmp_path), "--force"]) == 0
    assert path.read_text() == template("relu")
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["exercise", "relu", str(target)]) == 2
    assert "is a file, not a folder" in _one_line(capsys.readouterr().err)


def test_check_op_refuses_an_op_without_exercise():
    with pytest.raises(ValueError, match="op 'tanh' has no exercise; the exercises are: linear"):
        check_op("tanh", F.tanh_forward, F.tanh_backward)
    with pytest.raises(ContractError, match="relu_backward returned 2 gradients"):
        check_op("relu", lambda x: (x, x), lambda dout, cache: (dout, dout))


# --- the command line in a real process -------------------------------------------------------------

def test_the_commands_end_to_end(tmp_path):
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=120)
    done = run([sys.executable, "-m", "nbconv", "exercise", "sigmoid", str(tmp_path / "work")])
    assert done.returncode == 0 and done.stderr == "", done.stderr
    path = tmp_path / "work" / "sigmoid.py"
    assert path.read_text() == template("sigmoid")
    done = run([sys.executable, "-m", "nbconv", "check", str(path)])
    assert done.returncode == 1 and done.stderr == "", done.stderr
    assert done.stdout.startswith("check of sigmoid_forward / sigmoid_backward")
    assert done.stdout.splitlines()[-1] == "0 of 4 values PASS, 4 FAIL"
