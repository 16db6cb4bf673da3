"""Train the box refinement + presence head: the same command as
`python -m trackstudio.trackers.box.train_head` (see its --help)."""
import sys

from trackstudio.trackers.box.train_head import main

if __name__ == "__main__":
    sys.exit(main())
