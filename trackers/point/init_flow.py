"""A cheap first guess of each track through a window: pyramidal Lucas-Kanade, frame to frame.

The transformer refines this guess. Where Lucas-Kanade fails (forward-backward disagreement, lost
point) the guess stays where the point was last seen, so a failure never throws it far off.
"""
from __future__ import annotations

import cv2
import numpy as np

LK_PARAMS = dict(winSize=(15, 15), maxLevel=3,
                 criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
FB_THRESHOLD = 2.0  # px: forward-backward error above this counts as a failure


def to_gray(frame_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)


def lk_chain(grays: list[np.ndarray], points: np.ndarray) -> np.ndarray:
    """grays: T grayscale uint8 frames; points (N, 2) on grays[0] -> (T, N, 2) float32 guesses
    (row 0 is `points`)."""
    T, N = len(grays), len(points)
    out = np.empty((T, N, 2), np.float32)
    out[0] = points
    if N == 0:
        return out
    cur = points.astype(np.float32).reshape(-1, 1, 2)
    for t in range(1, T):
        nxt, status, _ = cv2.calcOpticalFlowPyrLK(grays[t - 1], grays[t], cur, None, **LK_PARAMS)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(grays[t], grays[t - 1], nxt, None, **LK_PARAMS)
        fb_error = np.linalg.norm(back - cur, axis=-1).ravel()
        good = (status.ravel() == 1) & (status_back.ravel() == 1) & (fb_error < FB_THRESHOLD)
        cur = np.where(good[:, None, None], nxt, cur).astype(np.float32)
        out[t] = cur[:, 0]
    return out
