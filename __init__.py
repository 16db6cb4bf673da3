"""TrackStudio: label video by clicking; trackers carry the annotations through the clip.

The repository root is this package's folder: `trackstudio.app` is app/, `trackstudio.trackers` is
trackers/ and `trackstudio.resources` is resources/ (see setup.py), so the wheel installs one import
package and a source checkout keeps the design's top-level folders.
"""
__version__ = "0.1.0"
