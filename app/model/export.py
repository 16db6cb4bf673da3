"""Write annotations in a named format: the entry point for `trackstudio batch` and `ts.export`.

The formats are the exchange-format registry's (interop.FORMATS: json, npz, png, coco, yolo, mot,
cvat, dlc, sleap, tapvid); this module adds what a batch needs on top: the format a result path
names, and what the result for a video is called.
"""
from __future__ import annotations

import os
from pathlib import Path

from trackstudio.app.video import VideoInfo

from .interop import FORMATS, Format, export, get_format
from .store import AnnotationStore


def format_of(path: str | os.PathLike) -> str:
    """The format a path's suffix names (the first registered one: .json is TrackStudio JSON, .npz
    its arrays, no suffix a PNG folder); ValueError for others."""
    suffix = Path(path).suffix.lower()
    for name, fmt in FORMATS.items():
        if fmt.suffix == suffix:
            return name
    raise ValueError(f"cannot tell the format from {Path(path).name!r}: name one of {', '.join(FORMATS)}")


def check_format(fmt: str) -> Format:
    return get_format(fmt)  # FormatError (a ValueError) naming the known formats


def result_name(stem: str, fmt: str) -> str:
    """What the result for `stem` is called in `fmt`: clip.json, clip.npz, clip (a folder), ..."""
    return stem + check_format(fmt).suffix


def export_annotations(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
                       fmt: str | None = None) -> Path:
    """Write `store` as `fmt` (default: from the path's suffix) to `path`; returns the path."""
    return export(store, video, path, fmt or format_of(path))
