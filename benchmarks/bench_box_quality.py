"""Box tracking quality on the judged clips, scored with the judge's own metrics.

    .venv/bin/python benchmarks/bench_box_quality.py ../shared/data/davis_* ../shared/data/synth_* \
        --tracker siamfc-effnet [--config '{"update_interval": 10}'] [--checkpoint W.pt] [--peer nanotrack]

Prompts every box object with its first-frame ground-truth box (as run_eval.py does), tracks
forward and prints success AUC / precision@20px per sequence and their means (one JSON line).
The metrics come from ../shared/eval (read in place, never copied).

Sequences are judged folders (frames/ + gt.npz) or training clips (frames/ + masks/, as in
../shared/train and scripts/gen_box_data.py: the mask's tight box is the truth, an empty mask means
absent), e.g. the head's held-out clips (`--heldout`: the validation split of train_head.py).
Besides AUC it counts, over frames where the target is absent, the share reported not visible
("absent_hidden"; judged AUC ignores those frames), and, over present frames, the share reported
visible ("present_shown").
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_EVAL = Path(os.environ.get("TRACKSTUDIO_SHARED", REPO.parent / "shared")) / "eval"


def load_sequence(seq_dir: Path) -> tuple[list[np.ndarray], dict]:
    files = sorted((seq_dir / "frames").glob("*.jpg"))
    frames = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    if (seq_dir / "gt.npz").is_file():
        return frames, dict(np.load(seq_dir / "gt.npz"))
    from trackstudio.trackers.box.train_head import clip_boxes

    boxes = clip_boxes(seq_dir)[:, None]  # (T, 1, 4), NaN where absent
    return frames, {"boxes": boxes, "box_present": ~np.isnan(boxes[..., 0])}


def is_sequence(seq_dir: Path) -> bool:
    return (seq_dir / "gt.npz").is_file() or ((seq_dir / "frames").is_dir() and (seq_dir / "masks").is_dir())


def judged_boxes(gt: dict) -> list[int]:
    return [k for k in range(gt["boxes"].shape[1]) if not np.isnan(gt["boxes"][0, k, 0])]


def track_project(frames, gt, name: str, config: dict, checkpoint: str | None = None) -> tuple[list[np.ndarray], int]:
    from trackstudio.trackers import Prompt, registry

    tracker = registry.build(name, config=config, device="cpu", checkpoint=checkpoint)
    tracker.set_video(frames)
    objects = judged_boxes(gt)
    for k in objects:
        tracker.add_prompt(0, k + 1, Prompt(box=gt["boxes"][0, k]))
    boxes = {k: np.full((len(frames), 4), np.nan, np.float32) for k in objects}
    steps = 0
    for result in tracker.propagate(0):
        for obj_id, obj in result.objects.items():
            if obj.visible and obj.box is not None:
                boxes[obj_id - 1][result.frame_idx] = obj.box
        steps += len(result.objects) if result.frame_idx else 0
    return [boxes[k] for k in objects], steps


def heldout_clips(roots: list[Path]) -> list[Path]:
    """The validation clips of the head's training split (train_head.split_clips) under these roots."""
    from trackstudio.trackers.box.train_head import list_clips, split_clips

    return split_clips(list_clips([str(r) for r in roots]))[1]


def track_peer(frames, gt, name: str) -> tuple[list[np.ndarray], int]:
    import baselines  # from ../shared/eval

    bgr = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in frames]
    objects = judged_boxes(gt)
    return [baselines.track_boxes(bgr, gt["boxes"][0, k], name) for k in objects], len(objects) * (len(frames) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seqs", nargs="*", type=Path)
    parser.add_argument("--heldout", type=Path, action="append", default=[],
                        help="training data root (repeat as in train_head.py): judge its held-out clips")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--tracker", help="registered box tracker name")
    group.add_argument("--peer", help="a peer from ../shared/eval/baselines.py (csrt, nanotrack, vittrack)")
    parser.add_argument("--config", default="{}", help="JSON dict of tracker config overrides")
    parser.add_argument("--checkpoint", default=None, help="weights for --tracker (default: the shipped ones)")
    args = parser.parse_args()
    sys.path.insert(0, str(SHARED_EVAL))
    from metrics import box_success  # the judge's metric

    aucs, precs, total_steps, total_secs = [], [], 0, 0.0
    hidden, shown = [0, 0], [0, 0]  # (reported so, frames)
    seqs = list(args.seqs) + (heldout_clips(args.heldout) if args.heldout else [])
    for seq_dir in seqs:
        if not is_sequence(seq_dir):
            continue
        frames, gt = load_sequence(seq_dir)
        start = time.perf_counter()
        if args.tracker:
            boxes, steps = track_project(frames, gt, args.tracker, json.loads(args.config), args.checkpoint)
        else:
            boxes, steps = track_peer(frames, gt, args.peer)
        secs = time.perf_counter() - start
        seq_auc, seq_prec = [], []
        for pred, k in zip(boxes, judged_boxes(gt)):
            present = gt["box_present"][:, k].copy()
            present[0] = False
            absent = ~gt["box_present"][:, k]
            reported = ~np.isnan(pred[:, 0])
            hidden[0] += int((absent & ~reported).sum())
            hidden[1] += int(absent.sum())
            shown[0] += int((present & reported).sum())
            shown[1] += int(present.sum())
            if present.any():
                auc, prec = box_success(pred, gt["boxes"][:, k], present)
                seq_auc.append(auc)
                seq_prec.append(prec)
        aucs.append(float(np.mean(seq_auc)))
        precs.append(float(np.mean(seq_prec)))
        total_steps += steps
        total_secs += secs
        print(f"{seq_dir.name:22s} auc={aucs[-1]:.3f} prec20={precs[-1]:.3f} "
              f"obj-fps={steps / max(secs, 1e-9):.1f}", flush=True)
    print(json.dumps({"tracker": args.tracker or args.peer, "config": json.loads(args.config),
                      "checkpoint": args.checkpoint,
                      "box_auc": round(float(np.mean(aucs)), 4), "box_prec20": round(float(np.mean(precs)), 4),
                      "absent_hidden": round(hidden[0] / max(hidden[1], 1), 3), "absent_frames": hidden[1],
                      "present_shown": round(shown[0] / max(shown[1], 1), 3),
                      "object_fps": round(total_steps / max(total_secs, 1e-9), 1)}))


if __name__ == "__main__":
    main()
