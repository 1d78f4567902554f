"""The worked examples of ``nbconv example``: every replay agrees, prints its checks, and fails
when nbconv computes a wrong value."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.examples import EXAMPLES, Check, replay
from nbconv.examples.descent import REGIMES, STEP_SIZES, classify, closed_form, descend

NAMES = list(EXAMPLES)


@functools.lru_cache(maxsize=None)
def replayed(name):
    """Each example replayed once for the tests that only read the result."""
    return replay(name)


# --- every example ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_example_agrees_and_prints_its_checks(name):
    r = replayed(name)
    assert r.name == name
    assert r.checks, f"{name} checks nothing"
    assert r.ok, r.render()
    text = r.render()
    for check in r.checks:
        assert check.quantity in text, check.quantity
    assert text.splitlines()[0] == r.title
    assert text.endswith(f"all {len(r.checks)} checked values agree")


def _wrong(expected, tol):
    """An expected value that no correct value matches: past the tolerance by far."""
    if isinstance(expected, str):
        return expected + " (wrong)"                  # a label: another label
    e = np.asarray(expected)
    if e.dtype.kind == "b":
        return np.logical_not(e)
    if e.dtype.kind in "iu":
        return e + max(1, int(100 * tol) + 1)
    return e + max(1.0, 100.0 * tol)


@pytest.mark.parametrize("name", NAMES)
def test_every_check_fails_on_a_wrong_expected_value(name):
    for c in replayed(name).checks:
        wrong = Check(c.quantity, c.value, _wrong(c.expected, c.tol), c.lecture, c.note, c.tol)
        assert not wrong.ok, f"{name}: {c.quantity} passes a wrong expected value (tol {c.tol})"


@pytest.mark.parametrize("name", NAMES)
def test_cli_replays_the_example(name, capsys):
    assert main(["example", name]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == replayed(name).title
    assert "checked values agree" in out and "DISAGREE" not in out


def test_cli_lists_one_line_per_example(capsys):
    assert main(["example", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(EXAMPLES)
    for line, ex in zip(lines, EXAMPLES.values()):
        assert line.split()[0] == ex.name and line.endswith(ex.description)


def test_cli_refuses_an_unknown_example(capsys):
    assert main(["example", "no-such-example"]) == 2
    assert "no-such-example" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no-such-example"):
        replay("no-such-example")


@pytest.mark.parametrize("name", NAMES)
def test_names_are_short_lowercase_and_hyphenated(name):
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) and len(name) <= 20
    assert EXAMPLES[name].description and "\n" not in EXAMPLES[name].description


def test_the_course_examples_are_registered():
    assert {"neuron", "tanh-layer", "softmax", "gradient-descent", "step-size", "backprop", "batch-norm",
            "norm-groups", "dropout", "fan-out"} <= set(EXAMPLES)


def test_gradcheck_example_prints_the_same_replay(capsys):
    assert main(["gradcheck", "--example", "backprop"]) == 0
    via_gradcheck = capsys.readouterr().out
    assert main(["example", "backprop"]) == 0
    assert capsys.readouterr().out == via_gradcheck


# --- each example fails when nbconv computes a wrong value ---------------------------------------

def _sabotage_linear_without_bias(monkeypatch):
    right = F.linear_forward
    monkeypatch.setattr(F, "linear_forward", lambda x, w, b=None, **kw: right(x, w, None, **kw))


def _sabotage_tanh_as_sigmoid(monkeypatch):
    monkeypatch.setattr(F, "tanh_forward", F.sigmoid_forward)


def _sabotage_softmax_unnormalized(monkeypatch):
    monkeypatch.setattr(F, "softmax_forward", lambda x, **kw: (np.exp(x), None))


def _sabotage_half_mse_gradient(monkeypatch):
    right = F.mse_backward
    monkeypatch.setattr(F, "mse_backward", lambda dout, cache: tuple(g / 2 for g in right(dout, cache)))


def _sabotage_tanh_backward_identity(monkeypatch):
    monkeypatch.setattr(F, "tanh_backward", lambda dout, cache: (np.asarray(dout),))


def _sabotage_batch_norm_momentum(monkeypatch):
    right = F.batch_norm_forward

    def wrong(*args, **kw):
        kw["momentum"] = 0.5
        return right(*args, **kw)
    monkeypatch.setattr(F, "batch_norm_forward", wrong)


def _sabotage_group_norm_as_instance_norm(monkeypatch):
    right = F.group_norm_forward
    monkeypatch.setattr(F, "group_norm_forward",
                        lambda x, g, b, *, num_groups, **kw: right(x, g, b, num_groups=x.shape[1], **kw))


def _sabotage_dropout_p(monkeypatch):
    right = F.dropout_forward
    monkeypatch.setattr(F, "dropout_forward", lambda x, *, p=0.5, **kw: right(x, p=0.5, **kw))


def _sabotage_residual_without_shortcut(monkeypatch):
    monkeypatch.setattr(F, "residual_backward", lambda dout, cache: F.conv2d_backward(dout, cache.conv))


SABOTAGES = {   # example -> (how nbconv is made wrong, the checks that must then fail)
    "neuron": (_sabotage_linear_without_bias, {"s = w . x + b", "y = ReLU(s)"}),
    "tanh-layer": (_sabotage_tanh_as_sigmoid, {"y1 = tanh(s1)", "y2 = tanh(s2)", "y3 = tanh(s3)"}),
    "softmax": (_sabotage_softmax_unnormalized, {"softmax(z)_1 = e^1 / sum", "sum of softmax(z)"}),
    "gradient-descent": (_sabotage_half_mse_gradient, {"x_1", "f(x_5)"}),
    "step-size": (_sabotage_half_mse_gradient, {"  regime, alpha = 0.5", "  regime, alpha = 0.8"}),
    "backprop": (_sabotage_tanh_backward_identity, {"dL/dv4", "dL/dw1", "w1 after step"}),
    "batch-norm": (_sabotage_batch_norm_momentum, {"running mean", "running var"}),
    "norm-groups": (_sabotage_group_norm_as_instance_norm, {"  group: out - NumPy's, largest"}),
    "dropout": (_sabotage_dropout_p, {"scale = 1 / (1 - p)", "mask (1 = kept)", "fraction kept"}),
    "fan-out": (_sabotage_residual_without_shortcut, {"through the shortcut", "dL/dx (residual_backward)"}),
}


@pytest.mark.parametrize("name", list(SABOTAGES))
def test_example_fails_when_nbconv_is_wrong(name, monkeypatch):
    sabotage, must_fail = SABOTAGES[name]
    sabotage(monkeypatch)
    r = replay(name)
    failed = {c.quantity for c in r.failures()}
    assert not r.ok
    assert must_fail <= failed, f"{name}: expected {must_fail} among the failures, got {failed}"
    assert "DISAGREE" in r.render()


def test_cli_exits_1_when_a_value_disagrees(monkeypatch, capsys):
    _sabotage_tanh_as_sigmoid(monkeypatch)
    assert main(["example", "tanh-layer"]) == 1
    assert "NO (expected" in capsys.readouterr().out


# --- the step-size classifier on hand-made runs ------------------------------------------------

@pytest.mark.parametrize("iterates, regime", [
    ([3.0, 2.4, 1.92, 1.536], "slow"),
    ([-3.0, -1.0, -0.5], "slow"),                      # from the other side
    ([5.0, 4.0, 3.5], None),                           # slow towards 3 (checked with minimum=3 below)
    ([3.0, 0.0, 0.0, 0.0], "one step"),
    ([3.0, 1e-15, -1e-15], "one step"),                # rounding around the minimum
    ([3.0, -1.8, 1.08, -0.648], "oscillating"),
    ([3.0, -3.06, 3.1212], "diverging"),
    ([1.0, 2.0, 4.0], "diverging"),                    # away on one side
])
def test_classify_names_the_regime(iterates, regime):
    if regime is None:
        assert classify(iterates, minimum=3.0) == "slow"
    else:
        assert classify(iterates) == regime


@pytest.mark.parametrize("iterates, why", [
    ([3.0], "at least x_0 and x_1"),
    ([0.0, 1.0, 2.0], "start at the minimum"),
    ([3.0, -3.0, 3.0], "fit none"),                    # alpha = 1: the distance stays
    ([3.0, 1.0, 2.0], "fit none"),                     # closer, then farther
    ([3.0, -1.0, -0.5], "fit none"),                   # closer, but the sides do not alternate
    ([3.0, 2.0, 0.0, 0.0], "fit none"),                # reaches the minimum at step 2, not 1
])
def test_classify_refuses_runs_of_no_regime(iterates, why):
    with pytest.raises(ValueError, match=why):
        classify(iterates)


def test_the_four_step_sizes_give_the_lecture_regimes():
    assert set(REGIMES) == {regime for regime, _ in STEP_SIZES.values()}
    for alpha, (regime, _) in STEP_SIZES.items():
        iterates = descend(3.0, alpha, 6)
        assert iterates == pytest.approx(closed_form(3.0, alpha, 6), abs=1e-12)
        assert classify(iterates) == regime
