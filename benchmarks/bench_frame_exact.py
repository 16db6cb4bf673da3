"""Frame-exact seeking (PyAV index) against OpenCV's seek, and review-video render speed.

    .venv/bin/python benchmarks/bench_frame_exact.py [--frames 300] [--reads 60]

Encodes real frames (../shared/data/judo, else noise) three ways: constant-rate H.264 with
B-frames (.mp4), variable frame rate (.mkv, frame durations 20/40/100 ms) and rotated 90 degrees
(.mp4 display matrix). For each backend it decodes the file sequentially, then reads `--reads`
random frames by seek and counts those that differ from frame N of the sequential pass. Prints one
JSON line per (clip, backend): exact fraction, first open (index build) and cached open seconds,
milliseconds per random read; then the render speed of `trackstudio render` on the CFR clip.
"""
from __future__ import annotations

import argparse
import fractions
import json
import os
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.render import render_video, snapshot
from trackstudio.app.video import VideoError, open_video
from trackstudio.app.video.frame_index import INDEX_CACHE_ENV

JUDO = Path(__file__).resolve().parents[2] / "shared" / "data" / "judo" / "images"


def source_frames(count: int) -> list[np.ndarray]:
    files = sorted(JUDO.glob("*.jpg")) if JUDO.is_dir() else []
    if files:
        images = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
        return [images[i % len(images)] for i in range(count)]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (360, 640, 3), dtype=np.uint8) for _ in range(count)]


def encode(path: Path, frames: list[np.ndarray], durations_ms=(40,), rotation: int | None = None) -> None:
    height, width = (s - s % 2 for s in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        stream.codec_context.max_b_frames = 3
        stream.options = {"crf": "23", "preset": "veryfast", "x264-params": "keyint=50:bframes=3"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        t = 0
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:height, :width]), format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
            t += durations_ms[i % len(durations_ms)]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def measure(path: Path, backend: str, reads: int) -> dict:
    start = time.perf_counter()
    note = ""
    with open_video(path, backend=backend) as src:
        first_open = time.perf_counter() - start
        claimed = len(src)
        sequential = []
        try:
            for frame in src:
                sequential.append(np.array(frame))
        except VideoError as exc:  # OpenCV counts a VFR file's frames from its duration x fps
            note = str(exc).split(": ", 1)[1]
    start = time.perf_counter()
    with open_video(path, cache_bytes=0, backend=backend) as src:
        cached_open = time.perf_counter() - start
        order = np.random.default_rng(0).integers(0, len(sequential), reads)
        exact, start = 0, time.perf_counter()
        for frame_idx in order:
            exact += int(np.array_equal(src[int(frame_idx)], sequential[frame_idx]))
        per_read = (time.perf_counter() - start) / reads
    return {"clip": path.name, "backend": backend, "frames": len(sequential), "claimed_frames": claimed,
            "exact": exact / reads, "note": note,
            "first_open_s": round(first_open, 3), "cached_open_s": round(cached_open, 3),
            "ms_per_random_read": round(1000 * per_read, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--reads", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ[INDEX_CACHE_ENV] = str(tmp / "index")
        frames = source_frames(args.frames)
        clips = {"cfr_bframes.mp4": {}, "vfr.mkv": {"durations_ms": (20, 40, 100)}, "rotated.mp4": {"rotation": 90}}
        for name, options in clips.items():
            encode(tmp / name, frames, **options)
            for backend in ("pyav", "opencv"):
                print(json.dumps(measure(tmp / name, backend, args.reads)), flush=True)
        store = AnnotationStore()
        box, point = store.add_object("box", "player"), store.add_object("point", "hand")
        for f in range(args.frames):
            store.set_state(box.obj_id, f, FrameState(box=[100 + f % 50, 80, 300, 400], score=0.9))
            store.set_state(point.obj_id, f, FrameState(point=[200 + f % 40, 150], score=0.8))
        with open_video(tmp / "cfr_bframes.mp4") as video:
            start = time.perf_counter()
            render_video(video, snapshot(store), tmp / "review.mp4")
            seconds = time.perf_counter() - start
        print(json.dumps({"render": "cfr_bframes.mp4", "size": f"{video.info.width}x{video.info.height}",
                          "frames_per_s": round(args.frames / seconds, 1)}))


if __name__ == "__main__":
    main()
