"""DAVIS-style masks: one indexed (palette) PNG per frame, `00012.png`, pixel value = obj_id."""
from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from trackstudio.app.video import VideoInfo

from .atomic import atomic_folder, unswappable_folder
from .colors import davis_palette
from .errors import FormatError
from .labelmap import label_map, mask_objects
from .objects import FrameState, TrackObject
from .rle import MaskRLE
from .schema import check_fits_video
from .store import AnnotationStore

_MAX_LABEL = 255  # an 8-bit palette PNG holds labels 0..255; 0 is the background
_FRAME_PNG = re.compile(r"\d+\.png")


def export_png_masks(store: AnnotationStore, video: VideoInfo, out_dir: str | os.PathLike) -> list[Path]:
    """Write `<frame_idx:05d>.png` for every frame of the video (frames without masks are all 0).

    Mask objects must have ids 1..255 (FormatError otherwise). The folder is written beside
    `out_dir` and swapped in at the end (`atomic_folder`): a crash midway leaves the old folder
    whole. Other files in an existing `out_dir` are kept; its old frame PNGs are replaced. An
    existing `out_dir` holding sub-folders (or the current folder) is refused (FormatError).
    Returns the written paths.
    """
    check_fits_video(store, video)
    objects = mask_objects(store, _MAX_LABEL, "an 8-bit indexed PNG")
    out_dir = Path(out_dir)
    problem = unswappable_folder(out_dir) if out_dir.is_dir() else None
    if problem:
        raise FormatError(f"PNG masks go to a new folder, or one that holds only files ({problem})", file=out_dir)
    palette = davis_palette().tobytes()
    names = [f"{frame_idx:05d}.png" for frame_idx in range(video.num_frames)]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(out_dir, replaced=_FRAME_PNG) as tmp_dir:
        for frame_idx, name in enumerate(names):
            labels = label_map(store, objects, frame_idx, (video.height, video.width), np.uint8)
            image = Image.frombytes("P", (video.width, video.height), labels.tobytes())
            image.putpalette(palette)
            image.save(tmp_dir / name, format="PNG")
    return [out_dir / name for name in names]


def import_png_masks(folder: str | os.PathLike, store: AnnotationStore, video: VideoInfo, *,
                     resize: bool = False, keyframe: bool = True) -> list[TrackObject]:
    """Read `<frame_idx>.png` label maps into new mask objects, one per non-zero value (one undo step).

    An object takes its label value as id when that id is free in the store, else the next free
    id. The PNGs must be indexed, 8-bit grey or 1-bit and of the video's size; `resize=True` instead
    scales other sizes to it (nearest neighbour). Every file is checked before the store changes.
    """
    folder = Path(folder)
    masks_by_label = read_png_masks(folder, video, resize=resize)
    created = []
    with store.macro(f"Import masks from {folder.name}"):
        for label, masks in sorted(masks_by_label.items()):
            obj = store.add_object("mask", obj_id=None if label in store else label)
            for frame_idx, mask in masks.items():
                store.set_state(obj.obj_id, frame_idx, FrameState(mask=mask, keyframe=keyframe))
            created.append(obj)
    return created


def read_png_masks(folder: Path, video: VideoInfo, *, resize: bool = False) -> dict[int, dict[int, MaskRLE]]:
    """{label value: {frame_idx: mask}} from a folder of label-map PNGs, every file checked."""
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not files:
        raise FormatError(f"no PNG masks in {folder}")
    masks_by_label: dict[int, dict[int, MaskRLE]] = {}
    for path in files:
        frame_idx = _frame_index(path, video)
        labels = _read_labels(path, video, resize)
        for label in np.unique(labels):
            if label != 0:
                masks_by_label.setdefault(int(label), {})[frame_idx] = MaskRLE.encode(labels == label)
    return masks_by_label


def _frame_index(path: Path, video: VideoInfo) -> int:
    if not (path.stem.isascii() and path.stem.isdigit()):
        raise FormatError("the file name must be the frame index, like 00012.png", file=path)
    frame_idx = int(path.stem)
    if frame_idx >= video.num_frames:
        raise FormatError(f"frame {frame_idx} is beyond the video's {video.num_frames} frames", file=path)
    return frame_idx


def _read_labels(path: Path, video: VideoInfo, resize: bool) -> np.ndarray:
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "1"):
                raise FormatError(f"expected an indexed (palette), 8-bit grey or 1-bit PNG, got mode {image.mode}",
                                  file=path)
            labels = np.asarray(image).astype(np.uint8)  # (H, W): palette indices, not colours
    except (OSError, UnidentifiedImageError) as exc:
        raise FormatError(f"cannot read the PNG ({exc})", file=path) from None
    if labels.shape != (video.height, video.width):
        if not resize:
            raise FormatError(f"the mask is {labels.shape[1]}x{labels.shape[0]} but the video is "
                              f"{video.width}x{video.height} (import with resize to scale it)", file=path)
        labels = cv2.resize(labels, (video.width, video.height), interpolation=cv2.INTER_NEAREST)
    return labels
