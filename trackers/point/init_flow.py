"""A cheap first guess of each track through a window: pyramidal Lucas-Kanade, frame to frame.

The transformer refines this guess. Where Lucas-Kanade fails (forward-backward disagreement, lost
point) the guess stays where the point was last seen, so a failure never throws it far off.
"""
from __future__ import annotations

import cv2
import numpy as np

# Training guesses (cheap, on the small training frames) ...
LK_PARAMS = dict(winSize=(15, 15), maxLevel=3,
                 criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
# ... and the tracker's, on its grayscale work frames (the video's own pixels, shrunk on large video, enlarged on
# small video): a larger window and more iterations cost little for a few hundred points and hold on longer.
LK_TRACKING_PARAMS = dict(winSize=(21, 21), maxLevel=3,
                          criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
FB_THRESHOLD = 2.0  # px: forward-backward error above this counts as a failure


def to_gray(frame_rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)


def lk_step(gray_from: np.ndarray, gray_to: np.ndarray, points: np.ndarray, params: dict = LK_PARAMS) -> np.ndarray:
    """Move points (N, 2) from one grayscale frame to the next; failures stay where they were."""
    if len(points) == 0:
        return points.astype(np.float32)
    cur = points.astype(np.float32).reshape(-1, 1, 2)
    nxt, status, _ = cv2.calcOpticalFlowPyrLK(gray_from, gray_to, cur, None, **params)
    back, status_back, _ = cv2.calcOpticalFlowPyrLK(gray_to, gray_from, nxt, None, **params)
    fb_error = np.linalg.norm(back - cur, axis=-1).ravel()
    good = (status.ravel() == 1) & (status_back.ravel() == 1) & (fb_error < FB_THRESHOLD)
    return np.where(good[:, None, None], nxt, cur).astype(np.float32)[:, 0]


def lk_chain(grays: list[np.ndarray], points: np.ndarray) -> np.ndarray:
    """grays: T grayscale uint8 frames; points (N, 2) on grays[0] -> (T, N, 2) float32 guesses
    (row 0 is `points`)."""
    out = np.empty((len(grays), len(points), 2), np.float32)
    out[0] = points
    for t in range(1, len(grays)):
        out[t] = lk_step(grays[t - 1], grays[t], out[t - 1])
    return out
