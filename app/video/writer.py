"""Write frames to a video file (used by tests, the sample-clip script and exports)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from .source import VideoError

# Codecs this OpenCV build writes without extra libraries (no H.264 encoder ships with the wheels).
_FOURCC_BY_EXTENSION = {
    ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG", ".webm": "VP80",
}


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: float = 30.0) -> int:
    """Write (H, W, 3) uint8 RGB frames to `path` (codec chosen by extension); returns the frame count.

    Width and height must be even: the encoders would otherwise silently crop the frames.
    """
    path = Path(path)
    fourcc = _FOURCC_BY_EXTENSION.get(path.suffix.lower())
    if fourcc is None:
        raise VideoError(
            f"{path}: cannot write '{path.suffix}' videos; use one of {', '.join(_FOURCC_BY_EXTENSION)}"
        )
    writer = None
    num_frames = 0
    try:
        for frame_idx, frame in enumerate(frames):
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise VideoError(
                    f"{path}: frame {frame_idx} must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}"
                )
            height, width = frame.shape[:2]
            if writer is None:
                if width % 2 or height % 2:
                    raise VideoError(f"{path}: frame size {width}x{height} must be even in both dimensions")
                codec = cv2.VideoWriter_fourcc(*fourcc)
                writer = cv2.VideoWriter(str(path), codec, float(fps), (width, height))
                if not writer.isOpened():
                    raise VideoError(f"{path}: could not open a '{fourcc}' video writer")
                size = (height, width)
            elif (height, width) != size:
                raise VideoError(
                    f"{path}: frame {frame_idx} is {width}x{height}, the first frame was {size[1]}x{size[0]}"
                )
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            num_frames += 1
    finally:
        if writer is not None:
            writer.release()
    if num_frames == 0:
        raise VideoError(f"{path}: no frames to write")
    return num_frames
