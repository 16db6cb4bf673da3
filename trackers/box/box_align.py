"""Direct alignment of the target's appearance to the frame: position and extent to sub-pixel
precision where the target is rigid enough, independent of the response map's grid and the scale
pyramid's coarse steps.

The template is the target's grayscale box on its prompt frame, resized to at most `side` pixels
(drift-free: every frame is measured against it, not against the previous frame, which was tried
and drifts).
Each frame an affine ECC fit (enhanced correlation coefficient) maps it onto the frame, started
from the tracker's estimate; its correlation says whether to believe it.
"""
from __future__ import annotations

import cv2
import numpy as np

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-4)


class BoxAligner:
    """The target's grayscale box on its prompt frame, fitted onto later frames."""

    def __init__(self, frame_gray: np.ndarray, center: np.ndarray, size: np.ndarray, side: int = 64):
        factor = side / float(max(size))
        self.template_size = np.maximum(np.round(size * factor), 8).astype(int)  # (w, h)
        scale = self.template_size / size  # template pixels per frame pixel, per axis
        matrix = np.array([[scale[0], 0, -scale[0] * (center[0] - size[0] / 2)],
                           [0, scale[1], -scale[1] * (center[1] - size[1] / 2)]], np.float32)
        self.template = cv2.warpAffine(frame_gray, matrix, tuple(int(v) for v in self.template_size),
                                       flags=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR).astype(np.float32)
        self.usable = float(self.template.std()) > 2.0  # a flat box has nothing to align to

    def align(self, frame_gray: np.ndarray, center: np.ndarray, size: np.ndarray):
        """-> (center, size, correlation) of the fitted box, or None where the fit failed. The fit
        runs on the region around the box resampled to the template's scale (no aliasing)."""
        if not self.usable:
            return None
        zoom = min(1.0, float(np.max(self.template_size / size)))  # region pixels per frame pixel
        origin = np.floor(center - 1.5 * size)
        end = np.ceil(center + 1.5 * size)
        origin = np.clip(origin, 0, [frame_gray.shape[1] - 1, frame_gray.shape[0] - 1])
        end = np.clip(end, origin + 1, [frame_gray.shape[1], frame_gray.shape[0]])
        region = frame_gray[int(origin[1]):int(end[1]), int(origin[0]):int(end[0])]
        out_size = (max(int(round(region.shape[1] * zoom)), 8), max(int(round(region.shape[0] * zoom)), 8))
        region = cv2.resize(region, out_size, interpolation=cv2.INTER_AREA).astype(np.float32)
        scale = np.array([out_size[0] / (end[0] - origin[0]), out_size[1] / (end[1] - origin[1])])
        top_left = (center - size / 2 - origin) * scale
        warp = np.array([[size[0] * scale[0] / self.template_size[0], 0, top_left[0]],
                         [0, size[1] * scale[1] / self.template_size[1], top_left[1]]], np.float32)
        try:
            correlation, warp = cv2.findTransformECC(self.template, region, warp, cv2.MOTION_AFFINE,
                                                     _CRITERIA, None, 3)
        except cv2.error:
            return None
        w, h = self.template_size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float32) @ warp[:, :2].T + warp[:, 2]
        new_center = corners.mean(0) / scale + origin
        new_size = np.array([np.linalg.norm(warp[:, 0]) * w, np.linalg.norm(warp[:, 1]) * h]) / scale
        return new_center, new_size, float(correlation)
