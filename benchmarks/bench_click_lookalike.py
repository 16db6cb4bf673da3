"""Clicks beside a look-alike: how often a click on an object also selects a copy of it pasted beside it.

    .venv/bin/python benchmarks/bench_click_lookalike.py ../shared/train/davis2016_train/{bear,car-turn,...} \
        [--frames 0,10,20,30] [--gaps 12,24] [--clicks 3] [--set KEY=VALUE]

For each clip, frame and gap: the object's pixels, mirrored, are pasted `gap` px beside it
(`paste_mirrored_copy`, as the click tests do), and clicks follow the standard interactive protocol on the
object alone (the first deep inside it, each next one in the largest error). Prints, after each click count,
the mean IoU with the object, the mean share of the copy selected, and the cases where more than 5 % of the
copy is selected (the look-alike taken for the object). Session 45 chose on the six held-out DAVIS train clips
(bear, breakdance-flare, car-turn, flamingo, mallard-water, motorbike), frames 0 / 10 / 20 / 30, gaps 12 / 24.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import trackstudio.trackers  # noqa: F401  (allocator fix before torch allocates)
from trackstudio.trackers import Prompt
from trackstudio.trackers.registry import build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mask_quality import JpegFrames, judged_labels, load_ground_truth, parse_overrides  # noqa: E402

from trackstudio.trackers.mask.sam2_lite.click_train import next_click  # noqa: E402
from trackstudio.trackers.mask.sam2_lite.composite import paste_mirrored_copy  # noqa: E402
from trackstudio.trackers.types import mask_iou as iou  # noqa: E402

SELECTED_SHARE = 0.05  # more of the copy than this selected: the look-alike was taken for the object


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seqs", nargs="+", type=Path)
    ap.add_argument("--tracker", default="sam2-lite")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    ap.add_argument("--frames", default="0,10,20,30", help="comma-separated frames of each clip")
    ap.add_argument("--gaps", default="12,24", help="comma-separated gaps (px) between the object and its copy")
    ap.add_argument("--clicks", type=int, default=3)
    args = ap.parse_args()
    tracker = build(args.tracker, parse_overrides(args.set), device="cpu")
    rows = []  # per case: (clicks, 2) IoU with the object, share of the copy selected
    for seq in args.seqs:
        frames = JpegFrames(seq / "frames")
        labels = load_ground_truth(seq)[0]
        for frame_idx in (int(f) for f in args.frames.split(",")):
            if frame_idx >= len(frames):
                continue
            for label in judged_labels(labels[frame_idx]):
                for gap in (int(g) for g in args.gaps.split(",")):
                    pasted = paste_mirrored_copy(frames[frame_idx], labels[frame_idx] == label, gap)
                    if pasted is None:  # no room beside the object
                        continue
                    frame, target, copy = pasted
                    tracker.set_video([frame])
                    clicks, pred, row = [], np.zeros_like(target), []
                    for _ in range(args.clicks):
                        clicks.append(next_click(pred, target))
                        pred = tracker.add_prompt(0, label, Prompt(clicks=np.array(clicks, np.float32))).mask
                        row.append((iou(pred, target), (pred & copy).sum() / max(int(copy.sum()), 1)))
                    rows.append(row)
                    print(seq.name, frame_idx, label, gap, " ".join(f"{a:.3f}/{b:.3f}" for a, b in row), flush=True)
    if not rows:
        raise SystemExit("no case: every object filled its frame too much for a copy beside it")
    table = np.array(rows)  # (cases, clicks, 2)
    print(f"\n{len(rows)} cases\n\n| clicks | IoU with the object | share of the copy selected | cases over "
          f"{SELECTED_SHARE:.0%} of the copy |\n|---|---|---|---|")
    for count in range(args.clicks):
        shares = table[:, count, 1]
        print(f"| {count + 1} | {table[:, count, 0].mean():.3f} | {shares.mean():.3f} | "
              f"{int((shares > SELECTED_SHARE).sum())} |")


if __name__ == "__main__":
    main()
