"""Summaries: the notes' VGG16 table and AlexNet CONV1 from real layer definitions, any model's totals,
receptive fields and training memory, and `nbconv summary` on every built-in model."""

import math
import re
import tracemalloc

import numpy as np
import pytest

import nbconv.cli
import nbconv.layers as L
from nbconv.models import lenet, residual_net
from nbconv.optim import make_optimizer
from nbconv.summary import (MODELS, alexnet_conv1, im2col_sizes, receptive_fields, report, summarize, summary,
                            training_memory, vgg16)

# The VGGNet table of the cs231n notes, one entry per CONV/POOL/FC row: (output H, W, C, weights without biases)
VGG16_TABLE = [
    (224, 224, 64, 3 * 3 * 3 * 64), (224, 224, 64, 3 * 3 * 64 * 64), (112, 112, 64, 0),
    (112, 112, 128, 3 * 3 * 64 * 128), (112, 112, 128, 3 * 3 * 128 * 128), (56, 56, 128, 0),
    (56, 56, 256, 3 * 3 * 128 * 256), (56, 56, 256, 3 * 3 * 256 * 256), (56, 56, 256, 3 * 3 * 256 * 256),
    (28, 28, 256, 0),
    (28, 28, 512, 3 * 3 * 256 * 512), (28, 28, 512, 3 * 3 * 512 * 512), (28, 28, 512, 3 * 3 * 512 * 512),
    (14, 14, 512, 0),
    (14, 14, 512, 3 * 3 * 512 * 512), (14, 14, 512, 3 * 3 * 512 * 512), (14, 14, 512, 3 * 3 * 512 * 512),
    (7, 7, 512, 0),
    (1, 1, 4096, 7 * 7 * 512 * 4096), (1, 1, 4096, 4096 * 4096), (1, 1, 1000, 4096 * 1000),
]


def test_vgg16_totals_are_the_true_sums_of_worked_examples():
    s = summarize(vgg16(), (3, 224, 224))
    assert s.total_activations == 15_237_608          # the INPUT row (224*224*3) included
    assert s.total_activations - 224 * 224 * 3 == 15_087_080
    assert s.activation_bytes == 60_950_432           # 61 MB per image, forward, float32
    assert s.total_params == 138_357_544
    assert s.param_bytes == 4 * 138_357_544
    assert s.output_shape == (1000,)


def test_vgg16_rows_reproduce_the_notes_table():
    s = summarize(vgg16(), (3, 224, 224))
    assert s.rows[0].kind == "Input" and s.rows[0].activations == 224 * 224 * 3
    counted = [r for r in s.rows[1:] if not r.in_place]
    assert len(counted) == len(VGG16_TABLE) == 13 + 5 + 3
    for row, (h, w, c, weights) in zip(counted, VGG16_TABLE):
        assert row.activations == h * w * c, row
        biases = c if weights else 0
        assert row.params == weights + biases, row
    assert sum(h * w * c for h, w, c, _ in VGG16_TABLE) + 224 * 224 * 3 == s.total_activations
    # every in-place row is an elementwise layer or Flatten, adding no memory
    assert {r.kind for r in s.rows if r.in_place} == {"ReLU", "Dropout", "Flatten"}


def test_vgg16_first_fc_layer_holds_102_760_448_weights():
    model = vgg16()
    fc1 = next(layer for layer in model.layers if isinstance(layer, L.Linear))
    assert fc1.param_shapes()["w"] == (4096, 7 * 7 * 512)
    assert math.prod(fc1.param_shapes()["w"]) == 102_760_448
    fc_rows = [r for r in summarize(model, (3, 224, 224)).rows if r.kind == "Linear"]
    assert fc_rows[0].params == 102_760_448 + 4096
    assert fc_rows[0].detail == "w 4096x25088, b 4096"


def test_vgg16_allocates_no_weights():
    tracemalloc.start()
    try:
        model = vgg16()
        s = summarize(model, (3, 224, 224))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model.named_parameters() == [] and model.named_buffers() == []
    assert model.num_params() == s.total_params == 138_357_544
    assert peak < 5_000_000            # 138M float32 weights would take 553 MB


def test_vgg16_summary_text_and_cli(capsys):
    text = summary(vgg16(), (3, 224, 224))
    assert "15,237,608" in text and "138,357,544" in text and "60,950,432 bytes" in text
    assert nbconv.cli.main(["summary", "vgg16"]) == 0
    out = capsys.readouterr().out
    for expected in ("15,237,608", "138,357,544", "102,760,448", "[64x224x224]", "[512x7x7]",
                     "24M * 4 bytes ~= 93MB", "138M"):
        assert expected in out, expected


def test_alexnet_conv1_shape_parameters_and_im2col():
    model = alexnet_conv1()
    assert model.named_parameters() == []
    s = summarize(model, (3, 227, 227))
    assert s.output_shape == (96, 55, 55)
    assert s.total_params == 96 * 11 * 11 * 3 + 96 == 34_944
    assert im2col_sizes(model[0], (3, 227, 227)) == {"X_col": (363, 3025), "W_row": (96, 363), "out": (96, 3025)}


def test_alexnet_conv1_cli(capsys):
    assert nbconv.cli.main(["summary", "alexnet-conv1"]) == 0
    out = capsys.readouterr().out
    for expected in ("55x55x96", "34,944", "34,848", "363 x 3025", "96 x 363", "96 x 3025"):
        assert expected in out, expected


def test_cli_refuses_an_unknown_network(capsys):
    with pytest.raises(SystemExit):
        nbconv.cli.main(["summary", "resnet50"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"unknown model 'resnet50'; choose from lenet, residual, pattern, mlp, vgg16, "
                                         r"alexnet-conv1"):
        report("resnet50")


def test_im2col_sizes_with_groups_and_padding():
    conv = L.Conv2d(4, 6, 3, padding=1, stride=2, groups=2, allocate=False)
    # per group: 2 channels * 3 * 3 rows; output 4x4 from 8x8 with pad 1 stride 2
    assert im2col_sizes(conv, (4, 8, 8)) == {"X_col": (18, 16), "W_row": (3, 18), "out": (3, 16)}


def small_model():
    return L.Sequential(L.Conv2d(1, 4, 3, padding=1), L.BatchNorm2d(4), L.ReLU(), L.MaxPool2d(2),
                        L.Residual(L.Sequential(L.Conv2d(4, 4, 3, padding=1), L.Tanh())),
                        L.Flatten(), L.Linear(4 * 4 * 4, 10))


def test_small_model_totals_equal_its_arrays(rng):
    model = small_model().eval()
    s = summarize(model, (1, 8, 8))
    assert s.total_params == sum(p.data.size for p in model.parameters()) == 40 + 8 + 148 + 650
    assert s.total_buffers == sum(b.size for _, b in model.named_buffers()) == 8
    assert s.param_bytes == 4 * s.total_params

    # the activations against a real forward pass, layer by layer (input, conv, bn, pool, block conv, add, fc)
    x = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
    sizes, h = [x.size], x
    for layer in model.layers:
        if isinstance(layer, L.Residual):
            inner = layer.block[0].forward(h)
            sizes += [inner.size, h.size]            # the block's conv output and the sum; Tanh is in place
        out = layer.forward(h)
        if not getattr(layer, "in_place", False) and not isinstance(layer, L.Residual):
            sizes.append(out.size)
        h = out
    assert s.total_activations == sum(sizes)
    assert s.output_shape == h.shape[1:] == (10,)


def test_small_model_rows_and_names():
    s = summarize(small_model(), (1, 8, 8))
    assert [r.name for r in s.rows] == ["input", "0", "1", "2", "3", "4.block.0", "4.block.1", "4", "5", "6"]
    assert [r.kind for r in s.rows] == ["Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "Tanh",
                                        "Residual add", "Flatten", "Linear"]
    assert s.rows[2].buffers == 8 and s.rows[2].params == 8
    text = str(s)
    assert "4.block.0 Conv2d" in text and "buffers (running statistics, not trained): 8" in text


def test_dtype_bytes_and_method_summary(capsys):
    model = small_model()
    s8 = summarize(model, (1, 8, 8), dtype_bytes=8)
    assert s8.activation_bytes == 2 * summarize(model, (1, 8, 8)).activation_bytes
    assert "in float64" in str(s8)
    assert model.summary((1, 8, 8)) is None
    printed = capsys.readouterr().out
    assert printed.strip() == summary(model, (1, 8, 8)).strip()


def test_summary_input_errors():
    with pytest.raises(ValueError, match=r"input_shape must be the shape of one sample without the batch axis.*"
                                         r"got \(3, 0, 4\)"):
        summarize(small_model(), (3, 0, 4))
    with pytest.raises(ValueError, match=r"dtype_bytes must be an int >= 1.*got 0"):
        summarize(small_model(), (1, 8, 8), dtype_bytes=0)
    with pytest.raises(ValueError, match=r"Conv2d\(1, 4\) expects input of shape \(N, C, H, W\) with C = 1, "
                                         r"got \(1, 2, 8, 8\)"):
        summarize(small_model(), (2, 8, 8))
    with pytest.raises(ValueError, match=r"Linear\(64, 10\) expects input of shape \(N, 64\), got \(1, 100\)"):
        summarize(small_model(), (1, 10, 10))


# ----------------------------------------------------------------------------- receptive fields

def test_vgg16_receptive_field_reaches_212_after_pool5():
    model = vgg16()
    rows, fields = summarize(model, (3, 224, 224)).rows, receptive_fields(model, (3, 224, 224))
    assert len(fields) == len(rows)
    # by hand: block b of n convolutions at jump j adds 2nj (the 3x3 convolutions) + j (the 2x2 pool)
    pools = [(f.size, f.jump) for r, f in zip(rows, fields) if r.kind == "MaxPool2d"]
    assert pools == [((6, 6), (2, 2)), ((16, 16), (4, 4)), ((44, 44), (8, 8)), ((100, 100), (16, 16)),
                     ((212, 212), (32, 32))]
    first_fc = next(k for k, r in enumerate(rows) if r.kind == "Linear")
    assert fields[first_fc - 1].size == (212, 212)               # Flatten keeps it
    assert all(f.whole and f.size_text == "all" for f in fields[first_fc:])


def test_lenet_and_residual_fields_by_hand():
    # lenet: conv3 conv3 pool2 conv3 pool2 -> 3, 5, 6 (jump 2), 10, 12 (jump 4)
    fields = [(f.size_text, f.jump_text) for f, r in zip(receptive_fields(lenet(), (1, 8, 8)),
                                                        summarize(lenet(), (1, 8, 8)).rows)
              if r.kind in ("Input", "Conv2d", "MaxPool2d", "Linear")]
    assert fields == [("1", "1"), ("3", "1"), ("5", "1"), ("6", "2"), ("10", "2"), ("12", "4"),
                      ("all", "-"), ("all", "-")]
    # residual: stem 3; each block two 3x3 convolutions (+4 at jump 1, +8 at jump 2); the add sees what its block sees
    model = residual_net()
    rows, fields = summarize(model, (1, 8, 8)).rows, receptive_fields(model, (1, 8, 8))
    adds = [f.size[0] for r, f in zip(rows, fields) if r.kind == "Residual add"]
    assert adds == [7, 11, 12 + 8, 12 + 16]
    assert fields[-2].whole and fields[-1].whole                 # global average pooling, FC


def test_fields_with_dilation_rectangles_1d_and_no_spatial_axes():
    model = L.Sequential(L.Conv2d(1, 2, (3, 5), dilation=(2, 1), stride=(1, 2), allocate=False), L.ReLU(),
                         L.Conv2d(2, 2, 3, dilation=3, allocate=False))
    f = receptive_fields(model, (1, 32, 32))
    assert f[1].size == (5, 5) and f[1].jump == (1, 2)           # 1 + 2*2 ; 1 + 1*4
    assert f[3].size == (5 + 3 * 2 * 1, 5 + 3 * 2 * 2) == (11, 17) and f[3].jump == (1, 2)
    assert f[3].size_text == "11x17" and f[3].jump_text == "1x2"
    signal = L.Sequential(L.Conv1d(1, 2, 5, stride=2, allocate=False), L.Conv1d(2, 2, 3, allocate=False))
    assert [g.size for g in receptive_fields(signal, (1, 50))] == [(1,), (5,), (5 + 2 * 2,)]
    mlp = L.Sequential(L.Linear(10, 4, allocate=False), L.ReLU())
    assert [g.size_text for g in receptive_fields(mlp, (10,))] == ["-", "-", "-"]


def test_summary_with_receptive_field_adds_two_columns():
    model = small_model()
    plain, wide = summary(model, (1, 8, 8)), summary(model, (1, 8, 8), receptive_field=True)
    assert "receptive field" not in plain and wide.splitlines()[0].endswith("receptive field  jump")
    for a, b in zip(plain.splitlines()[2:12], wide.splitlines()[2:12]):
        assert b.startswith(a)
    assert plain.splitlines()[-3:] == wide.splitlines()[-3:]     # the totals unchanged


# ----------------------------------------------------------------------------- training memory

@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_training_memory_against_the_arrays_of_a_real_model(optimizer):
    model = small_model()
    s = summarize(model, (1, 8, 8))
    P = sum(p.data.size for p in model.parameters())
    state = sum(a.size for arrays in make_optimizer(optimizer, model.parameters(), 0.1).state.values()
                for a in arrays)
    m = training_memory(model, (1, 8, 8), batch_size=16, optimizer=optimizer)
    assert m.params == m.param_grads == P and m.optimizer_state == state
    assert m.activations == m.activation_grads == 16 * s.total_activations
    assert m.buffers == 8 and m.bytes == 4 * (2 * 16 * s.total_activations + 2 * P + state + 8)


def test_cli_every_built_in_model(capsys):
    assert set(MODELS) == {"lenet", "residual", "pattern", "mlp", "vgg16", "alexnet-conv1"}
    for name in MODELS:
        assert nbconv.cli.main(["summary", name]) == 0
        out = capsys.readouterr().out
        assert "receptive field  jump" in out and "training memory" not in out, name
    assert nbconv.cli.main(["summary", "lenet"]) == 0
    assert "62,378" in capsys.readouterr().out
    assert nbconv.cli.main(["summary", "pattern"]) == 0          # counted by hand in test_models_pattern.py
    assert "total parameters: 25,434" in capsys.readouterr().out


def test_cli_vgg16_receptive_field_and_training_memory(capsys):
    assert nbconv.cli.main(["summary", "vgg16", "--batch-size", "64", "--optimizer", "momentum"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^30 MaxPool2d .*\[512x7x7\] .* 212 +32$", out, re.M)
    assert re.search(r"^32 Linear .* all +-$", out, re.M)
    total = (2 * 64 * 15_237_608 + 3 * 138_357_544) * 4          # activations and gradients, P, grads, velocity
    assert f"{total:,}" in out and "(9.46 GB" in out
    assert "3x the parameters" in out and "at least 3x" in out
    assert nbconv.cli.main(["summary", "alexnet-conv1", "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^0 Conv2d .* 11 +4$", out, re.M) and "batch of 1, optimizer adam" in out
    assert f"{2 * 34_944:,}" in out and "4x the parameters" in out


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["--batch-size", "x"], "argument --batch-size: expected an integer, got 'x'"),
    (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
])
def test_cli_refuses_bad_memory_options(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        nbconv.cli.main(["summary", "lenet", *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
