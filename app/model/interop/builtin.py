"""TrackStudio's own files as exchange formats: JSON, NPZ arrays and DAVIS PNG masks.

Writing is `formats.save_json` / `export_npz` / `export_png_masks`; reading turns each file's
objects into new objects (ids kept where free), like every other format.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..errors import FormatError
from ..formats import load_json
from ..objects import FrameState
from ..pngmasks import read_png_masks
from ..rle import MaskRLE
from .common import ImportedTrack


def read_json_tracks(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    store, file_video = load_json(path)
    if (file_video.width, file_video.height) != (video.width, video.height):
        raise FormatError(f"the annotations are for a {file_video.width}x{file_video.height} video but this one is "
                          f"{video.width}x{video.height}", "video", path)
    if file_video.num_frames > video.num_frames:
        last = max((f for obj in store.objects for f in store.frames(obj.obj_id)), default=-1)
        if last >= video.num_frames:
            raise FormatError(f"annotations on frame {last}, beyond the video's {video.num_frames} frames",
                              "objects", path)
    tracks = []
    for obj in store.objects:
        states = store.states(obj.obj_id)
        tracks.append(ImportedTrack(obj.kind, obj.name, obj.label, obj.color, states,
                                    prompts={f for f, s in states.items() if s.keyframe}, obj_id=obj.obj_id))
    return tracks


def read_png_tracks(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    return [ImportedTrack("mask", f"mask {label}", states={f: FrameState(mask=m) for f, m in masks.items()},
                          obj_id=label)
            for label, masks in sorted(read_png_masks(path, video).items())]


def read_npz_tracks(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    """The arrays `export_npz` writes (docs/formats.md): point tracks, boxes, the mask label map."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise FormatError(f"not a readable .npz ({exc})", file=path) from None
    shape = (int(arrays.get("num_frames", -1)), int(arrays.get("height", -1)), int(arrays.get("width", -1)))
    if shape[1:] != (video.height, video.width) or shape[0] > video.num_frames:
        raise FormatError(f"the arrays are for a {shape[2]}x{shape[1]} video of {shape[0]} frames; this one is "
                          f"{video.width}x{video.height}, {video.num_frames} frames", "num_frames", path)
    tracks = []
    if "trajs_2d" in arrays:
        trajs, visibs = arrays["trajs_2d"], arrays["visibs"]  # (T, N, 2), (T, N)
        for n, (obj_id, name) in enumerate(zip(arrays["point_ids"], arrays["point_names"])):
            states = {f: FrameState(point=trajs[f, n], visible=bool(visibs[f, n]))
                      for f in range(trajs.shape[0]) if np.isfinite(trajs[f, n]).all()}
            tracks.append(ImportedTrack("point", str(name), states=states, obj_id=int(obj_id)))
    if "boxes" in arrays:
        boxes = arrays["boxes"]  # (T, M, 4)
        for m, (obj_id, name) in enumerate(zip(arrays["box_ids"], arrays["box_names"])):
            states = {f: FrameState(box=boxes[f, m]) for f in range(boxes.shape[0]) if np.isfinite(boxes[f, m]).all()}
            tracks.append(ImportedTrack("box", str(name), states=states, obj_id=int(obj_id)))
    if "masks" in arrays:
        labels = arrays["masks"]  # (T, H, W) obj_id per pixel
        for obj_id, name in zip(arrays["mask_ids"], arrays["mask_names"]):
            states = {f: FrameState(mask=MaskRLE.encode(labels[f] == obj_id))
                      for f in range(labels.shape[0]) if (labels[f] == obj_id).any()}
            tracks.append(ImportedTrack("mask", str(name), states=states, obj_id=int(obj_id)))
    return tracks
