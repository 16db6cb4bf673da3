"""TrackStudio's trackers: a pure torch + numpy library (no Qt, no app imports).

Every tracker implements `trackers.base.Tracker`; `trackers.registry.build(name, ...)` makes one.
"""
from .alloc import release_free_memory, tune_allocator

tune_allocator()  # before torch allocates anything large (see alloc.py)

from .base import SequentialTracker, Tracker, TrackerConfig  # noqa: E402
from .types import FrameResult, ObjectResult, Prompt, mask_to_box  # noqa: E402

__all__ = ["FrameResult", "ObjectResult", "Prompt", "SequentialTracker", "Tracker", "TrackerConfig",
           "mask_to_box", "release_free_memory", "tune_allocator"]
