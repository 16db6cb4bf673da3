"""Average exported weights of one network: the point tracker's, sam2-lite's propagation or click network's
(checkpoints of one training run, or stages trained one from another):

    python scripts/average_weights.py OUT.pt IN1.pt IN2.pt [...] [--shares 3 1 ...]

The mean of several checkpoints along a run often generalises better than either (weight averaging,
as in SWA and model soups); session 39 shipped the mean of long3's steps 4,800 and 6,000, session 40 that
mean and long5 with shares 3 and 1 (point card); session 47 the mean of sam2-lite's stages 2 and 6 as
siamfc-mask's mask weights (resources/weights/sam2_lite_propagation.md); session 48 tried click-network
means (resources/weights/sam2_lite_clicks.md)."""
import argparse
import sys
from pathlib import Path

from trackstudio.trackers.checkpoints import CheckpointError
from trackstudio.trackers.training import average_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("weights", type=Path, nargs="+")
    parser.add_argument("--shares", type=float, nargs="+", default=None,
                        help="each weight file's share of the mean, in their order (default: equal)")
    args = parser.parse_args(argv)
    try:
        average_weights(args.weights, args.out, args.shares)
    except (CheckpointError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    shares = "" if args.shares is None else f" with shares {' '.join(f'{share:g}' for share in args.shares)}"
    print(f"wrote {args.out}: the mean of {len(args.weights)} weight files{shares}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
