"""TAP-Vid point tracks: `.npz` arrays or the benchmark's `.pkl` layout.

npz (pixels):  `tracks` (N, T, 2) float32 x, y; `occluded` (N, T) bool; `query_points` (N, 3)
float32 [t, y, x] in TAP-Vid's order; `point_ids`, `point_names`; `video_size` [H, W];
`timestamps` (T,) seconds. A point's query is its first keyframe, else its first visible frame.

pkl (as tapvid_davis.pkl, without the frames):  {video name: {"points": (N, T, 2) float32 x, y
normalised to 0..1, "occluded": (N, T) bool}}. Pickles are read with an unpickler that admits
numpy arrays and plain containers only, so a file cannot run code.

Where a point has no position (never annotated on a frame) `tracks` holds NaN in the npz, and the
pkl (which has no NaN by convention) holds 0 with occluded true.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..atomic import atomic_open, atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..schema import check_fits_video
from ..store import AnnotationStore
from .common import ImportedTrack


def _arrays(store: AnnotationStore, video: VideoInfo):
    check_fits_video(store, video)
    points = [obj for obj in store.objects if obj.kind == "point"]
    if not points:
        raise FormatError("TAP-Vid holds point tracks; this project has no point objects")
    tracks = np.full((len(points), video.num_frames, 2), np.nan, np.float32)  # (N, T, 2)
    occluded = np.ones((len(points), video.num_frames), bool)  # (N, T)
    queries = np.zeros((len(points), 3), np.float32)  # (N, 3) [t, y, x]
    for n, obj in enumerate(points):
        states = store.states(obj.obj_id)
        for frame_idx, state in states.items():
            if state.point is not None:
                tracks[n, frame_idx] = state.point
                occluded[n, frame_idx] = not state.visible
        query = next((f for f, s in states.items() if s.keyframe and s.point is not None and s.visible),
                     next((f for f, s in states.items() if s.point is not None and s.visible), None))
        if query is not None:
            queries[n] = (query, tracks[n, query, 1], tracks[n, query, 0])
    return points, tracks, occluded, queries


def write_tapvid_npz(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
                     frame_times: np.ndarray | None = None) -> None:
    points, tracks, occluded, queries = _arrays(store, video)
    arrays = {"tracks": tracks, "occluded": occluded, "query_points": queries,
              "point_ids": np.array([o.obj_id for o in points], np.int64),
              "point_names": np.array([o.name for o in points], np.str_),
              "video_size": np.array([video.height, video.width], np.int64)}
    if frame_times is not None:
        arrays["timestamps"] = np.asarray(frame_times, np.float64)
    with atomic_open(path) as f:
        np.savez_compressed(f, **arrays)


def write_tapvid_pkl(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
                     frame_times: np.ndarray | None = None) -> None:
    _, tracks, occluded, _ = _arrays(store, video)
    normalised = tracks / np.array([video.width, video.height], np.float32)
    normalised[np.isnan(normalised)] = 0.0
    doc = {Path(video.path).stem or "video": {"points": normalised.astype(np.float32), "occluded": occluded}}
    atomic_write_bytes(path, pickle.dumps(doc, protocol=4))


class _ArraysOnly(pickle.Unpickler):
    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        return super().find_class(module, name)


def read_tapvid(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    try:
        if path.suffix.lower() == ".pkl":
            tracks, occluded, queries, names = _from_pkl(path, video)
        else:
            tracks, occluded, queries, names = _from_npz(path, video)
    except FormatError as exc:
        raise exc.in_file(path) from None
    if tracks.ndim != 3 or tracks.shape[2] != 2 or occluded.shape != tracks.shape[:2]:
        raise FormatError(f"expected tracks (N, T, 2) and occluded (N, T), got {tracks.shape} and {occluded.shape}",
                          "tracks", path)
    if tracks.shape[1] != video.num_frames:
        raise FormatError(f"the tracks span {tracks.shape[1]} frames but the video has {video.num_frames}",
                          "tracks", path)
    result = []
    for n in range(tracks.shape[0]):
        track = ImportedTrack("point", names[n] if names is not None else None)
        for frame_idx in range(tracks.shape[1]):
            xy = tracks[n, frame_idx]
            if np.isfinite(xy).all():
                track.states[frame_idx] = FrameState(point=xy, visible=not occluded[n, frame_idx])
        if queries is not None:
            track.prompts = {int(round(float(queries[n, 0])))}
        if track.states:
            result.append(track)
    return result


def _from_npz(path: Path, video: VideoInfo):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"not a readable .npz ({exc})") from None
    for key in ("tracks", "occluded"):
        if key not in arrays:
            raise FormatError("the array is missing", key)
    if "video_size" in arrays and list(arrays["video_size"]) != [video.height, video.width]:
        raise FormatError(f"the points are for a {arrays['video_size'].tolist()} (H, W) video but this one is "
                          f"[{video.height}, {video.width}]", "video_size")
    names = [str(n) for n in arrays["point_names"]] if "point_names" in arrays else None
    return arrays["tracks"].astype(np.float64), arrays["occluded"].astype(bool), arrays.get("query_points"), names


def _from_pkl(path: Path, video: VideoInfo):
    try:
        doc = _ArraysOnly(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise FormatError(f"not a TAP-Vid pickle ({exc})") from None
    if not isinstance(doc, dict) or not doc:
        raise FormatError("expected {video name: {'points': ..., 'occluded': ...}}")
    key = Path(video.path).stem if Path(video.path).stem in doc else None
    if key is None:
        if len(doc) > 1:
            raise FormatError(f"holds {len(doc)} videos ({', '.join(map(str, list(doc)[:5]))}...); none is named "
                              f"{Path(video.path).stem!r}")
        key = next(iter(doc))
    entry = doc[key]
    if not isinstance(entry, dict) or "points" not in entry or "occluded" not in entry:
        raise FormatError("expected 'points' and 'occluded' arrays", f"[{key!r}]")
    tracks = np.asarray(entry["points"], np.float64) * np.array([video.width, video.height])
    return tracks, np.asarray(entry["occluded"], bool), None, None
