"""Project files (`.tsproj`): a list of videos, each with its objects, annotations and review flag,
one label schema for all of them, and settings.

Saved atomically; `Autosaver` writes `<project>.autosave` beside it when something changed, and
finds it again after a crash. Version 1 files (one video) are read and migrated on load. The
layout is in docs/formats.md.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from trackstudio.app.video import VideoInfo

from . import document_meta, labels
from .atomic import atomic_write_bytes
from .errors import FormatError
from .schema import (check_fits_video, check_header, dump_document, objects_to_json, parse_document,
                     store_from_json, video_from_json, video_to_json)
from .store import AnnotationStore

PROJECT_FORMAT = "trackstudio-project"
PROJECT_VERSION = 2
PROJECT_SUFFIX = ".tsproj"
AUTOSAVE_SUFFIX = ".autosave"
STATUSES = ("not started", "prompted", "tracked", "reviewed")
# the label schema is the project's (top level); attributes and reviewed ranges belong to a video
_KNOWN_KEYS = ("format", "version", labels.SCHEMA_KEY, "videos", "current", "settings")
_VIDEO_META_KEYS = tuple(key for key in document_meta.KEYS if key != labels.SCHEMA_KEY)
_ENTRY_KEYS = ("video", "objects", "video_reviewed", *_VIDEO_META_KEYS)
_MISSING = object()


class ProjectVideo:
    """One video of a project: its reference (`VideoInfo`), its annotation store and a review flag.

    The video file itself is not opened here: the window opens it when the user picks it.
    """

    def __init__(self, video: VideoInfo, store: AnnotationStore | None = None, reviewed: bool = False):
        # reviewed: the user marked the whole video done (saved as "video_reviewed"); frame ranges
        # reviewed per object are the store's "reviewed" value
        self.video = video
        self.store = AnnotationStore() if store is None else store
        self.reviewed = reviewed

    @property
    def name(self) -> str:
        return Path(self.video.path).name if self.video.path else "(no video)"

    @property
    def status(self) -> str:
        """One of STATUSES: reviewed (the user said so), tracked (has tracker output), prompted
        (has keyframes only) or not started."""
        if self.reviewed:
            return "reviewed"
        prompted = False
        for obj in self.store.objects:
            states = self.store.states(obj.obj_id)
            if any(not state.keyframe for state in states.values()):
                return "tracked"
            prompted = prompted or bool(states)
        return "prompted" if prompted else "not started"


class Project:
    """Videos with their annotation stores, one label schema, settings, and the file they were
    loaded from or saved to.

    `video` and `store` are those of the current video (`current`, an index into `videos`), so
    code written for one-video projects keeps working. The label schema (app.model.labels) is the
    project's: it is saved from the current video's store and given to every video's store on load
    and when the window switches videos (`share_label_schema`). `settings` is a free JSON-compatible
    dict (tracker choices, view options...); `extra` keeps unknown top-level keys of the loaded
    file so that saving writes them back.
    """

    def __init__(self, video: VideoInfo, store: AnnotationStore | None = None, settings: dict | None = None,
                 path: str | os.PathLike | None = None):
        self.videos = [ProjectVideo(video, store)]
        self.current = 0
        self.settings = {} if settings is None else settings
        self.path = None if path is None else Path(path)
        self.extra: dict = {}
        self._saved_token: tuple | None = None

    @property
    def entry(self) -> ProjectVideo:
        return self.videos[self.current]

    @property
    def video(self) -> VideoInfo:
        return self.entry.video

    @video.setter
    def video(self, video: VideoInfo) -> None:
        self.entry.video = video

    @property
    def store(self) -> AnnotationStore:
        return self.entry.store

    @store.setter
    def store(self, store: AnnotationStore) -> None:
        self.entry.store = store

    @property
    def video_path(self) -> str:
        return self.video.path

    def add_video(self, video: VideoInfo, store: AnnotationStore | None = None) -> ProjectVideo:
        """Append a video (a path already in the project is refused: one store per video)."""
        wanted = _same_file_key(video.path)
        if video.path and any(_same_file_key(entry.video.path) == wanted for entry in self.videos):
            raise ValueError(f"{video.path} is already in the project")
        entry = ProjectVideo(video, store)
        self.videos.append(entry)
        return entry

    def remove_video(self, index: int) -> ProjectVideo:
        """Drop video `index` and its annotations; `current` keeps pointing at the same video (or the
        previous one when the current video is removed). A project keeps at least one video."""
        if len(self.videos) == 1:
            raise ValueError("a project needs at least one video")
        entry = self.videos.pop(index)
        if self.current > index or (self.current == index and index == len(self.videos)):
            self.current -= 1
        return entry

    def share_label_schema(self, source: AnnotationStore) -> None:
        """Give the current video's store the label schema of `source` (the store the user edited it
        in), as one undoable step there when it differs."""
        schema = labels.schema(source)
        if labels.schema(self.store) != schema:
            labels.set_schema(self.store, schema, "Use the project's labels")

    @property
    def dirty(self) -> bool:
        """Whether a store (objects, states, labels), the video list or the settings changed since the last
        save or load."""
        return self._change_token() != self._saved_token

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the project atomically (to `path`, or where it was last saved); drops its autosave."""
        if path is None and self.path is None:
            raise ValueError("the project has no file yet: give save() a path")
        path = Path(path) if path is not None else self.path
        atomic_write_bytes(path, self.to_bytes(path))
        self.path = path
        self._saved_token = self._change_token()
        with contextlib.suppress(FileNotFoundError):
            os.remove(Autosaver.autosave_path(path))  # older than what was just saved
        return path

    def to_bytes(self, path: str | os.PathLike) -> bytes:
        """The project file's content, with video paths relative to `path`'s folder."""
        videos, schema = [], None
        for entry in self.videos:
            check_fits_video(entry.store, entry.video)
            video = video_to_json(entry.video, _relative_video_path(entry.video.path, Path(path)))
            if entry.video.path:
                video["absolute_path"] = str(Path(entry.video.path).resolve())
            meta = document_meta.meta_to_json(entry.store)
            if entry is self.entry:
                schema = meta.get(labels.SCHEMA_KEY)
            item = {"video": video, "objects": objects_to_json(entry.store),
                    **{key: meta[key] for key in _VIDEO_META_KEYS if key in meta}}
            if entry.reviewed:
                item["video_reviewed"] = True
            videos.append(item)
        doc = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION,
               **({labels.SCHEMA_KEY: schema} if schema is not None else {}),
               "videos": videos, "current": self.current, "settings": self.settings}
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return dump_document(doc)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Project:
        """Read and validate a project file (version 1 or 2); FormatError names the file and the bad field."""
        path = Path(path)
        try:
            doc = _migrate(parse_document(path.read_bytes()))
            check_header(doc, PROJECT_FORMAT, PROJECT_VERSION)
            schema = {labels.SCHEMA_KEY: doc[labels.SCHEMA_KEY]} if labels.SCHEMA_KEY in doc else {}
            entries = [_entry_from_json(item, f"videos[{i}]", path, schema)
                       for i, item in enumerate(_list(doc.get("videos", _MISSING), "videos"))]
            if not entries:
                raise FormatError("expected at least one video", "videos")
            current = doc.get("current", 0)
            if isinstance(current, bool) or not isinstance(current, int) or not 0 <= current < len(entries):
                raise FormatError(f"expected a video index 0..{len(entries) - 1}, got {current!r}", "current")
            settings = doc.get("settings", {})
            if not isinstance(settings, dict):
                raise FormatError("expected an object", "settings")
        except FormatError as exc:
            raise exc.in_file(path) from None
        project = cls(entries[0].video, entries[0].store, settings, path)
        project.videos, project.current = entries, current
        project.extra = {key: value for key, value in doc.items() if key not in _KNOWN_KEYS}
        project._saved_token = project._change_token()
        return project

    def _change_token(self) -> tuple:
        videos = tuple((id(e.store), e.store.revision, e.reviewed, e.video.path) for e in self.videos)
        return videos, json.dumps(self.settings, sort_keys=True, default=repr)



def _migrate(doc: dict) -> dict:
    """A version 1 document (one `video` with its `objects`) as version 2: a list of one video."""
    if doc.get("format") != PROJECT_FORMAT or doc.get("version") != 1 or isinstance(doc.get("version"), bool):
        return doc
    doc = dict(doc)
    entry = {"video": doc.pop("video", _MISSING), "objects": doc.pop("objects", []),
             **{key: doc.pop(key) for key in _VIDEO_META_KEYS if key in doc}}
    if entry["video"] is _MISSING:
        raise FormatError("expected an object, got nothing (the key is missing)", "video")
    doc.update(version=2, videos=[entry])
    return doc


def _entry_from_json(item, where: str, project_path: Path, schema: dict) -> ProjectVideo:
    """One video of the file; `schema` ({"labels": ...} or {}) is the project's label schema."""
    if not isinstance(item, dict):
        raise FormatError(f"expected an object, got {type(item).__name__}", where)
    for key in item:
        if key not in _ENTRY_KEYS:
            raise FormatError(f"unknown key (expected {', '.join(_ENTRY_KEYS)})", f"{where}.{key}")
    video = video_from_json(item.get("video"), f"{where}.video", extra_keys=("absolute_path",))
    video.path = _resolve_video_path(video.path, item["video"].get("absolute_path"), project_path, f"{where}.video")
    store = store_from_json(item.get("objects", []), video, f"{where}.objects")
    document_meta.meta_from_json({**schema, **{key: item[key] for key in _VIDEO_META_KEYS if key in item}},
                                 store, video)
    reviewed = item.get("video_reviewed", False)
    if not isinstance(reviewed, bool):
        raise FormatError(f"expected true or false, got {reviewed!r}", f"{where}.video_reviewed")
    return ProjectVideo(video, store, reviewed)


def _list(value, field: str) -> list:
    if not isinstance(value, list):
        got = "nothing (the key is missing)" if value is _MISSING else type(value).__name__
        raise FormatError(f"expected a list, got {got}", field)
    return value


def _same_file_key(path: str) -> str:
    return str(Path(path).resolve()) if path else ""


def _relative_video_path(video_path: str, project_path: Path) -> str:
    if not video_path:
        return ""
    try:
        return os.path.relpath(Path(video_path).resolve(), project_path.resolve().parent)
    except ValueError:  # another drive on Windows: no relative path exists
        return str(Path(video_path).resolve())


def _resolve_video_path(path: str, absolute_path, project_path: Path, field: str) -> str:
    """The relative path when it exists (the project moved along with its video), else the absolute one."""
    if absolute_path is not None and not isinstance(absolute_path, str):
        raise FormatError(f"expected a string, got {type(absolute_path).__name__}", f"{field}.absolute_path")
    if not path:
        return absolute_path or ""
    candidate = project_path.resolve().parent / path
    if not candidate.exists() and absolute_path and Path(absolute_path).exists():
        return absolute_path
    return str(candidate)


class Autosaver:
    """Writes `<project file>.autosave` when the project changed since it was saved or autosaved.

    Qt-free: call `autosave(project)` from a timer. A project without a file is not autosaved.
    """

    def __init__(self):
        self._written_token: tuple | None = None

    @staticmethod
    def autosave_path(path: str | os.PathLike) -> Path:
        return Path(os.fspath(path) + AUTOSAVE_SUFFIX)

    def autosave(self, project: Project) -> Path | None:
        """The autosave file when one was written, None when nothing needed writing."""
        if project.path is None or not project.dirty:
            return None
        token = project._change_token()
        if token == self._written_token:
            return None
        target = self.autosave_path(project.path)
        atomic_write_bytes(target, project.to_bytes(project.path))
        self._written_token = token
        return target

    @classmethod
    def find(cls, path: str | os.PathLike) -> Path | None:
        """The autosave of project `path` when it is newer than the project file (or that is gone)."""
        autosave = cls.autosave_path(path)
        if not autosave.exists():
            return None
        if Path(path).exists() and Path(path).stat().st_mtime_ns > autosave.stat().st_mtime_ns:
            return None
        return autosave

    @classmethod
    def recover(cls, path: str | os.PathLike) -> Project | None:
        """The project as autosaved, to be saved as `path` (so it starts dirty); None without a newer autosave."""
        autosave = cls.find(path)
        if autosave is None:
            return None
        project = Project.load(autosave)
        project.path = Path(path)
        project._saved_token = None
        return project
