"""Video files through OpenCV's FFmpeg backend, with frame-exact random access."""
from __future__ import annotations

import math
import os
from pathlib import Path

# Decode failures surface as VideoError; FFmpeg's own log lines would only repeat them on stderr.
# Must be set before OpenCV opens its first capture; a value the user set wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from .source import DEFAULT_FPS, VideoError, VideoInfo, VideoSource  # noqa: E402

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

# Reading a few frames on is cheaper than a seek, which decodes from the previous keyframe anyway.
_READ_AHEAD_FRAMES = 8
# Reading backwards (backward tracking, reverse playback) would seek for every frame: instead one
# seek decodes this many earlier frames into the cache.
_BACKWARD_RUN_FRAMES = 16
# When the container's index sends a seek to the wrong frame, retry this far back before frame 0.
_FALLBACK_SEEK_BACK = (64, 1024)


class VideoFileSource(VideoSource):
    """A video file; `_next_idx` is the frame the decoder's next read returns (None: unknown)."""

    def __init__(self, path: Path, cache_bytes: int):
        self._path = path
        self._cap = self._open_capture()
        self._next_idx: int | None = 0
        self._end: int | None = None  # frames that really decode, once a failure has found the end
        self._run_start = 0  # first frame of the last decoded run: one below it means reading backwards
        claimed_frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        first = self._read(0)
        if first is None:
            self._cap.release()
            raise VideoError(f"{path}: no frame could be decoded (corrupt file or unsupported codec)")
        if claimed_frames <= 0:
            claimed_frames = self._count_frames()
        height, width = first.shape[:2]  # a decoded frame is the truth (rotation metadata, odd headers)
        fps = float(fps) if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        super().__init__(VideoInfo(str(path), claimed_frames, width, height, fps), cache_bytes)
        self.cache.put(0, first)

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap = cv2.VideoCapture(str(self._path))  # builds without FFmpeg have other backends
        if not cap.isOpened():
            raise VideoError(
                f"{self._path}: could not be opened as a video (corrupt, truncated or unsupported codec)"
            )
        return cap

    def _count_frames(self) -> int:
        """Count by decoding, for files whose header states no frame count (rare; linear time)."""
        cap = self._open_capture()
        try:
            num_frames = 0
            while cap.grab():
                num_frames += 1
            return num_frames
        finally:
            cap.release()

    def _decode(self, frame_idx: int) -> np.ndarray:
        if self._end is not None and frame_idx >= self._end:
            raise self._decode_error(frame_idx)
        run_start = frame_idx
        run_bytes = _BACKWARD_RUN_FRAMES * self.info.height * self.info.width * 3
        if frame_idx == self._run_start - 1 and self.cache.max_bytes >= 2 * run_bytes:
            run_start = max(frame_idx - _BACKWARD_RUN_FRAMES + 1, 0)
        self._run_start = run_start
        self._position_at(run_start)
        for run_idx in range(run_start, frame_idx):
            self.cache.put(run_idx, self._read_checked(run_idx))
        return self._read_checked(frame_idx)

    def _read_checked(self, frame_idx: int) -> np.ndarray:
        frame = self._read(frame_idx)
        if frame is None:
            self._end = frame_idx
            raise self._decode_error(frame_idx)
        if frame.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(
                f"{self._path}: frame {frame_idx} is {frame.shape[1]}x{frame.shape[0]}, "
                f"the video is {self.info.width}x{self.info.height}"
            )
        return frame

    def _read(self, frame_idx: int) -> np.ndarray | None:
        """Read `frame_idx`, which must be the decoder's verified position, as RGB; None if it fails."""
        ok, bgr = self._cap.read()
        if not ok:
            self._next_idx = None
            return None
        self._next_idx = frame_idx + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _position_at(self, frame_idx: int) -> None:
        """Leave the decoder so that its next read returns exactly `frame_idx`."""
        gap = frame_idx - self._next_idx if self._next_idx is not None else -1
        if 0 <= gap <= _READ_AHEAD_FRAMES or self._seek(frame_idx):
            self._grab_until(frame_idx)
            return
        # The seek landed elsewhere (a truncated file, a broken index): walk forward from an earlier
        # frame that a seek does reach exactly, or from a freshly opened start.
        for start in (frame_idx - back for back in _FALLBACK_SEEK_BACK):
            if start > 0 and self._seek(start):
                break
        else:
            if not self._seek(0):
                self._cap.release()
                self._cap = self._open_capture()
                self._next_idx = 0
        self._grab_until(frame_idx)

    def _seek(self, frame_idx: int) -> bool:
        """Seek and check where the decoder really is; OpenCV reports a clamped position on failure."""
        self._cap.set(cv2.CAP_PROP_POS_FRAMES, frame_idx)
        exact = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) == frame_idx
        self._next_idx = frame_idx if exact else None
        return exact

    def _grab_until(self, frame_idx: int) -> None:
        while self._next_idx < frame_idx:
            if not self._cap.grab():
                self._end = self._next_idx
                self._next_idx = None
                raise self._decode_error(frame_idx)
            self._next_idx += 1

    def _decode_error(self, frame_idx: int) -> VideoError:
        message = f"{self._path}: frame {frame_idx} could not be decoded; the file is truncated or corrupt"
        if self._end is not None:
            message += f" (only frames 0..{self._end - 1} of the {len(self)} its header claims decode)"
        return VideoError(message)

    def _release(self) -> None:
        self._cap.release()
