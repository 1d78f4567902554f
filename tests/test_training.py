"""nbconv.training and nbconv.models: the loop (reproducible, early stopping, schedules, progress),
evaluate, the ready-made networks, and the ``nbconv train`` command (small budgets throughout)."""

import dataclasses
import re
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from nbconv import models  # noqa: E402
from nbconv.cli import main  # noqa: E402
from nbconv.data import load_digits, random_shift  # noqa: E402
from nbconv.layers import BatchNorm2d, Conv2d, Flatten, Linear, Residual  # noqa: E402
from nbconv.optim import CosineLR, StepLR, make_optimizer  # noqa: E402
from nbconv.training import History, _batches, evaluate, train  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny test networks run fastest on one thread; on a busy machine, much faster."""
    from nbconv.training import thread_limit
    with thread_limit(1):
        yield


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def small(digits):
    """A reduced budget: 300 training and 90 validation images."""
    return dataclasses.replace(digits, x_train=digits.x_train[:300], y_train=digits.y_train[:300],
                               x_val=digits.x_val[:90], y_val=digits.y_val[:90])


def tiny_lenet(seed=0, method="im2col"):
    return models.lenet(method=method, seed=seed, channels=(4, 8), hidden=16)


def weights(model):
    return {n: p.data.copy() for n, p in model.named_parameters()} | \
           {n: b.copy() for n, b in model.named_buffers()}


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def log_softmax_loss(logits, y):
    """NumPy reference: mean over the batch of -log softmax(logits)[y]."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


# ---------------------------------------------------------------- the loop

def test_same_seed_same_history_and_weights(small):
    runs = []
    for _ in range(2):
        model = tiny_lenet(seed=0)
        opt = make_optimizer("adam", model.parameters(), 1e-2)
        history = train(model, small, opt, epochs=2, batch_size=32, seed=5, progress=False, augment=random_shift)
        runs.append((history, weights(model)))
    (h1, w1), (h2, w2) = runs
    assert isinstance(h1, History) and len(h1) == h1.epochs == 2
    assert h1 == h2                               # every metric of every epoch
    assert_same_weights(w1, w2)
    assert all(s > 0 for s in h1.seconds) and h1.lr == [1e-2, 1e-2]
    assert h1.best_epoch is None and h1.stopped_epoch is None
    # another shuffling seed gives another run
    model = tiny_lenet(seed=0)
    other = train(model, small, make_optimizer("adam", model.parameters(), 1e-2), epochs=2, batch_size=32,
                  seed=6, progress=False, augment=random_shift)
    assert other.train_loss != h1.train_loss
    assert History.from_dict(h1.to_dict()) == h1


def test_history_metrics_are_what_they_say(small):
    model = tiny_lenet(seed=1)
    history = train(model, small, make_optimizer("sgd", model.parameters(), 0.05), epochs=1, batch_size=64,
                    seed=0, progress=False)
    # validation metrics are those of evaluate() on the validation split after the epoch
    val_loss, val_acc = evaluate(model, small.x_val, small.y_val)
    assert history.val_loss[0] == pytest.approx(val_loss, rel=1e-6)
    assert history.val_acc[0] == pytest.approx(val_acc)
    assert 0.0 <= history.train_acc[0] <= 1.0 and history.train_loss[0] > 0


def test_training_reduces_the_loss(small):
    model = tiny_lenet(seed=0)
    history = train(model, small, make_optimizer("adam", model.parameters(), 1e-2), epochs=3, batch_size=32,
                    seed=0, progress=False)
    assert history.train_loss[-1] < history.train_loss[0] and history.val_loss[-1] < history.val_loss[0]
    assert history.val_acc[-1] > 0.5


def test_residual_network_with_batch_norm_learns_digits(digits):
    budget = dataclasses.replace(digits, x_train=digits.x_train[:600], y_train=digits.y_train[:600],
                                 x_val=digits.x_val[:60], y_val=digits.y_val[:60])
    model = models.residual_net(seed=0, channels=8, blocks=1)
    assert any(isinstance(layer, Residual) for layer in model.layers)
    assert any(isinstance(layer, BatchNorm2d) for layer in model.layers)
    opt = make_optimizer("adam", model.parameters(), 1e-2)
    train(model, budget, opt, epochs=3, batch_size=16, seed=0, progress=False)
    _, test_acc = evaluate(model, digits.x_test, digits.y_test)
    assert test_acc > 0.6            # chance is 0.1; seeds 0, 1, 2 reach 0.80, 0.82, 0.88


class GradientAscent:
    """A deliberately bad optimizer: it climbs the loss, so the validation loss rises every epoch."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def zero_grad(self):
        for p in self.params:
            p.grad[...] = 0

    def step(self):
        for p in self.params:
            p.data += self.lr * p.grad


def test_early_stopping_stops_and_restores_the_best_weights(small):
    model = tiny_lenet(seed=0)
    snapshots = {}
    history = train(model, small, GradientAscent(model.parameters(), 0.002), epochs=10, batch_size=50, seed=0,
                    early_stopping_patience=2, progress=False,
                    callback=lambda epoch, h: snapshots.setdefault(epoch, weights(model)))
    assert history.val_loss[1] > history.val_loss[0] and history.val_loss[2] > history.val_loss[0]
    assert history.best_epoch == 1 and history.stopped_epoch == 3 and len(history) == 3
    assert_same_weights(weights(model), snapshots[1])        # parameters AND running statistics
    assert not np.array_equal(snapshots[3]["0.w"], snapshots[1]["0.w"])


def test_without_early_stopping_every_epoch_runs(small):
    model = tiny_lenet(seed=0)
    history = train(model, small, GradientAscent(model.parameters(), 0.05), epochs=4, batch_size=100, seed=0,
                    progress=False)
    assert len(history) == 4 and history.stopped_epoch is None


@pytest.mark.parametrize("make, expected", [
    (lambda opt: StepLR(opt, step_size=1, gamma=0.5), [0.08, 0.04, 0.02]),
    (lambda opt: CosineLR(opt, total_epochs=4), [0.08, 0.08 * (1 + np.cos(np.pi / 4)) / 2, 0.04]),
])
def test_schedule_sets_the_lr_of_each_epoch(small, make, expected):
    model = tiny_lenet(seed=0)
    opt = make_optimizer("momentum", model.parameters(), 0.08)
    used = []
    step = opt.step
    opt.step = lambda: (used.append(opt.lr), step())[1]       # the lr of every update
    schedule = make(opt)
    history = train(model, small, opt, epochs=3, batch_size=100, seed=0, schedule=schedule, progress=False)
    np.testing.assert_allclose(history.lr, expected, rtol=1e-12)
    np.testing.assert_allclose(used, np.repeat(expected, 3), rtol=1e-12)     # 3 batches per epoch
    assert schedule.epoch == 3 and opt.lr == pytest.approx(schedule.lr_at(3))   # stepped after each epoch


def test_every_training_image_is_used_once_per_epoch_in_a_seeded_order(small):
    seen = []

    def record(x, rng):
        assert isinstance(rng, np.random.Generator)
        seen.append(x.copy())
        return x

    model = tiny_lenet(seed=0)
    train(model, small, make_optimizer("sgd", model.parameters(), 0.01), epochs=2, batch_size=64, seed=3,
          progress=False, augment=record)
    per_epoch = len(_batches(300, 64))
    assert [len(b) for b in seen[:per_epoch]] == [64, 64, 64, 64, 44]
    for epoch in range(2):
        images = np.concatenate(seen[epoch * per_epoch:(epoch + 1) * per_epoch])
        flat = images.reshape(300, -1)
        want = small.x_train.reshape(300, -1)
        np.testing.assert_array_equal(flat[np.lexsort(flat.T)], want[np.lexsort(want.T)])
    assert not np.array_equal(seen[0], seen[per_epoch])      # each epoch is shuffled anew


def test_batches_never_leave_a_single_sample():
    assert _batches(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert _batches(9, 4) == [(0, 4), (4, 9)]          # the lone last image joins the batch before
    assert _batches(1, 4) == [(0, 1)]
    assert _batches(8, 8) == [(0, 8)]


def test_progress_bar_shows_loss_and_accuracy(small, capsys):
    pytest.importorskip("tqdm")
    model = tiny_lenet(seed=0)
    train(model, small, make_optimizer("sgd", model.parameters(), 0.01), epochs=2, batch_size=100, seed=0)
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err
    assert re.search(r"loss=\d\.\d{4}", err) and re.search(r"acc=\d\.\d{4}", err)
    assert re.search(r"val_loss=\d\.\d{4}", err) and re.search(r"val_acc=\d\.\d{4}", err)


def test_no_progress_and_missing_tqdm_are_silent(small, capsys, monkeypatch):
    model = tiny_lenet(seed=0)
    train(model, small, make_optimizer("sgd", model.parameters(), 0.01), epochs=1, batch_size=100, seed=0,
          progress=False)
    assert capsys.readouterr() == ("", "")
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)      # tqdm is not installed
    history = train(model, small, make_optimizer("sgd", model.parameters(), 0.01), epochs=1, batch_size=100,
                    seed=0, progress=True)
    assert len(history) == 1 and capsys.readouterr() == ("", "")


def test_train_errors(small):
    model = tiny_lenet()
    opt = make_optimizer("sgd", model.parameters(), 0.1)
    kw = dict(epochs=1, batch_size=10, seed=0, progress=False)
    with pytest.raises(ValueError, match=r"epochs must be >= 1, got 0"):
        train(model, small, opt, **(kw | {"epochs": 0}))
    with pytest.raises(TypeError, match=r"batch_size must be an int, got 2.5"):
        train(model, small, opt, **(kw | {"batch_size": 2.5}))
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got -1"):
        train(model, small, opt, **(kw | {"seed": -1}))
    with pytest.raises(ValueError, match=r"resume=True needs a checkpoint path"):
        train(model, small, opt, resume=True, **kw)
    no_val = dataclasses.replace(small, x_val=small.x_val[:0], y_val=small.y_val[:0])
    with pytest.raises(ValueError, match=r"early stopping watches the validation loss, but data.x_val is empty"):
        train(model, no_val, opt, early_stopping_patience=2, **kw)
    with pytest.raises(TypeError, match=r"data must have x_train, y_train, x_val and y_val .* without x_train"):
        train(model, object(), opt, **kw)
    with pytest.raises(ValueError, match=r"data.x_train has 300 samples but data.y_train has 299"):
        train(model, dataclasses.replace(small, y_train=small.y_train[:299]), opt, **kw)
    # an empty validation split is allowed without early stopping: its metrics are NaN
    history = train(model, no_val, opt, **kw)
    assert np.isnan(history.val_loss[0]) and np.isnan(history.val_acc[0])


# ---------------------------------------------------------------- evaluate

@pytest.mark.parametrize("batch_size", [7, 1000])
def test_evaluate_matches_a_numpy_reference_in_eval_mode(small, batch_size):
    model = tiny_lenet(seed=2)
    train(model, small, make_optimizer("adam", model.parameters(), 1e-2), epochs=1, batch_size=32, seed=0,
          progress=False)      # running statistics now differ from the batch statistics
    x, y = small.x_val, small.y_val
    model.eval()
    logits = model.forward(x)
    model.train()
    loss, acc = evaluate(model, x, y, batch_size=batch_size)
    assert loss == pytest.approx(log_softmax_loss(logits, y), rel=1e-5)
    assert acc == pytest.approx(np.mean(np.argmax(logits, axis=1) == y))
    assert model.training                              # the mode is restored
    model.eval()
    evaluate(model, x, y)
    assert not model.training
    assert all(np.isnan(v) for v in evaluate(model, x[:0], y[:0]))


# ---------------------------------------------------------------- models

def test_lenet_architecture_and_parameter_count():
    model = models.lenet(seed=0)
    # conv 1->32, 32->32, 32->64 (3x3, no bias), three batch norms, FC 256->128 and 128->10
    expected = (32 * 9 + 32 * 32 * 9 + 32 * 64 * 9) + 2 * (32 + 32 + 64) + (256 * 128 + 128) + (128 * 10 + 10)
    assert model.num_params() == expected == 62378
    assert model.output_shape((5, 1, 8, 8)) == (5, 10)
    assert model.forward(np.zeros((5, 1, 8, 8), np.float32)).shape == (5, 10)
    convs = [layer for layer in model.layers if isinstance(layer, Conv2d)]
    assert len(convs) == 3 and all(c.method == "auto" for c in convs)
    assert all(c.method == "direct" for c in models.lenet(method="direct").layers if isinstance(c, Conv2d))
    assert isinstance(model.layers[-1], Linear) and any(isinstance(m, Flatten) for m in model.layers)


def test_models_are_seeded():
    a, b, c = models.lenet(seed=4), models.lenet(seed=4), models.lenet(seed=5)
    assert_same_weights(weights(a), weights(b))
    assert not np.array_equal(a.layers[0].params()["w"].data, c.layers[0].params()["w"].data)
    r1, r2 = models.residual_net(seed=1), models.residual_net(seed=1)
    assert_same_weights(weights(r1), weights(r2))


def test_residual_net_shapes_and_blocks():
    model = models.residual_net(seed=0, channels=8, blocks=2)
    assert sum(isinstance(layer, Residual) for layer in model.layers) == 4
    assert model.output_shape((3, 1, 8, 8)) == (3, 10)
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    out = model.forward(x)
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert model.backward(np.ones_like(out)).shape == x.shape
    assert isinstance(models.residual_block(4), Residual)
    with pytest.raises(ValueError, match=r"image_size 2 is too small for 2 2x2 poolings"):
        models.lenet(image_size=2)


# ---------------------------------------------------------------- the command line

def _last_line(text):
    return text.strip().splitlines()[-1]


def test_cli_smoke_plot_and_checkpoint(tmp_path, capsys):
    png, ckpt = tmp_path / "curves.png", tmp_path / "run.npz"
    assert main(["train", "--epochs", "1", "--no-progress", "--plot", str(png), "--checkpoint", str(ckpt)]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"test accuracy: 0\.\d{4}", _last_line(out))
    assert re.search(r"^epoch   1/1  train loss \d\.\d{4} acc \d\.\d{4}  val loss", out, re.M)
    assert err == ""                               # --no-progress: no bars
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert ckpt.exists()

    # the checkpoint holds the finished run: resuming trains nothing and gives the same accuracy
    assert main(["train", "--epochs", "1", "--no-progress", "--checkpoint", str(ckpt)]) == 0
    again = capsys.readouterr().out
    assert "resuming from" in again and "epoch   1/1" not in again
    assert _last_line(again) == _last_line(out)

    # a checkpoint of another network is refused with a clear message
    assert main(["train", "--epochs", "1", "--no-progress", "--model", "residual", "--checkpoint", str(ckpt)]) == 1
    assert re.search(r"nbconv train: cannot load .*run.npz: .*not in the checkpoint", capsys.readouterr().err)


@pytest.mark.parametrize("model, rows", [
    ("lenet", [r"0 Conv2d\s+w 32x1x3x3\s+\[32x8x8\]\s+2,048\s+288",
               r"1 BatchNorm2d\s+gamma 32, beta 32\s+\[32x8x8\]\s+2,048\s+64",
               r"6 MaxPool2d\s+2x2 stride 2x2\s+\[32x4x4\]\s+512\s+0",
               r"12 Linear\s+w 128x256, b 128\s+\[128\]\s+128\s+32,896",
               r"14 Linear\s+w 10x128, b 10\s+\[10\]\s+10\s+1,290"]),
    ("residual", [r"0 Conv2d\s+w 16x1x3x3\s+\[16x8x8\]\s+1,024\s+144",
                  r"\s+3\.block\.0 Conv2d\s+w 16x16x3x3\s+\[16x8x8\]\s+1,024\s+2,304",
                  r"3 Residual add\s+block\(x\) \+ x\s+\[16x8x8\]\s+1,024\s+0",
                  r"12 GlobalAvgPool2d\s+\[16\]\s+16\s+0",
                  r"13 Linear\s+w 10x16, b 10\s+\[10\]\s+10\s+170"]),
])
def test_cli_prints_the_model_before_the_first_epoch(small, capsys, monkeypatch, model, rows):
    import nbconv.data
    monkeypatch.setattr(nbconv.data, "load_digits", lambda seed=0: small)     # a small, quick epoch
    argv = ["train", "--model", model, "--epochs", "1", "--batch-size", "100", "--shift", "0", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("digits: 300 train, 90 validation")
    before, epoch_line, _ = out.partition("epoch   1/1")
    assert epoch_line                                   # the table comes before the first epoch
    assert f"{model}, per 1x8x8 image:" in before
    assert re.search(r"^layer\s+parameter shapes / window\s+output\s+activations\s+parameters$", before, re.M)
    assert re.search(r"^input\s+\[1x8x8\]\s+64\s+0$", before, re.M)
    for row in rows:
        assert re.search(rf"^{row}$", before, re.M), row
    params = (models.lenet if model == "lenet" else models.residual_net)().num_params()
    assert f"total parameters: {params:,} =" in before


@pytest.mark.parametrize("method, conv, rest", [("naive", "naive", "naive"), ("blocked", "blocked", "auto")])
def test_cli_method_sets_every_layer_or_the_convolutions(small, capsys, monkeypatch, method, conv, rest):
    import nbconv.data
    import nbconv.train_cli
    from nbconv.layers import Conv2d

    monkeypatch.setattr(nbconv.data, "load_digits", lambda seed=0: small)
    seen = {}
    real_train = nbconv.train_cli.train

    def spy(model, *args, **kw):
        seen.update((name, layer.method) for name, layer in model.children().items() if hasattr(layer, "method"))
        seen.update(conv_names={name for name, layer in model.children().items() if isinstance(layer, Conv2d)})
        return real_train(model, *args, **kw)

    monkeypatch.setattr(nbconv.train_cli, "train", spy)
    argv = ["train", "--method", method, "--epochs", "1", "--batch-size", "100", "--shift", "0", "--no-progress"]
    assert main(argv) == 0
    assert f"method {method}, device cpu" in capsys.readouterr().out
    conv_names = seen.pop("conv_names")
    assert conv_names and len(seen) > len(conv_names)       # conv, batch norm, ReLU, pooling, linear
    assert {m for name, m in seen.items() if name in conv_names} == {conv}
    assert {m for name, m in seen.items() if name not in conv_names} == {rest}


def test_cli_rejects_bad_options(capsys):
    for argv, message in ((["--epochs", "0"], r"--epochs: must be >= 1, got 0"),
                          (["--lr", "-1"], r"--lr: must be a finite number > 0, got -1"),
                          (["--optimizer", "lbfgs"], r"--optimizer: invalid choice: 'lbfgs'"),
                          (["--method", "fft"], r"--method: invalid choice: 'fft'")):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", *argv])
        assert exit_info.value.code == 2
        assert re.search(message, capsys.readouterr().err)


def test_plot_needs_matplotlib_only_when_asked(tmp_path, monkeypatch):
    from nbconv.plot import plot_training

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "nbconv\[plot\]"'):
        plot_training(History(), tiny_lenet(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_thread_limit_restores_the_thread_counts():
    import numba

    from nbconv.training import thread_limit

    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
        with thread_limit(10_000):             # capped at what Numba was started with
            assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match=r"threads must be >= 1, got 0"):
        with thread_limit(0):
            pass
