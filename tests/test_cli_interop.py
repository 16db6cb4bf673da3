"""`trackstudio export --format`, `import` and `render` end to end, as a user drives them."""
from __future__ import annotations

import json
import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from synthetic import moving_square_clip, write_frames

from trackstudio.app.cli import main
from trackstudio.app.model import AnnotationStore, FrameState, Project
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.model.interop import FORMATS
from trackstudio.app.video import VideoInfo

TRACKERS = ["--box-tracker", "csrt", "--mask-tracker", "dis-flow", "--point-tracker", "lk"]


@pytest.fixture()
def clip(tmp_path):
    frames, boxes = moving_square_clip(num_frames=12)
    return write_frames(frames, tmp_path / "frames"), boxes


def test_user_files_import_as_keyframes_and_track_on(tmp_path, clip):
    """A YOLO, a MOT and a CVAT file, each labelling the square on frame 2 only, become keyframes;
    tracking then carries the square through the whole clip."""
    folder, boxes = clip
    x1, y1, x2, y2 = boxes[2]
    yolo = tmp_path / "yolo" / "labels"
    yolo.mkdir(parents=True)
    (yolo.parent / "data.yaml").write_text("names: [square]\n")
    (yolo / "frame_000002.txt").write_text(
        f"0 {(x1 + x2) / 320:.6f} {(y1 + y2) / 240:.6f} {(x2 - x1) / 160:.6f} {(y2 - y1) / 120:.6f}\n")
    mot = tmp_path / "gt.txt"
    mot.write_text(f"3,7,{x1 + 1},{y1 + 1},{x2 - x1},{y2 - y1},1,1,1\n")
    cvat = tmp_path / "annotations.xml"
    cvat.write_text(f'<?xml version="1.0"?><annotations><version>1.1</version><track id="0" label="square">'
                    f'<box frame="2" outside="0" occluded="0" keyframe="1" xtl="{x1}" ytl="{y1}" xbr="{x2}" '
                    f'ybr="{y2}" z_order="0"/></track></annotations>')
    for fmt, path in (("yolo", yolo.parent), ("mot", mot), ("cvat", cvat)):
        project = tmp_path / f"{fmt}.tsproj"
        assert main(["import", str(path), "--format", fmt, "--video", str(folder), "--out", str(project)]) == 0
        prompts = tmp_path / f"{fmt}_prompts.json"
        loaded = Project.load(project)
        (obj,) = loaded.store.objects
        assert loaded.store.keyframes(obj.obj_id) == [2], fmt
        save_json(loaded.store, loaded.video, prompts)
        result = tmp_path / f"{fmt}_tracked.json"
        assert main(["track", str(folder), "--prompts", str(prompts), "--out", str(result), "--quiet", *TRACKERS]) == 0
        store, _ = load_json(result)
        (obj,) = store.objects
        assert store.frames(obj.obj_id) == list(range(12)) and store.keyframes(obj.obj_id) == [2], fmt
        assert np.allclose(store.get_state(obj.obj_id, 2).box, boxes[2], atol=0.01), fmt
        for frame_idx in (0, 11):
            tracked = store.get_state(obj.obj_id, frame_idx).box
            assert np.abs(tracked - boxes[frame_idx]).max() < 4, (fmt, frame_idx, tracked, boxes[frame_idx])


def test_import_adds_to_an_existing_project_and_guesses_the_format(tmp_path, clip, capsys):
    folder, boxes = clip
    out = tmp_path / "shot.json"
    store = AnnotationStore()
    kept = store.add_object("point", "kept")
    store.set_state(kept.obj_id, 0, FrameState(point=[5, 5], keyframe=True))
    save_json(store, VideoInfo(str(folder), 12, 160, 120, 30.0), out)
    mot = tmp_path / "gt.txt"
    mot.write_text("".join(f"{f + 1},1,{b[0] + 1},{b[1] + 1},32,32,1,1,1\n" for f, b in enumerate(boxes)))
    assert main(["import", str(mot), "--video", str(folder), "--out", str(out), "--tracked"]) == 0
    assert "imported 1 objects (12 annotated frames)" in capsys.readouterr().out
    result, _ = load_json(out)
    names = [o.name for o in result.objects]
    assert names == ["kept", "track 1"]
    assert result.keyframes(result.objects[1].obj_id) == []  # --tracked: tracker output, free to re-track

    project = tmp_path / "shot.tsproj"
    Project(VideoInfo(str(folder), 12, 160, 120, 30.0), settings={"box_tracker": "csrt"}).save(project)
    assert main(["import", str(out), "--video", str(folder), "--out", str(project)]) == 0
    loaded = Project.load(project)
    assert [o.name for o in loaded.store.objects] == ["kept", "track 1"]
    assert loaded.settings == {"box_tracker": "csrt"}  # adding objects keeps the project's settings


def test_import_errors_are_one_line(tmp_path, clip, capsys):
    folder, _ = clip
    bad = tmp_path / "gt.txt"
    bad.write_text("1,1,2,3\n")
    out = tmp_path / "p.tsproj"
    assert main(["import", str(bad), "--video", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"trackstudio import: {bad}: line 1: expected 6 to 10 values (frame, id, left, top, width, " \
                  "height, ...), got 4"
    assert not out.exists()
    assert main(["import", str(tmp_path / "x.weird"), "--video", str(folder), "--out", str(out)]) == 2
    assert "give --format" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "json"])
def test_export_every_format(tmp_path, fmt):
    store = AnnotationStore()
    box = store.add_object("box", "car")
    mask = store.add_object("mask", "ball")
    point = store.add_object("point", "nose")
    full = np.zeros((48, 64), bool)
    full[10:20, 10:30] = True
    store.set_state(box.obj_id, 1, FrameState(box=[1, 2, 30, 40], keyframe=True))
    store.set_state(mask.obj_id, 1, FrameState(mask=full, keyframe=True))
    store.set_state(point.obj_id, 1, FrameState(point=[3, 4], keyframe=True))
    src = tmp_path / "in.json"
    save_json(store, VideoInfo("v.mp4", 3, 64, 48, 30.0), src)
    out = tmp_path / f"out{FORMATS[fmt].suffix}"
    assert main(["export", str(src), "--format", fmt, "--out", str(out)]) == 0
    assert out.exists() and (out.is_file() or any(out.iterdir()))
    if FORMATS[fmt].suffix in (".xml", ".slp", ".csv", ".txt"):  # these suffixes name the format alone
        guessed = tmp_path / f"guessed{FORMATS[fmt].suffix}"
        assert main(["export", str(src), "--out", str(guessed)]) == 0
        assert guessed.read_bytes()[:20] == out.read_bytes()[:20]


def ffmpeg_probe(path) -> tuple[str, int]:
    """(codec, decoded frame count) from imageio-ffmpeg's ffmpeg binary: a reader independent of PyAV."""
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0",
                          "-f", "null", "-"], capture_output=True, text=True, check=True)
    codec = re.search(r"Video: (\w+)", run.stderr).group(1)
    frames = int(re.findall(r"frame=\s*(\d+)", run.stderr)[-1])
    return codec, frames


def test_render_writes_h264_with_every_frame(tmp_path, clip, capsys):
    folder, boxes = clip
    store = AnnotationStore()
    square = store.add_object("box", "square")
    for f, b in enumerate(boxes):
        store.set_state(square.obj_id, f, FrameState(box=b, score=0.9))
    annotations = tmp_path / "a.json"
    save_json(store, VideoInfo(str(folder), 12, 160, 120, 30.0), annotations)
    out = tmp_path / "review.mp4"
    assert main(["render", str(folder), str(annotations), "--out", str(out), "--quiet", "--crf", "0"]) == 0
    assert ffmpeg_probe(out) == ("h264", 12)
    import av

    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert frames[0].shape == (120, 160, 3)
    x1, y1 = boxes[5][:2].astype(int)
    edge = frames[5][y1 + 8:y1 + 24, x1:x1 + 2].reshape(-1, 3).mean(axis=0)  # the box's left side
    assert edge[0] > 150 and edge[0] - edge[1] > 80  # drawn in the first palette colour, red #e6194b

    side = tmp_path / "side.mp4"
    assert main(["render", str(folder), str(annotations), "--out", str(side), "--quiet", "--side-by-side"]) == 0
    assert ffmpeg_probe(side) == ("h264", 12)
    with av.open(str(side)) as container:
        assert container.streams.video[0].width == 320


def test_render_refuses_other_containers_and_mismatched_sizes(tmp_path, clip, capsys):
    folder, _ = clip
    annotations = tmp_path / "a.json"
    save_json(AnnotationStore(), VideoInfo(str(folder), 12, 64, 48, 30.0), annotations)
    assert main(["render", str(folder), str(annotations), "--out", str(tmp_path / "x.mp4"), "--quiet"]) == 2
    assert "is for a 64x48 video" in capsys.readouterr().err
    save_json(AnnotationStore(), VideoInfo(str(folder), 12, 160, 120, 30.0), annotations)
    assert main(["render", str(folder), str(annotations), "--out", str(tmp_path / "x.gif"), "--quiet"]) == 2
    assert "H.264 into .mp4" in capsys.readouterr().err


def test_render_cancel_leaves_no_file(tmp_path, clip):
    from trackstudio.app.render import render_video, snapshot
    from trackstudio.app.video import open_video

    folder, _ = clip
    out = tmp_path / "cancelled.mp4"
    calls = []
    with open_video(folder) as video:
        finished = render_video(video, snapshot(AnnotationStore()), out, progress=lambda d, t: calls.append(d),
                                should_stop=lambda: len(calls) >= 3)
    assert finished is False and calls == [1, 2, 3]
    assert not out.exists() and list(tmp_path.iterdir()) == [folder]


def test_export_keeps_the_frame_times_of_a_variable_rate_video(tmp_path):
    from test_video_exact import write_clip

    video = tmp_path / "vfr.mkv"
    pts_ms = write_clip(video, 9, durations_ms=(20, 40, 100))
    store = AnnotationStore()
    car = store.add_object("box", "car")
    store.set_state(car.obj_id, 4, FrameState(box=[1, 2, 10, 12], keyframe=True))
    src = tmp_path / "a.json"
    save_json(store, VideoInfo(str(video), 9, 64, 48, 25.0), src)
    out = tmp_path / "coco.json"
    assert main(["export", str(src), "--format", "coco", "--video", str(video), "--out", str(out)]) == 0
    images = json.loads(out.read_text())["images"]
    assert [image["timestamp"] for image in images] == pytest.approx([t / 1000 for t in pts_ms])


def test_yolo_export_with_the_video_writes_matching_images(tmp_path, clip):
    import cv2

    folder, boxes = clip
    store = AnnotationStore()
    square = store.add_object("box", "square", label="square")
    for f, b in enumerate(boxes):
        store.set_state(square.obj_id, f, FrameState(box=b, keyframe=True))
    src = tmp_path / "a.json"
    save_json(store, VideoInfo(str(folder), 12, 160, 120, 30.0), src)
    out = tmp_path / "dataset"
    assert main(["export", str(src), "--format", "yolo", "--video", str(folder), "--out", str(out)]) == 0
    images = sorted((out / "images").glob("*.jpg"))
    assert [p.stem for p in images] == [p.stem for p in sorted((out / "labels").glob("*.txt"))]
    originals = [cv2.imread(str(p)).astype(int) for p in sorted(folder.glob("*.png"))]
    for frame_idx in (0, 7, 11):  # each image is its own frame (JPEG-close), not a neighbour
        image = cv2.imread(str(images[frame_idx])).astype(int)
        errors = [np.abs(image - original).mean() for original in originals]
        assert int(np.argmin(errors)) == frame_idx and errors[frame_idx] < 12


def test_render_needs_no_qt(tmp_path, clip):
    """`trackstudio render` on a machine without PySide6: the drawing is Qt-free."""
    import sys

    folder, boxes = clip
    store = AnnotationStore()
    square = store.add_object("box", "square")
    store.set_state(square.obj_id, 0, FrameState(box=boxes[0], keyframe=True))
    annotations = tmp_path / "a.json"
    save_json(store, VideoInfo(str(folder), 12, 160, 120, 30.0), annotations)
    out = tmp_path / "noqt.mp4"
    script = ("import sys; sys.modules['PySide6'] = None\n"  # any PySide6 import now fails
              "from trackstudio.app.cli import main\n"
              f"sys.exit(main(['render', {str(folder)!r}, {str(annotations)!r}, '--out', {str(out)!r}, '--quiet']))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "PySide6" not in run.stderr and ffmpeg_probe(out) == ("h264", 12)
