"""The last frame a walk saw, converted once for OpenCV and shared by every object on it."""
from __future__ import annotations

import cv2
import numpy as np


class LastFrame:
    """Converts RGB frames to gray or BGR, remembering the previous walk frame for frame-pair methods.

    `convert(frame_idx, frame)` returns the converted frame, reusing it when the same frame comes
    again (a frame that both moves some objects and re-anchors others); `previous` is the frame the
    walk was on before the current one."""

    def __init__(self, code: int):
        self.code = code  # cv2.COLOR_RGB2GRAY or cv2.COLOR_RGB2BGR
        self.frame_idx: int | None = None
        self.current: np.ndarray | None = None
        self.previous: np.ndarray | None = None

    def convert(self, frame_idx: int, frame: np.ndarray) -> np.ndarray:
        if frame_idx != self.frame_idx:
            self.previous = self.current
            self.current = cv2.cvtColor(np.ascontiguousarray(frame), self.code)
            self.frame_idx = frame_idx
        return self.current

    def clear(self) -> None:
        self.frame_idx = self.current = self.previous = None
