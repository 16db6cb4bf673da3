"""Square crops around a target, as Siamese trackers take them (SiamFC, STARK, OSTrack).

`crop_square`: a crop given by its centre (cx, cy) and side in frame pixels, resampled to
out_size x out_size with one affine warp; the parts outside the frame are filled with a border
colour (SiamFC: the frame's mean colour) so that padding does not look like an edge.
`crop_whole_pixels`: the crop of the official OSTrack / STARK code (`sample_target`), cut on whole
pixels, zero padded, then resized.
"""
from __future__ import annotations

import math

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


def crop_whole_pixels(frame: np.ndarray, box_xywh, factor: float, out_size: int
                      ) -> tuple[np.ndarray, int, tuple[int, int]]:
    """The official OSTrack `sample_target` (lib/train/data/processing_utils.py).

    box_xywh = [x, y, w, h] (continuous frame coordinates); the crop is side = ceil(sqrt(w h) factor)
    whole pixels from origin = Python-round(box centre - side / 2), zero padded past the frame and
    resized to out_size x out_size with cv2.resize (bilinear). Returns (crop, side, origin (x, y)).
    Like the official code, a crop that reaches the right (bottom) edge loses the frame's last
    column (row) to the zero padding (its pad is `end - size + 1`).
    """
    x, y, w, h = (float(v) for v in box_xywh)
    side = math.ceil(math.sqrt(w * h) * factor)
    if side < 1:
        raise ValueError(f"the box {list(box_xywh)} is too small to crop around")
    x1, y1 = round(x + 0.5 * w - side * 0.5), round(y + 0.5 * h - side * 0.5)
    height, width = frame.shape[:2]
    left, top = max(0, -x1), max(0, -y1)
    right, bottom = max(x1 + side - width + 1, 0), max(y1 + side - height + 1, 0)
    canvas = np.zeros((side, side) + frame.shape[2:], frame.dtype)
    rows, cols = side - top - bottom, side - left - right
    if rows > 0 and cols > 0:  # (the official code cannot take a crop wholly outside the frame)
        canvas[top:top + rows, left:left + cols] = frame[y1 + top:y1 + top + rows, x1 + left:x1 + left + cols]
    return cv2.resize(canvas, (out_size, out_size)), side, (x1, y1)


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
