"""The wheel carries everything a user needs, and runs from where it is installed, not the checkout.

The slow tests build a wheel from a copy of the sources (no stale build/ folder can leak in), check
its file list against the checkout, then unpack it with `pip install --no-deps --target` and run the
`trackstudio` command from it with this environment's dependencies. The full clean-venv install and
the PyInstaller bundle are checked by hand (packaging/README.md): they take minutes.
"""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("app", "trackers", "resources", "pyproject.toml", "setup.py", "README.md")
SKIP_NAMES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _source_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=SKIP_NAMES)
        elif source.is_file():
            shutil.copy2(source, src / name)
    out = tmp_path_factory.mktemp("dist")
    try:
        import setuptools  # noqa: F401  (the build backend, used without an isolated download)
    except ImportError:
        pytest.skip("setuptools is not installed, and building in isolation would need the network")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--no-index", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (built,) = out.glob("trackstudio-*.whl")
    return built


@pytest.mark.slow
def test_wheel_carries_packages_resources_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    for package in ("app", "trackers"):
        expected = {f"{package}/{name}" for name in _source_files(REPO / package) if name.endswith(".py")}
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)[:10]}"
    shipped = {f"trackstudio_resources/{name}" for name in _source_files(REPO / "resources")}
    assert shipped <= names, f"resources missing from the wheel: {sorted(shipped - names)}"
    for needed in ("sample/sample.mp4", "sample/prompts.json", "icons/trackstudio.png", "icons/trackstudio.svg"):
        assert f"trackstudio_resources/{needed}" in names
    assert "trackstudio = app.cli:main" in entry_points
    assert "Requires-Dist: torch==2.13.0" in metadata
    assert "Requires-Dist: PySide6-Essentials==6.11.3" in metadata
    assert not any(n.startswith(("tests/", "resources/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                             str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # -I would also drop PYTHONPATH; instead run from elsewhere with the unpacked wheel first on the path
    env = {**os.environ, "PYTHONPATH": str(site), "TRACKSTUDIO_CACHE": str(tmp_path / "cache")}

    def trackstudio(*args: str, code: str | None = None) -> str:
        command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "app", *args]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    where = trackstudio(code="import app, trackers, trackstudio_resources as r; "
                             "print(app.__file__); print(trackers.__file__); print(r.path('sample', 'sample.mp4'))")
    for line in where.split():
        assert Path(line).is_relative_to(site), f"{line} is not from the installed wheel"
    assert Path(where.split()[-1]).is_file()
    from app import __version__

    assert trackstudio("--version").strip() == f"trackstudio {__version__}"
    listing = trackstudio("models", "list")
    assert "built-in" in listing and str(tmp_path / "cache") in listing


def test_desktop_file_and_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(REPO / "packaging" / "linux" / "trackstudio.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "TrackStudio"
    assert desktop["Exec"].split()[0] == "trackstudio" and desktop["Terminal"] == "false"
    assert desktop["Icon"] == "trackstudio" and desktop["Categories"].endswith(";")

    from PIL import Image

    with Image.open(REPO / "resources" / "icons" / "trackstudio.png") as icon:
        assert icon.size == (256, 256) and icon.mode == "RGBA"
        corner, centre = icon.getpixel((0, 0)), icon.getpixel((128, 128))
    assert corner[3] == 0 and centre[3] == 255  # rounded tile on a transparent background
    svg = (REPO / "resources" / "icons" / "trackstudio.svg").read_text()
    assert svg.startswith("<svg") and 'viewBox="0 0 256 256"' in svg


def test_pyinstaller_spec_is_valid_python():
    spec = REPO / "packaging" / "trackstudio.spec"
    compile(spec.read_text(), str(spec), "exec")
    assert (REPO / "packaging" / "trackstudio_entry.py").is_file()
