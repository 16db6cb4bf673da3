"""A mask from a box or from clicks with GrabCut: the classical click-to-mask fallback."""
from __future__ import annotations

import cv2
import numpy as np

ITERATIONS = 5
SEED_RADIUS = 4  # px: a click marks a small disk as sure foreground / background
CLICK_REACH = 0.12  # without a box, a positive click makes this much of min(H, W) around it maybe-foreground
CLICK_REGION = 2.5  # ... and GrabCut may grow the object this many reaches from the clicks
MARGIN = 0.25  # GrabCut runs on a crop this much larger than the object's extent (for speed)


def grabcut_mask(frame: np.ndarray, box: np.ndarray | None = None, clicks: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool mask of the object in the RGB frame inside `box` [x1, y1, x2, y2] and/or
    around the positive `clicks` (K, 3) [x, y, label]; negative clicks are sure background."""
    height, width = frame.shape[:2]
    clicks = np.zeros((0, 3), np.float32) if clicks is None else np.asarray(clicks, np.float32).reshape(-1, 3)
    positive, negative = clicks[clicks[:, 2] > 0, :2], clicks[clicks[:, 2] <= 0, :2]
    if box is None and len(positive) == 0:
        raise ValueError("GrabCut needs a box or at least one positive click")
    region = _region(box, positive, height, width)
    x1, y1, x2, y2 = _crop(region, height, width)
    labels = np.full((y2 - y1, x2 - x1), cv2.GC_BGD, np.uint8)
    rx1, ry1, rx2, ry2 = np.round(region).astype(int) - [x1, y1, x1, y1]
    labels[max(ry1, 0):ry2, max(rx1, 0):rx2] = cv2.GC_PR_FGD if box is not None else cv2.GC_PR_BGD
    if box is None:  # clicks only: a disk of maybe-foreground around each positive click
        reach = max(SEED_RADIUS + 1, int(CLICK_REACH * min(height, width)))
        for x, y in positive:
            cv2.circle(labels, (int(round(x)) - x1, int(round(y)) - y1), reach, int(cv2.GC_PR_FGD), -1)
    for points, value in ((positive, cv2.GC_FGD), (negative, cv2.GC_BGD)):
        for x, y in points:
            cv2.circle(labels, (int(round(x)) - x1, int(round(y)) - y1), SEED_RADIUS, int(value), -1)
    crop = cv2.cvtColor(np.ascontiguousarray(frame[y1:y2, x1:x2]), cv2.COLOR_RGB2BGR)
    if np.any(labels == cv2.GC_BGD) and np.any((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)):
        cv2.grabCut(crop, labels, None, np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64),
                    ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    mask = np.zeros((height, width), bool)
    mask[y1:y2, x1:x2] = _keep_clicked_parts(fg, positive - [x1, y1])
    return mask


def _region(box, positive, height, width) -> np.ndarray:
    """Where the object may lie [x1, y1, x2, y2]: the box, else around the clicks."""
    if box is not None:
        return np.asarray(box, np.float32).reshape(4)
    reach = CLICK_REGION * CLICK_REACH * min(height, width)
    return np.concatenate([positive.min(0) - reach, positive.max(0) + reach + 1]).astype(np.float32)


def _crop(region, height, width) -> tuple[int, int, int, int]:
    """Integer crop around the region with a margin of background, inside the frame."""
    w, h = region[2] - region[0], region[3] - region[1]
    pad = MARGIN * max(w, h) + 8
    x1, y1 = int(max(0, np.floor(region[0] - pad))), int(max(0, np.floor(region[1] - pad)))
    x2, y2 = int(min(width, np.ceil(region[2] + pad))), int(min(height, np.ceil(region[3] + pad)))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def _keep_clicked_parts(fg: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """With clicks, only the connected parts that hold a positive click; else every part."""
    if len(positive) == 0 or not fg.any():
        return fg
    count, parts = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    h, w = fg.shape
    keep = {int(parts[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)]) for x, y in positive}
    keep.discard(0)
    return np.isin(parts, list(keep)) if keep else fg
