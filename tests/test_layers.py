"""Layers: every backward against finite differences, train/eval, containers, shapes without arrays."""

import copy

import numpy as np
import pytest

import nbconv.layers as L
from nbconv import gradcheck
from nbconv.gradcheck.registry import KINK_THRESHOLD, SMOOTH_THRESHOLD, away_from_zero, distinct

F64 = dict(dtype=np.float64)


# --------------------------------------------------------------------------- gradient checks

def check_layer(layer, x, rng, *, threshold=SMOOTH_THRESHOLD):
    """Finite differences of ``layer`` with respect to x and every parameter (random values)."""
    named = layer.named_parameters()
    for name, p in named:
        p.data[...] = rng.standard_normal(p.shape) * 0.5 + (1.0 if name.endswith("gamma") else 0.0)
    check = gradcheck.check_layer(layer, x, threshold=threshold)
    assert check.passed, str(check)
    assert [r.name for r in check] == ["x", *[n for n, _ in named]]      # every gradient was checked
    return check


def smooth(shape):
    return lambda rng: rng.standard_normal(shape)


def kinked(shape):
    return lambda rng: away_from_zero(rng, shape)


def tied_free(shape):
    return lambda rng: distinct(rng, shape)


def residual_block():
    return L.Residual(L.Sequential(L.Conv2d(2, 2, 3, padding=1, seed=0, **F64), L.Tanh()))


# (id, layer factory, input maker, threshold)
CASES = [
    ("linear", lambda: L.Linear(5, 3, seed=0, **F64), smooth((4, 5)), SMOOTH_THRESHOLD),
    ("linear_nobias", lambda: L.Linear(5, 3, bias=False, seed=0, **F64), smooth((4, 5)), SMOOTH_THRESHOLD),
    ("conv2d_direct", lambda: L.Conv2d(2, 3, 3, stride=2, padding=1, method="direct", seed=0, **F64),
     smooth((2, 2, 5, 5)), SMOOTH_THRESHOLD),
    ("conv2d_im2col", lambda: L.Conv2d(2, 3, (2, 3), stride=(1, 2), padding=(1, 0), seed=0, **F64),
     smooth((2, 2, 4, 5)), SMOOTH_THRESHOLD),
    ("conv1d_direct", lambda: L.Conv1d(2, 3, 3, stride=2, padding=1, method="direct", seed=0, **F64),
     smooth((2, 2, 7)), SMOOTH_THRESHOLD),
    ("conv1d_im2col", lambda: L.Conv1d(2, 4, 2, dilation=2, groups=2, seed=0, **F64),
     smooth((2, 2, 6)), SMOOTH_THRESHOLD),
    ("wsconv2d", lambda: L.WSConv2d(2, 3, 3, padding=1, seed=0, **F64), smooth((2, 2, 4, 4)), SMOOTH_THRESHOLD),
    ("wsconv2d_direct_nobias", lambda: L.WSConv2d(2, 2, 2, bias=False, method="direct", seed=0, **F64),
     smooth((1, 2, 3, 3)), SMOOTH_THRESHOLD),
    ("maxpool2d", lambda: L.MaxPool2d(2), tied_free((2, 2, 4, 4)), KINK_THRESHOLD),
    ("maxpool2d_overlap_pad", lambda: L.MaxPool2d(3, stride=2, padding=1), tied_free((1, 2, 5, 5)),
     KINK_THRESHOLD),
    ("avgpool2d", lambda: L.AvgPool2d(3, stride=2, padding=1), smooth((2, 2, 5, 5)), SMOOTH_THRESHOLD),
    ("lppool2d", lambda: L.LPPool2d(2, 2), kinked((2, 2, 4, 4)), SMOOTH_THRESHOLD),
    ("lppool2d_p3_stride1", lambda: L.LPPool2d(3, (2, 3), stride=1), kinked((1, 2, 3, 4)), SMOOTH_THRESHOLD),
    ("globalavgpool2d", lambda: L.GlobalAvgPool2d(), smooth((2, 3, 3, 3)), SMOOTH_THRESHOLD),
    ("relu", lambda: L.ReLU(), kinked((3, 4)), KINK_THRESHOLD),
    ("sigmoid", lambda: L.Sigmoid(), smooth((3, 4)), SMOOTH_THRESHOLD),
    ("tanh", lambda: L.Tanh(), smooth((2, 3, 2)), SMOOTH_THRESHOLD),
    ("leaky_relu", lambda: L.LeakyReLU(0.1), kinked((3, 4)), KINK_THRESHOLD),
    ("elu", lambda: L.ELU(0.7), kinked((3, 4)), KINK_THRESHOLD),
    ("prelu_shared", lambda: L.PReLU(**F64), kinked((2, 3, 2, 2)), KINK_THRESHOLD),
    ("prelu_per_channel", lambda: L.PReLU(3, **F64), kinked((2, 3, 2, 2)), KINK_THRESHOLD),
    ("maxout", lambda: L.Maxout(2), tied_free((2, 4, 3)), KINK_THRESHOLD),
    ("dropout", lambda: L.Dropout(0.3, seed=0), smooth((4, 5)), SMOOTH_THRESHOLD),
    ("batchnorm1d_nc", lambda: L.BatchNorm1d(3, **F64), smooth((4, 3)), SMOOTH_THRESHOLD),
    ("batchnorm1d_ncl", lambda: L.BatchNorm1d(3, **F64), smooth((3, 3, 2)), SMOOTH_THRESHOLD),
    ("batchnorm2d", lambda: L.BatchNorm2d(2, **F64), smooth((3, 2, 2, 2)), SMOOTH_THRESHOLD),
    ("layernorm", lambda: L.LayerNorm((3, 4), **F64), smooth((2, 3, 4)), SMOOTH_THRESHOLD),
    ("layernorm_last_axis", lambda: L.LayerNorm(5, **F64), smooth((3, 5)), SMOOTH_THRESHOLD),
    ("instancenorm2d", lambda: L.InstanceNorm2d(2, **F64), smooth((2, 2, 3, 3)), SMOOTH_THRESHOLD),
    ("groupnorm", lambda: L.GroupNorm(2, 4, **F64), smooth((2, 4, 2, 2)), SMOOTH_THRESHOLD),
    ("local_response_norm", lambda: L.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=2.0),
     smooth((2, 5, 2, 2)), SMOOTH_THRESHOLD),
    ("flatten", lambda: L.Flatten(), smooth((2, 2, 3)), SMOOTH_THRESHOLD),
    ("residual", residual_block, smooth((2, 2, 3, 3)), SMOOTH_THRESHOLD),
]


@pytest.mark.parametrize("make_layer, make_x, threshold", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_layer_backward_matches_finite_differences(make_layer, make_x, threshold, rng):
    check_layer(make_layer(), make_x(rng), rng, threshold=threshold)   # dropout: check_layer rewinds its rng


def test_batchnorm_eval_backward_matches_finite_differences(rng):
    for layer, shape in ((L.BatchNorm2d(2, **F64), (3, 2, 2, 2)), (L.BatchNorm1d(3, **F64), (4, 3))):
        layer.running_mean[...] = rng.standard_normal(layer.num_features)
        layer.running_var[...] = rng.uniform(0.5, 2.0, layer.num_features)
        layer.eval()
        check_layer(layer, rng.standard_normal(shape), rng)


def test_dropout_in_eval_backward_is_identity(rng):
    layer = L.Dropout(0.5, seed=0).eval()
    check_layer(layer, rng.standard_normal((3, 4)), rng)


@pytest.mark.parametrize("make_layer, make_x, threshold", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_output_shape_without_arrays_matches_forward(make_layer, make_x, threshold, rng):
    layer = make_layer()
    x = make_x(rng)
    assert layer.output_shape(x.shape) == layer.forward(x).shape


# --------------------------------------------------------------------------- whole networks

def small_cnn(dtype=np.float64, seed=0, conv_bias=False):
    # no conv bias before batch norm: BN subtracts the batch mean, so that bias has gradient 0 (see below)
    return L.Sequential(L.Conv2d(1, 2, 3, padding=1, bias=conv_bias, seed=seed, dtype=dtype),
                        L.BatchNorm2d(2, dtype=dtype),
                        L.ReLU(), L.MaxPool2d(2), L.Flatten(), L.Linear(2 * 2 * 2, 3, seed=seed + 1, dtype=dtype))


def test_small_sequential_passes_a_whole_network_gradient_check(rng):
    # ReLU after batch norm and max pooling have kinks; random values sit far from them at h = 1e-5
    reports = check_layer(small_cnn(), rng.standard_normal((3, 1, 4, 4)), rng, threshold=KINK_THRESHOLD)
    assert [r.name for r in reports] == ["x", "0.w", "1.gamma", "1.beta", "5.w", "5.b"]


def test_a_conv_bias_before_batch_norm_gets_zero_gradient(rng):
    net = small_cnn(conv_bias=True)
    net.forward(rng.standard_normal((3, 1, 4, 4)))
    net.backward(rng.standard_normal((3, 3)))
    assert np.abs(net[0].params()["b"].grad).max() < 1e-12      # batch norm removes any constant shift
    assert np.abs(net[0].params()["w"].grad).max() > 1e-3


def test_sequential_backward_is_the_chain_of_the_layers_backward(rng):
    # an independent NumPy reference of Linear -> ReLU -> Linear
    net = L.Sequential(L.Linear(4, 6, seed=1, **F64), L.ReLU(), L.Linear(6, 2, seed=2, **F64))
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    w1, b1, w2 = net[0].params()["w"].data, net[0].params()["b"].data, net[2].params()["w"].data
    h = x @ w1.T + b1
    np.testing.assert_allclose(net.forward(x), np.maximum(h, 0) @ w2.T + net[2].params()["b"].data, rtol=1e-12)
    dx = net.backward(dout)
    dh = (dout @ w2) * (h > 0)
    np.testing.assert_allclose(dx, dh @ w1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net[2].params()["w"].grad, dout.T @ np.maximum(h, 0), rtol=1e-12)
    np.testing.assert_allclose(net[0].params()["w"].grad, dh.T @ x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net[0].params()["b"].grad, dh.sum(0), rtol=1e-12, atol=1e-14)

    # and the same as calling each layer's backward by hand, in reverse
    twin = copy.deepcopy(net)
    out = x
    for layer in twin.layers:
        out = layer.forward(out)
    grad = dout
    for layer in reversed(twin.layers):
        grad = layer.backward(grad)
    np.testing.assert_array_equal(grad, dx)
    for (name, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        np.testing.assert_array_equal(p.grad, q.grad, err_msg=name)


def test_residual_backward_is_the_sum_of_both_branches(rng):
    block = L.Sequential(L.Linear(4, 4, seed=0, **F64), L.Tanh())
    res = L.Residual(block)
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    w, b = block[0].params()["w"].data, block[0].params()["b"].data
    y = np.tanh(x @ w.T + b)
    np.testing.assert_allclose(res.forward(x), y + x, rtol=1e-12)
    dx = res.backward(dout)
    dx_block = ((1 - y ** 2) * dout) @ w          # the block branch alone
    np.testing.assert_allclose(dx, dx_block + dout, rtol=1e-12, atol=1e-14)   # + the identity branch


def test_residual_refuses_a_block_that_changes_the_shape(rng):
    res = L.Residual(L.Linear(4, 3, **F64))
    with pytest.raises(ValueError, match=r"block must keep the shape.*x has shape \(2, 4\), block\(x\) has "
                                         r"shape \(2, 3\)"):
        res.forward(rng.standard_normal((2, 4)))
    with pytest.raises(ValueError, match=r"block must keep the shape.*input shape \(2, 4\), block output "
                                         r"shape \(2, 3\)"):
        res.output_shape((2, 4))


def test_named_parameters_and_buffers_have_stable_names():
    def build():
        return L.Sequential(L.Conv2d(1, 2, 3, padding=1), L.BatchNorm2d(2), L.ReLU(),
                            L.Residual(L.Sequential(L.Conv2d(2, 2, 3, padding=1), L.PReLU(2))),
                            L.Flatten(), L.Linear(2 * 4 * 4, 3))
    names = ["0.w", "0.b", "1.gamma", "1.beta", "3.block.0.w", "3.block.0.b", "3.block.1.weight", "5.w", "5.b"]
    assert [n for n, _ in build().named_parameters()] == names
    assert [n for n, _ in build().named_parameters()] == names
    assert [n for n, _ in build().named_buffers()] == ["1.running_mean", "1.running_var"]
    net = build()
    assert net.num_params() == sum(p.data.size for p in net.parameters())


def test_network_forward_on_empty_and_noncontiguous_batches(rng):
    net = small_cnn(np.float32).eval()
    assert net.forward(np.zeros((0, 1, 4, 4), np.float32)).shape == (0, 3)
    x = rng.standard_normal((4, 1, 4, 8)).astype(np.float32)
    strided = x[:, :, :, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(net.forward(strided), net.forward(np.ascontiguousarray(strided)))


# --------------------------------------------------------------------------- train / eval

def test_train_and_eval_reach_every_layer():
    net = L.Sequential(L.Conv2d(1, 2, 3), L.Residual(L.Sequential(L.BatchNorm2d(2), L.Dropout(0.5))))
    net.eval()
    assert not net.training and not net[1].training and not net[1].block[0].training and not net[1].block[1].training
    net.train()
    assert net[1].block[0].training and net[1].block[1].training


def test_batchnorm2d_updates_running_stats_in_training_only(rng):
    bn = L.BatchNorm2d(3, momentum=0.2, **F64)
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    x = rng.standard_normal((4, 3, 2, 2)) * 2 + 1
    y = bn.forward(x)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    ref = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + bn.eps)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)             # gamma 1, beta 0
    np.testing.assert_allclose(bn.running_mean, 0.2 * mean, rtol=1e-12)
    m = 4 * 2 * 2
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * var * m / (m - 1), rtol=1e-12)
    assert dict(bn.named_buffers())["running_mean"] is bn.running_mean        # the live arrays

    bn.eval()
    before = bn.running_mean.copy(), bn.running_var.copy()
    x2 = rng.standard_normal((2, 3, 2, 2))
    y2 = bn.forward(x2)
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    ref2 = (x2 - before[0][None, :, None, None]) / np.sqrt(before[1][None, :, None, None] + bn.eps)
    np.testing.assert_allclose(y2, ref2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.forward(x2[:1]), y2[:1], rtol=1e-12)      # a sample's output is its own


def test_batchnorm1d_on_n_c_l_uses_batch_and_length(rng):
    bn = L.BatchNorm1d(2, momentum=1.0, **F64)
    x = rng.standard_normal((3, 2, 5))
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, x.var(axis=(0, 2), ddof=1), rtol=1e-12)


def test_dropout_fresh_mask_per_forward_and_identity_in_eval(rng):
    x = rng.standard_normal((50, 40)) + 5.0           # no zeros in x
    layer = L.Dropout(0.25, seed=7)
    a, b = layer.forward(x), layer.forward(x)
    assert not np.array_equal(a == 0, b == 0)          # a new mask each call
    kept = a != 0
    assert abs(1 - kept.mean() - 0.25) < 0.03
    np.testing.assert_allclose(a[kept], x[kept] / 0.75, rtol=1e-6)
    twin = L.Dropout(0.25, seed=7)                       # the same seed, the same sequence of masks
    np.testing.assert_array_equal(twin.forward(x), a)
    np.testing.assert_array_equal(twin.forward(x), b)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


# --------------------------------------------------------------------------- against references

def conv2d_reference(x, w, b, padding):
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    KH, KW = w.shape[2:]
    OH, OW = xp.shape[2] - KH + 1, xp.shape[3] - KW + 1
    out = np.empty((x.shape[0], w.shape[0], OH, OW))
    for i in range(OH):
        for j in range(OW):
            out[:, :, i, j] = np.einsum("nchw,fchw->nf", xp[:, :, i:i + KH, j:j + KW], w) + b
    return out


def test_wsconv2d_is_conv2d_on_standardized_weights(rng):
    layer = L.WSConv2d(2, 3, 3, padding=1, seed=0, eps=1e-5, **F64)
    x = rng.standard_normal((2, 2, 4, 4))
    w, b = layer.params()["w"].data, layer.params()["b"].data
    mean = w.mean(axis=(1, 2, 3), keepdims=True)
    var = w.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(layer.forward(x), conv2d_reference(x, (w - mean) / np.sqrt(var + 1e-5), b, 1),
                               rtol=1e-10, atol=1e-12)


def test_conv1d_matches_a_numpy_reference_with_both_methods(rng):
    x = rng.standard_normal((2, 3, 6))
    for method in ("direct", "im2col"):
        layer = L.Conv1d(3, 4, 3, padding=1, method=method, seed=0, **F64)
        w, b = layer.params()["w"].data, layer.params()["b"].data
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1)))
        ref = np.stack([np.einsum("ncl,fcl->nf", xp[:, :, i:i + 3], w) + b for i in range(6)], axis=-1)
        np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-10, atol=1e-12)


def test_layer_norm_group_norm_instance_norm_match_numpy(rng):
    x = rng.standard_normal((2, 4, 3, 3))

    def norm(v, axes):
        return (v - v.mean(axis=axes, keepdims=True)) / np.sqrt(v.var(axis=axes, keepdims=True) + 1e-5)

    np.testing.assert_allclose(L.LayerNorm((4, 3, 3), **F64).forward(x), norm(x, (1, 2, 3)), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(L.InstanceNorm2d(4, **F64).forward(x), norm(x, (2, 3)), rtol=1e-9, atol=1e-12)
    grouped = norm(x.reshape(2, 2, 2, 3, 3), (2, 3, 4)).reshape(x.shape)
    np.testing.assert_allclose(L.GroupNorm(2, 4, **F64).forward(x), grouped, rtol=1e-9, atol=1e-12)


def test_prelu_and_maxout_match_numpy(rng):
    x = away_from_zero(rng, (2, 3, 2))
    prelu = L.PReLU(3, init=0.1, **F64)
    prelu.params()["weight"].data[...] = [0.1, 0.2, 0.3]
    slope = np.array([0.1, 0.2, 0.3])[None, :, None]
    np.testing.assert_allclose(prelu.forward(x), np.where(x > 0, x, slope * x), rtol=1e-12)
    np.testing.assert_array_equal(L.PReLU(**F64).params()["weight"].data, [0.25])
    x = rng.standard_normal((2, 6, 2))
    np.testing.assert_array_equal(L.Maxout(3).forward(x), x.reshape(2, 2, 3, 2).max(axis=2))


def test_float32_by_default_and_dtype_mismatch_refused(rng):
    layer = L.BatchNorm2d(2)
    assert layer.params()["gamma"].data.dtype == np.float32 and layer.running_var.dtype == np.float32
    assert layer.forward(rng.standard_normal((2, 2, 2, 2)).astype(np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match=r"BatchNorm2d\(2, .*\) holds float32 parameters but x is float64: pass "
                                        r"x\.astype\(np\.float32\), or build the layer with dtype=np\.float64"):
        layer.forward(rng.standard_normal((2, 2, 2, 2)))


# --------------------------------------------------------------------------- shapes without arrays

SHAPE_ONLY = [   # (builder, an input the allocated layer would take)
    (lambda a: L.Conv2d(3, 8, 3, padding=1, allocate=a), (2, 3, 4, 4)),
    (lambda a: L.Conv1d(3, 8, 3, allocate=a), (2, 3, 5)),
    (lambda a: L.WSConv2d(3, 8, 3, allocate=a), (2, 3, 4, 4)),
    (lambda a: L.PReLU(4, allocate=a), (2, 4, 3)),
    (lambda a: L.BatchNorm1d(4, allocate=a), (2, 4)),
    (lambda a: L.BatchNorm2d(4, allocate=a), (2, 4, 3, 3)),
    (lambda a: L.LayerNorm((4, 5), allocate=a), (2, 4, 5)),
    (lambda a: L.InstanceNorm2d(4, allocate=a), (2, 4, 3, 3)),
    (lambda a: L.GroupNorm(2, 4, allocate=a), (2, 4, 3, 3)),
]


@pytest.mark.parametrize("build, x_shape", SHAPE_ONLY)
def test_allocate_false_keeps_shapes_and_allocates_nothing(build, x_shape):
    full, shapes_only = build(True), build(False)
    assert shapes_only.param_shapes() == {name: p.shape for name, p in full.params().items()}
    assert shapes_only.named_parameters() == [] and shapes_only.named_buffers() == []
    assert shapes_only.num_params() == full.num_params() > 0
    x = np.ones(x_shape, np.float32)
    assert shapes_only.output_shape(x_shape) == full.forward(x).shape
    with pytest.raises(ValueError, match=r"built with allocate=False \(shapes only"):
        shapes_only.forward(x)


def test_batchnorm_buffer_shapes_without_arrays():
    assert L.BatchNorm2d(5, allocate=False).buffer_shapes() == {"running_mean": (5,), "running_var": (5,)}


# --------------------------------------------------------------------------- validation

def test_layer_construction_errors():
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel.*padding \(2, 2\) with "
                                         r"kernel_size \(3, 3\)"):
        L.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"num_parameters must be an int >= 1.*got 0"):
        L.PReLU(0)
    with pytest.raises(ValueError, match=r"pieces must be an int >= 1, got 0"):
        L.Maxout(0)
    with pytest.raises(ValueError, match=r"p \(the probability of dropping a unit\) must be a number in "
                                         r"\[0, 1\], got 1.5"):
        L.Dropout(1.5)
    with pytest.raises(ValueError, match=r"num_features must be an int >= 1, got 0"):
        L.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"normalized_shape must name at least one axis"):
        L.LayerNorm(())
    with pytest.raises(ValueError, match=r"num_groups must divide num_channels, got num_groups=3, num_channels=4"):
        L.GroupNorm(3, 4)
    with pytest.raises(ValueError, match=r"size must be an int >= 1, got 0"):
        L.LocalResponseNorm(0)


def test_layer_input_errors(rng):
    with pytest.raises(ValueError, match=r"BatchNorm1d expects x of shape \(N, C\) or \(N, C, L\), got a 4-D"):
        L.BatchNorm1d(2).forward(np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects x of shape \(N, C, H, W\), got a 2-D"):
        L.BatchNorm2d(2).forward(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"InstanceNorm2d expects x of shape \(N, C, H, W\), got a 3-D"):
        L.InstanceNorm2d(2).forward(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(2\) expects input of shape \(N, C, H, W\) with C = 2, "
                                         r"got \(2, 3, 2, 2\)"):
        L.BatchNorm2d(2).forward(np.zeros((2, 3, 2, 2), np.float32))


def test_output_shape_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(4\) expects input of shape \(N, C, H, W\) with C = 4, "
                                         r"got \(1, 3, 5, 5\)"):
        L.BatchNorm2d(4).output_shape((1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"LayerNorm\(4, 5\) expects input shape \(N, ..., 4, 5\), got \(2, 5, 4\)"):
        L.LayerNorm((4, 5)).output_shape((2, 5, 4))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(2\) expects input of shape"):
        L.InstanceNorm2d(2).output_shape((1, 3, 2, 2))
    with pytest.raises(ValueError, match=r"GroupNorm\(2, 4\) expects 4 channels"):
        L.GroupNorm(2, 4).output_shape((1, 6, 2, 2))
    with pytest.raises(ValueError, match=r"PReLU with 3 slopes needs 3 channels"):
        L.PReLU(3).output_shape((1, 4, 2))
    with pytest.raises(ValueError, match=r"Maxout\(pieces=2\) needs a channel axis 1 divisible by 2"):
        L.Maxout(2).output_shape((1, 5, 3))
    with pytest.raises(ValueError, match=r"GlobalAvgPool2d needs a non-empty feature map"):
        L.GlobalAvgPool2d().output_shape((1, 2, 0, 3))
    with pytest.raises(ValueError, match=r"kernel of size 3 .* is larger than the padded height"):
        L.MaxPool2d(3).output_shape((1, 2, 2, 5))
    with pytest.raises(ValueError, match=r"kernel of size 5 .* is larger than the padded input of size 4"):
        L.Conv1d(1, 1, 5).output_shape((1, 1, 4))
    with pytest.raises(ValueError, match=r"Conv1d\(2, 3\) expects input of shape \(N, C, L\) with C = 2, "
                                         r"got \(1, 3, 4\)"):
        L.Conv1d(2, 3, 1).output_shape((1, 3, 4))
    with pytest.raises(ValueError, match=r"Conv2d\(2, 3\) expects input of shape \(N, C, H, W\) with C = 2"):
        L.Conv2d(2, 3, 1).output_shape((1, 2, 4))
