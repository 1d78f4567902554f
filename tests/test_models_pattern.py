"""nbconv.models.pattern and mlp (the notes' INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC),
lenet's variations, and the model options of ``nbconv train``.

The truths: layer sequences and shapes written out by hand from the pattern, parameter counts
summed by hand, the forward pass of a small pattern network recomputed in plain NumPy from the
lecture's formulas, and the initializers' scale identities (He = sqrt(2) x LeCun normal from
the same draws)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from nbconv import models
from nbconv.cli import main
from nbconv.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU


def kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def output_shapes(model, input_shape) -> list[tuple]:
    shapes, shape = [], input_shape
    for layer in model.layers:
        shape = layer.output_shape(shape)
        shapes.append(shape)
    return shapes


CBR = ["Conv2d", "BatchNorm2d", "ReLU"]
CR = ["Conv2d", "ReLU"]
FBR = ["Linear", "BatchNorm1d", "ReLU"]
FR = ["Linear", "ReLU"]


# ---------------------------------------------------------------- the pattern's layers and shapes

@pytest.mark.parametrize("nmk, kw, expected, shapes", [
    # the notes' examples: INPUT -> FC (a linear classifier)
    ((0, 0, 0), {}, ["Flatten", "Linear"], [(2, 64), (2, 10)]),
    # INPUT -> CONV -> RELU -> FC
    ((1, 1, 0), dict(pool=False, batch_norm=False), ["Conv2d", "ReLU", "Flatten", "Linear"],
     [(2, 16, 8, 8), (2, 16, 8, 8), (2, 1024), (2, 10)]),
    # INPUT -> [CONV -> RELU -> POOL] * 2 -> FC -> RELU -> FC
    ((1, 2, 1), dict(batch_norm=False, channels=(4, 8), hidden=(16,)),
     CR + ["MaxPool2d"] + CR + ["MaxPool2d", "Flatten"] + FR + ["Linear"],
     [(2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 4, 4), (2, 8, 4, 4), (2, 8, 4, 4), (2, 8, 2, 2), (2, 32), (2, 16),
      (2, 16), (2, 10)]),
    # INPUT -> [[CONV -> BN -> RELU] * 2 -> POOL] * 3 -> [FC -> BN -> RELU] * 2 -> FC, 8x8 -> 1x1
    ((2, 3, 2), dict(channels=(2, 3, 4), hidden=(6, 5)),
     (CBR * 2 + ["MaxPool2d"]) * 3 + ["Flatten"] + FBR * 2 + ["Linear"],
     [(2, 2, 8, 8)] * 6 + [(2, 2, 4, 4)] + [(2, 3, 4, 4)] * 6 + [(2, 3, 2, 2)] + [(2, 4, 2, 2)] * 6 +
     [(2, 4, 1, 1), (2, 4), (2, 6), (2, 6), (2, 6), (2, 5), (2, 5), (2, 5), (2, 10)]),
    # N = 0: the stages are pools alone, the channels stay the input's
    ((0, 2, 1), dict(hidden=(7,), batch_norm=False), ["MaxPool2d", "MaxPool2d", "Flatten"] + FR + ["Linear"],
     [(2, 1, 4, 4), (2, 1, 2, 2), (2, 4), (2, 7), (2, 7), (2, 10)]),
])
def test_pattern_layers_and_shapes(nmk, kw, expected, shapes):
    model = models.pattern(*nmk, **kw)
    assert kinds(model) == expected
    assert output_shapes(model, (2, 1, 8, 8)) == shapes
    x = np.random.default_rng(0).normal(size=(2, 1, 8, 8)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (2, 10)
    assert model.backward(np.ones_like(y)).shape == x.shape
    for layer in model.layers:                  # every convolution is 3x3, stride 1, padding 1
        if isinstance(layer, Conv2d):
            assert (layer.kernel_size, layer.stride, layer.padding) == ((3, 3), (1, 1), (1, 1))
        if isinstance(layer, MaxPool2d):
            assert layer.output_shape((1, 1, 6, 6)) == (1, 1, 3, 3)


def test_pattern_default_widths_double_per_stage():
    model = models.pattern(1, 3, 2)
    convs = [layer.out_channels for layer in model.layers if isinstance(layer, Conv2d)]
    fcs = [layer.out_features for layer in model.layers if isinstance(layer, Linear)]
    assert convs == [16, 32, 64] and fcs == [64, 64, 10]
    assert kinds(models.pattern()) == (CBR * 2 + ["MaxPool2d"]) * 2 + ["Flatten"] + FBR + ["Linear"]


def test_pattern_input_and_output_sizes():
    model = models.pattern(1, 2, 1, channels=(4, 5), hidden=(6,), in_channels=3, image_size=12, num_classes=7)
    assert output_shapes(model, (1, 3, 12, 12))[-5:] == [(1, 5 * 3 * 3), (1, 6), (1, 6), (1, 6), (1, 7)]
    assert model.forward(np.zeros((2, 3, 12, 12), np.float32)).shape == (2, 7)
    # without pools the features keep the full image
    flat = models.pattern(1, 2, 0, channels=(4, 5), pool=False)
    assert output_shapes(flat, (1, 1, 8, 8))[-1] == (1, 10) and flat.layers[-1].in_features == 5 * 8 * 8


# ---------------------------------------------------------------- parameter counts, by hand

def test_parameter_counts_by_hand():
    # defaults: convs 1->16, 16->16, 16->32, 32->32 (3x3, no bias: BN follows), BN gamma+beta each,
    # FC 128->64 without bias + BN1d(64), FC 64->10 with bias
    default = (16 * 1 * 9 + 2 * 16) + (16 * 16 * 9 + 2 * 16) + (32 * 16 * 9 + 2 * 32) + (32 * 32 * 9 + 2 * 32) \
        + (64 * 128 + 2 * 64) + (10 * 64 + 10)
    assert default == 25_434
    assert models.pattern().num_params() == default
    # without batch norm every layer keeps its bias
    plain = (4 * 9 + 4) + (8 * 4 * 9 + 8) + (16 * 32 + 16) + (10 * 16 + 10)
    assert models.pattern(1, 2, 1, channels=(4, 8), hidden=(16,), batch_norm=False).num_params() == plain == 1_034
    # batch norm after the ReLU: the biases stay and the norms add gamma and beta
    after = plain + 2 * 4 + 2 * 8 + 2 * 16
    assert models.pattern(1, 2, 1, channels=(4, 8), hidden=(16,), bn_after_relu=True).num_params() == after
    # dropout adds no parameters
    assert models.pattern(1, 2, 1, channels=(4, 8), hidden=(16,), batch_norm=False, dropout=0.5).num_params() \
        == plain
    # the linear classifier: 64 * 10 + 10
    assert models.pattern(0, 0, 0).num_params() == 650
    assert models.mlp().num_params() == (64 * 64 + 64) * 2 + (10 * 64 + 10)
    assert models.mlp((32,), batch_norm=True).num_params() == 64 * 32 + 2 * 32 + 10 * 32 + 10


# ---------------------------------------------------------------- batch norm and dropout placement

def test_batch_norm_before_the_relu_and_no_bias_before_it():
    model = models.pattern(2, 2, 2, channels=(3, 4), hidden=(5, 6))
    layers = model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv2d):
            assert isinstance(layers[i + 1], BatchNorm2d) and isinstance(layers[i + 2], ReLU)
            assert layers[i + 1].num_features == layer.out_channels and layer.bias is False
        if isinstance(layer, Linear) and i < len(layers) - 1:
            assert isinstance(layers[i + 1], BatchNorm1d) and isinstance(layers[i + 2], ReLU)
            assert layers[i + 1].num_features == layer.out_features and layer.bias is False
    assert layers[-1].bias is True and not isinstance(layers[-2], (BatchNorm1d, BatchNorm2d))


def test_batch_norm_after_the_relu_keeps_the_biases():
    model = models.pattern(1, 2, 1, channels=(3, 4), hidden=(5,), bn_after_relu=True)
    assert kinds(model) == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d"] * 2 + \
        ["Flatten", "Linear", "ReLU", "BatchNorm1d", "Linear"]
    assert all(layer.bias for layer in model.layers if isinstance(layer, (Conv2d, Linear)))
    without = models.pattern(1, 2, 1, channels=(3, 4), hidden=(5,), batch_norm=False)
    assert not any(isinstance(layer, (BatchNorm1d, BatchNorm2d)) for layer in without.layers)


@pytest.mark.parametrize("bn_after_relu", [False, True])
def test_forward_matches_the_formulas_in_numpy(bn_after_relu):
    """pattern(1, 1, 1) in training mode against conv / BN / ReLU / pool / FC written in NumPy."""
    model = models.pattern(1, 1, 1, channels=(3,), hidden=(4,), bn_after_relu=bn_after_relu, num_classes=5,
                           seed=3, dtype=np.float64)
    conv, fc1, fc2 = [layer for layer in model.layers if isinstance(layer, (Conv2d, Linear))]
    x = np.random.default_rng(1).normal(size=(6, 1, 8, 8))

    def conv3x3(x, w, b):                       # out[n, f, i, j] = sum_c,ki,kj xpad[n, c, i+ki, j+kj] w[f, c, ki, kj]
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.zeros((x.shape[0], w.shape[0]) + x.shape[2:])
        for ki in range(3):
            for kj in range(3):
                out += np.einsum("nchw,fc->nfhw", xp[:, :, ki:ki + 8, kj:kj + 8], w[:, :, ki, kj])
        return out + (0 if b is None else b[None, :, None, None])

    def bn(z, axes):                            # batch statistics, gamma = 1, beta = 0
        return (z - z.mean(axis=axes, keepdims=True)) / np.sqrt(z.var(axis=axes, keepdims=True) + 1e-5)

    relu = lambda z: np.maximum(z, 0)
    params = lambda layer: (layer.params()["w"].data, layer.params()["b"].data if layer.bias else None)
    w, b = params(conv)
    z = conv3x3(x, w, b)
    a = bn(relu(z), (0, 2, 3)) if bn_after_relu else relu(bn(z, (0, 2, 3)))
    pooled = a.reshape(6, 3, 4, 2, 4, 2).max(axis=(3, 5))
    h = pooled.reshape(6, -1)
    w, b = params(fc1)
    z = h @ w.T + (0 if b is None else b)
    h = bn(relu(z), (0,)) if bn_after_relu else relu(bn(z, (0,)))
    w, b = params(fc2)
    expected = h @ w.T + b
    np.testing.assert_allclose(model.train().forward(x), expected, rtol=1e-10, atol=1e-10)


def test_dropout_closes_each_hidden_fc_block():
    model = models.pattern(1, 1, 2, channels=(3,), hidden=(5, 6), dropout=0.25)
    assert kinds(model) == CBR + ["MaxPool2d", "Flatten"] + (FBR + ["Dropout"]) * 2 + ["Linear"]
    assert [layer.p for layer in model.layers if isinstance(layer, Dropout)] == [0.25, 0.25]
    after = models.pattern(1, 1, 1, channels=(3,), hidden=(5,), dropout=0.5, bn_after_relu=True)
    assert kinds(after)[-5:] == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert kinds(models.mlp((8,), dropout=0.1)) == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert "Dropout" not in kinds(models.pattern(1, 1, 2, channels=(3,), hidden=(5, 6), dropout=0.0))


def test_dropout_changes_no_weight_and_is_the_identity_in_eval():
    kw = dict(channels=(3,), hidden=(5, 6), seed=7)
    plain, dropped = models.pattern(1, 1, 2, **kw), models.pattern(1, 1, 2, dropout=0.5, **kw)
    assert len(plain.parameters()) == len(dropped.parameters())
    # the same draws, in the same order: the dropout layers draw nothing while the net is built
    np.testing.assert_array_equal(np.concatenate([p.data.ravel() for p in plain.parameters()]),
                                  np.concatenate([p.data.ravel() for p in dropped.parameters()]))
    x = np.random.default_rng(2).normal(size=(4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(plain.eval().forward(x), dropped.eval().forward(x))
    y = dropped.train().forward(x)                       # in training some units are dropped
    assert not np.allclose(y, plain.train().forward(x))


# ---------------------------------------------------------------- initialization

def weight_arrays(model):
    return [layer.params()["w"].data for layer in model.layers if isinstance(layer, (Conv2d, Linear))]


@pytest.mark.parametrize("build", [lambda: models.pattern(init="zeros"), lambda: models.mlp(init="zeros"),
                                   lambda: models.lenet(init="zeros", channels=(4, 8), hidden=16)])
def test_zeros_init_sets_every_weight_to_zero(build):
    model = build()
    assert all(not np.any(p.data) for name, p in model.named_parameters() if not name.endswith("gamma"))
    assert weight_arrays(model)[-1].shape[0] == 10          # the last FC layer too
    logits = model.forward(np.random.default_rng(0).normal(size=(3, 1, 8, 8)).astype(np.float32))
    np.testing.assert_array_equal(logits, 0)                # every class equally likely: the symmetry


def test_init_short_names_and_scales():
    def weights(init):
        return weight_arrays(models.pattern(1, 2, 1, channels=(4, 8), hidden=(16,), init=init, seed=5,
                                            dtype=np.float64))
    for short, full in (("he", "he_normal"), ("xavier", "xavier_normal")):
        for u, v in zip(weights(short), weights(full)):
            np.testing.assert_array_equal(u, v)
    # the same standard normal draws, scaled by sqrt(2 / fan_in) (He) and sqrt(1 / fan_in) (LeCun)
    for he, lecun in zip(weights("he"), weights("normal")):
        np.testing.assert_allclose(he, math.sqrt(2) * lecun, rtol=1e-12)
    w = models.mlp((400,), in_features=300, init="he", seed=0, dtype=np.float64).layers[1].params()["w"].data
    assert abs(w.std() / math.sqrt(2 / 300) - 1) < 0.02
    first = models.pattern(1, 1, 0, channels=(3,), init="he_uniform", dtype=np.float64).layers[0].params()["w"].data
    assert np.all(np.abs(first) <= math.sqrt(6 / 9))


def test_lenet_variations_keep_the_default():
    default = models.lenet()
    assert default.num_params() == 62_378
    assert kinds(default) == CBR * 2 + ["MaxPool2d"] + CBR + ["MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    # the default still draws He for the convolutions and the hidden FC, Xavier for the last FC,
    # one generator in layer order
    rng = np.random.default_rng(0)
    from nbconv.init import he_normal, xavier_normal
    for w in weight_arrays(default)[:-1]:
        np.testing.assert_array_equal(w, he_normal(w.shape, rng).astype(np.float32))
    last = weight_arrays(default)[-1]
    np.testing.assert_array_equal(last, xavier_normal(last.shape, rng).astype(np.float32))

    no_bn = models.lenet(batch_norm=False)
    assert kinds(no_bn) == CR * 2 + ["MaxPool2d"] + CR + ["MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    assert no_bn.num_params() == 62_378 - 2 * (32 + 32 + 64) + (32 + 32 + 64)     # gamma, beta out; biases in
    after = models.lenet(bn_after_relu=True, dropout=0.5)
    assert kinds(after) == ["Conv2d", "ReLU", "BatchNorm2d"] * 2 + ["MaxPool2d", "Conv2d", "ReLU", "BatchNorm2d",
                                                                    "MaxPool2d", "Flatten", "Linear", "ReLU",
                                                                    "Dropout", "Linear"]


# ---------------------------------------------------------------- mlp

def test_mlp_takes_images_and_rows():
    model = models.mlp((16, 8), batch_norm=True, seed=1)
    assert kinds(model) == ["Flatten"] + FBR * 2 + ["Linear"]
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.forward(x), model.forward(x.reshape(5, 64)))
    assert model.backward(np.ones((5, 10), np.float32)).shape == (5, 64)
    assert kinds(models.mlp(())) == ["Flatten", "Linear"]                  # a linear classifier
    assert kinds(models.mlp((8,), batch_norm=True, bn_after_relu=True))[1:4] == ["Linear", "ReLU", "BatchNorm1d"]
    assert models.mlp((8,), in_features=12, num_classes=3).forward(np.zeros((2, 12), np.float32)).shape == (2, 3)


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("build, error, message", [
    (lambda: models.pattern(-1, 1, 1), ValueError, r"^n must be an int >= 0, got -1$"),
    (lambda: models.pattern(1, 1.5, 1), ValueError, r"^m must be an int >= 0, got 1\.5$"),
    (lambda: models.pattern(1, 2, 1, channels=(4,)), ValueError, r"channels must hold 2 widths .*got 1: \(4,\)"),
    (lambda: models.pattern(1, 2, 1, channels=8), ValueError, r"channels must be a tuple of 2 ints >= 1"),
    (lambda: models.pattern(1, 2, 1, channels=(4, 0)), ValueError, r"channels\[1\] must be an int >= 1, got 0"),
    (lambda: models.pattern(0, 2, 1, channels=(4, 8)), ValueError, r"with n=0 the stages have no convolutions"),
    (lambda: models.pattern(1, 1, 2, hidden=(8,)), ValueError, r"hidden must hold 2 widths"),
    (lambda: models.pattern(1, 4, 1), ValueError, r"image_size 8 is too small for 4 2x2 poolings"),
    (lambda: models.pattern(1, 1, 1, batch_norm=False, bn_after_relu=True), ValueError,
     r"bn_after_relu=True places a batch norm, but batch_norm=False"),
    (lambda: models.pattern(1, 1, 1, batch_norm=1), TypeError, r"batch_norm must be True or False, got 1"),
    (lambda: models.pattern(1, 1, 1, pool="yes"), TypeError, r"pool must be True or False"),
    (lambda: models.pattern(1, 1, 1, dropout=1.0), ValueError, r"dropout .* must be a number in \[0, 1\), got 1\.0"),
    (lambda: models.pattern(1, 1, 0, dropout=0.5), ValueError, r"dropout=0\.5 goes after each hidden FC layer"),
    (lambda: models.pattern(1, 1, 1, init="glorot"), ValueError,
     r"init must be one of zeros, normal, xavier, he, .*got 'glorot'"),
    (lambda: models.pattern(1, 1, 1, image_size=0), ValueError, r"image_size must be an int >= 1, got 0"),
    (lambda: models.mlp(64), ValueError, r"hidden must be a tuple of ints >= 1"),
    (lambda: models.mlp((8, -1)), ValueError, r"hidden\[1\] must be an int >= 1, got -1"),
    (lambda: models.mlp((), dropout=0.2), ValueError, r"mlp: dropout=0\.2 goes after each hidden FC layer"),
    (lambda: models.mlp(init="he2"), ValueError, r"mlp: init must be one of"),
    (lambda: models.lenet(dropout=-0.1), ValueError, r"lenet: dropout"),
])
def test_bad_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build()


# ---------------------------------------------------------------- nbconv train

@pytest.fixture(scope="module")
def small():
    from nbconv.data import load_digits
    digits = load_digits(seed=0)
    return dataclasses.replace(digits, x_train=digits.x_train[:200], y_train=digits.y_train[:200],
                               x_val=digits.x_val[:60], y_val=digits.y_val[:60],
                               x_test=digits.x_test[:60], y_test=digits.y_test[:60])


@pytest.fixture
def spied(small, monkeypatch):
    """nbconv train on the small split; ``seen`` gets the model (its weights before training) and the optimizer."""
    import nbconv.data
    import nbconv.train_cli
    monkeypatch.setattr(nbconv.data, "load_digits", lambda seed=0: small)
    seen = {}
    real_train = nbconv.train_cli.train

    def spy(model, data, optimizer, **kw):
        seen.update(model=model, optimizer=optimizer, start=[p.data.copy() for p in model.parameters()])
        return real_train(model, data, optimizer, **kw)

    monkeypatch.setattr(nbconv.train_cli, "train", spy)
    return seen


FAST = ["--batch-size", "100", "--shift", "0", "--no-progress", "--threads", "1"]
QUICK = ["--epochs", "1", *FAST]


def test_train_pattern_with_every_option(spied, capsys):
    argv = ["train", "--model", "pattern", "--pattern", "1,2,1", "--channels", "4,8", "--hidden", "16",
            "--bn-after-relu", "--dropout", "0.2", "--init", "xavier", "--weight-decay", "1e-3", *QUICK]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"test accuracy: 0\.\d{4}", out.strip().splitlines()[-1])
    first = out.splitlines()[0]
    assert "pattern (INPUT -> [[CONV -> RELU -> BN] * 1 -> POOL] * 2 -> [FC -> RELU -> BN -> DROPOUT] * 1 -> FC" \
        in first and "init xavier" in first and "adam lr 0.005, weight decay 0.001," in first
    assert re.search(r"^\d+ Dropout\s+p=0\.2\s+\[16\]", out, re.M)
    model, optimizer = spied["model"], spied["optimizer"]
    assert kinds(model) == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d"] * 2 + \
        ["Flatten", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert optimizer.weight_decay == 1e-3
    expected = models.pattern(1, 2, 1, channels=(4, 8), hidden=(16,), bn_after_relu=True, dropout=0.2,
                              init="xavier", seed=0)
    for start, p in zip(spied["start"], expected.parameters()):       # built as the Python call builds it
        np.testing.assert_array_equal(start, p.data)


@pytest.mark.parametrize("argv, layers", [
    (["--model", "mlp", "--hidden", "12", "--no-bn"], ["Flatten", "Linear", "ReLU", "Linear"]),
    (["--model", "mlp", "--hidden", "12,8"], ["Flatten"] + FBR * 2 + ["Linear"]),
    (["--model", "pattern", "--pattern", "0,0,0"], ["Flatten", "Linear"]),
    (["--model", "pattern", "--pattern", "1,1,0", "--no-pool", "--no-bn", "--channels", "3"],
     ["Conv2d", "ReLU", "Flatten", "Linear"]),
    (["--model", "lenet", "--no-bn", "--channels", "4,8", "--hidden", "16", "--dropout", "0.1"],
     CR * 2 + ["MaxPool2d"] + CR + ["MaxPool2d", "Flatten", "Linear", "ReLU", "Dropout", "Linear"]),
    (["--model", "residual", "--channels", "4", "--weight-decay", "0.01"], None),
])
def test_train_models_and_options(spied, capsys, argv, layers):
    assert main(["train", *argv, *QUICK]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: ")
    if layers is not None:
        assert kinds(spied["model"]) == layers
    else:
        assert spied["model"].layers[0].out_channels == 4 and spied["optimizer"].weight_decay == 0.01


def test_train_zeros_init_starts_from_zero_weights(spied, capsys):
    assert main(["train", "--model", "pattern", "--pattern", "1,1,1", "--channels", "3", "--hidden", "5",
                 "--init", "zeros", "--no-bn", *QUICK]) == 0
    assert spied["start"] and all(not np.any(w) for w in spied["start"])
    capsys.readouterr()


def test_train_resumes_the_same_pattern_and_refuses_another(spied, capsys, tmp_path):
    ckpt = str(tmp_path / "run.npz")
    net = ["--model", "pattern", "--pattern", "1,1,1", "--channels", "3", "--hidden", "5"]
    assert main(["train", *net, "--epochs", "1", *FAST, "--checkpoint", ckpt]) == 0
    capsys.readouterr()
    assert main(["train", *net, "--epochs", "2", *FAST, "--checkpoint", ckpt]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "epoch   2/2" in out and "epoch   1/2" not in out
    # batch norm after the ReLU moves it: another layout, refused
    assert main(["train", *net, "--bn-after-relu", "--epochs", "3", *FAST, "--checkpoint", ckpt]) == 1
    assert re.search(r"nbconv train: cannot load .*run\.npz: ", capsys.readouterr().err)


@pytest.mark.parametrize("argv, message", [
    (["--model", "pattern", "--no-bn", "--bn-after-relu"],
     "--bn-after-relu places the batch norm, and --no-bn removes it: give one of them"),
    (["--pattern", "1,1,1"], "--pattern describes --model pattern, not --model lenet"),
    (["--model", "mlp", "--no-pool"], "--no-pool describes --model pattern, not --model mlp"),
    (["--model", "residual", "--no-bn"], "--no-bn: --model residual is built with batch norm, He init and no hidden "
                                         "FC layer; --no-bn applies to lenet, pattern and mlp"),
    (["--model", "residual", "--init", "he"], "--init: --model residual is built with batch norm, He init and no "
                                              "hidden FC layer; --init applies to lenet, pattern and mlp"),
    (["--model", "pattern", "--pattern", "1,2,1", "--channels", "16,32,64"],
     "--channels 16,32,64: --model pattern takes 2 widths (one per stage, M = 2), got 3"),
    (["--model", "pattern", "--pattern", "0,2,1", "--channels", "4,8"],
     "--channels 4,8: --model pattern takes no --channels (with N = 0 the stages have no convolutions)"),
    (["--model", "pattern", "--pattern", "1,1,2", "--hidden", "8"],
     "--hidden 8: --model pattern takes 2 widths (one per hidden FC layer, K = 2), got 1"),
    (["--model", "lenet", "--channels", "4"], "--channels 4: --model lenet takes 2 widths (the widths of its two "
                                              "stages), got 1"),
    (["--model", "mlp", "--channels", "4"], "--channels 4: --model mlp takes no --channels (it has no convolutions)"),
    (["--model", "residual", "--hidden", "4"], "--hidden 4: --model residual takes no --hidden (it has no hidden FC "
                                               "layer)"),
    (["--model", "pattern", "--pattern", "1,2,0", "--dropout", "0.5"],
     "--dropout 0.5 goes after each hidden FC layer, and --pattern 1,2,0 has none (K = 0)"),
    (["--model", "pattern", "--pattern", "1,4,1"],
     "--pattern 1,4,1: 4 stages each closed by a 2x2 pool need images of at least 16x16, and the digits are 8x8; "
     "use M <= 3 or --no-pool"),
    (["--model", "mlp", "--method", "im2col"],
     "--method im2col chooses the convolutions' kernel, and mlp has none; use naive, fast or auto"),
])
def test_train_refuses_combinations_in_one_line(monkeypatch, capsys, argv, message):
    import nbconv.data

    def no_data(seed=0):
        raise AssertionError("the options must be refused before the data is loaded")
    monkeypatch.setattr(nbconv.data, "load_digits", no_data)
    assert main(["train", *argv, "--epochs", "1", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"nbconv train: {message}\n"


@pytest.mark.parametrize("argv, message", [
    (["--pattern", "1,2"], "argument --pattern: expected 3 integers separated by commas, got '1,2'"),
    (["--pattern", "1,-2,1"], "argument --pattern: must be >= 0, got -2 (in '1,-2,1')"),
    (["--pattern", "1,x,1"], "argument --pattern: expected an integer, got 'x' (in '1,x,1')"),
    (["--channels", "8,0"], "argument --channels: must be >= 1, got 0 (in '8,0')"),
    (["--hidden", ""], "argument --hidden: expected an integer, got '' (in '')"),
    (["--dropout", "1"], "argument --dropout: must be a number in [0, 1), got 1"),
    (["--dropout", "nan"], "argument --dropout: must be a number in [0, 1), got nan"),
    (["--weight-decay=-1e-4"], "argument --weight-decay: must be a finite number >= 0, got -1e-4"),
    (["--init", "glorot"], "argument --init: invalid choice: 'glorot'"),
    (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
])
def test_train_rejects_bad_values_in_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"nbconv train: {message}")


def test_train_help_lists_the_model_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for option in ("--model {lenet,residual,pattern,mlp}", "--pattern N,M,K", "--no-pool", "--channels C1,C2,...",
                   "--hidden H1,...", "--no-bn", "--bn-after-relu", "--dropout P", "--init INIT", "--weight-decay WD"):
        assert option in out, option
    assert "INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC" in " ".join(out.split())
