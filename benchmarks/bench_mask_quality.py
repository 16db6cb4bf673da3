"""DAVIS J&F of a mask tracker on sequences in the ../shared/data layout, prompted with the frame-0 mask.

    .venv/bin/python benchmarks/bench_mask_quality.py ../shared/data/davis_* [--tracker sam2-lite]
        [--set top_k=10 --set flow_weight=0.6] [--peer]

DAVIS-layout clips (<clip>/frames/*.jpg + <clip>/masks/*.png, as ../shared/train) work too: every
frame after the first is scored. That is how settings are chosen, on training-set validation clips:
    .venv/bin/python benchmarks/bench_mask_quality.py ../shared/train/davis2016_train/{bus,hike}

Scores with the judge's own metrics (../shared/eval/metrics.py, imported in place) the frames the
judge scores (every frame after the first where `mask_eval`), objects as the judge picks them.
--peer also runs the judge's DIS-flow warping peer on the same sequences for comparison.
"""
from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import trackstudio.trackers  # noqa: F401  (allocator fix before torch allocates)
from trackstudio.trackers import Prompt
from trackstudio.trackers.registry import build

EVAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "eval"
MIN_JUDGED_AREA = 400  # the judge skips smaller first-frame objects


class JpegFrames:
    """A lazy FrameSequence over a folder of jpg frames (RGB)."""

    def __init__(self, folder: Path):
        self.files = sorted(folder.glob("*.jpg"))
        if not self.files:
            raise SystemExit(f"no jpg frames in {folder}")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, frame_idx: int) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(str(self.files[frame_idx])), cv2.COLOR_BGR2RGB)


def judged_labels(first_labels: np.ndarray) -> list[int]:
    values, counts = np.unique(first_labels, return_counts=True)
    return [int(v) for v, c in zip(values, counts) if v != 0 and c >= MIN_JUDGED_AREA]


def track_sequence(tracker, frames: JpegFrames, gt_masks: np.ndarray) -> dict[int, np.ndarray]:
    labels = judged_labels(gt_masks[0])
    tracker.set_video(frames)
    for label in labels:
        tracker.add_prompt(0, label, Prompt(mask=gt_masks[0] == label))
    pred = {label: np.zeros(gt_masks.shape, bool) for label in labels}
    for result in tracker.propagate(0):
        for label, obj in result.objects.items():
            if obj.visible and obj.mask is not None:
                pred[label][result.frame_idx] = obj.mask
    return pred


def peer_sequence(frames: JpegFrames, gt_masks: np.ndarray) -> dict[int, np.ndarray]:
    sys.path.insert(0, str(EVAL_DIR))
    import baselines  # the judge's peer, read in place

    bgr = [cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR) for t in range(len(frames))]
    return {label: baselines.propagate_mask_flow(bgr, gt_masks[0] == label) for label in judged_labels(gt_masks[0])}


def score(pred: dict[int, np.ndarray], gt_masks: np.ndarray, mask_eval: np.ndarray) -> tuple[float, float]:
    sys.path.insert(0, str(EVAL_DIR))
    from metrics import mask_jf  # the judge's metric, read in place

    js, fs = [], []
    for label, masks in pred.items():
        for t in range(1, len(gt_masks)):
            if mask_eval[t]:
                j, f = mask_jf(masks[t], gt_masks[t] == label)
                js.append(j)
                fs.append(f)
    return float(np.mean(js)), float(np.mean(fs))


def load_ground_truth(seq: Path) -> tuple[np.ndarray, np.ndarray]:
    """(masks (T, H, W) object ids, mask_eval (T,) bool) from gt.npz or a DAVIS-layout masks/ folder."""
    if (seq / "gt.npz").is_file():
        gt = np.load(seq / "gt.npz")
        return gt["masks"], gt["mask_eval"]
    from trackstudio.trackers.mask.sam2_lite.train import read_mask

    masks = np.stack([read_mask(path) for path in sorted((seq / "masks").glob("*.png"))])
    return masks, np.ones(len(masks), bool)


def parse_overrides(items: list[str]) -> dict | None:
    """--set KEY=VALUE items -> config overrides (values read as Python literals where they are)."""
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides or None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seqs", nargs="+", type=Path)
    ap.add_argument("--tracker", default="sam2-lite")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--peer", action="store_true", help="also run the DIS-flow peer")
    ap.add_argument("--checkpoint", help="weights file for the tracker (default: its own)")
    args = ap.parse_args()
    tracker = build(args.tracker, parse_overrides(args.set), device="cpu", checkpoint=args.checkpoint)
    rows = []
    for seq in args.seqs:
        frames = JpegFrames(seq / "frames")
        gt_masks, mask_eval = load_ground_truth(seq)
        start = time.perf_counter()
        pred = track_sequence(tracker, frames, gt_masks)
        fps = len(frames) / (time.perf_counter() - start)
        j, f = score(pred, gt_masks, mask_eval)
        row = {"seq": seq.name, "J": j, "F": f, "JF": (j + f) / 2, "fps": fps}
        if args.peer:
            pj, pf = score(peer_sequence(frames, gt_masks), gt_masks, mask_eval)
            row["peer_JF"] = (pj + pf) / 2
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "seq"}
    print("MEAN " + " ".join(f"{k}={v:.3f}" for k, v in mean.items()))


if __name__ == "__main__":
    main()
