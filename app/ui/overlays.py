"""Overlay pictures as numpy arrays: mask fills with outlines, attention heatmaps (no Qt here)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class OverlayOptions:
    """What the canvas draws on top of the frame (View menu)."""

    masks: bool = True
    mask_opacity: float = 0.45
    outlines: bool = True
    boxes: bool = True
    labels: bool = True
    points: bool = True
    trail_length: int = 15  # frames of past positions drawn behind each point; 0 = none
    attention: bool = False
    attention_opacity: float = 0.55
    low_confidence: float = 0.5  # tracked points/boxes scoring below this are flagged


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def compose_masks(shape: tuple[int, int], masks: list[tuple[np.ndarray, str, bool]], opacity: float,
                  outlines: bool) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: each (mask, colour, emphasised) filled with `opacity`, outlined opaque.

    Later masks paint over earlier ones; an emphasised (selected) mask gets a thicker outline.
    """
    fill_alpha = int(round(255 * min(max(opacity, 0.0), 1.0)))
    # each mask writes its palette entries into an index image over its bounding box only, and one lookup
    # colours the frame: painting RGBA over the whole frame per mask took ~4 ms a mask at 854x480
    index = np.zeros(shape, np.uint16)
    palette = [(0, 0, 0, 0)]
    for mask, color, emphasised in masks:
        if mask.shape != shape:
            continue  # a mask made for another video size: nothing sensible to draw
        pixels = np.ascontiguousarray(mask, dtype=np.uint8)  # decoded RLE masks are column-major
        x, y, w, h = cv2.boundingRect(pixels)
        if w == 0 or h == 0:
            continue
        crop, region = pixels[y:y + h, x:x + w] > 0, index[y:y + h, x:x + w]
        rgb = hex_to_rgb(color)
        palette += [(*rgb, fill_alpha), (*rgb, 255)]
        region[crop] = len(palette) - 2
        if outlines:  # the crop holds the whole mask, so its border outside is background as in the frame
            region[outline(crop, 2 if emphasised else 1)] = len(palette) - 1
    colours = np.asarray(palette, np.uint8).view(np.uint32).ravel()  # an RGBA pixel as one number: a 1-D gather
    return np.take(colours, index).view(np.uint8).reshape(*shape, 4)


def main_part_box(mask: np.ndarray, step: int = 4) -> np.ndarray | None:
    """[x1, y1, x2, y2] of the mask's largest connected part, where its name tag belongs (a stray
    speck far away would otherwise drag the tag off the object). Found on a 1/step grid: it is cheap."""
    coarse = np.ascontiguousarray(mask[::step, ::step]).astype(np.uint8)
    count, _labels, stats, _ = cv2.connectedComponentsWithStats(coarse, connectivity=8)
    if count < 2:
        return None
    x, y, w, h = stats[1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), :4]
    height, width = mask.shape
    return np.array([x * step, y * step, min(width, (x + w) * step), min(height, (y + h) * step)], np.float32)


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """The inner border of a bool mask, `width` pixels thick."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)  # decoded RLE masks are column-major
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    return mask & (cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) == 0)


def heatmap_lut(opacity: float) -> np.ndarray:
    """(256, 4) uint8 lookup table: transparent blue for 0 through opaque-ish yellow-red for 1."""
    ramp = np.linspace(0.0, 1.0, 256)
    colors = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_JET)
    rgb = colors.reshape(256, 3)[:, ::-1]  # OpenCV gives BGR
    alpha = np.clip(255 * opacity * np.sqrt(ramp), 0, 255)  # low attention stays see-through
    return np.concatenate([rgb, alpha[:, None]], axis=1).astype(np.uint8)


POINT_ATTENTION_DECADES = 2.0  # point maps are a softmax over the frame: shown on a log scale down to 1/100


def attention_display(attention: np.ndarray, kind: str, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 in [0, 1] to draw over a frame of `shape` (H, W): smooth, at most half the frame's size.

    A point tracker's map is a match probability that peaks in one feature cell (~8 px); on a log
    scale the runner-up matches show as well, which is what tells a reliable point from a doubtful one.
    """
    heat = np.clip(np.nan_to_num(np.asarray(attention, np.float32)), 0.0, 1.0)
    if kind == "point":
        peak = float(heat.max())
        heat = heat / peak if peak > 0 else heat
        heat = np.clip(1.0 + np.log10(np.maximum(heat, 1e-12)) / POINT_ATTENTION_DECADES, 0.0, 1.0)
    height, width = shape
    scale = min(1.0, 512 / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if (heat.shape[1], heat.shape[0]) != size:  # bilinear: a smooth map rather than blocks of feature cells
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    return heat.astype(np.float32)


def paint_disc(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float], radius: float,
               value: bool) -> None:
    """Paint (or erase) a stroke of discs from `start` to `end` (x, y image pixels) into `mask` in place."""
    canvas = mask.view(np.uint8)
    r = max(1, int(round(radius)))
    p0 = (int(round(start[0])), int(round(start[1])))
    p1 = (int(round(end[0])), int(round(end[1])))
    cv2.line(canvas, p0, p1, int(value), thickness=2 * r, lineType=cv2.LINE_8)
    cv2.circle(canvas, p1, r, int(value), thickness=-1)
    cv2.circle(canvas, p0, r, int(value), thickness=-1)


def fill_region(mask: np.ndarray, x: int, y: int) -> np.ndarray | None:
    """The mask with the enclosed background region under (x, y) filled; None when that region
    reaches the frame border (nothing encloses it) or (x, y) is already inside the mask."""
    h, w = mask.shape
    if not (0 <= x < w and 0 <= y < h) or mask[y, x]:
        return None
    region = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(np.ascontiguousarray(mask, dtype=np.uint8), region, (x, y), 1, flags=4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    region = region[1:-1, 1:-1].astype(bool)
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        return None
    return mask | region
