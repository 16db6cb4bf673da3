"""Point trackers on real video without point ground truth: the DAVIS clips' object masks.

    python benchmarks/bench_point_real.py ../shared/data/davis_* [--trackers point_transformer,lk]
        [--config '{"min_similarity": null}'] [--points 32]

`--trackers` entries may name weights: point_transformer=/path/point_tracker.pt.

On each clip, `--points` points are drawn (fixed seed) inside the object's mask on frame 0, eroded
by 5 px, and tracked to the end. Reported per tracker: **in-mask**, the share of points reported
visible that lie inside the object's mask (dilated by 4 px) on their frame, a bound on gross
failures (a point that slid off the object, onto an occluder or the background); **visible**, the
share of point-frames reported visible (DAVIS objects are mostly in view, so a tracker that hides
points it still has is penalised here). Neither measures sub-pixel precision; the synthetic judged
clips do that (bench_point_quality.py). Measurement only: nothing here tunes anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_clip(seq_dir: Path) -> tuple[list[np.ndarray], np.ndarray]:
    files = sorted((seq_dir / "frames").glob("*.jpg"))
    if not files:
        raise SystemExit(f"{seq_dir}: no frames/*.jpg")
    frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    masks = np.load(seq_dir / "gt.npz")["masks"]  # (T, H, W) object ids, 0 background
    return frames, masks


def score_clip(tracker, frames, masks, num_points: int, rng) -> tuple[float, float]:
    from trackstudio.trackers import Prompt

    inner = cv2.erode((masks[0] > 0).astype(np.uint8), np.ones((11, 11), np.uint8))
    ys, xs = np.nonzero(inner)
    chosen = rng.choice(len(xs), min(num_points, len(xs)), replace=False)
    tracker.set_video(frames)
    for obj_id, k in enumerate(chosen):
        tracker.add_prompt(0, obj_id, Prompt(point=np.array([xs[k], ys[k]], np.float32)))
    inside = visible = total = 0
    for result in tracker.propagate(0):
        if result.frame_idx == 0:
            continue
        near = cv2.dilate((masks[result.frame_idx] > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
        for obj in result.objects.values():
            total += 1
            if obj.visible:
                visible += 1
                x, y = np.round(obj.point).astype(int)
                inside += bool(0 <= x < near.shape[1] and 0 <= y < near.shape[0] and near[y, x])
    return inside / max(visible, 1), visible / max(total, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seqs", nargs="+", type=Path)
    parser.add_argument("--trackers", default="point_transformer,lk")
    parser.add_argument("--config", default="{}", help="JSON config overrides for the first tracker")
    parser.add_argument("--points", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from trackstudio.trackers import registry

    torch.set_num_threads(args.threads)
    summary = {}
    for name, tracker in registry.build_entries(args.trackers, json.loads(args.config), device="cpu"):
        rng = np.random.default_rng(0)  # the same points for every tracker
        scores = []
        for seq in args.seqs:
            frames, masks = load_clip(seq)
            scores.append(score_clip(tracker, frames, masks, args.points, rng))
            print(f"{name} {seq.name} in-mask={scores[-1][0]:.3f} visible={scores[-1][1]:.3f}", flush=True)
        in_mask, visible = np.mean(scores, axis=0)
        summary[name] = {"in_mask": round(float(in_mask), 3), "visible": round(float(visible), 3)}
        print(f"{name} mean " + json.dumps(summary[name]), flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
