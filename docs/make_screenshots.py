"""Screenshots for the README: the real window on the sample clip, tracked with the default trackers.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [--out docs/screenshots]

Opens the demo project, tracks every object through the clip in the worker thread, then grabs the
whole window on a middle frame (main_window.png) and the canvas with the attention heatmap of the
selected mask object, masks hidden, in a 2x close-up (overlays.png).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer

from app.ui.demo import _wait, sample_project
from app.ui.main import MainWindow, application

TRACK_TIMEOUT_S = 1200


def settle(app, ms: int = 400) -> None:
    """Let coalescing timers (timeline strips, canvas) fire and repaint before a grab."""
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()
    app.processEvents()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "screenshots")
    ap.add_argument("--frame", type=int, default=40, help="frame shown in the screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    app = application()
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        window.ask_save = lambda: "discard"
        window.resize(1500, 900)
        window.show()
        video_path, project = sample_project()
        if not window.open_path(video_path, project=project):
            print(window.last_error, file=sys.stderr)
            return 1
        window.set_overlay("attention", True)  # trackers only report attention when asked before the run
        if not window.propagate_all() or _wait(window.tracking.finished, TRACK_TIMEOUT_S) is None:
            print(f"tracking failed: {window.last_error or window.last_message}", file=sys.stderr)
            return 1
        store = window.session.store
        window.session.select(next(o.obj_id for o in store.objects if o.kind == "mask"))
        window.session.set_frame(args.frame)
        settle(app)
        window.grab().save(str(args.out / "main_window.png"))
        window.set_overlay("masks", False)  # the attention alone, over the frame
        settle(app)
        # a 2x close-up of the canvas around the objects
        canvas = window.canvas.grab()
        box_obj = next(o for o in store.objects if o.kind == "box")
        x1, y1, x2, y2 = store.get_state(box_obj.obj_id, args.frame).box
        centre = window.canvas.image_to_widget((x1 + x2) / 2, (y1 + y2) / 2).toPoint()
        close_up = canvas.copy(centre.x() - 240, centre.y() - 150, 480, 300)
        close_up.scaled(close_up.width() * 2, close_up.height() * 2).save(str(args.out / "overlays.png"))
        window.shutdown()
    print(f"wrote {args.out / 'main_window.png'} and {args.out / 'overlays.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
