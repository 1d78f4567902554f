"""nbconv.kernels.simd, the explicit vectors of the blocked convolution, against plain NumPy:
lane counts, masked loads and stores (nothing read or written past the count), the fused
multiply-add's single rounding, the horizontal sum's tree order, and typing errors."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from nbconv.kernels import simd


@njit(cache=True)
def _lanes(a):
    return simd.lanes(a)


@njit(cache=True)
def _copy(src, i, count, dst, j):
    """dst[j + l] = src[i + l] for l < count, through one vector (count <= lanes)."""
    simd.store(dst, j, simd.load(src, i, count), count)


@njit(cache=True)
def _load_lanes(src, i, count, out):
    """All the lanes of load(src, i, count), masked ones included, into out."""
    simd.store(out, 0, simd.load(src, i, count), simd.lanes(src))


@njit(cache=True)
def _fma(a, b, c, out):
    simd.store(out, 0, simd.fma(simd.load(a, 0, simd.lanes(a)), simd.load(b, 0, simd.lanes(a)),
                                simd.load(c, 0, simd.lanes(a))), simd.lanes(a))


@njit(cache=True)
def _splat_zeros(a, s, out):
    lanes = simd.lanes(a)
    simd.store(out, 0, simd.splat(a, s), lanes)
    simd.store(out, lanes, simd.zeros(a), lanes)


@njit(cache=True)
def _hsum(a):
    return simd.hsum(simd.load(a, 0, simd.lanes(a)))


DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_a_vector_is_64_bytes(dtype, lanes):
    assert _lanes(np.zeros(1, dtype)) == lanes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count", [-3, 0, 1, 5, 7, 8, 15, 16, 40])
def test_masked_load_and_store_touch_only_the_first_count_elements(dtype, count):
    lanes = 64 // np.dtype(dtype).itemsize
    src = np.arange(1, 60, dtype=dtype)
    dst = np.full(60, -1.0, dtype)
    _copy(src, 3, count, dst, 10)
    copied = max(0, min(count, lanes))
    expected = np.full(60, -1.0, dtype)
    expected[10:10 + copied] = src[3:3 + copied]
    np.testing.assert_array_equal(dst, expected)
    lanes_out = np.full(lanes, -1.0, dtype)
    _load_lanes(src, 3, count, lanes_out)
    np.testing.assert_array_equal(lanes_out, np.where(np.arange(lanes) < copied, src[3:3 + lanes], 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_masked_load_stops_at_the_end_of_its_array(dtype):
    # the last 3 elements of an array, read with count 3 through a view that ends there: the
    # masked lanes are not read (an unmasked load would read past the end)
    src = np.arange(1, 4, dtype=dtype)
    out = np.empty(64 // np.dtype(dtype).itemsize, dtype)
    _load_lanes(src, 0, 3, out)
    np.testing.assert_array_equal(out[:3], src)
    assert (out[3:] == 0).all()


@pytest.mark.parametrize("dtype, eps", [(np.float32, 2.0**-12), (np.float64, 2.0**-27)])
def test_fma_rounds_once(dtype, eps):
    # a = 1 + eps: a*a = 1 + 2 eps + eps^2, whose eps^2 is below the format's precision, so
    # a*a - round(a*a) is eps^2 with one rounding and 0 with two
    lanes = 64 // np.dtype(dtype).itemsize
    a = np.full(lanes, 1 + eps, dtype)
    c = np.full(lanes, -(a[0] * a[0]), dtype)
    assert c[0] == -(1 + 2 * eps)
    out = np.empty(lanes, dtype)
    _fma(a, a, c, out)
    np.testing.assert_array_equal(out, np.full(lanes, eps * eps, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fma_is_a_times_b_plus_c_lane_by_lane(dtype, rng):
    lanes = 64 // np.dtype(dtype).itemsize
    a, b, c = (rng.standard_normal(lanes).astype(dtype) for _ in range(3))
    out = np.empty(lanes, dtype)
    _fma(a, b, c, out)
    exact = a.astype(np.longdouble) * b + c
    np.testing.assert_allclose(out, exact.astype(dtype), rtol=np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_splat_casts_to_the_array_type_and_zeros_are_zero(dtype):
    lanes = 64 // np.dtype(dtype).itemsize
    out = np.full(2 * lanes, -1.0, dtype)
    _splat_zeros(np.zeros(1, dtype), 0.1, out)               # a Python float, cast once
    np.testing.assert_array_equal(out[:lanes], np.full(lanes, dtype(0.1)))
    np.testing.assert_array_equal(out[lanes:], 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hsum_adds_halves_in_a_fixed_tree(dtype):
    lanes = 64 // np.dtype(dtype).itemsize
    v = np.arange(1, lanes + 1, dtype=dtype)
    assert _hsum(v) == lanes * (lanes + 1) / 2
    # large and small terms: the tree's order (upper half onto lower half), not left to right
    v = np.ones(lanes, dtype)
    v[0], v[lanes // 2] = dtype(1e30 if dtype == np.float32 else 1e300), -dtype(1e30 if dtype == np.float32 else 1e300)
    tree = v.copy()
    while tree.size > 1:
        half = tree.size // 2
        tree = tree[:half] + tree[half:]
    assert _hsum(v) == tree[0] == lanes - 2


def test_non_float_arrays_are_refused_when_compiled():
    @njit
    def load_ints(a):
        return simd.hsum(simd.load(a, 0, 4))

    with pytest.raises(TypingError, match="simd: expected a float array"):
        load_ints(np.arange(8))


@njit(cache=True)
def _copy_and_fill(dst, i, src, j, count, zero_at, zero_count):
    simd.copy(dst, i, src, j, count)
    simd.fill_zeros(dst, zero_at, zero_count)


@njit(cache=True)
def _add(a, b, out):
    lanes = simd.lanes(a)
    simd.store(out, 0, simd.add(simd.load(a, 0, lanes), simd.load(b, 0, lanes)), lanes)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("count", [0, 1, 15, 16, 17, 33, 50])
def test_copy_and_fill_zeros_write_exactly_their_range(dtype, count):
    src = np.arange(1, 81, dtype=dtype)
    dst = np.full(120, -1.0, dtype)
    _copy_and_fill(dst, 5, src, 7, count, 70, count // 2)
    expected = np.full(120, -1.0, dtype)
    expected[5:5 + count] = src[7:7 + count]
    expected[70:70 + count // 2] = 0
    np.testing.assert_array_equal(dst, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_is_lane_by_lane(dtype, rng):
    lanes = 64 // np.dtype(dtype).itemsize
    a, b = rng.standard_normal(lanes).astype(dtype), rng.standard_normal(lanes).astype(dtype)
    out = np.empty(lanes, dtype)
    _add(a, b, out)
    np.testing.assert_array_equal(out, a + b)


@njit(cache=True)
def _gather_lanes(src, i, stride, count, out):
    """All the lanes of gather(src, i, stride, count), masked ones included, into out."""
    simd.store(out, 0, simd.gather(src, i, stride, count), simd.lanes(src))


@njit(cache=True)
def _broadcast_lanes(src, i, out):
    simd.store(out, 0, simd.broadcast(src, i), simd.lanes(src))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 3, 7, 64])
@pytest.mark.parametrize("count", [-2, 0, 1, 5, 8, 16, 30])
def test_gather_reads_a_strided_column_and_zeros_past_count(dtype, stride, count):
    lanes = 64 // np.dtype(dtype).itemsize
    src = np.full(5 + 64 * 16, np.nan, dtype)                 # NaN wherever no lane should read
    column = 5 + stride * np.arange(lanes)
    src[column] = np.arange(1, lanes + 1)
    out = np.full(lanes, -1.0, dtype)
    _gather_lanes(src, 5, stride, count, out)
    taken = max(0, min(count, lanes))
    np.testing.assert_array_equal(out, np.where(np.arange(lanes) < taken, np.arange(1, lanes + 1), 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_gather_stops_at_the_end_of_its_array(dtype):
    # a column of 3 whose next lane would lie past the array's end: not read
    src = np.arange(1, 8, dtype=dtype)                        # 1 ... 7
    out = np.empty(64 // np.dtype(dtype).itemsize, dtype)
    _gather_lanes(src, 0, 3, 3, out)
    np.testing.assert_array_equal(out[:3], [1, 4, 7])
    assert (out[3:] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_is_one_element_in_every_lane(dtype, rng):
    src = rng.standard_normal(40).astype(dtype)
    out = np.empty(64 // np.dtype(dtype).itemsize, dtype)
    for i in (0, 17, 39):
        _broadcast_lanes(src, i, out)
        np.testing.assert_array_equal(out, np.full(out.size, src[i]))


@njit(cache=True)
def _scatter_lanes(src, dst, i, stride, count):
    """scatter(dst, i, stride, <the first lanes of src>, count)."""
    simd.scatter(dst, i, stride, simd.load(src, 0, simd.lanes(src)), count)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2, 5])
@pytest.mark.parametrize("count", [-1, 0, 1, 6, 8, 16, 20])
def test_scatter_writes_exactly_a_strided_column(dtype, stride, count):
    lanes = 64 // np.dtype(dtype).itemsize
    src = np.arange(1, lanes + 1, dtype=dtype)
    dst = np.full(3 + 5 * 16 + 1, -1.0, dtype)
    _scatter_lanes(src, dst, 3, stride, count)
    expected = np.full(dst.size, -1.0, dtype)
    written = max(0, min(count, lanes))
    expected[3 + stride * np.arange(written)] = src[:written]
    np.testing.assert_array_equal(dst, expected)


@njit(cache=True)
def _copy_strided(dst, i, dst_stride, src, j, src_stride, count):
    simd.copy_strided(dst, i, dst_stride, src, j, src_stride, count)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dst_stride, src_stride", [(1, 1), (1, 2), (3, 1), (2, 3)])
@pytest.mark.parametrize("count", [0, 1, 17, 40])
def test_copy_strided_moves_count_elements_between_strided_runs(dtype, dst_stride, src_stride, count):
    src = np.arange(1, 200, dtype=dtype)
    dst = np.full(200, -1.0, dtype)
    _copy_strided(dst, 4, dst_stride, src, 2, src_stride, count)
    expected = np.full(200, -1.0, dtype)
    expected[4 + dst_stride * np.arange(count)] = src[2 + src_stride * np.arange(count)]
    np.testing.assert_array_equal(dst, expected)


@njit(cache=True)
def _shuffles(a, b, out):
    """interleave_low, interleave_high, even_lanes, odd_lanes of the vectors a, b: rows 0-3 of out."""
    n = simd.lanes(a)
    p, q = simd.load(a, 0, n), simd.load(b, 0, n)
    row = out.reshape(-1)
    simd.store(row, 0, simd.interleave_low(p, q), n)
    simd.store(row, n, simd.interleave_high(p, q), n)
    simd.store(row, 2 * n, simd.even_lanes(p, q), n)
    simd.store(row, 3 * n, simd.odd_lanes(p, q), n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_interleaves_zip_two_vectors_and_even_odd_lanes_unzip_them(dtype):
    n = 64 // np.dtype(dtype).itemsize
    a, b = np.arange(n, dtype=dtype), np.arange(100, 100 + n, dtype=dtype)
    out = np.empty((4, n), dtype)
    _shuffles(a, b, out)
    zipped = np.stack([a, b], axis=1).reshape(-1)              # a0 b0 a1 b1 ...
    np.testing.assert_array_equal(out[0], zipped[:n])
    np.testing.assert_array_equal(out[1], zipped[n:])
    both = np.concatenate([a, b])
    np.testing.assert_array_equal(out[2], both[0::2])
    np.testing.assert_array_equal(out[3], both[1::2])
    # and the round trip: the even and odd lanes of the two interleaves are a and b again
    again = np.empty((4, n), dtype)
    _shuffles(out[0].copy(), out[1].copy(), again)
    np.testing.assert_array_equal(again[2], a)
    np.testing.assert_array_equal(again[3], b)
