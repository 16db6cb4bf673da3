"""The official SAM2.1 checkpoints as `Tracker`s, following the official video predictor.

Per object: every prompted frame is a conditioning frame (kept for the whole walk), and the six
most recent tracked frames plus up to 15 recent object pointers make the rest of its memory bank,
so time and memory per frame stay constant as the video grows.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch

from ...base import Tracker, TrackerConfig
from ...checkpoints import CheckpointError, load_state_dict_file, resolve_checkpoint
from ...device import autocast
from ...types import FrameResult, ObjectResult, Prompt
from . import config as C
from .model import FrameFeatures, Memory, Sam2Model, SamOutput
from .transforms import fill_small_holes, logits_to_video, mask_to_input, preprocess_frame, prompt_points


@dataclass
class Sam2OfficialConfig(TrackerConfig):
    image_size: int = 1024  # model input side; the checkpoints are trained at 1024
    fill_hole_area: int = 8  # fill background holes up to this many low-res pixels (0: off)
    feature_cache_frames: int = 4  # image features kept for re-use (prompting, then propagating)


@dataclass
class _Conditioning:
    """A prompt turned into the model's output on its frame, and the memory made from it."""
    prompt: Prompt
    output: SamOutput
    memory: Memory | None = None


def build_model(size: str, image_size: int = 1024) -> Sam2Model:
    return Sam2Model(C.HIERA_SPECS[size], image_size)


def load_official(model: Sam2Model, path) -> None:
    """Load an official `{"model": state_dict}` file strictly (its tensors replace the model's, so
    the model may be built on the meta device)."""
    state = load_state_dict_file(path, key="model")
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path} is not a SAM2.1 checkpoint of this size: {_first_line(err)}") from None


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0][:300]


class Sam2OfficialTracker(Tracker):
    kind = "mask"
    config_cls = Sam2OfficialConfig
    size: ClassVar[str]  # key of config.HIERA_SPECS
    weights_spec: ClassVar[object]

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            self.model = build_model(self.size, self.config.image_size)
        load_official(self.model, resolve_checkpoint(checkpoint or self.weights_spec))
        self.model.eval().to(self.device)
        self._features: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._conditioning: dict[tuple[int, int], _Conditioning] = {}
        self._hw: tuple[int, int] | None = None

    def set_video(self, frames) -> None:
        self._features.clear()
        self._hw = None
        super().set_video(frames)

    def reset(self) -> None:
        super().reset()
        self._conditioning = {}

    def remove_prompt(self, frame_idx: int, obj_id: int) -> None:
        super().remove_prompt(frame_idx, obj_id)
        self._conditioning.pop((frame_idx, obj_id), None)

    # -- prompts -------------------------------------------------------------------------------
    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        cond = self._condition(frame_idx, obj_id, prompt)
        if prompt.mask is not None and prompt.visible:
            return ObjectResult(mask=prompt.mask, visible=bool(prompt.mask.any()))
        return self._result(cond.output, attention=None)

    def _condition(self, frame_idx: int, obj_id: int, prompt: Prompt) -> _Conditioning:
        """The model output for a prompt on its frame (re-used while the prompt is unchanged)."""
        previous = self._conditioning.get((frame_idx, obj_id))
        if previous is not None and previous.prompt is prompt:
            return previous
        features = self._frame_features(frame_idx)
        with torch.inference_mode(), autocast(self.device):
            output = self._prompt_output(frame_idx, features, prompt, previous)
            output.low_res_logits = fill_small_holes(output.low_res_logits, self.config.fill_hole_area)
            output.high_res_logits = self.model.upsample_to_input(output.low_res_logits)
        cond = _Conditioning(prompt, output)
        self._conditioning[(frame_idx, obj_id)] = cond
        return cond

    def _prompt_output(self, frame_idx: int, features: FrameFeatures, prompt: Prompt,
                       previous: _Conditioning | None) -> SamOutput:
        size = self.config.image_size
        if not prompt.visible:
            empty = torch.zeros(1, 1, size, size, device=self.device)
            return self.model.mask_as_output(features, empty)
        if prompt.mask is not None:
            if prompt.mask.shape != self._video_hw:
                raise ValueError(f"the mask prompt on frame {frame_idx} is {prompt.mask.shape}, "
                                 f"the video frames are {self._video_hw}")
            return self.model.mask_as_output(features, mask_to_input(prompt.mask, size, self.device))
        clicks = prompt.clicks
        if clicks is None and prompt.point is not None:
            clicks = np.array([[prompt.point[0], prompt.point[1], 1.0]], np.float32)
        points = prompt_points(clicks, prompt.box, self._video_hw, size, self.device)
        if points is None:
            raise ValueError(f"the prompt on frame {frame_idx} has no mask, box, clicks or point")
        coords, labels = points
        # More clicks on the same object and frame refine the previous mask, as in the official
        # predictors: its logits become a dense prompt.
        prev_logits = None
        if previous is not None and _extends(previous.prompt, prompt):
            prev_logits = previous.output.low_res_logits.clamp(-32.0, 32.0)
        # Multimask output (best of three) only for a single point; a box counts as two.
        return self.model.sam_heads(self.model.without_memory(features), features.high_res, coords, labels,
                                    prev_logits, multimask=coords.shape[1] <= 1)

    # -- propagation ---------------------------------------------------------------------------
    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        frame_range = self._frame_range(start_frame_idx, reverse, end_frame_idx)
        banks = self._conditioning_banks()
        step = -1 if reverse else 1
        recent: dict[int, dict[int, Memory]] = {}  # obj_id -> frame_idx -> memory of tracked frames
        for frame_idx in frame_range:
            anchored = self.prompts.get(frame_idx, {})
            results: dict[int, ObjectResult] = {}
            for obj_id, prompt in anchored.items():
                results[obj_id] = self.prompt_result(frame_idx, obj_id, prompt)
                recent.setdefault(obj_id, {})
            moving = [obj_id for obj_id in recent if obj_id not in anchored]
            if moving:
                features = self._frame_features(frame_idx)
                for obj_id in moving:
                    results[obj_id] = self._track(frame_idx, features, banks[obj_id], recent[obj_id], step)
            yield FrameResult(frame_idx, results)

    def _conditioning_banks(self) -> dict[int, dict[int, Memory]]:
        """obj_id -> frame_idx -> memory of each prompted frame (computed once per prompt)."""
        banks: dict[int, dict[int, Memory]] = {}
        for frame_idx, by_obj in sorted(self.prompts.items()):
            for obj_id, prompt in by_obj.items():
                cond = self._condition(frame_idx, obj_id, prompt)
                if cond.memory is None:
                    with torch.inference_mode(), autocast(self.device):
                        # what the user saw on this frame is what is remembered: binarised
                        cond.memory = self.model.encode_memory(self._frame_features(frame_idx), cond.output,
                                                               binarize=True)
                banks.setdefault(obj_id, {})[frame_idx] = cond.memory
        return banks

    def _track(self, frame_idx: int, features: FrameFeatures, cond: dict[int, Memory],
               recent: dict[int, Memory], step: int) -> ObjectResult:
        memories = [(0, mem) for mem in cond.values()]
        for t_pos in range(1, C.NUM_MASKMEM):  # t_pos 6 is the previous frame of the walk
            mem = recent.get(frame_idx - (C.NUM_MASKMEM - t_pos) * step)
            if mem is not None:
                memories.append((t_pos, mem))
        max_ptrs = min(len(self.frames), C.MAX_OBJ_PTRS)
        # pointers: conditioning frames already passed in walk order, then recent tracked frames
        pointers = [((frame_idx - t) * step, mem.obj_ptr) for t, mem in cond.items()
                    if (t - frame_idx) * step <= 0]
        for distance in range(1, max_ptrs):
            mem = recent.get(frame_idx - distance * step)
            if mem is not None:
                pointers.append((distance, mem.obj_ptr))
        with torch.inference_mode(), autocast(self.device):
            pix_feat, looked = self.model.condition_on_memory(
                features, memories, pointers, max_ptrs - 1, with_attention=self.config.return_attention)
            # with no clicks SAM2.1 tracks with the best of the three multimask outputs
            output = self.model.sam_heads(pix_feat, features.high_res, multimask=True)
            recent[frame_idx] = self.model.encode_memory(features, output, binarize=False)
            output.low_res_logits = fill_small_holes(output.low_res_logits, self.config.fill_hole_area)
        for old in [t for t in recent if (frame_idx - t) * step >= max_ptrs]:
            del recent[old]  # beyond both the memory frames and the pointer horizon
        return self._result(output, looked)

    # -- helpers -------------------------------------------------------------------------------
    @property
    def _video_hw(self) -> tuple[int, int]:
        if self._hw is None:
            self._hw = tuple(self.frames[0].shape[:2])
        return self._hw

    def _frame_features(self, frame_idx: int) -> FrameFeatures:
        if frame_idx in self._features:
            self._features.move_to_end(frame_idx)
            return self._features[frame_idx]
        self._check_frame(frame_idx)
        frame = self.frames[frame_idx]
        if tuple(frame.shape[:2]) != self._video_hw:
            raise ValueError(f"frame {frame_idx} is {frame.shape[:2]}, earlier frames were {self._video_hw}")
        with torch.inference_mode(), autocast(self.device):
            features = self.model.encode_image(preprocess_frame(frame, self.config.image_size, self.device))
        self._features[frame_idx] = features
        while len(self._features) > max(1, self.config.feature_cache_frames):
            self._features.popitem(last=False)
        return features

    def _result(self, output: SamOutput, attention: torch.Tensor | None) -> ObjectResult:
        logits = logits_to_video(output.low_res_logits, self._video_hw)[0, 0]
        mask = (logits > 0).cpu().numpy()
        present = float(output.object_score_logits[0, 0]) > 0 and bool(mask.any())
        heatmap = None
        if attention is not None:
            heat = attention[0].float()
            heatmap = (heat / heat.max().clamp(min=1e-6)).cpu().numpy().astype(np.float32)
        score = float(torch.sigmoid(output.object_score_logits[0, 0])) * float(output.iou[0]) if present else 0.0
        return ObjectResult(mask=mask, visible=present, score=score, attention=heatmap)


def _extends(before: Prompt, after: Prompt) -> bool:
    """Whether `after` only adds clicks to `before` (same box, same first clicks)."""
    if before.mask is not None or after.mask is not None or before.clicks is None or after.clicks is None:
        return False
    same_box = (before.box is None) == (after.box is None) and (
        before.box is None or np.array_equal(before.box, after.box))
    n = len(before.clicks)
    return same_box and len(after.clicks) > n and np.array_equal(after.clicks[:n], before.clicks)
