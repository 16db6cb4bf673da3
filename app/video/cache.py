"""A thread-safe LRU of decoded frames, bounded in bytes so a long video never sits in RAM whole."""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

DEFAULT_CACHE_BYTES = 512 * 2**20  # the window: frames scrubbed back to come from RAM
# A one-pass walk (`trackstudio track`, batch jobs) never comes back to a frame it has left; it only
# re-reads frames near the one it is on (PyAV keeps the 16 frames before a backward read: 1080p's
# take 100 MB). Filling DEFAULT_CACHE_BYTES there would only make RAM grow with the video's length.
WALK_CACHE_BYTES = 128 * 2**20


class FrameCache:
    """Decoded frames keyed by frame_idx; the least recently used go first once `max_bytes` is exceeded.

    Stored frames are made read-only, so a caller that gets one back cannot corrupt what the next
    caller sees. `max_bytes=0` disables caching.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        if max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of frame data held now (always <= max_bytes)."""
        return self._nbytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def __contains__(self, frame_idx: int) -> bool:
        with self._lock:
            return frame_idx in self._frames

    def get(self, frame_idx: int) -> np.ndarray | None:
        with self._lock:
            frame = self._frames.get(frame_idx)
            if frame is not None:
                self._frames.move_to_end(frame_idx)
            return frame

    def put(self, frame_idx: int, frame: np.ndarray) -> np.ndarray:
        """Store `frame` (the cache takes it over and marks it read-only) and return it.

        A frame larger than the whole budget is returned without being stored.
        """
        frame.flags.writeable = False
        if frame.nbytes > self.max_bytes:
            return frame
        with self._lock:
            previous = self._frames.pop(frame_idx, None)
            if previous is not None:
                self._nbytes -= previous.nbytes
            self._frames[frame_idx] = frame
            self._nbytes += frame.nbytes
            while self._nbytes > self.max_bytes:
                _, evicted = self._frames.popitem(last=False)
                self._nbytes -= evicted.nbytes
        return frame

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._nbytes = 0
