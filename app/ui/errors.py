"""Turn exceptions into messages that say what went wrong and what to do next."""
from __future__ import annotations

import re

from trackstudio.app.model import FormatError
from trackstudio.app.video import VideoError


def _checkpoint_error_type() -> type[Exception] | None:
    try:
        from trackstudio.trackers.checkpoints import CheckpointError
    except ImportError:  # the checkpoint manager is optional for classical-only installs
        return None
    return CheckpointError


# the library and the command line name their own ways to supply weights; the window has Track > Models
_IMPORT = "import it with Track > Models… > Import file…"
_CLI_HINTS = ((re.compile(r";? or fetch it elsewhere and run `trackstudio models import [^`]*`"), ""),
              (re.compile(r"run `trackstudio models import [^`]*`"), _IMPORT),
              (re.compile(r",? or pass --checkpoint \S+"), f", or {_IMPORT}"))


def gui_wording(text: str) -> str:
    """`text` with command-line advice (--checkpoint, `trackstudio models import`) said the window's way."""
    for pattern, replacement in _CLI_HINTS:
        text = pattern.sub(replacement, text)
    return text


def describe(exc: BaseException) -> str:
    """A message for a dialog: the error itself, then the likely fix."""
    checkpoint_error = _checkpoint_error_type()
    if isinstance(exc, VideoError):
        return (f"{exc}\n\nOpen a video file (mp4, avi, mov, mkv, webm) or a folder of images. If the file "
                "plays elsewhere, convert it to mp4 (H.264) and try again.")
    if isinstance(exc, FormatError):
        return f"{exc}\n\nThe file does not follow the TrackStudio format (docs/formats.md); fix the named field or re-export it."
    if checkpoint_error is not None and isinstance(exc, checkpoint_error):
        return (f"{gui_wording(str(exc))}\n\nOr choose another tracker (the classical ones need no weights) in the "
                "Tracker panel.")
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return f"{exc.strerror or exc}: {exc.filename}\n\nCheck the path and your permissions, then try again."
    if isinstance(exc, OSError):
        return f"{exc}\n\nCheck the disk has space and the folder is writable."
    if isinstance(exc, MemoryError):
        return "Out of memory.\n\nClose other programs, track fewer objects at once, or choose a lighter tracker."
    if isinstance(exc, (ValueError, KeyError, IndexError, RuntimeError)):
        text = exc.args[0] if exc.args else repr(exc)
        return f"{text}\n\nIf this keeps happening, report it with the steps that led here."
    return f"Unexpected error: {type(exc).__name__}: {exc}\n\nYour work is autosaved; please report this."
