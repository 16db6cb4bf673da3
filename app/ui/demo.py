"""`trackstudio demo`: the bundled sample clip, one object of each kind prompted, ready to track.

`--selftest` runs the same flow headless: open, propagate every kind in the worker thread, check
that results arrived on every frame, export JSON and NPZ, exit 0 (1 with a message on failure).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEventLoop, QSettings, QTimer

from trackstudio import resources
from trackstudio.app.model import Project
from trackstudio.app.model.formats import load_json

SELFTEST_TIMEOUT_S = 900


def sample_project() -> tuple[Path, Project]:
    """The sample video's path and a project holding its prompts (nothing opened yet)."""
    video_path = resources.path("sample", "sample.mp4")
    store, info = load_json(resources.path("sample", "prompts.json"))
    info.path = str(video_path)
    return video_path, Project(info, store)


def run_demo(selftest: bool = False) -> int:
    if selftest:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # must precede the QApplication
    from .main import MainWindow, _has_display, application

    if not _has_display():
        print("trackstudio demo: no display found; run `trackstudio demo --selftest` for the headless check.",
              file=sys.stderr)
        return 1
    app = application()
    with tempfile.TemporaryDirectory(prefix="trackstudio-demo-") as tmp:
        # the self-test must not read or change the user's settings and recent files
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat) if selftest else None
        window = MainWindow(settings)
        try:
            video_path, project = sample_project()
        except Exception as exc:  # noqa: BLE001
            print(f"trackstudio demo: cannot load the sample clip: {exc}", file=sys.stderr)
            return 1
        if selftest:
            window.ask = lambda *_args: False
            window.ask_save = lambda: "discard"
            problems = selftest_flow(window, video_path, project, Path(tmp))
            window.shutdown()
            window.deleteLater()
            if problems:
                for problem in problems:
                    print(f"trackstudio demo --selftest: FAILED: {problem}", file=sys.stderr)
                return 1
            print("trackstudio demo --selftest: OK")
            return 0
        window.show()
        if not window.open_path(video_path, project=project):
            return 1
        window.show_message("Sample clip with a box, a mask and points prompted on frame 0: press Ctrl+T to track "
                            "them through the video, F1 for shortcuts.")
        return app.exec()


def _wait(signal, timeout_s: float) -> tuple | None:
    """Run the event loop until `signal` fires (its arguments) or the timeout passes (None)."""
    loop = QEventLoop()
    got: list[tuple] = []

    def done(*args):
        got.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    signal.disconnect(done)
    return got[0] if got else None


def selftest_flow(window, video_path: Path, project: Project, out_dir: Path) -> list[str]:
    """The demo flow without a user; returns what went wrong (empty when all is well)."""
    if not window.open_path(video_path, project=project):
        return [f"cannot open the sample clip: {window.last_error}"]
    store, num_frames = window.session.store, window.session.num_frames
    kinds = sorted({o.kind for o in store.objects if store.keyframes(o.obj_id)})
    names = {kind: window.tracker_panel.tracker_name(kind) for kind in kinds}
    print(f"sample clip: {num_frames} frames; trackers: {', '.join(f'{k}={n}' for k, n in names.items())}")
    started = time.perf_counter()
    if not window.propagate_all():
        return [f"tracking did not start: {window.last_error or window.last_message}"]
    finished = _wait(window.tracking.finished, SELFTEST_TIMEOUT_S)
    if finished is None:
        window.tracking.shutdown()
        return [f"tracking did not finish within {SELFTEST_TIMEOUT_S} s"]
    cancelled, error, written = finished
    print(f"tracked {written} object-frames in {time.perf_counter() - started:.1f} s")
    problems = []
    if error or cancelled:
        problems.append(f"tracking {'failed: ' + error if error else 'was cancelled'}")
    for obj in store.objects:
        missing = sorted(set(range(num_frames)) - set(store.frames(obj.obj_id)))
        if missing:
            problems.append(f"{obj.name} ({obj.kind}, tracker {names.get(obj.kind)}) has no result on "
                            f"{len(missing)} frames, first {missing[0]}")
    json_path, npz_path = out_dir / "selftest.json", out_dir / "selftest.npz"
    if not (window.export_to("json", json_path) and window.export_to("npz", npz_path)):
        return problems + [f"export failed: {window.last_error}"]
    reloaded, _info = load_json(json_path)
    if len(reloaded.objects) != len(store.objects):
        problems.append(f"the exported JSON holds {len(reloaded.objects)} objects, expected {len(store.objects)}")
    with np.load(npz_path, allow_pickle=False) as arrays:
        points = [o for o in store.objects if o.kind == "point"]
        if points and arrays["trajs_2d"].shape != (num_frames, len(points), 2):
            problems.append(f"NPZ trajs_2d has shape {arrays['trajs_2d'].shape}")
    return problems
