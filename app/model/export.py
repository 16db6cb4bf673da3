"""Write annotations in a named format: one entry point for `trackstudio batch` and `ts.export`.

The writers are formats.py's; `EXPORTERS` maps a format name to its writer and to what the
result is called (a file suffix, or a folder for PNG masks). New formats plug in here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from trackstudio.app.video import VideoInfo

from .formats import export_npz, export_png_masks, save_json
from .store import AnnotationStore


@dataclass(frozen=True)
class Exporter:
    write: Callable[[AnnotationStore, VideoInfo, Path], object]
    suffix: str  # of the result's name; "" for a folder
    description: str


EXPORTERS: dict[str, Exporter] = {
    "json": Exporter(save_json, ".json", "TrackStudio JSON (every object, frame and flag)"),
    "npz": Exporter(export_npz, ".npz", "numpy arrays: boxes (T, M, 4), trajs_2d (T, N, 2), masks (T, H, W)"),
    "png": Exporter(export_png_masks, "", "a folder of DAVIS indexed PNG masks, one per frame"),
}


def format_of(path: str | os.PathLike) -> str:
    """The format a path's suffix names ("" or no suffix: a PNG folder); ValueError for others."""
    suffix = Path(path).suffix.lower()
    for name, exporter in EXPORTERS.items():
        if exporter.suffix == suffix:
            return name
    raise ValueError(f"cannot tell the format from {Path(path).name!r}: use "
                     + ", ".join(f"{e.suffix or 'a folder'} ({n})" for n, e in EXPORTERS.items()))


def check_format(fmt: str) -> Exporter:
    try:
        return EXPORTERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(EXPORTERS)}") from None


def result_name(stem: str, fmt: str) -> str:
    """What the result for `stem` is called in `fmt`: clip.json, clip.npz, clip (PNG folder)."""
    return stem + check_format(fmt).suffix


def export_annotations(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
                       fmt: str | None = None) -> Path:
    """Write `store` as `fmt` (default: from the path's suffix) to `path`; returns the path."""
    path = Path(path)
    check_format(fmt or format_of(path)).write(store, video, path)
    return path
