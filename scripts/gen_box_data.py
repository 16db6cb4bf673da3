"""Generate procedural box-tracking clips (frames/ + masks/) for trackers/box/train_head.py.

    python scripts/gen_box_data.py --out /work/cache/boxhead/synth --num_clips 40 --seed 0
    python scripts/gen_box_data.py --out /work/cache/boxhead/synth_large --num_clips 20 --seed 1 \
        --width 672 --height 384 --object_scale 1.5   # larger frames and targets
    python scripts/gen_box_data.py --out /work/cache/boxhead/sprites --num_clips 20 --seed 2 \
        --sprites --width 640 --height 360 --object_scale 1.4 --num_frames 48

--sprites writes the point tracker's procedural clips instead (several sprites that turn, grow or
shrink and cover one another), as frames/ + gt.npz (the judge's layout: boxes (T, K, 4), box_present
(T, K), masks (T, H, W) object ids, mask_eval (T,)).

Clip i uses seed (seed, i), so the same command writes the same clips (trackers/box/synthetic_clips.py).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from trackstudio.trackers.box.synthetic_clips import (generate_box_clip, generate_sprite_clip, write_box_clip,
                                                      write_sprite_clip)
from trackstudio.trackers.point.synthetic import ClipSpec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_clips", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--object_scale", type=float, default=1.0,
                        help="target radius: 18-45 px times this (sprites: 20-80 px times this)")
    parser.add_argument("--sprites", action="store_true", help="several turning sprites per clip, gt.npz boxes")
    parser.add_argument("--num_frames", type=int, default=30)
    args = parser.parse_args(argv)
    for i in range(args.num_clips):
        rng = np.random.default_rng([args.seed, i])
        if args.sprites:
            radius = tuple(int(round(r * args.object_scale)) for r in ClipSpec.object_radius)
            # a quarter of the point clips' brightness drift: over 48 frames theirs darkens some clips to black
            spec = ClipSpec(num_frames=args.num_frames, height=args.height, width=args.width, object_radius=radius,
                            brightness_drift=0.001)
            write_sprite_clip(*generate_sprite_clip(rng, spec), f"{args.out}/sprites_{i:05d}")
            continue
        frames, masks = generate_box_clip(rng, num_frames=args.num_frames, height=args.height, width=args.width,
                                          object_scale=args.object_scale)
        write_box_clip(frames, masks, f"{args.out}/synth_{i:05d}")
    print(f"wrote {args.num_clips} clips to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
