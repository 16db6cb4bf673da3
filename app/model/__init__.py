"""The annotation model (no Qt): objects, per-frame states, events, undo, files.

See docs/formats.md for the file formats written and read by `app.model.formats` and `Project`.
"""
from .errors import FormatError
from .events import EventEmitter, MetaChanged, ObjectsChanged, StatesChanged
from .objects import KINDS, FrameState, TrackObject
from .rle import MaskRLE
from .store import AnnotationStore
from .undo import UndoStack
from .project import Autosaver, Project, ProjectVideo  # noqa: E402  (imports formats, which needs the above)

__all__ = ["KINDS", "AnnotationStore", "Autosaver", "EventEmitter", "FormatError", "FrameState", "MaskRLE",
           "MetaChanged", "ObjectsChanged", "Project", "ProjectVideo", "StatesChanged", "TrackObject", "UndoStack"]
