"""JSON documents <-> model objects, validating every field (the layout is in docs/formats.md).

Shared by the JSON annotation format and project files. Every problem raises `FormatError` with
the path of the bad field, e.g. `objects[1].frames["12"].box: expected 4 numbers, got 3`.
"""
from __future__ import annotations

import json

import numpy as np

from trackstudio.app.video import VideoInfo
from trackstudio.app.video.source import DEFAULT_FPS

from .colors import is_hex_color
from .errors import FormatError
from .objects import KINDS, FrameState, state_problem
from .rle import MaskRLE
from .store import AnnotationStore

_OBJECT_KEYS = ("id", "name", "kind", "color", "label", "hidden", "frames")
_ENTRY_KEYS = ("box", "mask", "point", "visible", "keyframe", "score", "clicks")
_VIDEO_KEYS = ("path", "num_frames", "width", "height", "fps")
_MISSING = object()
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---- writing ---------------------------------------------------------------------------------
def video_to_json(video: VideoInfo, path: str | None = None) -> dict:
    return {"path": video.path if path is None else path, "num_frames": int(video.num_frames),
            "width": int(video.width), "height": int(video.height), "fps": float(video.fps)}


def objects_to_json(store: AnnotationStore) -> list[dict]:
    out = []
    for obj in store.objects:
        entry = {"id": obj.obj_id, "name": obj.name, "kind": obj.kind, "color": obj.color, "label": obj.label}
        if obj.hidden:
            entry["hidden"] = True
        entry["frames"] = {str(f): state_to_json(state) for f, state in store.states(obj.obj_id).items()}
        out.append(entry)
    return out


def check_fits_video(store: AnnotationStore, video: VideoInfo) -> None:
    """Refuse to write what could not be read back: states beyond the video, masks of another size."""
    for obj in store.objects:
        for frame_idx, state in store.states(obj.obj_id).items():
            if frame_idx >= video.num_frames:
                raise FormatError(f"{obj.name!r} has a state on frame {frame_idx}, beyond the video's "
                                  f"{video.num_frames} frames")
            if state.mask is not None and state.mask.size != (video.height, video.width):
                raise FormatError(f"{obj.name!r} on frame {frame_idx} has a {state.mask.size[0]}x"
                                  f"{state.mask.size[1]} mask, but the video is {video.height}x{video.width}")


def state_to_json(state: FrameState) -> dict:
    """Only what differs from the defaults (visible true, keyframe false, no score, no clicks)."""
    entry = {}
    if state.box is not None:
        entry["box"] = _float_list(state.box)
    if state.mask is not None:
        entry["mask"] = {"size": list(state.mask.size), "counts": state.mask.counts}
    if state.point is not None:
        entry["point"] = _float_list(state.point)
    if not state.visible:
        entry["visible"] = False
    if state.keyframe:
        entry["keyframe"] = True
    if state.score is not None:
        entry["score"] = state.score
    if state.clicks is not None:
        entry["clicks"] = [[*_float_list(click[:2]), int(click[2])] for click in state.clicks]
    return entry


def _float_list(values: np.ndarray) -> list[float]:
    # str() of a float32 is its shortest round-tripping decimal: 12.3, not 12.300000190734863.
    return [float(str(v)) for v in values]


def dump_document(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


# ---- reading ---------------------------------------------------------------------------------
def parse_document(data: bytes) -> dict:
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise FormatError(f"expected a JSON object at the top level, got {_type_name(doc)}")
    return doc


def check_header(doc: dict, format_name: str, version: int) -> None:
    if doc.get("format", _MISSING) != format_name:
        raise FormatError(f"expected {json.dumps(format_name)}, got {_show(doc.get('format', _MISSING))}", "format")
    if doc.get("version") != version or isinstance(doc.get("version"), bool):
        raise FormatError(f"unsupported version {_show(doc.get('version', _MISSING))} (this TrackStudio reads version "
                          f"{version}; a newer TrackStudio may read it)", "version")


def video_from_json(value, field: str = "video", extra_keys: tuple[str, ...] = ()) -> VideoInfo:
    _check_keys(_as_dict(value, field), _VIDEO_KEYS + extra_keys, field)
    path = value.get("path", "")
    if not isinstance(path, str):
        raise FormatError(f"expected a string, got {_show(path)}", f"{field}.path")
    fps = value.get("fps", DEFAULT_FPS)
    if not _is_number(fps) or fps <= 0:
        raise FormatError(f"expected a number > 0, got {_show(fps)}", f"{field}.fps")
    return VideoInfo(path, _positive_int(value, "num_frames", field), _positive_int(value, "width", field),
                     _positive_int(value, "height", field), float(fps))


def store_from_json(objects, video: VideoInfo, field: str = "objects") -> AnnotationStore:
    """A new store holding the objects; its undo history starts empty."""
    if not isinstance(objects, list):
        raise FormatError(f"expected a list, got {_type_name(objects)}", field)
    store = AnnotationStore()
    where_id: dict[int, str] = {}
    with store.macro("Load"):
        for index, value in enumerate(objects):
            where = f"{field}[{index}]"
            _check_keys(_as_dict(value, where), _OBJECT_KEYS, where)
            obj_id = value.get("id", _MISSING)
            if isinstance(obj_id, bool) or not isinstance(obj_id, int) or obj_id < 1:
                raise FormatError(f"expected an integer >= 1, got {_show(obj_id)}", f"{where}.id")
            if obj_id in where_id:
                raise FormatError(f"duplicate id {obj_id} (also {where_id[obj_id]})", f"{where}.id")
            where_id[obj_id] = where
            kind = value.get("kind", _MISSING)
            if kind not in KINDS:
                raise FormatError(f"expected one of {', '.join(map(json.dumps, KINDS))}, got {_show(kind)}",
                                  f"{where}.kind")
            color = value.get("color")
            if color is not None and not is_hex_color(color):
                raise FormatError(f'expected a colour "#rrggbb", got {_show(color)}', f"{where}.color")
            for key in ("name", "label"):
                if key in value and not isinstance(value[key], str):
                    raise FormatError(f"expected a string, got {_show(value[key])}", f"{where}.{key}")
            hidden = value.get("hidden", False)
            if not isinstance(hidden, bool):
                raise FormatError(f"expected true or false, got {_show(hidden)}", f"{where}.hidden")
            store.add_object(kind, value.get("name"), color, value.get("label", ""), obj_id=obj_id, hidden=hidden)
            frames = value.get("frames", {})
            _as_dict(frames, f"{where}.frames")
            for key, entry in frames.items():
                frame_where = f"{where}.frames[{json.dumps(key)}]"
                frame_idx = _frame_index(key, video.num_frames, frame_where)
                store.set_state(obj_id, frame_idx, state_from_json(entry, kind, video, frame_where))
    store.undo_stack.clear()
    return store


def state_from_json(entry, kind: str, video: VideoInfo, where: str) -> FrameState:
    _check_keys(_as_dict(entry, where), _ENTRY_KEYS, where)
    flags = {}
    for key, default in (("visible", True), ("keyframe", False)):
        flags[key] = entry.get(key, default)
        if not isinstance(flags[key], bool):
            raise FormatError(f"expected true or false, got {_show(flags[key])}", f"{where}.{key}")
    score = entry.get("score")
    if score is not None and not _is_coordinate(score):
        raise FormatError(f"expected a number or null, got {_show(score)}", f"{where}.score")
    state = FrameState(
        box=_numbers(entry, "box", 4, where),
        mask=_mask(entry["mask"], video, f"{where}.mask") if entry.get("mask") is not None else None,
        point=_numbers(entry, "point", 2, where),
        clicks=_clicks(entry["clicks"], f"{where}.clicks") if entry.get("clicks") is not None else None,
        score=score, **flags)
    problem = state_problem(kind, state)
    if problem:
        raise FormatError(problem, where)
    return state


def _numbers(entry: dict, key: str, count: int, where: str) -> np.ndarray | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise FormatError(f"expected {count} numbers, got {_show(value)}", f"{where}.{key}")
    if len(value) != count:
        raise FormatError(f"expected {count} numbers, got {len(value)}", f"{where}.{key}")
    for i, v in enumerate(value):
        if not _is_coordinate(v):
            raise FormatError(f"expected a finite number, got {_show(v)}", f"{where}.{key}[{i}]")
    return np.array(value, np.float32)


def _mask(value, video: VideoInfo, where: str) -> MaskRLE:
    _check_keys(_as_dict(value, where), ("size", "counts"), where)
    size = value.get("size", _MISSING)
    if size != [video.height, video.width]:
        raise FormatError(f"expected [H, W] = [{video.height}, {video.width}] (the video's size), "
                          f"got {_show(size)}", f"{where}.size")
    counts = value.get("counts", _MISSING)
    try:
        if isinstance(counts, str):
            return MaskRLE(size, counts)
        if isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
            return MaskRLE.from_runs(size, counts)
    except ValueError as exc:
        raise FormatError(str(exc), f"{where}.counts") from None
    raise FormatError(f"expected a COCO RLE string (or a list of run lengths), got {_show(counts)}",
                      f"{where}.counts")


def _clicks(value, where: str) -> np.ndarray:
    if not isinstance(value, list):
        raise FormatError(f"expected a list of [x, y, label], got {_show(value)}", where)
    for i, click in enumerate(value):
        if (not isinstance(click, list) or len(click) != 3
                or not all(_is_coordinate(v) for v in click) or click[2] not in (0, 1)):
            raise FormatError(f"expected [x, y, label] with label 1 (positive) or 0 (negative), got {_show(click)}",
                              f"{where}[{i}]")
    return np.array(value, np.float32).reshape(-1, 3)


def _frame_index(key: str, num_frames: int, where: str) -> int:
    if not (key.isascii() and key.isdigit() and str(int(key)) == key):
        raise FormatError(f"frame index must be an integer >= 0 written plainly (\"12\"), got {json.dumps(key)}",
                          where)
    frame_idx = int(key)
    if frame_idx >= num_frames:
        raise FormatError(f"frame {frame_idx} is beyond the video's {num_frames} frames (0..{num_frames - 1})", where)
    return frame_idx


def _positive_int(doc: dict, key: str, field: str) -> int:
    value = doc.get(key, _MISSING)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FormatError(f"expected an integer >= 1, got {_show(value)}", f"{field}.{key}")
    return value


def _as_dict(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise FormatError(f"expected an object, got {_type_name(value)}", where)
    return value


def _check_keys(value: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in value:
        if key not in allowed:
            raise FormatError(f"unknown key (expected {', '.join(allowed)})", f"{where}.{key}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_coordinate(value) -> bool:
    """A number that stays finite as float32 (json reads NaN, Infinity and 1e999; arrays are float32)."""
    try:
        return _is_number(value) and abs(float(value)) <= _FLOAT32_MAX
    except OverflowError:  # an integer too large for a float
        return False


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _show(value) -> str:
    """A value as it looks in the file, cut short."""
    if value is _MISSING:
        return "nothing (the key is missing)"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
