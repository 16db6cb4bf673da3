"""CVAT for video 1.1 XML: `<track>`s of `<box>`, `<mask>` (or `<polygon>`) and `<points>` shapes.

Each shape carries `frame`, `outside` (the object is gone), `occluded` and `keyframe`. Written:
box objects as boxes, mask objects as `<mask>` (CVAT's run-length code: row-major runs inside
the mask's box, starting with a background run), point objects as one-point `<points>`; a hidden
state, a gap and the frame after an object's last state get an `outside="1"` shape, so CVAT does
not carry the shape on. Read: those plus polygons and the points of skeletons; CVAT's keyframe
flag marks the frames that stay keyframes when importing as tracked frames.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..atomic import atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..rle import MaskRLE
from ..schema import check_fits_video
from ..store import AnnotationStore
from .common import ImportedTrack, category_name, check_frame, parse_float, parse_int, polygons_to_mask

_SHAPE_TAG = {"box": "box", "mask": "mask", "point": "points"}


def write_cvat(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
               frame_times: np.ndarray | None = None) -> None:
    check_fits_video(store, video)
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for key, value in (("name", Path(video.path).stem or "video"), ("size", video.num_frames),
                       ("mode", "interpolation"), ("overlap", 0), ("start_frame", 0),
                       ("stop_frame", video.num_frames - 1)):
        ET.SubElement(task, key).text = str(value)
    labels = ET.SubElement(task, "labels")
    for name, color in dict((category_name(o), o.color) for o in reversed(store.objects)).items():
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "color").text = color
        ET.SubElement(label, "type").text = "any"
        ET.SubElement(label, "attributes")
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text = str(video.width)
    ET.SubElement(size, "height").text = str(video.height)
    ET.SubElement(root.find("meta"), "dumped").text = datetime.now(timezone.utc).isoformat()
    for track_id, obj in enumerate(store.objects):
        track = ET.Element("track", id=str(track_id), label=category_name(obj), source="manual")
        last_geometry, last_frame = None, None
        for frame_idx, state in store.states(obj.obj_id).items():
            geometry = _geometry(obj.kind, state)
            if geometry is None and state.visible:
                continue  # a mask prompt (clicks) without its mask: nothing CVAT could show
            if last_frame is not None and frame_idx > last_frame + 1 and last_geometry is not None:
                _shape(track, obj.kind, last_frame + 1, last_geometry, outside=True, keyframe=True)
            if geometry is None:
                if last_geometry is not None:  # CVAT needs a position even for outside shapes
                    _shape(track, obj.kind, frame_idx, last_geometry, outside=True, keyframe=True)
                continue
            occluded = obj.kind == "point" and not state.visible  # a point hidden where it is predicted
            _shape(track, obj.kind, frame_idx, geometry, outside=not state.visible and not occluded,
                   keyframe=state.keyframe, occluded=occluded)
            last_geometry, last_frame = geometry, frame_idx
        if last_frame is not None and last_frame + 1 < video.num_frames:
            _shape(track, obj.kind, last_frame + 1, last_geometry, outside=True, keyframe=True)
        if len(track):
            root.append(track)
    ET.indent(root)
    atomic_write_bytes(path, b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8"))


def _geometry(kind: str, state: FrameState) -> dict | None:
    if kind == "box" and state.box is not None:
        x1, y1, x2, y2 = (float(v) for v in state.box)
        return {"xtl": f"{x1:.2f}", "ytl": f"{y1:.2f}", "xbr": f"{x2:.2f}", "ybr": f"{y2:.2f}"}
    if kind == "point" and state.point is not None:
        return {"points": f"{float(state.point[0]):.2f},{float(state.point[1]):.2f}"}
    if kind == "mask" and state.mask is not None:
        mask = state.mask.decode()
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not len(rows):
            return None
        crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].ravel()  # row-major, as CVAT counts
        changes = np.flatnonzero(np.diff(crop.astype(np.int8))) + 1
        runs = np.diff(np.concatenate(([0], changes, [crop.size])))
        if crop[0]:
            runs = np.concatenate(([0], runs))  # runs start with background
        return {"rle": ", ".join(str(int(r)) for r in runs), "left": str(cols[0]), "top": str(rows[0]),
                "width": str(cols[-1] - cols[0] + 1), "height": str(rows[-1] - rows[0] + 1)}
    return None


def _shape(track: ET.Element, kind: str, frame_idx: int, geometry: dict, *, outside: bool, keyframe: bool,
           occluded: bool = False) -> None:
    ET.SubElement(track, _SHAPE_TAG[kind], frame=str(frame_idx), outside=str(int(outside)),
                  occluded=str(int(occluded)), keyframe=str(int(keyframe)), **geometry, z_order="0")


def read_cvat(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FormatError(f"not valid XML ({exc})", file=path) from None
    try:
        return _tracks(root, video)
    except FormatError as exc:
        raise exc.in_file(path) from None


def _tracks(root: ET.Element, video: VideoInfo) -> list[ImportedTrack]:
    if root.tag != "annotations":
        raise FormatError(f"expected <annotations> at the top, got <{root.tag}>", "annotations")
    size = root.find("meta/task/original_size")
    if size is not None:
        width, height = size.findtext("width"), size.findtext("height")
        if (width, height) != (str(video.width), str(video.height)):
            raise FormatError(f"the task is {width}x{height} but the video is {video.width}x{video.height}",
                              "meta.task.original_size")
    if root.find("image") is not None and root.find("track") is None:
        raise FormatError("this is 'CVAT for images'; export the task as 'CVAT for video 1.1'", "image")
    tracks = []
    for t, track in enumerate(root.iter("track")):
        label = track.get("label", "")
        where = f"track[{t}] (id {track.get('id')})"
        by_key: dict[str, ImportedTrack] = {}
        for s, shape in enumerate(track):
            shape_where = f"{where}.{shape.tag}[{s}]"
            if shape.tag == "skeleton":
                for p, point in enumerate(shape.iter("points")):
                    name = f"{label} {track.get('id')} {point.get('label', p)}"
                    _add(by_key, name, label, point, point.get("frame", shape.get("frame")), video,
                         f"{shape_where}.points[{p}]")
                continue
            _add(by_key, f"{label} {track.get('id')}", label, shape, shape.get("frame"), video, shape_where)
        tracks.extend(by_key.values())
    return tracks


def _add(by_key: dict, name: str, label: str, shape: ET.Element, frame_text: str | None, video: VideoInfo,
         where: str) -> None:
    kind = {"box": "box", "polygon": "mask", "mask": "mask", "points": "point"}.get(shape.tag)
    if kind is None:
        raise FormatError(f"<{shape.tag}> shapes are not supported (boxes, polygons, masks and points are)", where)
    frame_idx = check_frame(parse_int(frame_text, f"{where}.frame", minimum=0), video, f"{where}.frame")
    flags = {}
    for flag in ("outside", "occluded", "keyframe"):
        value = shape.get(flag, "0")
        if value not in ("0", "1"):
            raise FormatError(f"expected 0 or 1, got {value!r}", f"{where}.{flag}")
        flags[flag] = value == "1"
    track = by_key.setdefault(name, ImportedTrack(kind, name.strip(), label, prompts=set()))
    if track.kind != kind:
        raise FormatError(f"the track mixes {track.kind} and {kind} shapes", where)
    if flags["outside"]:
        state = FrameState(visible=False)
    elif kind == "box":
        x1, y1, x2, y2 = (parse_float(shape.get(k), f"{where}.{k}") for k in ("xtl", "ytl", "xbr", "ybr"))
        if x2 < x1 or y2 < y1:
            raise FormatError("expected xbr >= xtl and ybr >= ytl", where)
        state = FrameState(box=[x1, y1, x2, y2])
    elif kind == "point":
        points = _points(shape.get("points"), f"{where}.points")
        state = FrameState(point=points[0], visible=not flags["occluded"])
    elif shape.tag == "polygon":
        state = FrameState(mask=polygons_to_mask([_points(shape.get("points"), f"{where}.points")],
                                                 (video.height, video.width)))
    else:
        state = FrameState(mask=_mask(shape, video, where))
    if frame_idx in track.states:
        raise FormatError(f"two shapes on frame {frame_idx}", where)
    track.states[frame_idx] = state
    if flags["keyframe"]:
        track.prompts.add(frame_idx)


def _points(text, where: str) -> np.ndarray:
    if not text:
        raise FormatError("expected x,y;x,y;... (the attribute is missing)", where)
    try:
        values = [[float(v) for v in pair.split(",")] for pair in text.split(";")]
        points = np.array(values, np.float64)
    except ValueError:
        raise FormatError(f"expected x,y;x,y;..., got {text[:40]!r}", where) from None
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise FormatError(f"expected x,y;x,y;..., got {text[:40]!r}", where)
    return points


def _mask(shape: ET.Element, video: VideoInfo, where: str) -> MaskRLE:
    left, top, width, height = (parse_int(shape.get(k), f"{where}.{k}", minimum=0)
                                for k in ("left", "top", "width", "height"))
    if left + width > video.width or top + height > video.height:
        raise FormatError(f"the mask's box {left},{top} {width}x{height} leaves the {video.width}x{video.height} "
                          "frame", where)
    runs = [parse_int(v, f"{where}.rle", minimum=0) for v in (shape.get("rle") or "").split(",") if v.strip()]
    if sum(runs) != width * height:
        raise FormatError(f"the runs cover {sum(runs)} pixels, the mask's box has {width * height}", f"{where}.rle")
    values = np.repeat(np.arange(len(runs)) % 2 == 1, runs)  # background first
    mask = np.zeros((video.height, video.width), bool)
    mask[top:top + height, left:left + width] = values.reshape(height, width)
    return MaskRLE.encode(mask)
