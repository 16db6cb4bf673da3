"""Screenshots for the README: the real window on a real clip, tracked with the default trackers.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py \
        [--clip ../shared/data/judo] [--frame 12] [--out docs/screenshots]

Opens the clip's frames (`images/` or `frames/`), prompts on frame 0 what a user would: one mask
object per object of the clip's frame-0 annotation (`masks/00000.png`, a colour or label PNG as
Cutie's and DAVIS' examples ship, or `gt.npz` `masks[0]`), a box around each, and three points
inside each. Tracks everything in the worker thread, then grabs the window on `--frame` with all
overlays (main_window.png) and the canvas with one overlay at a time: masks.png, boxes.png,
points.png, attention_mask.png (the mask tracker's memory attention for the first object) and
attention_box.png (the box tracker's response for the first box). Without `--clip` it uses the
bundled sample clip and its prompts.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QEventLoop, QSettings, QTimer

from trackstudio.app.model import FrameState
from trackstudio.app.ui.demo import _wait, sample_project
from trackstudio.app.ui.main import MainWindow, application

TRACK_TIMEOUT_S = 1800
OVERLAYS = ("masks", "outlines", "boxes", "labels", "points", "attention")


def settle(app, ms: int = 400) -> None:
    """Let coalescing timers (timeline strips, canvas) fire and repaint before a grab."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def first_frame_objects(clip: Path) -> list[np.ndarray]:
    """(H, W) bool masks of the objects annotated on frame 0, one per colour / label value."""
    png = clip / "masks" / "00000.png"
    if png.is_file():
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        flat = image.reshape(-1, image.shape[2]) if image.ndim == 3 else image.reshape(-1, 1)
        values = [v for v in np.unique(flat, axis=0) if v.any()]
        return [(flat == v).all(axis=1).reshape(image.shape[:2]) for v in values]
    with np.load(clip / "gt.npz") as gt:
        labels = gt["masks"][0]
    return [labels == v for v in np.unique(labels) if v]


def interior_points(mask: np.ndarray, count: int) -> list[tuple[float, float]]:
    """`count` well-separated points deep inside the mask (farthest from its edge first)."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    points = []
    for _ in range(count):
        y, x = np.unravel_index(np.argmax(distance), distance.shape)
        points.append((float(x), float(y)))
        cv2.circle(distance, (int(x), int(y)), max(8, int(distance[y, x] * 1.5)), 0, -1)
    return points


def prompt_clip(window: MainWindow, clip: Path) -> None:
    store = window.session.store
    for n, mask in enumerate(first_frame_objects(clip), start=1):
        obj = store.add_object("mask", name=f"object {n}")
        store.set_state(obj.obj_id, 0, FrameState(mask=mask, keyframe=True))
        ys, xs = np.nonzero(mask)
        box = store.add_object("box", name=f"box {n}")
        store.set_state(box.obj_id, 0, FrameState(box=(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), keyframe=True))
        for x, y in interior_points(mask, 3):
            point = store.add_object("point")
            store.set_state(point.obj_id, 0, FrameState(point=(x, y), keyframe=True))


def grab_with(window: MainWindow, app, path: Path, shown: set[str], select_kind: str | None = None) -> None:
    for attr in OVERLAYS:
        window.set_overlay(attr, attr in shown)
    if select_kind:
        window.session.select(next(o.obj_id for o in window.session.store.objects if o.kind == select_kind))
    settle(app)
    window.canvas.grab().save(str(path))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, help="a folder with images/ or frames/ and masks/ or gt.npz")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshots")
    ap.add_argument("--frame", type=int, default=12, help="frame shown in the screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        window.ask_save = lambda: "discard"
        window.resize(1500, 900)
        window.show()
        if args.clip:
            frames = next(p for p in (args.clip / "images", args.clip / "frames") if p.is_dir())
            opened = window.open_path(frames)
            if opened:
                prompt_clip(window, args.clip)
        else:
            video_path, project = sample_project()
            opened = window.open_path(video_path, project=project)
        if not opened:
            print(window.last_error, file=sys.stderr)
            return 1
        window.set_overlay("attention", True)  # trackers only report attention when asked before the run
        if not window.propagate_all() or _wait(window.tracking.finished, TRACK_TIMEOUT_S) is None:
            print(f"tracking failed: {window.last_error or window.last_message}", file=sys.stderr)
            return 1
        window.session.set_frame(min(args.frame, window.session.num_frames - 1))
        window.session.select(next(o.obj_id for o in window.session.store.objects if o.kind == "mask"))
        for attr in OVERLAYS:
            window.set_overlay(attr, attr != "attention")
        settle(app)
        window.grab().save(str(args.out / "main_window.png"))
        grab_with(window, app, args.out / "masks.png", {"masks", "outlines", "labels"})
        grab_with(window, app, args.out / "boxes.png", {"boxes", "labels"})
        grab_with(window, app, args.out / "points.png", {"points"})
        grab_with(window, app, args.out / "attention_mask.png", {"attention", "outlines"}, select_kind="mask")
        grab_with(window, app, args.out / "attention_box.png", {"attention", "boxes"}, select_kind="box")
        window.shutdown()
    print(f"wrote {', '.join(sorted(p.name for p in args.out.glob('*.png')))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
