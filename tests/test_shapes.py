import pytest

from nbconv.shapes import (conv1d_param_count, conv2d_output_shape, conv2d_param_count, conv_output_size,
                           linear_param_count)


@pytest.mark.parametrize("F", [1, 3, 5, 7, 9])
def test_same_padding_keeps_the_size_for_odd_kernels(F):
    for W in (5, 8, 13):
        assert conv_output_size(W, F, stride=1, padding=(F - 1) // 2) == W


def test_7x7_input_3x3_filter():
    assert conv2d_output_shape((7, 7), 3, stride=1) == (5, 5)
    assert conv2d_output_shape((7, 7), 3, stride=2) == (3, 3)


@pytest.mark.parametrize("W_in", [8, 9, 10, 11, 32])
def test_5x3_filter_padding_3_stride_2(W_in):
    # F = 5x3 (width x height): W_out = floor((W_in + 1)/2) + 1, H_out = floor((H_in + 3)/2) + 1
    H_in = W_in + 1
    assert conv2d_output_shape((H_in, W_in), (3, 5), stride=2, padding=3) == ((H_in + 3) // 2 + 1, (W_in + 1) // 2 + 1)


def test_1d_sizes_and_strict_mode():
    assert conv_output_size(5, 3, stride=1, padding=1) == 5
    assert conv_output_size(5, 3, stride=2, padding=1) == 3
    assert conv_output_size(5, 3, stride=3, padding=1) == 2            # the lecture floors
    assert conv_output_size(5, 3, stride=2, padding=1, strict=True) == 3
    with pytest.raises(ValueError, match=r"stride 3 does not fit evenly: .* 4/3 is not whole"):
        conv_output_size(5, 3, stride=3, padding=1, strict=True)        # the cs231n rule


def test_dilation():
    # floor((W + 2P - D(F - 1) - 1) / S) + 1
    assert conv_output_size(10, 3, dilation=2) == 6
    assert conv_output_size(10, 3, dilation=2, padding=2) == 10
    assert conv_output_size(10, 3, dilation=3, stride=2) == 2


def test_demo_and_cs231n_examples():
    assert conv2d_output_shape((5, 5), 3, stride=2, padding=1) == (3, 3)   # demo: 3x3x2
    assert conv2d_output_shape((11, 11), 5, stride=2) == (4, 4)
    assert conv2d_output_shape((227, 227), 11, stride=4) == (55, 55)       # AlexNet conv1


def test_parameter_counts():
    assert conv2d_param_count(3, 96, 11, bias=False) == 34_848              # AlexNet conv1 weights
    assert conv2d_param_count(3, 96, 11) == 34_944                          # with biases
    F, D1, K = 5, 7, 9
    assert conv2d_param_count(D1, K, F) == (F * F * D1) * K + K             # (F*F*D1)*K weights + K biases
    assert conv2d_param_count(4, 6, 3, groups=2) == 6 * 2 * 9 + 6
    assert conv1d_param_count(4, 6, 3) == 6 * 4 * 3 + 6
    assert linear_param_count(7 * 7 * 512, 4096, bias=False) == 102_760_448  # VGG16's first FC layer
    assert linear_param_count(10, 3) == 33


def test_window_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match=r"kernel of size 5 .* larger than the padded input of size 3"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match=r"stride must be an int >= 1, got 0"):
        conv_output_size(5, 3, stride=0)
