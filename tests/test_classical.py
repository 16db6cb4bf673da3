"""Classical trackers (csrt, dis-flow, lk) on synthetic frames with exact ground truth."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.classical.grabcut import grabcut_mask

HEIGHT, WIDTH = 180, 240


def _texture(rng, height, width, cell):
    """Random blocks of `cell` px, softened: corners everywhere, no aliasing."""
    blocks = rng.random((height // cell + 1, width // cell + 1)).astype(np.float32)
    img = cv2.resize(blocks, (blocks.shape[1] * cell, blocks.shape[0] * cell),
                     interpolation=cv2.INTER_NEAREST)[:height, :width]
    img = cv2.GaussianBlur(img, (0, 0), cell / 3)
    return np.clip((img - img.min()) / np.ptp(img) * 255, 0, 255).astype(np.uint8)


def moving_square_clip(num_frames=14, start=(40, 50), velocity=(5, 3), side=44, pan=(0, 0), seed=0):
    """RGB frames of a textured square moving over a textured background that pans by `pan` px
    per frame. Integer motion, so the ground truth is exact. Returns frames, boxes (T, 4), masks (T, H, W)."""
    rng = np.random.default_rng(seed)
    margin = 4 * num_frames
    background = np.stack([_texture(rng, HEIGHT + 2 * margin, WIDTH + 2 * margin, 12)] * 3, -1)
    background[..., 2] //= 2
    sprite = np.stack([_texture(rng, side, side, 5)] * 3, -1)
    sprite[..., 0] = 255 - sprite[..., 0]
    frames, boxes, masks = [], [], []
    for t in range(num_frames):
        ox, oy = margin + pan[0] * t, margin + pan[1] * t
        frame = background[oy:oy + HEIGHT, ox:ox + WIDTH].copy()
        x, y = start[0] + velocity[0] * t, start[1] + velocity[1] * t
        frame[y:y + side, x:x + side] = sprite
        mask = np.zeros((HEIGHT, WIDTH), bool)
        mask[y:y + side, x:x + side] = True
        frames.append(frame)
        boxes.append([x, y, x + side, y + side])
        masks.append(mask)
    return frames, np.array(boxes, np.float32), np.stack(masks)


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_registered_with_kinds():
    assert registry.spec("csrt").kind == "box"
    assert registry.spec("dis-flow").kind == "mask"
    assert registry.spec("lk").kind == "point"
    with pytest.raises(ValueError, match="preset"):
        registry.build("dis-flow", {"preset": "slow"}, device="cpu")


# -- csrt ------------------------------------------------------------------------------------------
def test_csrt_follows_moving_square():
    frames, boxes, _ = moving_square_clip()
    trk = registry.build("csrt", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 7, Prompt(box=boxes[0]))
    results = list(trk.propagate(0))
    assert [r.frame_idx for r in results] == list(range(len(frames)))
    got = np.stack([r.objects[7].box for r in results])
    assert np.abs(got - boxes).max() < 4
    assert all(r.objects[7].visible for r in results)


def test_csrt_reanchors_on_prompt_and_runs_backward():
    frames, boxes, _ = moving_square_clip()
    trk = registry.build("csrt", device="cpu")
    trk.set_video(frames)
    last = len(frames) - 1
    trk.add_prompt(last, 1, Prompt(box=boxes[last]))
    moved = boxes[6] + [2.5, -1.5, 2.5, -1.5]  # the user corrects the box on frame 6
    trk.add_prompt(6, 1, Prompt(box=moved))
    results = {r.frame_idx: r.objects[1] for r in trk.propagate(last, reverse=True)}
    assert sorted(results) == list(range(len(frames)))
    np.testing.assert_array_equal(results[6].box, moved)
    got = np.stack([results[t].box for t in range(6)])
    assert np.abs(got - (boxes[:6] + [2.5, -1.5, 2.5, -1.5])).max() < 4  # carried on from the correction


def test_csrt_reports_lost_target_and_keeps_last_box():
    frames, boxes, _ = moving_square_clip(num_frames=10)
    frames = frames[:5] + [np.zeros_like(f) for f in frames[5:]]  # the picture goes black
    trk = registry.build("csrt", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(box=boxes[0]))
    results = [r.objects[1] for r in trk.propagate(0)]
    lost = [r for r in results[5:] if not r.visible]
    assert lost, "CSRT kept reporting a target on black frames"
    assert all(r.score == 0.0 and r.box is not None for r in lost)


# -- dis-flow --------------------------------------------------------------------------------------
@pytest.mark.parametrize("occlusion_check", [True, False])
def test_dis_flow_mask_follows(occlusion_check):
    frames, _, masks = moving_square_clip(num_frames=10, velocity=(3, 2), pan=(1, 1), side=56)
    trk = registry.build("dis-flow", {"occlusion_check": occlusion_check, "return_attention": True}, device="cpu")
    trk.set_video(frames)
    first = trk.add_prompt(0, 3, Prompt(mask=masks[0]))
    np.testing.assert_array_equal(first.mask, masks[0])
    results = [r.objects[3] for r in trk.propagate(0)]
    ious = [iou(r.mask, m) for r, m in zip(results, masks)]
    # Flow warping drifts (smoothed flow at the edges), but it clearly moves with the square.
    assert min(ious) > (0.6 if occlusion_check else 0.45), np.round(ious, 2)
    assert ious[-1] > iou(masks[0], masks[-1]) + 0.25
    assert all(r.visible and 0 < r.score <= 1 for r in results)
    attention = results[-1].attention
    assert attention is not None and attention.dtype == np.float32
    assert 0 <= attention.min() and attention.max() <= 1
    # The square moves faster than the panning background, so it draws more attention.
    assert attention[masks[-1]].mean() > attention[~masks[-1]].mean()


def test_dis_flow_box_and_click_prompts_make_grabcut_masks():
    frames, boxes, masks = moving_square_clip(velocity=(3, 2))
    trk = registry.build("dis-flow", device="cpu")
    trk.set_video(frames)
    from_box = trk.add_prompt(0, 1, Prompt(box=boxes[0] + [-6, -6, 6, 6]))
    assert iou(from_box.mask, masks[0]) > 0.85
    cx, cy = (boxes[0, :2] + boxes[0, 2:]) / 2
    from_clicks = trk.add_prompt(4, 2, Prompt(clicks=[[cx + 20, cy + 12, 1], [cx + 20 + 60, cy + 12, 0]]))
    assert iou(from_clicks.mask, masks[4]) > 0.8
    results = {r.frame_idx: r.objects for r in trk.propagate(0, end_frame_idx=8)}
    np.testing.assert_array_equal(results[0][1].mask, from_box.mask)  # the prompt result is the walk's result
    np.testing.assert_array_equal(results[4][2].mask, from_clicks.mask)
    assert min(iou(results[8][1].mask, masks[8]), iou(results[8][2].mask, masks[8])) > iou(masks[0], masks[8]) + 0.2


def test_grabcut_needs_a_box_or_positive_click():
    with pytest.raises(ValueError, match="positive click"):
        grabcut_mask(np.zeros((20, 20, 3), np.uint8), clicks=np.array([[5, 5, 0]]))


def test_dis_flow_reanchors_on_second_mask():
    frames, _, masks = moving_square_clip()
    trk = registry.build("dis-flow", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(mask=masks[0]))
    corrected = np.roll(masks[7], 3, axis=0)
    trk.add_prompt(7, 1, Prompt(mask=corrected))
    results = {r.frame_idx: r.objects[1] for r in trk.propagate(0)}
    np.testing.assert_array_equal(results[7].mask, corrected)
    np.testing.assert_array_equal(results[7].box, [masks[7].any(0).argmax(), masks[7].any(1).argmax() + 3,
                                                   masks[7].any(0).argmax() + 44, masks[7].any(1).argmax() + 47])


def test_dis_flow_reduced_resolution_flow_still_follows():
    frames, _, masks = moving_square_clip(num_frames=8, velocity=(2, 1), side=56)
    trk = registry.build("dis-flow", {"max_side": 160}, device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(mask=masks[0]))
    last = list(trk.propagate(0))[-1].objects[1]
    assert iou(last.mask, masks[-1]) > 0.6


# -- lk ----------------------------------------------------------------------------------------------
def test_lk_points_follow_square_and_background():
    frames, boxes, _ = moving_square_clip(pan=(2, 1))
    on_square = boxes[:, :2] + [[12, 14]]  # (T, 2)
    on_background = np.array([[200.0, 30.0]]) - np.arange(len(frames))[:, None] * [2, 1]  # the camera pans
    trk = registry.build("lk", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(point=on_square[0]))
    trk.add_prompt(0, 2, Prompt(point=on_background[0]))
    results = list(trk.propagate(0))
    for obj_id, truth in ((1, on_square), (2, on_background)):
        got = np.stack([r.objects[obj_id].point for r in results])
        assert np.abs(got - truth).max() < 2, obj_id
        assert all(r.objects[obj_id].visible for r in results)


def test_lk_point_leaving_the_frame_is_not_visible():
    frames, _, _ = moving_square_clip(num_frames=14, pan=(4, 0), start=(150, 60), velocity=(0, 0))
    trk = registry.build("lk", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(point=[20.0, 120.0]))  # background: moves left 4 px a frame, out after frame 5
    trk.add_prompt(0, 2, Prompt(point=[120.0, 150.0]))  # stays in view
    results = list(trk.propagate(0))
    visible = [r.objects[1].visible for r in results]
    assert all(visible[:4]) and not any(visible[6:])
    assert all(r.objects[2].visible for r in results)


def test_lk_reanchors_many_points_and_runs_backward():
    frames, boxes, _ = moving_square_clip()
    grid = np.stack(np.meshgrid(np.arange(12, 33, 5), np.arange(12, 33, 5)), -1).reshape(-1, 2).astype(np.float32)
    last = len(frames) - 1
    trk = registry.build("lk", device="cpu")
    trk.set_video(frames)
    for n, offset in enumerate(grid):
        trk.add_prompt(last, n, Prompt(point=boxes[last, :2] + offset))
    corrected = boxes[5, :2] + grid[0] + [0.25, -0.5]
    trk.add_prompt(5, 0, Prompt(point=corrected))
    results = {r.frame_idx: r.objects for r in trk.propagate(last, reverse=True)}
    np.testing.assert_array_equal(results[5][0].point, corrected)
    errors = [np.abs(results[0][n].point - (boxes[0, :2] + grid[n])).max() for n in range(1, len(grid))]
    assert max(errors) < 2


def test_prompts_a_tracker_cannot_use_are_refused_clearly():
    frames, boxes, _ = moving_square_clip(num_frames=3)
    for name, prompt, message in (("lk", Prompt(box=boxes[0]), "point prompt"),
                                  ("csrt", Prompt(point=[5, 5]), "box prompt"),
                                  ("dis-flow", Prompt(point=[5, 5]), "a mask, a box or clicks")):
        trk = registry.build(name, device="cpu")
        trk.set_video(frames)
        with pytest.raises(ValueError, match=message):
            trk.add_prompt(1, 4, prompt)
