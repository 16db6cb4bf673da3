"""Package layout: one import package, `trackstudio`, whose folder is the repository root.

`trackstudio.app`, `trackstudio.trackers` and `trackstudio.resources` are app/, trackers/ and
resources/; tests/, benchmarks/, scripts/, docs/ and packaging/ are not installed. Everything else
lives in pyproject.toml; a package directory mapped to "." needs this explicit list.
"""
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

SUBPACKAGES = find_packages(include=["app", "app.*", "trackers", "trackers.*", "resources"])


class BuildPy(build_py):
    """The package folder is the repository root, so this file would otherwise ship as trackstudio.setup."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if (m[0], m[1]) != ("trackstudio", "setup")]


setup(
    packages=["trackstudio"] + [f"trackstudio.{name}" for name in SUBPACKAGES],
    package_dir={"trackstudio": "."},
    cmdclass={"build_py": BuildPy},
)
