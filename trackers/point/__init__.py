"""Point trackers; importing this package registers them.

`point_transformer` (tracker.py) is TrackStudio's own trained point tracker, the default;
`cotracker3-online` / `cotracker3-offline` (cotracker3/) load the official CoTracker3 checkpoints.
"""
from . import cotracker3  # noqa: F401  (registers the CoTracker3 trackers)
from .tracker import PointTrackerConfig, TransformerPointTracker

__all__ = ["PointTrackerConfig", "TransformerPointTracker"]
