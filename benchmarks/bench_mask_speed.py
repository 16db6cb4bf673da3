"""Mask-tracker speed at 854x480 (one object) beside the DIS-flow peer, and RAM over a long clip.

    .venv/bin/python benchmarks/bench_mask_speed.py [--tracker sam2-lite] [--fps-frames 40]
        [--rss-frames 5000] [--rss-every 500]

Both parts use a lazily generated synthetic clip (a textured disc moving over a textured
background, nothing held in memory but the background). The peer is the project's `dis-flow`
tracker (the judge's flow-warping peer), timed in the same run on the same frames. RSS is read from
/proc/self/status: the resident size at every `--rss-every` frames and the peak (VmHWM).
"""
from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

import trackstudio.trackers  # noqa: F401  (allocator fix before torch allocates)
from trackstudio.trackers import Prompt
from trackstudio.trackers.registry import build

HEIGHT, WIDTH = 480, 854
RADIUS = 60


class SyntheticVideo:
    """`num_frames` frames drawn on demand: a textured disc on a Lissajous path over a textured background."""

    def __init__(self, num_frames: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.num_frames = num_frames
        noise = rng.integers(0, 255, (HEIGHT // 8 + 1, WIDTH // 8 + 1, 3), dtype=np.uint8)
        self.background = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST) // 2 + 40
        sprite = rng.integers(0, 255, (2 * RADIUS // 6 + 1, 2 * RADIUS // 6 + 1, 3), dtype=np.uint8)
        self.sprite = cv2.resize(sprite, (2 * RADIUS, 2 * RADIUS), interpolation=cv2.INTER_NEAREST) // 2 + 128
        yy, xx = np.mgrid[-RADIUS:RADIUS, -RADIUS:RADIUS]
        self.disc = xx ** 2 + yy ** 2 < RADIUS ** 2

    def __len__(self) -> int:
        return self.num_frames

    def _corner(self, t: int) -> tuple[int, int]:
        x = (WIDTH - 2 * RADIUS) * (0.5 + 0.45 * np.sin(t / 37.0))
        y = (HEIGHT - 2 * RADIUS) * (0.5 + 0.45 * np.sin(t / 23.0))
        return int(x), int(y)

    def mask(self, t: int) -> np.ndarray:
        m = np.zeros((HEIGHT, WIDTH), bool)
        x, y = self._corner(t)
        m[y:y + 2 * RADIUS, x:x + 2 * RADIUS] = self.disc
        return m

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < self.num_frames:
            raise IndexError(f"frame {t} is out of range ({self.num_frames} frames)")
        frame = self.background.copy()
        x, y = self._corner(t)
        patch = frame[y:y + 2 * RADIUS, x:x + 2 * RADIUS]
        patch[self.disc] = self.sprite[self.disc]
        return frame


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(tracker, video: SyntheticVideo, on_frame=None) -> float:
    """Propagate from a frame-0 mask prompt; returns frames per second (frame 0 excluded)."""
    tracker.set_video(video)
    tracker.add_prompt(0, 1, Prompt(mask=video.mask(0)))
    start, count = None, 0
    for result in tracker.propagate(0):
        if start is None:
            start = time.perf_counter()
        else:
            count += 1
        if on_frame is not None:
            on_frame(result.frame_idx)
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracker", default="sam2-lite")
    ap.add_argument("--fps-frames", type=int, default=40)
    ap.add_argument("--rss-frames", type=int, default=5000, help="0 skips the RAM run")
    ap.add_argument("--rss-every", type=int, default=500)
    args = ap.parse_args()
    video = SyntheticVideo(args.fps_frames)
    tracker, peer = build(args.tracker, device="cpu"), build("dis-flow", device="cpu")
    run(tracker, SyntheticVideo(4))  # warm-up: weights, allocator, oneDNN kernels
    fps, peer_fps = run(tracker, video), run(peer, video)
    print(f"speed at {WIDTH}x{HEIGHT}, one object, {args.fps_frames} frames:")
    print(f"| tracker | frames/s |\n|---|---|\n| {args.tracker} | {fps:.2f} |\n| dis-flow (peer) | {peer_fps:.2f} |")
    print(f"ratio {args.tracker} / peer: {fps / peer_fps:.2f}", flush=True)
    if args.rss_frames:
        print(f"\nRSS over a {args.rss_frames}-frame lazy synthetic {WIDTH}x{HEIGHT} clip "
              f"(--rss-frames {args.rss_frames}):\n| frame | RSS (MB) |\n|---|---|", flush=True)

        def report(frame_idx: int) -> None:
            if frame_idx % args.rss_every == 0 or frame_idx == args.rss_frames - 1:
                print(f"| {frame_idx} | {rss_mb():.0f} |", flush=True)

        long_fps = run(tracker, SyntheticVideo(args.rss_frames), report)
        print(f"peak RSS (VmHWM) {rss_mb('VmHWM'):.0f} MB; {long_fps:.2f} frames/s over the long clip")


if __name__ == "__main__":
    main()
