"""Document-level values saved beside the objects, each under its own top-level key (docs/formats.md):
"reviewed" (frame ranges per object), and with the label schema, "labels" and "attributes".

Files without them load as before; files from older TrackStudio versions keep unknown keys as `extra`.
"""
from __future__ import annotations

from trackstudio.app.video import VideoInfo

from . import reviewed
from .store import AnnotationStore

KEYS = (reviewed.KEY,)


def meta_to_json(store: AnnotationStore) -> dict:
    """The top-level keys to add to a document (only those with something to say)."""
    values = {reviewed.KEY: reviewed.to_json(store)}
    return {key: value for key, value in values.items() if value is not None}


def meta_from_json(doc: dict, store: AnnotationStore, video: VideoInfo) -> None:
    """Validate the document's values against its objects and video and put them in the store
    (not undoable: they are what was loaded). FormatError names the bad field."""
    if reviewed.KEY in doc:
        store.set_meta(reviewed.KEY, reviewed.from_json(doc[reviewed.KEY], store, video.num_frames) or None)
    store.undo_stack.clear()
