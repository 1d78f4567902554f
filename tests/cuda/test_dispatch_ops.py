"""Device dispatch of every functional op: CUDA arrays in, the CUDA kernels, CUDA arrays out.

For every op (the cases of nbconv.gradcheck.device_cases, which cover every op of the registry
and the hyper-parameters that change the GPU path), forward and backward on device arrays must
equal the CPU path on NumPy copies (float64 to 1e-9, float32 to float32 precision), return device
arrays, keep every cached array on the device, and refuse host arrays mixed into the call.
"""

import dataclasses

import numpy as np
import pytest

import nbconv.functional as F
from nbconv import devices
from nbconv.gradcheck import all_cases
from nbconv.gradcheck.device_cases import cuda_cases

pytest.importorskip("numba_cuda", reason="the GPU path needs numba-cuda (pip install -e '.[dev]')")

# float64 to 1e-9; float32 to float32 precision (as tests/cuda/conftest.py's kernel comparisons)
TOLERANCE = {np.dtype(np.float64): dict(rtol=1e-9, atol=1e-9),
             np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5)}

pytestmark = [
    pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning"),
    pytest.mark.filterwarnings(r"ignore:\s*Compilation is falling back to object mode:numba.core.errors.NumbaWarning"),
]

CASES = cuda_cases()
IDS = [f"{c.op}-{c.label.split(',')[0].split(' (')[0]}-{k}" for k, c in enumerate(CASES)]


def _inputs(case, dtype, seed=0):
    """The case's inputs with its float arrays cast to ``dtype`` (integer targets as drawn)."""
    inputs = case.make_inputs(np.random.default_rng(seed))
    return [v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for v in inputs]


def _to_device(values):
    from numba import cuda
    return [cuda.to_device(v) if isinstance(v, np.ndarray) else v for v in values]


def _cached_arrays(cache, prefix="cache"):
    """(name, value) of every array-valued field of a cache, nested caches included."""
    for field in dataclasses.fields(cache):
        value = getattr(cache, field.name)
        name = f"{prefix}.{field.name}"
        if dataclasses.is_dataclass(value):
            yield from _cached_arrays(value, name)
        elif isinstance(value, np.ndarray) or devices.is_device_array(value):
            yield name, value


def _keywords(case):
    """The hyper-parameters a case binds with functools.partial."""
    return getattr(case.forward, "keywords", {})


def _is_training_dropout(case):
    return case.op == "dropout" and _keywords(case).get("training", True)


def _check_close(got, want, tol, what):
    assert isinstance(want, np.ndarray)
    assert devices.is_device_array(got), f"{what} is {type(got).__name__}, not a device array"
    host = got.copy_to_host()
    assert host.dtype == want.dtype and host.shape == want.shape, what
    np.testing.assert_allclose(host, want, err_msg=what, **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_and_backward_equal_the_cpu_path(case, dtype):
    tol = TOLERANCE[np.dtype(dtype)]
    host_inputs = _inputs(case, dtype)
    dev_inputs = _to_device(host_inputs)
    cpu_inputs = [v.copy() if isinstance(v, np.ndarray) else v for v in host_inputs]
    out, cache = case.forward(*cpu_inputs)
    dev_out, dev_cache = case.forward(*dev_inputs)

    rng = np.random.default_rng(1)
    scalar = np.ndim(out) == 0
    if scalar:                                 # a loss: a 0-d array on its input's device
        assert devices.is_device_array(dev_out) and dev_out.shape == () and dev_out.dtype == out.dtype
        assert float(dev_out) == pytest.approx(float(out), rel=tol["rtol"], abs=tol["atol"])
        dout = 0.7                              # on the device: a 0-d device array is accepted too
        dev_dout = _to_device([np.asarray(0.7, dtype=dtype)])[0]
    else:
        dout = rng.standard_normal(np.shape(out)).astype(dtype)
        dev_dout = _to_device([dout])[0]

    if _is_training_dropout(case):             # the same SplitMix64 mask on both devices (an int seed)
        np.testing.assert_array_equal(dev_cache.keep.copy_to_host(), cache.keep)
    if not scalar:
        _check_close(dev_out, out, tol, "out")

    grads = case.backward(dout, cache)
    dev_grads = case.backward(dev_dout, dev_cache)
    assert len(dev_grads) == len(grads)
    for name, g, dg in zip(list(case.names) + ["extra"] * len(grads), grads, dev_grads):
        if g is None:
            assert dg is None
        else:
            _check_close(dg, g, tol, f"d{name}")

    # batch norm in training updates its running statistics in place, on their device
    if case.op == "batch_norm" and _keywords(case).get("training", True):
        for k in (3, 4):
            assert not np.allclose(cpu_inputs[k], host_inputs[k])
            _check_close(dev_inputs[k], cpu_inputs[k], tol, f"running statistic {k}")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_cache_keeps_device_arrays(case):
    _, cache = case.forward(*_to_device(_inputs(case, np.float64)))
    arrays = list(_cached_arrays(cache))
    for name, value in arrays:
        assert devices.is_device_array(value), f"{name} is a {type(value).__name__}, not on the device"
    shape_only = case.op in ("avg_pool2d", "global_avg_pool2d") or \
        (case.op == "dropout" and not _is_training_dropout(case))
    assert bool(arrays) != shape_only, [name for name, _ in arrays]   # shape-only caches: dx goes where dout is


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_mixing_host_and_device_arrays_is_refused(case):
    inputs = _inputs(case, np.float64)
    floats = [k for k, v in enumerate(inputs) if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    if len(floats) >= 2:                        # the first float input on the device, the others on the host
        mixed = [v for v in inputs]
        mixed[floats[0]] = _to_device([inputs[floats[0]]])[0]
        with pytest.raises(TypeError, match=r"is a numpy\.ndarray on the host \(cpu\) but .* is a CUDA device "
                                            r"array \(cuda\); the arrays of one call must be on the same"):
            case.forward(*mixed)
    out, cache = case.forward(*_to_device(inputs))
    if np.ndim(out) == 0 or not list(_cached_arrays(cache)):
        return                                  # a loss's dout is a number; a shape-only cache follows dout
    with pytest.raises(TypeError, match=r"dout is a numpy\.ndarray on the host \(cpu\) but the forward's .* is a "
                                        r"CUDA device array"):
        case.backward(np.ones(np.shape(out)), cache)


def test_the_device_cases_cover_every_op_and_backward_of_the_registry():
    registry = all_cases()
    assert {c.op for c in CASES} == {c.op for c in registry}
    assert {c.backward for c in CASES} == {c.backward for c in registry}
    backwards = {getattr(F, name) for name in dir(F) if name.endswith("_backward")}
    assert backwards <= {c.backward for c in CASES}


def test_cross_entropy_target_must_be_on_the_device_and_in_range(monkeypatch):
    from numba import cuda
    monkeypatch.setenv("NBCONV_DEBUG", "1")            # the range of device targets: debug mode only
    logits = cuda.to_device(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="target is a numpy.ndarray on the host"):
        F.cross_entropy_forward(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target values must be class indices in \[0, 4\) for logits of shape "
                                         r"\(3, 4\), got values from -1 to 2"):
        F.cross_entropy_forward(logits, cuda.to_device(np.array([0, -1, 2])))
    with pytest.raises(TypeError, match="target has dtype float64; class targets must have an integer dtype"):
        F.cross_entropy_forward(logits, cuda.to_device(np.zeros(3)))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\)"):
        F.cross_entropy_forward(logits, cuda.to_device(np.zeros(2, dtype=np.int64)))


def test_bce_refuses_probabilities_outside_0_1_on_the_device(monkeypatch):
    from numba import cuda
    monkeypatch.setenv("NBCONV_DEBUG", "1")            # the range of device values: debug mode only
    p = cuda.to_device(np.array([0.5, 1.5, -0.25]))
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\].*got values from -0.25 to 1.5"):
        F.bce_forward(p, cuda.to_device(np.zeros(3)))


def test_softmax_on_every_axis_of_a_4d_device_array(rng):
    from numba import cuda
    x = rng.standard_normal((2, 3, 2, 4))
    for axis in range(-4, 4):
        s, _ = F.softmax_forward(x, axis=axis)
        ds, _ = F.log_softmax_forward(cuda.to_device(x), axis=axis)
        np.testing.assert_allclose(np.exp(ds.copy_to_host()), s, rtol=1e-12, atol=1e-12, err_msg=str(axis))


def test_a_loss_backward_takes_the_value_its_forward_returned(rng):
    from numba import cuda
    y, t = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    loss, cache = F.mse_forward(cuda.to_device(y), cuda.to_device(t))
    assert devices.is_device_array(loss) and loss.shape == ()
    np.testing.assert_allclose(float(loss), np.mean((y - t) ** 2), rtol=1e-12)
    (dy,) = F.mse_backward(loss, cache)
    np.testing.assert_allclose(dy.copy_to_host(), 2 * (y - t) / y.size * float(loss), rtol=1e-12)


def test_empty_batch_on_the_device():
    from numba import cuda
    y, cache = F.linear_forward(cuda.to_device(np.zeros((0, 3))), cuda.to_device(np.ones((2, 3))))
    assert devices.is_device_array(y) and y.shape == (0, 2)
    dx, dw, db = F.linear_backward(cuda.to_device(np.zeros((0, 2))), cache)
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(dw.copy_to_host(), np.zeros((2, 3)))
    out, _ = F.relu_forward(cuda.to_device(np.zeros((0, 4))))
    assert devices.is_device_array(out) and out.shape == (0, 4)
