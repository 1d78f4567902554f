"""Command-line errors a user can fix: one line on stderr that says what to do, exit status 2, no
traceback.  A missing optional extra is simulated by putting None in sys.modules (the import then
fails as if the package were not installed)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import nbconv.cli
import nbconv.summary
from nbconv.cli import command_error, main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_train_without_scikit_learn_in_a_real_process():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from nbconv.cli import main\n"
            "sys.exit(main(['train', '--epochs', '1', '--no-progress']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert line == ('nbconv train: the digits data set needs scikit-learn, an optional extra of nbconv: '
                    'pip install "nbconv[train]"')
    assert done.stdout == ""                      # nothing was built or trained


def test_train_without_scikit_learn(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert main(["train", "--epochs", "1", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and 'pip install "nbconv[train]"' in _one_line(err)


def test_plot_without_matplotlib_is_refused_before_training(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["train", "--epochs", "1", "--no-progress", "--plot", str(tmp_path / "x.png")]) == 2
    out, err = capsys.readouterr()
    assert out == ""                              # refused before the data, the model, the epochs
    assert _one_line(err) == ('nbconv train: --plot: the figure needs matplotlib, an optional extra of nbconv: '
                              'pip install "nbconv[plot]"')


@pytest.mark.parametrize("option", ["--plot", "--checkpoint"])
def test_train_output_files_are_checked_before_training(capsys, tmp_path, option):
    missing = tmp_path / "no-such-folder" / "file"
    assert main(["train", "--epochs", "1", "--no-progress", option, str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_line(err) == (f"nbconv train: {option} {missing}: the folder {missing.parent} does not exist; "
                              f"create it first")
    assert main(["train", "--epochs", "1", "--no-progress", option, str(tmp_path)]) == 2
    assert _one_line(capsys.readouterr().err) == f"nbconv train: {option} {tmp_path}: is a folder; give a file name"


def test_a_corrupt_checkpoint_says_what_to_do(capsys, tmp_path):
    bad = tmp_path / "run.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip archive")
    assert main(["train", "--epochs", "1", "--no-progress", "--checkpoint", str(bad)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"nbconv train: cannot load {bad}: ")
    assert line.endswith("choose another --checkpoint path, or delete the file to start afresh")


def test_bench_json_path_is_checked_before_timing(capsys, tmp_path):
    target = tmp_path / "missing" / "out.json"
    for argv in (["bench", "--op", "relu", "--json", str(target)], ["bench", "--train", "--json", str(target)]):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == ""                          # no table was timed
        assert _one_line(err) == (f"nbconv bench: --json {target}: the folder {target.parent} does not exist; "
                                  f"create it first")


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "nbconv train: argument --epochs: must be >= 1, got 0"),
    (["train", "--threads", "two"], "nbconv train: argument --threads: expected an integer, got 'two'"),
    (["bench", "--threads", "0"], "nbconv bench: argument --threads: must be >= 1, got 0"),
    (["bench", "--repeat", "0"], "nbconv bench: argument --repeat: must be >= 1, got 0"),
    (["summary", "vgg16", "--batch-size", "-1"], "nbconv summary: argument --batch-size: must be >= 1, got -1"),
    (["summary", "vgg16", "--optimizer", "lbfgs"], "nbconv summary: argument --optimizer: invalid choice: 'lbfgs'"),
    (["gradcheck", "--device", "tpu"], "nbconv gradcheck: argument --device: invalid choice: 'tpu'"),
])
def test_bad_option_values_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(message) and line.endswith(f"(nbconv {argv[0]} --help lists the options)")


# ----------------------------------------------------------------------------- what main turns into one line

def _command_raising(monkeypatch, exc):
    def run(args):
        raise exc
    monkeypatch.setattr(nbconv.summary, "run", run)      # `nbconv summary` now fails this way


def test_a_missing_extra_without_a_hint_gets_one(monkeypatch, capsys):
    _command_raising(monkeypatch, ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib.figure"))
    assert main(["summary", "lenet"]) == 2
    assert _one_line(capsys.readouterr().err) == ('nbconv summary: matplotlib is not installed, an optional extra '
                                                  'of nbconv: pip install "nbconv[plot]"')


def test_a_file_error_names_the_file(monkeypatch, capsys):
    _command_raising(monkeypatch, FileNotFoundError(2, "No such file or directory", "out/scores.json"))
    assert main(["summary", "lenet"]) == 2
    assert _one_line(capsys.readouterr().err) == ("nbconv summary: out/scores.json: No such file or directory; "
                                                  "check the path and its folder's permissions")


@pytest.mark.parametrize("exc", [ImportError("cannot import name 'x' from 'nbconv.layers'", name="nbconv.layers"),
                                 OSError("a device error, no file"), ValueError("a bug")])
def test_other_errors_keep_their_traceback(monkeypatch, exc):
    """Only a missing extra and a file error become one line: anything else is a bug to see in full."""
    _command_raising(monkeypatch, exc)
    with pytest.raises(type(exc)):
        main(["summary", "lenet"])


def test_command_error_reads_the_cause_of_a_wrapped_import_error():
    try:
        try:
            raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")
        except ImportError as inner:
            raise ImportError("the digits data set needs scikit-learn") from inner   # no name, no hint
    except ImportError as outer:
        assert command_error(outer) == ('scikit-learn is not installed, an optional extra of nbconv: '
                                        'pip install "nbconv[train]"')
    assert command_error(KeyError("x")) is None


def test_every_extra_named_is_an_extra_of_pyproject():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    extras = dict(re.findall(r'^(\w+) = \[\n(.*?)^\]', text.split("[project.optional-dependencies]")[1],
                             re.M | re.S))
    for module, (package, extra) in nbconv.cli.EXTRAS.items():
        assert re.search(rf'"{re.escape(package)}[\[>=]', extras[extra]), (module, package, extra)
