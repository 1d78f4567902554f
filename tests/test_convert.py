"""FC -> CONV: the converted net on a larger image equals the original net on every crop at its total stride."""

import numpy as np
import pytest

import nbconv.layers as L
from nbconv.convert import fc_to_conv
from nbconv.summary import summarize, vgg16

F64 = dict(dtype=np.float64)


def tiny_net(tail_batch_norm=False, padding=0):
    """CONV/POOL with total stride 4 on 12x12 inputs -> a 4x2x2 volume, then an FC tail of 5 classes."""
    tail = [L.Linear(4 * 2 * 2, 8, seed=3, **F64)]
    if tail_batch_norm:
        tail.append(L.BatchNorm1d(8, **F64))
    tail += [L.ReLU(), L.Dropout(0.5, seed=0), L.Linear(8, 6, seed=4, **F64), L.Maxout(2), L.Tanh(),
             L.Linear(3, 5, seed=5, **F64)]
    return L.Sequential(L.Conv2d(2, 3, 3 + 2 * padding, padding=padding, seed=1, **F64), L.ReLU(),
                        L.MaxPool2d(2), L.Conv2d(3, 4, 2, seed=2, **F64), L.ReLU(), L.AvgPool2d(2),
                        L.Flatten(), *tail)


def test_tiny_net_has_the_intended_geometry():
    # 12 -conv3-> 10 -pool2-> 5 -conv2-> 4 -pool2-> 2; on 20: 18 -> 9 -> 8 -> 4, and a 2x2 FC window -> 3x3
    assert tiny_net().output_shape((1, 2, 12, 12)) == (1, 5)
    assert L.Sequential(*tiny_net().layers[:6]).output_shape((1, 2, 12, 12)) == (1, 4, 2, 2)
    assert L.Sequential(*tiny_net().layers[:6]).output_shape((1, 2, 20, 20)) == (1, 4, 4, 4)


@pytest.mark.parametrize("tail_batch_norm", [False, True])
def test_converted_net_scores_every_crop_at_the_total_stride(tail_batch_norm, rng):
    net = tiny_net(tail_batch_norm).eval()
    if tail_batch_norm:
        bn = net.layers[8]
        bn.running_mean[...] = rng.standard_normal(8)
        bn.running_var[...] = rng.uniform(0.5, 2.0, 8)
        bn.params()["gamma"].data[...] = rng.uniform(0.5, 1.5, 8)
    conv = fc_to_conv(net, (2, 12, 12))

    # the training size: the same scores as a 1x1 map
    x = rng.standard_normal((3, 2, 12, 12))
    np.testing.assert_allclose(conv.forward(x), net.forward(x)[:, :, None, None], rtol=1e-10, atol=1e-12)

    # a 20x20 image: a 3x3 map, entry (i, j) = the original net on the 12x12 crop at (4i, 4j)
    big = rng.standard_normal((2, 2, 20, 20))
    scores = conv.forward(big)
    assert scores.shape == (2, 5, 3, 3)
    for i in range(3):
        for j in range(3):
            crop = big[:, :, 4 * i:4 * i + 12, 4 * j:4 * j + 12]
            np.testing.assert_allclose(scores[:, :, i, j], net.forward(crop), rtol=1e-10, atol=1e-12,
                                       err_msg=f"crop ({i}, {j})")


def test_padding_before_the_fc_layers_breaks_the_crop_identity(rng):
    # a crop is zero-padded at its own border, where the large image has real pixels: the converted
    # net still equals the original at the training size, but not on the crops of a larger image
    net = tiny_net(padding=1).eval()
    conv = fc_to_conv(net, (2, 12, 12))
    x = rng.standard_normal((1, 2, 12, 12))
    np.testing.assert_allclose(conv.forward(x)[:, :, 0, 0], net.forward(x), rtol=1e-10, atol=1e-12)
    big = rng.standard_normal((1, 2, 20, 20))
    assert not np.allclose(conv.forward(big)[:, :, 1, 1], net.forward(big[:, :, 4:16, 4:16]))


def test_conversion_layers_and_copied_weights():
    net = tiny_net(tail_batch_norm=True)
    conv = fc_to_conv(net, (2, 12, 12))
    kinds = [type(layer).__name__ for layer in conv.layers]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "AvgPool2d",
                     "Conv2d", "BatchNorm2d", "ReLU", "Dropout", "Conv2d", "Maxout", "Tanh", "Conv2d"]
    first, second, last = conv.layers[6], conv.layers[10], conv.layers[13]
    assert first.kernel_size == (2, 2) and first.in_channels == 4 and first.out_channels == 8
    assert second.kernel_size == (1, 1) and (second.in_channels, second.out_channels) == (8, 6)
    assert last.kernel_size == (1, 1) and (last.in_channels, last.out_channels) == (3, 5)
    w_fc = net.layers[7].params()["w"].data
    np.testing.assert_array_equal(first.params()["w"].data, w_fc.reshape(8, 4, 2, 2))
    np.testing.assert_array_equal(first.params()["b"].data, net.layers[7].params()["b"].data)
    assert first.params()["w"].data.dtype == np.float64

    # a copy: changing the converted net leaves the original alone, and the parameter count is the same
    first.params()["w"].data[...] = 0.0
    conv.layers[0].params()["w"].data[...] = 0.0
    assert np.abs(net.layers[7].params()["w"].data).max() > 0 and np.abs(net.layers[0].params()["w"].data).max() > 0
    assert conv.num_params() == net.num_params()
    assert conv.training == net.training


def test_vgg16_converts_shapes_only_as_the_notes_say():
    model = fc_to_conv(vgg16(), (3, 224, 224))
    assert model.named_parameters() == []
    fc1 = model.layers[31]
    assert isinstance(fc1, L.Conv2d)
    assert (fc1.in_channels, fc1.out_channels, fc1.kernel_size, fc1.stride, fc1.padding) == \
        (512, 4096, (7, 7), (1, 1), (0, 0))          # FC over 7x7x512 == CONV F=7, P=0, S=1, K=4096
    assert model.output_shape((1, 3, 224, 224)) == (1, 1000, 1, 1)
    assert L.Sequential(*model.layers[:31]).output_shape((1, 3, 384, 384)) == (1, 512, 12, 12)
    assert model.output_shape((1, 3, 384, 384)) == (1, 1000, 6, 6)       # 36 crops at stride 32
    assert summarize(model, (3, 384, 384)).total_params == 138_357_544


def test_fc_to_conv_errors():
    net = tiny_net()
    with pytest.raises(TypeError, match=r"model must be a Sequential, got Linear"):
        fc_to_conv(L.Linear(3, 2), (3, 4, 4))
    with pytest.raises(ValueError, match=r"input_shape must be the \(C, H, W\) of one sample.*got \(1, 2, 12, 12\)"):
        fc_to_conv(net, (1, 2, 12, 12))
    with pytest.raises(ValueError, match=r"no Flatten layer"):
        fc_to_conv(L.Sequential(L.Conv2d(1, 1, 1)), (1, 4, 4))
    with pytest.raises(ValueError, match=r"layer 7 \(Linear\) has in_features=16 but Flatten gives 4\*3\*3 = 36"):
        fc_to_conv(net, (2, 16, 16))
    with pytest.raises(ValueError, match=r"layer 2 \(LayerNorm\) after Flatten cannot be converted"):
        fc_to_conv(L.Sequential(L.Flatten(), L.Linear(4, 3), L.LayerNorm(3)), (1, 2, 2))
    with pytest.raises(ValueError, match=r"layer 1 \(ReLU\) comes between Flatten and the first Linear"):
        fc_to_conv(L.Sequential(L.Flatten(), L.ReLU(), L.Linear(4, 3)), (1, 2, 2))
    with pytest.raises(ValueError, match=r"layer 3 \(Linear\) has in_features=4 but receives 3 channels"):
        fc_to_conv(L.Sequential(L.Flatten(), L.Linear(4, 3), L.ReLU(), L.Linear(4, 2)), (1, 2, 2))
    with pytest.raises(ValueError, match=r"no Linear layer after Flatten"):
        fc_to_conv(L.Sequential(L.Conv2d(1, 1, 1), L.Flatten()), (1, 2, 2))
