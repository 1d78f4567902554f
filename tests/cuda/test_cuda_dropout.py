"""nbconv.kernels.cuda.dropout: the apply kernels against the CPU's, the device mask's statistics."""

import numpy as np
import pytest

import nbconv.kernels.dropout as K
import nbconv.kernels.cuda.dropout as G

# the simulator runs numba's xoroshiro128+ in Python (object mode), on uint64 numpy scalars
# that wrap around by design
pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:\s*Compilation is falling back to object mode:numba.core.errors.NumbaWarning"),
]

FEW_STREAMS = 64     # the simulator seeds each generator state in Python, ~5 ms apiece


def _mask(M, p, seed, fill=False):
    from numba import cuda
    keep = cuda.to_device(np.full(M, fill, dtype=np.bool_))
    G.dropout_mask(keep, p, seed)
    return keep.copy_to_host()


@pytest.mark.parametrize("p", [0.3, 0.5, 0.8])
def test_mask_keeps_a_fraction_one_minus_p(monkeypatch, p):
    monkeypatch.setattr(G, "MAX_RNG_STREAMS", FEW_STREAMS)
    M = 1500
    keep = _mask(M, p, seed=7)
    # keep[i] ~ Bernoulli(1 - p) independently: the kept fraction is within 5 standard deviations
    sigma = np.sqrt(p * (1 - p) / M)
    assert abs(keep.mean() - (1 - p)) < 5 * sigma
    # no long-range structure: both halves and the even/odd elements keep about as many
    for part in (keep[: M // 2], keep[M // 2:], keep[::2], keep[1::2]):
        assert abs(part.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / part.size)


def test_mask_extremes_and_reproducibility():
    assert _mask(40, 0.0, seed=1, fill=False).all()            # p = 0 keeps every unit
    assert not _mask(40, 1.0, seed=1, fill=True).any()         # p = 1 drops every unit
    a, b, c = _mask(100, 0.5, seed=3), _mask(100, 0.5, seed=3), _mask(100, 0.5, seed=4)
    np.testing.assert_array_equal(a, b)                          # same seed, same mask
    assert (a != c).any()                                         # another seed, another mask


def test_mask_with_fewer_streams_than_elements(monkeypatch):
    # every thread draws for several elements; all of them written, the statistics unchanged
    monkeypatch.setattr(G, "MAX_RNG_STREAMS", 16)
    M, p = 1000, 0.4
    filled_false, filled_true = _mask(M, p, 11, fill=False), _mask(M, p, 11, fill=True)
    np.testing.assert_array_equal(filled_false, filled_true)
    assert abs(filled_false.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / M)


def test_mask_empty():
    assert _mask(0, 0.5, 1).shape == (0,)


def test_forward_and_backward_match_cpu_and_reuse_the_mask(rng, dtype, compare):
    M, p = 60, 0.3
    keep = _mask(M, p, seed=5)
    assert keep.any() and not keep.all()
    scale = 1.0 / (1.0 - p)
    x = rng.standard_normal(M).astype(dtype)
    out = compare(K.dropout_forward, G.dropout_forward, x, keep, scale, np.full(M, np.nan, dtype))[3]
    dout = rng.standard_normal(M).astype(dtype)
    dx = compare(K.dropout_backward, G.dropout_backward, dout, keep, scale, np.full(M, np.nan, dtype))[3]
    # the backward drops exactly the units the forward dropped, and scales the rest alike
    np.testing.assert_array_equal(out != 0, keep)
    np.testing.assert_array_equal(dx != 0, keep)
    np.testing.assert_allclose(dx[keep], dout[keep] * scale, rtol=1e-6)
    np.testing.assert_allclose(out[keep], x[keep] * scale, rtol=1e-6)


def test_all_on_device(rng):
    # the GPU path end to end: mask drawn on the device, forward, backward, nothing from the host
    from numba import cuda
    M, p = 80, 0.5
    x = rng.standard_normal(M)
    keep = cuda.device_array(M, dtype=np.bool_)
    G.dropout_mask(keep, p, 2024)
    out, dx = cuda.device_array(M), cuda.device_array(M)
    G.dropout_forward(cuda.to_device(x), keep, 2.0, out)
    G.dropout_backward(cuda.to_device(np.ones(M)), keep, 2.0, dx)
    k = keep.copy_to_host()
    np.testing.assert_array_equal(out.copy_to_host(), np.where(k, 2 * x, 0.0))
    np.testing.assert_array_equal(dx.copy_to_host(), np.where(k, 2.0, 0.0))
