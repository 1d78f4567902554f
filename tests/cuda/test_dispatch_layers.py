"""Layers, optimizers, checkpoints and training on the GPU path (device arrays under the simulator)."""

import types

import numpy as np
import pytest

from nbconv import checkpoint, optim
from nbconv import devices
from nbconv.layers import (BatchNorm2d, Conv2d, Dropout, Flatten, GroupNorm, Linear, MaxPool2d, PReLU, Residual,
                           Sequential)

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:\s*Compilation is falling back to object mode:numba.core.errors.NumbaWarning"),
]


def _dev(a):
    from numba import cuda
    return cuda.to_device(a)


def _model(dtype=np.float64, seed=0):
    """Every kind of layer with state: conv (direct, no bias), batch norm buffers, a residual block,
    PReLU, group norm, pooling, flatten, linear."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 2, 3, padding=1, bias=False, method="direct", seed=rng, dtype=dtype),
        BatchNorm2d(2, dtype=dtype),
        PReLU(2, dtype=dtype),
        Residual(Sequential(Conv2d(2, 2, 3, padding=1, method="direct", seed=rng, dtype=dtype),
                            GroupNorm(1, 2, dtype=dtype))),
        MaxPool2d(2),
        Flatten(),
        Linear(8, 3, seed=rng, dtype=dtype),
    )


def _arrays(model):
    return [p.data for _, p in model.named_parameters()] + [p.grad for _, p in model.named_parameters()] + \
        [b for _, b in model.named_buffers()]


def test_to_moves_every_parameter_grad_and_buffer_and_back():
    model = _model()
    before = [np.array(a) for a in _arrays(model)]
    assert model.device == "cpu"
    assert model.to("cuda") is model
    assert model.device == "cuda"
    assert all(devices.is_device_array(a) for a in _arrays(model))
    assert model[1].running_mean is model[1].buffers()["running_mean"]
    assert devices.is_device_array(model[1].running_var)
    for a, b in zip(_arrays(model), before):
        np.testing.assert_array_equal(a.copy_to_host(), b)
    model.to("cuda")                                       # already there: nothing changes
    assert model.to("cpu").device == "cpu"
    for a, b in zip(_arrays(model), before):
        assert isinstance(a, np.ndarray)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda', got 'gpu'"):
        model.to("gpu")


def test_a_model_on_the_device_computes_what_it_computes_on_the_host(rng):
    x = rng.standard_normal((2, 1, 4, 4))
    dout = rng.standard_normal((2, 3))
    host, gpu = _model(), _model().to("cuda")
    for training in (True, False):
        host.train(training)
        gpu.train(training)
        y = host.forward(x)
        dy = gpu.forward(_dev(x))
        assert devices.is_device_array(dy)
        np.testing.assert_allclose(dy.copy_to_host(), y, rtol=1e-9, atol=1e-9)
        dx = host.backward(dout)
        ddx = gpu.backward(_dev(dout))
        assert devices.is_device_array(ddx)
        np.testing.assert_allclose(ddx.copy_to_host(), dx, rtol=1e-9, atol=1e-9)
        for (name, p), (_, q) in zip(host.named_parameters(), gpu.named_parameters()):
            assert devices.is_device_array(q.grad), name
            np.testing.assert_allclose(q.grad.copy_to_host(), p.grad, rtol=1e-9, atol=1e-9, err_msg=name)
        for (name, b), (_, c) in zip(host.named_buffers(), gpu.named_buffers()):     # running statistics
            np.testing.assert_allclose(c.copy_to_host(), b, rtol=1e-9, atol=1e-9, err_msg=name)
    gpu.zero_grad()
    assert all(not q.grad.copy_to_host().any() for q in gpu.parameters())
    with pytest.raises(TypeError, match="x is a numpy.ndarray on the host"):
        gpu.forward(x)                                     # a host batch into a model on the device


def test_dropout_layer_on_the_device_is_reproducible_from_its_seed(rng):
    x = rng.standard_normal((4, 5))
    outs = []
    for _ in range(2):
        layer = Dropout(0.5, seed=11).to("cuda")
        outs.append([layer.forward(_dev(x)).copy_to_host() for _ in range(2)])
    np.testing.assert_array_equal(outs[0][0], outs[1][0])   # the same seed, the same sequence of masks
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    assert ((outs[0][0] != 0) != (outs[0][1] != 0)).any()   # and a fresh mask at every forward
    for out in outs[0]:
        kept = out != 0
        np.testing.assert_allclose(out[kept], 2 * x[kept], rtol=1e-12)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_optimizer_step_on_the_device_equals_the_host_step(name, dtype, tol, rng):
    shapes = [(3, 4), (5,)]
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]

    def params(device):
        from nbconv.layers.base import Parameter
        return [Parameter(devices.to_device(v.copy(), device)) for v in values]

    host, gpu = params("cpu"), params("cuda")
    opt_host = optim.make_optimizer(name, host, 0.05, weight_decay=0.01)
    opt_gpu = optim.make_optimizer(name, gpu, 0.05, weight_decay=0.01)
    for step_grads in grads:
        for p, q, g in zip(host, gpu, step_grads):
            p.grad[...] = g
            devices.assign(q.grad, g)
        opt_host.step()
        opt_gpu.step()
    for p, q in zip(host, gpu):
        assert devices.is_device_array(q.data)
        np.testing.assert_allclose(q.data.copy_to_host(), p.data, rtol=tol, atol=tol)
    state_host, state_gpu = opt_host.state_dict(), opt_gpu.state_dict()
    assert state_host.keys() == state_gpu.keys()
    for key in state_host:
        assert isinstance(state_gpu[key], np.ndarray), key               # host copies
        np.testing.assert_allclose(state_gpu[key], state_host[key], rtol=tol, atol=tol, err_msg=key)
    opt_gpu.zero_grad()
    assert not any(q.grad.copy_to_host().any() for q in gpu)


def test_optimizer_state_follows_its_parameters_to_the_device_and_back(rng):
    model = Sequential(Linear(3, 2, seed=0, dtype=np.float64))
    opt = optim.Adam(model.parameters(), lr=0.1)
    model.to("cuda")                                     # after the optimizer was built
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    model.forward(_dev(x))
    model.backward(_dev(dout))
    opt.step()
    assert all(devices.is_device_array(a) for a in opt.state["m"] + opt.state["v"])
    saved = opt.state_dict()
    model.to("cpu")
    model.forward(x)
    model.backward(dout)
    opt.step()
    assert all(isinstance(a, np.ndarray) for a in opt.state["m"] + opt.state["v"])
    opt.load_state_dict(saved)
    np.testing.assert_array_equal(opt.state["m"][0], saved["m.0"])


def test_checkpoint_of_a_model_on_the_device(tmp_path, rng):
    model = _model().to("cuda")
    opt = optim.make_optimizer("momentum", model.parameters(), 0.1)
    model.forward(_dev(rng.standard_normal((2, 1, 4, 4))))          # running statistics change
    model.backward(_dev(rng.standard_normal((2, 3))))
    opt.step()
    path = checkpoint.save(tmp_path / "gpu.npz", model, opt, epoch=1)
    with np.load(path) as npz:                                       # plain host arrays in the file
        assert npz["param/0.w"].shape == (2, 1, 3, 3)
    host = _model(seed=5)
    assert checkpoint.load(path, host) == {"epoch": 1}
    for (name, p), (_, q) in zip(model.named_parameters(), host.named_parameters()):
        np.testing.assert_array_equal(q.data, p.data.copy_to_host(), err_msg=name)
    for (name, b), (_, c) in zip(model.named_buffers(), host.named_buffers()):
        np.testing.assert_array_equal(c, b.copy_to_host(), err_msg=name)
    other = _model(seed=7).to("cuda")                                # load into device arrays
    other_opt = optim.make_optimizer("momentum", other.parameters(), 0.1)
    checkpoint.load(path, other, other_opt)
    for (name, p), (_, q) in zip(model.named_parameters(), other.named_parameters()):
        assert devices.is_device_array(q.data)
        np.testing.assert_array_equal(q.data.copy_to_host(), p.data.copy_to_host(), err_msg=name)
    for a, b in zip(other_opt.state["v"], opt.state["v"]):
        np.testing.assert_array_equal(a.copy_to_host(), b.copy_to_host())


def _tiny_digits():
    """16 training and 8 validation images of the digits set, their central 4x4 pixels, float64
    (the simulator runs a Python thread per GPU thread: every pixel counts)."""
    from nbconv.data import load_digits
    d = load_digits(seed=0)
    crop = lambda x: np.ascontiguousarray(x[:, :, 2:6, 2:6], dtype=np.float64)
    return types.SimpleNamespace(x_train=crop(d.x_train[:16]), y_train=d.y_train[:16],
                                 x_val=crop(d.x_val[:8]), y_val=d.y_val[:8])


def test_training_on_the_device_follows_the_cpu_loss_curve():
    from nbconv import models
    from nbconv.training import evaluate, train
    data = _tiny_digits()
    histories, finals = [], []
    for device in ("cpu", "cuda"):
        model = models.lenet(method="direct", seed=3, channels=(2, 3), hidden=6, image_size=4,
                             dtype=np.float64).to(device)
        opt = optim.make_optimizer("adam", model.parameters(), 0.01)
        history = train(model, data, opt, epochs=2, batch_size=8, seed=1, progress=False,
                        schedule=optim.CosineLR(opt, total_epochs=2))
        histories.append(history)
        finals.append(evaluate(model, data.x_val, data.y_val))
        assert model.device == device
    cpu, gpu = histories
    assert len(cpu) == len(gpu) == 2
    for key in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
        np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-8, atol=1e-10, err_msg=key)
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-8)
    assert cpu.train_loss[1] < cpu.train_loss[0]              # it does learn


def test_the_cli_refuses_cuda_without_a_gpu(monkeypatch, capsys):
    from numba import cuda

    from nbconv.cli import main
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    assert main(["train", "--device", "cuda", "--epochs", "1", "--no-progress"]) == 2
    assert ("nbconv train: --device cuda: no CUDA GPU is available (numba.cuda.is_available() is False); "
            "without one, set NUMBA_ENABLE_CUDASIM=1") in capsys.readouterr().err
    assert main(["gradcheck", "--device", "cuda"]) == 2
    assert "nbconv gradcheck: --device cuda: no CUDA GPU is available" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--device", "tpu"])


def test_nbconv_train_on_the_device_end_to_end(monkeypatch, capsys):
    # the CLI's wiring: the model moved before the optimizer, batches copied, a test accuracy printed
    # (a tiny data set and model in place of digits' 1,167 images and LeNet's 32 channels)
    import dataclasses

    from nbconv import data, models
    from nbconv.cli import main
    full = data.load_digits(seed=0)
    crop = lambda x: np.ascontiguousarray(x[:, :, 2:6, 2:6])
    tiny = dataclasses.replace(full, x_train=crop(full.x_train[:16]), y_train=full.y_train[:16],
                               x_val=crop(full.x_val[:8]), y_val=full.y_val[:8],
                               x_test=crop(full.x_test[:8]), y_test=full.y_test[:8])
    monkeypatch.setattr(data, "load_digits", lambda seed: tiny)
    built = []
    original = models.lenet

    def tiny_lenet(method, seed, **variations):         # nbconv train's --no-bn, --dropout, ...
        built.append(original(method=method, seed=seed, channels=(2, 2), hidden=4, image_size=4, **variations))
        return built[-1]

    monkeypatch.setattr(models, "lenet", tiny_lenet)
    status = main(["train", "--device", "cuda", "--epochs", "1", "--batch-size", "8", "--shift", "0",
                   "--method", "direct", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    assert "device cuda" in out and "test accuracy:" in out.splitlines()[-1]
    assert built[0].device == "cuda"
