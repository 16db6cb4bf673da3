"""The `trackstudio` command line.

    trackstudio [PATH]                         open the GUI (on a video, image folder or project)
    trackstudio demo [--selftest]              the GUI on the bundled sample clip
    trackstudio track VIDEO --prompts P.json --out R.json|R.npz
    trackstudio batch INPUT --out DIR [--format F] [--jobs N] [--ray auto|ADDRESS]
    trackstudio export IN --out OUT [--format coco|yolo|mot|cvat|dlc|sleap|tapvid|...]
    trackstudio import FILE --format F --video VIDEO --out P.tsproj|P.json
    trackstudio render VIDEO ANNOTATIONS --out OUT.mp4 [--side-by-side]
    trackstudio info VIDEO                     describe a video
    trackstudio eval SEQ_DIR...                metrics on sequences with ground truth
    trackstudio models [list|options|download|remove|import]

Bad input ends with a one-line message on stderr naming the file or option and exit code 2, never
a traceback; a bug prints one line and where its traceback was logged (cli_errors.py).
"""
from __future__ import annotations

import argparse
import os
import sys

from trackstudio import __version__

EXIT_USAGE = 2  # cli_errors.EXIT_USAGE; kept here, where argparse's own usage errors use it too


def _add_tracker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--box-tracker", help="box tracker name (see `trackstudio models`); default: the best built-in")
    p.add_argument("--mask-tracker", help="mask tracker name; default: the best built-in")
    p.add_argument("--point-tracker", help="point tracker name; default: the best built-in")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--checkpoint", action="append", default=[], metavar="TRACKER=PATH",
                   help="use a local checkpoint file for a tracker (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="TRACKER.OPTION=VALUE", dest="options",
                   help="a tracker option, VALUE in JSON (repeatable), e.g. sam2-lite.min_side=640 to track "
                        "video under 640 px scaled up (README: low-resolution video)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="trackstudio", description="Label video by clicking; trackers do the rest.")
    ap.add_argument("--version", action="version", version=f"trackstudio {__version__}")
    sub = ap.add_subparsers(dest="command")

    p = sub.add_parser("gui", help="open the annotation window (the default command)")
    p.add_argument("path", nargs="?", help="video file, image folder or .tsproj project")

    p = sub.add_parser("demo", help="open the bundled sample clip, prompted and ready to propagate")
    p.add_argument("--selftest", action="store_true", help="run the demo flow headless and exit 0 on success")

    p = sub.add_parser("track", help="track every object of a prompt file through a video")
    p.add_argument("video", help="video file or folder of frames")
    p.add_argument("--prompts", required=True, help="TrackStudio JSON file with keyframes")
    p.add_argument("--out", required=True, help="result file: .json (TrackStudio JSON) or .npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--allow-empty", action="store_true",
                   help="write the result even when the prompts hold no object or no keyframe to track")
    _add_tracker_options(p)

    from .batch_cli import add_parser as add_batch_parser

    add_batch_parser(sub, _add_tracker_options)

    from .model.interop import FORMATS

    formats = ", ".join(FORMATS)
    p = sub.add_parser("export", help=f"write annotations in another format ({formats}, tsproj)")
    p.add_argument("src", help="TrackStudio JSON or .tsproj project")
    p.add_argument("--out", required=True, help="output file or folder (png, yolo, mot folders)")
    p.add_argument("--format", choices=list(FORMATS),
                   help="output format; default: from --out (.json, .npz, .tsproj, a folder for PNG masks)")
    p.add_argument("--video", help="the video the annotations belong to: checked against them (size, frame count) "
                                   "and recorded as their video; its frame times go into COCO and TAP-Vid, its "
                                   "frames into YOLO's images/")

    p = sub.add_parser("import", help=f"bring labels from another tool in as new objects ({formats})")
    p.add_argument("file", help="annotation file or folder (YOLO dataset, MOT sequence, PNG masks)")
    p.add_argument("--format", choices=list(FORMATS), help="default: guessed from the file")
    p.add_argument("--video", required=True, help="the video the labels belong to")
    p.add_argument("--out", required=True, help=".tsproj or .json; when it exists, the objects are added to it")
    p.add_argument("--tracked", action="store_true",
                   help="import as tracked frames (the file's own keyframes stay keyframes); default: keyframes")

    p = sub.add_parser("render", help="draw the annotations into the video: an H.264 review video")
    p.add_argument("video", help="video file or folder of frames")
    p.add_argument("annotations", help="TrackStudio JSON or .tsproj (or any import format, with --format)")
    p.add_argument("--out", required=True, help="output video (.mp4, .mov or .mkv)")
    p.add_argument("--format", choices=list(FORMATS), help="read the annotations as this format")
    p.add_argument("--side-by-side", action="store_true", help="original | overlay, next to each other")
    p.add_argument("--trail", type=int, default=15, help="frames of point trails (0: none)")
    p.add_argument("--crf", type=int, default=20, help="H.264 quality, 0 (lossless) .. 51; lower is better")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("info", help="describe a video, image folder, project (.tsproj) or annotation file (.json)")
    p.add_argument("video")

    p = sub.add_parser("eval", help="run trackers on sequences with ground truth and print metrics")
    p.add_argument("seqs", nargs="+", help="sequence folders (frames/*.jpg + gt.npz)")
    p.add_argument("--kinds", default="box,mask,point")
    _add_tracker_options(p)

    p = sub.add_parser("models", help="list, download, import or remove tracker weights; a tracker's options")
    p.add_argument("action", nargs="?", default="list", choices=["list", "options", "download", "remove", "import"],
                   help="options NAME: the tracker's options and defaults, as --set takes them")
    p.add_argument("name", nargs="?", help="tracker or weights file name")
    p.add_argument("file", nargs="?", help="local file, for import")
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # OpenCV's own warnings are noise to users
    argv = sys.argv[1:] if argv is None else list(argv)
    known = {"gui", "demo", "track", "batch", "export", "import", "render", "info", "eval", "models", "-h",
             "--help", "--version"}
    if not argv or argv[0] not in known:
        argv = ["gui", *argv]  # `trackstudio PATH` opens the GUI
    args = build_parser().parse_args(argv)
    from . import cli_errors, commands

    if args.command in ("gui", "demo"):  # the window handles its own signals and errors
        return getattr(commands, f"cmd_{args.command}")(args)
    try:
        with cli_errors.stop_on_sigterm():
            return getattr(commands, f"cmd_{args.command}")(args)
    except (Exception, KeyboardInterrupt) as exc:  # the one error path: a line, or a line and a log
        return cli_errors.report(args.command, argv, exc)


if __name__ == "__main__":
    sys.exit(main())
