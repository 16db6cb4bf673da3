"""Click-to-mask on the first frame of each DAVIS clip, prompts derived from the ground truth.

    .venv/bin/python benchmarks/bench_click_to_mask.py ../shared/data/davis_* [--tracker sam2-lite]
        [--set clicks=grabcut] [--frames 0,15,30]

DAVIS-layout clips (<clip>/frames + masks/, as ../shared/train) work too: that is where settings
and weights are chosen (the validation clips of the training split), e.g.
    .venv/bin/python benchmarks/bench_click_to_mask.py ../shared/train/davis2016_train/{bear,flamingo} --frames 0,15,30

For every judged object: a box prompt (the ground truth's tight box), then 1..5 clicks placed by
the standard interactive protocol (each next click at the interior point of the largest error
region farthest from its boundary; positive on a miss, negative on a false alarm), and OpenCV
GrabCut given the same box (5 iterations, full resolution) as the reference. Prints the mean IoU
of each and the latency of one prompt with the frame's features already cached (the first prompt
on a frame also encodes it; that time is shown apart).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import trackstudio.trackers  # noqa: F401  (allocator fix before torch allocates)
from trackstudio.trackers import Prompt, mask_to_box
from trackstudio.trackers.registry import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mask_quality import JpegFrames, judged_labels, load_ground_truth, parse_overrides  # noqa: E402

from trackstudio.trackers.mask.sam2_lite.click_train import next_click  # noqa: E402
from trackstudio.trackers.types import mask_iou as iou  # noqa: E402

CLICK_COUNTS = (1, 3, 5)


def grabcut_box(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.round(box).astype(int)
    labels = np.zeros(frame.shape[:2], np.uint8)
    cv2.grabCut(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), labels, (x1, y1, x2 - x1, y2 - y1), np.zeros((1, 65)),
                np.zeros((1, 65)), 5, cv2.GC_INIT_WITH_RECT)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


class OneFrame:
    def __init__(self, frame: np.ndarray):
        self.frame = frame

    def __len__(self) -> int:
        return 1

    def __getitem__(self, frame_idx: int) -> np.ndarray:
        if frame_idx != 0:
            raise IndexError(frame_idx)
        return self.frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seqs", nargs="+", type=Path)
    ap.add_argument("--tracker", default="sam2-lite")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--frames", default="0", help="comma-separated frames of each clip to click on")
    args = ap.parse_args()
    tracker = build(args.tracker, parse_overrides(args.set), device="cpu")
    scores: dict[str, list[float]] = {}
    latency: dict[str, list[float]] = {"encode + first prompt": [], "prompt (cached features)": []}
    for seq, frame_idx in ((seq, int(f)) for seq in args.seqs for f in args.frames.split(",")):
        frames = JpegFrames(seq / "frames")
        if frame_idx >= len(frames):
            continue
        frame = frames[frame_idx]
        gt_labels = load_ground_truth(seq)[0][frame_idx]
        for label in judged_labels(gt_labels):
            gt = gt_labels == label
            box = mask_to_box(gt)
            tracker.set_video(OneFrame(frame))

            def prompt(p: Prompt, first: bool = False) -> np.ndarray:
                start = time.perf_counter()
                mask = tracker.add_prompt(0, label, p).mask
                latency["encode + first prompt" if first else "prompt (cached features)"].append(
                    time.perf_counter() - start)
                return mask

            row = {"box": iou(prompt(Prompt(box=box), first=True), gt)}
            start = time.perf_counter()
            row["GrabCut box (reference)"] = iou(grabcut_box(frame, box), gt)
            latency.setdefault("GrabCut box (reference)", []).append(time.perf_counter() - start)
            clicks, pred = [], np.zeros_like(gt)
            for count in range(1, max(CLICK_COUNTS) + 1):
                clicks.append(next_click(pred, gt))
                pred = prompt(Prompt(clicks=np.array(clicks, np.float32)))
                if count in CLICK_COUNTS:
                    row[f"{count} click{'s' if count > 1 else ''}"] = iou(pred, gt)
            for key, value in row.items():
                scores.setdefault(key, []).append(value)
            print(seq.name, frame_idx, label, " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    print("\n| prompt | mean IoU |\n|---|---|")
    for key, values in scores.items():
        print(f"| {key} | {np.mean(values):.3f} |")
    print("\n| step | mean latency (ms) | max (ms) |\n|---|---|---|")
    for key, values in latency.items():
        print(f"| {key} | {1000 * np.mean(values):.0f} | {1000 * np.max(values):.0f} |")


if __name__ == "__main__":
    main()
