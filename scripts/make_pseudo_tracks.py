"""Pseudo-label real clips with object masks for the point tracker's training (trackers/point/pseudo.py).

    python scripts/make_pseudo_tracks.py --clips_root ../shared/train/davis2016_train \
        --out /work/point_data/davis_pseudo [--num_points 48 --fb_max_px 4 --height 256 --directions forward,backward]

Tracks points drawn inside each clip's object mask with the current point tracker, keeps the tracks
that are forward-backward consistent and stay on the object, and writes <out>/<clip>/frames + anno.npz
for `train_point_tracker.py --data_root`. The BADJA clips (bear, dog-agility, horsejump-low) are
validation: they are left out unless --exclude says otherwise. A clip whose anno.npz exists is skipped
(rerun to finish an interrupted run).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

BADJA_CLIPS = "bear,dog-agility,horsejump-low"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips_root", required=True, help="DAVIS-layout clips: <clip>/frames/*.jpg + masks/*.png")
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--exclude", default=BADJA_CLIPS, help="comma-separated clips to leave out (validation)")
    parser.add_argument("--tracker", default="point_transformer")
    parser.add_argument("--checkpoint", default=None, help="the tracker's weights (default: the shipped ones)")
    parser.add_argument("--num_points", type=int, default=48, help="queries per clip and direction")
    parser.add_argument("--track_height", type=int, default=0, help="frames are tracked at this height (0: as stored)")
    parser.add_argument("--height", type=int, default=256, help="frames are written at this height (0: as tracked)")
    parser.add_argument("--max_frames", type=int, default=0, help="use only each clip's first N frames (0: all)")
    parser.add_argument("--directions", default="forward,backward",
                        help="forward: queries on the first frame; backward: on the last")
    parser.add_argument("--fb_max_px", type=float, default=4.0, help="in pixels of the tracked frames")
    parser.add_argument("--dilate_px", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from trackstudio.trackers import registry
    from trackstudio.trackers.point.pseudo import PseudoSpec, merge, pseudo_tracks, read_clip, write_pseudo_clip
    from trackstudio.trackers.training import DataError, list_davis_clips

    torch.set_num_threads(args.threads)
    directions = [d.strip() for d in args.directions.split(",") if d.strip()]
    if not directions or set(directions) - {"forward", "backward"}:
        print(f"error: --directions takes forward and/or backward, got {args.directions!r}", file=sys.stderr)
        return 2
    excluded = {name.strip() for name in args.exclude.split(",") if name.strip()}
    try:
        clips = [c for c in list_davis_clips([args.clips_root]) if c.name not in excluded]
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tracker = registry.build(args.tracker, device="cpu", checkpoint=args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for idx, clip in enumerate(clips):
        if (out / clip.name / "anno.npz").is_file():
            continue
        frames, masks = read_clip(clip, args.track_height or None)
        if args.max_frames:
            frames, masks = frames[:args.max_frames], masks[:args.max_frames]
        rng = np.random.default_rng([args.seed, idx])
        parts = [pseudo_tracks(tracker, frames, masks, PseudoSpec(num_points=args.num_points, fb_max_px=args.fb_max_px,
                                                                  dilate_px=args.dilate_px,
                                                                  reverse=direction == "backward"), rng)
                 for direction in directions]
        tracks = merge(parts)
        if tracks.trajs.shape[1]:  # a clip without a kept track has nothing to train on
            write_pseudo_clip(out / clip.name, frames, tracks, args.height or None)
        report = {"clip": clip.name, "written": bool(tracks.trajs.shape[1]), "frames": len(frames), "queries": tracks.num_queries, "kept": tracks.trajs.shape[1],
                  "dropped_fb": tracks.dropped_fb, "dropped_off_mask": tracks.dropped_off_mask,
                  "dropped_short": tracks.dropped_short, "visible": int(tracks.visibs.sum()),
                  "hidden": int((tracks.valid & ~tracks.visibs).sum()), "unknown": int((~tracks.valid).sum()),
                  "elapsed_s": round(time.time() - started, 1)}
        print(json.dumps(report), flush=True)
    print(f"{len(clips)} clips in {args.out}, {time.time() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
