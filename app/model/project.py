"""Project files (`.tsproj`): the video reference, all objects and annotations, and settings.

Saved atomically; `Autosaver` writes `<project>.autosave` beside it when something changed, and
finds it again after a crash. The layout is in docs/formats.md.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from trackstudio.app.video import VideoInfo

from . import document_meta
from .atomic import atomic_write_bytes
from .errors import FormatError
from .schema import (check_fits_video, check_header, dump_document, objects_to_json, parse_document,
                     store_from_json, video_from_json, video_to_json)
from .store import AnnotationStore

PROJECT_FORMAT = "trackstudio-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".tsproj"
AUTOSAVE_SUFFIX = ".autosave"
_KNOWN_KEYS = ("format", "version", "video", "objects", "settings", *document_meta.KEYS)


class Project:
    """A video, its annotation store and settings, and the file they were loaded from or saved to.

    `settings` is a free JSON-compatible dict (tracker choices, view options...); `extra` keeps
    unknown top-level keys of the loaded file so that saving writes them back.
    """

    def __init__(self, video: VideoInfo, store: AnnotationStore | None = None, settings: dict | None = None,
                 path: str | os.PathLike | None = None):
        self.video = video
        self.store = AnnotationStore() if store is None else store
        self.settings = {} if settings is None else settings
        self.path = None if path is None else Path(path)
        self.extra: dict = {}
        self._saved_token: tuple | None = None

    @property
    def video_path(self) -> str:
        return self.video.path

    @property
    def dirty(self) -> bool:
        """Whether the store or the settings changed since the last save or load."""
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
        """The project file's content, with the video path relative to `path`'s folder."""
        check_fits_video(self.store, self.video)
        video = video_to_json(self.video, _relative_video_path(self.video.path, Path(path)))
        if self.video.path:
            video["absolute_path"] = str(Path(self.video.path).resolve())
        doc = {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "video": video,
               "objects": objects_to_json(self.store), **document_meta.meta_to_json(self.store),
               "settings": self.settings}
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return dump_document(doc)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Project:
        """Read and validate a project file; FormatError names the file and the bad field."""
        path = Path(path)
        try:
            doc = parse_document(path.read_bytes())
            check_header(doc, PROJECT_FORMAT, PROJECT_VERSION)
            video = video_from_json(doc.get("video"), extra_keys=("absolute_path",))
            video.path = _resolve_video_path(video.path, doc["video"].get("absolute_path"), path)
            store = store_from_json(doc.get("objects", []), video)
            document_meta.meta_from_json(doc, store, video)
            settings = doc.get("settings", {})
            if not isinstance(settings, dict):
                raise FormatError("expected an object", "settings")
        except FormatError as exc:
            raise exc.in_file(path) from None
        project = cls(video, store, settings, path)
        project.extra = {key: value for key, value in doc.items() if key not in _KNOWN_KEYS}
        project._saved_token = project._change_token()
        return project

    def _change_token(self) -> tuple:
        return id(self.store), self.store.revision, json.dumps(self.settings, sort_keys=True, default=repr)


def _relative_video_path(video_path: str, project_path: Path) -> str:
    if not video_path:
        return ""
    try:
        return os.path.relpath(Path(video_path).resolve(), project_path.resolve().parent)
    except ValueError:  # another drive on Windows: no relative path exists
        return str(Path(video_path).resolve())


def _resolve_video_path(path: str, absolute_path, project_path: Path) -> str:
    """The relative path when it exists (the project moved along with its video), else the absolute one."""
    if absolute_path is not None and not isinstance(absolute_path, str):
        raise FormatError(f"expected a string, got {type(absolute_path).__name__}", "video.absolute_path")
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
