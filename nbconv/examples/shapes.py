"""The cs231n notes' comparisons of receptive fields, parameter counts and memory, replayed
(``nbconv example NAME``).

    receptive-field   three 3x3 layers see 7x7, as one 7x7 layer; dilations 1, 2, 4 see 15x15;
                      VGG16 reaches 212 after its fifth pool
    parameter-count   27 C^2 weights against 49 C^2; 105,705,600 weights without parameter
                      sharing; about 10M activations of three 3x3x64 layers; optimizer memory

The receptive field of an output is the span of input pixels it depends on, the jump the
distance in input pixels between two neighbouring outputs (nbconv.shapes.receptive_field_steps):

    r_l = r_(l-1) + d_l * (k_l - 1) * j_(l-1),    j_l = j_(l-1) * s_l,    r_0 = j_0 = 1

nbconv computes the values (nbconv.shapes, nbconv.summary); the expected ones are the notes'
figures or an independent computation written out here: the set of input pixels an output
depends on, found by walking back through the stack in plain Python, and counts multiplied out.
"""

from __future__ import annotations

import numpy as np

import nbconv.functional as F
from nbconv import shapes, summary
from nbconv.layers import Conv2d, Sequential

from .replay import Example, Replay, fmt


# ------------------------------------------------------------------------------ independent truth

def dependency_sets(layers) -> list[set]:
    """For a 1-D stack of windows ``layers`` = [(kernel, stride, dilation), ...] (no padding):
    which units of each level output 0 of the last layer depends on, from the input (level 0)
    to the output.  Walking back, unit p of a layer reads units p*s + t*d, t = 0 .. k-1, of the
    level below."""
    levels = [{0}]
    for k, s, d in reversed(layers):
        levels.append({p * s + t * d for p in levels[-1] for t in range(k)})
    return levels[::-1]


def span(units: set) -> int:
    """How many pixels a set of pixels spans, first to last."""
    return max(units) - min(units) + 1


def cone(layers, names: list[str]) -> list[str]:
    """The dependency cone of one output of a stride-1 stack, drawn over the input pixels: '#'
    marks the centre of every unit the output depends on, level by level (output at the top)."""
    levels = dependency_sets(layers)
    width = span(levels[0])
    rows, field = [], 1
    fields = [1]
    for k, _, d in layers:
        field += d * (k - 1)
        fields.append(field)
    for units, r, name in zip(levels, fields, names):
        centres = {p + (r - 1) // 2 for p in units}               # stride 1: unit p covers p .. p + r - 1
        rows.append((name, " ".join("#" if x in centres else "." for x in range(width))))
    label = max(len(name) for name, _ in rows)
    return [f"  {name:<{label}}  {picture}" for name, picture in reversed(rows)]


# ------------------------------------------------------------------------------ receptive-field

def _stack(kernel: int, dilations, channels: int = 1) -> Sequential:
    """A stack of CONV layers (shapes only) with the given dilations, stride 1, no padding."""
    return Sequential(*(Conv2d(channels, channels, kernel, dilation=d, bias=False, allocate=False)
                        for d in dilations))


def receptive_field() -> Replay:
    r = Replay("receptive-field", "Receptive fields: a stack of small filters, dilation, VGG16")
    r.say("One output of a layer depends on a window of the layer below; through a stack the window",
          "grows: r_l = r_(l-1) + d_l * (k_l - 1) * j_(l-1), and the jump j_l = j_(l-1) * s_l is the",
          "distance in input pixels between two neighbouring outputs (the product of the strides).", "")

    # three 3x3 layers against one 7x7
    r.say("Three 3x3 CONV layers, stride 1 (the notes: \"prefer a stack of small filters\"):")
    plain = [(3, 1, 1)] * 3
    r.say(*cone(plain, ["input", "layer 1", "layer 2", "layer 3"]), "")
    levels = dependency_sets(plain)
    steps = shapes.receptive_field_steps([3, 3, 3])
    for depth, ((rf, jump), text) in enumerate(zip(steps, ("3x3", "5x5", "7x7")), start=1):
        truth = span(dependency_sets(plain[:depth])[0])
        r.check(f"field after layer {depth}", rf, truth, lecture=text,
                note="the notes' \"effective receptive field\"" if depth == 2 else "")
    r.check("one 7x7 layer", shapes.receptive_field([7]), span(dependency_sets([(7, 1, 1)])[0]), lecture="7x7")
    fields = summary.receptive_fields(_stack(3, [1, 1, 1]), (1, 16, 16))
    r.say("nbconv.summary.receptive_fields on a Sequential of three Conv2d(3x3): "
          + ", ".join(f.size_text for f in fields[1:]))
    r.check("the summary's last row", fields[-1].size[0], span(levels[0]), lecture="7x7",
            note="height and width alike" if fields[-1].size[1] == fields[-1].size[0] else "")
    r.say("")

    # a dilated stack
    r.say("Dilation spreads the window's taps d pixels apart (nbconv and PyTorch: d = 1 is a",
          "contiguous filter, the notes' \"dilation 0\").  Three 3x3 layers with dilations 1, 2, 4:")
    dilated = [(3, 1, 1), (3, 1, 2), (3, 1, 4)]
    r.say(*cone(dilated, ["input", "layer 1, d=1", "layer 2, d=2", "layer 3, d=4"]), "")
    deps = dependency_sets(dilated)[0]
    r.check("field, dilations 1, 2, 4", shapes.receptive_field([3, 3, 3], dilations=[1, 2, 4]), span(deps),
            lecture="grows much faster", note="1 + 2*1 + 2*2 + 2*4 = 15")
    r.check("input pixels it reads", len(deps), span(deps), note="no gaps: every pixel of the 15")
    r.say("", f"  {'depth L':<15}" + "".join(f"{L:>6}" for L in range(1, 6)))
    for name, dil in (("dilation 1", [1] * 5), ("dilations 2^l", [1, 2, 4, 8, 16])):
        row = [fmt(rf) for rf, _ in shapes.receptive_field_steps([3] * 5, dilations=dil)]
        r.say(f"  {name:<15}" + "".join(f"{v:>6}" for v in row))
    r.say("  (2L + 1 against 2^(L+1) - 1: linear against exponential growth)", "")

    # the same field, seen by the backward pass of nbconv's convolution
    x = np.zeros((1, 1, 21, 21))
    ones = np.ones((1, 1, 3, 3))
    caches = []
    for d in (1, 2, 4):
        x, cache = F.conv2d_forward(x, ones, dilation=d)
        caches.append(cache)
    dout = np.zeros(x.shape)
    dout[0, 0, 3, 3] = 1.0                                      # one output of the 7x7 map
    for cache in reversed(caches):
        dout, _, _ = F.conv2d_backward(dout, cache)
    reached = np.argwhere(dout[0, 0] != 0)
    r.say("The backward pass agrees: on a 21x21 input (all-ones 3x3 filters, dilations 1, 2, 4) the",
          "gradient of one output reaches the input pixels of its field and no others.")
    r.check("input pixels with a gradient", len(reached), len(deps) ** 2, note="15 x 15")
    rows_, cols_ = (int(v) for v in np.ptp(reached, axis=0) + 1)
    r.check("their extent, rows", rows_, span(deps))
    r.check("their extent, columns", cols_, span(deps))
    r.say("")

    # VGG16
    r.say("VGG16 (13 CONV 3x3 stride 1, 5 POOL 2x2 stride 2), as `nbconv summary vgg16` prints it:")
    model = summary.vgg16()
    rows = summary.summarize(model, summary.VGG16_INPUT).rows
    fields = summary.receptive_fields(model, summary.VGG16_INPUT)
    pools = [k for k, row in enumerate(rows) if row.kind == "MaxPool2d"]
    # written out: block b of n convolutions at jump j adds n * 2j (the convolutions) + j (its pool)
    truth, jump, expected = 1, 1, []
    for convs in (2, 2, 3, 3, 3):
        truth += convs * 2 * jump + jump
        jump *= 2
        expected.append((truth, jump))
    for block, (k, (rf, jump)) in enumerate(zip(pools, expected), start=1):
        size = rows[k].output_shape
        r.check(f"field after pool{block} [{size[1]}x{size[2]}]", fields[k].size[0], rf,
                note=f"jump {fields[k].jump[0]}")
    r.check("jump after pool5", fields[pools[-1]].jump[0], expected[-1][1], lecture="224 / 7 = 32",
            note="the product of the five strides 2")
    r.say("An FC neuron after pool5 sees the whole image: `nbconv summary vgg16` prints \"all\".")
    return r


# ------------------------------------------------------------------------------ parameter-count

def parameter_count() -> Replay:
    r = Replay("parameter-count", "Parameters and memory: small filters, parameter sharing, activations, optimizers")

    # 27 C^2 against 49 C^2
    C = 64
    r.say(f"Three 3x3 CONV layers against one 7x7 layer, both keeping C channels (here C = {C}):",
          "  3 x (C x (3 x 3 x C)) = 27 C^2 weights against C x (7 x 7 x C) = 49 C^2, for the same 7x7 field")
    r.check("three 3x3 layers", shapes.conv_stack_param_count(C, 3, depth=3), 3 * (C * (3 * 3 * C)),
            lecture="27 C^2", note=f"27 * {C}^2")
    r.check("one 7x7 layer", shapes.conv_stack_param_count(C, 7, depth=1), C * (7 * 7 * C), lecture="49 C^2",
            note=f"49 * {C}^2")
    stack = _stack(3, [1, 1, 1], channels=C)
    r.check("the stack as Conv2d layers", summary.summarize(stack, (C, 32, 32)).total_params, 27 * C * C,
            note="nbconv.summary on Sequential(Conv2d x 3)")
    r.say(f"  27/49 = {27 / 49:.2f}: 45% fewer weights, and two more nonlinearities between them", "")

    # parameter sharing
    r.say("AlexNet CONV1 without parameter sharing: every neuron of the 55x55x96 output has its own",
          "11x11x3 weights and bias:")
    neurons, per_neuron = 55 * 55 * 96, 11 * 11 * 3 + 1
    r.say(f"  55 * 55 * 96 = {neurons:,} neurons, 11 * 11 * 3 = 363 weights + 1 bias = {per_neuron} each")
    unshared = shapes.unshared_param_count(3, 96, 11, (55, 55))
    r.check("without sharing", unshared, 105_705_600, lecture="290 400 * 364 = 105 705 600")
    shared = shapes.conv2d_param_count(3, 96, 11)
    r.check("with sharing", shared, 96 * (11 * 11 * 3) + 96, lecture="96*11*11*3 weights + 96 biases",
            note="34,848 + 96")
    r.say(f"  sharing divides the count by {unshared // shared:,} = 55 * 55, the positions that share a filter", "")

    # activations of three 3x3x64 layers
    r.say("Three 3x3 CONV layers of 64 filters with padding 1 on a 224x224x3 image make three",
          "224x224x64 volumes:")
    acts = shapes.conv_stack_activations((3, 224, 224), [64, 64, 64])
    r.check("activations", acts, 3 * 224 * 224 * 64, lecture="about 10 million", note="9.6M")
    model = Sequential(*(Conv2d(c, 64, 3, padding=1, allocate=False) for c in (3, 64, 64)))
    s = summary.summarize(model, (3, 224, 224))
    r.check("from nbconv.summary", s.total_activations - 3 * 224 * 224, 9_633_792, note="the input row left out")
    memory = shapes.training_memory(acts, 0)
    both = (memory.activations + memory.activation_grads) * memory.dtype_bytes
    r.check("bytes, with the gradients", both, 9_633_792 * 2 * 4, lecture="72MB",
            note=f"{both / 1e6:.1f} MB = {both / 2 ** 20:.1f} MiB: the text's 72 MB is neither figure")
    r.say("")

    # optimizer memory
    r.say("The parameters need memory three times over or more: the values, their gradients and the",
          "optimizer's state (momentum's velocity; Adam's two moments).  VGG16's 138,357,544 parameters",
          "in float32:")
    P, vgg = 138_357_544, summary.vgg16()
    for name, copies, text in (("sgd", 2, ""), ("momentum", 3, "at least 3x the parameters"), ("adam", 4, "")):
        m = summary.training_memory(vgg, summary.VGG16_INPUT, optimizer=name)
        held = (m.params + m.param_grads + m.optimizer_state) * m.dtype_bytes
        r.check(f"{name}: params+grads+state", held, copies * P * 4, lecture=text,
                note=f"{copies}x, {held / 1e9:.2f} GB")
    m = summary.training_memory(vgg, summary.VGG16_INPUT, batch_size=64, optimizer="momentum")
    r.check("momentum, batch 64: total", m.bytes, (2 * 64 * 15_237_608 + 3 * P) * 4,
            note=f"{m.bytes / 1e9:.2f} GB: the activations dominate; a smaller batch fits")
    r.say("(`nbconv summary vgg16 --batch-size 64 --optimizer momentum` prints the breakdown.)")
    return r


EXAMPLES = [
    Example("receptive-field", "three 3x3 layers see 7x7 like one 7x7; dilations 1, 2, 4 see 15; VGG16 reaches 212",
            receptive_field),
    Example("parameter-count", "27C^2 against 49C^2, 105,705,600 unshared weights, ~10M activations, "
            "optimizer memory", parameter_count),
]
