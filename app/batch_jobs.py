"""What `trackstudio batch` runs: one `VideoJob` per video, read from a project, a folder of videos
or a manifest (CSV or JSONL with columns video, prompts and optional per-video settings).

Manifest columns: `video` and `prompts` (paths, relative to the manifest's folder; in JSONL,
`prompts` may also be the list of objects of the JSON format), `name` (the result's name;
default: the video's), `box_tracker`, `mask_tracker`, `point_tracker`, `device`, and `config`
(a JSON object: tracker name -> option overrides). Problems with the input itself (an unknown
column, duplicate result names) are a ValueError naming the line; a video that is missing or
corrupt is not: it fails when its turn comes, and the rest go on.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from trackstudio.app.model import Project
from trackstudio.app.model.schema import objects_to_json
from trackstudio.app.video import VIDEO_EXTENSIONS
from trackstudio.app.video.folders import holds_images

MANIFEST_COLUMNS = ("video", "prompts", "name", "box_tracker", "mask_tracker", "point_tracker", "device", "config")
PROMPT_SUFFIXES = (".json", ".tsproj")


@dataclass(frozen=True)
class VideoJob:
    """One video to track; plain data, so it travels to worker processes and Ray tasks."""

    name: str  # the result is named after it: <name>.json, <name>.npz, <name>/ (PNG)
    video: str  # video file or folder of frames
    prompts: str | list  # TrackStudio JSON or project file, or the objects list of the JSON format
    trackers: dict[str, str] = field(default_factory=dict)  # kind -> tracker name (overrides the batch's)
    configs: dict[str, dict] = field(default_factory=dict)  # tracker name -> option overrides
    device: str | None = None  # overrides the batch's --device


def read_jobs(source: str | Path) -> list[VideoJob]:
    """The jobs a project, a folder of videos or a manifest (.csv / .jsonl) describes; their paths are
    absolute, so worker processes and Ray tasks find the files whatever their working folder."""
    source = Path(source).expanduser().absolute()
    if source.is_dir():
        jobs = _folder_jobs(source)
    elif not source.exists():
        raise FileNotFoundError(2, "No such file or directory", str(source))
    elif source.suffix.lower() == ".tsproj":
        jobs = _project_jobs(source)
    elif source.suffix.lower() == ".csv":
        with open(source, newline="", encoding="utf-8-sig") as f:
            jobs = [_manifest_job(row, source, line) for line, row in enumerate(csv.DictReader(f), start=2)]
    elif source.suffix.lower() in (".jsonl", ".ndjson"):
        jobs = []
        for line, text in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            if text.strip():
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{source}, line {line}: not valid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{source}, line {line}: expected a JSON object per line")
                jobs.append(_manifest_job(row, source, line))
    else:
        raise ValueError(f"{source}: expected a project (.tsproj), a folder of videos or a manifest (.csv, .jsonl)")
    if not jobs:
        raise ValueError(f"{source}: no videos to track")
    _check_unique_names(jobs, source)
    return jobs


def _manifest_job(row: dict, manifest: Path, line: int) -> VideoJob:
    where = f"{manifest}, line {line}"
    unknown = [key for key in row if key not in MANIFEST_COLUMNS]
    if unknown:
        raise ValueError(f"{where}: unknown column(s) {', '.join(map(repr, unknown))}; "
                         f"expected {', '.join(MANIFEST_COLUMNS)}")
    values = {key: value for key, value in row.items() if value not in (None, "")}
    for key in ("video", "prompts"):
        if key not in values:
            raise ValueError(f"{where}: the {key!r} column is empty")
    video = _resolve(manifest.parent, values["video"], where, "video")
    prompts = values["prompts"]
    if not isinstance(prompts, list):
        prompts = _resolve(manifest.parent, prompts, where, "prompts")
    config = values.get("config", {})
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: config is not valid JSON ({exc.msg})") from None
    if not isinstance(config, dict) or not all(isinstance(v, dict) for v in config.values()):
        raise ValueError(f"{where}: config must be a JSON object {{tracker name: {{option: value}}}}")
    for key in ("name", "box_tracker", "mask_tracker", "point_tracker", "device"):
        if key in values and not isinstance(values[key], str):
            raise ValueError(f"{where}: {key} must be a string")
    trackers = {key.split("_")[0]: values[key] for key in ("box_tracker", "mask_tracker", "point_tracker")
                if key in values}
    return VideoJob(values.get("name") or _stem(video), video, prompts, trackers, config, values.get("device"))


def _resolve(folder: Path, value, where: str, column: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {column} must be a path")
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _folder_jobs(folder: Path) -> list[VideoJob]:
    """Every video file (and folder of frames) in `folder`, each prompted by `<name>.json` beside it."""
    jobs = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        is_video = path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS
        if is_video or (path.is_dir() and holds_images(path)):
            name = _stem(str(path))
            prompts = next((folder / f"{name}{s}" for s in PROMPT_SUFFIXES if (folder / f"{name}{s}").exists()),
                           folder / f"{name}.json")  # missing: that video fails with "no such file"
            jobs.append(VideoJob(name, str(path), str(prompts)))
    return jobs


def _project_jobs(path: Path) -> list[VideoJob]:
    """The project's prompted videos, with its tracker choices (videos without keyframes are left out)."""
    project = Project.load(path)
    trackers = {kind: name for kind, name in (project.settings.get("tracker", {}).get("trackers") or {}).items()
                if isinstance(name, str)}
    jobs = []
    for entry in project.videos:
        if any(entry.store.keyframes(obj.obj_id) for obj in entry.store.objects):
            jobs.append(VideoJob(_stem(entry.video.path), entry.video.path, objects_to_json(entry.store),
                                 dict(trackers)))
    return jobs


def _stem(video: str) -> str:
    path = Path(video)
    return path.name if path.is_dir() or not path.suffix else path.stem


def _check_unique_names(jobs: list[VideoJob], source: Path) -> None:
    seen: dict[str, str] = {}
    for job in jobs:
        if job.name in seen:
            raise ValueError(f"{source}: {seen[job.name]} and {job.video} would both write a result named "
                             f"{job.name!r}; give one a different 'name' (a manifest column)")
        seen[job.name] = job.video
