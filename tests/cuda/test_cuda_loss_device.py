"""The losses on the device through nbconv.functional: the loss stays there, and nothing is read back.

- a loss forward returns a 0-d device array of the input's dtype, equal to the CPU's loss, which
  float() (and format) read; its backward takes that array as dout without copying it to the host;
- the range checks of device values (class indices, bce's p) run only in the debug mode
  (NBCONV_DEBUG=1, docs/debug.md), with the CPU's ValueError; without it nothing is copied and
  the loss is NaN;
- nbconv.training reads the loss once per epoch on the device.

The copies to the host are counted by wrapping the device array class's ``copy_to_host`` (the
only way nbconv reads device memory).  Shapes are tiny: the simulator runs a Python thread per
GPU thread; 37 classes are one full step of the row block (32 threads) and a partial one.
"""

import numpy as np
import pytest

import nbconv.functional as F
from nbconv import devices


@pytest.fixture
def copies(monkeypatch):
    """The shapes of the device arrays copied to the host while the test runs, in order."""
    from numba import cuda
    cls = type(cuda.to_device(np.zeros(1)))
    original = cls.copy_to_host
    shapes = []

    def counted(self, *args, **kwargs):
        shapes.append(tuple(self.shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "copy_to_host", counted)
    return shapes


def _dev(a):
    from numba import cuda
    return cuda.to_device(a)


TOL = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14),      # device and CPU add in another order
       np.dtype(np.float32): dict(rtol=2e-6, atol=2e-7)}        # the device in float32, the CPU in float64


def _check_device_loss(loss, cpu_loss, dtype):
    """A 0-d device array of ``dtype``, whose float() is the CPU's loss."""
    assert devices.is_device_array(loss) and loss.shape == () and loss.dtype == dtype
    assert isinstance(cpu_loss, np.ndarray) and cpu_loss.shape == ()
    np.testing.assert_allclose(float(loss), float(cpu_loss), **TOL[dtype])


@pytest.mark.parametrize("variant", ["classes", "probabilities"])
@pytest.mark.parametrize("C", [1, 37])
def test_cross_entropy_stays_on_the_device_and_equals_the_cpu(rng, dtype, copies, C, variant):
    N = 3
    logits = (rng.standard_normal((N, C)) * 4).astype(dtype)
    logits[0, -1] += 1000.0          # exp overflows unless the row's max (this one) is subtracted
    if variant == "classes":
        target = rng.integers(0, C, N)
    else:
        target = rng.uniform(0, 1, (N, C)).astype(dtype)   # rows not summing to 1: the sum_k t factor
    cpu_loss, cpu_cache = F.cross_entropy_forward(logits, target)
    (cpu_grad,) = F.cross_entropy_backward(cpu_loss, cpu_cache)
    logits_d, target_d = _dev(logits), _dev(target)
    copies.clear()
    loss, cache = F.cross_entropy_forward(logits_d, target_d)
    (grad,) = F.cross_entropy_backward(loss, cache)           # dout: the device loss itself
    assert copies == []                                       # nothing read back, not even dout
    _check_device_loss(loss, cpu_loss, dtype)
    np.testing.assert_allclose(cache.probs.copy_to_host(), cpu_cache.probs, **TOL[dtype])
    np.testing.assert_allclose(grad.copy_to_host(), cpu_grad, **TOL[dtype])


@pytest.mark.parametrize("op", ["mse", "mae", "bce", "bce_with_logits"])
def test_the_mean_losses_stay_on_the_device_and_equal_the_cpu(rng, dtype, copies, op):
    # 150 elements: more than one block in the first pass of the mean, the last one partial
    shape = (10, 15)
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    if op in ("bce",):
        y, t = rng.uniform(0.02, 0.98, shape), rng.uniform(0, 1, shape)
    y, t = y.astype(dtype), t.astype(dtype)
    forward, backward = getattr(F, f"{op}_forward"), getattr(F, f"{op}_backward")
    cpu_loss, cpu_cache = forward(y, t)
    (cpu_grad,) = backward(cpu_loss, cpu_cache)
    y_d, t_d = _dev(y), _dev(t)
    copies.clear()
    loss, cache = forward(y_d, t_d)
    (grad,) = backward(loss, cache)
    assert copies == []
    _check_device_loss(loss, cpu_loss, dtype)
    assert grad.shape == shape
    np.testing.assert_allclose(grad.copy_to_host(), cpu_grad, **TOL[dtype])


def test_float_and_format_read_the_device_loss_and_repr_does_not(copies, rng):
    y = rng.standard_normal(4).astype(np.float32)
    loss, _ = F.mse_forward(_dev(y), _dev(np.zeros(4, np.float32)))
    assert "loss on the GPU" in repr(loss) and copies == []
    expected = float(np.mean(y.astype(np.float64) ** 2))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert f"{loss:.3f}" == f"{expected:.3f}"
    assert copies == [(), ()]                                  # one read each
    np.testing.assert_allclose(devices.to_host(loss), expected, rtol=1e-6)
    assert devices.device_of(dout=loss) == devices.CUDA        # still a device array for the ops


def test_a_number_or_a_device_array_as_dout_give_the_same_gradient(rng, copies):
    y, t = rng.standard_normal(5), rng.standard_normal(5)
    loss, cache = F.mse_forward(_dev(y), _dev(t))
    (from_number,) = F.mse_backward(0.25, cache)
    (from_device,) = F.mse_backward(_dev(np.array(0.25)), cache)
    assert copies == []
    expected = 2 * (y - t) / 5 * 0.25
    np.testing.assert_allclose(from_number.copy_to_host(), expected, rtol=1e-14)
    np.testing.assert_allclose(from_device.copy_to_host(), expected, rtol=1e-14)
    with pytest.raises(TypeError, match="dout has dtype float32 but the forward output has dtype float64"):
        F.mse_backward(_dev(np.array(0.25, np.float32)), cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(\), got \(2,\)"):
        F.mse_backward(_dev(np.ones(2)), cache)


def _message(call):
    with pytest.raises(ValueError) as caught:
        call()
    return str(caught.value)


def test_device_targets_are_range_checked_in_the_debug_mode_only(monkeypatch, copies):
    logits = np.zeros((3, 4))
    target = np.array([0, 4, 2])                               # 4 is not a class of 4
    cpu = _message(lambda: F.cross_entropy_forward(logits, target))
    assert "target values must be class indices in [0, 4)" in cpu
    logits_d, target_d = _dev(logits), _dev(target)

    monkeypatch.setenv("NBCONV_DEBUG", "1")
    assert _message(lambda: F.cross_entropy_forward(logits_d, target_d)) == cpu

    monkeypatch.setenv("NBCONV_DEBUG", "0")
    copies.clear()
    loss, _ = F.cross_entropy_forward(logits_d, target_d)
    assert copies == []                                        # no check, no copy
    assert np.isnan(float(loss))                               # the bad row's term is NaN
    monkeypatch.delenv("NBCONV_DEBUG")
    with pytest.raises(ValueError, match=r"target values must be class indices in \[0, 4\)"):
        F.cross_entropy_forward(logits, target)                # the host is checked always


def test_bce_probabilities_on_the_device_are_checked_in_the_debug_mode_only(monkeypatch, copies):
    p, t = np.array([0.5, 1.5, 0.25]), np.zeros(3)
    cpu = _message(lambda: F.bce_forward(p, t))
    p_d, t_d = _dev(p), _dev(t)
    monkeypatch.setenv("NBCONV_DEBUG", "1")
    assert _message(lambda: F.bce_forward(p_d, t_d)) == cpu
    monkeypatch.delenv("NBCONV_DEBUG")
    copies.clear()
    loss, _ = F.bce_forward(p_d, t_d)
    assert copies == [] and np.isnan(float(loss))


class _LogitsModel:
    """A stand-in model whose logits are the batch itself, on its device: a training step runs the
    loss kernels and nothing else (tests/cuda/test_dispatch_layers.py trains a real one)."""

    def __init__(self, device):
        self.device, self.training = device, True

    def train(self, mode=True):
        self.training = mode

    def eval(self):
        self.training = False

    def forward(self, x):
        return x

    def backward(self, dlogits):
        assert devices.array_device(dlogits) == self.device


class _NoStep:
    lr = 0.1

    def zero_grad(self):
        pass

    def step(self):
        pass


def test_training_on_the_device_reads_the_loss_once_per_epoch(rng, copies):
    import types

    from nbconv.training import train
    x = lambda n: rng.standard_normal((n, 7))
    # 13 training rows in batches of 6: 6 and 7 (a last batch of one is merged), weighted by their sizes
    data = types.SimpleNamespace(x_train=x(13), y_train=rng.integers(0, 7, 13), x_val=x(4), y_val=rng.integers(0, 7, 4))
    histories = []
    for device in ("cpu", "cuda"):
        copies.clear()
        histories.append(train(_LogitsModel(device), data, _NoStep(), epochs=2, batch_size=6, seed=1, progress=False))
    # per epoch: the logits of each batch (2-D, to count the correct predictions) and one array of
    # batch losses for training (2 batches), one for validation (1 batch); never a 0-d loss
    assert [s for s in copies if len(s) != 2] == [(2,), (1,)] * 2
    assert len([s for s in copies if len(s) == 2]) == (2 + 1) * 2
    cpu, gpu = histories
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        np.testing.assert_allclose(getattr(gpu, key), getattr(cpu, key), rtol=1e-12, err_msg=key)
