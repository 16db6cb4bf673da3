"""What each `trackstudio` sub-command does (argument parsing lives in cli.py)."""
from __future__ import annotations

import functools
from pathlib import Path


class CliError(Exception):
    """A user-facing failure: printed as one line by cli.main, exit code 2."""


def _user_errors(fn):
    """Turn the errors bad input causes into one-line CliErrors."""

    @functools.wraps(fn)
    def wrapper(args):
        from trackstudio.trackers.checkpoints import CheckpointError

        from .model import FormatError
        from .video import VideoError

        try:
            return fn(args)
        except (VideoError, FormatError, CheckpointError) as exc:
            raise CliError(str(exc)) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise CliError(f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)) from None

    return wrapper


def _open_video(path: str):
    from .video import open_video

    return open_video(path)


def _tracker_names(args, kinds) -> dict[str, str]:
    from .api import tracker_names

    try:
        return tracker_names(kinds, args.box_tracker, args.mask_tracker, args.point_tracker)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _checkpoints(args) -> dict[str, str]:
    checkpoints = {}
    for item in args.checkpoint:
        name, sep, path = item.partition("=")
        if not sep:
            raise CliError(f"--checkpoint expects TRACKER=PATH, got {item!r}")
        checkpoints[name] = path
    return checkpoints


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
        raise CliError(f"unknown output type {out.suffix!r}: use .json, .npz, .tsproj or a folder for PNG masks, "
                       "or give --format")


def _load_annotations(path: str):
    """(store, VideoInfo) from a TrackStudio JSON file or a project."""
    from .model import Project
    from .model.formats import load_json

    p = Path(path)
    if not p.exists():
        raise CliError(f"no such file: {p}")
    if p.suffix.lower() == ".tsproj":
        project = Project.load(p)
        return project.store, project.video
    return load_json(p)


@_user_errors
def cmd_track(args) -> int:
    from .api import export, track

    out = Path(args.out)
    if out.suffix.lower() not in (".json", ".npz"):
        raise CliError(f"--out must end in .json or .npz, got {out.name!r}")
    try:
        result = track(args.video, args.prompts, box_tracker=args.box_tracker, mask_tracker=args.mask_tracker,
                       point_tracker=args.point_tracker, device=args.device, checkpoints=_checkpoints(args),
                       progress=not args.quiet)
    except ValueError as exc:  # FormatError included: it names the file and field
        raise CliError(str(exc)) from None
    export(result, out)
    return 0


@_user_errors
def cmd_batch(args) -> int:
    from .batch_cli import run

    try:
        return run(args, _checkpoints(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


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


@_user_errors
def cmd_info(args) -> int:
    with _open_video(args.video) as video:
        i = video.info
        duration = i.num_frames / i.fps if i.fps else float("nan")
        print(f"path:     {i.path}\nframes:   {i.num_frames}\nsize:     {i.width}x{i.height}\n"
              f"fps:      {i.fps:g}\nduration: {duration:.2f} s")
    return 0


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
    rows = []
    for seq_dir in args.seqs:
        seq = load_sequence(seq_dir)
        scores = evaluate_trackers(seq, names.get("box"), names.get("mask"), names.get("point"), args.device)
        rows.append({"name": seq.name, **scores})
        print(f"{seq.name}: " + " ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
    print("trackers: " + ", ".join(f"{kind}={name}" for kind, name in names.items()))
    print(format_table(rows))
    return 0
