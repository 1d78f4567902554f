"""nbconv.kernels.cuda.dropout: the device mask is the CPU's (SplitMix64), the apply kernels the CPU's."""

import math

import numpy as np
import pytest

import nbconv.kernels.dropout as K
import nbconv.kernels.cuda.dropout as G

# the simulator runs the device function in Python, on uint64 NumPy scalars that wrap around by
# design (and warn when they do)
pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
]


def _reference_keep(M, p, seed):
    """The documented mask, independently: z_i = mix(seed + (i + 1) GAMMA) (SplitMix64's i-th
    output) on uint64 arrays, unit i kept where (z_i >> 11) * 2^-53 >= p."""
    u = np.uint64
    z = u(seed % 2**64) + (np.arange(M, dtype=u) + u(1)) * u(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z = z ^ (z >> u(31))
    return (z >> u(11)).astype(np.float64) * 2.0**-53 >= p


def _mask(M, p, seed, fill=False):
    from numba import cuda
    keep = cuda.to_device(np.full(M, fill, dtype=np.bool_))
    G.dropout_mask(keep, p, seed)
    return keep.copy_to_host()


def _threshold(p):
    return math.ceil(p * 2.0**53)


def test_the_reference_gives_splitmix64s_published_outputs():
    # seed 0's first outputs 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F
    u = [(z >> 11) * 2.0**-53 for z in (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F)]
    for p in (0.05, 0.5, 0.9):
        np.testing.assert_array_equal(_reference_keep(3, p, 0), [v >= p for v in u])


@pytest.mark.parametrize("p, seed", [(0.3, 7), (0.5, 2**64 - 1), (0.8, 123456789)])
def test_device_mask_equals_the_cpu_mask(p, seed):
    M = 300
    keep = _mask(M, p, seed, fill=True)                  # an element left unwritten stays True
    np.testing.assert_array_equal(keep, _reference_keep(M, p, seed))
    cpu_keep, cpu_out = np.zeros(M, np.bool_), np.empty(M)
    K.dropout_forward(np.ones(M), np.uint64(seed), _threshold(p), 1.0, cpu_keep, cpu_out)
    np.testing.assert_array_equal(keep, cpu_keep)
    assert keep.any() and not keep.all()


def test_mask_extremes_and_reproducibility():
    assert _mask(40, 0.0, seed=1, fill=False).all()            # p = 0 keeps every unit
    assert not _mask(40, 1.0, seed=1, fill=True).any()         # p = 1 drops every unit
    a, b, c = _mask(100, 0.5, seed=3), _mask(100, 0.5, seed=3), _mask(100, 0.5, seed=4)
    np.testing.assert_array_equal(a, b)                          # same seed, same mask
    assert (a != c).any()                                         # another seed, another mask
    # every element written: the same mask over a mask filled with False or with True
    np.testing.assert_array_equal(_mask(200, 0.4, 11, fill=False), _mask(200, 0.4, 11, fill=True))


def test_mask_empty():
    assert _mask(0, 0.5, 1).shape == (0,)


def test_forward_draws_the_cpu_mask_and_backward_reuses_it(rng, dtype, compare):
    # the forward kernels on both devices: the same mask (exactly), the same output
    M, p, seed = 260, 0.3, 5                            # three blocks, the last partly idle
    T, scale = _threshold(p), 1.0 / (1.0 - p)
    x = rng.standard_normal(M).astype(dtype)
    keep0 = np.zeros(M, np.bool_)
    _, _, _, _, keep, out = compare(K.dropout_forward, G.dropout_forward, x, np.uint64(seed), T, scale,
                                    keep0, np.full(M, np.nan, dtype))
    np.testing.assert_array_equal(keep, _reference_keep(M, p, seed))
    assert keep.any() and not keep.all()
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
    M, p, seed = 80, 0.5, 2024
    x = rng.standard_normal(M)
    keep = cuda.device_array(M, dtype=np.bool_)
    out, dx = cuda.device_array(M), cuda.device_array(M)
    G.dropout_forward(cuda.to_device(x), np.uint64(seed), _threshold(p), 2.0, keep, out)
    G.dropout_backward(cuda.to_device(np.ones(M)), keep, 2.0, dx)
    k = keep.copy_to_host()
    np.testing.assert_array_equal(k, _reference_keep(M, p, seed))
    np.testing.assert_array_equal(k, _mask(M, p, seed))           # dropout_mask draws the forward's mask
    np.testing.assert_array_equal(out.copy_to_host(), np.where(k, 2 * x, 0.0))
    np.testing.assert_array_equal(dx.copy_to_host(), np.where(k, 2.0, 0.0))


def test_functional_dropout_on_the_device_equals_the_cpu(rng):
    # nbconv.functional end to end: the same seed (an int, or a Generator's draw) and p give the
    # same mask and output on the device as on the host
    from numba import cuda
    import nbconv.functional as F
    x = rng.standard_normal((3, 4, 5))
    for seed in (17, np.random.default_rng(4)):
        host_seed = seed if isinstance(seed, int) else np.random.default_rng(4)
        out, cache = F.dropout_forward(x, p=0.4, seed=host_seed)
        dev_out, dev_cache = F.dropout_forward(cuda.to_device(x), p=0.4, seed=seed)
        np.testing.assert_array_equal(dev_cache.keep.copy_to_host(), cache.keep)
        np.testing.assert_allclose(dev_out.copy_to_host(), out, rtol=1e-15, atol=0)
