"""The review queue in the window: Navigate > next / previous doubtful frame, mark frames reviewed.

Doubts come from `app.model.review` (Qt-free); this keeps its index in step with the store and
turns the actions into frame jumps, selections and status messages.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction

from trackstudio.app.model import reviewed as rv
from trackstudio.app.model.review import Doubt, ReviewIndex

from .session import Session


class ReviewActions(QObject):
    message = Signal(str)

    def __init__(self, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.index: ReviewIndex | None = None
        self.next = QAction("Next &doubtful frame", self)
        self.next.setToolTip("Low score, appears / disappears, a jump in size or place, trackers that disagree")
        self.next.triggered.connect(lambda: self.jump(True))
        self.previous = QAction("Previous doubtful frame", self)
        self.previous.triggered.connect(lambda: self.jump(False))
        self.all_objects = QAction("Review &all objects (off: the selected one)", self)
        self.all_objects.setCheckable(True)
        self.mark = QAction("&Mark reviewed up to this frame", self)
        self.mark.setToolTip("From the end of the last reviewed stretch to here; shown green under the strips")
        self.mark.triggered.connect(self.mark_reviewed)
        self.unmark = QAction("&Unmark reviewed frames", self)
        self.unmark.triggered.connect(self.clear_reviewed)
        session.video_changed.connect(self._reset)
        session.states_changed.connect(lambda obj_id, _f: self.index and self.index.invalidate(obj_id))
        session.objects_changed.connect(lambda: self.index and self.index.invalidate())

    def _reset(self) -> None:
        s = self.session
        self.index = ReviewIndex(s.store, s.num_frames) if s.store is not None else None

    def doubt_frames(self, obj_id: int) -> np.ndarray | None:
        """(T,) bool: the object's unreviewed doubtful frames; None while a run writes (no recomputing then)."""
        s = self.session
        if self.index is None or not s.editing_enabled or obj_id not in s.store:
            return None
        return self.index.doubt_mask(obj_id) & ~rv.reviewed_mask(s.store, obj_id, s.num_frames)

    def _scope(self) -> list[int] | None:
        """Objects under review: None for all, else the selected one (empty: none selected)."""
        if self.all_objects.isChecked():
            return None
        return [self.session.selected] if self.session.selected is not None else []

    def _unreviewed(self, doubt: Doubt) -> bool:
        return not rv.is_reviewed(self.session.store, doubt.obj_id, doubt.frame_idx)

    def jump(self, forward: bool) -> bool:
        s = self.session
        if self.index is None:
            return False
        scope = self._scope()
        if scope == []:
            self.message.emit("Select an object to review (or Navigate > Review all objects).")
            return False
        found = self.index.next_doubtful(s.frame_idx, forward, scope, skip=lambda d: not self._unreviewed(d))
        if found is None:
            where = "after" if forward else "before"
            self.message.emit(f"No unreviewed doubtful frame {where} frame {s.frame_idx}.")
            return False
        frame_idx, doubts = found
        if s.selected not in {d.obj_id for d in doubts}:
            s.select(doubts[0].obj_id)
        s.set_frame(frame_idx)
        names = {o.obj_id: o.name for o in s.store.objects}
        self.message.emit(f"Frame {frame_idx}: " + "; ".join(f"{names[d.obj_id]} {d.reason}" for d in doubts[:4])
                          + (f" (+{len(doubts) - 4} more)" if len(doubts) > 4 else ""))
        return True

    def _can_mark(self) -> bool:
        """Not while a run writes: its undo step must hold only the run."""
        if self.session.store is None:
            return False
        if not self.session.editing_enabled:
            self.message.emit("Tracking is running: mark frames reviewed when it ends (or press Esc).")
            return False
        return True

    def _marked_ids(self) -> list[int]:
        scope = self._scope()
        return [o.obj_id for o in self.session.store.objects] if scope is None else scope

    def mark_reviewed(self) -> None:
        s = self.session
        if not self._can_mark():
            return
        obj_ids = self._marked_ids()
        if not obj_ids:
            self.message.emit("Select an object to mark (or Navigate > Review all objects).")
            return
        # from just after the reviewed stretch that ends before this frame (any of these objects), else frame 0
        ends = [b for obj_id in obj_ids for a, b in rv.reviewed(s.store).get(obj_id, ()) if b < s.frame_idx]
        first = max(ends) + 1 if ends else 0
        rv.mark_reviewed(s.store, obj_ids, first, s.frame_idx)
        self.message.emit(f"Frames {first}-{s.frame_idx} reviewed for {len(obj_ids)} object(s) (Ctrl+Z undoes it).")

    def mark_range(self, obj_id: int, first: int, last: int) -> None:
        """Frames first..last of one object reviewed (a Shift+drag along its strip)."""
        s = self.session
        if self._can_mark() and obj_id in s.store:
            rv.mark_reviewed(s.store, [obj_id], first, last)
            self.message.emit(f"Frames {first}-{last} of {s.store.get_object(obj_id).name} reviewed "
                              "(Ctrl+Z undoes it).")

    def clear_reviewed(self) -> None:
        s = self.session
        obj_ids = self._marked_ids() if self._can_mark() else []
        if obj_ids:
            rv.mark_reviewed(s.store, obj_ids, 0, s.num_frames - 1, done=False)
            self.message.emit(f"Reviewed marks cleared for {len(obj_ids)} object(s).")
