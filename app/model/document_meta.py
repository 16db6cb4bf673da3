"""Document-level values saved beside the objects, each under its own top-level key (docs/formats.md):
"labels" (the label schema), "attributes" (their values) and "reviewed" (frame ranges per object).

Files without them load as before; files from older TrackStudio versions keep unknown keys as `extra`.
"""
from __future__ import annotations

from trackstudio.app.video import VideoInfo

from . import labels, reviewed
from .store import AnnotationStore

KEYS = (labels.SCHEMA_KEY, labels.VALUES_KEY, reviewed.KEY)


def meta_to_json(store: AnnotationStore) -> dict:
    """The top-level keys to add to a document (only those with something to say). Refuses a store
    whose objects carry labels outside the schema: the file could not be read back."""
    labels.check_object_labels(store)
    values = {labels.SCHEMA_KEY: labels.schema_to_json(store), labels.VALUES_KEY: labels.values_to_json(store),
              reviewed.KEY: reviewed.to_json(store)}
    return {key: value for key, value in values.items() if value is not None}


def meta_from_json(doc: dict, store: AnnotationStore, video: VideoInfo) -> None:
    """Validate the document's values against its objects and video and put them in the store
    (not undoable: they are what was loaded). FormatError names the bad field."""
    schema = labels.schema_from_json(doc[labels.SCHEMA_KEY]) if labels.SCHEMA_KEY in doc else labels.LabelSchema()
    store.set_meta(labels.SCHEMA_KEY, schema if schema != labels.LabelSchema() else None)
    labels.check_object_labels(store)
    if labels.VALUES_KEY in doc:
        store.set_meta(labels.VALUES_KEY, labels.values_from_json(doc[labels.VALUES_KEY], store, schema,
                                                                  video.num_frames) or None)
    if reviewed.KEY in doc:
        store.set_meta(reviewed.KEY, reviewed.from_json(doc[reviewed.KEY], store, video.num_frames) or None)
    store.undo_stack.clear()
