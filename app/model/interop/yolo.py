"""YOLO (Ultralytics) detection and segmentation labels: one text file per frame plus `data.yaml`.

Layout written:  OUT/data.yaml (class names)  OUT/labels/000012.txt (frame 12), one line per object:
`class cx cy w h` for box objects, `class x1 y1 x2 y2 ...` (the mask's outline) for mask objects,
all normalised to 0..1. Classes are the objects' labels (their kind when unlabelled). Given the
video, `write_yolo_images` adds OUT/images/000012.jpg, decoded frame-exactly, so a dataset trains as
it is.

YOLO has no track ids: on import, a line joins the object of its class on the previous labelled
frame that it overlaps most (IoU >= 0.3), else it starts a new object.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import yaml

from trackstudio.app.video import VideoInfo, VideoSource

from ..atomic import atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..schema import check_fits_video
from ..store import AnnotationStore
from .common import (ImportedTrack, category_name, check_frame, frame_number_in_name, mask_polygons, parse_float,
                     parse_int, polygons_to_mask, state_box)

LINK_IOU = 0.3


def write_yolo(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
               frame_times: np.ndarray | None = None) -> None:
    check_fits_video(store, video)
    objects = [obj for obj in store.objects if obj.kind in ("box", "mask")]
    if not objects:
        raise FormatError("YOLO holds boxes and masks; this project has none (points: use COCO, DLC or SLEAP)")
    names = list(dict.fromkeys(category_name(obj) for obj in objects))
    out = Path(path)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    lines: dict[int, list[str]] = {frame_idx: [] for frame_idx in range(video.num_frames)}
    size = np.array([video.width, video.height], np.float64)
    for obj in objects:
        class_idx = names.index(category_name(obj))
        for frame_idx, state in store.states(obj.obj_id).items():
            line = _line(obj.kind, state, size)
            if line:
                lines[frame_idx].append(f"{class_idx} {line}")
    for frame_idx, frame_lines in lines.items():
        atomic_write_bytes(out / "labels" / f"{frame_idx:06d}.txt", "".join(f"{x}\n" for x in frame_lines).encode())
    data = {"path": str(out.resolve()), "train": "images", "val": "images", "nc": len(names),
            "names": dict(enumerate(names))}
    atomic_write_bytes(out / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode())


def write_yolo_images(video: VideoSource, path: str | os.PathLike) -> None:
    """The frames beside the labels (OUT/images/000012.jpg), as Ultralytics pairs them."""
    images = Path(path) / "images"
    images.mkdir(parents=True, exist_ok=True)
    for frame_idx in range(len(video)):
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(video[frame_idx], cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise FormatError(f"frame {frame_idx} could not be encoded as JPEG", file=images)
        atomic_write_bytes(images / f"{frame_idx:06d}.jpg", jpeg.tobytes())


def _line(kind: str, state: FrameState, size: np.ndarray) -> str | None:
    if kind == "mask" and state.visible and state.mask is not None:
        polygons = mask_polygons(state.mask.decode())
        if polygons:
            return " ".join(f"{v:.6f}" for v in np.clip(polygons[0] / size, 0, 1).ravel())
    box = state_box(state)
    if box is None:
        return None
    x1, y1, x2, y2 = np.clip(np.asarray(box, np.float64).reshape(2, 2) / size, 0, 1).ravel()
    return f"{(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} {x2 - x1:.6f} {y2 - y1:.6f}"


def read_yolo(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    label_files, names = _find_files(path)
    rows_by_frame: dict[int, list[tuple[int, str, np.ndarray, object]]] = {}
    seen: dict[int, Path] = {}
    size = np.array([video.width, video.height], np.float64)
    for file in label_files:
        frame_idx = frame_number_in_name(file.name)
        if frame_idx is None:
            raise FormatError("the file name holds no frame number (like 000012.txt)", file=file)
        try:
            check_frame(frame_idx, video, "")
        except FormatError as exc:
            raise FormatError(exc.message, file=file) from None
        if frame_idx in seen:
            raise FormatError(f"frame {frame_idx} also comes from {seen[frame_idx].name}", file=file)
        seen[frame_idx] = file
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            raise FormatError("not a text file", file=file) from None
        rows = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(_parse_line(line, f"line {line_no}", names, size, video))
                except FormatError as exc:
                    raise exc.in_file(file) from None
        rows_by_frame[frame_idx] = rows
    return _link(rows_by_frame, names)


def _find_files(path: Path) -> tuple[list[Path], list[str] | None]:
    """The label files and class names of a dataset folder, a labels folder, data.yaml or one .txt."""
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return _find_files(path.parent)[0], _names(path)
    if path.is_file():
        return [path], _names_near(path.parent)
    if not path.is_dir():
        raise FormatError("no such file or folder", file=path)
    folder = path / "labels" if (path / "labels").is_dir() else path
    files = sorted(p for p in folder.rglob("*.txt") if p.name != "classes.txt")
    if not files:
        raise FormatError("no YOLO label files (*.txt) found", file=path)
    return files, _names_near(path)


def _names_near(folder: Path) -> list[str] | None:
    for candidate in (folder, folder.parent):
        for name in ("data.yaml", "dataset.yaml", "data.yml"):
            if (candidate / name).is_file():
                return _names(candidate / name)
        if (candidate / "classes.txt").is_file():  # the older darknet / labelImg layout
            return [line.strip() for line in (candidate / "classes.txt").read_text().splitlines() if line.strip()]
    return None


def _names(yaml_path: Path) -> list[str]:
    try:
        data = yaml.safe_load(yaml_path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise FormatError(f"not valid YAML ({exc})", file=yaml_path) from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        return [str(names.get(i, f"class {i}")) for i in range(max(names) + 1)] if names else []
    if isinstance(names, list):
        return [str(n) for n in names]
    raise FormatError("expected a list or {index: name} mapping of class names", "names", yaml_path)


def _parse_line(line: str, where: str, names: list[str] | None, size: np.ndarray, video: VideoInfo):
    values = line.split()
    class_idx = parse_int(values[0], f"{where}: class", minimum=0)
    if names is not None and class_idx >= len(names):
        raise FormatError(f"class {class_idx} is not in data.yaml's {len(names)} names", f"{where}: class")
    coords = np.array([parse_float(v, f"{where}: value {i + 2}") for i, v in enumerate(values[1:])])
    if len(coords) == 4:
        cx, cy, w, h = coords
        box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * np.tile(size, 2)
        geometry, kind = box, "box"
    elif len(coords) >= 6 and len(coords) % 2 == 0:
        polygon = coords.reshape(-1, 2) * size
        geometry, kind = polygons_to_mask([polygon], (video.height, video.width)), "mask"
    else:
        raise FormatError(f"expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got {len(values)} values",
                          where)
    if coords.min() < -0.01 or coords.max() > 1.01:
        raise FormatError("coordinates must be normalised to 0..1 (divide pixels by the image size)", where)
    return class_idx, kind, geometry


def _link(rows_by_frame: dict, names: list[str] | None) -> list[ImportedTrack]:
    tracks: list[tuple[ImportedTrack, int]] = []  # (track, class_idx)
    previous: list[tuple[int, np.ndarray]] = []  # (track index, box) on the previous labelled frame
    for frame_idx in sorted(rows_by_frame):
        current = []
        free = list(previous)
        for class_idx, kind, geometry in rows_by_frame[frame_idx]:
            box = geometry if kind == "box" else geometry.bbox()
            best, best_iou = None, LINK_IOU
            for candidate in free:
                track, track_class = tracks[candidate[0]]
                if track_class == class_idx and track.kind == kind and box is not None:
                    iou = _iou(box, candidate[1])
                    if iou >= best_iou:
                        best, best_iou = candidate, iou
            if best is None:
                label = names[class_idx] if names else f"class {class_idx}"
                tracks.append((ImportedTrack(kind, label=label), class_idx))
                index = len(tracks) - 1
            else:
                free.remove(best)
                index = best[0]
            track = tracks[index][0]
            track.states[frame_idx] = FrameState(box=geometry) if kind == "box" else FrameState(mask=geometry)
            if box is not None:
                current.append((index, box))
        previous = current
    return [track for track, _ in tracks]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
