"""Points that pass behind a still bar (a post, a pole): generated validation clips, no judged clip.

    python benchmarks/val_point_cover.py [--trackers point_transformer,lk] [--config '{"iters": 4}']
        [--threads 1]

On real video a point that passes behind something still (BADJA horsejump-low's poles, parkour's bollard)
tends to stay on it, reported visible. Each clip here is a textured square moving right over a textured
background, behind a still textured bar, then clear of it (the tests' covered-point clip, varied: 4 seeds x
3 speeds x 2 bars = 24 clips, the last two seeds' frames 1.5x larger). One point is queried at the square's
centre on frame 0. Per tracker:
- *covered hidden*: the share of frames with the point behind the bar that are reported hidden;
- *recovered*: the clips where, on the 8 frames from 3 frames after the point is clear of the bar, it is
  reported visible within 4 px (x the clip's scale) of the truth on every frame;
- *stuck*: the clips where on one of those frames it is reported visible over 16 px (x scale) off: the
  costliest error, a wrong label the user does not see.
`--trackers` entries may name weights (point_transformer=/path/point_tracker.pt); `--config` is for the first.
"""
from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np

HEIGHT, WIDTH, NUM_FRAMES = 240, 400, 40
BAR_X = 140  # the bar's left edge (px at scale 1)
SEEDS, SPEEDS = (0, 1, 2, 3), (4, 6, 8)  # px / frame of the square at scale 1
BARS = ((50, ("photo", "blobs", "noise")), (40, ("photo", "photo", "blobs")))  # width, textures: background, square, bar
JUDGED_AFTER = 8  # frames judged once the point is clear of the bar


def cover_clip(seed: int, speed: int, bar_width: int, kinds: tuple[str, str, str], scale: float):
    """frames (T of (H, W, 3) uint8), the square centre's track (T, 2) and whether it is in view (T,)."""
    from trackstudio.trackers.point.synthetic import make_texture

    rng = np.random.default_rng(seed)
    background = make_texture(rng, HEIGHT, WIDTH, kinds[0])
    square = make_texture(rng, 80, 80, kinds[1])
    bar = make_texture(rng, 160, bar_width, kinds[2])
    frames, track, in_view = [], [], []
    for t in range(NUM_FRAMES):
        frame = background.copy()
        x0 = 20 + speed * t
        frame[80:160, x0:x0 + 80] = square[:, :max(0, min(80, WIDTH - x0))]
        frame[40:200, BAR_X:BAR_X + bar_width] = bar
        centre = np.array([x0 + 40, 120], np.float32)
        frames.append(cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
                      if scale != 1 else frame)
        track.append(centre * scale)
        in_view.append(not BAR_X <= centre[0] < BAR_X + bar_width and centre[0] < WIDTH - 10)
    return frames, np.stack(track), np.array(in_view)


def cover_scores(tracker) -> dict[str, float]:
    from trackstudio.trackers import Prompt

    covered_hidden = covered = recovered = stuck = clips = 0
    for seed in SEEDS:
        scale = 1.0 if seed < 2 else 1.5
        for speed in SPEEDS:
            for bar_width, kinds in BARS:
                frames, track, in_view = cover_clip(seed, speed, bar_width, kinds, scale)
                tracker.set_video(frames)
                tracker.add_prompt(0, 1, Prompt(point=track[0]))
                results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
                behind = np.flatnonzero(~in_view)
                behind = behind[behind < np.flatnonzero(in_view)[-1]]  # not the frames after it leaves the view
                judged = [t for t in range(behind[-1] + 3, NUM_FRAMES) if in_view[t]][:JUDGED_AFTER]
                errors = np.array([np.linalg.norm(results[t].point - track[t]) for t in judged])
                shown = np.array([results[t].visible for t in judged])
                covered_hidden += sum(not results[t].visible for t in behind)
                covered += len(behind)
                recovered += bool(shown.all() and (errors < 4 * scale).all())
                stuck += bool((shown & (errors > 16 * scale)).any())
                clips += 1
    return {"covered_hidden": covered_hidden / covered, "recovered": recovered, "stuck": stuck, "clips": clips}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trackers", default="point_transformer,lk")
    parser.add_argument("--config", default="{}", help="JSON config overrides for the first tracker")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from trackstudio.trackers import registry

    torch.set_num_threads(args.threads)
    summary = {}
    for entry, tracker in registry.build_entries(args.trackers, json.loads(args.config), device="cpu"):
        summary[entry] = cover_scores(tracker)
        print(entry, json.dumps(summary[entry]), flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
