"""Speed and memory of the point trackers: 64 points on an 854x480 video (or --size), TrackStudio's
transformer tracker beside pyramidal Lucas-Kanade in the same run.

    python benchmarks/bench_point_speed.py [--frames 96] [--points 64] [--trackers point_transformer,lk]
        [--threads 2] [--memory] [--size 1920x1080] [--config '{"max_work_short_side": null}']

The video is rendered on demand (a textured canvas seen by a panning camera, frame i computed
from i alone), so it never sits in memory and only the tracker's own memory counts. --config is
a JSON object of point_transformer settings (its config's fields). With
--memory each tracker also runs in a child process on a short and a 4x longer video and the
peak resident memory (VmHWM) of both is printed: flat means memory does not grow with length.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import cv2
import numpy as np


class PanningVideo:
    """A FrameSequence of `length` RGB frames (height, width) panning over a procedural canvas."""

    def __init__(self, length: int, height: int = 480, width: int = 854, seed: int = 0):
        from trackstudio.trackers.point.synthetic import make_texture

        rng = np.random.default_rng(seed)
        self.length, self.height, self.width = length, height, width
        self.canvas = make_texture(rng, height + 200, width + 200, "photo")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, frame_idx: int) -> np.ndarray:
        if not 0 <= frame_idx < self.length:
            raise IndexError(frame_idx)
        phase = 2 * np.pi * frame_idx / 120
        dx, dy = 100 + 80 * np.sin(phase), 100 + 60 * np.sin(2 * phase)
        matrix = np.float32([[1, 0, -dx], [0, 1, -dy]])
        return cv2.warpAffine(self.canvas, matrix, (self.width, self.height), flags=cv2.INTER_LINEAR)


def run(name: str, num_frames: int, num_points: int, size: tuple[int, int] = (854, 480), config: dict | None = None
        ) -> dict:
    """Track num_points points through a fresh video of `size` (w, h), `config` set on point_transformer; returns
    fps and the peak RSS."""
    from trackstudio.trackers import Prompt, registry

    video = PanningVideo(num_frames, height=size[1], width=size[0])
    tracker = registry.build(name, config if name == "point_transformer" and config else None, device="cpu")
    tracker.set_video(video)
    rng = np.random.default_rng(1)
    for obj_id in range(num_points):
        point = rng.uniform((20, 20), (video.width - 20, video.height - 20))
        tracker.add_prompt(0, obj_id, Prompt(point=point))
    for frame_idx in range(min(8, num_frames)):  # warm-up: render cost is not the tracker's
        video[frame_idx]
    started = time.perf_counter()
    count = sum(1 for _ in tracker.propagate(0))
    seconds = time.perf_counter() - started
    return {"tracker": name, "size": f"{size[0]}x{size[1]}", "frames": count, "points": num_points,
            "seconds": round(seconds, 2),
            "fps": round(count / seconds, 2), "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--points", type=int, default=64)
    parser.add_argument("--trackers", default="point_transformer,lk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory", action="store_true", help="also compare peak memory on a 4x longer video")
    parser.add_argument("--size", default="854x480", help="frame size WxH")
    parser.add_argument("--config", default="{}", help="JSON settings for point_transformer")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        config = json.loads(args.config)
    except ValueError as error:
        parser.error(f"--size must be WxH and --config a JSON object: {error}")
    if len(size) != 2 or min(size) < 64 or not isinstance(config, dict):
        parser.error("--size must be WxH (each at least 64) and --config a JSON object")
    import torch

    import trackstudio.trackers  # noqa: F401  (allocator fix first)

    torch.set_num_threads(args.threads)
    if args.child:  # one measurement in a fresh process, printed as JSON
        print(json.dumps(run(args.child, args.frames, args.points, size, config)))
        return 0
    rows = []
    for name in args.trackers.split(","):
        row = run(name, args.frames, args.points, size, config)
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.memory:
            for frames in (args.frames, 4 * args.frames):
                out = subprocess.run([sys.executable, __file__, "--child", name, "--frames", str(frames),
                                      "--points", str(args.points), "--threads", str(args.threads),
                                      "--size", args.size, "--config", args.config],
                                     capture_output=True, text=True, check=True)
                print("memory " + out.stdout.strip().splitlines()[-1], flush=True)
    print(json.dumps({row["tracker"]: row["fps"] for row in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
