"""Train sam2-lite's click-to-mask network: the same command as
`python -m trackstudio.trackers.mask.sam2_lite.click_train` (see its --help)."""
import sys

from trackstudio.trackers.mask.sam2_lite.click_train import main

if __name__ == "__main__":
    sys.exit(main())
