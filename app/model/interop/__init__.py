"""Annotation exchange formats by name: `export(store, video, path, fmt)` and `import_file(...)`.

Each format lives in its own module; `FORMATS` maps its name to a `Format` with a writer and a
reader. Readers parse a whole file before anything is added, so a bad file imports nothing and
its `FormatError` names the file and the field. docs/formats.md describes every layout.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo, VideoSource

from ..errors import FormatError
from ..formats import export_npz, export_png_masks, save_json
from ..objects import TrackObject
from ..store import AnnotationStore
from .builtin import read_json_tracks, read_npz_tracks, read_png_tracks
from .coco import read_coco, write_coco
from .common import ImportedTrack, add_tracks
from .cvat import read_cvat, write_cvat
from .mot import read_mot, write_mot
from .pose import read_dlc, read_slp, write_dlc, write_slp
from .tapvid import read_tapvid, write_tapvid_npz, write_tapvid_pkl
from .yolo import read_yolo, write_yolo, write_yolo_images

Writer = Callable[[AnnotationStore, VideoInfo, Path, "np.ndarray | None"], None]
Reader = Callable[[Path, VideoInfo], list[ImportedTrack]]


@dataclass(frozen=True)
class Format:
    name: str
    title: str  # for menus: what it is and what it is written to
    suffix: str  # what the output path ends with; "" for a folder
    kinds: tuple[str, ...]  # object kinds the format holds
    write: Writer
    read: Reader
    write_frames: Callable[[VideoSource, Path], None] | None = None  # formats that can hold the images too


def _plain(writer) -> Writer:
    """Writers that take no frame times."""
    return lambda store, video, path, frame_times=None: writer(store, video, path)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("json", "TrackStudio JSON (.json)", ".json", ("box", "mask", "point"), _plain(save_json), read_json_tracks),
    Format("npz", "TrackStudio NumPy arrays, Point Odyssey layout (.npz)", ".npz", ("box", "mask", "point"),
           _plain(export_npz), read_npz_tracks),
    Format("png", "DAVIS PNG masks (folder)", "", ("mask",), _plain(export_png_masks), read_png_tracks),
    Format("coco", "COCO for video: track ids, RLE masks, keypoints (.json)", ".json", ("box", "mask", "point"),
           write_coco, read_coco),
    Format("yolo", "YOLO detection / segmentation (folder)", "", ("box", "mask"), write_yolo, read_yolo,
           write_yolo_images),
    Format("mot", "MOT Challenge (gt.txt, or a folder)", ".txt", ("box", "mask"), write_mot, read_mot),
    Format("cvat", "CVAT for video 1.1 (.xml)", ".xml", ("box", "mask", "point"), write_cvat, read_cvat),
    Format("dlc", "DeepLabCut (.csv)", ".csv", ("point",), write_dlc, read_dlc),
    Format("sleap", "SLEAP (.slp)", ".slp", ("point",), write_slp, read_slp),
    Format("tapvid", "TAP-Vid point tracks (.npz or .pkl)", ".npz", ("point",), write_tapvid_npz, read_tapvid),
)}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise FormatError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def export(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike, fmt: str,
           frame_times: np.ndarray | None = None, frames: VideoSource | None = None) -> Path:
    """Write `store` as format `fmt` to `path` (a folder for png and yolo); returns the path.

    `frame_times` (T,) seconds (from `VideoSource.frame_times()`) goes into the formats that keep
    time stamps (COCO images, TAP-Vid npz); `frames`, the opened video, adds the images to formats
    that hold them (YOLO's images/ folder).
    """
    spec = get_format(fmt)
    path = Path(path)
    writer = write_tapvid_pkl if spec.name == "tapvid" and path.suffix.lower() == ".pkl" else spec.write
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(store, video, path, frame_times)
    if frames is not None and spec.write_frames is not None:
        spec.write_frames(frames, path)
    return path


def read_file(path: str | os.PathLike, fmt: str, video: VideoInfo) -> list[ImportedTrack]:
    """Parse and check a file of format `fmt` for `video`; the store is not touched."""
    path = Path(path)
    if not path.exists():
        raise FormatError("no such file or folder", file=path)
    tracks = get_format(fmt).read(path, video)
    if not any(track.states for track in tracks):
        raise FormatError(f"holds no {fmt} annotations", file=path)
    return [track for track in tracks if track.states]


def import_file(path: str | os.PathLike, fmt: str, store: AnnotationStore, video: VideoInfo, *,
                tracked: bool = False) -> list[TrackObject]:
    """Add the file's objects to `store` as new objects, in one undo step (see `add_tracks`)."""
    tracks = read_file(path, fmt, video)
    try:
        return add_tracks(store, tracks, tracked=tracked, text=f"Import {Path(path).name}")
    except FormatError as exc:
        raise exc.in_file(path) from None


def guess_format(path: str | os.PathLike) -> str | None:
    """The format a path most likely holds, from its name (None when it is ambiguous)."""
    path = Path(path)
    by_suffix = {".xml": "cvat", ".slp": "sleap", ".csv": "dlc", ".pkl": "tapvid", ".txt": "mot", ".yaml": "yolo",
                 ".yml": "yolo"}
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return "json"  # its reader gives the message
        return "coco" if isinstance(doc, dict) and "images" in doc else "json"
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return "tapvid" if {"tracks", "occluded"} <= set(data.files) else "npz"
        except (OSError, ValueError):
            return "npz"
    if suffix in by_suffix:
        return by_suffix[suffix]
    if path.is_dir():
        if (path / "gt" / "gt.txt").is_file():
            return "mot"
        if (path / "data.yaml").is_file() or (path / "labels").is_dir():
            return "yolo"
        if any(path.glob("*.png")):
            return "png"
    return None


__all__ = ["FORMATS", "Format", "ImportedTrack", "add_tracks", "export", "get_format", "guess_format",
           "import_file", "read_file"]
