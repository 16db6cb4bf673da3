"""Interpolation between an object's keyframes, as a tracker kind (CVAT's interpolation mode).

Boxes and points move linearly from one keyframe to the next. Masks blend the signed distance
fields of the two keyframe masks, each first shifted so their centroids travel in a straight line
(plain blending of two far-apart masks would shrink to nothing halfway). No model, no weights.

Rules between keyframes a < f < b (as in CVAT): both visible -> interpolated; a visible, b absent ->
a is held until b; a absent -> absent. Frames before the first or after the last keyframe get no
result: interpolation never extrapolates. Results carry score 1.0 (interpolation has no confidence
of its own); prompted frames return the prompt.
"""
from __future__ import annotations

import bisect
from typing import Iterator

import cv2  # distanceTransform: an exact, fast Euclidean distance transform (a solved problem)
import numpy as np

from .base import Tracker
from .registry import register
from .types import FrameResult, ObjectResult, Prompt, prompt_box

_FAR = 1e6  # signed distance of pixels shifted in from outside the frame: far outside the mask


class _Interpolation(Tracker):
    """Common walk: for each frame, each object's keyframes around it decide its state."""

    def reset(self) -> None:
        super().reset()
        # masks: (obj_id, keyframe) -> (signed distance field (H, W), centroid (2,) y, x)
        self._fields: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = {}

    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        frame_range = self._frame_range(start_frame_idx, reverse, end_frame_idx)
        keyframes: dict[int, list[int]] = {}  # obj_id -> its prompted frames, increasing
        for frame_idx in sorted(self.prompts):
            for obj_id in self.prompts[frame_idx]:
                keyframes.setdefault(obj_id, []).append(frame_idx)
        for frame_idx in frame_range:
            results = {}
            for obj_id, keys in keyframes.items():
                result = self._state_at(obj_id, keys, frame_idx)
                if result is not None:
                    results[obj_id] = result
            yield FrameResult(frame_idx, results)

    def _state_at(self, obj_id: int, keys: list[int], frame_idx: int) -> ObjectResult | None:
        after = bisect.bisect_left(keys, frame_idx)
        if after < len(keys) and keys[after] == frame_idx:
            return self.prompt_result(frame_idx, obj_id, self.prompts[frame_idx][obj_id])
        if after == 0 or after == len(keys):
            return None  # outside the keyframes: nothing to interpolate from
        a, b = keys[after - 1], keys[after]
        prompt_a, prompt_b = self.prompts[a][obj_id], self.prompts[b][obj_id]
        if not prompt_a.visible:
            return ObjectResult(box=prompt_a.box, point=prompt_a.point, visible=False)
        if not prompt_b.visible:
            return self.prompt_result(a, obj_id, prompt_a)  # held until the object goes out of view
        return self._blend(obj_id, a, b, (frame_idx - a) / (b - a))

    def _blend(self, obj_id: int, a: int, b: int, t: float) -> ObjectResult:
        """The state a fraction t (0 < t < 1) of the way from keyframe a to keyframe b."""
        raise NotImplementedError


@register("interpolate-box", kind="box", priority=-100,
          description="Linear interpolation between box keyframes (as CVAT); nothing beyond the last keyframe")
class BoxInterpolation(_Interpolation):
    kind = "box"

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        if not prompt.visible:
            return ObjectResult(box=prompt.box, visible=False)
        return ObjectResult(box=prompt_box(prompt, frame_idx, "interpolate-box"))

    def _blend(self, obj_id, a, b, t):
        box_a = self.prompt_result(a, obj_id, self.prompts[a][obj_id]).box
        box_b = self.prompt_result(b, obj_id, self.prompts[b][obj_id]).box
        return ObjectResult(box=((1 - t) * box_a + t * box_b).astype(np.float32))


@register("interpolate-point", kind="point", priority=-100,
          description="Linear interpolation between point keyframes (as CVAT); nothing beyond the last keyframe")
class PointInterpolation(_Interpolation):
    kind = "point"

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        if prompt.point is None:
            raise ValueError(f"interpolate-point needs a point keyframe for object {obj_id} on frame {frame_idx}")
        return ObjectResult(point=prompt.point, visible=prompt.visible)

    def _blend(self, obj_id, a, b, t):
        point_a, point_b = self.prompts[a][obj_id].point, self.prompts[b][obj_id].point
        return ObjectResult(point=((1 - t) * point_a + t * point_b).astype(np.float32))


@register("interpolate-mask", kind="mask", priority=-100,
          description="Signed-distance blending between two mask keyframes, centroids moving linearly; "
                      "nothing beyond the last keyframe")
class MaskInterpolation(_Interpolation):
    kind = "mask"

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        if prompt.mask is None:
            raise ValueError(f"interpolate-mask needs mask keyframes: object {obj_id} on frame {frame_idx} has "
                             "only a box or clicks (make its mask with click-to-mask or the brush)")
        return ObjectResult(mask=prompt.mask, visible=prompt.visible and bool(prompt.mask.any()))

    def _blend(self, obj_id, a, b, t):
        (sdf_a, centre_a), (sdf_b, centre_b) = self._field(obj_id, a), self._field(obj_id, b)
        if centre_a is None or centre_b is None:  # an empty keyframe mask: hold the other side's emptiness
            return ObjectResult(mask=np.zeros(sdf_a.shape, bool), visible=False)
        travel = centre_b - centre_a  # (2,) dy, dx
        blended = ((1 - t) * shifted(sdf_a, np.rint(t * travel).astype(int))
                   + t * shifted(sdf_b, np.rint((t - 1) * travel).astype(int)))
        mask = blended > 0
        return ObjectResult(mask=mask, visible=bool(mask.any()))

    def _field(self, obj_id: int, frame_idx: int) -> tuple[np.ndarray, np.ndarray | None]:
        key = (obj_id, frame_idx)
        if key not in self._fields:
            mask = self.prompts[frame_idx][obj_id].mask
            self._fields[key] = signed_distance(mask), mask_centroid(mask)
        return self._fields[key]


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) float32: distance to the boundary, positive inside the mask, negative outside."""
    inside = mask.astype(np.uint8)
    if not inside.any():
        return np.full(mask.shape, -_FAR, np.float32)
    if inside.all():
        return np.full(mask.shape, _FAR, np.float32)
    # distanceTransform: each non-zero pixel's distance to the nearest zero pixel
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    gap = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return depth - gap


def mask_centroid(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    return np.array([ys.mean(), xs.mean()]) if len(ys) else None


def shifted(field: np.ndarray, offset: np.ndarray, fill=-_FAR) -> np.ndarray:
    """`field` (H, W) moved by offset (dy, dx) whole pixels; what comes in from outside is `fill` (by default far
    outside the mask, for signed distances)."""
    dy, dx = int(offset[0]), int(offset[1])
    height, width = field.shape
    out = np.full_like(field, fill)
    if abs(dy) >= height or abs(dx) >= width:
        return out
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        field[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out
