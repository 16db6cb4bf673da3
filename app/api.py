"""The Python API (`import trackstudio as ts`): track, load and export without the window.

    result = ts.track("clip.mp4", "prompts.json", box_tracker="csrt", device="cpu")
    result.store          # the AnnotationStore: objects and per-frame states
    ts.export(result, "clip.npz")

`trackstudio track` and `trackstudio batch` are built on these functions.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from trackstudio.app.model import KINDS, AnnotationStore, FormatError, Project
from trackstudio.app.model.export import export_annotations
from trackstudio.app.model.formats import load_json
from trackstudio.app.model.project import PROJECT_SUFFIX
from trackstudio.app.model.schema import objects_to_json, store_from_json
from trackstudio.app.video import WALK_CACHE_BYTES, VideoError, VideoInfo, VideoSource, open_video

class Cancelled(Exception):
    """`should_stop()` said to stop: tracking ended between two frames."""


@dataclass
class Annotations:
    """What `track` returns and `load` reads: the annotation store and the video it belongs to."""

    store: AnnotationStore
    video: VideoInfo

    def save(self, path: str | os.PathLike, format: str | None = None) -> Path:  # noqa: A002 (the user's word)
        return export(self, path, format)


def load(path: str | os.PathLike, video: int | str | None = None) -> Annotations:
    """Annotations from a TrackStudio JSON file or a project (`video`: index or file name of one
    of its videos; default the project's current one)."""
    path = Path(path)
    if path.suffix.lower() != PROJECT_SUFFIX:
        store, info = load_json(path)
        return Annotations(store, info)
    project = Project.load(path)
    if video is None:
        entry = project.entry
    elif isinstance(video, int):
        entry = project.videos[video]
    else:
        matches = [e for e in project.videos if e.name == video or e.video.path == video]
        if not matches:
            raise ValueError(f"{path}: no video {video!r}; it has {', '.join(e.name for e in project.videos)}")
        entry = matches[0]
    return Annotations(entry.store, entry.video)


def export(annotations: Annotations, path: str | os.PathLike, format: str | None = None) -> Path:  # noqa: A002
    """Write annotations as `format` ("json", "npz", "png"; default: from the path's suffix)."""
    return export_annotations(annotations.store, annotations.video, path, format)


@dataclass
class TrackerPool:
    """Trackers built once and reused across videos (`set_video` makes a built tracker start afresh).

    Keyed by everything that changes a built model: name, device, checkpoint and config overrides.
    """

    _built: dict[tuple, Any] = field(default_factory=dict)

    def get(self, name: str, device: str = "auto", checkpoint: str | None = None, config: dict | None = None):
        from trackstudio.trackers import registry

        key = (name, device, checkpoint, repr(sorted((config or {}).items())))
        if key not in self._built:
            self._built[key] = registry.build(name, config=config, device=device, checkpoint=checkpoint)
        return self._built[key]


def tracker_names(kinds: Iterable[str], box_tracker: str | None = None, mask_tracker: str | None = None,
                  point_tracker: str | None = None) -> dict[str, str]:
    """kind -> tracker name for each kind: the chosen one (checked to be of that kind) or the default."""
    from trackstudio.trackers import registry

    chosen = {"box": box_tracker, "mask": mask_tracker, "point": point_tracker}
    names = {}
    for kind in kinds:
        name = chosen[kind] or registry.default_name(kind)
        try:
            spec = registry.spec(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        if spec.kind != kind:
            raise ValueError(f"{name!r} is a {spec.kind} tracker, not a {kind} tracker")
        names[kind] = name
    return names


def track(video: str | os.PathLike | VideoSource, prompts, *, box_tracker: str | None = None,
          mask_tracker: str | None = None, point_tracker: str | None = None, device: str = "auto",
          checkpoints: dict[str, str] | None = None, configs: dict[str, dict] | None = None,
          progress: bool = False, trackers: TrackerPool | None = None, desc: str = "tracking",
          position: int | None = None, should_stop: Callable[[], bool] | None = None) -> Annotations:
    """Track every prompted object through the whole video and return the annotations.

    `video`: a video file, a folder of frames, or an open VideoSource. `prompts`: a TrackStudio
    JSON file or project, `Annotations`, an `AnnotationStore`, or a list of objects as in the JSON
    format (`[{"id": 1, "kind": "box", "frames": {"0": {"box": [x1, y1, x2, y2], "keyframe": true}}}]`).
    Keyframes are the prompts and stay as given (a mask keyframe given as clicks or a box alone gains the mask
    the tracker makes from them); the input is never modified. Trackers default to
    the best built-in of each kind; `checkpoints` and `configs` map a tracker name to a local
    weights file and to option overrides. `trackers` reuses models across calls; `should_stop` is
    asked between frames (True raises Cancelled). ValueError (and its FormatError) or VideoError
    say what is wrong with the input; a VideoError raised midway (a truncated video) has the frames
    tracked before it as `.partial` (Annotations).
    """
    with contextlib.ExitStack() as stack:
        if not isinstance(video, VideoSource):
            video = stack.enter_context(open_video(video, cache_bytes=WALK_CACHE_BYTES))  # one pass
        info = video.info
        store = _prompt_store(prompts, info)
        kinds = [kind for kind in KINDS
                 if any(obj.kind == kind and store.keyframes(obj.obj_id) for obj in store.objects)]
        names = tracker_names(kinds, box_tracker, mask_tracker, point_tracker)
        pool = trackers if trackers is not None else TrackerPool()
        checkpoints, configs = checkpoints or {}, configs or {}
        built = {}
        for kind, name in names.items():
            try:
                built[kind] = pool.get(name, device, checkpoints.get(name), configs.get(name))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"cannot build tracker {name!r}: {exc}") from None
        result = Annotations(store, VideoInfo(info.path, info.num_frames, info.width, info.height, info.fps))
        try:
            track_store(store, video, built, progress, desc, position, should_stop)
        except VideoError as exc:  # a frame that cannot be read: the error carries what was tracked before it
            exc.partial = result
            raise
        return result


def track_store(store: AnnotationStore, video, trackers: dict, progress: bool = True, desc: str = "tracking",
                position: int | None = None, should_stop: Callable[[], bool] | None = None) -> None:
    """Track every object of `store` through `video` in place (keyframes stay as given, clicked or boxed mask
    keyframes gain their masks; one undo step)."""
    from tqdm import tqdm

    from .propagation import apply_update, plan_whole_video, run_passes

    passes = plan_whole_video(store, len(video))
    total = sum(p.num_frames for p in passes)
    with (tqdm(total=total, unit="frame", desc=desc, disable=not progress, leave=False, position=position) as bar,
          store.macro("Track whole video")):
        for update in run_passes(passes, trackers, video):
            if should_stop is not None and should_stop():
                raise Cancelled(f"tracking {video.info.path} was cancelled")
            apply_update(store, update)
            bar.update(1)


def _prompt_store(prompts, info: VideoInfo) -> AnnotationStore:
    """A fresh store holding the prompts, checked against the video (size and length)."""
    if isinstance(prompts, (str, os.PathLike)):
        loaded = load(prompts)
        ref = loaded.video
        if ref.width and ref.height and (ref.width, ref.height) != (info.width, info.height):
            raise ValueError(f"{prompts} is for a {ref.width}x{ref.height} video but {info.path} is "
                             f"{info.width}x{info.height}")
        objects, source = objects_to_json(loaded.store), str(prompts)
    elif isinstance(prompts, Annotations):
        objects, source = objects_to_json(prompts.store), "the prompts"
    elif isinstance(prompts, AnnotationStore):
        objects, source = objects_to_json(prompts), "the prompts"
    elif isinstance(prompts, list):
        objects, source = prompts, "the prompts"
    else:
        raise TypeError(f"prompts must be a file path, Annotations, an AnnotationStore or a list of objects, "
                        f"not {type(prompts).__name__}")
    try:
        return store_from_json(objects, info)
    except FormatError as exc:
        raise exc.in_file(source) from None
