"""The timeline with many objects, the review queue and the labels, as in the README:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_review_screenshot.py \\
        [--clip ../shared/train/davis2017_lowres/schoolgirls] [--out docs/screenshots]

Opens the clip's frames, prompts 45 points and 4 boxes on frame 0 (the boxes again on frame 40;
one box interpolates between them instead of tracking), a mask from the clip's first annotation,
tracks everything with the classical trackers in the worker thread, adds a label schema, marks
frames 0-30 reviewed, goes to the first doubtful frame of all objects and grabs the window
(review_window.png) and the timeline (review_timeline.png).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings

from trackstudio.app.model import FrameState
from trackstudio.app.model import labels as lb
from trackstudio.app.model.object_trackers import set_object_tracker
from trackstudio.app.ui.main import MainWindow, application

from make_screenshots import TRACK_TIMEOUT_S, first_frame_objects, settle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=Path("../shared/train/davis2017_lowres/schoolgirls"))
    ap.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = ap.parse_args()
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        win = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win.ask = lambda *_a: False
        win.ask_save = lambda: "discard"
        win.resize(1500, 950)
        win.show()
        frames = args.clip / "frames" if (args.clip / "frames").is_dir() else args.clip / "images"
        if not win.open_path(frames):
            raise SystemExit(win.last_error)
        for kind, name in (("box", "csrt"), ("mask", "dis-flow"), ("point", "lk")):
            win.tracker_panel.set_tracker(kind, name)
        s, store = win.session, win.session.store
        info = s.video.info
        rng = np.random.default_rng(0)
        lb.set_schema(store, lb.LabelSchema((lb.LabelClass("person", "#e6194b"), lb.LabelClass("bag", "#4363d8")),
                                            (lb.Attribute("occluded", "frame"), lb.Attribute("truncated", "object"))))
        for mask in first_frame_objects(args.clip):
            obj = store.add_object("mask")
            store.set_state(obj.obj_id, 0, FrameState(mask=mask, keyframe=True))
            lb.assign_class(store, obj.obj_id, "person")
        for n in range(4):
            obj = store.add_object("box")
            x = 20 + 100 * n
            store.set_state(obj.obj_id, 0, FrameState(box=(x, 50, x + 60, 200), keyframe=True))
            store.set_state(obj.obj_id, 40, FrameState(box=(x + 15, 50, x + 75, 200), keyframe=True))
            if n == 0:
                set_object_tracker(s.project.settings, obj.obj_id, "interpolate-box")
        for _ in range(45):
            obj = store.add_object("point")
            xy = (rng.uniform(10, info.width - 10), rng.uniform(10, info.height - 10))
            store.set_state(obj.obj_id, 0, FrameState(point=xy, keyframe=True))
        win.objects_panel.rebuild()
        done = []
        win.tracking.finished.connect(lambda *a: done.append(a))
        if not win.propagate_all():
            raise SystemExit(win.last_message)
        for _ in range(TRACK_TIMEOUT_S * 5):
            if done:
                break
            settle(app, 200)
        if not done or done[0][1]:
            raise SystemExit(f"tracking failed: {done}")
        s.select(store.objects[0].obj_id)
        s.set_frame(30)
        win.review_actions.all_objects.setChecked(True)
        win.review_actions.mark.trigger()  # frames 0-30 of every object reviewed
        win.review_actions.next.trigger()
        settle(app, 800)
        args.out.mkdir(parents=True, exist_ok=True)
        win.grab().save(str(args.out / "review_window.png"))
        win.timeline.grab().save(str(args.out / "review_timeline.png"))
        print(f"{len(store.objects)} objects; {win.last_message}")
        win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
