"""Per-object tracker choices, kept in the project settings under "object_trackers".

An object with a choice is tracked by that tracker instead of the panel's tracker for its kind
(e.g. interpolation for one box while the others use a neural tracker). Qt-free.
"""
from __future__ import annotations

from .errors import FormatError
from .store import AnnotationStore

SETTINGS_KEY = "object_trackers"  # {"<obj_id>": "<tracker name>"}


def object_trackers(settings: dict, store: AnnotationStore) -> dict[int, str]:
    """obj_id -> tracker name for the store's objects that have a choice."""
    chosen = settings.get(SETTINGS_KEY) or {}
    if not isinstance(chosen, dict):
        raise FormatError(f"expected an object, got {type(chosen).__name__}", f"settings.{SETTINGS_KEY}")
    out = {}
    for key, name in chosen.items():
        if not (isinstance(key, str) and key.isdigit() and isinstance(name, str) and name):
            raise FormatError(f"expected \"<object id>\": \"<tracker name>\", got {key!r}: {name!r}",
                              f"settings.{SETTINGS_KEY}")
        if int(key) in store:
            out[int(key)] = name
    return out


def prune_object_trackers(settings: dict, store: AnnotationStore) -> None:
    """Forget the choices of deleted objects (before saving: a later object could get the id)."""
    chosen = object_trackers(settings, store)
    if chosen:
        settings[SETTINGS_KEY] = {str(obj_id): name for obj_id, name in chosen.items()}
    else:
        settings.pop(SETTINGS_KEY, None)


def set_object_tracker(settings: dict, obj_id: int, name: str | None) -> None:
    """Choose `name` for the object, or None to use the panel's tracker again."""
    chosen = dict(settings.get(SETTINGS_KEY) or {})
    if name:
        chosen[str(obj_id)] = name
    else:
        chosen.pop(str(obj_id), None)
    if chosen:
        settings[SETTINGS_KEY] = chosen
    else:
        settings.pop(SETTINGS_KEY, None)
