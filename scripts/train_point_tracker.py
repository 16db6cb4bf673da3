"""Train the point tracker: the same command as `python -m trackers.point.train` (see its --help)."""
import sys

from trackstudio.trackers.point.train import main

if __name__ == "__main__":
    sys.exit(main())
