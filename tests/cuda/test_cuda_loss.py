"""nbconv.kernels.cuda.loss against the CPU kernels; the device reduction.

The device forwards return the loss as a 0-d device array (nothing copied to the host); ``_read``
turns a launcher into one that returns the number, for the conftest's ``compare``.  The class
counts include 1 and counts that are not a multiple of the row block (ROW_THREADS = 32): 37
makes the block-stride loop wrap around once, with a partial second step.
"""

import numpy as np
import pytest

import nbconv.kernels.loss as K
import nbconv.kernels.cuda.loss as G
from nbconv import devices


def _read(forward):
    """forward(*args), its 0-d device array read back as a Python float."""
    def read(*args):
        loss = forward(*args)
        assert loss.shape == () and loss.dtype == args[0].dtype
        return float(loss.copy_to_host())
    return read


@pytest.mark.parametrize("shape", [(2, 37, 1), (2, 5, 3), (3, 1, 2)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax(rng, dtype, compare, op, shape):
    # x viewed as (A, C, B), one distribution over c for every (a, b), as on the CPU
    x = rng.standard_normal(shape) * 3
    x[0, :, 0] += 1000.0               # a large offset: exp only works after subtracting the max
    x[-1, :, -1] = 2.0                 # a uniform distribution
    x = x.astype(dtype)
    cpu = compare(getattr(K, f"{op}_forward"), getattr(G, f"{op}_forward"), x, np.full_like(x, np.nan))
    out = cpu[1]
    dout = rng.standard_normal(x.shape).astype(dtype)
    compare(getattr(K, f"{op}_backward"), getattr(G, f"{op}_backward"), out, dout, np.full_like(x, np.nan))


@pytest.mark.parametrize("N, C", [(1, 1), (3, 11), (2, 37)])
def test_cross_entropy(rng, dtype, compare, N, C):
    logits = (rng.standard_normal((N, C)) * 4).astype(dtype)
    target = rng.integers(0, C, N).astype(np.int64)
    cpu = compare(K.cross_entropy_forward, _read(G.cross_entropy_forward), logits, target,
                  np.full_like(logits, np.nan))
    probs = cpu[2]
    compare(K.cross_entropy_backward, G.cross_entropy_backward, probs, target, 0.7, np.full_like(logits, np.nan))


def _pair(rng, dtype, op):
    M = 23
    y = rng.standard_normal(M)
    t = rng.standard_normal(M)
    if op == "mae":
        y[:3] = t[:3]                  # |.| at its kink: sign(0) = 0
    if op == "bce":
        y = rng.uniform(0, 1, M)
        y[:4] = [0.0, 1.0, 1e-30, 1 - 1e-16]   # the clamps of log and of the gradient's denominator
        t = rng.uniform(0, 1, M)
        t[:2] = [1.0, 0.0]
    if op == "bce_with_logits":
        y = rng.standard_normal(M) * 5
        y[:2] = [60.0, -60.0]
        t = rng.uniform(0, 1, M)
    return y.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("op", ["mse", "mae", "bce", "bce_with_logits"])
def test_pair_losses(rng, dtype, compare, op):
    y, t = _pair(rng, dtype, op)
    compare(getattr(K, f"{op}_forward"), _read(getattr(G, f"{op}_forward")), y, t)
    compare(getattr(K, f"{op}_backward"), getattr(G, f"{op}_backward"), y, t, 1.3, np.full_like(y, np.nan))


def test_bce_nan_propagates(run_both):
    p, t = np.array([0.5, np.nan]), np.array([1.0, 0.0])
    _, _, cpu, gpu = run_both(K.bce_forward, _read(G.bce_forward), p, t)
    assert np.isnan(cpu) and np.isnan(gpu)


@pytest.mark.parametrize("M, blocks", [(1, 64), (300, 64), (300, 2), (1000, 3)])
def test_device_mean_against_numpy(rng, monkeypatch, M, blocks):
    # several blocks, and (with few blocks) threads that each add up several values
    from numba import cuda
    monkeypatch.setattr(G, "SUM_BLOCKS", blocks)
    values = rng.standard_normal(M)
    mean = G.device_mean(cuda.to_device(values))
    assert mean.shape == () and float(mean.copy_to_host()) == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)


def test_losses_stay_on_the_device(rng):
    from numba import cuda
    y, t = cuda.to_device(rng.standard_normal(5).astype(np.float32)), cuda.to_device(np.zeros(5, np.float32))
    loss = G.mse_forward(y, t)
    assert devices.is_device_array(loss) and loss.shape == () and loss.dtype == np.float32
