"""Generate procedural point-tracking clips in the Point Odyssey layout for train_point_tracker.py.

    python scripts/gen_point_data.py --out data/point_synth --num_clips 400 --seed 0

Writes <out>/clip_NNNNN/frames/frame_000000.jpg ... and anno.npz (trajs_2d, visibs); see
trackers/point/synthetic.py. The same seed always writes the same clips. With --footage ROOT (DAVIS-layout
clips, e.g. ../shared/train/davis2016_train), backgrounds are real frames and objects real cut-outs.
"""
from __future__ import annotations

import argparse
import sys
import time

from trackstudio.trackers.point.synthetic import ClipSpec, Footage, generate_dataset


def _names(text: str) -> set[str]:
    return {name for name in text.split(",") if name}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--num_clips", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_frames", type=int, default=24)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--brightness_drift", type=float, default=ClipSpec.brightness_drift,
                        help="jitter of the global brightness's random walk per frame (it adds up: over 48 frames the "
                             "default can darken a clip to black)")
    parser.add_argument("--object_bend", type=float, default=0.0,
                        help="objects also bend by up to this share of their size (under 0.159; 0: rigid)")
    parser.add_argument("--scene_bars", type=int, default=0,
                        help="up to this many bars (posts, poles) fixed in the scene in front of the objects per clip")
    parser.add_argument("--footage", action="append", default=[],
                        help="DAVIS-layout clips (<clip>/frames, <clip>/masks) to take backgrounds and objects from")
    parser.add_argument("--footage_only", default=None, help="comma-separated clip names: only these of --footage")
    parser.add_argument("--footage_exclude", default="", help="comma-separated clip names to leave out of --footage")
    args = parser.parse_args(argv)
    spec = ClipSpec(num_frames=args.num_frames, height=args.height, width=args.width,
                    brightness_drift=args.brightness_drift, object_bend=args.object_bend,
                    scene_bars=args.scene_bars)
    start = time.time()

    def progress(done: int, total: int) -> None:
        if done % 20 == 0 or done == total:
            print(f"{done}/{total} clips, {time.time() - start:.0f} s", flush=True)

    footage = (Footage(args.footage, None if args.footage_only is None else _names(args.footage_only),
                       _names(args.footage_exclude)) if args.footage else None)
    generate_dataset(args.out, args.num_clips, args.seed, spec, progress, footage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
