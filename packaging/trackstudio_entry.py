"""Entry point of the frozen TrackStudio bundle: the same `trackstudio` command as the wheel installs."""
import multiprocessing
import sys

from trackstudio.app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app must not re-run main() in spawned workers
    sys.exit(main())
