"""Box tracking quality on TRAINING clips, one object or several tracked together (for choosing
settings; the judged clips in ../shared/data are never used here).

    .venv/bin/python benchmarks/val_box_train.py ../shared/train/davis2016_train/{bear,bus} \
        ../shared/train/davis2017_lowres/schoolgirls [--tracker siamfc-effnet] [--config '{...}'] \
        [--extra 9] [--frames 40]

Every object of a clip (the mask's ids: a binary mask is one object, a palette mask one per id) is
prompted with its tight first-frame mask box and tracked forward, all objects of the clip together.
With --extra N, N more objects are added: copies of the first object's box moved over the frame
(as benchmarks/bench_box_speed.py does), tracked but not scored, so that a one-object clip runs
through the many-object path. Scores per object: success AUC (the judge's metric) and mean IoU over
the frames where it is present (a frame it is reported not visible on scores IoU 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRACKSTUDIO_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_box_speed import object_boxes  # noqa: E402


def _labels(mask: Image.Image) -> np.ndarray:
    """(H, W) object ids of a mask: a palette PNG's indices, else (grey 0/255, grey + alpha) 0 / 1."""
    if mask.mode == "P":
        return np.array(mask)
    return (np.array(mask.convert("L")) > 0).astype(np.uint8)


def object_tracks(clip: Path) -> dict[int, np.ndarray]:
    """{object id: (T, 4) tight mask boxes [x1, y1, x2, y2], NaN where absent} of a clip's masks."""
    paths = sorted((clip / "masks").glob("*.png"))
    labels = np.stack([_labels(Image.open(p)) for p in paths])  # (T, H, W)
    ids = [int(v) for v in np.unique(labels[0]) if v != 0]
    tracks = {}
    for obj_id in ids:
        boxes = np.full((len(paths), 4), np.nan, np.float32)
        for t, frame_labels in enumerate(labels):
            ys, xs = np.nonzero(frame_labels == obj_id)
            if len(xs):
                boxes[t] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        tracks[obj_id] = boxes
    return tracks


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, 4) x (T, 4) -> (T,) IoU; NaN predictions score 0."""
    low = np.maximum(pred[:, :2], gt[:, :2])
    high = np.minimum(pred[:, 2:], gt[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    union = np.prod(pred[:, 2:] - pred[:, :2], axis=1) + np.prod(gt[:, 2:] - gt[:, :2], axis=1) - inter
    return np.nan_to_num(inter / np.maximum(union, 1e-9), nan=0.0)


def track_clip(clip: Path, tracker_name: str, config: dict, extra: int, max_frames: int) -> dict[int, dict]:
    from trackstudio.trackers import Prompt, registry

    sys.path.insert(0, str(SHARED / "eval"))
    from metrics import box_success  # the judge's metric

    files = sorted((clip / "frames").glob("*.jpg"))[:max_frames or None]
    frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    tracks = {obj_id: boxes[:len(frames)] for obj_id, boxes in object_tracks(clip).items()}
    tracker = registry.build(tracker_name, config=config, device="cpu")
    tracker.set_video(frames)
    prompts = {obj_id: boxes[0] for obj_id, boxes in tracks.items()}
    first = next(iter(prompts.values()))
    for k, box in enumerate(object_boxes(first, extra + 1, frames[0].shape[:2])[1:]):
        prompts[1000 + k] = box
    for obj_id, box in prompts.items():
        tracker.add_prompt(0, obj_id, Prompt(box=box))
    pred = {obj_id: np.full((len(frames), 4), np.nan, np.float32) for obj_id in tracks}
    for result in tracker.propagate(0):
        for obj_id, obj in result.objects.items():
            if obj_id in pred and obj.visible and obj.box is not None:
                pred[obj_id][result.frame_idx] = obj.box
    scores = {}
    for obj_id, gt in tracks.items():
        present = ~np.isnan(gt[:, 0])
        present[0] = False
        auc, _ = box_success(pred[obj_id], gt, present)
        miou = float(box_iou(pred[obj_id][present], gt[present]).mean())
        scores[obj_id] = {"auc": round(auc, 4), "miou": round(miou, 4)}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clips", nargs="+", type=Path, help="training clip folders (frames/ + masks/)")
    parser.add_argument("--tracker", default="siamfc-effnet")
    parser.add_argument("--config", default="{}", help="JSON dict of tracker config overrides")
    parser.add_argument("--extra", type=int, default=0, help="unscored extra objects tracked alongside")
    parser.add_argument("--frames", type=int, default=0, help="track only the first N frames (0: all)")
    args = parser.parse_args()
    judged = (SHARED / "data").resolve()
    if any(judged in clip.resolve().parents for clip in args.clips):
        parser.error("judged clips (../shared/data) are not for choosing settings: pass training clips")
    config = json.loads(args.config)
    aucs, mious = [], []
    for clip in args.clips:
        scores = track_clip(clip, args.tracker, config, args.extra, args.frames)
        for obj_id, s in scores.items():
            aucs.append(s["auc"])
            mious.append(s["miou"])
        print(f"{clip.name:22s} " + " ".join(f"obj{k}: auc={s['auc']:.3f} miou={s['miou']:.3f}"
                                            for k, s in scores.items()), flush=True)
    print(json.dumps({"tracker": args.tracker, "config": config, "extra": args.extra, "objects": len(aucs),
                      "mean_auc": round(float(np.mean(aucs)), 4), "mean_miou": round(float(np.mean(mious)), 4)}))


if __name__ == "__main__":
    main()
