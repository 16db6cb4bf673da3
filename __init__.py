"""TrackStudio: label video by clicking; trackers carry the annotations through the clip.

The repository root is this package's folder: `trackstudio.app` is app/, `trackstudio.trackers` is
trackers/ and `trackstudio.resources` is resources/ (see setup.py), so the wheel installs one import
package and a source checkout keeps the design's top-level folders.

The Python API (`ts.track`, `ts.load`, `ts.export`, `ts.Annotations`) lives in `trackstudio.app.api`
and is loaded on first use, so `import trackstudio` stays light (no torch, no Qt).
"""
__version__ = "0.1.0"

_API = ("Annotations", "TrackerPool", "export", "load", "track")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from trackstudio.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'trackstudio' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
