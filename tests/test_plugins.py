"""Tracker plugins: a tiny package, built and installed by the test, registers a box tracker through
the `trackstudio.trackers` entry-point group; it then shows up in `trackstudio models`, tracks through
`trackstudio track` and is offered in the window's tracker panel."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from synthetic import write_frames

from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.video import VideoInfo
from trackstudio.trackers import registry

PLUGIN_SOURCE = '''
"""Follows the brightest blob: the box of pixels brighter than 200 near the last box."""
import numpy as np

from trackstudio.trackers import ObjectResult, SequentialTracker
from trackstudio.trackers.registry import register


@register("bright-box", kind="box", description="box of the bright pixels (test plugin)")
class BrightBox(SequentialTracker):
    kind = "box"

    def reset(self):
        super().reset()
        self._boxes = {}

    def _anchor(self, frame_idx, frame, prompts):
        for obj_id, prompt in prompts.items():
            self._boxes[obj_id] = np.asarray(prompt.box, np.float32)
        return {obj_id: ObjectResult(box=self._boxes[obj_id].copy()) for obj_id in prompts}

    def _step(self, frame_idx, frame, obj_ids):
        ys, xs = np.nonzero(frame.mean(axis=2) > 200)
        results = {}
        for obj_id in obj_ids:
            if len(xs):
                self._boxes[obj_id] = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            results[obj_id] = ObjectResult(box=self._boxes[obj_id].copy(), visible=bool(len(xs)),
                                           score=1.0 if len(xs) else 0.0)
        return results
'''

BROKEN_SOURCE = "raise ImportError('this plugin needs a library that is not installed')\n"

NUM_FRAMES, SIDE = 10, 20


def _project(name: str, module: str, source: str, root) -> None:
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(source)
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.1"

        [project.entry-points."trackstudio.trackers"]
        {name} = "{module}"

        [tool.setuptools]
        packages = ["{module}"]
    """))


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A folder with two installed plugin distributions: one that works and one that fails to import."""
    pytest.importorskip("setuptools")  # the build backend, used without an isolated download
    site = tmp_path_factory.mktemp("site")
    for name, module, source in (("ts-plugin-bright", "ts_plugin_bright", PLUGIN_SOURCE),
                                 ("ts-plugin-broken", "ts_plugin_broken", BROKEN_SOURCE)):
        src = tmp_path_factory.mktemp(name)
        _project(name, module, source, src)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                               "--no-index", "--target", str(site), str(src)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return site


def _run(site, *args, cwd):
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "TRACKSTUDIO_CACHE": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "trackstudio", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _bright_square_clip(tmp_path):
    frames, boxes = [], []
    for t in range(NUM_FRAMES):
        frame = np.full((90, 120, 3), 40, np.uint8)
        x, y = 10 + 5 * t, 20 + 2 * t
        frame[y:y + SIDE, x:x + SIDE] = 240
        frames.append(frame)
        boxes.append([x, y, x + SIDE, y + SIDE])
    folder = write_frames(frames, tmp_path / "frames")
    store = AnnotationStore()
    obj_id = store.add_object("box", name="square").obj_id
    store.set_state(obj_id, 0, FrameState(box=np.array(boxes[0], np.float32), keyframe=True))
    prompts = tmp_path / "prompts.json"
    save_json(store, VideoInfo(str(folder), NUM_FRAMES, 120, 90, 30.0), prompts)
    return folder, prompts, np.array(boxes, np.float32)


def test_plugin_is_listed_and_tracks_from_the_command_line(plugin_site, tmp_path):
    listing = _run(plugin_site, "models", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("bright-box"))
    assert "box" in row and "plugin: ts-plugin-bright 0.1" in row and "see ts-plugin-bright" in row
    # the broken plugin is named with its reason; the built-in trackers are all still there
    assert "plugin ts-plugin-broken did not load" in listing.stdout and "needs a library" in listing.stdout
    assert "siamfc-effnet" in listing.stdout and "sam2-lite" in listing.stdout

    folder, prompts, truth = _bright_square_clip(tmp_path)
    out = tmp_path / "result.json"
    done = _run(plugin_site, "track", str(folder), "--prompts", str(prompts), "--out", str(out), "--quiet",
                "--box-tracker", "bright-box", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    store, _ = load_json(out)
    (obj,) = store.objects
    tracked = np.array([store.get_state(obj.obj_id, t).box for t in range(NUM_FRAMES)])
    np.testing.assert_allclose(tracked, truth, atol=0.5)  # the plugin moved with the square on every frame
    assert json.loads(out.read_text())["objects"]


def test_plugin_tracker_is_offered_in_the_window(plugin_site, qtbot, monkeypatch, tmp_path):
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings

    from trackstudio.app.ui.main import MainWindow

    registry.specs()  # built-ins registered first: their modules import once, into the registry restored below
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the plugin leaves with the test
    monkeypatch.setattr(registry, "_PLUGIN_ERRORS", {})
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.warns(UserWarning, match="ts-plugin-broken"):
        win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    combo = win.tracker_panel.tracker_boxes["box"]
    offered = [combo.itemData(i) for i in range(combo.count())]
    assert "bright-box" in offered and "siamfc-effnet" in offered
    assert registry.spec("bright-box").plugin == "ts-plugin-bright 0.1"
    assert win.tracker_panel.set_tracker("box", "bright-box")
    win.shutdown()
