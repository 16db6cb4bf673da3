"""Crash-safe saving: write a temporary file beside the target, fsync it, then rename over it.

A crash (or an exception) at any point leaves either the old file or the new one, never a torn
mix. An exception or a signal handled in Python removes the temporary file at once; after a hard
kill (SIGKILL, power cut) the next write to the same place removes it. Temporary names carry the
writer's process id (`.<name>.<pid>.<random>.tmp`), which tells a crashed writer's leftovers from
a live writer's file. Folders (PNG mask exports) are written the same way: into a hidden sibling
folder that is swapped in at the end (`atomic_folder`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_NEW_FILE_MODE = 0o644  # temporary files start as 0o600; a saved file should look like any other
_NEW_FOLDER_MODE = 0o755  # and temporary folders as 0o700
_OLD_TAG = "old"  # the replaced folder during a folder swap: `.<name>.<pid>.<random>.old.tmp`
# What lies between `.<name>.` and `.tmp`: `<pid>.<random>[.old]`, or `<random>` (before pids were added)
_TEMP_MIDDLE = re.compile(rf"(?:(?P<pid>\d+)\.[a-z0-9_]+(?P<old>\.{_OLD_TAG})?|[a-z0-9_]{{8}})")
# Where process ids cannot be probed safely (Windows), or the name has none (older versions), a
# temporary file this old is taken to be a crashed writer's.
_STALE_AGE_S = 3600.0


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """`with atomic_open(path) as f: f.write(...)`: `path` is replaced only if the block succeeds.

    An OSError of the write itself (a full disk, a read-only file system) names `path`, not the
    temporary file."""
    path = Path(path)
    remove_stale_temps(path)
    mode = path.stat().st_mode & 0o777 if path.exists() else _NEW_FILE_MODE
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path, None) from None
    try:
        with os.fdopen(fd, "wb") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError):
            raise _naming(exc, path, tmp_name) from None
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, replaced: re.Pattern | None = None) -> Iterator[Path]:
    """`with atomic_folder(out) as tmp: write files into tmp`: `out` becomes that folder only if the
    block succeeds, so a crash midway leaves the old folder (or none) as it was.

    Files already in `out` whose names `replaced` does not match (files the writer does not make,
    e.g. a README beside the masks) are carried over into the new folder; the rest of the old
    folder goes (None: everything goes). `out` must not hold sub-folders, nor be the file system
    root or hold the current folder (ValueError: callers check first, with their own message)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", os.fspath(path))
    problem = unswappable_folder(path)
    if problem:
        raise ValueError(f"{path}: {problem}")
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", os.fspath(path.parent))
    remove_stale_temps(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _naming(exc, path, None) from None
    old = path.parent / f"{_temp_prefix(path)}{uuid.uuid4().hex[:8]}.{_OLD_TAG}.tmp"
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else _NEW_FOLDER_MODE)
        yield tmp
        if path.is_dir():
            for entry in path.iterdir():
                if replaced is not None and not replaced.fullmatch(entry.name):
                    _link_or_copy(entry, tmp / entry.name)  # files only (unswappable_folder)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old.exists():
                os.replace(old, path)  # put the old folder back
            raise
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path, os.fspath(tmp)) from None
        raise
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(path.parent)


def unswappable_folder(path: str | os.PathLike) -> str | None:
    """Why `atomic_folder` must not replace `path` (None: it may): swapping a folder that holds
    others, the current folder or the root would move far more than the caller writes."""
    resolved = Path(path).resolve()
    if resolved == resolved.parent:
        return "the file system root cannot be replaced"
    if Path.cwd().resolve().is_relative_to(resolved):
        return "it holds the current folder, which cannot be replaced"
    if resolved.is_dir() and any(entry.is_dir() for entry in resolved.iterdir()):
        return "it holds sub-folders"
    return None


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove what crashed writes to `path` left beside it (temporary files and folders of writers
    that are gone); a folder swap cut between its two renames gets its old folder back. Returns
    the removed paths."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        entries = [e for e in path.parent.iterdir() if e.name.startswith(prefix) and e.name.endswith(".tmp")]
    except OSError:
        return removed  # an unreadable or missing folder: the write itself will say so
    for entry in entries:
        middle = _TEMP_MIDDLE.fullmatch(entry.name[len(prefix):-len(".tmp")])
        if middle is None or not _writer_is_gone(middle["pid"], entry):
            continue  # another file's temporary name (".r." also starts ".r.json."), or a live writer's
        with contextlib.suppress(OSError):
            if middle["old"] and entry.is_dir() and not path.exists():
                os.replace(entry, path)
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _writer_is_gone(pid_text: str | None, entry: Path) -> bool:
    if pid_text is not None and os.name == "posix":
        pid = int(pid_text)
        if pid == os.getpid():
            return False  # another thread of this process may be writing it now
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return True
        except OSError:
            return False  # it exists (another user's process)
        return False
    try:
        return time.time() - entry.lstat().st_mtime > _STALE_AGE_S
    except OSError:
        return False


def _naming(exc: OSError, path: Path, tmp_name: str | None) -> OSError:
    """The same error naming the file the user asked for instead of the temporary one (tmp_name
    None: the temporary file could not even be made, so the error is about `path`)."""
    named = None if exc.filename is None else os.fspath(exc.filename)
    if exc.errno is None or (tmp_name is not None and named is not None and not named.startswith(tmp_name)):
        return exc  # about another file (a folder's files are under tmp_name, so they count as its own)
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows one (instant, no space), else a copy."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); platforms that cannot open folders skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
