"""siamfc-stmixer (SiamFC search + the trained refinement / presence head) on procedural clips:
a target that leaves the view or is fully covered is reported absent within 5 frames and found again
within 10 frames of coming back; several objects share one backbone pass per frame."""
from __future__ import annotations

import numpy as np
import pytest

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.box.synthetic_clips import generate_box_clip

ABSENT_WITHIN = 5
FOUND_WITHIN = 10


def _box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    return float(inter / ((a[2:] - a[:2]).prod() + (b[2:] - b[:2]).prod() - inter))


pytestmark = pytest.mark.usefixtures("few_torch_threads")  # conftest.py


# seeds outside the 40 training clips' (seed 0, i) streams
@pytest.mark.parametrize("scenario,seed", [("leaves_view", 101), ("covered", 102), ("leaves_view", 103),
                                           ("covered", 104)])
def test_absent_target_is_reported_and_found_again(scenario, seed):
    frames, masks = generate_box_clip(np.random.default_rng([7, seed]), scenario=scenario)
    area = masks.sum((1, 2))
    gone = int(np.flatnonzero(area == 0)[0])
    back = gone + int(np.flatnonzero(area[gone:] >= 0.5 * area[0])[0])
    tracker = registry.build("siamfc-stmixer")
    tracker.set_video(list(frames))
    tracker.add_prompt(0, 1, Prompt(box=_box(masks[0])))
    results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
    hidden = [t for t in range(gone, gone + ABSENT_WITHIN) if not results[t].visible]
    assert hidden, f"{scenario}: target gone from frame {gone}, still reported visible for {ABSENT_WITHIN} frames"
    found = [t for t in range(back, min(back + FOUND_WITHIN, len(frames)))
             if results[t].visible and _iou(results[t].box, _box(masks[t])) >= 0.5]
    assert found, f"{scenario}: target back on frame {back}, not found within {FOUND_WITHIN} frames"
    assert all(results[t].visible for t in range(1, max(gone - 3, 1)))  # seen while it is there


def test_objects_share_one_backbone_pass_per_frame():
    frames, masks = generate_box_clip(np.random.default_rng([7, 105]), num_frames=4, scenario="plain")
    tracker = registry.build("siamfc-stmixer")
    tracker.set_video(list(frames))
    box = _box(masks[0])
    for obj_id, shift in enumerate([0.0, 120.0, -120.0], start=1):
        tracker.add_prompt(0, obj_id, Prompt(box=np.clip(box + [shift, 0, shift, 0], 0, 447)))
    calls = []
    original = tracker.model.search_maps
    tracker.model.search_maps = lambda crops: calls.append(len(crops)) or original(crops)
    per_frame = []
    for result in tracker.propagate(0):
        assert len(result.objects) == 3
        per_frame.append(list(calls))
        calls.clear()
    # after the prompt frame: one batch per crop size (a lost target's wider crop is the only other size)
    assert all(1 <= len(batches) <= 2 for batches in per_frame[1:])
    assert max(max(batches) for batches in per_frame[1:]) >= 2 * tracker.config.scale_num
