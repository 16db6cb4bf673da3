"""Mask decoder: readout probability + optical-flow prior -> a sharp mask at internal resolution.

The memory readout lives on the stride-8 grid: robust to drift, occlusion and re-appearance but coarse.
Dense DIS optical flow carries the previous mask's sharp boundary onto this frame. They are mixed by
the readout's confidence: where the readout is sure (near 0 or 1) it wins, which removes flow drift
and recovers missed parts; where it is unsure (object boundaries, thin parts that a stride-8 cell
only half covers) the flow-warped mask decides, which keeps the boundary accuracy that a stride-8
grid loses. An optional guided filter snaps the result to image edges (off in sam2-lite's default
config: on DAVIS it eroded thin parts and the masks shrank frame after frame).
"""
from __future__ import annotations

import cv2
import numpy as np

from .image_encoder import STRIDE, EncodedFrame


def grid_to_pixels(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(gh, gw) cell values -> (h, w) bilinear upsampling, cell centres aligned."""
    gh, gw = grid.shape
    up = cv2.resize(grid.astype(np.float32), (gw * STRIDE, gh * STRIDE), interpolation=cv2.INTER_LINEAR)
    return up[:size[0], :size[1]]


def fuse_with_flow(prob: np.ndarray, warped: np.ndarray | None, trust: float) -> np.ndarray:
    """Where `prob` is sure (near 0 or 1) it stays; where unsure, the flow-warped previous mask
    decides. Weight of `prob`: |2 prob - 1| ** trust (higher trust: more flow)."""
    if warped is None:
        return prob
    confidence = np.abs(2.0 * prob - 1.0) ** trust
    return confidence * prob + (1.0 - confidence) * warped


class FlowPrior:
    """Backward DIS flow between consecutive frames of a walk, used to warp masks forward in time."""

    def __init__(self, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
        self.dis = cv2.DISOpticalFlow_create(preset)
        self._grid: tuple[np.ndarray, np.ndarray] | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def set_pair(self, prev_gray: np.ndarray, gray: np.ndarray) -> None:
        flow = self.dis.calc(gray, prev_gray, None)  # for each pixel of `gray`, where it was before
        h, w = gray.shape
        if self._grid is None or self._grid[0].shape != (h, w):
            self._grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self._maps = (self._grid[0] + flow[..., 0], self._grid[1] + flow[..., 1])

    def warp(self, prob: np.ndarray) -> np.ndarray:
        return cv2.remap(prob, self._maps[0], self._maps[1], cv2.INTER_LINEAR, borderValue=0.0)


class MaskDecoder:
    def __init__(self, readout_trust: float = 1.0, edge_radius: int = 4, edge_eps: float = 0.02):
        self.readout_trust = readout_trust  # exponent on the readout's confidence: higher trusts flow more
        self.edge_radius = edge_radius
        self.edge_eps = edge_eps * 255.0 ** 2  # guided-filter regularisation in uint8 intensity units

    def __call__(self, features: EncodedFrame, readout_grid: np.ndarray, warped: np.ndarray | None) -> np.ndarray:
        """(h, w) float32 object probability."""
        size = features.image.shape[:2]
        prob = fuse_with_flow(grid_to_pixels(readout_grid, size), warped, self.readout_trust)
        return self.snap_to_edges(features.image, prob)

    def snap_to_edges(self, image: np.ndarray, prob: np.ndarray) -> np.ndarray:
        return snap_to_edges(image, prob, self.edge_radius, self.edge_eps)


def snap_to_edges(image: np.ndarray, prob: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided filtering of `prob` inside the box where it is undecided, with the frame as guide;
    `eps` in uint8 intensity units squared. radius 0: `prob` as it is."""
    if radius <= 0:
        return prob
    ys, xs = np.nonzero(prob > 0.1)
    if ys.size == 0:
        return prob
    pad = 4 * radius
    y1, y2 = max(0, ys.min() - pad), min(prob.shape[0], ys.max() + 1 + pad)
    x1, x2 = max(0, xs.min() - pad), min(prob.shape[1], xs.max() + 1 + pad)
    out = prob.copy()
    out[y1:y2, x1:x2] = cv2.ximgproc.guidedFilter(
        np.ascontiguousarray(image[y1:y2, x1:x2]), np.ascontiguousarray(prob[y1:y2, x1:x2]), radius, eps)
    return np.clip(out, 0.0, 1.0, out=out)
