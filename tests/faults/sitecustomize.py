"""Disk faults for the CLI's bad-input tests, injected into a `python -m trackstudio` subprocess.

Python imports `sitecustomize` at start-up from the path, so a test puts this folder first on
PYTHONPATH and names the fault in TS_FAULT; without TS_FAULT nothing changes.

    erofs      creating files or folders under TS_FAULT_DIR fails with EROFS (a read-only mount)
    enospc     fsync fails with ENOSPC (a full disk, found when the data is flushed)
    hang-fsync fsync writes the file TS_FAULT_MARK, then waits: the test kills the process mid-save
    hang-png   the third PNG written writes TS_FAULT_MARK, then waits (mid PNG-folder export)
"""
from __future__ import annotations

import errno
import os
import time

_FAULT = os.environ.get("TS_FAULT", "")


def _mark_and_wait() -> None:
    with open(os.environ["TS_FAULT_MARK"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)


if _FAULT == "erofs":
    _real_open, _real_mkdir = os.open, os.mkdir
    _dir = os.path.realpath(os.environ["TS_FAULT_DIR"])

    _tmpfile = getattr(os, "O_TMPFILE", 0)  # an unnamed file in the folder `path`

    def _inside(path) -> bool:
        return (os.path.realpath(os.fspath(path)) + os.sep).startswith(_dir + os.sep)

    def _open(path, flags, *args, **kwargs):
        creates = flags & os.O_CREAT or (_tmpfile and flags & _tmpfile == _tmpfile)
        if creates and _inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return _real_open(path, flags, *args, **kwargs)

    def _mkdir(path, *args, **kwargs):
        if _inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return _real_mkdir(path, *args, **kwargs)

    os.open, os.mkdir = _open, _mkdir
elif _FAULT == "enospc":
    def _fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    os.fsync = _fsync
elif _FAULT == "hang-fsync":
    def _fsync(fd):
        _mark_and_wait()

    os.fsync = _fsync
elif _FAULT == "hang-png":
    from PIL import Image

    _real_save = Image.Image.save
    _calls = [0]

    def _save(self, fp, *args, **kwargs):
        _real_save(self, fp, *args, **kwargs)
        _calls[0] += 1
        if _calls[0] == 3:
            _mark_and_wait()

    Image.Image.save = _save
