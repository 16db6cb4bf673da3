"""Object-level actions shared by the Objects menu and the Objects panel's context menu:
identity fixes (merge, split, swap) and each object's own tracker."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from trackstudio.app.model.identities import merge_objects, split_object, swap_objects
from trackstudio.app.model.object_trackers import object_trackers, set_object_tracker
from trackstudio.trackers import registry

from .session import Session

PANEL_DEFAULT = "Tracker panel's choice"


class ObjectActions(QObject):
    """`selected_ids()` gives the objects picked in the Objects panel (Ctrl+click picks a second one)."""

    message = Signal(str)
    trackers_changed = Signal()

    def __init__(self, session: Session, selected_ids, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self._selected_ids = selected_ids
        self.merge = QAction("&Merge the two selected objects", self)
        self.merge.setToolTip("Ctrl+click a second object in the Objects panel; the current one keeps its id")
        self.merge.triggered.connect(self.merge_selected)
        self.split = QAction("S&plit the selected object at this frame", self)
        self.split.setToolTip("Frames from here on become a new object")
        self.split.triggered.connect(self.split_selected)
        self.swap = QAction("S&wap the two selected objects from this frame on", self)
        self.swap.triggered.connect(self.swap_selected)

    # ---- identities ----------------------------------------------------------------------
    def _editable(self) -> bool:
        if self.session.store is None:
            return False
        if not self.session.editing_enabled:
            self.message.emit("Tracking is running: wait for it or press Esc to cancel, then try again.")
            return False
        return True

    def _pair(self, action: str) -> tuple[int, int] | None:
        ids = self._selected_ids()
        if len(ids) != 2:
            self.message.emit(f"{action}: select exactly two objects in the Objects panel (Ctrl+click the second).")
            return None
        current = self.session.selected
        return (current, next(i for i in ids if i != current)) if current in ids else (ids[0], ids[1])

    def _run(self, edit) -> None:
        try:
            text = edit()
        except ValueError as exc:
            self.message.emit(str(exc)[:1].upper() + str(exc)[1:] + ".")
            return
        self.message.emit(f"{text} (Ctrl+Z undoes it).")

    def merge_selected(self) -> None:
        pair = self._pair("Merge") if self._editable() else None
        if pair is not None:
            store = self.session.store
            names = [store.get_object(i).name for i in pair]
            self._run(lambda: merge_objects(store, *pair) or f"Merged {names[1]} into {names[0]}")

    def split_selected(self) -> None:
        obj_id = self.session.selected
        if obj_id is not None and self._editable():
            frame_idx = self.session.frame_idx
            self._run(lambda: f"Split off {split_object(self.session.store, obj_id, frame_idx).name}")

    def swap_selected(self) -> None:
        pair = self._pair("Swap") if self._editable() else None
        if pair is not None:
            frame_idx = self.session.frame_idx
            self._run(lambda: swap_objects(self.session.store, *pair, frame_idx)
                      or f"Swapped from frame {frame_idx} on")

    # ---- per-object tracker --------------------------------------------------------------
    def tracker_of(self, obj_id: int) -> str | None:
        project = self.session.project
        return object_trackers(project.settings, project.store).get(obj_id) if project is not None else None

    def set_tracker(self, obj_id: int, name: str | None) -> None:
        project = self.session.project
        if project is None or obj_id not in project.store:
            return
        set_object_tracker(project.settings, obj_id, name)
        obj = project.store.get_object(obj_id)
        self.message.emit(f"{obj.name} is tracked by {name or 'the Tracker panel choice for ' + obj.kind + 's'}.")
        self.trackers_changed.emit()

    def tracker_menu(self, obj_id: int, parent) -> QMenu:
        """Radio items: the panel's choice, then every tracker of the object's kind."""
        menu = QMenu("&Tracker for this object", parent)
        group = QActionGroup(menu)
        current = self.tracker_of(obj_id)
        kind = self.session.store.get_object(obj_id).kind
        for name in [None, *registry.names(kind)]:
            action = menu.addAction(name or PANEL_DEFAULT)
            action.setCheckable(True)
            action.setChecked(name == current)
            action.triggered.connect(lambda _c=False, n=name: self.set_tracker(obj_id, n))
            group.addAction(action)
        return menu
