"""The Python API: the README's example runs as written, `import trackstudio` stays light, and
track/load/export behave as documented."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_batch_clips

import trackstudio as ts
from trackstudio.app.model import FormatError

REPO = Path(__file__).resolve().parents[1]


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- api-example[^>]*-->\s*```python\n(.*?)```", readme, re.S)
    assert block, "README lost its API example"
    clip = write_batch_clips(tmp_path, 1, num_frames=12)[0]
    clip["video"].rename(tmp_path / "clip.avi")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})
    printed = np.array(eval(capsys.readouterr().out.strip().replace(" ", ",")))  # "[x1 y1 x2 y2]"
    np.testing.assert_allclose(printed, clip["boxes"][11], atol=4)  # it really tracked the square
    with np.load(tmp_path / "clip.npz") as arrays:
        assert arrays["boxes"].shape == (12, 1, 4)


def test_import_is_light_and_the_api_loads_on_first_use():
    code = ("import sys, trackstudio as ts; heavy = [m for m in ('torch', 'PySide6', 'cv2') if m in sys.modules]; "
            "assert not heavy, heavy; assert callable(ts.track) and 'PySide6' not in sys.modules; "
            "assert {'track', 'load', 'export', 'Annotations'} <= set(dir(ts))")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ts.nope  # noqa: B018


def test_track_leaves_the_prompts_alone_and_checks_them(tmp_path):
    clip = write_batch_clips(tmp_path, 1, num_frames=6)[0]
    prompts = ts.load(clip["prompts"])
    result = ts.track(clip["video"], prompts, box_tracker="csrt", device="cpu")
    assert prompts.store.frames(1) == [0] and result.store.frames(1) == list(range(6))
    assert result.store.keyframes(1) == [0]
    with pytest.raises(ValueError, match="is a point tracker, not a box tracker"):
        ts.track(clip["video"], prompts, box_tracker="lk")
    with pytest.raises(FormatError, match="frame 9 is beyond the video's 6 frames"):
        ts.track(clip["video"], [{"id": 1, "kind": "box", "frames": {"9": {"box": [1, 2, 3, 4], "keyframe": True}}}])
    with pytest.raises(TypeError, match="prompts must be"):
        ts.track(clip["video"], 42)


def test_load_picks_a_video_of_a_project(tmp_path):
    from trackstudio.app.model import FrameState, Project
    from trackstudio.app.video import VideoInfo

    project = Project(VideoInfo(str(tmp_path / "a.avi"), 5, 16, 12, 30.0))
    second = project.add_video(VideoInfo(str(tmp_path / "b.avi"), 7, 16, 12, 30.0))
    second.store.add_object("point")
    second.store.set_state(1, 3, FrameState(point=[4, 5], keyframe=True))
    path = project.save(tmp_path / "p.tsproj")
    assert ts.load(path).video.num_frames == 5  # the current video
    for which in (1, "b.avi"):
        picked = ts.load(path, video=which)
        assert picked.video.num_frames == 7 and picked.store.keyframes(1) == [3]
    with pytest.raises(ValueError, match="no video 'c.avi'; it has a.avi, b.avi"):
        ts.load(path, video="c.avi")


def test_export_writes_every_exchange_format_by_name(tmp_path):
    """ts.export (and batch --format) reach the exchange formats: a MOT file that motmetrics' layout
    reader (our importer) reads back as the tracked boxes."""
    from trackstudio.app.model.interop import read_file

    clip = write_batch_clips(tmp_path, 1, num_frames=8)[0]
    result = ts.track(clip["video"], clip["prompts"], box_tracker="csrt", device="cpu")
    written = ts.export(result, tmp_path / "clip.txt", format="mot")
    (track,) = read_file(written, "mot", result.video)
    boxes = {frame_idx: state.box for frame_idx, state in track.states.items()}
    assert sorted(boxes) == list(range(8))
    np.testing.assert_allclose(boxes[7], result.store.get_state(1, 7).box, atol=0.01)
