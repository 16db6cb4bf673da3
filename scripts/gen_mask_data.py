"""Write composite mask-propagation training clips (trackers/mask/sam2_lite/composite.py) from
DAVIS-layout training clips:

    python scripts/gen_mask_data.py --source ../shared/train/davis2016_train --out /work/cache/masktrain/composite \
        --num_clips 60 --exclude bus,hike   # leave the validation clips out of the composites too

With --look_alikes, it writes instead one clip per source clip (every --frame_step-th frame) with the
object's mirrored copy pasted beside it on every frame (composite.paste_mirrored_copy; the mask is the
object alone): click-to-mask training data where a click must select one instance, not its twin.

With --zoomed, it writes one clip per source clip (every --frame_step-th frame) of the object's
surroundings enlarged, as the click network sees them when it zooms in (prompt_encoder.py): a square
around the object's box, 1.3-2.0x its longer side (at least 40 px), scaled to 480x480. Frames whose
square would be longer than 384 px are left out (the tracker does not zoom in there).

With --procedural, it writes the point tracker's procedural clips instead (no --source): textured
sprites under a moving camera, each surface repainted flat with probability --flat_share
(composite.procedural_clip), at --width x --height, with --bars up to that many thin bars crossing in
front of everything:

    python scripts/gen_mask_data.py --procedural --out /work/cache/masktrain/procedural --num_clips 40 \
        --num_frames 24 --width 640 --height 360 --flat_share 0.4 --seed 5
"""
from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np

from trackstudio.trackers.mask.sam2_lite.composite import (cut_object, make_clip, paste_mirrored_copy, procedural_clip,
                                                          write_clip)
from trackstudio.trackers.mask.sam2_lite.prompt_encoder import MIN_ZOOM
from trackstudio.trackers.mask.sam2_lite.tracker import Sam2LiteConfig
from trackstudio.trackers.mask.sam2_lite.train import list_clips, read_mask
from trackstudio.trackers.point.synthetic import ClipSpec


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def write_per_clip(clips, out, prefix: str, frame_step: int, make) -> int:
    """One clip per source clip, every frame_step-th frame: make(frame_path, mask) -> (frame, mask) or None
    (mask: the first object of multi-object clips)."""
    for n, clip in enumerate(clips):
        frames, masks = [], []
        pairs = zip(sorted((clip / "frames").glob("*.jpg")), sorted((clip / "masks").glob("*.png")))
        for frame_path, mask_path in list(pairs)[::frame_step]:
            made = make(frame_path, read_mask(mask_path) == 1)
            if made is not None:
                frames.append(made[0])
                masks.append(made[1])
        if frames:
            write_clip(out / f"{prefix}_{clip.name}", frames, masks)
        print(f"clip {n + 1}/{len(clips)} {clip.name}: {len(frames)} frames", flush=True)
    return 0


def look_alike(rng: np.random.Generator):
    def make(frame_path, mask):
        if mask.sum() < 400:
            return None
        pasted = paste_mirrored_copy(read_rgb(frame_path), mask, int(rng.integers(8, 64)), int(rng.integers(-10, 11)))
        return pasted if pasted is not None and pasted[1].sum() >= 400 else None
    return make


ZOOM_SIDE = Sam2LiteConfig.click_zoom_side
ZOOM_LONGEST = int(ZOOM_SIDE / MIN_ZOOM)  # regions longer than this are not zoomed in


def zoomed(rng: np.random.Generator):
    def make(frame_path, mask):
        if mask.sum() < 100:
            return None
        ys, xs = np.nonzero(mask)
        side = int(max(40, xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) * rng.uniform(1.3, 2.0))
        height, width = mask.shape
        if side > min(ZOOM_LONGEST, height, width):
            return None
        centre = np.array([xs.min() + xs.max(), ys.min() + ys.max()]) / 2 + rng.uniform(-0.1, 0.1, 2) * side
        x1 = int(np.clip(centre[0] - side / 2, 0, width - side))
        y1 = int(np.clip(centre[1] - side / 2, 0, height - side))
        frame = cv2.resize(read_rgb(frame_path)[y1:y1 + side, x1:x1 + side], (ZOOM_SIDE, ZOOM_SIDE),
                           interpolation=cv2.INTER_LINEAR)
        crop = cv2.resize(mask[y1:y1 + side, x1:x1 + side].astype(np.uint8), (ZOOM_SIDE, ZOOM_SIDE),
                          interpolation=cv2.INTER_NEAREST) > 0
        return frame, crop
    return make


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", action="append", default=[], help="DAVIS-layout folder of clips (repeatable)")
    p.add_argument("--out", required=True)
    p.add_argument("--num_clips", type=int, default=60)
    p.add_argument("--num_frames", type=int, default=24)
    p.add_argument("--exclude", default="", help="comma-separated clip names not to use")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--look_alikes", action="store_true", help="write look-alike clips (see above)")
    p.add_argument("--zoomed", action="store_true", help="write zoomed-in clips (see above)")
    p.add_argument("--frame_step", type=int, default=4, help="with --look_alikes / --zoomed: every this many frames")
    p.add_argument("--procedural", action="store_true", help="write procedural sprite clips (see above)")
    p.add_argument("--flat_share", type=float, default=0.4, help="with --procedural: share of surfaces painted flat")
    p.add_argument("--bars", type=int, default=0, help="with --procedural: up to this many thin bars in front")
    p.add_argument("--width", type=int, default=640, help="with --procedural: frame width")
    p.add_argument("--height", type=int, default=360, help="with --procedural: frame height")
    args = p.parse_args(argv)
    from pathlib import Path

    if args.procedural:
        rng = np.random.default_rng(args.seed)
        spec = ClipSpec(num_frames=args.num_frames, height=args.height, width=args.width, num_objects=(2, 5),
                        object_radius=(24, min(args.height, args.width) * 2 // 5), max_object_speed=9.0)
        for n in range(args.num_clips):
            write_clip(Path(args.out) / f"proc_{n:04d}", *procedural_clip(rng, spec, args.flat_share, args.bars))
            print(f"clip {n + 1}/{args.num_clips}", flush=True)
        return 0
    if not args.source:
        p.error("--source is required (except with --procedural)")

    excluded = {name for name in args.exclude.split(",") if name}
    clips = [c for c in list_clips(args.source) if c.name not in excluded]
    if args.look_alikes or args.zoomed:
        prefix, make = ("look", look_alike) if args.look_alikes else ("zoom", zoomed)
        return write_per_clip(clips, Path(args.out), prefix, args.frame_step, make(np.random.default_rng(args.seed)))
    sized = [c for c in clips if cv2.imread(str(sorted((c / "frames").glob("*.jpg"))[0])).shape[:2] == (480, 854)]
    if len(sized) < 3:
        print("error: need at least 3 source clips of 854x480", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    for n in range(args.num_clips):
        back, first, second = (sized[i] for i in rng.choice(len(sized), 3, replace=False))
        back_frames = sorted((back / "frames").glob("*.jpg"))
        step = int(rng.integers(1, 3))
        start = int(rng.integers(0, max(1, len(back_frames) - step * args.num_frames)))
        picks = back_frames[start::step][:args.num_frames]
        cutouts = []
        for source in (first, second):
            frame_paths = sorted((source / "frames").glob("*.jpg"))
            idx = int(rng.integers(len(frame_paths)))
            mask = read_mask(sorted((source / "masks").glob("*.png"))[idx]) > 0
            cutouts.append(cut_object(read_rgb(frame_paths[idx]), mask))
        if cutouts[0] is None:
            continue
        occluder = cutouts[1] if rng.random() < 0.6 else None
        frames, masks = make_clip(rng, [read_rgb(f) for f in picks], cutouts[0], occluder, leave=rng.random() < 0.25)
        write_clip(Path(args.out) / f"comp_{n:04d}", frames, masks)
        print(f"clip {n + 1}/{args.num_clips}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
