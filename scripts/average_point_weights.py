"""Average exported point-tracker weights of one network (checkpoints of one training run):

    python scripts/average_point_weights.py OUT.pt IN1.pt IN2.pt [...]

The mean of several checkpoints along a run often generalises better than either (weight averaging,
as in SWA and model soups); session 39 shipped the mean of long3's steps 4,800 and 6,000 (point card)."""
import argparse
import sys
from pathlib import Path

from trackstudio.trackers.checkpoints import CheckpointError
from trackstudio.trackers.point.train import average_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("weights", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        average_weights(args.weights, args.out)
    except (CheckpointError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: the mean of {len(args.weights)} weight files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
