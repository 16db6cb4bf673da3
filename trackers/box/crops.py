"""Square crops around a target, as Siamese trackers take them (SiamFC, STARK, OSTrack).

A crop is given by its centre (cx, cy) and side in frame pixels; it is resampled to out_size x
out_size with one affine warp, and the parts that fall outside the frame are filled with a border
colour (SiamFC: the frame's mean colour) so that padding does not look like an edge.
"""
from __future__ import annotations

import cv2
import numpy as np


def crop_square(frame: np.ndarray, center: np.ndarray, side: float, out_size: int,
                border: np.ndarray | tuple | None = None) -> np.ndarray:
    """(out_size, out_size, 3) uint8 crop of `frame` centred on center=(cx, cy), `side` pixels wide.

    Pixel-index convention: frame pixel (i, j) has its centre at (j, i); the crop's centre pixel
    coordinate (out_size - 1) / 2 lands on `center`.
    """
    scale = out_size / max(float(side), 1e-3)
    cx, cy = float(center[0]), float(center[1])
    half = (out_size - 1) / 2.0
    warp = np.array([[scale, 0.0, half - cx * scale], [0.0, scale, half - cy * scale]], np.float32)
    border_value = tuple(float(v) for v in (border if border is not None else frame.reshape(-1, 3).mean(0)))
    return cv2.warpAffine(frame, warp, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def crop_to_frame(points_in_crop: np.ndarray, center: np.ndarray, side: float, out_size: int) -> np.ndarray:
    """Map (..., 2) crop pixel coordinates back to frame coordinates (inverse of crop_square)."""
    scale = max(float(side), 1e-3) / out_size
    half = (out_size - 1) / 2.0
    return (np.asarray(points_in_crop, np.float64) - half) * scale + np.asarray(center, np.float64)


def paste_map(values: np.ndarray, center: np.ndarray, extent: tuple[float, float], frame_hw: tuple[int, int],
              out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Place a map covering a frame region into a frame-sized (or out_hw-sized, same aspect) canvas.

    values: (h, w) map spanning `extent` = (width, height) frame pixels around `center`; returns
    float32 (H, W) min-max normalised to [0, 1], zero outside the region. Used for attention
    overlays, so a coarse out_hw keeps it cheap.
    """
    height, width = frame_hw
    out_h, out_w = out_hw if out_hw is not None else frame_hw
    map_h, map_w = values.shape
    sx, sy = out_w / width, out_h / height
    cell_w, cell_h = extent[0] / map_w, extent[1] / map_h  # frame pixels per map cell
    x0 = float(center[0]) + 0.5 - extent[0] / 2.0
    y0 = float(center[1]) + 0.5 - extent[1] / 2.0
    warp = np.array([[cell_w * sx, 0.0, x0 * sx], [0.0, cell_h * sy, y0 * sy]], np.float32)
    vmin, vmax = float(values.min()), float(values.max())
    norm = (values - vmin) / (vmax - vmin) if vmax > vmin else np.zeros_like(values)
    return cv2.warpAffine(norm.astype(np.float32), warp, (out_w, out_h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def box_to_cxcywh(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[x1, y1, x2, y2] (far edges) -> centre (cx, cy) in pixel-index coordinates and size (w, h)."""
    box = np.asarray(box, np.float64)
    size = np.maximum(box[2:] - box[:2], 1.0)
    center = (box[:2] + box[2:]) / 2.0 - 0.5
    return center, size


def cxcywh_to_box(center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Inverse of box_to_cxcywh, float32 [x1, y1, x2, y2]."""
    center = np.asarray(center, np.float64) + 0.5
    size = np.asarray(size, np.float64)
    return np.concatenate([center - size / 2.0, center + size / 2.0]).astype(np.float32)
