"""Video files through PyAV: frame-exact seeks by presentation timestamp (VFR, B-frames, rotation).

Frame N is the frame with the N-th smallest timestamp in the file's index (`frame_index.py`). A
read seeks to the keyframe at or before it and decodes until that exact timestamp comes out, so a
random read returns the same pixels as decoding the file from the start.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from .frame_index import FrameIndex, build_index, load_cached_index, save_cached_index
from .source import DEFAULT_FPS, VideoError, VideoInfo, VideoSource

# Reading backwards (backward tracking, reverse playback) would seek for every frame: instead the
# frames decoded on the way to the target are kept, up to this many.
_BACKWARD_RUN_FRAMES = 16


class NotFrameExact(Exception):
    """PyAV cannot index this file reliably; the caller falls back to OpenCV."""


class PyAVFileSource(VideoSource):
    """A video file; `_next_idx` is the frame index the decoder yielded last + 1 (None: unknown)."""

    def __init__(self, path: Path, cache_bytes: int):
        self._path = path
        try:
            self._container = av.open(str(path))
        except av.error.FFmpegError as exc:
            raise NotFrameExact(str(exc)) from None
        try:
            if not self._container.streams.video:
                raise NotFrameExact("no video stream")
            self._stream = self._container.streams.video[0]
            self._index = self._load_index()
            self._idx_by_pts = {int(p): i for i, p in enumerate(self._index.pts)}
            self._frames = None
            self._next_idx: int | None = None
            self._last_idx = -2
            self._stream.thread_type = "AUTO"
            first = self._decode_exact(0, cache_run=False)
        except (NotFrameExact, VideoError, av.error.FFmpegError) as exc:
            self._container.close()
            raise NotFrameExact(str(exc)) from None
        height, width = first.shape[:2]  # after rotation: what the user sees
        rate = self._stream.average_rate
        fps = float(rate) if rate else (len(self._index) - 1) / max(self._index.times()[-1], 1e-9)
        fps = fps if fps > 0 else DEFAULT_FPS
        super().__init__(VideoInfo(str(path), len(self._index), width, height, fps), cache_bytes)
        self.cache.put(0, first)

    def _load_index(self) -> FrameIndex:
        index = load_cached_index(self._path)
        if index is None:
            index = build_index(self._container, self._stream)
            if index is None:
                raise NotFrameExact("packets without timestamps")
            save_cached_index(self._path, index)
            self._container.seek(0)
        if index.claimed_frames and index.packets < index.claimed_frames:
            raise NotFrameExact("fewer packets than the header claims (a truncated file)")
        return index

    def frame_times(self) -> np.ndarray:
        return self._index.times()

    def _decode(self, frame_idx: int) -> np.ndarray:
        return self._decode_exact(frame_idx, cache_run=frame_idx == self._last_idx - 1)

    def _decode_exact(self, frame_idx: int, cache_run: bool) -> np.ndarray:
        self._last_idx = frame_idx
        keyframe = self._index.keyframe_before(frame_idx)
        if self._next_idx is None or not keyframe <= self._next_idx <= frame_idx:
            self._seek(keyframe)
        try:
            frame = self._decode_until(frame_idx, cache_run)
            if frame is None:  # the keyframe flags were wrong (an open GOP): decode from the start
                self._seek(0)
                frame = self._decode_until(frame_idx, cache_run)
        except av.error.FFmpegError as exc:
            self._next_idx = None
            raise VideoError(f"{self._path}: frame {frame_idx} could not be decoded ({exc})") from None
        if frame is None:
            self._next_idx = None
            raise VideoError(f"{self._path}: frame {frame_idx} could not be decoded; the file is truncated or corrupt")
        return frame

    def _seek(self, keyframe_idx: int) -> None:
        self._container.seek(int(self._index.pts[keyframe_idx]), stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._next_idx = None

    def _decode_until(self, frame_idx: int, cache_run: bool) -> np.ndarray | None:
        """Decode on until `frame_idx` comes out; None when a later frame (or the end) comes first."""
        run_start = frame_idx - _BACKWARD_RUN_FRAMES if cache_run else frame_idx
        for frame in self._frames:
            idx = self._idx_by_pts.get(frame.pts)
            if idx is None:
                continue  # a frame outside the presented range (before an edit list's start)
            self._next_idx = idx + 1
            if idx == frame_idx:
                return self._to_rgb(frame)
            if idx > frame_idx:
                return None
            if idx >= run_start:
                self.cache.put(idx, self._to_rgb(frame))
        return None

    @staticmethod
    def _to_rgb(frame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3) as stored
        turns = round(frame.rotation / 90) % 4  # the display matrix: how players turn the picture
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def _release(self) -> None:
        self._container.close()
