"""Change notification: the store emits small event dataclasses, views mirror the model from them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ObjectsChanged:
    """Objects were added, removed or edited (name, colour, ...); look them up again by id.

    A removed object's states go with it (no StatesChanged for them); an object that comes back
    (undo of a removal) is followed by a StatesChanged for its frames.
    """

    obj_ids: tuple[int, ...]


@dataclass(frozen=True)
class StatesChanged:
    """An object's per-frame states changed on these frames (set, replaced or cleared)."""

    obj_id: int
    frame_idxs: tuple[int, ...]  # sorted


@dataclass(frozen=True)
class MetaChanged:
    """A document-level value (label schema, attributes, reviewed ranges) was replaced; read it again."""

    key: str


class EventEmitter:
    """Calls every connected callback with each emitted event, in connection order."""

    def __init__(self):
        self._callbacks: list[Callable[[object], None]] = []

    def connect(self, callback: Callable[[object], None]) -> None:
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[[object], None]) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            raise ValueError(f"{callback!r} is not connected") from None

    def emit(self, event: object) -> None:
        # A copy: a callback may disconnect itself (or others) while handling the event.
        for callback in list(self._callbacks):
            callback(event)
