"""The course's pictures, each a worked example with checks and a figure (``nbconv example NAME
--plot out.png``; the figures need matplotlib, the plot extra; the images and digits come with
scikit-learn, the train extra).

    filters                 the lecture's 3x3 filters (identity, edge detection, sharpen, blur)
                            on a photograph and on a digit
    feature-maps            the feature maps of a small trained digits network, layer by layer
    rf-growth               the receptive field of one output pixel through stacks of 3x3 convs
                            (plain, dilated, strided), found by backpropagation
    fc-to-conv              the notes' FC -> CONV conversion: a digits classifier slid over a
                            larger image in one pass, a map of class scores

and the figure helpers (``new_figure``, ``save_png``) that the picture of ``norm-groups``
(nbconv.examples.normalization) uses too.

Every convolution is nbconv's cross-correlation, the kernel not flipped:

    y[i, j] = sum_{a, b} x[i + a, j + b] * k[a, b]          (P = 0, S = 1)

The expected values are written out here in NumPy (shifted slices, reshapes, the closed
forms), never nbconv's function under test called again.  The figures are drawn with
matplotlib's object API (``matplotlib.figure.Figure``, saved through the Agg canvas): no pyplot,
no window, no backend chosen or changed.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

import nbconv.functional as F

from .convolution import grid, indented, side_by_side
from .replay import Example, Replay, fmt

DPI = 100
# the size of each picture in inches (width, height); the PNG is DPI times as many pixels
PICTURE_SIZES = {
    "filters": (12.0, 5.2),
    "feature-maps": (12.0, 8.0),
    "rf-growth": (10.0, 10.0),
    "fc-to-conv": (12.0, 5.0),
    "norm-groups": (12.0, 7.0),
}


def new_figure(name: str):
    """An empty figure of the picture ``name``'s size (matplotlib imported here, not before)."""
    from matplotlib.figure import Figure          # the object API: no pyplot, no backend chosen
    return Figure(figsize=PICTURE_SIZES[name], dpi=DPI, layout="constrained")


def save_png(fig, path) -> None:
    """Write the figure to ``path`` as a PNG."""
    fig.savefig(path, dpi=DPI, format="png")


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def correlate_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlation of one image with one kernel, P = 0, S = 1, by shifted slices:

        y = sum_{a, b} k[a, b] * x[a : a + OH, b : b + OW],   OH = H - KH + 1, OW = W - KW + 1

    (each kernel entry times the image shifted by its offset; the independent truth here)."""
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    KH, KW = kernel.shape
    OH, OW = image.shape[0] - KH + 1, image.shape[1] - KW + 1
    y = np.zeros((OH, OW))
    for a in range(KH):
        for b in range(KW):
            y += kernel[a, b] * image[a:a + OH, b:b + OW]
    return y


# ================================================================================ filters

# The lecture's 3x3 filters, as "Introduction to neural networks" prints them.  Its blur has
# every entry 1/8: nine of them sum to 9/8, so it brightens as it blurs (a box blur is 1/9).
TEXT_FILTERS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edge detection": [[-1, -2, -1], [-2, 4, 2], [-1, 2, -1]],
    "sharpen": [[-1, -4, -1], [-4, 21, -4], [-1, -4, -1]],
    "blur": [[Fraction(1, 8)] * 3 for _ in range(3)],
}
PHOTO = "china.jpg"             # one of the two photographs that ship with scikit-learn
PHOTO_BLOCK = 4                 # downsampled by the mean of each 4x4 block: 427x640 -> 106x160
LUMA = (0.299, 0.587, 0.114)    # gray = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), / 255
DIGIT = 5                       # the digits data set's image 5, a "5" (pixels 0..16)


def kernel_stack() -> np.ndarray:
    """The four filters as one weight tensor (4, 1, 3, 3): one output channel per filter."""
    return np.array([[[[float(v) for v in row] for row in k]] for k in TEXT_FILTERS.values()])


def kernel_sum(kernel) -> Fraction:
    """The exact sum of a kernel's entries (fractions: 9 * 1/8 is 9/8, not 1.125 - rounding)."""
    return sum((Fraction(v) for row in kernel for v in row), Fraction(0))


@functools.lru_cache(maxsize=1)
def gray_photo() -> np.ndarray:
    """scikit-learn's china.jpg in gray, values 0..1, downsampled by PHOTO_BLOCK (block means)."""
    from sklearn.datasets import load_sample_image
    rgb = load_sample_image(PHOTO).astype(np.float64) / 255.0
    gray = rgb @ np.array(LUMA)
    b = PHOTO_BLOCK
    H, W = (gray.shape[0] // b) * b, (gray.shape[1] // b) * b
    return gray[:H, :W].reshape(H // b, b, W // b, b).mean(axis=(1, 3))


@functools.lru_cache(maxsize=1)
def digit_image() -> tuple[np.ndarray, int]:
    """The digits data set's image DIGIT (8x8, pixels 0..16 as stored) and its label."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.images[DIGIT].astype(np.float64), int(bunch.target[DIGIT])


def apply_filters(image: np.ndarray) -> np.ndarray:
    """nbconv's conv2d of one gray image with the four filters at once, P = 0, S = 1:
    x (1, 1, H, W) and w (4, 1, 3, 3) -> (4, H - 2, W - 2), one map per filter."""
    y, _ = F.conv2d_forward(np.ascontiguousarray(image)[None, None], kernel_stack())
    return y[0]


def _short(v: float) -> str:
    text = fmt(v, 3)
    return f"({text})" if text.startswith("-") else text


def filters() -> Replay:
    r = Replay("filters", "The lecture's 3x3 filters on a photograph and on a digit")
    names = list(TEXT_FILTERS)
    r.say("The lecture's filters (cross-correlation, P = 0, S = 1: each output is the 3x3 window",
          "under the kernel, multiplied cell by cell and added):",
          *side_by_side([grid([[str(v) for v in row] for row in k]) for k in TEXT_FILTERS.values()], names),
          "nbconv runs all four at once, a CONV layer of 4 filters:",
          "  y, _ = F.conv2d_forward(x (1, 1, H, W), w (4, 1, 3, 3))      y: (1, 4, H - 2, W - 2)")

    sums = {name: kernel_sum(k) for name, k in TEXT_FILTERS.items()}
    flat, _ = F.conv2d_forward(np.ones((1, 1, 3, 3)), kernel_stack())
    r.say("", "On a flat image (every pixel 1) a filter gives the sum of its entries: 1 keeps the",
          "brightness, 0 turns flat regions black (only changes remain), 9/8 brightens by an eighth:")
    for f, name in enumerate(names):
        note = ("the text's blur: 9 x 1/8 = 9/8; a box blur is 1/9 each, sum 1" if name == "blur" else "")
        lecture = "every entry 1/8" if name == "blur" else ""
        r.check(f"{name} kernel sum", flat[0, f, 0, 0], float(sums[name]), lecture=lecture,
                note=note, tol=1e-12)

    image, label = digit_image()
    digit_out = apply_filters(image)
    r.say("", f"A digit: image {DIGIT} of scikit-learn's digits (a {label}), 8x8, pixels 0..16 as stored;",
          "each filter gives a 6x6 map (the 8x8 without its one-pixel border: P = 0).",
          *side_by_side([grid(image)], [f"the digit ({label})"]))
    for pair in (names[:2], names[2:]):
        r.say(*side_by_side([grid(digit_out[names.index(n)]) for n in pair], pair))
    for f, name in enumerate(names):
        r.check(f"digit, {name}", digit_out[f], correlate_valid(image, kernel_stack()[f, 0]), tol=1e-9,
                note="NumPy: sum of shifted slices")
    r.check("digit, identity = interior", digit_out[0], image[1:-1, 1:-1], tol=0.0,
            note="x[1:-1, 1:-1], exactly")

    photo = gray_photo()
    photo_out = apply_filters(photo)
    r.say("", f"A photograph: scikit-learn's {PHOTO} (427x640 RGB) in gray, values 0..1,",
          f"  gray = ({LUMA[0]} R + {LUMA[1]} G + {LUMA[2]} B) / 255, then the mean of each "
          f"{PHOTO_BLOCK}x{PHOTO_BLOCK} block: {photo.shape[0]}x{photo.shape[1]};",
          f"  each filter gives {photo_out.shape[1]}x{photo_out.shape[2]}.")
    edge = names.index("edge detection")
    i, j = np.unravel_index(np.argmax(np.abs(photo_out[edge])), photo_out[edge].shape)
    window = photo[i:i + 3, j:j + 3]
    kernel = kernel_stack()[edge, 0]
    terms = [f"{_short(a)}*{_short(b)}" for a, b in zip(window.ravel(), kernel.ravel())]
    r.say(f"edge detection at its strongest response on the photo, output ({i}, {j}):",
          f"the window at rows {i}..{i + 2}, columns {j}..{j + 2} of the photo, times the kernel, added:",
          *side_by_side([grid(np.round(window, 3)), grid(kernel)], ["window (3 places)", "kernel"]),
          "  " + " + ".join(terms[:5]) + " +", "  " + " + ".join(terms[5:])
          + f" = {fmt(float((window * kernel).sum()), 4)}")
    r.check(f"photo, edge detection ({i}, {j})", photo_out[edge, i, j], float((window * kernel).sum()),
            tol=1e-12, note="the nine products above, added")
    for f, name in enumerate(names):
        r.check(f"photo, {name}", photo_out[f], correlate_valid(photo, kernel_stack()[f, 0]), tol=1e-9,
                note="NumPy: sum of shifted slices")
    r.check("photo, identity = interior", photo_out[0], photo[1:-1, 1:-1], tol=0.0, note="exactly")
    flipped = correlate_valid(photo, kernel[::-1, ::-1])
    r.say("", "The edge kernel as printed is not symmetric: flipped (true convolution, as the lecture's",
          f"formula writes it) it gives another map, max |difference| = "
          f"{fmt(float(np.abs(flipped - photo_out[edge]).max()), 3)}; the other three are symmetric.")
    r.say("", "--plot draws the photo and the digit under each filter.")
    return r


def draw_filters(path) -> None:
    """The photo and the digit (rows) as they are and under each filter (columns)."""
    names = list(TEXT_FILTERS)
    image, label = digit_image()
    rows = [("photo", gray_photo()), (f"digit ({label})", image)]
    fig = new_figure("filters")
    photo_shape = rows[0][1].shape
    axes = fig.subplots(2, 1 + len(names), gridspec_kw=dict(height_ratios=[photo_shape[0] / photo_shape[1], 1]))
    for row, (what, x) in enumerate(rows):
        out = apply_filters(x)
        top = float(x.max())
        panels = [("input", x, dict(cmap="gray", vmin=0.0, vmax=top))]
        for f, name in enumerate(names):
            if name == "edge detection":          # signed: 0 is mid-gray
                limit = float(np.percentile(np.abs(out[f]), 99.5)) or 1.0
                style = dict(cmap="gray", vmin=-limit, vmax=limit)
            else:                                 # the input's scale: the blur's 9/8 shows
                style = dict(cmap="gray", vmin=0.0, vmax=top)
            panels.append((name, out[f], style))
        H, W = x.shape
        for col, (name, a, style) in enumerate(panels):
            ax = axes[row, col]
            # an output pixel (i, j) drawn over the input pixel (i + 1, j + 1), its window's centre:
            # P = 0 leaves the one-pixel border empty
            offset = (H - a.shape[0]) // 2
            ax.imshow(a, interpolation="nearest",
                      extent=(offset - 0.5, offset + a.shape[1] - 0.5, offset + a.shape[0] - 0.5, offset - 0.5),
                      **style)
            ax.set_xlim(-0.5, W - 0.5)
            ax.set_ylim(H - 0.5, -0.5)
            ax.set_facecolor("#cfe0f0")
            _blank(ax)
            if row == 0:
                if name == "input":
                    ax.set_title("input", fontsize=10)
                else:
                    k = TEXT_FILTERS[name]
                    text = "\n".join("  ".join(f"{str(v):>4}" for v in r_) for r_ in k)
                    ax.set_title(f"{name} (sum {kernel_sum(k)})\n{text}", fontsize=8, family="monospace")
            if col == 0:
                ax.set_ylabel(f"{what}\n{H}x{W}", fontsize=10)
            elif row == 1:
                ax.set_xlabel(f"{a.shape[0]}x{a.shape[1]} (P = 0)", fontsize=9)
    fig.suptitle("The lecture's 3x3 filters by nbconv's conv2d, P = 0 (the border it drops in blue)\n"
                 "edge detection signed (0 is gray); the others on the input's scale, where the blur's 9/8 "
                 "brightens", fontsize=11)
    save_png(fig, path)


# ================================================================================ feature-maps

NET_CHANNELS = (8, 16)          # lenet's two stages, small so it trains in about a second
NET_HIDDEN = 32
NET_EPOCHS = 3
NET_LR = 0.01                   # Adam
NET_BATCH = 32
NET_SEED = 0
ACCURACY_BAR = 0.90             # test accuracy the trained network must reach
SHOWN_TEST_IMAGE = 4            # the test image whose maps are drawn (a 5)

# the layers of lenet whose outputs the picture draws (by index), and their names there
STAGES = [(0, "conv1"), (2, "conv1 -> BN -> ReLU"), (5, "conv2 -> BN -> ReLU"), (6, "max pool 2x2"),
          (9, "conv3 -> BN -> ReLU"), (10, "max pool 2x2")]


def train_on_digits(model, data, *, lr: float, epochs: int, seed: int):
    """Train ``model`` on the digits ``data`` with Adam, seeded, on one thread (reproducible);
    returns (the model in eval mode, data, its test accuracy)."""
    from nbconv.optim import make_optimizer
    from nbconv.training import evaluate, thread_limit, train

    optimizer = make_optimizer("adam", model.parameters(), lr)
    with thread_limit(1):
        train(model, data, optimizer, epochs=epochs, batch_size=NET_BATCH, seed=seed, progress=False)
        _, accuracy = evaluate(model, data.x_test, data.y_test)
    model.eval()
    return model, data, accuracy


@functools.lru_cache(maxsize=1)
def trained_digits_net():
    """nbconv's lenet (channels NET_CHANNELS, hidden NET_HIDDEN) trained on digits for NET_EPOCHS
    epochs: (model in eval mode, data, test accuracy)."""
    from nbconv.data import load_digits
    from nbconv.models import lenet

    model = lenet(seed=NET_SEED, channels=NET_CHANNELS, hidden=NET_HIDDEN)
    return train_on_digits(model, load_digits(seed=NET_SEED), lr=NET_LR, epochs=NET_EPOCHS, seed=NET_SEED)


def layer_outputs(model, x) -> list[np.ndarray]:
    """x through the model's layers one by one: the output of every layer, in order."""
    outputs = []
    for layer in model.layers:
        x = layer.forward(x)
        outputs.append(x)
    return outputs


def _layer_table(model, outputs) -> list[str]:
    return [f"  [{k:>2}] {type(layer).__name__:<12} -> {tuple(out.shape[1:])}"
            for k, (layer, out) in enumerate(zip(model.layers, outputs))]


def feature_maps() -> Replay:
    r = Replay("feature-maps", "Feature maps of a trained digits network, layer by layer")
    model, data, accuracy = trained_digits_net()
    r.say(f"nbconv's lenet, channels {NET_CHANNELS}, hidden {NET_HIDDEN}, trained by nbconv.training.train on the",
          f"digits ({len(data.y_train)} training images of 8x8) for {NET_EPOCHS} epochs: Adam lr {NET_LR}, "
          f"batch {NET_BATCH}, seed {NET_SEED},",
          "on one thread (the same weights every run); then eval mode (batch norm's running statistics).")
    r.say(f"test accuracy on {len(data.y_test)} held-out digits: {fmt(accuracy, 4)}")
    r.check(f"test accuracy >= {ACCURACY_BAR}", bool(accuracy >= ACCURACY_BAR), True,
            note=f"{fmt(accuracy, 4)}; chance is 0.1")

    x = data.x_test[SHOWN_TEST_IMAGE:SHOWN_TEST_IMAGE + 1]
    label = int(data.y_test[SHOWN_TEST_IMAGE])
    outputs = layer_outputs(model, x)
    r.say("", f"test image {SHOWN_TEST_IMAGE} (a {label}) through the layers, model.layers[k].forward "
              "one by one:", *_layer_table(model, outputs))

    conv1 = model.layers[0]
    w = conv1.params()["w"].data                     # (c1, 1, 3, 3), no bias (batch norm follows)
    padded = np.pad(x[0, 0].astype(np.float64), 1)   # the layer's padding = 1
    expected = np.stack([correlate_valid(padded, w[f, 0]) for f in range(w.shape[0])])
    r.say("", f"conv1's maps: its {w.shape[0]} filters (3x3, padding 1, no bias) over the image; channel 0 "
              "(2 places):", *indented(grid(np.round(outputs[0][0, 0], 2))))
    r.check("conv1 maps = NumPy", outputs[0][0], expected, tol=1e-5,
            note="shifted slices of the padded image; float32")
    r.check("ReLU = max(0, BN output)", outputs[2][0], np.maximum(outputs[1][0], 0.0), tol=0.0,
            note="np.maximum, elementwise")
    C, H, W = outputs[5][0].shape
    block_max = outputs[5][0].reshape(C, H // 2, 2, W // 2, 2).max(axis=(2, 4))
    r.check("pool = max of 2x2 blocks", outputs[6][0], block_max, tol=0.0,
            note="NumPy: reshape, max over each block")
    scores = outputs[-1][0]
    r.say("", "the scores (logits) of the ten classes:", "  " + fmt(np.round(scores, 2)),
          f"predicted {int(np.argmax(scores))}, label {label}", "",
          "--plot draws the image and every channel of each stage, and the scores.")
    return r


def draw_feature_maps(path) -> None:
    """The test image, every channel of each stage (a row each), and the scores."""
    model, data, _ = trained_digits_net()
    x = data.x_test[SHOWN_TEST_IMAGE:SHOWN_TEST_IMAGE + 1]
    label = int(data.y_test[SHOWN_TEST_IMAGE])
    outputs = layer_outputs(model, x)
    maps = [(name, outputs[k][0]) for k, name in STAGES]
    columns = max(m.shape[0] for _, m in maps)
    fig = new_figure("feature-maps")
    rows = len(maps) + 2
    gs = fig.add_gridspec(rows, columns)
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(x[0, 0], cmap="gray", interpolation="nearest")
    _blank(ax)
    ax.set_ylabel("input", fontsize=9)
    ax.set_title(f"test image {SHOWN_TEST_IMAGE} (a {label})", fontsize=9, loc="left")
    for row, (name, m) in enumerate(maps, start=1):
        low, high = float(m.min()), float(m.max())
        for c in range(m.shape[0]):
            ax = fig.add_subplot(gs[row, c])
            ax.imshow(m[c], cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
            _blank(ax)
            if c == 0:
                ax.set_ylabel(f"{name}\n{m.shape[0]}x{m.shape[1]}x{m.shape[2]}", fontsize=7,
                              rotation=0, ha="right", va="center")
    ax = fig.add_subplot(gs[rows - 1, :])
    scores = outputs[-1][0]
    colors = ["tab:orange" if k == int(np.argmax(scores)) else "tab:blue" for k in range(len(scores))]
    ax.bar(range(len(scores)), scores, color=colors)
    ax.set_xticks(range(len(scores)))
    ax.set_ylabel("scores", fontsize=9)
    ax.set_title(f"class scores: predicted {int(np.argmax(scores))}", fontsize=9)
    fig.suptitle(f"Feature maps of nbconv's lenet {NET_CHANNELS} trained on digits "
                 f"(each row on one color scale)", fontsize=11)
    save_png(fig, path)


# ================================================================================ rf-growth

RF_SIZE = 33                    # the input: 33 = 2^5 + 1 keeps every stack's pixel centred
RF_DEPTH = 4
# each stack: its layers as (kernel k, stride s, dilation d); padding d * (k - 1) / 2
RF_STACKS = {
    "plain": [(3, 1, 1)] * RF_DEPTH,
    "dilated": [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)],
    "strided": [(3, 2, 1)] * RF_DEPTH,
    "dilation 2": [(3, 1, 2)] * RF_DEPTH,
}
RF_TITLES = {
    "plain": "3x3 convs, stride 1",
    "dilated": "3x3 convs, dilation 1, 2, 4, 8",
    "strided": "3x3 convs, stride 2",
    "dilation 2": "3x3 convs, dilation 2 each (gaps)",
}


def receptive_field(layers) -> list[int]:
    """The receptive field after each layer, by the closed form

        r_L = 1 + sum_{l=1..L} (k_l - 1) * d_l * j_{l-1},     j_l = s_1 * s_2 * ... * s_l,  j_0 = 1

    (a k x k filter of dilation d spans (k - 1) d + 1 of its input, whose pixels are j_{l-1} input
    pixels apart: the jump)."""
    sizes, r, jump = [], 1, 1
    for k, s, d in layers:
        r += (k - 1) * d * jump
        jump *= s
        sizes.append(r)
    return sizes


def gradient_footprint(layers, size: int = RF_SIZE) -> np.ndarray:
    """dL/dx of a (size x size) input for L = the centre pixel of the last output, pushed back
    through every layer by F.conv2d_backward; the weights are ones (no cancellation), so the
    nonzero pixels are the receptive field, each counting the paths from it to the output."""
    x = np.zeros((1, 1, size, size))
    caches = []
    for k, s, d in layers:
        x, cache = F.conv2d_forward(x, np.ones((1, 1, k, k)), stride=s, padding=d * (k - 1) // 2, dilation=d)
        caches.append(cache)
    grad = np.zeros_like(x)
    grad[0, 0, x.shape[2] // 2, x.shape[3] // 2] = 1.0
    for cache in reversed(caches):
        grad, _, _ = F.conv2d_backward(grad, cache)
    return grad[0, 0]


def footprint_extent(footprint: np.ndarray) -> tuple[int, int, int]:
    """(height, width) of the smallest box around the nonzero pixels, and how many are nonzero."""
    rows = np.flatnonzero(footprint.any(axis=1))
    cols = np.flatnonzero(footprint.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1), int(np.count_nonzero(footprint))


def footprints() -> dict[str, list[np.ndarray]]:
    """Every stack's footprint at depth 1 .. RF_DEPTH."""
    return {name: [gradient_footprint(layers[:depth]) for depth in range(1, len(layers) + 1)]
            for name, layers in RF_STACKS.items()}


def reached_pixels(layers) -> int:
    """How many input pixels the stack reaches, gaps left out, by enumeration: along one axis the
    offsets from the centre are the sums of one tap per layer, layer l's taps at
    j_{l-1} * d_l * (-1, 0, +1) for k = 3 (in input pixels); the 2-D field is their square."""
    offsets, jump = {0}, 1
    for k, s, d in layers:
        offsets = {o + jump * d * (t - (k - 1) // 2) for o in offsets for t in range(k)}
        jump *= s
    return len(offsets) ** 2


def receptive_field_growth() -> Replay:
    r = Replay("rf-growth", "The receptive field growing through stacks of 3x3 convs")
    r.say("The receptive field of an output pixel: the input pixels it depends on.  Measured by",
          "backpropagation: set dL/dy = 1 at the centre output pixel, 0 elsewhere, push it back through",
          "F.conv2d_backward layer by layer (weights all ones); the nonzero pixels of dL/dx are the field.",
          "The closed form, a layer l of kernel k_l, stride s_l and dilation d_l:",
          "  r_L = 1 + sum_l (k_l - 1) * d_l * j_{l-1},   j_l = s_1 * ... * s_l (the jump), j_0 = 1",
          f"Input {RF_SIZE}x{RF_SIZE}, padding d (k - 1) / 2 per layer.")
    prints = footprints()
    for name, layers in RF_STACKS.items():
        closed = receptive_field(layers)
        r.say("", f"{RF_TITLES[name]}:",
              "  depth  (k, s, d)  jump before  r = closed form           measured: box, nonzero")
        jump, total, measured, expected = 1, "1", [], []
        for depth, ((k, s, d), rf, fp) in enumerate(zip(layers, closed, prints[name]), start=1):
            total += f" + {(k - 1) * d * jump}"
            h, w, n = footprint_extent(fp)
            r.say(f"  {depth:>5}  ({k}, {s}, {d})  {jump:>11}  {total + ' = ' + str(rf):<24}  "
                  f"{h}x{w}, {n}")
            measured.append([h, w, n])
            expected.append([rf, rf, reached_pixels(layers[:depth])])
            jump *= s
        r.check(f"{name}: box and nonzero", np.array(measured), np.array(expected),
                note="r x r, " + ("every other pixel: gaps" if name == "dilation 2" else "every pixel"))
    two = prints["plain"][1]
    h, w, _ = footprint_extent(two)
    c = (two.shape[0] - h) // 2
    paths = np.convolve([1, 1, 1], [1, 1, 1])        # 1 2 3 2 1: the ways two 3-taps add up to each offset
    r.say("", "Two plain 3x3 layers: dL/dx around the centre, each value the number of paths from",
          "that input pixel to the output pixel (the product of 1 2 3 2 1 along each axis):",
          *indented(grid(two[c:c + h, c:c + w])))
    r.check("plain, depth 2: path counts", two[c:c + h, c:c + w], np.outer(paths, paths).astype(float), tol=0.0)
    gaps = prints["dilation 2"][1]
    h, w, _ = footprint_extent(gaps)
    c = (gaps.shape[0] - h) // 2
    r.say("", "Two 3x3 layers of dilation 2: a 9x9 field with holes (# reached, . not), the gridding",
          "that the dilations 1, 2, 4, 8 avoid:",
          *indented(["".join("#" if v else "." for v in row) for row in gaps[c:c + h, c:c + w]]))
    r.say("", "Three 3x3 layers see 7x7, as one 7x7 layer does, with 27 C^2 weights against 49 C^2.",
          "--plot draws dL/dx of every stack at every depth.")
    return r


def draw_receptive_field_growth(path) -> None:
    """One row per stack, one column per depth: dL/dx (the path counts, log scale), the box of
    the closed form around it."""
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    prints = footprints()
    fig = new_figure("rf-growth")
    axes = fig.subplots(len(RF_STACKS), RF_DEPTH)
    for row, (name, layers) in enumerate(RF_STACKS.items()):
        closed = receptive_field(layers)
        for col, (fp, rf) in enumerate(zip(prints[name], closed)):
            ax = axes[row, col]
            shown = np.ma.masked_equal(fp, 0.0)
            ax.imshow(np.ones_like(fp), cmap="gray", vmin=0, vmax=1.2)          # the input, light gray
            ax.imshow(shown, cmap="magma_r", norm=LogNorm(vmin=0.3, vmax=max(float(fp.max()), 2.0)),
                      interpolation="nearest")
            top = (RF_SIZE - rf) / 2 - 0.5
            ax.add_patch(Rectangle((top, top), rf, rf, fill=False, edgecolor="tab:blue", lw=1.2))
            _blank(ax)
            k, s, d = layers[col]
            ax.set_title(f"depth {col + 1}: {rf}x{rf}  (k={k}, s={s}, d={d})", fontsize=9)
            if col == 0:
                ax.set_ylabel(RF_TITLES[name].replace(", ", ",\n", 1), fontsize=9)
    fig.suptitle(f"Receptive field of the centre output pixel: dL/dx by conv2d_backward on a {RF_SIZE}x{RF_SIZE} "
                 f"input\n(colour: paths to the output, log scale; box: 1 + sum (k-1) d jump)", fontsize=11)
    save_png(fig, path)


# ================================================================================ fc-to-conv

FC_CHANNELS = 8                 # conv 3x3, P = 0: 8x8 -> 6x6, max pool 2 -> 3x3
FC_HIDDEN = 32
FC_EPOCHS = 4
FC_LR = 0.01
FC_SEED = 1
CANVAS = 20                     # the larger image: 20x20, a digit in each corner
CANVAS_CLASSES = (3, 7, 0, 4)   # the classes of the four digits: top-left, top-right, bottom-left, bottom-right
TOTAL_STRIDE = 2                # of conv (1) and pool (2): one score per 2 pixels


def fc_net(seed: int):
    """CONV -> RELU -> POOL -> FC -> RELU -> FC on 8x8 digits, float64, no padding (a padded
    convolution would treat a crop's border unlike the larger image's inside)."""
    from nbconv.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
    from nbconv.init import as_rng
    rng = as_rng(seed)
    return Sequential(Conv2d(1, FC_CHANNELS, 3, seed=rng, dtype=np.float64), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(FC_CHANNELS * 3 * 3, FC_HIDDEN, seed=rng, dtype=np.float64), ReLU(),
                      Linear(FC_HIDDEN, 10, init="xavier_normal", seed=rng, dtype=np.float64))


@functools.lru_cache(maxsize=1)
def trained_fc_net():
    """fc_net trained on digits (float64) for FC_EPOCHS epochs: (model in eval mode, data, test
    accuracy)."""
    from nbconv.data import load_digits

    data = load_digits(seed=FC_SEED, dtype=np.float64)
    return train_on_digits(fc_net(FC_SEED), data, lr=FC_LR, epochs=FC_EPOCHS, seed=FC_SEED)


def digit_canvas(data) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A CANVAS x CANVAS image (normalized as the digits are: a blank pixel is -mean/std) with the
    first test digit of each class of CANVAS_CLASSES in a corner; returns it (1, 1, H, W) and
    (row, column, class) of each digit's top-left pixel."""
    canvas = np.full((1, 1, CANVAS, CANVAS), -data.mean / data.std)
    corners = [(0, 0), (0, CANVAS - 8), (CANVAS - 8, 0), (CANVAS - 8, CANVAS - 8)]
    placed = []
    for (top, left), cls in zip(corners, CANVAS_CLASSES):
        k = int(np.flatnonzero(data.y_test == cls)[0])
        canvas[0, 0, top:top + 8, left:left + 8] = data.x_test[k, 0]
        placed.append((top, left, cls))
    return canvas, placed


def converted_weights(model):
    """The FC layers as convolutions, the notes' conversion: FC1 (hidden, C*3*3) looks at the whole
    3x3xC volume, so each of its rows is one filter of C x 3 x 3 (Flatten's order is (c, h, w));
    FC2 (10, hidden) is a 1x1 convolution.  Returns (w1, b1, w2, b2)."""
    fc1, fc2 = model.layers[4], model.layers[6]
    w1 = fc1.params()["w"].data.reshape(FC_HIDDEN, FC_CHANNELS, 3, 3)
    w2 = fc2.params()["w"].data.reshape(10, FC_HIDDEN, 1, 1)
    return w1, fc1.params()["b"].data, w2, fc2.params()["b"].data


def score_map(model, image) -> np.ndarray:
    """The converted network on an image of any size: the CONV/RELU/POOL layers as they are, then
    the FC layers as convolutions, in one pass.  Returns the class scores (10, OH, OW)."""
    features = image
    for layer in model.layers[:3]:                 # conv, relu, pool
        features = layer.forward(features)
    w1, b1, w2, b2 = converted_weights(model)
    hidden, _ = F.conv2d_forward(features, w1, b1)
    hidden, _ = F.relu_forward(hidden)
    scores, _ = F.conv2d_forward(hidden, w2, b2)
    return scores[0]


def crops(image: np.ndarray, OH: int, OW: int) -> np.ndarray:
    """The 8x8 crops at rows 2i, columns 2j (the total stride), i < OH, j < OW: (OH*OW, 1, 8, 8)."""
    S = TOTAL_STRIDE
    return np.concatenate([image[:, :, S * i:S * i + 8, S * j:S * j + 8] for i in range(OH) for j in range(OW)])


def fc_to_conv() -> Replay:
    r = Replay("fc-to-conv", "FC -> CONV: a digits classifier slid over a larger image in one pass")
    model, data, accuracy = trained_fc_net()
    C, D, K = FC_CHANNELS, FC_CHANNELS * 3 * 3, FC_HIDDEN
    r.say(f"A small net for the 8x8 digits, trained by nbconv (float64, Adam, {FC_EPOCHS} epochs, "
          f"seed {FC_SEED}):",
          f"  conv 3x3 ({C} filters, P = 0) -> ReLU -> max pool 2 -> flatten -> FC {D}->{K} -> ReLU -> FC {K}->10",
          f"  8x8 -> 6x6x{C} -> 3x3x{C} -> {D} -> {K} -> 10 scores; test accuracy {fmt(accuracy, 4)}",
          "The notes' conversion: an FC layer that looks at a whole W x H x C volume is a CONV layer with",
          "filters of that size, its rows reshaped into filters; the next FC layer is a 1x1 CONV:",
          f"  FC1 w ({K}, {D}) -> conv w1 = w.reshape({K}, {C}, 3, 3)",
          f"  FC2 w (10, {K}) -> conv w2 = w.reshape(10, {K}, 1, 1)")
    canvas, placed = digit_canvas(data)
    scores = score_map(model, canvas)
    OH, OW = scores.shape[1:]
    conv = CANVAS - 3 + 1                            # conv 3x3, P = 0
    pool = conv // 2                                 # max pool 2x2
    side = (pool - 3) // 1 + 1                       # FC1 as a 3x3 conv, P = 0, S = 1
    r.say("", f"On a {CANVAS}x{CANVAS} image (a test digit in each corner), in one pass:",
          f"  {CANVAS}x{CANVAS} -> conv {conv}x{conv} -> pool {pool}x{pool} -> FC1 as conv {side}x{side}x32 "
          f"-> FC2 as conv {side}x{side}x10",
          f"  the side ({pool} - 3)/1 + 1 = {side}, as the notes' 384x384 image gives (12 - 7)/1 + 1 = 6;",
          f"  score (c, i, j) is the classifier's score of class c on the 8x8 crop at row {TOTAL_STRIDE}i, "
          f"column {TOTAL_STRIDE}j")
    r.check("score map, classes x h x w", "x".join(str(n) for n in scores.shape), f"10x{side}x{side}")
    corner = model.forward(canvas[:, :, :8, :8])[0]
    r.say("", "the corner (0, 0) against the FC net on the crop canvas[0:8, 0:8]:",
          "  map:    " + fmt(np.round(scores[:, 0, 0], 4)), "  FC net: " + fmt(np.round(corner, 4)))
    r.check("corner scores = FC net on the crop", scores[:, 0, 0], corner, tol=1e-10,
            note="to rounding: another order of sums")
    every = model.forward(crops(canvas, OH, OW)).reshape(OH, OW, 10).transpose(2, 0, 1)
    r.check(f"all {OH}x{OW} positions = FC net on crops", scores, every, tol=1e-10,
            note=f"{OH * OW} crops, one forward each")
    best = scores.argmax(axis=0)
    r.say("", "the class of highest score at each position (the digits sit at the corners):",
          *indented(grid(best)))
    for top, left, cls in placed:
        i, j = top // TOTAL_STRIDE, left // TOTAL_STRIDE
        r.say(f"  position ({i}, {j}), the crop at ({top}, {left}): a {cls}, scored highest {int(best[i, j])}")
    r.say("", "--plot draws the image and the score map of each class.")
    return r


def draw_fc_to_conv(path) -> None:
    """The larger image, and for each class its map of scores over the positions."""
    from matplotlib.patches import Rectangle
    model, data, _ = trained_fc_net()
    canvas, placed = digit_canvas(data)
    scores = score_map(model, canvas)
    fig = new_figure("fc-to-conv")
    gs = fig.add_gridspec(2, 7)
    ax = fig.add_subplot(gs[:, :2])
    ax.imshow(canvas[0, 0], cmap="gray", interpolation="nearest")
    ax.set_title(f"input {CANVAS}x{CANVAS}: digits {', '.join(str(c) for _, _, c in placed)}", fontsize=10)
    for top, left, cls in placed:                    # each digit's 8x8 crop
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), 8, 8, fill=False, edgecolor="tab:orange", lw=2))
    _blank(ax)
    low, high = float(scores.min()), float(scores.max())
    for c in range(10):
        ax = fig.add_subplot(gs[c // 5, 2 + c % 5])
        image = ax.imshow(scores[c], cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        for top, left, cls in placed:                # a digit of class c: its crop's score, boxed
            if cls == c:
                i, j = top // TOTAL_STRIDE, left // TOTAL_STRIDE
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="tab:orange", lw=2.5))
        ax.set_title(f"class {c}", fontsize=10)
        _blank(ax)
    fig.colorbar(image, ax=fig.axes[1:], shrink=0.8, label="score")
    fig.suptitle(f"FC -> CONV: class scores of every 8x8 crop (stride {TOTAL_STRIDE}) in one pass, "
                 f"a {scores.shape[1]}x{scores.shape[2]} map per class\n"
                 f"(orange: the digits' crops, and in its class's map the score of each)", fontsize=11)
    save_png(fig, path)


# ================================================================================ norm-groups

EXAMPLES = [
    Example("filters", "the lecture's 3x3 filters (identity, edge, sharpen, blur) on a photo and a digit",
            filters, draw_filters),
    Example("feature-maps", "the feature maps of a trained digits network, layer by layer, for one image",
            feature_maps, draw_feature_maps),
    Example("rf-growth", "receptive fields of stacked, dilated and strided 3x3 convs, by backprop",
            receptive_field_growth, draw_receptive_field_growth),
    Example("fc-to-conv", "FC layers as convolutions: a digits classifier slid over a larger image",
            fc_to_conv, draw_fc_to_conv),
]
