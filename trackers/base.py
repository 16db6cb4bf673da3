"""The one interface every tracker implements (modelled on SAM2's video predictor).

Usage:
    trk = registry.build("csrt")
    trk.set_video(frames)                      # any FrameSequence
    trk.add_prompt(frame_idx=0, obj_id=1, prompt=Prompt(box=...))
    for frame_result in trk.propagate(0):     # generator: stop it any time to cancel
        ...

`propagate(start, reverse)` walks frames start, start±1, ... An object joins the walk at the first
of its prompts that the walk reaches, and every later prompt on the way re-anchors it: prompts are
user keyframes, the ground truth, and the result on a prompted frame is the prompt itself (or, for
click prompts, the mask the prompt model made from it).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch

from .types import FrameResult, FrameSequence, ObjectResult, Prompt


@dataclass
class TrackerConfig:
    """Options every tracker understands; trackers subclass it with their own fields."""

    return_attention: bool = False  # fill ObjectResult.attention (costs time and memory)


class Tracker(ABC):
    kind: ClassVar[str]  # "box" | "mask" | "point": the annotation kind it produces
    config_cls: ClassVar[type[TrackerConfig]] = TrackerConfig

    def __init__(self, config: TrackerConfig | None = None, device: torch.device | str = "cpu",
                 checkpoint: str | None = None):
        self.config = config if config is not None else self.config_cls()
        self.device = torch.device(device)
        self.checkpoint = checkpoint
        self.frames: FrameSequence | None = None
        self.prompts: dict[int, dict[int, Prompt]] = {}  # frame_idx -> obj_id -> prompt

    # -- video and prompts -------------------------------------------------------------------
    def set_video(self, frames: FrameSequence) -> None:
        """Attach a video; forgets prompts and any per-video state."""
        self.frames = frames
        self.reset()

    def add_prompt(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        """Record a keyframe prompt and return the object's state on that frame."""
        self._check_frame(frame_idx)
        result = self.prompt_result(frame_idx, obj_id, prompt)  # validates before anything is stored
        self.prompts.setdefault(frame_idx, {})[obj_id] = prompt
        return result

    def remove_prompt(self, frame_idx: int, obj_id: int) -> None:
        self.prompts.get(frame_idx, {}).pop(obj_id, None)

    def reset(self) -> None:
        """Drop every prompt and all tracking state (cached features may stay)."""
        self.prompts = {}

    def prepare_frame(self, frame_idx: int) -> None:
        """Precompute what a prompt on this frame needs (SAM's set_image), so the first click answers
        fast; a GUI calls it in the background when the user lands on a frame. Default: nothing to do."""
        self._check_frame(frame_idx)

    def focus(self, boxes: dict[int, np.ndarray]) -> None:
        """Where the caller already knows objects to be on the next frame `propagate` computes: {obj_id: box
        [x1, y1, x2, y2] in video pixels}. A hint for speed: a tracker may then look only around those boxes.
        Default: ignored."""

    def rest(self, obj_ids: set[int]) -> None:
        """The caller needs nothing from these objects on the next frame `propagate` computes (it knows where they
        are). A hint for speed: a tracker may then leave them out of that frame's result and keep their state as it
        was. Default: ignored (they are tracked as usual)."""

    def confirm(self, obj_ids: set[int]) -> None:
        """The caller's own evidence agrees with these objects' results on the frame `propagate` yielded last. A
        hint for speed: a tracker may then skip checks that guard against having lost them on the next frame.
        Default: ignored."""

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        """The state a prompt stands for on its own frame; mask trackers turn clicks/boxes into masks."""
        return ObjectResult(box=prompt.box, mask=prompt.mask, point=prompt.point, visible=prompt.visible)

    # -- propagation ---------------------------------------------------------------------------
    @abstractmethod
    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        """Yield one FrameResult per frame from start_frame_idx to end_frame_idx (inclusive;
        default: the last frame, or frame 0 when reverse)."""

    # -- helpers for subclasses ----------------------------------------------------------------
    def _check_frame(self, frame_idx: int) -> None:
        if self.frames is None:
            raise RuntimeError("call set_video() before prompting or propagating")
        if not 0 <= frame_idx < len(self.frames):
            raise IndexError(f"frame {frame_idx} is out of range: the video has {len(self.frames)} frames")

    def _frame_range(self, start_frame_idx: int, reverse: bool, end_frame_idx: int | None) -> range:
        self._check_frame(start_frame_idx)
        if end_frame_idx is None:
            end_frame_idx = 0 if reverse else len(self.frames) - 1
        self._check_frame(end_frame_idx)
        step = -1 if reverse else 1
        if (end_frame_idx - start_frame_idx) * step < 0:
            raise ValueError(f"end frame {end_frame_idx} lies behind start frame {start_frame_idx}")
        return range(start_frame_idx, end_frame_idx + step, step)


class SequentialTracker(Tracker):
    """A tracker that carries its objects frame to frame: `_anchor` (re)starts objects from their
    prompts, `_step` moves the active ones to the next frame. Most classical and Siamese trackers."""

    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        active: list[int] = []
        for frame_idx in self._frame_range(start_frame_idx, reverse, end_frame_idx):
            frame = self.frames[frame_idx]
            anchored = self.prompts.get(frame_idx, {})
            moving = [obj_id for obj_id in active if obj_id not in anchored]
            results: dict[int, ObjectResult] = {}
            if moving:
                results.update(self._step(frame_idx, frame, moving))
            if anchored:
                results.update(self._anchor(frame_idx, frame, dict(anchored)))
                active.extend(obj_id for obj_id in anchored if obj_id not in active)
            yield FrameResult(frame_idx, results)

    @abstractmethod
    def _anchor(self, frame_idx: int, frame, prompts: dict[int, Prompt]) -> dict[int, ObjectResult]:
        """(Re)initialise these objects on this frame from their prompts; return their states."""

    @abstractmethod
    def _step(self, frame_idx: int, frame, obj_ids: list[int]) -> dict[int, ObjectResult]:
        """Move these already-started objects onto this frame."""
