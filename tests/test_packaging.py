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
BUILD_INPUTS = ("__init__.py", "__main__.py", "app", "trackers", "resources", "pyproject.toml", "setup.py",
                "README.md")
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
        top_level = archive.read(f"{dist_info}/top_level.txt").decode().split()
    # one import package: nothing named app/, trackers/ or anything else beside trackstudio/
    assert top_level == ["trackstudio"]
    assert {n.split("/")[0] for n in names} == {"trackstudio", dist_info}
    assert {"trackstudio/__init__.py", "trackstudio/__main__.py"} <= names
    for package in ("app", "trackers"):
        expected = {f"trackstudio/{package}/{name}" for name in _source_files(REPO / package) if name.endswith(".py")}
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)[:10]}"
    shipped = {f"trackstudio/resources/{name}" for name in _source_files(REPO / "resources")}
    assert shipped <= names, f"resources missing from the wheel: {sorted(shipped - names)}"
    for needed in ("sample/sample.mp4", "sample/prompts.json", "icons/trackstudio.png", "icons/trackstudio.svg"):
        assert f"trackstudio/resources/{needed}" in names
    assert not any(n.startswith("trackstudio/" + folder) for n in names
                   for folder in ("tests/", "benchmarks/", "scripts/", "docs/", "packaging/", "setup.py"))
    assert "trackstudio = trackstudio.app.cli:main" in entry_points
    # ranges in the metadata (a user's CUDA torch or newer Qt installs); exact pins only in constraints.txt
    assert "Requires-Dist: torch>=2.1" in metadata
    assert "Requires-Dist: PySide6-Essentials!=6.12.0,>=6.6" in metadata
    assert "Provides-Extra: cluster" in metadata and 'Requires-Dist: ray>=2.9; extra == "cluster"' in metadata
    requirements = [line.split(";")[0] for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert not [r for r in requirements if "==" in r], "exact pins belong in constraints.txt"


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
                             str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # -I would also drop PYTHONPATH; instead run from elsewhere with the unpacked wheel first on the path
    env = {**os.environ, "PYTHONPATH": str(site), "TRACKSTUDIO_CACHE": str(tmp_path / "cache")}

    def trackstudio(*args: str, code: str | None = None) -> str:
        command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "trackstudio", *args]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    # other distributions' top-level `trackers` (Roboflow's) and `app` in the same place stay theirs
    for other in ("trackers", "app"):
        (site / other).mkdir()
        (site / other / "__init__.py").write_text(f"OWNER = 'another distribution of {other}'\n")
    both = trackstudio(code="import trackers, app, trackstudio.trackers as t; from trackstudio.trackers import registry; "
                            "print(trackers.OWNER, app.OWNER, 'csrt' in registry.names('box'), sep='|')")
    assert both.strip() == "another distribution of trackers|another distribution of app|True"
    where = trackstudio(code="import trackstudio.app as a, trackstudio.trackers as t; from trackstudio import "
                             "resources as r; print(a.__file__); print(t.__file__); print(r.path('sample', 'sample.mp4'))")
    for line in where.split():
        assert Path(line).is_relative_to(site), f"{line} is not from the installed wheel"
    assert Path(where.split()[-1]).is_file()
    from trackstudio import __version__

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
