"""Train sam2-lite's propagation network: the same command as
`python -m trackstudio.trackers.mask.sam2_lite.train` (see its --help)."""
import sys

from trackstudio.trackers.mask.sam2_lite.train import main

if __name__ == "__main__":
    sys.exit(main())
