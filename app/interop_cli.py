"""`trackstudio export`, `import` and `render`: the work behind the sub-commands (parsing is in cli.py)."""
from __future__ import annotations

from pathlib import Path

from .commands import (CliError, _check_same_size, _check_writable, _load_annotations, _open_video, _save,
                       _video_info_for)

# output suffixes that name an exchange format alone (cvat, sleap, dlc, mot, tapvid)
_FORMAT_SUFFIXES = (".xml", ".slp", ".csv", ".txt", ".pkl")


def export_file(args) -> int:
    """Without --format (and a suffix above), the TrackStudio files `_save` writes by suffix. With
    --video, the annotations are checked to fit it (size, frame count) and recorded as its own."""
    from .model.interop import export, guess_format

    store, info = _load_annotations(args.src)
    out = Path(args.out)
    fmt = args.format
    if fmt is None and out.suffix.lower() in _FORMAT_SUFFIXES:
        fmt = guess_format(out)
    if out.suffix:
        _check_writable(out)
    elif out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: exists and is a file; this format writes a folder")
    if not args.video:
        if fmt is None:
            _save(store, info, out)
        else:
            export(store, info, out, fmt)
        return 0
    with _open_video(args.video) as video:
        info = _video_info_for(video, store, info, args.src)
        if fmt is None:
            _save(store, info, out)
        else:
            export(store, info, out, fmt, frame_times=video.frame_times(), frames=video)
    return 0


def import_into_file(file: str, fmt: str | None, video_path: str, out: Path, *, tracked: bool) -> int:
    """Import FILE's labels as new objects into OUT (created, or added to when it exists)."""
    from .model import AnnotationStore, Project
    from .model.formats import load_json, save_json
    from .model.interop import guess_format, import_file

    if out.suffix.lower() not in (".tsproj", ".json"):
        raise CliError(f"--out must end in .tsproj or .json, got {out.name!r}")
    fmt = fmt or guess_format(file)
    if fmt is None:
        raise CliError(f"{file}: cannot tell its format from the name; give --format")
    with _open_video(video_path) as video:
        info = video.info
    is_project = out.suffix.lower() == ".tsproj"
    if out.exists():  # add to it, keeping its objects, settings and unknown keys
        project = Project.load(out) if is_project else None
        store, existing = (project.store, project.video) if is_project else load_json(out)
        _check_same_size(existing, info, str(out), video_path)
    else:
        project = Project(video=info, store=AnnotationStore()) if is_project else None
        store = project.store if is_project else AnnotationStore()
    created = import_file(file, fmt, store, info, tracked=tracked)
    if is_project:
        project.save(out)
    else:
        save_json(store, info, out)
    states = sum(len(store.frames(obj.obj_id)) for obj in created)
    print(f"imported {len(created)} objects ({states} annotated frames) from {file} into {out}")
    return 0


def render_file(args) -> int:
    """Ctrl+C cancels: render_video removes the partial file."""
    from tqdm import tqdm

    from .model import AnnotationStore
    from .model.interop import import_file
    from .render import RenderOptions, render_video, snapshot

    with _open_video(args.video) as video:
        info = video.info
        if args.format in (None, "json") or Path(args.annotations).suffix.lower() == ".tsproj":
            store, ref = _load_annotations(args.annotations)
            _check_same_size(ref, info, args.annotations, args.video)
        else:
            store = AnnotationStore()
            import_file(args.annotations, args.format, store, info)
        if not 0 <= args.crf <= 51:
            raise CliError(f"--crf must be 0..51, got {args.crf}")
        with tqdm(total=len(video), unit="frame", desc="rendering", disable=args.quiet, leave=False) as bar:
            try:
                render_video(video, snapshot(store), args.out, side_by_side=args.side_by_side, crf=args.crf,
                             options=RenderOptions(trail_length=max(0, args.trail)),
                             progress=lambda done, total: bar.update(done - bar.n))
            except ValueError as exc:
                raise CliError(str(exc)) from None
    print(f"wrote {args.out} ({len(video)} frames, H.264)")
    return 0
