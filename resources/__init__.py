"""Files that ship with TrackStudio (sample clip, icons, trained weights).

Installed as `trackstudio.resources`, so both `trackstudio.app` and `trackstudio.trackers` find them
in a source checkout, an installed wheel and a frozen bundle alike.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """Absolute path of a shipped file, e.g. path("weights", "point_tracker.pt")."""
    return ROOT.joinpath(*parts)
