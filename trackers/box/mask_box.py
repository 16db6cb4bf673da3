"""Boxes tracked through masks: a box prompt goes to a mask tracker, and each frame's mask becomes
its bounding box. The user who draws a box gets a mask for free; the box follows the object's
extent (not a fixed-aspect template), and visibility is the mask tracker's."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from .. import registry
from ..base import Tracker, TrackerConfig
from ..types import FrameResult, ObjectResult, Prompt, mask_to_box
from ..types import prompt_box


@dataclass
class MaskBoxConfig(TrackerConfig):
    mask_tracker: str = ""  # registered mask tracker to use; "" = the default mask tracker
    mask_config: dict = field(default_factory=dict)  # options of that mask tracker (e.g. {"max_side": 432})
    # the box spans the mask's parts that reach into the last box grown by this share of its size on
    # each side (a look-alike that the mask also took in stays out of the box); -1 = every part
    near_margin: float = 0.25


def build_mask_tracker(user: str, name: str, config: dict, device, checkpoint: str | None,
                       sam2_lite_weights: str = "") -> Tracker:
    """The mask tracker a box tracker runs inside: `name` ("" = the default mask tracker) built with
    `config`; an error naming `user` when `name` tracks something else. `sam2_lite_weights`: a file in
    resources/weights that sam2-lite loads when no checkpoint is given ("" = its own default)."""
    name = name or registry.default_name("mask")
    kind = registry.spec(name).kind
    if kind != "mask":
        raise ValueError(f"{user} needs a mask tracker, but {name!r} is a {kind} tracker")
    if checkpoint is None and sam2_lite_weights and name == "sam2-lite":
        from trackstudio import resources

        checkpoint = str(resources.path("weights", sam2_lite_weights))
    return registry.build(name, config=config, device=device, checkpoint=checkpoint)


def grown_window(box: np.ndarray, margin: float) -> tuple[slice, slice]:
    """The (rows, columns) slices of an image inside `box` [x1, y1, x2, y2] grown by `margin` x its size per
    side, on whole pixels that cover it."""
    grow = margin * (box[2:] - box[:2])
    x1, y1 = np.floor(np.maximum(box[:2] - grow, 0)).astype(int)
    x2, y2 = np.ceil(box[2:] + grow).astype(int)
    return slice(y1, y2), slice(x1, x2)


def near_parts_box(mask: np.ndarray, last_box: np.ndarray | None, margin: float) -> np.ndarray | None:
    """The box of the mask's connected parts that reach into `last_box` grown by `margin` x its size
    per side; with none there (or no last box), of the largest part. None for an empty mask."""
    box = mask_to_box(mask)
    if box is None or margin < 0 or last_box is None:
        return box
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:  # one part
        return box
    near = np.unique(labels[grown_window(last_box, margin)])
    near = near[near > 0]
    if near.size == 0:
        near = np.array([1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))])
    left, top = stats[near, cv2.CC_STAT_LEFT], stats[near, cv2.CC_STAT_TOP]
    right, bottom = left + stats[near, cv2.CC_STAT_WIDTH], top + stats[near, cv2.CC_STAT_HEIGHT]
    return np.array([left.min(), top.min(), right.max(), bottom.max()], np.float32)


@registry.register("mask-box", kind="box", priority=-5,
                   description="Tracks the box with the default mask tracker (box -> mask -> its bounding box); "
                               "slower, follows shape changes, also yields the mask")
class MaskBoxTracker(Tracker):
    kind = "box"
    config_cls = MaskBoxConfig
    name = "mask-box"

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        self.mask_tracker = build_mask_tracker(self.name, self.config.mask_tracker,
                                               {**self.config.mask_config,
                                                "return_attention": self.config.return_attention},
                                               self.device, checkpoint)
        self._boxes: dict[int, np.ndarray] = {}

    def set_video(self, frames) -> None:
        super().set_video(frames)
        self.mask_tracker.set_video(frames)

    def reset(self) -> None:
        super().reset()
        self._boxes = {}
        if hasattr(self, "mask_tracker"):
            self.mask_tracker.reset()

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        box = prompt_box(prompt, frame_idx, self.name)
        inner = self.mask_tracker.add_prompt(frame_idx, obj_id, prompt)
        return ObjectResult(box=box, mask=inner.mask, visible=prompt.visible, score=inner.score)

    def remove_prompt(self, frame_idx: int, obj_id: int) -> None:
        super().remove_prompt(frame_idx, obj_id)
        self.mask_tracker.remove_prompt(frame_idx, obj_id)

    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        for inner in self.mask_tracker.propagate(start_frame_idx, reverse, end_frame_idx):
            prompts = self.prompts.get(inner.frame_idx, {})
            objects = {obj_id: self._to_box(inner.frame_idx, obj_id, result, prompts.get(obj_id))
                       for obj_id, result in inner.objects.items()}
            yield FrameResult(inner.frame_idx, objects)

    def _to_box(self, frame_idx: int, obj_id: int, result: ObjectResult, prompt: Prompt | None) -> ObjectResult:
        if prompt is not None:  # a keyframe: the user's box is the answer
            box, visible = prompt_box(prompt, frame_idx, self.name), prompt.visible
        else:
            box = (near_parts_box(result.mask, self._boxes.get(obj_id), self.config.near_margin)
                   if result.visible and result.mask is not None else None)
            visible = box is not None
            if box is None:  # hidden: keep the last box, marked not visible
                box = self._boxes.get(obj_id, result.box)
        if box is not None:
            self._boxes[obj_id] = box
        return ObjectResult(box=None if box is None else box.copy(), mask=result.mask, visible=bool(visible),
                            score=result.score, attention=result.attention)
