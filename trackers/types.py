"""Plain data that crosses the tracker boundary: prompts in, per-frame results out.

Everything here is numpy in original video pixel coordinates; tensors never leave `trackers`.
Frames are RGB uint8 arrays of shape (H, W, 3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

KINDS = ("box", "mask", "point")


class FrameSequence(Protocol):
    """Random access to a video's frames: `len(seq)` and `seq[frame_idx] -> (H, W, 3) uint8 RGB`."""

    def __len__(self) -> int: ...

    def __getitem__(self, frame_idx: int) -> np.ndarray: ...


@dataclass
class Prompt:
    """What the user gave for one object on one frame. Any combination a tracker understands."""

    box: np.ndarray | None = None  # (4,) float [x1, y1, x2, y2], x2/y2 are the far edges
    mask: np.ndarray | None = None  # (H, W) bool
    clicks: np.ndarray | None = None  # (K, 3) float [x, y, label], label 1 = positive, 0 = negative
    point: np.ndarray | None = None  # (2,) float [x, y] in pixel-index coordinates
    visible: bool = True

    def __post_init__(self):
        if self.box is not None:
            self.box = np.asarray(self.box, np.float32).reshape(4)
        if self.mask is not None:
            self.mask = np.asarray(self.mask).astype(bool)
            if self.mask.ndim != 2:
                raise ValueError(f"mask prompt must be (H, W), got shape {self.mask.shape}")
        if self.clicks is not None:
            self.clicks = np.asarray(self.clicks, np.float32).reshape(-1, 3)
        if self.point is not None:
            self.point = np.asarray(self.point, np.float32).reshape(2)
        if self.box is None and self.mask is None and self.clicks is None and self.point is None:
            raise ValueError("a prompt needs a box, a mask, clicks or a point")


@dataclass
class ObjectResult:
    """One object's state on one frame, as a tracker sees it."""

    box: np.ndarray | None = None  # (4,) float32 [x1, y1, x2, y2]
    mask: np.ndarray | None = None  # (H, W) bool
    point: np.ndarray | None = None  # (2,) float32 [x, y]
    visible: bool = True  # False: the tracker believes the object is hidden or out of view
    score: float = 1.0  # confidence in [0, 1]
    # What the tracker looked at, (h, w) float32 in [0, 1] covering the whole frame at any
    # resolution (the view stretches it); only filled when the config asks for attention.
    attention: np.ndarray | None = None


@dataclass
class FrameResult:
    frame_idx: int
    objects: dict[int, ObjectResult] = field(default_factory=dict)  # obj_id -> result


def box_iou(a, b) -> float:
    """Intersection over union of two boxes [x1, y1, x2, y2]."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    return float(inter / max(union, 1e-6))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape (1 where both are empty: they agree)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight [x1, y1, x2, y2] (far edges) of a bool mask, None when empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32)


def prompt_box(prompt: Prompt, frame_idx: int, tracker_name: str) -> np.ndarray:
    """The box a prompt stands for: its box, else its mask's box, else the span of positive clicks."""
    box = prompt.box
    if box is None and prompt.mask is not None:
        box = mask_to_box(prompt.mask)
    if box is None and prompt.clicks is not None:
        positive = prompt.clicks[prompt.clicks[:, 2] > 0, :2]
        if len(positive) >= 2:
            box = np.concatenate([positive.min(0), positive.max(0) + 1])
    if box is None:
        raise ValueError(f"{tracker_name} needs a box prompt (or a non-empty mask, or two positive clicks) "
                         f"on frame {frame_idx}")
    box = np.asarray(box, np.float32)
    if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"{tracker_name}: the box prompt on frame {frame_idx} is empty or invalid: {box.tolist()}")
    return box
