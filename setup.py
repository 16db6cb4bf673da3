"""Package list: `app`, `trackers`, and resources/ installed as `trackstudio_resources`.

Everything else lives in pyproject.toml; a mapped package directory needs this explicit list.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["app", "app.*", "trackers", "trackers.*"]) + ["trackstudio_resources"],
    package_dir={"trackstudio_resources": "resources"},
)
