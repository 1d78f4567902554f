"""A built wheel installs kernels/ and gradcheck/ as nbconv.kernels and nbconv.gradcheck."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)
    (path,) = out.glob("nbconv-*.whl")
    return path


def test_wheel_holds_every_module_under_its_nbconv_name(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("kernels", "nbconv/kernels"), ("gradcheck", "nbconv/gradcheck"), ("nbconv", "nbconv")):
        for source in (ROOT / folder).rglob("*.py"):
            relative = source.relative_to(ROOT / folder).as_posix()
            assert f"{package}/{relative}" in names, f"{folder}/{relative} is missing from the wheel"
    assert not any(name.startswith(("kernels/", "gradcheck/")) for name in names), "a generic top-level name leaked"


def test_unpacked_wheel_imports(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import nbconv, nbconv.kernels.conv, nbconv.gradcheck, nbconv.functional as F; "
            "print(nbconv.__file__); print(nbconv.kernels.conv.__file__); print(nbconv.gradcheck.__file__); "
            "print(len(nbconv.gradcheck.all_cases()))")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site")], cwd=tmp_path,
                            check=True, capture_output=True, text=True)
    lines = result.stdout.split()
    for path in lines[:3]:
        assert path.startswith(str(tmp_path / "site")), f"imported {path}, not the wheel"
    assert int(lines[3]) > 0
