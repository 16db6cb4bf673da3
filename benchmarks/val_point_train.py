"""Point trackers on the TRAINING clips: where the point tracker's settings are chosen.

    python benchmarks/val_point_train.py [--train ../shared/train] [--trackers point_transformer,lk]
        [--config '{"min_similarity": null}'] [--points 24] [--clips 12 | --davis_clips bear,boat] [--backwards]

`--trackers` entries may name weights: point_transformer=/path/point_tracker.pt (to compare
trained weights with the shipped ones in one run).

Two measures, neither on a judged clip:
- **BADJA joints** (train/badja_points: animal joints on bear, dog-agility, horsejump-low): each
  joint is queried on the first annotated frame where it is visible and judged on the later
  annotated frames, with the TAP-Vid figures (AJ, delta_avg, OA; coordinates scaled to 256x256).
  With --backwards the clips play backwards: each joint is queried on the last annotated frame where
  it is visible and tracked to the start. The tracks start elsewhere, so this is a fresh sample of
  the same joints, which the forward figures stopped being once they had chosen settings.
- **DAVIS-train masks** (train/davis2016_train, the first `--clips` clips in name order, or the
  `--davis_clips` named; clips that trained the weights are no validation for them): `--points`
  points drawn (fixed seed) inside the object's eroded mask on frame 0 and tracked to the end;
  *in-mask* is the share of points reported visible that lie inside the object's mask (dilated by
  4 px), *visible* the share of point-frames reported visible, and *exit-hidden* the share of
  point-frames outside the frame or the dilated mask's reach that are reported hidden (points that
  leave the view must be reported hidden).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS_PX = (1, 2, 4, 8, 16)


def read_frames(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(folder.glob("*.jpg"))]


def read_mask(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return (image[..., 0] if image.ndim == 3 else image) > 127  # bear/masks/00077.png is grey + alpha


def read_masks(folder: Path) -> np.ndarray:
    return np.stack([read_mask(f) for f in sorted(folder.glob("*.png"))])


def track(tracker, frames, queries: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """queries [(frame_idx, (x, y))] -> points (T, N, 2), visible (T, N); forward from each query."""
    from trackstudio.trackers import Prompt

    tracker.set_video(frames)
    for obj_id, (frame_idx, point) in enumerate(queries):
        tracker.add_prompt(frame_idx, obj_id, Prompt(point=np.asarray(point, np.float32)))
    points = np.full((len(frames), len(queries), 2), np.nan, np.float32)
    visible = np.zeros((len(frames), len(queries)), bool)
    for result in tracker.propagate(min(f for f, _ in queries)):
        for obj_id, obj in result.objects.items():
            points[result.frame_idx, obj_id] = obj.point
            visible[result.frame_idx, obj_id] = obj.visible
    return points, visible


def badja_scores(tracker, train: Path, backwards: bool = False) -> dict[str, float]:
    pred_vis, gt_vis, dist_all = [], [], []
    for ann_file in sorted((train / "badja_points").glob("*.points_480p.json")):
        ann = json.loads(ann_file.read_text())
        frames = read_frames((ann_file.parent / ann["frames_dir"] / "").resolve())
        height, width = frames[0].shape[:2]
        annotated = [(int(f["frame"]), np.array(f["points_xy_480p"], np.float32), np.array(f["visible"], bool))
                     for f in ann["frames"]]
        if backwards:
            frames = frames[::-1]
            annotated = [(len(frames) - 1 - t, xy, vis) for t, xy, vis in annotated[::-1]]
        queries, joints = [], []
        for joint in range(len(annotated[0][1])):
            first = next(((t, xy[joint]) for t, xy, vis in annotated if vis[joint]), None)
            if first is not None and any(t > first[0] for t, _, _ in annotated):
                queries.append(first)
                joints.append(joint)
        points, visible = track(tracker, frames, queries)
        scale = np.array([256.0 / width, 256.0 / height])
        for n, (joint, (query_t, _)) in enumerate(zip(joints, queries)):
            for t, xy, vis in annotated:
                if t <= query_t:
                    continue
                dist = float(np.linalg.norm((points[t, n] - xy[joint]) * scale)) if vis[joint] else np.inf
                dist_all.append(dist)
                pred_vis.append(visible[t, n])
                gt_vis.append(vis[joint])
    dist, pred, gt = np.array(dist_all), np.array(pred_vis), np.array(gt_vis)
    jaccards, deltas = [], []
    for th in THRESHOLDS_PX:
        close = dist < th
        deltas.append(close[gt].mean())
        true_pos = (close & gt & pred).sum()
        jaccards.append(true_pos / max(true_pos + (gt & ~(close & pred)).sum() + (pred & ~(close & gt)).sum(), 1))
    return {"AJ": float(np.mean(jaccards)), "delta_avg": float(np.mean(deltas)), "OA": float((pred == gt).mean()),
            "judged": int(len(dist))}


def davis_scores(tracker, train: Path, num_points: int, clips: list[Path]) -> dict[str, float]:
    rng = np.random.default_rng(0)
    inside = visible_count = total = exit_total = exit_hidden = 0
    for seq in clips:
        frames, masks = read_frames(seq / "frames"), read_masks(seq / "masks")
        inner = cv2.erode(masks[0].astype(np.uint8), np.ones((11, 11), np.uint8))
        ys, xs = np.nonzero(inner)
        if len(xs) == 0:
            continue
        chosen = rng.choice(len(xs), min(num_points, len(xs)), replace=False)
        points, visible = track(tracker, frames, [(0, np.array([xs[k], ys[k]])) for k in chosen])
        height, width = masks.shape[1:]
        for t in range(1, len(frames)):
            near = cv2.dilate(masks[t].astype(np.uint8), np.ones((9, 9), np.uint8))
            # where the object's mask is empty, every point on it has left the view or is covered
            gone = not masks[t].any()
            for n in range(len(chosen)):
                x, y = np.round(points[t, n]).astype(int)
                in_frame = 0 <= x < width and 0 <= y < height
                total += 1
                if gone or not in_frame:
                    exit_total += 1
                    exit_hidden += not visible[t, n]
                if visible[t, n]:
                    visible_count += 1
                    inside += bool(in_frame and near[y, x])
    return {"in_mask": inside / max(visible_count, 1), "visible": visible_count / max(total, 1),
            "exit_hidden": exit_hidden / exit_total if exit_total else float("nan"), "exit_frames": exit_total}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=REPO.parent / "shared" / "train")
    parser.add_argument("--trackers", default="point_transformer,lk")
    parser.add_argument("--config", default="{}", help="JSON config overrides for the first tracker")
    parser.add_argument("--points", type=int, default=24)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--davis_clips", default=None, help="comma-separated DAVIS-train clips (instead of --clips)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backwards", action="store_true", help="BADJA clips played backwards (see above)")
    args = parser.parse_args(argv)
    import torch

    from trackstudio.trackers import registry

    torch.set_num_threads(args.threads)
    davis = sorted(p for p in (args.train / "davis2016_train").iterdir() if p.is_dir())
    if args.davis_clips:
        named = {name.strip() for name in args.davis_clips.split(",") if name.strip()}
        missing = named - {p.name for p in davis}
        if missing:
            parser.error(f"--davis_clips: no such clips {sorted(missing)}")
        davis = [p for p in davis if p.name in named]
    else:
        davis = davis[:args.clips]
    summary = {}
    for entry, tracker in registry.build_entries(args.trackers, json.loads(args.config), device="cpu"):
        summary[entry] = {"badja": badja_scores(tracker, args.train, args.backwards),
                          "davis_train": davis_scores(tracker, args.train, args.points, davis)}
        print(entry, json.dumps(summary[entry]), flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
