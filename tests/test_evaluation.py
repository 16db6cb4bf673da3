"""app.evaluation: exact figures on synthetic cases, and agreement with the reference judge."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from trackstudio.app.evaluation import (box_scores, evaluate_predictions, evaluate_trackers, format_table, judged_objects,
                            load_sequence, mask_scores, tapvid_scores)


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2


# -- synthetic cases ------------------------------------------------------------------------------
def test_perfect_boxes_score_top_marks():
    gt = np.tile(np.array([10, 20, 50, 80], np.float32), (12, 1)) + np.arange(12)[:, None]
    auc, prec = box_scores(gt, gt, np.ones(12, bool))
    # Success counts IoU > threshold, so the threshold 1.0 is never passed (as OTB): 20 of 21.
    assert auc == pytest.approx(20 / 21) and prec == 1.0


def test_box_auc_counts_iou_thresholds_and_missing_boxes():
    gt = np.array([[0, 0, 10, 10]] * 4, np.float32)
    pred = gt.copy()
    pred[1] = [0, 0, 10, 5]  # IoU 0.5: above the 10 thresholds 0 .. 0.45
    pred[2] = np.nan  # a lost target
    pred[3] = [30, 30, 40, 40]  # far away: IoU 0, centre error > 20 px
    auc, prec = box_scores(pred, gt, np.ones(4, bool))
    assert auc == pytest.approx((20 + 10 + 0 + 0) / (4 * 21))
    assert prec == pytest.approx(2 / 4)


def test_mask_scores():
    shape = (120, 160)
    gt = _disk(shape, (80, 60), 30)
    assert mask_scores(gt, gt) == (1.0, 1.0)
    assert mask_scores(np.zeros(shape, bool), np.zeros(shape, bool)) == (1.0, 1.0)
    j, f = mask_scores(np.zeros(shape, bool), gt)
    assert j == 0.0 and f == 0.0
    # A one-pixel shift stays within the boundary tolerance (1 px here), so F is perfect and J is not.
    shifted = np.roll(gt, 1, axis=1)
    j, f = mask_scores(shifted, gt)
    assert 0.9 < j < 1.0 and f == pytest.approx(1.0)
    # A far-off blob of the same size: no overlap, no boundary match.
    j, f = mask_scores(_disk(shape, (20, 20), 10), _disk(shape, (130, 90), 10))
    assert j == 0.0 and f == 0.0


def test_tapvid_perfect_and_flipped_visibility():
    rng = np.random.default_rng(0)
    num_frames, num_points = 10, 6
    gt_xy = rng.uniform(0, 100, (num_frames, num_points, 2))
    gt_vis = rng.random((num_frames, num_points)) > 0.2
    query = np.zeros(num_points, int)
    judged = np.ones((num_frames, num_points), bool)
    perfect = tapvid_scores(gt_xy, gt_vis, gt_xy, gt_vis, (100, 100), query, judged)
    assert perfect == {"AJ": 1.0, "delta_avg": 1.0, "OA": 1.0}
    hidden = tapvid_scores(gt_xy, np.zeros_like(gt_vis), gt_xy, gt_vis, (100, 100), query, judged)
    assert hidden["AJ"] == 0.0 and hidden["delta_avg"] == 1.0
    assert hidden["OA"] == pytest.approx(1 - gt_vis[1:].mean())  # frame 0 is the query, never judged
    # 3 px off in a 256-px-wide frame misses the 1 and 2 px thresholds only.
    off = tapvid_scores(gt_xy + [3 * 100 / 256, 0], gt_vis, gt_xy, gt_vis, (100, 100), query, judged)
    assert off["delta_avg"] == pytest.approx(3 / 5)


def test_evaluate_predictions_on_synthetic_gt():
    num_frames, shape = 5, (64, 96)
    boxes = np.array([[10 + t, 10, 30 + t, 40] for t in range(num_frames)], np.float32)[:, None]  # (T, 1, 4)
    masks = np.stack([_disk(shape, (40 + t, 30), 12).astype(np.uint8) * 2 for t in range(num_frames)])
    trajs = np.stack([np.array([[5.0 + t, 5.0], [50.0, 20.0 + t]]) for t in range(num_frames)])
    gt = {"boxes": boxes, "box_present": np.ones((num_frames, 1), bool), "masks": masks,
          "mask_eval": np.ones(num_frames, bool), "trajs_2d": trajs, "visibs": np.ones((num_frames, 2), bool),
          "point_eval": np.ones((num_frames, 2), bool), "point_query": np.array([0, -1])}
    judged = judged_objects(gt)
    assert judged.box_idxs == [0] and judged.mask_labels == [2] and list(judged.point_idxs) == [0]
    figures = evaluate_predictions(gt, [boxes[:, 0]], [masks == 2], trajs[:, :1], np.ones((num_frames, 1), bool))
    assert figures["box_auc"] == pytest.approx(20 / 21)
    for key in ("box_prec20", "mask_J", "mask_F", "mask_JF", "AJ", "delta_avg", "OA"):
        assert figures[key] == pytest.approx(1.0), key


def test_format_table_aligns_and_averages():
    text = format_table([{"name": "a", "box_auc": 0.5}, {"name": "bb", "box_auc": 0.7, "AJ": 0.1}])
    lines = text.splitlines()
    assert lines[0].split() == ["sequence", "box_auc", "AJ"]
    assert lines[-1].split() == ["mean", "0.600", "0.100"]
    assert lines[2].split() == ["a", "0.500", "-"]  # sequence 'a' has no AJ


# -- agreement with ../shared/eval/metrics.py ------------------------------------------------------
@pytest.fixture(scope="module")
def reference_metrics(shared_data):
    sys.path.insert(0, str(shared_data.parent / "eval"))
    try:
        import metrics
    finally:
        sys.path.pop(0)
    return metrics


def _perturbed(gt, rng):
    """Predictions near the ground truth: noisy/shifted boxes with a lost frame, eroded/shifted masks,
    jittered points with some visibility flips and a lost point."""
    import cv2
    judged = judged_objects(gt)
    num_frames = gt["masks"].shape[0]
    boxes = []
    for k in judged.box_idxs:
        b = gt["boxes"][:, k] + rng.normal(0, 4, (num_frames, 4)).astype(np.float32)
        b[:, [0, 2]] += np.linspace(0, 25, num_frames)[:, None]  # drift
        b[num_frames // 2] = np.nan
        boxes.append(b)
    masks = []
    for label in judged.mask_labels:
        m = gt["masks"] == label
        out = np.empty_like(m)
        for t in range(num_frames):
            eroded = cv2.erode(m[t].astype(np.uint8), np.ones((1 + 2 * (t % 4), 3), np.uint8))
            out[t] = np.roll(eroded > 0, t % 5 - 2, axis=1)
        masks.append(out)
    idx = judged.point_idxs
    xy = gt["trajs_2d"][:, idx] + rng.normal(0, 2.5, (num_frames, len(idx), 2))
    xy[:, 0] = np.nan  # a point the tracker never had
    vis = gt["visibs"][:, idx] ^ (rng.random((num_frames, len(idx))) < 0.15)
    return boxes, masks, xy.astype(np.float32), vis


def _reference_figures(metrics, gt, boxes, masks, xy, vis, size):
    judged = judged_objects(gt)
    aucs, precs = [], []
    for b, k in zip(boxes, judged.box_idxs):
        on = gt["box_present"][:, k].copy()
        on[0] = False
        auc, prec = metrics.box_success(b, gt["boxes"][:, k], on)
        aucs.append(auc)
        precs.append(prec)
    js, fs = [], []
    for m, label in zip(masks, judged.mask_labels):
        for t in range(1, len(m)):
            if gt["mask_eval"][t]:
                j, f = metrics.mask_jf(m[t], gt["masks"][t] == label)
                js.append(j)
                fs.append(f)
    idx = judged.point_idxs
    points = metrics.tapvid(xy, vis, gt["trajs_2d"][:, idx], gt["visibs"][:, idx], size, gt["point_query"][idx],
                            gt["point_eval"][:, idx])
    return {"box_auc": np.mean(aucs), "box_prec20": np.mean(precs), "mask_J": np.mean(js), "mask_F": np.mean(fs),
            **points}


@pytest.mark.parametrize("name", ["synth_07_00", "synth_07_03"])
def test_agrees_with_reference_judge(shared_data, reference_metrics, name):
    seq = load_sequence(shared_data / name)
    rng = np.random.default_rng(7)
    boxes, masks, xy, vis = _perturbed(seq.gt, rng)
    ours = evaluate_predictions(seq.gt, boxes, masks, xy, vis, size=seq.size)
    reference = _reference_figures(reference_metrics, seq.gt, boxes, masks, xy, vis, seq.size)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert 0.1 < ours["box_auc"] < 0.95 and 0.1 < ours["mask_J"] < 0.95 and 0.05 < ours["AJ"] < 0.95


def test_agrees_with_reference_on_mask_edge_cases(shared_data, reference_metrics):
    """Masks touching the image border, empty predictions and single pixels."""
    seq = load_sequence(shared_data / "davis_goat")
    gt = seq.gt["masks"][10] > 0
    height, width = gt.shape
    cases = [gt, np.zeros_like(gt), np.ones_like(gt), np.roll(gt, 15, axis=0), gt[::-1]]
    single = np.zeros_like(gt)
    single[5, 5] = True
    cases.append(single)
    border = np.zeros_like(gt)
    border[:, : width // 3] = True
    cases.append(border)
    for pred in cases:
        for truth in (gt, border):
            assert mask_scores(pred, truth) == pytest.approx(reference_metrics.mask_jf(pred, truth), abs=1e-9)
    assert seq.size == (height, width)


def test_evaluate_trackers_reproduces_the_lk_peer(shared_data):
    """The classical point tracker through evaluate_trackers: the peer's LK figures on this clip
    (../shared/eval/run_eval.py --peer lk gives AJ 0.843, delta_avg 0.920, OA 0.982 on synth_07_04)."""
    seq = load_sequence(shared_data / "synth_07_04")
    figures = evaluate_trackers(seq, box_tracker=None, mask_tracker=None, point_tracker="lk", device="cpu")
    assert figures["AJ"] == pytest.approx(0.843, abs=2e-3)
    assert figures["delta_avg"] == pytest.approx(0.920, abs=2e-3)
    assert figures["OA"] == pytest.approx(0.982, abs=2e-3)
