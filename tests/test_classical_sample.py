"""The bundled sample clip: its files agree with the script that makes them, and the classical
trackers follow its objects (judged against the clip's exact ground truth)."""
from __future__ import annotations

import json
import runpy

import cv2
import numpy as np
import pytest
from trackstudio import resources
from pycocotools import mask as mask_utils

from trackstudio.app.evaluation import box_iou
from trackstudio.trackers import Prompt, registry

SAMPLE = resources.path("sample")
SCRIPT = resources.ROOT.parent / "scripts" / "make_sample_clip.py"


@pytest.fixture(scope="module")
def clip():
    capture = cv2.VideoCapture(str(SAMPLE / "sample.mp4"))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    with np.load(SAMPLE / "gt.npz", allow_pickle=False) as npz:
        gt = {key: npz[key] for key in npz.files}
    return frames, gt


@pytest.fixture(scope="module")
def rendered():
    """(frames (T, H, W, 3), gt) straight from the script, before video compression."""
    return runpy.run_path(str(SCRIPT), run_name="sample_clip")["render"](7)


def test_sample_files_are_small_and_consistent(clip, rendered):
    frames, gt = clip
    assert sum(p.stat().st_size for p in SAMPLE.iterdir()) < 2_000_000
    assert len(frames) == gt["masks"].shape[0] == 60 and frames[0].shape == (360, 640, 3)
    prompts = json.loads((SAMPLE / "prompts.json").read_text())
    assert prompts["format"] == "trackstudio" and prompts["version"] == 1
    assert prompts["video"]["num_frames"] == 60 and (SAMPLE / prompts["video"]["path"]).is_file()
    by_kind = {}
    for obj in prompts["objects"]:
        by_kind.setdefault(obj["kind"], []).append(obj)
        assert obj["frames"]["0"]["keyframe"] is True
    assert len(by_kind["box"]) == 1 and len(by_kind["mask"]) == 1 and len(by_kind["point"]) >= 3
    np.testing.assert_allclose(by_kind["box"][0]["frames"]["0"]["box"], gt["boxes"][0, 0])
    rle = dict(by_kind["mask"][0]["frames"]["0"]["mask"])
    mask = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)
    np.testing.assert_array_equal(mask, gt["masks"][0] == 2)
    points = np.array([obj["frames"]["0"]["point"] for obj in by_kind["point"]])
    np.testing.assert_allclose(points, gt["trajs_2d"][0])
    assert gt["visibs"][0].all() and not gt["visibs"].all()  # points hide later: occlusion, leaving view
    # The mp4 is a faithful (lossy) copy of the rendered frames.
    assert np.abs(frames[30].astype(int) - rendered[0][30]).mean() < 6


def test_script_reproduces_the_ground_truth(clip, rendered):
    _, gt = clip
    rendered_gt = rendered[1]
    assert sorted(rendered_gt) == sorted(gt)
    for key, value in rendered_gt.items():
        np.testing.assert_array_equal(value, gt[key], err_msg=key)


def test_csrt_follows_the_square_through_the_occlusion(clip):
    frames, gt = clip
    trk = registry.build("csrt", device="cpu")
    trk.set_video(frames)
    trk.add_prompt(0, 1, Prompt(box=gt["boxes"][0, 0]))
    boxes = np.stack([r.objects[1].box for r in trk.propagate(0, end_frame_idx=44)])  # the bar: frames 28-40
    ious = box_iou(boxes, gt["boxes"][:45, 0])
    assert ious.min() > 0.7 and ious.mean() > 0.9, np.round(ious, 2)


def test_dis_flow_follows_the_blob(clip):
    frames, gt = clip
    blob = gt["masks"] == 2
    trk = registry.build("dis-flow", device="cpu")
    trk.set_video(frames)
    from_box = trk.add_prompt(0, 1, Prompt(box=[425, 55, 536, 166]))  # GrabCut from a loose box
    assert (from_box.mask & blob[0]).sum() / (from_box.mask | blob[0]).sum() > 0.9
    trk.add_prompt(0, 1, Prompt(mask=blob[0]))
    masks = [r.objects[1].mask for r in trk.propagate(0, end_frame_idx=8)]
    ious = [(m & b).sum() / (m | b).sum() for m, b in zip(masks, blob)]
    assert min(ious) > 0.7, np.round(ious, 2)


def test_lk_follows_points_and_hides_those_that_leave(clip):
    frames, gt = clip
    trk = registry.build("lk", device="cpu")
    trk.set_video(frames)
    for n, xy in enumerate(gt["trajs_2d"][0]):
        trk.add_prompt(0, n, Prompt(point=xy))
    results = list(trk.propagate(0))
    xy = np.stack([[r.objects[n].point for n in range(len(gt["point_query"]))] for r in results])  # (T, N, 2)
    visible = np.stack([[r.objects[n].visible for n in range(len(gt["point_query"]))] for r in results])
    error = np.linalg.norm(xy - gt["trajs_2d"], axis=-1)  # (T, N)
    background = [0, 1]  # scene points that stay in view
    assert error[:, background].max() < 2
    square = [4, 5]  # points on the square, until the bar hides them
    assert error[:30, square].max() < 2
    for n in (2, 3):  # scene points that pan out of view
        gone = ~gt["visibs"][:, n]
        assert gone.any() and not visible[gone, n].any()
        assert error[~gone, n].max() < 2
