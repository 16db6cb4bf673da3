"""The allocator policy of trackers/alloc.py: freed blocks stay in the heap for speed, and a long walk hands the
free pages back now and then."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from trackstudio.trackers import alloc


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_free_heap_pages_left_between_kept_blocks_are_handed_back():
    # what a walk does to the heap: large blocks freed, small ones kept between them (results in a store), so the
    # freed ones cannot merge with the top of the heap and the tuned allocator keeps them resident
    if not alloc.tune_allocator():
        pytest.skip("not glibc")
    large, kept = [], []
    for _ in range(200):
        large.append(np.ones(2**18, np.uint8))  # 256 KB, touched
        kept.append(np.ones(2**9, np.uint8))
    del large
    held = _rss_mb()
    alloc.release_free_memory()
    assert held - _rss_mb() > 0.5 * 200 * 0.25, "most of the 50 MB freed goes back to the OS"
    assert all(block.sum() == 2**9 for block in kept)
