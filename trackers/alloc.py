"""Keep glibc from handing memory back to the OS after every large tensor.

On small CPU machines torch forwards slow down 3-10x from page faults when glibc trims and unmaps
freed blocks; raising the mmap and trim thresholds keeps freed memory in the heap for reuse.
Must run before torch allocates anything large; calling it more than once is harmless.

The price is fragmentation where small blocks outlive large ones: a walk that keeps every frame's result (RLE
strings and small arrays in an annotation store) splits the freed tensor blocks, and the heap grows by about
200 KB a frame while the memory in use stays flat (one box on an 854x480 clip through `trackstudio track`: 727 MB
peak at 300 frames, 1,021 MB at 3,000). `release_free_memory`, called every 100 frames, hands the free pages back
(729 and 768 MB).
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_libc: ctypes.CDLL | None = None  # glibc, once tune_allocator has tuned it


def tune_allocator() -> bool:
    global _libc
    if _libc is not None or not sys.platform.startswith("linux"):
        return _libc is not None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or an unusual libc: nothing to tune
        return False
    libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    _libc = libc
    return True


def release_free_memory() -> None:
    """Return the heap's whole free pages to the OS (glibc's malloc_trim), where `tune_allocator` took over
    trimming. Costs page faults when those pages are used again: call it every hundred frames or so, not every
    frame."""
    if _libc is not None:
        _libc.malloc_trim(0)
