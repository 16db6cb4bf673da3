"""Annotation files: the JSON format (read and write), NPZ arrays and DAVIS PNG masks.

The layouts are specified in docs/formats.md. Every save is atomic (see `atomic.py`).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from . import document_meta
from .atomic import atomic_open, atomic_write_bytes
from .errors import FormatError
from .labelmap import label_map, mask_objects
from .pngmasks import export_png_masks, import_png_masks
from .schema import (check_fits_video, check_header, dump_document, objects_to_json, parse_document,
                     store_from_json, video_from_json, video_to_json)
from .store import AnnotationStore

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "FormatError", "export_npz", "export_png_masks", "import_png_masks",
           "load_json", "save_json"]

FORMAT_NAME = "trackstudio"
FORMAT_VERSION = 1
_KNOWN_KEYS = ("format", "version", "video", "objects", *document_meta.KEYS)


def save_json(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike) -> None:
    check_fits_video(store, video)
    doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "video": video_to_json(video),
           "objects": objects_to_json(store), **document_meta.meta_to_json(store)}
    for key, value in store.extra.items():
        doc.setdefault(key, value)
    atomic_write_bytes(path, dump_document(doc))


def load_json(path: str | os.PathLike) -> tuple[AnnotationStore, VideoInfo]:
    """Read and validate a JSON annotation file; FormatError names the file and the bad field."""
    data = Path(path).read_bytes()
    try:
        doc = parse_document(data)
        check_header(doc, FORMAT_NAME, FORMAT_VERSION)
        video = video_from_json(doc.get("video"))
        store = store_from_json(doc.get("objects", []), video)
        document_meta.meta_from_json(doc, store, video)
    except FormatError as exc:
        raise exc.in_file(path) from None
    store.extra = {key: value for key, value in doc.items() if key not in _KNOWN_KEYS}
    return store, video


def export_npz(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike) -> None:
    """Arrays for numpy users; mask frames are streamed, so long videos never sit in memory whole."""
    check_fits_video(store, video)
    num_frames, height, width = video.num_frames, video.height, video.width
    arrays = {"num_frames": np.int64(num_frames), "height": np.int64(height), "width": np.int64(width),
              "fps": np.float64(video.fps), "video_path": np.str_(video.path)}
    points = _objects_of_kind(store, "point")
    if points:
        trajs = np.full((num_frames, len(points), 2), np.nan, np.float32)  # (T, N, 2)
        visibs = np.zeros((num_frames, len(points)), bool)  # (T, N)
        for n, obj in enumerate(points):
            for frame_idx, state in store.states(obj.obj_id).items():
                if state.point is not None:
                    trajs[frame_idx, n] = state.point
                    visibs[frame_idx, n] = state.visible
        arrays.update(trajs_2d=trajs, visibs=visibs, **_ids_and_names("point", points))
    boxes = _objects_of_kind(store, "box")
    if boxes:
        box_array = np.full((num_frames, len(boxes), 4), np.nan, np.float32)  # (T, M, 4)
        for m, obj in enumerate(boxes):
            for frame_idx, state in store.states(obj.obj_id).items():
                if state.visible and state.box is not None:
                    box_array[frame_idx, m] = state.box
        arrays.update(boxes=box_array, **_ids_and_names("box", boxes))
    masks = mask_objects(store, np.iinfo(np.uint16).max, "a uint16 label map")
    if masks:
        arrays.update(_ids_and_names("mask", masks))
    with atomic_open(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(_member(f"{name}.npy"), "w") as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
        if masks:
            with archive.open(_member("masks.npy"), "w", force_zip64=True) as member:  # (T, H, W) uint16
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<u2")), "fortran_order": False,
                          "shape": (num_frames, height, width)}
                np.lib.format.write_array_header_1_0(member, header)
                for frame_idx in range(num_frames):
                    member.write(label_map(store, masks, frame_idx, (height, width), "<u2").tobytes())


def _member(name: str) -> zipfile.ZipInfo:
    """A member with a fixed timestamp: the same annotations give the same bytes (batch runs compare them)."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _objects_of_kind(store: AnnotationStore, kind: str) -> list:
    return [obj for obj in store.objects if obj.kind == kind]


def _ids_and_names(kind: str, objects: list) -> dict[str, np.ndarray]:
    return {f"{kind}_ids": np.array([obj.obj_id for obj in objects], np.int64),
            f"{kind}_names": np.array([obj.name for obj in objects], np.str_)}
