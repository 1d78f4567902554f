"""nbconv bench --train (nbconv.bench_train) on tiny nets: the step trains, the share table adds
up, the command prints and saves its tables.  No assertion on a time: machines are noisy."""

import argparse
import json

import numpy as np
import pytest

import nbconv.bench as bench
import nbconv.bench_train as bt
import nbconv.measure as measure
from nbconv.layers import (BatchNorm2d, Conv1d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, LayerNorm, Linear,
                           MaxPool2d, ReLU, Tanh, WSConv2d)

TINY = bt.NetSpec("tiny", batch=8, channels=(4, 8), hidden=16)
TINY_RGB = bt.NetSpec("tiny-rgb", batch=4, in_channels=3, image_size=12, channels=(2, 4), hidden=8)


@pytest.fixture(autouse=True)
def no_settle(monkeypatch):
    monkeypatch.setattr(measure, "SETTLE", 0.0)


def _args(**kw):
    return argparse.Namespace(**{"repeat": 2, "no_torch": False, "json": None, **kw})


def test_the_nets_are_the_briefs():
    nets = {spec.name: spec for spec in bt.NETS}
    assert list(nets) == ["digits", "cifar-small", "cifar-wide"]
    assert nets["digits"].input_shape == (64, 1, 8, 8)
    assert (nets["digits"].channels, nets["digits"].hidden) == ((32, 64), 128)
    assert nets["cifar-small"].input_shape == (64, 3, 32, 32)
    assert (nets["cifar-small"].channels, nets["cifar-small"].hidden) == ((32, 64), 256)
    assert nets["cifar-wide"].input_shape == (128, 3, 32, 32)
    assert (nets["cifar-wide"].channels, nets["cifar-wide"].hidden) == ((64, 128), 256)


def test_build_gives_float32_batch_and_adam():
    model, optimizer, x, y = bt.build(TINY_RGB)
    assert x.shape == (4, 3, 12, 12) and x.dtype == np.float32
    assert y.shape == (4,) and y.min() >= 0 and y.max() < 10
    assert type(optimizer).__name__ == "Adam" and optimizer.params == model.parameters()
    assert model.forward(x).shape == (4, 10)


def test_train_step_trains():
    model, optimizer, x, y = bt.build(TINY)
    losses = [bt.train_step(model, optimizer, x, y) for _ in range(8)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_instrumented_step_is_the_same_step():
    """Same weights after a clean and an instrumented step from the same start."""
    a, b = bt.build(TINY), bt.build(TINY)
    bt.train_step(*a)
    spent = bt.instrumented_step(*b)
    for pa, pb in zip(a[0].parameters(), b[0].parameters()):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-6, atol=1e-7)
    assert set(spent) == set(bt.PARTS) and all(s >= 0 for s in spent.values())
    assert all(spent[part] > 0 for part in bt.PARTS)         # lenet has every kind of part


def test_time_steps_alternates_clean_and_instrumented_steps():
    model, optimizer, x, y = bt.build(TINY)
    measured = bt.time_steps(model, optimizer, x, y, steps=3, warmup=1)
    assert len(measured.times) == 3 and len(measured.losses) == 3
    assert all(t > 0 for t in measured.times)
    assert set(measured.parts) == set(bt.PARTS)
    assert optimizer.t == 1 + 2 * 3                          # warm-up, then a clean and an instrumented step each round


def test_layers_are_classified_by_class():
    assert bt.layer_part(Conv2d(1, 2, 3)) == "conv"
    assert bt.layer_part(WSConv2d(1, 2, 3)) == "conv"
    assert bt.layer_part(Conv1d(1, 2, 3)) == "conv"
    assert bt.layer_part(Linear(2, 3)) == "linear"
    assert bt.layer_part(BatchNorm2d(2)) == "normalization"
    assert bt.layer_part(LayerNorm(4)) == "normalization"
    assert bt.layer_part(ReLU()) == "activations"
    assert bt.layer_part(Tanh()) == "activations"
    assert bt.layer_part(MaxPool2d(2)) == "pooling"
    assert bt.layer_part(GlobalAvgPool2d()) == "pooling"
    assert bt.layer_part(Flatten()) is None
    assert bt.layer_part(Dropout(0.5)) is None


def test_share_table_adds_up_to_the_total():
    parts = {part: 0.001 * (k + 1) for k, part in enumerate(bt.PARTS)}
    rows = bt.share_table(0.05, parts)
    assert [r.part for r in rows] == list(bt.PARTS) + [bt.REST]
    assert sum(r.seconds for r in rows) == pytest.approx(0.05)
    assert sum(r.fraction for r in rows) == pytest.approx(1.0)
    assert rows[-1].seconds == pytest.approx(0.05 - sum(parts.values()))


def test_bench_net_measures_a_tiny_net():
    result = bt.bench_net(TINY, steps=2, warmup=1)
    assert len(result.times) == 2 and result.best <= result.median
    assert sum(s.seconds for s in result.shares) == pytest.approx(result.best)
    assert result.torch_seconds is None and result.ratio is None and result.torch_status == "not installed"
    assert result.parameters == sum(p.data.size for p in bt.build(TINY)[0].parameters())
    text = bt.format_net(result)
    for part in bt.PARTS + (bt.REST, "total", "best", "median"):
        assert part in text, part


def test_cli_prints_the_tables_and_saves_json(tmp_path, capsys, monkeypatch):
    from nbconv.cli import main

    monkeypatch.setattr(bt, "NETS", (TINY, TINY_RGB))
    out = tmp_path / "train.json"
    assert main(["bench", "--train", "--repeat", "2", "--no-torch", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for expected in ("nbconv bench --train", "CPU:", "BLAS", "tiny:", "tiny-rgb:", "conv", "linear",
                     "normalization", "activations", "pooling", "loss", "optimizer", "the rest", "total",
                     "best ms", "median ms", "torch ms", "ours/torch", "off (--no-torch)", "saved"):
        assert expected in text, expected
    saved = json.loads(out.read_text())
    assert saved["statistic"] == "best" and saved["steps"] == 2 and saved["warmup"] == bt.WARMUP
    assert [n["name"] for n in saved["nets"]] == ["tiny", "tiny-rgb"]
    for net in saved["nets"]:
        assert len(net["times"]) == 2 and net["best"] == min(net["times"])
        assert [s["part"] for s in net["shares"]] == list(bt.PARTS) + [bt.REST]
        assert sum(s["seconds"] for s in net["shares"]) == pytest.approx(net["best"])
        assert net["torch_seconds"] is None and net["ratio"] is None


def test_missing_torch_says_not_installed(capsys, monkeypatch):
    monkeypatch.setattr(measure, "torch_module", lambda: None)
    assert bt.run(_args(repeat=1), nets=(TINY,)) == 0
    text = capsys.readouterr().out
    assert "PyTorch: not installed" in text
    summary_row = next(line for line in text.splitlines() if line.startswith("tiny "))
    assert "not installed" in summary_row


def test_bench_without_train_is_unchanged():
    """--train is off by default, and the kernel bench's parser still takes its options."""
    import argparse as ap

    parser = ap.ArgumentParser()
    bench.register(parser.add_subparsers())
    args = parser.parse_args(["bench", "--op", "relu", "--repeat", "1"])
    assert args.train is False and args.func is bench.run and args.op == ["relu"]


def test_torch_twin_is_the_same_net():
    """Only where torch happens to be installed: the same logits, and a step time."""
    torch = pytest.importorskip("torch")
    model, _, x, y = bt.build(TINY_RGB)
    net = bt.torch_net(torch, model)
    np.testing.assert_allclose(net(torch.from_numpy(x)).detach().numpy(), model.forward(x), rtol=1e-4, atol=1e-5)
    assert bt.torch_step_time(torch, model, x, y, steps=1) > 0
    result = bt.bench_net(TINY, steps=1, warmup=1, torch=torch)
    assert result.torch_status.startswith("PyTorch") and result.ratio > 0


def test_threads_limits_the_run_and_restores_the_setting(capsys, monkeypatch):
    import numba

    from nbconv.cli import main

    monkeypatch.setattr(bt, "NETS", (TINY,))
    seen = []
    real = bt.time_steps

    def spy(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(bt, "time_steps", spy)
    before = numba.get_num_threads()
    assert main(["bench", "--train", "--repeat", "1", "--no-torch", "--threads", "1"]) == 0
    assert seen == [1] and numba.get_num_threads() == before
    assert "numba" in capsys.readouterr().out
