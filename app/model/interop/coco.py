"""COCO JSON for video (as in YouTube-VIS / TAO): one image per frame, annotations with `track_id`.

Boxes are `bbox` [x, y, w, h]; masks are compressed RLE `segmentation` (polygons are read too);
point objects are one-keypoint annotations (v = 2 visible, 1 occluded). Extra keys keep what COCO
has no place for: `videos`, `tracks` (name, kind, colour), `keyframe`, `score`, image `timestamp`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..atomic import atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..rle import MaskRLE
from ..schema import check_fits_video, dump_document
from ..store import AnnotationStore
from .common import (ImportedTrack, category_name, check_frame, integer, number, polygons_to_mask, read_json,
                     state_box)

_POINT_KEYPOINTS = ["point"]


def write_coco(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
               frame_times: np.ndarray | None = None) -> None:
    check_fits_video(store, video)
    stem = Path(video.path).stem or "video"
    images = []
    for frame_idx in range(video.num_frames):
        image = {"id": frame_idx + 1, "video_id": 1, "frame_id": frame_idx, "file_name": f"{stem}/{frame_idx:06d}.jpg",
                 "width": video.width, "height": video.height}
        if frame_times is not None:
            image["timestamp"] = round(float(frame_times[frame_idx]), 6)
        images.append(image)
    categories: dict[tuple[str, bool], dict] = {}
    tracks, annotations = [], []
    for obj in store.objects:
        key = (category_name(obj), obj.kind == "point")
        if key not in categories:
            category = {"id": len(categories) + 1, "name": key[0], "supercategory": ""}
            if key[1]:
                category.update(keypoints=_POINT_KEYPOINTS, skeleton=[])
            categories[key] = category
        category_id = categories[key]["id"]
        tracks.append({"id": obj.obj_id, "category_id": category_id, "video_id": 1, "name": obj.name,
                       "kind": obj.kind, "color": obj.color})
        for frame_idx, state in store.states(obj.obj_id).items():
            annotation = _annotation(obj.kind, state)
            if annotation is None:
                continue
            annotation.update(id=len(annotations) + 1, image_id=frame_idx + 1, category_id=category_id,
                              track_id=obj.obj_id, video_id=1, iscrowd=0)
            if state.keyframe:
                annotation["keyframe"] = True
            if state.score is not None:
                annotation["score"] = float(state.score)
            annotations.append(annotation)
    doc = {"info": {"description": "TrackStudio export", "version": "1.0"},
           "videos": [{"id": 1, "name": stem, "file_name": video.path, "width": video.width,
                       "height": video.height, "length": video.num_frames, "fps": video.fps}],
           "images": images, "annotations": annotations, "categories": list(categories.values()),
           "tracks": tracks}
    atomic_write_bytes(path, dump_document(doc))


def _annotation(kind: str, state: FrameState) -> dict | None:
    if kind == "point":
        if state.point is None:
            return None
        x, y = (float(v) for v in state.point)
        return {"keypoints": [x, y, 2 if state.visible else 1], "num_keypoints": 1, "bbox": [x, y, 0.0, 0.0],
                "area": 0.0}
    box = state_box(state)
    if box is None:
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    annotation = {"bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
    if kind == "mask" and state.mask is not None:
        annotation["segmentation"] = {"size": list(state.mask.size), "counts": state.mask.counts}
        annotation["area"] = float(state.mask.area())
    return annotation


def read_coco(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    doc = read_json(path)
    try:
        return _tracks_from_coco(doc, video)
    except FormatError as exc:
        raise exc.in_file(path) from None


def _image_order(image: dict) -> int:
    """Frame order for images without a frame_id: by id (ids are checked later)."""
    image_id = image.get("id")
    return image_id if isinstance(image_id, int) and not isinstance(image_id, bool) else -1


def _list(doc: dict, key: str, required: bool = True) -> list:
    value = doc.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise FormatError("expected a list" + ("" if key in doc else " (the key is missing)"), key)
    return value


def _tracks_from_coco(doc: dict, video: VideoInfo) -> list[ImportedTrack]:
    images = _list(doc, "images")
    annotations = _list(doc, "annotations")
    video_ids = {img.get("video_id") for img in images if isinstance(img, dict)}
    if len(video_ids) > 1:
        raise FormatError(f"holds {len(video_ids)} videos; import one video's images at a time", "images")
    frame_by_image: dict[int, int] = {}
    ordered = sorted((img for img in images if isinstance(img, dict)), key=_image_order)
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(image, dict):
            raise FormatError("expected an object", where)
        image_id = integer(image.get("id"), f"{where}.id")
        for key, expected in (("width", video.width), ("height", video.height)):
            if key in image and image[key] != expected:
                raise FormatError(f"the image is {image.get('width')}x{image.get('height')} but the video is "
                                  f"{video.width}x{video.height}", f"{where}.{key}")
        frame = image.get("frame_id", image.get("frame_index"))
        frame_idx = integer(frame, f"{where}.frame_id", minimum=0) if frame is not None else ordered.index(image)
        frame_by_image[image_id] = check_frame(frame_idx, video, f"{where}.frame_id")
    categories = {}
    for i, category in enumerate(_list(doc, "categories", required=False)):
        if not isinstance(category, dict):
            raise FormatError("expected an object", f"categories[{i}]")
        categories[integer(category.get("id"), f"categories[{i}].id")] = category
    meta = {t.get("id"): t for t in _list(doc, "tracks", required=False) if isinstance(t, dict)}

    tracks: dict[object, ImportedTrack] = {}
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise FormatError("expected an object", where)
        image_id = ann.get("image_id")
        if image_id not in frame_by_image:
            raise FormatError(f"no image has id {image_id!r}", f"{where}.image_id")
        frame_idx = frame_by_image[image_id]
        track_id = ann.get("track_id", ann.get("instance_id"))
        key = ("track", track_id) if track_id is not None else ("annotation", i)
        category = categories.get(ann.get("category_id"), {})
        label = str(category.get("name", ""))
        for kind, state, suffix in _states(ann, category, video, where):
            track_key = (*key, suffix)
            track = tracks.get(track_key)
            if track is None:
                info = meta.get(track_id, {}) if track_id is not None else {}
                name = info.get("name") if isinstance(info.get("name"), str) else None
                if name is None and track_id is not None:
                    name = f"{label or kind} {track_id}"
                if suffix and name:
                    name = f"{name} {suffix}"
                color = info.get("color") if isinstance(info.get("color"), str) else None
                track = tracks[track_key] = ImportedTrack(kind, name, label, color, prompts=set())
            elif track.kind != kind:
                if {track.kind, kind} == {"mask", "box"}:  # a mask track with box-only frames
                    track.kind = "mask"
                else:
                    raise FormatError(f"track {track_id} mixes {track.kind} and {kind} annotations", where)
            if frame_idx in track.states:
                raise FormatError(f"track {track_id} has two annotations on frame {frame_idx}", where)
            track.states[frame_idx] = state
            if ann.get("keyframe") is True:
                track.prompts.add(frame_idx)
    result = list(tracks.values())
    for track in result:
        if not track.prompts:
            track.prompts = None  # the file marks no keyframes: the import option decides alone
    return result


def _states(ann: dict, category: dict, video: VideoInfo, where: str):
    """(kind, state, name suffix) for an annotation: one per labelled keypoint, else one mask or box."""
    score = ann.get("score")
    score = number(score, f"{where}.score") if score is not None else None
    keypoints = ann.get("keypoints")
    if keypoints:
        if not isinstance(keypoints, list) or len(keypoints) % 3:
            raise FormatError("expected [x1, y1, v1, x2, y2, v2, ...]", f"{where}.keypoints")
        names = category.get("keypoints") or []
        count = len(keypoints) // 3
        for k in range(count):
            x, y, v = (number(keypoints[3 * k + j], f"{where}.keypoints[{3 * k + j}]") for j in range(3))
            if v <= 0:
                continue  # not labelled
            suffix = "" if count == 1 else str(names[k] if k < len(names) else k)
            yield "point", FrameState(point=[x, y], visible=v >= 2, score=score), suffix
        return
    segmentation = ann.get("segmentation")
    if segmentation:
        mask = _segmentation(segmentation, video, f"{where}.segmentation")
        yield "mask", FrameState(mask=mask, score=score), ""
        return
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise FormatError("expected [x, y, width, height]" + ("" if "bbox" in ann else " (the key is missing)"),
                          f"{where}.bbox")
    x, y, w, h = (number(v, f"{where}.bbox[{j}]") for j, v in enumerate(bbox))
    if w < 0 or h < 0:
        raise FormatError(f"width and height must be >= 0, got {w:g} x {h:g}", f"{where}.bbox")
    yield "box", FrameState(box=[x, y, x + w, y + h], score=score), ""


def _segmentation(value, video: VideoInfo, where: str) -> MaskRLE:
    shape = (video.height, video.width)
    if isinstance(value, dict):
        if value.get("size") != [video.height, video.width]:
            raise FormatError(f"expected [H, W] = [{video.height}, {video.width}] (the video's size), got "
                              f"{value.get('size')!r}", f"{where}.size")
        counts = value.get("counts")
        try:
            if isinstance(counts, str):
                return MaskRLE(shape, counts)
            if isinstance(counts, list):
                return MaskRLE.from_runs(shape, counts)
        except ValueError as exc:
            raise FormatError(str(exc), f"{where}.counts") from None
        raise FormatError("expected an RLE string or a list of run lengths", f"{where}.counts")
    if isinstance(value, list):
        polygons = []
        for j, polygon in enumerate(value):
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise FormatError("expected [x1, y1, x2, y2, x3, y3, ...] (3 corners or more)", f"{where}[{j}]")
            coords = [number(v, f"{where}[{j}][{k}]") for k, v in enumerate(polygon)]
            polygons.append(np.array(coords).reshape(-1, 2))
        return polygons_to_mask(polygons, shape)
    raise FormatError("expected an RLE object or a list of polygons", where)
