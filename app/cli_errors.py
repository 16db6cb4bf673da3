"""How the command line fails: the one place that turns an exception into what the user reads.

Expected failures (bad input, a file that cannot be read or written, a bad device or checkpoint)
become one line naming the file or option, exit code 2. Anything else is a bug: one short line,
the full traceback in a log file, exit code 1. SIGTERM stops a command the way Ctrl+C does, so
saves in progress clean up after themselves.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

EXIT_USAGE = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM

_OS_REASONS = {  # errno -> what to tell the user (strerror is terse and platform-worded)
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device (nothing was overwritten; free some space and run again)",
    errno.EDQUOT: "disk quota exceeded (nothing was overwritten)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "not a folder (or a part of the path is a file)",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error (a failing disk or a disconnected drive)",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl+C (temporary files are removed on the way out)."""


def _raise_terminated(signum, frame):
    raise Terminated


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` in the main thread (elsewhere: unchanged, as
    only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe(exc: BaseException) -> str | None:
    """The one-line message for an expected failure; None for an unexpected one (a bug)."""
    from .commands import CliError
    from .model.errors import FormatError
    from .video.source import VideoError

    if isinstance(exc, (CliError, FormatError, VideoError)) or _is_checkpoint_error(exc):
        return _one_line(str(exc))
    if isinstance(exc, OSError) and exc.errno is None:
        return _one_line(str(exc)) or type(exc).__name__  # raised with a message of its own
    if isinstance(exc, OSError):
        reason = os_reason(exc)
        if exc.filename is None:
            return reason
        target = f" -> {exc.filename2}" if exc.filename2 else ""
        return f"{exc.filename}{target}: {reason}"
    if isinstance(exc, MemoryError):
        return "out of memory (try a shorter clip, --device cpu, or closing other programs)"
    return None


def os_reason(exc: OSError) -> str:
    if exc.errno is None:
        return str(exc)
    return _OS_REASONS.get(exc.errno, exc.strerror or os.strerror(exc.errno))


def _is_checkpoint_error(exc: BaseException) -> bool:
    # A CheckpointError can only come from its module once loaded; importing it here would import
    # torch (a second or more) before every failure, even a mistyped file name.
    module = sys.modules.get("trackstudio.trackers.checkpoints")
    return module is not None and isinstance(exc, module.CheckpointError)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def report(command: str, argv: list[str], exc: BaseException) -> int:
    """Print what the user needs about `exc` on stderr; returns the exit code."""
    prefix = f"trackstudio {command}:"
    if isinstance(exc, KeyboardInterrupt):
        terminated = isinstance(exc, Terminated)
        print(f"{prefix} {'terminated' if terminated else 'interrupted'}; nothing half-written was left",
              file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    message = describe(exc)
    if message is not None:
        print(f"{prefix} {message}", file=sys.stderr)
        return EXIT_USAGE
    log = write_crash_log(argv, exc)
    where = f"the full traceback is in {log}" if log else "no log file could be written"
    summary = _one_line(f"{type(exc).__name__}: {exc}")[:200]
    print(f"{prefix} unexpected error ({summary}); {where}. Please report it with that file.", file=sys.stderr)
    return EXIT_BUG


def log_dir() -> Path:
    """Where crash logs go: TRACKSTUDIO_LOG_DIR, else the platform's user log folder."""
    if os.environ.get("TRACKSTUDIO_LOG_DIR"):
        return Path(os.environ["TRACKSTUDIO_LOG_DIR"]).expanduser()
    from platformdirs import user_log_dir

    return Path(user_log_dir("trackstudio", appauthor=False))


def write_crash_log(argv: list[str], exc: BaseException) -> Path | None:
    """Write the traceback to a new file in log_dir() (else the temp folder); None if neither works."""
    from trackstudio import __version__

    text = (f"trackstudio {__version__}, Python {sys.version.split()[0]}, {sys.platform}\n"
            f"command: trackstudio {' '.join(argv)}\n\n"
            + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None
