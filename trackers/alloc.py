"""Keep glibc from handing memory back to the OS after every large tensor.

On small CPU machines torch forwards slow down 3-10x from page faults when glibc trims and unmaps
freed blocks; raising the mmap and trim thresholds keeps freed memory in the heap for reuse.
Must run before torch allocates anything large; calling it more than once is harmless.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_applied = False


def tune_allocator() -> bool:
    global _applied
    if _applied or not sys.platform.startswith("linux"):
        return _applied
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or an unusual libc: nothing to tune
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    _applied = True
    return True
