"""The errors a student meets when using the functional pairs and the layers: each names the
thing that is wrong and the fix (a wrong cache, backward before forward, float64 data into a
float32 layer, a wrong input shape, and where in a Sequential it happened)."""

import inspect
import re
import traceback

import numpy as np
import pytest

import nbconv.functional as F
import nbconv.layers as L

BACKWARDS = sorted(name for name in dir(F) if name.endswith("_backward") and not name.startswith("_"))


# --------------------------------------------------------------------------- 1. the cache of a functional backward

def test_every_public_backward_is_covered():
    assert len(BACKWARDS) >= 29
    for name in BACKWARDS:
        assert hasattr(F, name.replace("_backward", "_forward")), name


def _cache_type(name: str) -> str:
    """The cache class a backward documents in its signature (a string under postponed annotations)."""
    annotation = inspect.signature(getattr(F, name)).parameters["cache"].annotation
    return annotation if isinstance(annotation, str) else annotation.__name__


@pytest.mark.parametrize("name", BACKWARDS)
def test_every_backward_refuses_none_and_the_whole_pair(name):
    backward, forward = getattr(F, name), name.replace("_backward", "_forward")
    cache_type = _cache_type(name)
    assert cache_type.endswith("Cache") and hasattr(F, cache_type)
    with pytest.raises(TypeError, match=rf"^cache must be the {cache_type} that {forward} returned, got None$"):
        backward(np.zeros(3), None)
    pair = (np.zeros(3), object())
    with pytest.raises(TypeError, match=rf"^cache must be the {cache_type} that {forward} returned, got a tuple "
                                        rf"of 2 \(the whole \(out, cache\) pair\? unpack it: out, cache = "
                                        rf"{forward}\(\.\.\.\)\)$"):
        backward(np.zeros(3), pair)


def test_the_real_pair_of_a_forward_is_refused_with_the_fix(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    out_and_cache = F.conv2d_forward(x, rng.standard_normal((3, 2, 3, 3)))
    with pytest.raises(TypeError, match=r"cache must be the Conv2dCache that conv2d_forward returned, got a tuple "
                                        r"of 2 \(the whole \(out, cache\) pair\? unpack it: out, cache = "
                                        r"conv2d_forward\(\.\.\.\)\)"):
        F.conv2d_backward(out_and_cache[0], out_and_cache)
    out, cache = out_and_cache
    assert F.conv2d_backward(np.ones_like(out), cache)[0].shape == x.shape


def test_the_cache_of_another_op_is_refused(rng):
    y, t = rng.standard_normal(4), rng.standard_normal(4)
    _, mae_cache = F.mae_forward(y, t)
    with pytest.raises(TypeError, match=r"cache must be the MSECache that mse_forward returned, got a MAECache"):
        F.mse_backward(1.0, mae_cache)                  # both losses share a base class, not their cache
    _, relu_cache = F.relu_forward(y)
    with pytest.raises(TypeError, match=r"cache must be the Conv2dCache that conv1d_forward returned, "
                                        r"got a ReluCache"):
        F.conv1d_backward(np.zeros((1, 1, 1)), relu_cache)
    with pytest.raises(TypeError, match=r"cache must be the EluCache that elu_forward returned, got an int"):
        F.elu_backward(y, 3)
    with pytest.raises(TypeError, match=r"got a tuple of 3$"):
        F.linear_backward(y, (1, 2, 3))
    _, conv_cache = F.conv1d_forward(rng.standard_normal((1, 1, 4)), rng.standard_normal((1, 1, 3)))
    (dx, dw, db) = F.conv1d_backward(np.ones((1, 1, 2)), conv_cache)   # conv1d's cache is conv2d's
    assert dx.shape == (1, 1, 4) and dw.shape == (1, 1, 3)


# --------------------------------------------------------------------------- 2. backward before forward

LEAVES = {   # every layer class of nbconv.layers but the containers, as a student would build it
    L.Linear: lambda: L.Linear(4, 3),
    L.Conv2d: lambda: L.Conv2d(3, 4, 3),
    L.Conv1d: lambda: L.Conv1d(3, 4, 3),
    L.WSConv2d: lambda: L.WSConv2d(3, 4, 3),
    L.ReLU: L.ReLU, L.Sigmoid: L.Sigmoid, L.Tanh: L.Tanh,
    L.LeakyReLU: L.LeakyReLU, L.ELU: L.ELU,
    L.PReLU: lambda: L.PReLU(3),
    L.Maxout: lambda: L.Maxout(2),
    L.Dropout: L.Dropout,
    L.BatchNorm1d: lambda: L.BatchNorm1d(3),
    L.BatchNorm2d: lambda: L.BatchNorm2d(3),
    L.LayerNorm: lambda: L.LayerNorm(3),
    L.InstanceNorm2d: lambda: L.InstanceNorm2d(3),
    L.GroupNorm: lambda: L.GroupNorm(1, 3),
    L.LocalResponseNorm: lambda: L.LocalResponseNorm(3),
    L.MaxPool2d: lambda: L.MaxPool2d(2),
    L.AvgPool2d: lambda: L.AvgPool2d(2),
    L.LPPool2d: lambda: L.LPPool2d(2, 2),
    L.GlobalAvgPool2d: L.GlobalAvgPool2d,
    L.Flatten: L.Flatten,
}


def test_every_layer_class_is_covered():
    layers = {obj for obj in vars(L).values() if isinstance(obj, type) and issubclass(obj, L.Layer)}
    assert layers - {L.Layer, L.Sequential, L.Residual} == set(LEAVES)


@pytest.mark.parametrize("cls", list(LEAVES), ids=lambda cls: cls.__name__)
def test_backward_before_forward_names_the_layer_and_the_fix(cls):
    layer = LEAVES[cls]()
    with pytest.raises(RuntimeError, match=rf"^{re.escape(repr(layer))}\.backward called before forward: backward "
                                           rf"uses what the last forward saved; call forward\(x\) first$"):
        layer.backward(np.zeros((2, 3), np.float32))


def test_the_message_spells_the_layer_as_built():
    with pytest.raises(RuntimeError, match=r"^Conv2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\), padding=\(0, 0\), "
                                           r"method='auto'\)\.backward called before forward"):
        L.Conv2d(3, 4, 3).backward(np.zeros((2, 4, 4, 4), np.float32))


def test_wsconv2d_keeps_both_caches_and_flatten_its_shape(rng):
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    ws = L.WSConv2d(3, 4, 3, seed=0)
    y = ws.forward(x)
    ws_cache, conv_cache = ws.cache
    assert isinstance(ws_cache, F.WeightStandardizeCache) and isinstance(conv_cache, F.Conv2dCache)
    assert ws.backward(np.ones_like(y)).shape == x.shape
    flatten = L.Flatten()
    flatten.forward(x)
    assert flatten.cache == x.shape and flatten.backward(np.zeros((2, 75))).shape == x.shape


# --------------------------------------------------------------------------- 3. float32 layers, float64 data

WITH_PARAMETERS = [   # (layer, the shape of an x it takes)
    (lambda **kw: L.Linear(4, 3, **kw), (2, 4)),
    (lambda **kw: L.Conv1d(3, 4, 3, **kw), (2, 3, 5)),
    (lambda **kw: L.Conv2d(3, 4, 3, padding=1, **kw), (2, 3, 6, 6)),
    (lambda **kw: L.WSConv2d(3, 4, 3, **kw), (2, 3, 5, 5)),
    (lambda **kw: L.BatchNorm1d(3, **kw), (4, 3)),
    (lambda **kw: L.BatchNorm2d(3, **kw), (2, 3, 2, 2)),
    (lambda **kw: L.LayerNorm(5, **kw), (2, 5)),
    (lambda **kw: L.InstanceNorm2d(3, **kw), (2, 3, 2, 2)),
    (lambda **kw: L.GroupNorm(1, 3, **kw), (2, 3, 2, 2)),
    (lambda **kw: L.PReLU(3, **kw), (2, 3, 4)),
    (lambda **kw: L.PReLU(**kw), (2, 3, 4)),
]
IDS = ["Linear", "Conv1d", "Conv2d", "WSConv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "InstanceNorm2d",
       "GroupNorm", "PReLU", "PReLU1"]


@pytest.mark.parametrize("build, shape", WITH_PARAMETERS, ids=IDS)
def test_float64_data_into_a_float32_layer_names_the_layer_and_the_fixes(build, shape, rng):
    layer = build()
    x = rng.standard_normal(shape)                        # NumPy's default: float64
    with pytest.raises(TypeError, match=rf"^{re.escape(repr(layer))} holds float32 parameters but x is float64: "
                                        rf"pass x\.astype\(np\.float32\), or build the layer with "
                                        rf"dtype=np\.float64$"):
        layer.forward(x)
    assert layer.forward(x.astype(np.float32)).dtype == np.float32
    assert build(dtype=np.float64).forward(x).dtype == np.float64


@pytest.mark.parametrize("build, shape", WITH_PARAMETERS[:3], ids=IDS[:3])
def test_float32_data_into_a_float64_layer(build, shape, rng):
    with pytest.raises(TypeError, match=r"holds float64 parameters but x is float32: pass x\.astype\(np\.float64\), "
                                        r"or build the layer with dtype=np\.float32$"):
        build(dtype=np.float64).forward(rng.standard_normal(shape).astype(np.float32))


def test_the_dtype_example_of_the_brief(rng):
    with pytest.raises(TypeError, match=r"^Conv2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\), padding=\(1, 1\), "
                                        r"method='auto'\) holds float32 parameters but x is float64: pass "
                                        r"x\.astype\(np\.float32\), or build the layer with dtype=np\.float64$"):
        L.Conv2d(3, 4, 3, padding=1).forward(rng.standard_normal((2, 3, 6, 6)))


def test_other_dtypes_keep_the_functional_message():
    with pytest.raises(TypeError, match=r"^x has dtype int64; supported dtypes are float32 or float64$"):
        L.Linear(4, 3).forward(np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match=r"^x has dtype float16; supported dtypes are float32 or float64$"):
        L.Conv2d(3, 4, 3).forward(np.zeros((2, 3, 5, 5), np.float16))
    with pytest.raises(TypeError, match=r"^x must be a numpy.ndarray of float32 or float64, got list$"):
        L.Linear(1, 1).forward([[1.0]])


class _DeviceLike:
    """Just enough of a CUDA device array for the dtype check (which runs before any kernel)."""
    __cuda_array_interface__ = {}

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)


def test_a_device_array_of_the_other_dtype_gets_the_device_fix():
    with pytest.raises(TypeError, match=r"^Linear\(4, 3, bias=True\) holds float32 parameters but x is float64: pass "
                                        r"numba\.cuda\.to_device\(x_host\.astype\(np\.float32\)\), or build the "
                                        r"layer with dtype=np\.float64$"):
        L.Linear(4, 3).forward(_DeviceLike((2, 4), np.float64))


# --------------------------------------------------------------------------- 4. the input shape

@pytest.mark.parametrize("layer, shape, message", [
    (L.Linear(256, 10), (64, 144), r"^Linear\(256, 10\) expects input of shape \(N, 256\), got \(64, 144\)$"),
    (L.Linear(4, 3), (2, 2, 2), r"^Linear\(4, 3\) expects input of shape \(N, 4\), got \(2, 2, 2\)$"),
    (L.Conv2d(3, 4, 3), (2, 1, 5, 5), r"^Conv2d\(3, 4\) expects input of shape \(N, C, H, W\) with C = 3, "
                                      r"got \(2, 1, 5, 5\)$"),
    (L.Conv2d(3, 4, 3), (2, 3, 2, 5), r"kernel of size 3 .* larger than the padded height of size 2"),
    (L.WSConv2d(3, 4, 3), (2, 4, 5, 5), r"^WSConv2d\(3, 4\) expects input of shape \(N, C, H, W\) with C = 3"),
    (L.Conv1d(3, 4, 3), (2, 2, 5), r"^Conv1d\(3, 4\) expects input of shape \(N, C, L\) with C = 3, "
                                   r"got \(2, 2, 5\)$"),
    (L.BatchNorm1d(3), (2, 4), r"^BatchNorm1d\(3\) expects input of shape \(N, C\) or \(N, C, L\) with C = 3, "
                               r"got \(2, 4\)$"),
    (L.BatchNorm2d(3), (2, 4, 2, 2), r"^BatchNorm2d\(3\) expects input of shape \(N, C, H, W\) with C = 3"),
    (L.InstanceNorm2d(3), (2, 4, 2, 2), r"^InstanceNorm2d\(3\) expects input of shape \(N, C, H, W\) with C = 3"),
    (L.GroupNorm(1, 3), (2, 4, 2), r"^GroupNorm\(1, 3\) expects 3 channels \(axis 1\), got input shape \(2, 4, 2\)$"),
    (L.LayerNorm((4, 5)), (2, 5, 4), r"^LayerNorm\(4, 5\) expects input shape \(N, \.\.\., 4, 5\), got \(2, 5, 4\)$"),
    (L.PReLU(3), (2, 4, 2), r"^PReLU with 3 slopes needs 3 channels \(axis 1\), got input shape \(2, 4, 2\)$"),
], ids=lambda v: type(v).__name__ if isinstance(v, L.Layer) else None)
def test_a_wrong_input_shape_is_named_by_the_layer(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(np.zeros(shape, np.float32))


# --------------------------------------------------------------------------- 5. where in a Sequential

def _net():
    return L.Sequential(L.Conv2d(1, 4, 3, padding=1, seed=0), L.ReLU(), L.MaxPool2d(2), L.Flatten(),
                        L.Linear(256, 10, seed=1))


def test_an_error_inside_a_sequential_names_the_position_and_the_layer():
    with pytest.raises(ValueError) as info:
        _net().forward(np.zeros((64, 1, 12, 12), np.float32))
    assert str(info.value) == ("layer [4] Linear(256, 10, bias=True), forward: Linear(256, 10) expects input of "
                               "shape (N, 256), got (64, 144)")
    assert type(info.value) is ValueError
    assert info.value.layer_path == "[4]" and info.value.layer == "Linear(256, 10, bias=True)"
    assert info.value.layer_message == "Linear(256, 10) expects input of shape (N, 256), got (64, 144)"
    assert info.traceback[-1].name == "output_shape"      # the traceback still ends where it was raised


def test_backward_errors_are_located_too():
    net = _net()
    y = net.forward(np.zeros((2, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"^layer \[4\] Linear\(256, 10, bias=True\), backward: dout must have "
                                         r"shape \(2, 10\), got \(2, 11\)$"):
        net.backward(np.zeros((2, 11), np.float32))
    assert y.shape == (2, 10)
    with pytest.raises(RuntimeError, match=r"^layer \[4\], backward: "       # the repr once, not twice
                                           r"Linear\(256, 10, bias=True\)\.backward called before forward"):
        _net().backward(np.zeros((2, 10), np.float32))


def test_the_dtype_error_inside_a_sequential():
    with pytest.raises(TypeError, match=r"^layer \[0\], forward: Conv2d\(1, 4, .*'auto'\) holds float32 "
                                        r"parameters but x is float64: pass x\.astype\(np\.float32\)"):
        _net().forward(np.zeros((2, 1, 32, 32)))


def test_nested_containers_give_one_path():
    net = L.Sequential(L.Conv2d(1, 2, 3, padding=1), L.Residual(L.Sequential(L.Conv2d(2, 2, 3, padding=1),
                                                                             L.ReLU())))
    with pytest.raises(RuntimeError) as info:
        net.backward(np.zeros((1, 2, 4, 4), np.float32))
    message = str(info.value)
    assert message.startswith("layer [1].block[1], backward: ReLU().backward called before forward")
    assert message.count("layer [") == 1 and info.value.layer_path == "[1].block[1]"
    net.forward(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"^layer \[1\]\.block\[1\] ReLU\(\), backward: dout must have shape "):
        net.backward(np.zeros((1, 2, 4, 5), np.float32))
    with pytest.raises(TypeError, match=r"^layer block\[0\], forward: Conv2d\(2, 2, kernel_size=\(3, 3\), "
                                        r"stride=\(1, 1\), padding=\(1, 1\), method='auto'\) holds float32"):
        net.layers[1].forward(np.zeros((1, 2, 4, 4)))    # the Residual alone: its path starts at its block


def test_a_residual_alone_and_its_own_error():
    with pytest.raises(ValueError, match=r"^layer block Conv2d\(2, 2, .*\), forward: Conv2d\(2, 2\) expects input"):
        L.Residual(L.Conv2d(2, 2, 3, padding=1)).forward(np.zeros((1, 3, 4, 4), np.float32))
    net = L.Sequential(L.ReLU(), L.Residual(L.Conv2d(2, 3, 1)))
    with pytest.raises(ValueError, match=r"^layer \[1\] Residual\(\.\.\.\), forward: Residual: the block must keep "
                                         r"the shape"):
        net.forward(np.zeros((1, 2, 4, 4), np.float32))


class _Raises(L.Layer):
    def __init__(self, exc):
        self.exc = exc

    def forward(self, x):
        raise self.exc

    def __repr__(self):
        return "_Raises()"


class _MyValueError(ValueError):
    pass


@pytest.mark.parametrize("exc", [KeyError("k"), IndexError("i"), ZeroDivisionError("z"), _MyValueError("mine"),
                                 AttributeError("a")], ids=lambda e: type(e).__name__)
def test_other_exceptions_pass_through_unchanged(exc):
    with pytest.raises(type(exc)) as info:
        L.Sequential(L.ReLU(), _Raises(exc)).forward(np.ones((1, 2), np.float32))
    assert info.value is exc and info.value.args == exc.args and not hasattr(info.value, "layer_path")


@pytest.mark.parametrize("exc", [ValueError("v"), TypeError("t"), RuntimeError("r"), NotImplementedError("n")],
                         ids=lambda e: type(e).__name__)
def test_the_four_types_are_located_in_place(exc):
    with pytest.raises(type(exc)) as info:
        L.Sequential(L.ReLU(), _Raises(exc)).forward(np.ones((1, 2), np.float32))
    assert info.value is exc and str(exc) == f"layer [1] _Raises(), forward: {exc.layer_message}"
    frames = traceback.extract_tb(exc.__traceback__)
    assert frames[-1].name == "forward" and "raise self.exc" in frames[-1].line
