"""Generate procedural box-tracking clips (frames/ + masks/) for trackers/box/train_head.py.

    python scripts/gen_box_data.py --out /work/cache/boxhead/synth --num_clips 40 --seed 0

Clip i uses seed (seed, i), so the same command writes the same clips (trackers/box/synthetic_clips.py).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from trackstudio.trackers.box.synthetic_clips import generate_box_clip, write_box_clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num_clips", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for i in range(args.num_clips):
        frames, masks = generate_box_clip(np.random.default_rng([args.seed, i]))
        write_box_clip(frames, masks, f"{args.out}/synth_{i:05d}")
    print(f"wrote {args.num_clips} clips to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
