"""TAP-Vid style figures for validation during training (query on the first frame of each window).

Distances are measured after scaling both axes to 256 px, as TAP-Vid does; frame 0 (the query)
is not judged.
"""
from __future__ import annotations

import numpy as np

THRESHOLDS_PX = (1, 2, 4, 8, 16)


def track_metrics(pred_xy: np.ndarray, pred_vis: np.ndarray, gt_xy: np.ndarray, gt_vis: np.ndarray,
                  image_size: tuple[int, int] | None = None, valid: np.ndarray | None = None) -> dict[str, float]:
    """pred_xy / gt_xy (B, T, N, 2) pixels, pred_vis / gt_vis (B, T, N) bool; image_size (H, W)
    (default: taken as the extent of a 256 x 256 frame, i.e. no scaling); valid (B, T, N) bool:
    the point-frames whose labels are known, the only ones judged (default all)."""
    known = np.ones(gt_vis.shape, bool)[:, 1:] if valid is None else valid[:, 1:].astype(bool)
    pred_xy, gt_xy = pred_xy[:, 1:][known], gt_xy[:, 1:][known]
    pred_vis, gt_vis = pred_vis[:, 1:].astype(bool)[known], gt_vis[:, 1:].astype(bool)[known]
    scale = np.array([256.0 / image_size[1], 256.0 / image_size[0]]) if image_size else np.ones(2)
    dist = np.linalg.norm((pred_xy - gt_xy) * scale, axis=-1)
    deltas, jaccards = [], []
    for th in THRESHOLDS_PX:
        within = dist < th
        deltas.append(within[gt_vis].mean() if gt_vis.any() else 0.0)
        true_pos = (within & gt_vis & pred_vis).sum()
        false_neg = (gt_vis & ~(within & pred_vis)).sum()
        false_pos = (pred_vis & ~(within & gt_vis)).sum()
        jaccards.append(true_pos / max(true_pos + false_neg + false_pos, 1))
    return {"AJ": float(np.mean(jaccards)), "delta_avg": float(np.mean(deltas)),
            "OA": float((pred_vis == gt_vis).mean()) if len(gt_vis) else 0.0,
            "median_error_px": float(np.median(dist[gt_vis])) if gt_vis.any() else float("nan")}
