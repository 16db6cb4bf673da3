"""TAP-Vid figures (AJ, delta_avg, OA) of registered point trackers on judged sequences.

    python benchmarks/bench_point_quality.py ../shared/data/synth_07_0* [--trackers point_transformer,lk]
        [--config '{"iters": 6}'] [--checkpoint PATH]

Each sequence is `frames/*.jpg` + `gt.npz` (trajs_2d, visibs, point_eval, point_query). Every
judged point is prompted on its query frame and tracked forward, exactly as the judge does; the
figures come from the judge's own metrics module (../shared/eval/metrics.py, read in place).
Measurement only: nothing here tunes anything.

The project's procedural training clips (`frames/` + `anno.npz`, scripts/gen_point_data.py) are read
too: each point is queried on its first visible frame and judged on every later frame;
`--heldout ROOT` adds the validation split of ROOT as trackers/point/train.py makes it (the clips
where the tracker's settings may be chosen), `--max_points` keeps that many evenly spaced points.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = REPO.parent / "shared" / "eval"


def load_sequence(seq_dir: Path) -> tuple[list[np.ndarray], dict]:
    files = sorted((seq_dir / "frames").glob("*.jpg"))
    if not files:
        raise SystemExit(f"{seq_dir}: no frames/*.jpg")
    frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    if (seq_dir / "gt.npz").is_file():
        return frames, dict(np.load(seq_dir / "gt.npz"))
    return frames, procedural_gt(dict(np.load(seq_dir / "anno.npz")))


def procedural_gt(anno: dict) -> dict:
    """A training clip's anno.npz (trajs_2d (T, N, 2), visibs (T, N)) as judged ground truth: each
    point queried on its first visible frame (never visible: not judged), judged on every frame."""
    visibs = anno["visibs"].astype(bool)
    seen = visibs.any(0)
    query = np.where(seen, visibs.argmax(0), -1).astype(np.int32)
    return {"trajs_2d": anno["trajs_2d"], "visibs": visibs, "point_query": query,
            "point_eval": np.ones_like(visibs)}


def keep_points(gt: dict, max_points: int | None) -> dict:
    """At most max_points judged points, evenly spaced over the judged ones (deterministic)."""
    judged = np.flatnonzero(gt["point_query"] >= 0)
    if not max_points or len(judged) <= max_points:
        return gt
    keep = judged[np.linspace(0, len(judged) - 1, max_points).round().astype(int)]
    query = np.full_like(gt["point_query"], -1)
    query[keep] = gt["point_query"][keep]
    return {**gt, "point_query": query}


def heldout_clips(root: Path) -> list[Path]:
    """The validation clips of a training root, split as trackers/point/train.py splits it."""
    from trackstudio.trackers.point.train import list_root_videos
    from trackstudio.trackers.training import split_by_clip

    return split_by_clip(list_root_videos([str(root)], None)[0], 0.2, 0)[1]


def track_sequence(tracker, frames, gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompt every judged point on its query frame, propagate forward. Returns (judged point
    indices, xy (T, n, 2), visible (T, n))."""
    from trackstudio.trackers import Prompt

    points = np.flatnonzero(gt["point_query"] >= 0)
    T = len(frames)
    xy = np.full((T, len(points), 2), np.nan, np.float32)
    vis = np.zeros((T, len(points)), bool)
    tracker.set_video(frames)
    for k, n in enumerate(points):
        q = int(gt["point_query"][n])
        tracker.add_prompt(q, k, Prompt(point=gt["trajs_2d"][q, n]))
    start = int(gt["point_query"][points].min())
    for result in tracker.propagate(start):
        for k, obj in result.objects.items():
            xy[result.frame_idx, k] = obj.point
            vis[result.frame_idx, k] = obj.visible
    return points, xy, vis


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seqs", nargs="*", type=Path)
    parser.add_argument("--heldout", type=Path, action="append", default=[],
                        help="a training root (frames/ + anno.npz clips): add its validation split")
    parser.add_argument("--max_points", type=int, default=None, help="judge at most this many points per sequence")
    parser.add_argument("--trackers", default="point_transformer,lk")
    parser.add_argument("--config", default="{}", help="JSON config overrides for the first tracker")
    parser.add_argument("--checkpoint", default=None, help="weights for the first tracker")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not (EVAL_DIR / "metrics.py").is_file():
        raise SystemExit(f"the judge's metrics are not at {EVAL_DIR}")
    sys.path.insert(0, str(EVAL_DIR))
    from metrics import tapvid  # the judge's implementation, read in place

    import torch

    from trackstudio.trackers import registry

    torch.set_num_threads(args.threads)
    seqs = list(args.seqs) + [clip for root in args.heldout for clip in heldout_clips(root)]
    if not seqs:
        raise SystemExit("give sequences or --heldout ROOT")
    summary = {}
    for idx, name in enumerate(args.trackers.split(",")):
        config = json.loads(args.config) if idx == 0 else None
        tracker = registry.build(name, config, device="cpu", checkpoint=args.checkpoint if idx == 0 else None)
        scores, seconds, frames_done = [], 0.0, 0
        for seq in seqs:
            frames, gt = load_sequence(seq)
            gt = keep_points(gt, args.max_points)
            started = time.perf_counter()
            points, xy, vis = track_sequence(tracker, frames, gt)
            seconds += time.perf_counter() - started
            frames_done += len(frames)
            H, W = frames[0].shape[:2]
            score = tapvid(xy, vis, gt["trajs_2d"][:, points], gt["visibs"][:, points], (H, W),
                           gt["point_query"][points], gt["point_eval"][:, points])
            scores.append(score)
            print(f"{name} {seq.name} " + " ".join(f"{k}={v:.3f}" for k, v in score.items()), flush=True)
        summary[name] = {k: round(float(np.mean([s[k] for s in scores])), 4) for k in scores[0]}
        summary[name]["fps"] = round(frames_done / seconds, 2)
        print(f"{name} mean " + json.dumps(summary[name]), flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
