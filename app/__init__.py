"""TrackStudio: label video by clicking; trackers carry the annotations through the clip."""
__version__ = "0.1.0"
