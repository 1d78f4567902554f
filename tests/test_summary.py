"""Summaries: the notes' VGG16 table and AlexNet CONV1 from real layer definitions, and any model's totals."""

import math
import tracemalloc

import numpy as np
import pytest

import nbconv.cli
import nbconv.layers as L
from nbconv.summary import alexnet_conv1, im2col_sizes, summarize, summary, vgg16

# The notes' VGGNet table (seeds/003), one entry per CONV/POOL/FC row: (output H, W, C, weights without biases)
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
