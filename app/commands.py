"""What each `trackstudio` sub-command does (argument parsing lives in cli.py)."""
from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from pathlib import Path


class CliError(Exception):
    """A user-facing failure: printed as one line by cli.main, exit code 2."""


def _user_errors(fn):
    """Turn the errors bad input causes into one-line CliErrors (worded by cli_errors.describe)."""

    @functools.wraps(fn)
    def wrapper(args):
        from .cli_errors import describe

        try:
            return fn(args)
        except CliError:
            raise
        except Exception as exc:
            message = describe(exc)
            if message is None:
                raise  # a bug: cli.main logs its traceback
            raise CliError(message) from None

    return wrapper


def _open_video(path: str):
    """A video for a command: each walks it once, so its frame cache stays small (WALK_CACHE_BYTES)."""
    from .video import WALK_CACHE_BYTES, open_video

    return open_video(path, cache_bytes=WALK_CACHE_BYTES)


def _tracker_names(args, kinds) -> dict[str, str]:
    from .api import tracker_names

    try:
        return tracker_names(kinds, args.box_tracker, args.mask_tracker, args.point_tracker)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _checkpoint_paths(args, names: dict[str, str] | None = None) -> dict[str, str]:
    """--checkpoint TRACKER=PATH options, each naming a tracker that loads weights (one of this run's,
    when `names` is given) and an existing file."""
    checkpoints = {}
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise CliError(f"--checkpoint expects TRACKER=PATH, got {item!r}")
        if names is not None and name not in names.values():
            used = ", ".join(f"{kind}: {n}" for kind, n in names.items()) or "none"
            raise CliError(f"--checkpoint {item}: {name!r} is not a tracker of this run (trackers: {used})")
        try:
            loads_weights = _loads_weights(name)
        except KeyError as exc:
            raise CliError(f"--checkpoint {item}: {exc.args[0]}") from None
        if not loads_weights:
            raise CliError(f"--checkpoint {item}: {name} loads no weights file")
        if not Path(path).expanduser().is_file():
            raise CliError(f"--checkpoint {item}: {path}: no such file")
        checkpoints[name] = path
    return checkpoints


def _tracker_options(args, names: dict[str, str] | None = None) -> dict[str, dict]:
    """--set TRACKER.OPTION=VALUE options -> {tracker: {option: value}}, each naming a tracker (one of this run's,
    when `names` is given) and an option of its config, checked as the tracker checks them (registry.checked_options);
    VALUE is read as JSON (640, 0.5, true, "fast"), else taken as a string."""
    from trackstudio.trackers import registry

    options: dict[str, dict] = {}
    for item in args.options:
        target, sep, text = item.partition("=")
        name, dot, option = target.rpartition(".")
        if not sep or not dot or not name or not option:
            raise CliError(f"--set expects TRACKER.OPTION=VALUE, got {item!r}")
        if names is not None and name not in names.values():
            used = ", ".join(f"{kind}: {n}" for kind, n in names.items()) or "none"
            raise CliError(f"--set {item}: {name!r} is not a tracker of this run (trackers: {used})")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        options.setdefault(name, {})[option] = value
    try:
        return {name: registry.checked_options(name, overrides) for name, overrides in options.items()}
    except KeyError as exc:
        raise CliError(f"--set: {exc.args[0]}") from None
    except ValueError as exc:
        raise CliError(f"--set: {exc}") from None


def _loads_weights(name: str) -> bool:
    from trackstudio.trackers import registry

    from .models_cli import SHIPPED_BY_TRACKER

    spec = registry.spec(name)
    return bool(spec.weights) or name in SHIPPED_BY_TRACKER or spec.plugin is not None  # plugins may


def _check_device(device: str) -> None:
    from trackstudio.trackers.device import resolve_device

    try:
        resolve_device(device)
    except (RuntimeError, ValueError) as exc:
        raise CliError(f"--device {device}: {exc}") from None


def _check_writable(out: Path, option: str = "--out") -> None:
    """Before any work: `out` can be written (its folder exists and takes new files)."""
    folder = out.parent
    if out.is_dir():
        raise CliError(f"{option} {out}: is a folder; give a file name")
    if not folder.is_dir():
        problem = "is not a folder" if folder.exists() else "does not exist"
        raise CliError(f"{option} {out}: {folder} {problem}")
    try:
        with tempfile.TemporaryFile(dir=folder):  # an unnamed file on Linux: nothing to clean up
            pass
    except OSError as exc:
        from .cli_errors import os_reason

        raise CliError(f"{option} {out}: cannot write in {folder}: {os_reason(exc)}") from None


def _check_tracker_options(args, kinds) -> tuple[dict[str, str], dict[str, str], dict[str, dict]]:
    """Tracker names, --checkpoint files, --set options and --device, checked before any work: (names, checkpoints,
    options)."""
    names = _tracker_names(args, kinds)
    checkpoints = _checkpoint_paths(args, names)
    options = _tracker_options(args, names)
    _check_device(args.device)
    return names, checkpoints, options



def _save(store, info, out: Path) -> None:
    from .model import Project
    from .model.formats import export_npz, export_png_masks, save_json

    suffix = out.suffix.lower()
    if suffix == ".json":
        save_json(store, info, out)
    elif suffix == ".npz":
        export_npz(store, info, out)
    elif suffix == ".tsproj":
        Project(video=info, store=store).save(out)
    elif suffix == "":
        export_png_masks(store, info, out)
    else:
        raise CliError(f"--out {out}: unknown output type {out.suffix!r}: use .json, .npz, .tsproj or a folder for "
                       "PNG masks, or give --format")


def _load_annotations(path: str):
    """(store, VideoInfo) from a TrackStudio JSON file or a project."""
    from .model import Project
    from .model.formats import load_json

    p = Path(path)
    if not p.exists():
        raise CliError(f"no such file: {p}")
    if not p.is_file():  # a folder, or a FIFO that would block the read forever
        raise CliError(f"{p}: not a regular file")
    if p.suffix.lower() == ".tsproj":
        project = Project.load(p)
        return project.store, project.video
    return load_json(p)


def partial_path(out: Path) -> Path:
    """Where a run that failed midway leaves what it tracked: `r.json` -> `r.partial.json`."""
    return out.with_name(f"{out.stem}.partial{out.suffix}")


@_user_errors
def cmd_track(args) -> int:
    from .api import export, track
    from .model import FormatError
    from .model.prompts import check_prompts
    from .video import VideoError

    out = Path(args.out)
    if out.suffix.lower() not in (".json", ".npz"):
        raise CliError(f"--out must end in .json or .npz, got {out.name!r}")
    store, ref = _load_annotations(args.prompts)
    _check_writable(out)
    _check_something_to_track(store, args.prompts, args.allow_empty, out)
    with _open_video(args.video) as video:
        info = video.info
        if ref is not None and ref.width and ref.height and (ref.width, ref.height) != (info.width, info.height):
            raise CliError(f"{args.prompts} is for a {ref.width}x{ref.height} video but {args.video} is "
                           f"{info.width}x{info.height}")
        _check_frames(store, len(video), args.prompts)
        try:
            check_prompts(store, info)
        except FormatError as exc:
            raise exc.in_file(args.prompts) from None
        kinds = sorted({obj.kind for obj in store.objects if store.keyframes(obj.obj_id)})
        _, checkpoints, options = _check_tracker_options(args, kinds)  # all before any work
        try:
            result = track(video, store, box_tracker=args.box_tracker, mask_tracker=args.mask_tracker,
                           point_tracker=args.point_tracker, device=args.device, checkpoints=checkpoints,
                           configs=options, progress=not args.quiet)
        except VideoError as exc:  # e.g. a truncated video: keep what was tracked up to there
            partial = partial_path(out)
            export(exc.partial, partial)
            raise CliError(f"{exc}; what was tracked before it is saved in {partial} ({out} is unchanged)") from None
        except ValueError as exc:  # FormatError included: it names the file and field
            raise CliError(str(exc)) from None
    export(result, out)
    return 0


@_user_errors
def cmd_batch(args) -> int:
    from .batch_cli import run

    try:
        return run(args, _checkpoint_paths(args), _tracker_options(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _check_something_to_track(store, source: str, allow_empty: bool, out: Path) -> None:
    """Prompts that would track nothing are refused where the run would overwrite `out` with nothing new. A file
    with no objects at all is a video with nothing to label, which a scripted run over a data set meets: its empty
    result is written where no file is there yet. Objects without a keyframe are a mistake (entries not marked
    "keyframe": true) and refused either way."""
    if allow_empty:
        return
    if not store.objects:
        if not out.exists():
            return
        raise CliError(f"{source}: no objects, so nothing to track, and {out} would be overwritten with an empty "
                       "result (--allow-empty writes it anyway)")
    lacking = [obj for obj in store.objects if not store.keyframes(obj.obj_id)]
    if lacking:
        shown = ", ".join(f"{obj.obj_id} ({obj.name})" for obj in lacking[:3]) + (" ..." if len(lacking) > 3 else "")
        raise CliError(f'{source}: {len(lacking)} object(s) have no keyframe: {shown}; only entries with '
                       f'"keyframe": true prompt the trackers (--allow-empty tracks the rest anyway)')


def _check_frames(store, num_frames: int, source: str) -> None:
    for obj in store.objects:
        frames = store.frames(obj.obj_id)
        if frames and frames[-1] >= num_frames:
            raise CliError(f"{source}: object {obj.obj_id} ({obj.name}) is annotated on frame {frames[-1]} "
                           f"but the video has {num_frames} frames")


@_user_errors
def cmd_export(args) -> int:
    from .interop_cli import export_file

    return export_file(args)


@_user_errors
def cmd_import(args) -> int:
    from .interop_cli import import_into_file

    return import_into_file(args.file, args.format, args.video, Path(args.out), tracked=args.tracked)


@_user_errors
def cmd_render(args) -> int:
    from .interop_cli import render_file

    return render_file(args)


def _video_info_for(video, store, ref, source: str):
    """The VideoInfo of an open --video, once it is checked to fit the annotations of `source`."""
    info = video.info
    if ref is not None:
        _check_same_size(ref, info, source, f"--video {info.path}")
    _check_frames(store, info.num_frames, source)
    return info


def _check_same_size(ref, info, ref_name: str, video_name: str) -> None:
    if (ref.width, ref.height) != (info.width, info.height):
        raise CliError(f"{ref_name} is for a {ref.width}x{ref.height} video but {video_name} is "
                       f"{info.width}x{info.height}")


@_user_errors
def cmd_info(args) -> int:
    path = Path(args.video)
    if path.suffix.lower() in (".tsproj", ".json") and path.is_file():
        print(_describe_annotations(args.video))
        return 0
    with _open_video(args.video) as video:
        i = video.info
        duration = i.num_frames / i.fps if i.fps else float("nan")
        assumed = "  (assumed: an image folder has no frame rate)" if path.is_dir() else ""
        print(f"path:     {i.path}\nframes:   {i.num_frames}\nsize:     {i.width}x{i.height}\n"
              f"fps:      {i.fps:g}{assumed}\nduration: {duration:.2f} s")
    return 0


def _describe_annotations(path: str) -> str:
    store, i = _load_annotations(path)
    kind_counts = Counter(obj.kind for obj in store.objects)
    keyframes = sum(len(store.keyframes(obj.obj_id)) for obj in store.objects)
    states = sum(len(store.frames(obj.obj_id)) for obj in store.objects)
    what = "TrackStudio project" if path.lower().endswith(".tsproj") else "TrackStudio annotations"
    video = i.path or "(none recorded)"
    if i.path and not Path(i.path).exists():
        video += "  (missing: not found on this machine)"
    kinds = ", ".join(f"{n} {kind}" for kind, n in kind_counts.items())
    return (f"path:      {path}  ({what})\nvideo:     {video}\nframes:    {i.num_frames}\n"
            f"size:      {i.width}x{i.height}\nfps:       {i.fps:g}\n"
            f"objects:   {len(store.objects)}" + (f" ({kinds})" if kinds else "") + "\n"
            f"keyframes: {keyframes}\ntracked:   {states - keyframes} states")


def cmd_gui(args) -> int:
    from .ui.main import run_gui

    return run_gui(args.path)


def cmd_demo(args) -> int:
    from .ui.demo import run_demo

    return run_demo(selftest=args.selftest)


@_user_errors
def cmd_models(args) -> int:
    from .models_cli import run_models

    return run_models(args.action, args.name, args.file)


@_user_errors
def cmd_eval(args) -> int:
    from .evaluation import evaluate_trackers, format_table, load_sequence

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = set(kinds) - {"box", "mask", "point"}
    if unknown:
        raise CliError(f"--kinds: unknown kind(s) {sorted(unknown)}; use box, mask, point")
    names = _tracker_names(args, kinds)
    _check_device(args.device)
    rows = []
    for seq_dir in args.seqs:
        seq = load_sequence(seq_dir)
        scores = evaluate_trackers(seq, names.get("box"), names.get("mask"), names.get("point"), args.device)
        rows.append({"name": seq.name, **scores})
        print(f"{seq.name}: " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
    print("trackers: " + ", ".join(f"{kind}={name}" for kind, name in names.items()))
    print(format_table(rows))
    return 0
