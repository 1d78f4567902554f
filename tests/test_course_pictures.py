"""The course's pictures (nbconv.examples.pictures and norm-groups' figure): every replay agrees,
``nbconv example NAME --plot out.png`` writes a PNG that matplotlib reads back at its size, the
filters equal SciPy's correlation, and a --plot that cannot be honoured is one line, exit 2."""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import nbconv.functional as F
from nbconv.cli import main
from nbconv.examples import EXAMPLES, pictures, replay

PICTURE_EXAMPLES = ["filters", "feature-maps", "rf-growth", "fc-to-conv"]
DRAWING = PICTURE_EXAMPLES + ["norm-groups"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# the photograph and the digits come with scikit-learn, the train extra
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="needs scikit-learn (the train extra)")


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@functools.lru_cache(maxsize=None)
def replayed(name):
    return replay(name)


# --- the replays ------------------------------------------------------------------------------

@needs_sklearn
@pytest.mark.parametrize("name", PICTURE_EXAMPLES)
def test_replay_agrees(name):
    r = replayed(name)
    assert r.checks and r.ok, r.render()
    assert EXAMPLES[name].draw is not None


def test_the_drawing_examples_are_registered():
    assert {name for name, ex in EXAMPLES.items() if ex.draw is not None} == set(DRAWING)


@needs_sklearn
@pytest.mark.parametrize("source", ["photo", "digit"])
def test_filters_equal_scipy_correlation(source):
    signal = pytest.importorskip("scipy.signal")
    image = pictures.gray_photo() if source == "photo" else pictures.digit_image()[0]
    out = pictures.apply_filters(image)
    kernels = pictures.kernel_stack()[:, 0]
    assert out.shape == (4, image.shape[0] - 2, image.shape[1] - 2)
    for f in range(4):
        np.testing.assert_allclose(out[f], signal.correlate2d(image, kernels[f], mode="valid"), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(out[0], image[1:-1, 1:-1])          # identity: the interior, exactly


def test_the_text_kernels_and_their_sums():
    k = pictures.kernel_stack()[:, 0]
    assert list(pictures.TEXT_FILTERS) == ["identity", "edge detection", "sharpen", "blur"]
    np.testing.assert_array_equal(k[2], [[-1, -4, -1], [-4, 21, -4], [-1, -4, -1]])
    np.testing.assert_array_equal(k[3], np.full((3, 3), 0.125))
    assert [str(pictures.kernel_sum(v)) for v in pictures.TEXT_FILTERS.values()] == ["1", "0", "1", "9/8"]


def test_receptive_field_closed_form():
    assert pictures.receptive_field([(3, 1, 1)] * 3) == [3, 5, 7]             # three 3x3 see 7x7
    assert pictures.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]) == [3, 7, 15, 31]
    assert pictures.receptive_field([(3, 2, 1)] * 3) == [3, 7, 15]            # the jump doubles
    assert pictures.receptive_field([(7, 1, 1)]) == [7]
    assert pictures.reached_pixels([(3, 1, 2)] * 2) == 25                     # 9x9 with gaps: 5 x 5


# --- each replay fails when nbconv is wrong ----------------------------------------------------

def _flipping_conv(monkeypatch):
    """conv2d_forward as true convolution (the kernel flipped): the texts' formula, not nbconv's."""
    right = F.conv2d_forward
    monkeypatch.setattr(F, "conv2d_forward",
                        lambda x, w, b=None, **kw: right(x, np.ascontiguousarray(w[:, :, ::-1, ::-1]), b, **kw))


@needs_sklearn
def test_filters_fail_when_the_kernel_is_flipped(monkeypatch):
    _flipping_conv(monkeypatch)
    failed = {c.quantity for c in replay("filters").failures()}
    assert {"digit, edge detection", "photo, edge detection"} <= failed
    assert not failed & {"photo, identity", "photo, sharpen", "photo, blur"}     # symmetric kernels


@needs_sklearn
def test_fc_to_conv_fails_when_the_kernel_is_flipped(monkeypatch):
    _flipping_conv(monkeypatch)
    failed = {c.quantity for c in replay("fc-to-conv").failures()}
    assert "corner scores = FC net on the crop" in failed


def test_rf_growth_fails_when_backward_ignores_dilation(monkeypatch):
    right = F.conv2d_backward

    def undilated(dout, cache):
        from dataclasses import replace
        return right(dout, replace(cache, dilation=(1, 1), padding=(1, 1)))
    monkeypatch.setattr(F, "conv2d_backward", undilated)
    failed = {c.quantity for c in replay("rf-growth").failures()}
    assert {"dilated: box and nonzero", "dilation 2: box and nonzero"} <= failed
    assert "plain: box and nonzero" not in failed


# --- --plot ------------------------------------------------------------------------------------

@needs_sklearn
@pytest.mark.parametrize("name", DRAWING)
def test_plot_writes_a_png(name, tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image")
    path = tmp_path / f"{name}.png"
    assert main(["example", name, "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"wrote {path}"
    assert "checked values agree" in out
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    pixels = image.imread(path)
    width, height = pictures.PICTURE_SIZES[name]
    assert pixels.shape[:2] == (round(height * pictures.DPI), round(width * pictures.DPI))
    assert pixels[..., :3].std() > 0.05                      # not a blank page


def test_list_marks_the_examples_that_draw(capsys):
    assert main(["example", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = {line.split()[0] for line in lines if line.split()[1] == "--plot"}
    assert marked == set(DRAWING)


def test_plot_of_an_example_without_a_picture(tmp_path, capsys):
    path = tmp_path / "x.png"
    assert main(["example", "neuron", "--plot", str(path)]) == 2
    out, err = capsys.readouterr()
    line = _one_line(err)
    assert line.startswith("nbconv example: neuron draws no picture; these do: ")
    assert set(line.split("these do: ")[1].split(", ")) == set(DRAWING)
    assert out == "" and not path.exists()                    # refused before replaying


def test_plot_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # the import fails as if not installed
    path = tmp_path / "x.png"
    assert main(["example", "norm-groups", "--plot", str(path)]) == 2
    out, err = capsys.readouterr()
    line = _one_line(err)
    assert line.startswith("nbconv example: ") and 'pip install -e ".[plot]"' in line
    assert out == "" and not path.exists()


def test_plot_into_a_missing_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "no-such-folder" / "x.png"
    assert main(["example", "norm-groups", "--plot", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "does not exist" in _one_line(err) and out == ""


def test_plot_needs_a_name(capsys):
    assert main(["example", "--plot", "x.png"]) == 2
    assert "--plot needs an example NAME" in _one_line(capsys.readouterr().err)


def test_an_example_without_scikit_learn_in_a_real_process():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from nbconv.cli import main\n"
            "sys.exit(main(['example', 'filters']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert _one_line(done.stderr).startswith("nbconv example: scikit-learn is not installed")
