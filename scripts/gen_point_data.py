"""Generate procedural point-tracking clips in the Point Odyssey layout for train_point_tracker.py.

    python scripts/gen_point_data.py --out data/point_synth --num_clips 400 --seed 0

Writes <out>/clip_NNNNN/frames/frame_000000.jpg ... and anno.npz (trajs_2d, visibs); see
trackers/point/synthetic.py. The same seed always writes the same clips.
"""
from __future__ import annotations

import argparse
import sys
import time

from trackstudio.trackers.point.synthetic import ClipSpec, generate_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--num_clips", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=448)
    args = parser.parse_args(argv)
    spec = ClipSpec(num_frames=args.num_frames, height=args.height, width=args.width)
    start = time.time()

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"{done}/{total} clips, {time.time() - start:.0f} s", flush=True)

    generate_dataset(args.out, args.num_clips, args.seed, spec, progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
