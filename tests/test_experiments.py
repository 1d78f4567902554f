"""The training experiments (nbconv.experiments, ``nbconv experiment``) and the gradient norms of
``train(..., grad_norms=True)`` they read.

The gradient norms are checked against one and two SGD steps of a small MLP written out in NumPy
(the forward, the softmax cross-entropy, the backward by the chain rule); each experiment runs in
its smaller ``quick`` form and its conclusion must hold; the helpers that decide a conclusion
(spread of units, the loss-curve regimes) are checked on hand-made inputs."""

import sys
import types

import numpy as np
import pytest

from nbconv.cli import main
from nbconv.layers import Flatten, Linear, ReLU, Residual, Sequential, Sigmoid
from nbconv.optim import SGD
from nbconv.training import History, thread_limit, train


@pytest.fixture(autouse=True)
def one_thread():
    with thread_limit(1):
        yield


# ---------------------------------------------------------------- gradient norms of train()

N, D, H, K = 6, 16, 5, 3          # images, pixels (1 x 4 x 4), hidden units, classes


def toy_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, 1, 4, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    return types.SimpleNamespace(x_train=x, y_train=y, x_val=x[:2], y_val=y[:2])


def toy_mlp(seed=0):
    """Flatten -> Linear(16, 5) -> ReLU -> Linear(5, 3), float64: parameters 1.w, 1.b, 3.w, 3.b."""
    rng = np.random.default_rng(seed)
    return Sequential(Flatten(), Linear(D, H, seed=rng, dtype=np.float64), ReLU(),
                      Linear(H, K, seed=rng, dtype=np.float64))


def gradients_by_hand(w1, b1, w2, b2, x, y):
    """The gradients of the mean cross-entropy of softmax(relu(x W1^T + b1) W2^T + b2), chain rule
    written out: dlogits = (softmax - onehot) / n, then back through each layer."""
    n = len(y)
    x = x.reshape(n, -1)
    z1 = x @ w1.T + b1
    h = np.maximum(z1, 0.0)
    logits = h @ w2.T + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dlogits = (p - np.eye(K)[y]) / n
    dh = dlogits @ w2
    dz1 = dh * (z1 > 0)
    return {"1.w": dz1.T @ x, "1.b": dz1.sum(axis=0), "3.w": dlogits.T @ h, "3.b": dlogits.sum(axis=0)}


def initial_weights(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def test_grad_norms_of_one_step_are_the_norms_of_the_hand_gradients():
    data, model = toy_data(), toy_mlp()
    w = initial_weights(model)
    history = train(model, data, SGD(model.parameters(), lr=0.1), epochs=1, batch_size=N, seed=0, progress=False,
                    grad_norms=True)
    # one batch of all N images: the order does not change a mean over the batch
    grads = gradients_by_hand(w["1.w"], w["1.b"], w["3.w"], w["3.b"], data.x_train, data.y_train)
    assert list(history.grad_norms[0]) == ["1.w", "1.b", "3.w", "3.b"]       # model.named_parameters()
    for name, g in grads.items():
        assert history.grad_norms[0][name] == pytest.approx(np.sqrt(np.sum(g ** 2)), rel=1e-12), name


def test_grad_norms_are_the_mean_over_the_epochs_steps():
    data, model = toy_data(), toy_mlp()
    w = initial_weights(model)
    lr, half = 0.5, N // 2
    history = train(model, data, SGD(model.parameters(), lr=lr), epochs=1, batch_size=half, seed=7,
                    progress=False, grad_norms=True)
    # the documented order of epoch 0, two steps of SGD by hand: theta <- theta - lr * grad
    order = np.random.default_rng([7, 0]).permutation(N)
    norms = {name: [] for name in w}
    for batch in (order[:half], order[half:]):
        g = gradients_by_hand(w["1.w"], w["1.b"], w["3.w"], w["3.b"], data.x_train[batch], data.y_train[batch])
        for name in w:
            norms[name].append(np.linalg.norm(g[name]))
            w[name] = w[name] - lr * g[name]
    for name in w:
        assert history.grad_norms[0][name] == pytest.approx(np.mean(norms[name]), rel=1e-12), name
        np.testing.assert_allclose(dict(model.named_parameters())[name].data, w[name], rtol=1e-12)
    assert norms["3.w"][0] != pytest.approx(norms["3.w"][1])        # the mean of two different steps


def test_grad_norms_are_off_by_default_and_one_dict_per_epoch_when_on():
    data = toy_data()
    model = toy_mlp()
    assert train(model, data, SGD(model.parameters(), lr=0.1), epochs=2, batch_size=3, seed=0,
                 progress=False).grad_norms == []
    model = toy_mlp()
    history = train(model, data, SGD(model.parameters(), lr=0.1), epochs=3, batch_size=3, seed=0, progress=False,
                    grad_norms=True)
    assert len(history.grad_norms) == len(history) == 3
    assert history.grad_norm_curve("3.w") == [epoch["3.w"] for epoch in history.grad_norms]
    with pytest.raises(ValueError, match=r"no parameter '9.w'.*1.w, 1.b, 3.w, 3.b"):
        history.grad_norm_curve("9.w")
    with pytest.raises(ValueError, match=r"train with grad_norms=True"):
        History().grad_norm_curve("1.w")


def test_grad_norm_names_of_a_residual_block():
    rng = np.random.default_rng(0)
    model = Sequential(Flatten(), Linear(D, H, seed=rng, dtype=np.float64), Sigmoid(),
                       Residual(Sequential(Linear(H, H, seed=rng, dtype=np.float64), Sigmoid())),
                       Linear(H, K, seed=rng, dtype=np.float64))
    history = train(model, toy_data(), SGD(model.parameters(), lr=0.1), epochs=1, batch_size=N, seed=0,
                    progress=False, grad_norms=True)
    assert list(history.grad_norms[0]) == ["1.w", "1.b", "3.block.0.w", "3.block.0.b", "4.w", "4.b"]


def test_grad_norms_survive_to_dict_and_a_resumed_checkpoint(tmp_path):
    data = toy_data()

    def run(epochs, path, resume=False, grad_norms=True):
        model = toy_mlp()
        return train(model, data, SGD(model.parameters(), lr=0.2, momentum=0.9), epochs=epochs, batch_size=3,
                     seed=1, progress=False, checkpoint=path, resume=resume, grad_norms=grad_norms)

    full = run(4, tmp_path / "full.npz")
    assert History.from_dict(full.to_dict()) == full and len(full.grad_norms) == 4
    run(2, tmp_path / "cut.npz")
    resumed = run(4, tmp_path / "cut.npz", resume=True)
    assert resumed == full                                   # the grad norms of all 4 epochs included
    # a history saved before the field existed reads back without gradient norms
    old = full.to_dict()
    del old["grad_norms"]
    assert History.from_dict(old).grad_norms == []
    # resuming must record them if and only if the checkpoint's run did
    with pytest.raises(ValueError, match=r"grad_norms=False, but the run saved in .*cut.npz recorded"):
        run(5, tmp_path / "cut.npz", resume=True, grad_norms=False)
    run(2, tmp_path / "bare.npz", grad_norms=False)
    with pytest.raises(ValueError, match=r"grad_norms=True, but .* did not record"):
        run(3, tmp_path / "bare.npz", resume=True, grad_norms=True)


def test_grad_norms_of_a_model_on_the_device_are_the_hosts():
    """On the GPU (Numba's CUDA simulator without one) each gradient is copied to the host for its norm."""
    pytest.importorskip("numba_cuda")
    norms = []
    for device in ("cpu", "cuda"):
        model = toy_mlp().to(device)
        history = train(model, toy_data(), SGD(model.parameters(), lr=0.1), epochs=1, batch_size=3, seed=0,
                        progress=False, grad_norms=True)
        assert model.device == device
        norms.append(history.grad_norms)
    host, gpu = norms
    assert [list(epoch) for epoch in gpu] == [list(epoch) for epoch in host]
    for h, g in zip(host, gpu):
        np.testing.assert_allclose(list(g.values()), list(h.values()), rtol=1e-10)


# ---------------------------------------------------------------- the helpers that decide the checks

def test_spread_and_distinct_units_on_hand_made_layers():
    from nbconv.experiments.symmetry import distinct_units, spread
    same = np.tile([[0.5, -1.0, 2.0]], (4, 1))
    assert spread(same) == 0.0 and distinct_units(same) == 1
    assert spread(np.zeros((4, 3))) == 0.0 and distinct_units(np.zeros((4, 3))) == 1
    rounding = same.copy()
    rounding[2, 1] += 1e-7                                   # float32 rounding apart: still one unit
    assert distinct_units(rounding) == 1
    two = same.copy()
    two[1] = [0.5, 1.0, 2.0]                                 # one unit differs by 2 in one weight
    # mean of column 1 is -0.5: the largest distance 1.5, relative to the largest |weight| 2
    assert spread(two) == pytest.approx(1.5 / 2.0) and distinct_units(two) == 2
    assert distinct_units(np.eye(5)) == 5


@pytest.mark.parametrize("losses, regime", [
    ([2.0, 1.8, 1.6, 1.5], "slow"),                  # falls every epoch, still above start / 10
    ([1.0, 0.3, 0.1, 0.05], "converges"),            # last below start / 10 = 0.23
    ([1.0, 0.3, 0.35, 0.1], "converges"),            # a rise on the way does not matter once low
    ([1.5, 1.2, 1.6, 1.3], "oscillates"),            # rises and falls, stays high
    ([2.4, 2.4, 2.4], "oscillates"),                 # a plateau is not "falls at every epoch"
    ([1e9, 2.3, 2.3], "diverges"),                   # blew up (> 10 x start), then died
    ([1.0, float("nan"), float("nan")], "diverges"),
    ([1.0, float("inf")], "diverges"),
])
def test_learning_rate_regimes_on_hand_made_curves(losses, regime):
    from nbconv.experiments.learning_rate import classify
    assert classify(losses, start=2.3) == regime


def test_learning_rate_classify_refuses_what_it_cannot_read():
    from nbconv.experiments.learning_rate import classify
    with pytest.raises(ValueError, match="losses is empty"):
        classify([], start=2.3)
    with pytest.raises(ValueError, match="start .* must be finite and > 0, got nan"):
        classify([1.0], start=float("nan"))


def test_largest_training_rate():
    from nbconv.experiments.batchnorm import largest_training_rate
    assert largest_training_rate([0.01, 0.1, 1.0], [0.9, 0.95, 0.1]) == 0.1
    assert np.isnan(largest_training_rate([0.01, 0.1], [0.2, 0.1]))


def test_noisy_labels_replace_the_chosen_share_by_other_classes():
    from nbconv.experiments.dropout import noisy_labels
    y = np.arange(2000) % 10
    noisy = noisy_labels(y, 0.3)
    changed = noisy != y
    assert 0.27 < changed.mean() < 0.33                     # about 30 %, never a label kept by "replacing"
    assert set(np.unique(noisy)) == set(range(10))
    np.testing.assert_array_equal(noisy, noisy_labels(y, 0.3))          # seeded
    np.testing.assert_array_equal(noisy_labels(y, 0.0), y)


# ---------------------------------------------------------------- the experiments, quick

@pytest.fixture(scope="module")
def outcomes():
    """Each experiment's quick run, run once for the module (the draw tests reuse it)."""
    pytest.importorskip("sklearn")
    from nbconv.experiments import perform
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = perform(name, quick=True)
        return cache[name]
    return get


NAMES = ["vanishing-gradients", "symmetry", "batch-norm-lr", "dropout-gap", "learning-rate"]


def test_the_registry_lists_every_experiment():
    from nbconv.experiments import EXPERIMENTS
    assert list(EXPERIMENTS) == NAMES
    for name, experiment in EXPERIMENTS.items():
        assert experiment.name == name and experiment.description and callable(experiment.draw)


@pytest.mark.parametrize("name", NAMES)
def test_each_experiment_shows_its_effect(outcomes, name):
    outcome = outcomes(name)
    assert outcome.findings and outcome.ok, outcome.render()
    text = outcome.render()
    assert "The lecture's point" in text and text.endswith(f"all {len(outcome.findings)} findings hold")
    assert 0 < outcome.seconds < 60


def test_vanishing_gradients_numbers(outcomes):
    nets = outcomes("vanishing-gradients").data
    plain, res = nets["plain"], nets["residual"]
    assert plain["names"][0] == "1.w" and res["names"][1] == "3.block.0.w"
    # the plain net's norms grow from the input to the output at every layer
    assert all(a < b for a, b in zip(plain["start"], plain["start"][1:]))
    assert plain["start"][0] < 1e-3 * res["start"][0]


def test_symmetry_numbers(outcomes):
    results = outcomes("symmetry").data
    w_zero, w_const = results["zeros"]["w1"], results["constant 0.1"]["w1"]
    assert not np.any(w_zero)                                 # tanh(0) = 0: no gradient ever reached it
    assert np.ptp(w_const, axis=0).max() <= 1e-5 * np.abs(w_const).max()   # every row the same
    assert np.ptp(w_const) > 0.05                             # ... and yet trained away from 0.1


def test_a_finding_that_does_not_hold_fails_the_command(monkeypatch, capsys):
    from nbconv.experiments import EXPERIMENTS, Experiment, Outcome

    def run(quick=False):
        out = Outcome("symmetry", "A run whose effect did not appear")
        out.find("the effect", "none", False)
        return out
    monkeypatch.setitem(EXPERIMENTS, "symmetry", Experiment("symmetry", "broken", run, lambda o, p: None))
    assert main(["experiment", "symmetry"]) == 1
    out = capsys.readouterr().out
    assert "NO  the effect: none" in out and "1 of 1 findings DO NOT HOLD" in out


# ---------------------------------------------------------------- the command

def test_cli_list(capsys):
    assert main(["experiment", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)        # each with its description


def test_cli_unknown_name_is_one_line_and_exit_2(capsys):
    assert main(["experiment", "vanishing"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("nbconv experiment: unknown experiment 'vanishing'; choose from: "
                            + ", ".join(NAMES) + "\n")


def test_cli_plot_problems_are_one_line_before_training(monkeypatch, capsys, tmp_path):
    assert main(["experiment", "--plot", str(tmp_path / "a.png")]) == 2
    assert capsys.readouterr().err.startswith("nbconv experiment: --plot needs an experiment NAME")
    assert main(["experiment", "symmetry", "--plot", str(tmp_path / "no" / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist; create it first" in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)         # the import fails as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["experiment", "symmetry", "--plot", str(tmp_path / "a.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                   # nothing trained
    assert captured.err == ('nbconv experiment: --plot needs matplotlib, an optional extra of nbconv: '
                            'pip install "nbconv[plot]"\n')


def test_cli_runs_an_experiment_and_writes_its_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    png = tmp_path / "symmetry.png"
    assert main(["experiment", "symmetry", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "random (Glorot)" in out and "all 4 findings hold" in out
    assert f"wrote {png}" in out and "ran in " in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", NAMES)
def test_each_experiment_draws_a_png(outcomes, name, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    from nbconv.experiments import EXPERIMENTS
    path = tmp_path / f"{name}.png"
    EXPERIMENTS[name].draw(outcomes(name), str(path))
    picture = image.imread(path)
    assert picture.ndim == 3 and min(picture.shape[:2]) >= 300
