"""`siamfc-mask`: the Siamese search says where the target is and whether it is there; the trained
mask tracker says how far it extends.

SiamFC's box follows a template's fixed shape, so on a target that turns, bends or walks its box is
loose (held-out DAVIS train clips: mean IoU 0.68), while the trained sam2-lite mask follows the
outline (0.85). The mask tracker, though, loses small targets and rarely finds a target again once
it lost it, which the Siamese search with its re-detection does. So both run (the mask step rests on frames
where its last masks are predictable: SiamFCMaskConfig.sure_mask_every, agree_mask_iou); where both
see the target, it is large enough for the mask network (its side at the mask tracker's internal
resolution) and the Siamese match is unsure (the target no longer looks like its template), the box
is the mask's, taken over the mask's parts near this frame's Siamese box; otherwise the Siamese box. Visibility
and score are the Siamese tracker's, except that a target the search re-finds after it left across the frame's
edge is shown once the mask tracker sees it there too (SiamFCMaskConfig.reentry_mask). The mask tracker is told
where the search found each target on the frame (Tracker.focus): sam2-lite then works only around that box and its
own last mask (Sam2LiteConfig.focus_margin), which makes small targets faster.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np

from .. import registry
from ..base import Tracker, TrackerConfig
from ..interpolation import shifted
from ..types import FrameResult, ObjectResult, Prompt, mask_iou, mask_to_box, prompt_box
from .mask_box import build_mask_tracker, grown_window, near_parts_box
from .siamfc import touched_sides


def _mask_options(max_side: int) -> dict:
    """The mask step's options at `max_side` px on the long side (see SiamFCMaskConfig.mask_config)."""
    return {"max_side": max_side, "flow_prior": False, "backbone_precision": "bfloat16",
            "decoder_precision": "bfloat16"}


@dataclass
class SiamFCMaskConfig(TrackerConfig):
    search_tracker: str = "siamfc-effnet"  # the box tracker that finds the target
    # its options: a match scoring under 0.4 is checked over the wider lost-search region, where a peak
    # scoring 0.2 more takes over (SiamFCConfig.recheck_below). Four selection sets (below; AUC): off 0.832
    # / 0.696 / 0.702 / 0.723, under 0.4, 0.5 or 0.6 0.832 / 0.724 / 0.702 / 0.723 (three procedural clips
    # where the box had stayed on a cover gained, 0.197 -> 0.360, 0.678 -> 0.773, 0.328 -> 0.639; no clip
    # lost). 0.4 runs the extra pass least: on 12 % of the DAVIS clips' frames against 37 % under 0.5.
    # Only the targets whose last match scored 0.7 or more (max_search_score's sure match) share
    # the backbone pass; the others keep their own crops (SiamFCConfig.shared_min_score). Sprites (20 clips, 2-6
    # objects) AUC 0.730 -> 0.740, schoolgirls (7 objects) 0.611 -> 0.614, the held-out DAVIS clips beside two
    # copies 0.818 -> 0.817; every target on its own crops: 0.741 / 0.600 / 0.817. Ten doubtful targets run at
    # about two thirds of the speed (README). A lone sure target shares the pass too (session 20; it used its
    # three crops before): the four sets below 0.8335 / 0.7239 / 0.7022 / 0.7395 -> 0.8339 / 0.7302 / 0.7032 /
    # 0.7386, and the search's CPU time on a sure clip about 30 % less
    # The shared pass stops 32 level pixels beyond the frame (SiamFCConfig.shared_frame_margin; session 44): ten objects
    # on the speed benchmark's clip 7.2 -> 7.9-8.0 frames/s with the scans on the pass (a 976x704 rectangle ->
    # 912x544); the four sets below 0.8863 / 0.7314 / 0.7046 / 0.7422 -> 0.8863 / 0.7311 / 0.7046 / 0.7407
    search_config: dict = field(default_factory=lambda: {"recheck_below": 0.4, "shared_min_score": 0.7,
                                                         "shared_frame_margin": 32})
    mask_tracker: str = ""  # the mask tracker that gives the extent; "" = the default mask tracker
    # its options: no flow prior. Held-out train clips, mask boxes alone: AUC 0.810 at 432 px against 0.848 at 864
    # (0.851 / 0.689 combined here: 5 against 13 frames/s); combined, DAVIS / procedural: flow prior on 0.820 /
    # 0.687, off 0.828 / 0.687 and 20 % faster. Its backbone and decoder in bfloat16 where the CPU has it: the boxes
    # of the four selection sets (below) stay within 0.0003 AUC of float32's and the step is faster (README); the
    # Siamese search stays in float32, where bfloat16 flipped a procedural clip (0.678 -> 0.383). Session 23: the
    # mask at 864 px, not 432: at 432 it loses a target's thin parts (a hockey stick, a paraglider's lines, a
    # bike's frame) and the box with them. All 30 DAVIS train clips (AUC): 432 0.811, 648 0.861, 864 0.872 (0.869
    # with min_mask_side 80, below; NanoTrack 0.728); the six held out from the mask network's training 0.834 /
    # 0.855 / 0.888 (README)
    mask_config: dict = field(default_factory=lambda: _mask_options(864))
    # sam2-lite propagation weights (a file in resources/weights) used when the mask tracker is sam2-lite and
    # no checkpoint is given; "" = sam2-lite's own (stage 6). Session 47, the four selection sets below (DAVIS
    # held-out / procedural / larger / sprites, AUC): stage 2 (sessions 11-46) 0.8865 / 0.7311 / 0.7045 / 0.7415,
    # stage 6 0.8947 / 0.7279 / 0.7015 / 0.7446, the mean of both (scripts/average_weights.py) 0.8867 / 0.7304 /
    # 0.7063 / 0.7542 (resources/weights/sam2_lite_propagation.md). On the tracker of sessions 10-11 (432 px, no
    # rests) stage 2 had boxed best: 0.832 / 0.696 / 0.702 / 0.720 against stage 5's 0.826 / 0.683 / 0.685 / 0.706
    mask_weights: str = "sam2_lite_propagation_stage2_stage6_mean.pt"
    # the mask's box is used where the target's side (square root of its area) is at least this many
    # pixels at the mask tracker's internal resolution (the mask network loses small targets)... Chosen at 432 px as
    # 40; at 864 px, 80 keeps the same targets on the mask on 854 px wide video: the larger procedural set (672 px
    # wide, below) 0.671 with 40 against 0.706 with 80 (0.708 at 432 px with 40)
    min_mask_side: float = 80.0
    # ...and where the Siamese match scores below this: a confident match means the target still looks
    # like its template, and there the Siamese box is the tighter one. Chosen on 6 held-out DAVIS train
    # clips and three sets of 20 procedural clips (small, larger, sprites; AUC; README): side 40 with
    # score < 0.6 / 0.7 / 0.8 / any: 0.834 / 0.696 / 0.698 / 0.718, 0.832 / 0.696 / 0.702 / 0.719, 0.830 /
    # 0.695 / 0.697 / 0.713, 0.827 / 0.675 / 0.685 / 0.710; side 60 with < 0.7: 0.832 / 0.697 / 0.699 /
    # 0.716; the Siamese tracker alone 0.671 / 0.697 / 0.704 / 0.677
    max_search_score: float = 0.7
    # the mask's parts counted are those that reach into this frame's Siamese box grown by this share of its
    # size per side (as MaskBoxConfig.near_margin, around the Siamese box rather than the last box given: a
    # wrong part once taken into the given box stayed near it and kept itself in). Session 20, four selection
    # sets below: last box 0.8339 / 0.7302 / 0.7032 / 0.7386, Siamese box 0.8339 / 0.7302 / 0.7081 / 0.7382
    # (larger set: synth_00008 0.503 -> 0.601; sprites: three clips 0.001-0.006 lower). Around the Siamese box,
    # margin 0.1 / 0.5: 0.8339 / 0.7302 / 0.7081 / 0.7388 and 0.8339 / 0.7302 / 0.7075 / 0.7378; 0.25 stays
    near_margin: float = 0.25
    # a target the search lost across the frame's edge and re-finds is shown once the mask tracker's mask reaches
    # into the found box (near_margin) too: the mask tracker lets go of a target that left and does not take a
    # look-alike for it. Session 25, re-finds after an edge exit logged on the procedural selection sets: the four
    # right ones had the mask in the box on their first frame, the wrong one had no mask (README, box card)
    reentry_mask: bool = True
    # where the mask tracker's mask covers the centre of the search's box, the search's next doubtful match is not
    # re-checked over the wider region (SiamFCConfig.recheck_below): both trackers saw the target there. Session 27:
    # the four selection sets below give the same AUC on every clip with it and without; parkour 11.3 against
    # 6.1-6.4 frames/s (its match is doubtful on most frames; README)
    confirm_search: bool = True
    # A target's mask step rests on a frame where its match scores at least sure_mask_score, as it did on the
    # frame before, and its last prompt lies more than sure_mask_every frames back; it then runs on one such frame
    # in sure_mask_every. There each box is the Siamese one anyway (max_search_score): the mask step keeps
    # the mask tracker's memory fresh for when a match turns doubtful, and on the frames between each mask shown is
    # the last one moved with its box. Each target rests on its own (session 43; all or none before, since the mask
    # tracker shares each pixel out among the objects it works on: on the sprites, 2-6 objects, AUC 0.7422 either
    # way, clips moving by up to 0.02 both ways; ten objects on the speed benchmark's clip 5.5 -> 6.4-6.6 frames/s,
    # where one doubtful target had all ten take the step). The first frames after a prompt build that memory, and a
    # match on its way down (motorbike: 0.75 to 0.70 over five frames, then doubtful) is about to need it, so neither
    # rests. Session 29,
    # the four selection sets below: every clip keeps its AUC and prec@20 (0.8712 / 0.7314 / 0.7048 / 0.7428), with
    # 16 as with 8; resting from the first frames or from 0.7 moved clips by up to 0.1 either way (README). Sure
    # targets run about twice as fast (DAVIS train boat 7.3-8.0 -> 16.6-18.4 frames/s, surf 7.6-9.2 -> 17.5-19.4).
    # sure_mask_every 1: the mask step on every frame
    sure_mask_every: int = 8
    sure_mask_score: float = 0.75
    # A target's mask step also rests on the frame after one where its fresh mask agreed with what a resting frame
    # would have shown (the last fresh mask moved with the search's box: mask IoU >= agree_mask_iou), one frame in a
    # row at most; the next fresh step checks that prediction again, over the two-frame gap. The same age rule as
    # above; the search must see the target. It serves the doubtful matches, which the sure rest
    # leaves alone. Session 43, the four selection sets below (AUC; off 0.8872 / 0.7314 / 0.7048 / 0.7421, mean
    # 0.7664): 0.9 0.8826 / 0.7314 / 0.7026 / 0.7419 (0.7646), 0.8 0.8758 / 0.7314 / 0.7028 / 0.7405 (0.7626);
    # blackswan 13.3-14.1 -> 19.5-20.4 frames/s with 0.9 on a busy machine (README). 0: off
    agree_mask_iou: float = 0.9
    # ...and only where the target's match on the frame to rest scores at least this: the rule's losses sat where
    # the search was least sure. Session 43, the same sets with 0.9: floor 0 0.7646 (above), 0.45 0.8863 / 0.7314 /
    # 0.7046 / 0.7422 (0.7661), 0.55 0.8861 / 0.7314 / 0.7046 / 0.7421 (0.7661); blackswan's speed the same
    # (with both, on a quieter machine: 22.3-23.9 frames/s against 15.7-16.3 with agree_mask_iou 0)
    agree_min_score: float = 0.45

    def __post_init__(self):
        if self.min_mask_side < 0 or self.max_search_score < 0:
            raise ValueError(f"min_mask_side and max_search_score must be >= 0, got {self.min_mask_side} and "
                             f"{self.max_search_score}")
        if not (0 <= self.agree_mask_iou <= 1 and 0 <= self.agree_min_score <= 1):
            raise ValueError(f"agree_mask_iou and agree_min_score must be in [0, 1], got {self.agree_mask_iou} and "
                             f"{self.agree_min_score}")
        if self.sure_mask_every < 1:
            raise ValueError(f"sure_mask_every must be at least 1 (frames), got {self.sure_mask_every}")


@registry.register("siamfc-mask", kind="box", priority=20,
                   description="Siamese search for where the target is, trained mask tracker for its extent")
class SiamFCMaskTracker(Tracker):
    kind = "box"
    config_cls = SiamFCMaskConfig
    name = "siamfc-mask"

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        cfg = self.config
        # the checkpoint is the mask tracker's: the Siamese search on ImageNet features has none
        self.search = registry.build(cfg.search_tracker, config={**cfg.search_config,
                                                                   "return_attention": cfg.return_attention},
                                     device=self.device)
        if self.search.kind != "box":
            raise ValueError(f"siamfc-mask needs a box tracker to search, but {cfg.search_tracker!r} is a "
                             f"{self.search.kind} tracker")
        self.masks = build_mask_tracker(self.name, cfg.mask_tracker, dict(cfg.mask_config), self.device, checkpoint,
                                        cfg.mask_weights)
        self._mask_scale = 1.0  # mask tracker's internal pixels per frame pixel
        self._frame_hw = (0, 0)

    def set_video(self, frames) -> None:
        super().set_video(frames)
        self.search.set_video(frames)
        self.masks.set_video(frames)
        height, width = frames[0].shape[:2]
        self._frame_hw = (height, width)
        internal = self.masks.config.max_side if hasattr(self.masks.config, "max_side") else max(height, width)
        self._mask_scale = min(1.0, internal / max(height, width))

    def reset(self) -> None:
        super().reset()
        for inner in (getattr(self, "search", None), getattr(self, "masks", None)):
            if inner is not None:
                inner.reset()

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        result = self.search.add_prompt(frame_idx, obj_id, prompt)
        inner = self.masks.add_prompt(frame_idx, obj_id, prompt)
        return ObjectResult(box=prompt_box(prompt, frame_idx, self.name), mask=inner.mask, visible=prompt.visible,
                            score=result.score)

    def remove_prompt(self, frame_idx: int, obj_id: int) -> None:
        super().remove_prompt(frame_idx, obj_id)
        self.search.remove_prompt(frame_idx, obj_id)
        self.masks.remove_prompt(frame_idx, obj_id)

    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        searched = self.search.propagate(start_frame_idx, reverse, end_frame_idx)
        masked = self.masks.propagate(start_frame_idx, reverse, end_frame_idx)
        reentry = (_Reentry(self.search.config.exit_margin, self.config.near_margin, self._frame_hw)
                   if self.config.reentry_mask else None)
        # a match the box is taken from the mask on needs its mask step
        resting = _Resting(self.config.sure_mask_every, max(self.config.sure_mask_score, self.config.max_search_score),
                           self.config.agree_mask_iou, self.config.agree_min_score)
        for found in searched:
            prompts = self.prompts.get(found.frame_idx, {})
            rested = resting.choose(found.objects, prompts, reentry.unconfirmed if reentry is not None else set())
            self.masks.rest(rested)
            # the mask tracker looks around where the search found each target on this frame
            self.masks.focus({obj_id: result.box for obj_id, result in found.objects.items()
                              if result.visible and result.box is not None and obj_id not in rested})
            shaped = next(masked)
            objects = {}
            for obj_id, result in found.objects.items():
                inner = resting.moved_mask(obj_id, result) if obj_id in rested else shaped.objects.get(obj_id)
                resting.shaped(obj_id, inner, result)
                combined = self._combine(result, inner, prompts.get(obj_id))
                objects[obj_id] = combined if reentry is None else reentry.check(obj_id, result.visible, combined,
                                                                                 obj_id in prompts)
            if self.config.confirm_search:
                self.search.confirm({obj_id for obj_id, result in found.objects.items()
                                     if _mask_at_centre(shaped.objects.get(obj_id), result)})
            yield FrameResult(found.frame_idx, objects)

    def _combine(self, found: ObjectResult, shaped: ObjectResult | None, prompt: Prompt | None) -> ObjectResult:
        box = found.box
        mask = shaped.mask if shaped is not None else None
        unsure = found.score is None or found.score < self.config.max_search_score
        if prompt is None and found.visible and unsure and shaped is not None and shaped.visible and mask is not None:
            extent = near_parts_box(mask, found.box, self.config.near_margin)
            if extent is not None:
                side = float(np.sqrt(np.prod(extent[2:] - extent[:2]))) * self._mask_scale
                if side >= self.config.min_mask_side:
                    box = extent
        return ObjectResult(box=None if box is None else box.copy(), mask=mask, visible=found.visible,
                            score=found.score, attention=found.attention)


def _mask_at_centre(shaped: ObjectResult | None, found: ObjectResult) -> bool:
    """Whether the mask tracker's mask covers the centre of the search's (visible) box: both see the target there.
    (Not the two boxes' overlap: on a doubtful match the search's box has the template's shape, not the target's.)"""
    if shaped is None or not shaped.visible or shaped.mask is None or not found.visible or found.box is None:
        return False
    height, width = shaped.mask.shape
    col, row = np.clip(np.round((found.box[:2] + found.box[2:]) / 2).astype(int), 0, [width - 1, height - 1])
    return bool(shaped.mask[row, col])


class _Resting:
    """One propagation's choice of the frames where the targets skip the mask step (SiamFCMaskConfig.sure_mask_every,
    sure_mask_score, agree_mask_iou, agree_min_score), and the masks they show meanwhile: the last mask the mask step
    gave, moved as the search's box moved since."""

    def __init__(self, every: int, sure_score: float, agree_iou: float, agree_score: float):
        self.every, self.sure_score, self.agree_iou, self.agree_score = every, sure_score, agree_iou, agree_score
        self.sure: set[int] = set()  # objects whose match was sure on the last frame
        self.agreed: set[int] = set()  # objects whose last fresh mask the moved mask before it predicted
        self.skipped: dict[int, int] = {}  # frames each object has skipped the mask step in a row
        self.last: dict[int, tuple[ObjectResult, np.ndarray]] = {}  # the last mask step's result and the box then
        self.age: dict[int, int] = {}  # frames since each object's last prompt

    def choose(self, found: dict[int, ObjectResult], prompts: dict, unconfirmed: set[int]) -> set[int]:
        """The objects that skip the mask step on this frame, each by the rules on its own."""
        sure = {obj_id for obj_id, result in found.items()
                if result.visible and result.score is not None and result.score >= self.sure_score}
        for obj_id in found:
            self.age[obj_id] = 0 if obj_id in prompts else self.age.get(obj_id, 0) + 1
        resting = {obj_id for obj_id, result in found.items()
                   if self.age[obj_id] > self.every and obj_id not in unconfirmed and (
                       (obj_id in sure and obj_id in self.sure and self.skipped.get(obj_id, 0) < self.every - 1)
                       or (self.agree_iou > 0 and obj_id in self.agreed and self.skipped.get(obj_id, 0) == 0
                           and result.visible and result.box is not None
                           and (result.score or 0.0) >= self.agree_score))}
        for obj_id in found:
            self.skipped[obj_id] = self.skipped.get(obj_id, 0) + 1 if obj_id in resting else 0
        self.sure = sure
        return resting

    def shaped(self, obj_id: int, inner: ObjectResult | None, found: ObjectResult) -> None:
        """Keep a fresh mask step's visible result with the search's box on its frame, and note whether it agreed with
        the last one moved with the box (what a resting frame would have shown)."""
        if self.skipped.get(obj_id, 0) == 0:
            fresh = inner is not None and inner.visible and inner.mask is not None and found.box is not None
            predicted = self._moved(obj_id, found.box) if fresh and self.agree_iou > 0 else None
            if predicted is not None and predicted.any() and mask_iou(predicted, inner.mask) >= self.agree_iou:
                self.agreed.add(obj_id)
            else:
                self.agreed.discard(obj_id)
            if fresh:
                self.last[obj_id] = (inner, found.box.copy())
            else:
                self.last.pop(obj_id, None)

    def moved_mask(self, obj_id: int, found: ObjectResult) -> ObjectResult | None:
        """None where the mask step last lost the object (its box is the search's alone anyway: the match is sure)."""
        moved = self._moved(obj_id, found.box)
        if moved is None:
            return None
        return replace(self.last[obj_id][0], mask=moved, box=mask_to_box(moved), visible=bool(moved.any()))

    def _moved(self, obj_id: int, box: np.ndarray) -> np.ndarray | None:
        """The object's last fresh mask moved as the search's box moved since, to `box` (None: no such mask)."""
        if obj_id not in self.last:
            return None
        inner, then = self.last[obj_id]
        shift = (box[:2] + box[2:]) / 2 - (then[:2] + then[2:]) / 2  # (dx, dy)
        return shifted(inner.mask, np.rint(shift[::-1]), fill=False)


class _Reentry:
    """One propagation's re-entry check (SiamFCMaskConfig.reentry_mask): a target that the search lost across
    the frame's edge and re-finds stays hidden until the mask tracker's mask reaches into its box too."""

    def __init__(self, exit_margin: float, near_margin: float, frame_hw: tuple[int, int]):
        self.exit_margin, self.near_margin, self.frame_hw = exit_margin, near_margin, frame_hw
        self.last_box: dict[int, np.ndarray] = {}  # (4,) where each object was last shown
        self.searched_visible: dict[int, bool] = {}  # whether the search saw each object on the last frame
        self.unconfirmed: set[int] = set()  # re-found across an edge, not yet seen by the mask tracker

    def check(self, obj_id: int, search_visible: bool, result: ObjectResult, prompted: bool) -> ObjectResult:
        """This frame's result for an object, hidden while it waits for the mask tracker."""
        was_visible = self.searched_visible.get(obj_id, True)
        self.searched_visible[obj_id] = search_visible
        if prompted or not search_visible:
            self.unconfirmed.discard(obj_id)
        elif not was_visible and obj_id in self.last_box and touched_sides(self.last_box[obj_id], self.frame_hw,
                                                                           self.exit_margin):
            self.unconfirmed.add(obj_id)
        if obj_id in self.unconfirmed:
            if result.mask is None or not result.mask[grown_window(result.box, self.near_margin)].any():
                return replace(result, visible=False)
            self.unconfirmed.discard(obj_id)
        if search_visible and result.box is not None:
            self.last_box[obj_id] = result.box
        return result


@dataclass
class SiamFCMaskFastConfig(SiamFCMaskConfig):
    # the mask step at 432 px and the side gate that passes the same targets there (the default before session 23)
    mask_config: dict = field(default_factory=lambda: _mask_options(432))
    min_mask_side: float = 40.0


@registry.register("siamfc-mask-fast", kind="box", priority=15,
                   description="siamfc-mask with its mask step at half resolution: about 2.5x faster, but it "
                               "loses thin parts (sticks, lines, frames) and the box with them")
class SiamFCMaskFastTracker(SiamFCMaskTracker):
    config_cls = SiamFCMaskFastConfig
    name = "siamfc-mask-fast"
