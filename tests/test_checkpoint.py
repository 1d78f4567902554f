"""nbconv.checkpoint: round trip, atomic writes, refusals; and training resumed from a checkpoint
ends exactly where an uninterrupted run ends."""

import dataclasses
import os

import numpy as np
import pytest

from nbconv import checkpoint
from nbconv.layers import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from nbconv.optim import Adam, CosineLR, make_optimizer


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny test networks run fastest on one thread; on a busy machine, much faster."""
    from nbconv.training import thread_limit
    with thread_limit(1):
        yield


def tiny_net(seed=0, width=4, hidden=8):
    rng = np.random.default_rng(seed)
    return Sequential(Conv2d(1, width, 3, padding=1, bias=False, seed=rng), BatchNorm2d(width), ReLU(),
                      MaxPool2d(2), Flatten(), Linear(width * 16, hidden, seed=rng), ReLU(),
                      Linear(hidden, 10, seed=rng))


def fake_digits(seed=0, n_train=96, n_val=32):
    """Random 8x8 'images' with learnable labels (the label is the brightest of 10 pixel blocks)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_train + n_val, 1, 8, 8)).astype(np.float32)
    y = np.argmax(x.reshape(len(x), -1)[:, :10], axis=1).astype(np.int64)

    @dataclasses.dataclass
    class Data:
        x_train: np.ndarray
        y_train: np.ndarray
        x_val: np.ndarray
        y_val: np.ndarray

    return Data(x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def one_step(model, optimizer, data):
    """A forward/backward/update so that parameters, running statistics and Adam's state are non-trivial."""
    from nbconv.training import train
    train(model, data, optimizer, epochs=1, batch_size=32, seed=0, progress=False)


def state(model):
    return ({n: p.data.copy() for n, p in model.named_parameters()},
            {n: b.copy() for n, b in model.named_buffers()})


# ---------------------------------------------------------------- round trip

def test_round_trip_restores_parameters_buffers_optimizer_and_meta(tmp_path):
    data = fake_digits()
    model, other = tiny_net(seed=0), tiny_net(seed=1)
    opt = Adam(model.parameters(), lr=1e-2)
    one_step(model, opt, data)
    meta = {"epoch": 3, "history": {"loss": [1.5, 0.5], "best": None}, "pair": (1, "a"),
            "by_int": {0: np.arange(3), 7: "x"}, "array": np.eye(2), "nan": float("nan")}
    path = tmp_path / "run.npz"
    assert checkpoint.save(path, model, opt, **meta) == str(path)

    other_opt = Adam(other.parameters(), lr=0.5)
    live_params = [p.data for _, p in other.named_parameters()]
    live_buffers = [b for _, b in other.named_buffers()]
    loaded = checkpoint.load(path, other, other_opt)

    params, buffers = state(model)
    assert [n for n, _ in other.named_parameters()] == list(params)
    for name, p in other.named_parameters():
        np.testing.assert_array_equal(p.data, params[name])
    for name, b in other.named_buffers():
        np.testing.assert_array_equal(b, buffers[name])
    assert buffers["1.running_mean"].any() and not np.all(buffers["1.running_var"] == 1)  # stats really moved
    # copied IN PLACE: the layers still hold the same arrays
    assert all(a is p.data for a, (_, p) in zip(live_params, other.named_parameters()))
    assert all(a is b for a, (_, b) in zip(live_buffers, other.named_buffers()))
    # optimizer state: moments, step count and lr
    want, got = opt.state_dict(), other_opt.state_dict()
    assert set(want) == set(got) and int(got["t"]) == int(want["t"]) > 0 and float(got["lr"]) == 1e-2
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    # metadata, with its types
    assert loaded["epoch"] == 3 and loaded["history"] == {"loss": [1.5, 0.5], "best": None}
    assert loaded["pair"] == (1, "a")
    assert set(loaded["by_int"]) == {0, 7} and loaded["by_int"][7] == "x"
    np.testing.assert_array_equal(loaded["by_int"][0], np.arange(3))
    np.testing.assert_array_equal(loaded["array"], np.eye(2))
    assert np.isnan(loaded["nan"])
    assert checkpoint.read_meta(path)["epoch"] == 3


def test_file_is_a_plain_npz_without_pickles(tmp_path):
    model = tiny_net()
    path = tmp_path / "plain.ckpt"              # written exactly there: no .npz appended
    checkpoint.save(path, model, epoch=1)
    assert os.listdir(tmp_path) == ["plain.ckpt"]
    with np.load(path, allow_pickle=False) as npz:
        assert "param/0.w" in npz.files and "buffer/1.running_var" in npz.files
        np.testing.assert_array_equal(npz["param/0.w"], model.layers[0].params()["w"].data)


def test_model_without_optimizer_and_missing_optimizer_state(tmp_path):
    model = tiny_net()
    path = tmp_path / "m.npz"
    checkpoint.save(path, model)
    assert checkpoint.load(path, tiny_net(seed=5)) == {}
    with pytest.raises(ValueError, match=r"cannot load the optimizer state from .*m.npz: it was saved without"):
        checkpoint.load(path, tiny_net(), Adam(tiny_net().parameters()))


# ---------------------------------------------------------------- refusals

def test_other_shapes_are_refused_naming_parameter_and_both_shapes(tmp_path):
    path = tmp_path / "w4.npz"
    checkpoint.save(path, tiny_net(width=4))
    wider = tiny_net(width=6, seed=3)
    before = state(wider)
    with pytest.raises(ValueError, match=r"parameter '0.w' has shape \(4, 1, 3, 3\) in the checkpoint but "
                                         r"\(6, 1, 3, 3\) in the model"):
        checkpoint.load(path, wider)
    # nothing was changed by the refused load
    after = state(wider)
    for name in before[0]:
        np.testing.assert_array_equal(after[0][name], before[0][name])

    checkpoint.save(path, tiny_net(hidden=8))
    with pytest.raises(ValueError, match=r"parameter '5.w' has shape \(8, 64\) in the checkpoint but "
                                         r"\(9, 64\) in the model"):
        checkpoint.load(path, tiny_net(hidden=9))


def test_other_names_are_refused(tmp_path):
    path = tmp_path / "a.npz"
    checkpoint.save(path, tiny_net())
    rng = np.random.default_rng(0)
    no_bn = Sequential(Conv2d(1, 4, 3, padding=1, bias=False, seed=rng), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(64, 8, seed=rng), ReLU(), Linear(8, 10, seed=rng))
    with pytest.raises(ValueError, match=r"the model's parameter '4.w', '4.b', '6.w', '6.b' are not in the "
                                         r"checkpoint; the checkpoint's parameter '1.gamma', '1.beta', .* "
                                         r"not in the model"):
        checkpoint.load(path, no_bn)


def test_optimizer_state_of_another_model_is_refused_before_anything_changes(tmp_path):
    path = tmp_path / "a.npz"
    model = tiny_net()
    checkpoint.save(path, model, Adam(model.parameters()))
    target = tiny_net(seed=9)
    before = state(target)
    sgd = make_optimizer("momentum", target.parameters(), 0.1)
    with pytest.raises(ValueError, match=r"optimizer state does not match this SGD"):
        checkpoint.load(path, target, sgd)
    for name, p in target.named_parameters():
        np.testing.assert_array_equal(p.data, before[0][name])


def test_not_a_checkpoint_and_unsupported_meta(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(2))
    with pytest.raises(ValueError, match=r"is not an nbconv checkpoint"):
        checkpoint.load(path, tiny_net())
    with pytest.raises(TypeError, match=r"cannot save meta\['when'\] of type object in a checkpoint"):
        checkpoint.save(tmp_path / "y.npz", tiny_net(), when=object())
    assert not (tmp_path / "y.npz").exists() and sorted(os.listdir(tmp_path)) == ["x.npz"]


# ---------------------------------------------------------------- atomic write

def test_failed_write_leaves_the_old_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    model = tiny_net()
    checkpoint.save(path, model, epoch=1)
    old_bytes = path.read_bytes()

    def crash_midway(file, arrays):
        file.write(b"PK\x03\x04 half an archive")      # some bytes reach the disk, then the writer dies
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "_write_arrays", crash_midway)
    for p in model.parameters():
        p.data += 1.0
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, model, epoch=2)
    assert os.listdir(tmp_path) == ["run.npz"]                 # the temporary file is gone
    assert path.read_bytes() == old_bytes                      # the old checkpoint is intact
    assert checkpoint.read_meta(path)["epoch"] == 1


def test_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError("read-only")

    monkeypatch.setattr(checkpoint.os, "replace", refuse)
    with pytest.raises(PermissionError):
        checkpoint.save(tmp_path / "run.npz", tiny_net())
    assert os.listdir(tmp_path) == []


def test_write_goes_through_a_temporary_file_in_the_same_directory(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((os.path.dirname(src), os.path.basename(src), dst, os.path.getsize(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", spy)
    checkpoint.save(tmp_path / "run.npz", tiny_net())
    ((directory, name, dst, size),) = seen
    assert directory == str(tmp_path) and name.startswith(".run.npz.") and name.endswith(".tmp")
    assert dst == str(tmp_path / "run.npz") and size > 0


# ---------------------------------------------------------------- resume

class Interrupted(Exception):
    pass


def _run(tmp_path, name, *, stop_after=None, resume=False, init_seed=0, patience=None, epochs=5, lr=1e-2):
    from nbconv.data import random_shift
    from nbconv.training import train

    data = fake_digits(seed=1)
    model = tiny_net(seed=init_seed)
    opt = make_optimizer("adam", model.parameters(), lr)
    schedule = CosineLR(opt, total_epochs=epochs)

    def interrupt(epoch, history):
        if epoch == stop_after:
            raise Interrupted

    history = train(model, data, opt, epochs=epochs, batch_size=25, seed=4, schedule=schedule,
                    early_stopping_patience=patience, checkpoint=tmp_path / name, resume=resume,
                    progress=False, augment=random_shift, callback=interrupt)
    return model, opt, history


# patience 2 with a large lr: the validation loss is lowest before the interruption (epoch 2) and
# early stopping ends the run after it, so the resumed run must carry the early-stopping state over.
@pytest.mark.parametrize("patience, lr", [(None, 1e-2), (2, 0.1)])
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, patience, lr):
    full_model, full_opt, full_history = _run(tmp_path, "full.npz", patience=patience, lr=lr)
    if patience is not None:
        assert full_history.stopped_epoch is not None and full_history.best_epoch <= 2

    with pytest.raises(Interrupted):
        _run(tmp_path, "cut.npz", stop_after=2, patience=patience, lr=lr)
    assert checkpoint.read_meta(tmp_path / "cut.npz")["epoch"] == 2
    # a fresh process: other initial weights, a new optimizer and schedule; the checkpoint restores all
    model, opt, history = _run(tmp_path, "cut.npz", resume=True, init_seed=123, patience=patience, lr=lr)

    assert history == full_history and len(history) == len(full_history) >= 3
    for (name, p), (_, q) in zip(model.named_parameters(), full_model.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for (name, b), (_, c) in zip(model.named_buffers(), full_model.named_buffers()):
        np.testing.assert_array_equal(b, c, err_msg=name)
    assert opt.lr == full_opt.lr and opt.t == full_opt.t
    # a finished run resumed again does nothing more
    again, _, again_history = _run(tmp_path, "cut.npz", resume=True, init_seed=7, patience=patience, lr=lr)
    assert again_history == full_history


def test_resume_without_a_file_starts_from_scratch(tmp_path):
    _, _, history = _run(tmp_path, "new.npz", resume=True, epochs=2)
    assert len(history) == 2 and (tmp_path / "new.npz").exists()
