"""The open document: video, project (store + settings), current frame and selected object.

Views read from the session and listen to its Qt signals; the store's own events are turned into
signals here, so every view learns about undo, redo, propagation and edits the same way.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from trackstudio.app.model import AnnotationStore, FrameState, MetaChanged, ObjectsChanged, Project, StatesChanged
from trackstudio.app.video import VideoSource


GENERIC_FOLDER_NAMES = {"frames", "images", "imgs", "img", "jpegimages", "rgb", "color", "video"}


def video_name(path: str) -> str:
    """A video's name for a title: a frames folder named like every other (DAVIS 'frames') with its parent."""
    path = Path(path)
    if path.name.lower() in GENERIC_FOLDER_NAMES and path.parent.name:
        return f"{path.parent.name}/{path.name}"
    return path.name


class AttentionCache:
    """The latest attention maps per (obj_id, frame_idx) within a byte budget (oldest dropped first).

    They are view data, never saved; a whole run of many objects fits (a shrunk map is ~0.1-0.25 MB).
    """

    def __init__(self, max_bytes: int = 256 * 2**20):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._maps: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def put(self, obj_id: int, frame_idx: int, attention: np.ndarray) -> None:
        key = (obj_id, frame_idx)
        old = self._maps.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._maps[key] = attention
        self.nbytes += attention.nbytes
        while self.nbytes > self.max_bytes and len(self._maps) > 1:
            self.nbytes -= self._maps.popitem(last=False)[1].nbytes

    def drop(self, obj_id: int, frame_idxs) -> None:
        """Forget the maps of states that changed (an undo, an edit, a new run): they showed the old ones."""
        for frame_idx in frame_idxs:
            old = self._maps.pop((obj_id, frame_idx), None)
            if old is not None:
                self.nbytes -= old.nbytes

    def get(self, obj_id: int, frame_idx: int) -> np.ndarray | None:
        return self._maps.get((obj_id, frame_idx))

    def clear(self) -> None:
        self._maps.clear()
        self.nbytes = 0


class Session(QObject):
    """One open video with its annotations. A new video or project replaces everything at once."""

    video_changed = Signal()  # new video and project: views rebuild
    frame_changed = Signal(int)
    selection_changed = Signal(object)  # obj_id or None
    objects_changed = Signal()  # added, removed, renamed, recoloured, hidden...
    states_changed = Signal(int, object)  # obj_id, tuple of frame indices
    meta_changed = Signal(str)  # a document-level value: "labels", "attributes", "reviewed"
    editing_enabled_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.video: VideoSource | None = None
        self.project: Project | None = None
        self._store: AnnotationStore | None = None  # the store whose events we listen to
        self.frame_idx = 0
        self.selected: int | None = None
        self.attention = AttentionCache()
        self.editing_enabled = True  # off while a propagation writes into the store

    # ---- document ------------------------------------------------------------------------
    @property
    def store(self) -> AnnotationStore | None:
        return self.project.store if self.project is not None else None

    @property
    def num_frames(self) -> int:
        return len(self.video) if self.video is not None else 0

    def set_document(self, video: VideoSource, project: Project) -> None:
        """Take over `video` and `project` (closing the previous video) and show frame 0."""
        if self._store is not None:  # the project's store may have changed: another of its videos
            self._store.events.disconnect(self._on_store_event)
        if self.video is not None and self.video is not video:
            self.video.close()
        self.video, self.project, self._store = video, project, project.store
        project.store.events.connect(self._on_store_event)
        self.attention.clear()
        self.frame_idx = 0
        objects = project.store.objects
        self.selected = objects[0].obj_id if objects else None
        self.video_changed.emit()
        self.frame_changed.emit(0)
        self.selection_changed.emit(self.selected)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()

    def title(self) -> str:
        """'<project or video> — TrackStudio', with ' *' once there is something unsaved."""
        project = self.project
        if project is None:
            return "TrackStudio"
        name = project.path.name if project.path else video_name(project.video.path)
        # a new project differs from no file at all only once something was edited
        unsaved = project.dirty and (project.path is not None or project.store.revision > 0)
        return f"{name}{' *' if unsaved else ''} — TrackStudio"

    # ---- navigation and selection --------------------------------------------------------
    def set_frame(self, frame_idx: int) -> None:
        if self.video is None:
            return
        frame_idx = int(min(max(frame_idx, 0), self.num_frames - 1))
        if frame_idx != self.frame_idx:
            self.frame_idx = frame_idx
            self.frame_changed.emit(frame_idx)

    def select(self, obj_id: int | None) -> None:
        if obj_id != self.selected:
            self.selected = obj_id
            self.selection_changed.emit(obj_id)

    def set_editing_enabled(self, enabled: bool) -> None:
        self.editing_enabled = enabled
        self.editing_enabled_changed.emit(enabled)

    def frame(self) -> np.ndarray | None:
        return self.video[self.frame_idx] if self.video is not None else None

    # ---- edits ---------------------------------------------------------------------------
    def state(self, obj_id: int, frame_idx: int | None = None) -> FrameState | None:
        store = self.store
        if store is None or obj_id not in store:
            return None
        return store.get_state(obj_id, self.frame_idx if frame_idx is None else frame_idx)

    def edit_state(self, obj_id: int, state: FrameState) -> bool:
        """A user edit on the current frame: stored as a keyframe (one undo step). False when locked."""
        if not self.editing_enabled or self.store is None:
            return False
        if not state.keyframe:
            state = FrameState(box=state.box, mask=state.mask, point=state.point, visible=state.visible,
                               keyframe=True, score=state.score, clicks=state.clicks)
        self.store.set_state(obj_id, self.frame_idx, state)
        return True

    def _on_store_event(self, event: object) -> None:
        if isinstance(event, StatesChanged):
            self.attention.drop(event.obj_id, event.frame_idxs)
            self.states_changed.emit(event.obj_id, event.frame_idxs)
        elif isinstance(event, ObjectsChanged):
            if self.selected is not None and self.selected not in self.store:
                objects = self.store.objects
                self.select(objects[0].obj_id if objects else None)
            self.objects_changed.emit()
        elif isinstance(event, MetaChanged):
            self.meta_changed.emit(event.key)
