"""Pyramidal Lucas-Kanade point tracking, frame to frame, with a forward-backward check."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..base import SequentialTracker, TrackerConfig
from ..registry import register
from ..types import ObjectResult, Prompt
from .frame_cache import LastFrame


@dataclass
class LKConfig(TrackerConfig):
    window: int = 21  # LK window side, pixels
    levels: int = 3  # pyramid levels above the full-resolution one
    fb_threshold: float = 1.5  # px: a point whose backward track misses its start by more is unsure


@register("lk", kind="point", priority=0,
          description="Pyramidal Lucas-Kanade with a forward-backward check: fast, no weights; short-term points")
class LKTracker(SequentialTracker):
    kind = "point"
    config_cls = LKConfig

    def reset(self) -> None:
        super().reset()
        self._points: dict[int, np.ndarray] = {}  # obj_id -> (2,) float32 last trusted position
        self._gray = LastFrame(cv2.COLOR_RGB2GRAY)

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        if prompt.point is None:
            raise ValueError(f"lk needs a point prompt for object {obj_id} on frame {frame_idx}")
        return super().prompt_result(frame_idx, obj_id, prompt)

    def _anchor(self, frame_idx, frame, prompts):
        self._gray.convert(frame_idx, frame)
        results = {}
        for obj_id, prompt in prompts.items():
            self._points[obj_id] = prompt.point.astype(np.float32)
            results[obj_id] = ObjectResult(point=prompt.point.copy(), visible=prompt.visible)
        return results

    def _step(self, frame_idx, frame, obj_ids):
        gray = self._gray.convert(frame_idx, frame)
        prev_gray = self._gray.previous
        start = np.stack([self._points[obj_id] for obj_id in obj_ids]).reshape(-1, 1, 2)  # (N, 1, 2)
        lk = dict(winSize=(self.config.window, self.config.window), maxLevel=self.config.levels,
                  criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
        ahead, found, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, start, None, **lk)
        back, found_back, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, ahead, None, **lk)
        fb_error = np.linalg.norm(back - start, axis=-1).ravel()  # (N,)
        sure = (found.ravel() == 1) & (found_back.ravel() == 1) & (fb_error < self.config.fb_threshold)
        height, width = gray.shape
        x, y = ahead[:, 0, 0], ahead[:, 0, 1]
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        # An unsure point stays where it was last trusted and keeps being tracked from there: it
        # is often briefly occluded and comes back.
        moved = np.where(sure[:, None, None], ahead, start)[:, 0]  # (N, 2)
        # A weak forward-backward error scale for the score: 0 px -> 1, the threshold -> 0.5.
        score = 1.0 / (1.0 + np.nan_to_num(fb_error, nan=np.inf) / self.config.fb_threshold)
        results = {}
        for i, obj_id in enumerate(obj_ids):
            self._points[obj_id] = moved[i].astype(np.float32)
            results[obj_id] = ObjectResult(point=moved[i].astype(np.float32), visible=bool(sure[i] & inside[i]),
                                           score=float(score[i]))
        return results
