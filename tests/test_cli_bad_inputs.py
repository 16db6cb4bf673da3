"""Bad input and failing disks against `python -m trackstudio`, as a user meets them.

Every case runs the real command in a subprocess and checks what the user sees and keeps: exit
code 2, one line on stderr naming the file or option, no traceback, no hang, the old output
byte for byte, and no temporary file left behind. Signals and disk faults (read-only folder, full
disk, a kill midway through a save) are injected with tests/faults/sitecustomize.py.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from synthetic import moving_square_clip, write_frames

from trackstudio.app.video import write_video

FAULTS = Path(__file__).parent / "faults"
NUM_FRAMES, HEIGHT, WIDTH = 12, 120, 160
RUN_TIMEOUT_S = 60  # no case may hang
OLD_OUTPUT = b'{"old": "result the user already has"}'
FAST = ["--quiet", "--box-tracker", "csrt", "--mask-tracker", "dis-flow", "--point-tracker", "lk", "--device", "cpu"]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A 12-frame clip as an image folder and an .mp4, a truncated .avi, and a good prompts document."""
    root = tmp_path_factory.mktemp("media")
    frames, boxes = moving_square_clip(num_frames=NUM_FRAMES)
    write_frames(frames, root / "frames")
    write_video(frames, root / "clip.mp4")
    long_frames, _ = moving_square_clip(num_frames=40, velocity=(2, 1))
    write_video(long_frames, root / "long.avi")
    data = (root / "long.avi").read_bytes()
    (root / "truncated.avi").write_bytes(data[:len(data) // 2])  # MJPG: the first ~20 frames decode
    box = [float(v) for v in boxes[3]]
    doc = {"format": "trackstudio", "version": 1,
           "video": {"path": str(root / "frames"), "num_frames": NUM_FRAMES, "width": WIDTH, "height": HEIGHT,
                     "fps": 30.0},
           "objects": [{"id": 1, "name": "square", "kind": "box", "color": "#e6194b",
                        "frames": {"3": {"box": box, "keyframe": True}}},
                       {"id": 2, "name": "corner", "kind": "point", "color": "#3cb44b",
                        "frames": {"0": {"point": [box[0] + 6, box[1] + 6], "keyframe": True}}}]}
    (root / "prompts.json").write_text(json.dumps(doc))
    return root, doc


@dataclass
class Case:
    args: list[str]  # {frames} {mp4} {avi} {prompts} {case} {out} are filled in
    needle: str  # what the one line must contain (the file or option at fault)
    setup: Callable[[Path, dict], None] | None = None  # writes the case's files: (case folder, prompts doc)
    fault: dict[str, str] = field(default_factory=dict)
    partial: int = 0  # > 0: a partial result with at least this many frames is expected beside --out


def _prompts(mutate):
    """Setup writing {case}/prompts.json: the good document changed by `mutate(doc)`."""
    def setup(case: Path, doc: dict) -> None:
        doc = json.loads(json.dumps(doc))
        mutate(doc)
        (case / "prompts.json").write_text(json.dumps(doc))
    return setup


def _raw(text: bytes | str, name: str = "prompts.json"):
    def setup(case: Path, doc: dict) -> None:
        data = text.encode() if isinstance(text, str) else text
        (case / name).write_bytes(data)
    return setup


def _set(path: str, value):
    """Mutation: set a field given as "objects.0.frames.3.box" (None as value deletes it)."""
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is None:
            del node[last]
        else:
            node[last] = value
    return mutate


def _image_folder(corrupt: bool):
    def setup(case: Path, doc: dict) -> None:
        folder = case / "imgs"
        folder.mkdir()
        if corrupt:
            cv2.imwrite(str(folder / "000.png"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
            (folder / "001.png").write_bytes(b"\x89PNG not really")
    return setup


def _mkfifo(case: Path, doc: dict) -> None:
    os.mkfifo(case / "prompts.json")


def _old_png_folder(case: Path, doc: dict) -> None:
    (case / "masks").mkdir()
    for i in range(NUM_FRAMES):
        (case / "masks" / f"{i:05d}.png").write_bytes(b"old frame %d" % i)


TRACK = ["track", "{frames}", "--prompts", "{case}/prompts.json", "--out", "{out}", *FAST]
BOX = "objects.0.frames.3.box"
POINT = "objects.1.frames.0.point"


def _corrupt_checkpoint(tracker_args: list[str], tracker: str, file_name: str, needle: str | None = None) -> Case:
    """`track` with --checkpoint TRACKER={case}/FILE_NAME, a corrupt file: the error names the file."""
    args = [*TRACK[:6], "--quiet", *tracker_args, "--device", "cpu", "--checkpoint", f"{tracker}={{case}}/{file_name}"]
    return Case(args, needle or file_name, lambda case, doc: (_prompts(lambda d: None)(case, doc),
                                                             _raw(b"PK\x03\x04 corrupt" * 50, file_name)(case, doc)))


CASES = {
    # -- the prompts file
    "prompts-missing": Case(["track", "{frames}", "--prompts", "{case}/nope.json", "--out", "{out}"], "nope.json"),
    "prompts-folder": Case(["track", "{frames}", "--prompts", "{case}", "--out", "{out}"], "not a regular file"),
    "prompts-fifo": Case(TRACK, "prompts.json", _mkfifo),
    "prompts-empty-file": Case(TRACK, "prompts.json", _raw(b"")),
    "prompts-not-json": Case(TRACK, "prompts.json", _raw("{not json")),
    "prompts-not-utf8": Case(TRACK, "UTF-8", _raw(b"\xff\xfe\x00garbage")),
    "prompts-top-level-list": Case(TRACK, "top level", _raw("[1, 2]")),
    "prompts-other-format": Case(TRACK, "format", _raw('{"format": "labelme"}')),
    "prompts-newer-version": Case(TRACK, "version", _prompts(_set("version", 2))),
    "box-three-numbers": Case(TRACK, '"3"].box', _prompts(_set(BOX, [1, 2, 3]))),
    "box-nan": Case(TRACK, '"3"].box[0]', _prompts(_set(BOX, ["NaN-placeholder", 2, 30, 40]))),
    "box-infinite": Case(TRACK, '"3"].box[2]', _prompts(_set(BOX, [1, 2, 1e999, 4]))),
    "box-string": Case(TRACK, '"3"].box', _prompts(_set(BOX, "10 10 50 50"))),
    "box-inverted": Case(TRACK, '"3"]: box must have x2 >= x1', _prompts(_set(BOX, [50, 50, 10, 10]))),
    "box-zero-width": Case(TRACK, "no area", _prompts(_set(BOX, [10, 10, 10, 40]))),
    "box-zero-size": Case(TRACK, "no area", _prompts(_set(BOX, [10, 10, 10, 10]))),
    "box-outside-negative": Case(TRACK, "entirely outside", _prompts(_set(BOX, [-500, -400, -100, -50]))),
    "box-outside-huge": Case(TRACK, "entirely outside", _prompts(_set(BOX, [1e9, 1e9, 2e9, 2e9]))),
    "box-beyond-right-edge": Case(TRACK, '"3"].box', _prompts(_set(BOX, [160, 10, 200, 40]))),
    "point-huge": Case(TRACK, '"0"].point', _prompts(_set(POINT, [1e30, 1e30]))),
    "point-negative": Case(TRACK, "outside the 160x120 frame", _prompts(_set(POINT, [-5, -5]))),
    "click-outside": Case(TRACK, "clicks[0]", _prompts(_set("objects.1", {
        "id": 2, "name": "blob", "kind": "mask", "frames": {"0": {"clicks": [[500, 10, 1]], "keyframe": True}}}))),
    "mask-empty": Case(TRACK, "mask is empty", _prompts(_set("objects.1", {
        "id": 2, "name": "blob", "kind": "mask",
        "frames": {"0": {"mask": {"size": [HEIGHT, WIDTH], "counts": [HEIGHT * WIDTH]}, "keyframe": True}}}))),
    "mask-wrong-size": Case(TRACK, "mask.size", _prompts(_set("objects.1", {
        "id": 2, "name": "blob", "kind": "mask",
        "frames": {"0": {"mask": {"size": [10, 10], "counts": [100]}, "keyframe": True}}}))),
    "frame-key-not-a-number": Case(TRACK, '"x"', _prompts(_set("objects.0.frames", {"x": {"box": [1, 2, 30, 40]}}))),
    "frame-beyond-declared-video": Case(TRACK, '"40"', _prompts(_set("objects.0.frames", {
        "40": {"box": [1, 2, 30, 40], "keyframe": True}}))),
    "frame-beyond-real-video": Case(TRACK, "frame 40", _prompts(lambda d: (
        _set("video.num_frames", 100)(d), _set("objects.0.frames", {"40": {"box": [1, 2, 30, 40], "keyframe": True}})(d)))),
    "duplicate-ids": Case(TRACK, "duplicate id", _prompts(_set("objects.1.id", 1))),
    "unknown-kind": Case(TRACK, "objects[0].kind", _prompts(_set("objects.0.kind", "polygon"))),
    "bad-colour": Case(TRACK, "objects[0].color", _prompts(_set("objects.0.color", "red"))),
    "unknown-entry-key": Case(TRACK, '"3"].bbox', _prompts(_set("objects.0.frames.3.bbox", [1, 2, 3, 4]))),
    "no-objects": Case(TRACK, "no objects", _prompts(_set("objects", []))),
    "no-keyframe-flags": Case(TRACK, '"keyframe": true', _prompts(lambda d: (
        _set("objects.0.frames.3.keyframe", None)(d), _set("objects.1.frames.0.keyframe", None)(d)))),
    "prompts-for-another-size": Case(TRACK, "320x240", _prompts(lambda d: (
        _set("video.width", 320)(d), _set("video.height", 240)(d)))),
    # -- the video
    "video-missing": Case(["track", "{case}/nope.mp4", "--prompts", "{prompts}", "--out", "{out}"], "nope.mp4"),
    "video-garbage": Case(["track", "{case}/v.mp4", "--prompts", "{prompts}", "--out", "{out}"], "v.mp4",
                          _raw(b"\x00garbage" * 100, "v.mp4")),
    "video-empty": Case(["track", "{case}/v.mp4", "--prompts", "{prompts}", "--out", "{out}"], "v.mp4",
                        _raw(b"", "v.mp4")),
    "video-single-image": Case(["track", "{frames}/000000.png", "--prompts", "{prompts}", "--out", "{out}"],
                               "000000.png"),
    "video-unknown-type": Case(["track", "{case}/v.txt", "--prompts", "{prompts}", "--out", "{out}"], "v.txt",
                               _raw("hello", "v.txt")),
    "video-empty-folder": Case(["track", "{case}/imgs", "--prompts", "{prompts}", "--out", "{out}"], "imgs",
                               _image_folder(corrupt=False)),
    "video-corrupt-frame": Case(["track", "{case}/imgs", "--prompts", "{case}/prompts.json", "--out", "{out}", *FAST],
                                "001.png", lambda case, doc: (_image_folder(corrupt=True)(case, doc), _prompts(
                                    lambda d: _set("objects", [{"id": 1, "kind": "box", "frames": {
                                        "0": {"box": [20, 30, 52, 62], "keyframe": True}}}])(d))(case, doc)),
                                partial=1),
    "video-truncated": Case(["track", "{avi}", "--prompts", "{case}/prompts.json", "--out", "{out}", *FAST],
                            "result.partial.json", _prompts(lambda d: (
                                _set("video.num_frames", 40)(d), _set("objects", d["objects"][:1])(d))),
                            partial=10),
    # -- options
    "out-unknown-type": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{case}/r.txt"], "--out"),
    "out-folder-missing": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{case}/no/r.json"],
                               "--out"),
    "out-is-a-folder": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{case}/d.json"], "--out",
                            lambda case, doc: (case / "d.json").mkdir()),
    "out-under-a-file": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{out}/r.json"], "--out"),
    "out-read-only": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{out}", *FAST], "--out",
                          fault={"TS_FAULT": "erofs", "TS_FAULT_DIR": "{case}"}),
    "out-disk-full": Case(["track", "{frames}", "--prompts", "{prompts}", "--out", "{out}", *FAST],
                          "no space left", fault={"TS_FAULT": "enospc"}),
    "device-unknown": Case([*TRACK[:6], "--device", "tpu9"], "--device tpu9", _prompts(lambda d: None)),
    "device-absent-gpu": Case([*TRACK[:6], "--device", "cuda:7"], "--device cuda:7", _prompts(lambda d: None)),
    "tracker-unknown": Case([*TRACK[:6], "--box-tracker", "nope"], "nope", _prompts(lambda d: None)),
    "tracker-wrong-kind": Case([*TRACK[:6], "--box-tracker", "lk"], "lk", _prompts(lambda d: None)),
    "checkpoint-no-equals": Case([*TRACK, "--checkpoint", "weights.pt"], "--checkpoint", _prompts(lambda d: None)),
    "checkpoint-other-tracker": Case([*TRACK, "--checkpoint", "sam2=w.pt"], "--checkpoint sam2",
                                     _prompts(lambda d: None)),
    "checkpoint-missing-file": Case([*TRACK[:6], "--point-tracker", "point_transformer", "--checkpoint",
                                     "point_transformer={case}/w.pt"], "w.pt", _prompts(lambda d: None)),
    "checkpoint-not-loaded": Case([*TRACK, "--checkpoint", "csrt={prompts}"], "--checkpoint csrt",
                                  _prompts(lambda d: None)),
    "checkpoint-corrupt": _corrupt_checkpoint(["--box-tracker", "csrt", "--point-tracker", "point_transformer"],
                                              "point_transformer", "point_tracker.pt"),
    "checkpoint-corrupt-mask-weights": _corrupt_checkpoint(["--box-tracker", "csrt", "--point-tracker", "lk"],
                                                           "sam2-lite", "sam2_lite_propagation.pt"),
    # siamfc-mask's checkpoint is its mask tracker's (the Siamese search has none): that file is read
    "checkpoint-corrupt-box-mask-weights": _corrupt_checkpoint(
        ["--box-tracker", "siamfc-mask", "--mask-tracker", "dis-flow", "--point-tracker", "lk"], "siamfc-mask",
        "sam2_lite_propagation.pt", "sam2_lite_propagation.pt is not a readable PyTorch checkpoint"),
    "set-no-option": Case([*TRACK, "--set", "window=15"], "--set", _prompts(lambda d: None)),
    "set-other-tracker": Case([*TRACK, "--set", "sam2-lite.min_side=640"], "--set sam2-lite",
                              _prompts(lambda d: None)),
    "set-unknown-option": Case([*TRACK, "--set", "lk.windw=15"], "windw", _prompts(lambda d: None)),
    "set-wrong-type": Case([*TRACK, "--set", "lk.window=wide"], "lk.window", _prompts(lambda d: None)),
    # a value of the right type that the tracker refuses (its config's own check)
    "set-out-of-range": Case([*TRACK[:6], "--quiet", "--box-tracker", "csrt", "--point-tracker", "point_transformer",
                              "--device", "cpu", "--set", "point_transformer.reenter_fits=0"],
                             "reenter_fits", _prompts(lambda d: None)),
    # -- export
    "export-src-missing": Case(["export", "{case}/nope.json", "--out", "{out}"], "nope.json"),
    "export-unknown-type": Case(["export", "{prompts}", "--out", "{case}/r.docx"], "--out"),
    "export-png-onto-a-file": Case(["export", "{prompts}", "--out", "{out}"], "--out"),
    "export-folder-missing": Case(["export", "{prompts}", "--out", "{case}/no/r.npz"], "--out"),
    "export-video-other-size": Case(["export", "{prompts}", "--out", "{out}", "--video", "{case}/big"], "--video",
                                    lambda case, doc: write_frames([np.zeros((240, 320, 3), np.uint8)] * 2,
                                                                   case / "big")),
    "export-video-missing": Case(["export", "{prompts}", "--out", "{out}", "--video", "{case}/nope.mp4"],
                                 "nope.mp4"),
    "export-disk-full": Case(["export", "{prompts}", "--out", "{case}/r.npz"], "r.npz",
                             fault={"TS_FAULT": "enospc"}),
    "export-png-read-only": Case(["export", "{prompts}", "--out", "{case}/masks"], "masks",
                                 fault={"TS_FAULT": "erofs", "TS_FAULT_DIR": "{case}"}),
    "export-png-over-a-folder-of-folders": Case(["export", "{prompts}", "--out", "{case}/work"], "sub-folders",
                                                lambda case, doc: (case / "work" / "project").mkdir(parents=True)),
    "export-png-over-the-file-system-root": Case(["export", "{prompts}", "--out", "/"], "root"),
    # -- info and models
    "info-missing": Case(["info", "{case}/nope.mp4"], "nope.mp4"),
    "info-corrupt-project": Case(["info", "{case}/p.tsproj"], "p.tsproj", _raw("{]", "p.tsproj")),
    "info-garbage-video": Case(["info", "{case}/v.mkv"], "v.mkv", _raw(b"\x1aE\xdf\xa3 junk" * 30, "v.mkv")),
    "eval-not-a-sequence": Case(["eval", "{frames}", "--kinds", "box", "--box-tracker", "csrt"], "gt.npz"),
    "models-unknown": Case(["models", "download", "nope"], "nope"),
    "models-import-missing-file": Case(["models", "import", "sam2.1-hiera-tiny", "{case}/nope.pt"], "nope.pt"),
}
_write_placeholder = CASES["box-nan"].setup
CASES["box-nan"].setup = lambda case, doc: (  # JSON has no NaN, but Python's json module reads one
    _write_placeholder(case, doc),
    (case / "prompts.json").write_text((case / "prompts.json").read_text().replace('"NaN-placeholder"', "NaN")))


def _fill(args: list[str], media_root: Path, case: Path, out: Path) -> list[str]:
    names = {"frames": media_root / "frames", "mp4": media_root / "clip.mp4", "avi": media_root / "truncated.avi",
             "prompts": media_root / "prompts.json", "case": case, "out": out}
    return [arg.format(**{k: str(v) for k, v in names.items()}) for arg in args]


def _env(case: Path, fault: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, TRACKSTUDIO_LOG_DIR=str(case / "logs"))
    if fault:
        env.update({k: v.format(case=case) for k, v in fault.items()})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS), env.get("PYTHONPATH")]))
    return env


def _temp_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def _run(args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "trackstudio", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env=env, **kwargs)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gives_one_line_exit_2_and_keeps_the_old_output(name, media, tmp_path):
    media_root, doc = media
    case = CASES[name]
    folder = tmp_path / "case"
    folder.mkdir()
    out = folder / ("masks" if name == "export-png-onto-a-file" else "result.json")
    if case.setup:
        case.setup(folder, doc)
    if name == "out-under-a-file":
        out = folder / "a-file"
    out.write_bytes(OLD_OUTPUT)
    args = _fill(case.args, media_root, folder, out)
    before = sorted(p.name for p in folder.iterdir())
    r = _run(args, _env(folder, case.fault))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert case.needle in lines[0], lines[0]
    assert out.read_bytes() == OLD_OUTPUT
    assert _temp_files(folder) == []
    after = sorted(p.name for p in folder.iterdir())
    made = sorted(set(after) - set(before))
    if case.partial:
        assert made == ["result.partial.json"]
        partial = json.loads((folder / "result.partial.json").read_text())
        assert len(partial["objects"][0]["frames"]) >= case.partial  # what was tracked before the bad frame
    else:
        assert made == []  # nothing written, not even a log (these are expected failures)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("target", ["json", "png-folder"])
def test_killed_while_saving_keeps_the_old_output_and_leaves_no_temp_files(media, tmp_path, sig, target):
    media_root, _ = media
    mark = tmp_path / "saving"
    if target == "json":
        out = tmp_path / "result.json"
        out.write_bytes(OLD_OUTPUT)
        args = ["track", str(media_root / "frames"), "--prompts", str(media_root / "prompts.json"), "--out",
                str(out), *FAST]
        fault = "hang-fsync"
    else:
        out = tmp_path / "masks"
        _old_png_folder(tmp_path, {})
        (out / "README.txt").write_text("mine")
        args = ["export", str(media_root / "prompts.json"), "--out", str(out)]
        fault = "hang-png"
    old = {p.name: p.read_bytes() for p in ([out] if out.is_file() else out.iterdir())}
    env = _env(tmp_path, {"TS_FAULT": fault, "TS_FAULT_MARK": str(mark)})
    proc = subprocess.Popen([sys.executable, "-m", "trackstudio", *args], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not mark.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the save never started"
            time.sleep(0.05)
        assert _temp_files(tmp_path)  # caught mid-save: the new data is in a temporary file
        proc.send_signal(sig)
        stderr = proc.communicate(timeout=RUN_TIMEOUT_S)[1]
    finally:
        proc.kill()
    now = {p.name: p.read_bytes() for p in ([out] if out.is_file() else out.iterdir())}
    assert now == old  # the old output, whole
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1 and "terminated" in stderr
        assert _temp_files(tmp_path) == []
    else:
        assert _temp_files(tmp_path)  # nothing runs after SIGKILL ...
        r = _run(args, _env(tmp_path, {}))  # ... so the next save to the same place cleans up
        assert r.returncode == 0, r.stderr
        assert _temp_files(tmp_path) == []
        if target == "png-folder":
            assert sorted(p.name for p in out.iterdir()) == sorted(["README.txt", *(f"{i:05d}.png" for i in range(NUM_FRAMES))])
            assert (out / "README.txt").read_text() == "mine"
