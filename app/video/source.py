"""The VideoSource base: index checks, the frame cache and the decoder lock shared by files and folders."""
from __future__ import annotations

import operator
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .cache import FrameCache

DEFAULT_FPS = 30.0  # image folders carry no frame rate, and some files report none


class VideoError(Exception):
    """A video or image folder that cannot be opened or decoded; the message names the file (and frame)."""


@dataclass
class VideoInfo:
    path: str
    num_frames: int
    width: int
    height: int
    fps: float


class VideoSource:
    """Random access to a video's frames: `src[frame_idx] -> (H, W, 3) uint8 RGB`, read-only.

    Frames come from a byte-bounded LRU `FrameCache`; misses are decoded under one lock, so the GUI
    thread and a tracker thread can read at once. Subclasses implement `_decode` and `_release`,
    which are only ever called with that lock held.
    """

    def __init__(self, info: VideoInfo, cache_bytes: int):
        self.info = info
        self.cache = FrameCache(cache_bytes)
        self._decoder_lock = threading.Lock()
        self._closed = False

    def _decode(self, frame_idx: int) -> np.ndarray:
        """Decode one frame, (H, W, 3) uint8 RGB, a fresh array the cache may keep."""
        raise NotImplementedError

    def _release(self) -> None:
        """Free the decoder's resources."""

    def __len__(self) -> int:
        return self.info.num_frames

    def frame_times(self) -> np.ndarray:
        """(T,) float64 seconds of each frame from the first; sources that know timestamps override it."""
        return np.arange(len(self), dtype=np.float64) / self.info.fps

    def __getitem__(self, frame_idx: int) -> np.ndarray:
        frame_idx = self._check_index(frame_idx)
        frame = self.cache.get(frame_idx)
        if frame is not None:
            return frame
        with self._decoder_lock:
            if self._closed:
                raise VideoError(f"{self.info.path}: the video has been closed")
            frame = self.cache.get(frame_idx)  # another thread may have decoded it while we waited
            if frame is None:
                frame = self.cache.put(frame_idx, self._decode(frame_idx))
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame_idx in range(len(self)):
            yield self[frame_idx]

    def _check_index(self, frame_idx: int) -> int:
        frame_idx = operator.index(frame_idx)  # TypeError for floats and slices
        num_frames = len(self)
        if frame_idx < 0:
            frame_idx += num_frames  # Python sequence convention: -1 is the last frame
        if not 0 <= frame_idx < num_frames:
            raise IndexError(
                f"frame {frame_idx} is out of range: {self.info.path} has {num_frames} frames "
                f"(0..{num_frames - 1})"
            )
        return frame_idx

    def close(self) -> None:
        with self._decoder_lock:
            if not self._closed:
                self._closed = True
                self._release()
                self.cache.clear()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        info = self.info
        return (
            f"{type(self).__name__}({info.path!r}, {info.num_frames} frames, "
            f"{info.width}x{info.height}, {info.fps:g} fps)"
        )
