"""Motion blur for training windows: each pixel smeared along its own motion, as a camera's exposure does.

Real video blurs what moves fast (an animal's legs, a panning background) and the procedural and
real-footage training clips are sharp. A clip's ground-truth tracks give the motion: every pixel takes
the displacement of the nearest track visible on both frames (a nearest-seed distance transform), and the
frame is averaged over copies resampled along that displacement, centred on the pixel.
"""
from __future__ import annotations

import cv2
import numpy as np

BLUR_SAMPLES = 7  # copies averaged along each pixel's motion


def motion_field(points: np.ndarray, next_points: np.ndarray, visible: np.ndarray,
                 shape: tuple[int, int]) -> np.ndarray | None:
    """(H, W, 2) float32 displacement of each pixel: that of the nearest point visible on both frames.

    points, next_points (N, 2) pixel positions on a frame and the next; visible (N,) bool. None where no
    point is visible inside the frame."""
    height, width = shape
    xy = np.round(points).astype(int)
    inside = visible & (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    if not inside.any():
        return None
    seeds = np.ones((height, width), np.uint8)
    seeds[xy[inside, 1], xy[inside, 0]] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    # labels number the seed pixels in raster order from 1; a pixel holding several points keeps the last
    seed_of_pixel = np.zeros((height, width), np.int64)
    indices = np.flatnonzero(inside)
    seed_of_pixel[xy[indices, 1], xy[indices, 0]] = indices
    raster_seeds = seed_of_pixel[seeds == 0]  # point index of each seed pixel, raster order
    displacement = (next_points - points).astype(np.float32)
    return displacement[raster_seeds[labels - 1]]


def blur_along(frame: np.ndarray, field: np.ndarray, exposure: float) -> np.ndarray:
    """frame (H, W, 3) uint8 averaged over BLUR_SAMPLES copies sampled along exposure * field around each
    pixel (exposure: the share of the frame interval the shutter is open)."""
    height, width = frame.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    total = np.zeros(frame.shape, np.float32)
    for fraction in np.linspace(-0.5, 0.5, BLUR_SAMPLES, dtype=np.float32) * np.float32(exposure):
        total += cv2.remap(frame, grid_x + fraction * field[..., 0], grid_y + fraction * field[..., 1],
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return np.clip(total / BLUR_SAMPLES + 0.5, 0, 255).astype(np.uint8)
