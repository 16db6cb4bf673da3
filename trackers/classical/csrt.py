"""OpenCV CSRT (discriminative correlation filter with channel and spatial reliability), one per box."""
from __future__ import annotations

import cv2
import numpy as np

from ..base import SequentialTracker
from ..registry import register
from ..types import ObjectResult, Prompt, prompt_box
from .frame_cache import LastFrame


def box_to_rect(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """[x1, y1, x2, y2] -> integer (x, y, w, h) inside the frame, at least 1 px wide and high."""
    x1, y1 = np.clip(np.round(box[:2]), 0, [width - 1, height - 1]).astype(int)
    x2, y2 = np.clip(np.round(box[2:]), [x1 + 1, y1 + 1], [width, height]).astype(int)
    return int(x1), int(y1), int(x2 - x1), int(y2 - y1)


@register("csrt", kind="box", priority=0,
          description="OpenCV CSRT correlation filter: fast, no weights; good for rigid objects on easy clips")
class CSRTTracker(SequentialTracker):
    kind = "box"

    def reset(self) -> None:
        super().reset()
        self._filters: dict[int, cv2.Tracker] = {}
        self._boxes: dict[int, np.ndarray] = {}  # obj_id -> last box, kept while the target is lost
        self._bgr = LastFrame(cv2.COLOR_RGB2BGR)

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        box = prompt_box(prompt, frame_idx, "csrt")
        return ObjectResult(box=box, visible=prompt.visible)

    def _anchor(self, frame_idx, frame, prompts):
        bgr = self._bgr.convert(frame_idx, frame)
        height, width = bgr.shape[:2]
        results = {}
        for obj_id, prompt in prompts.items():
            box = prompt_box(prompt, frame_idx, "csrt")
            self._boxes[obj_id] = box
            if prompt.visible:
                tracker = cv2.TrackerCSRT_create()
                tracker.init(bgr, box_to_rect(box, height, width))
                self._filters[obj_id] = tracker
            else:  # a hidden-object keyframe: wait for the next prompt that shows it
                self._filters.pop(obj_id, None)
            results[obj_id] = ObjectResult(box=box.copy(), visible=prompt.visible)
        return results

    def _step(self, frame_idx, frame, obj_ids):
        bgr = self._bgr.convert(frame_idx, frame)
        results = {}
        for obj_id in obj_ids:
            tracker = self._filters.get(obj_id)
            found = False
            if tracker is not None:
                found, (x, y, w, h) = tracker.update(bgr)
                if found:
                    self._boxes[obj_id] = np.array([x, y, x + w, y + h], np.float32)
            # CSRT only says found / lost; the score carries that, the box stays where it was last seen.
            results[obj_id] = ObjectResult(box=self._boxes[obj_id].copy(), visible=bool(found),
                                           score=1.0 if found else 0.0)
        return results
