"""One backbone pass per scale level, shared by all the targets of a frame.

Per-target search crops cost one backbone pass per target and pyramid scale, which is most of a
frame's time with many targets (and, for a lone target, its three scales' crops hold about twice the
pixels of the one rectangle that covers them). Instead the frame is resampled at fixed scale levels
(2^(k / LEVELS_PER_OCTAVE) crop pixels per frame pixel), the network runs once per level over the
rectangle that covers the search regions of the targets whose crop scale is nearest that level,
and each target's search features at each of its scales are resampled from that map (bilinear,
unit-normalised again per cell). A level shares its pass only where its rectangle has fewer pixels
than its targets' crops; the others keep their crops.

The rectangles start and end on multiples of MAP_ALIGN level pixels of a grid anchored at the frame
origin, so a target's features hardly depend on which other targets share its level (only near the
rectangle's edges, through the network's padding). They may stop `frame_margin` level pixels beyond the
frame: the search regions of targets near its edges reach far past it, into the crops' flat border colour,
and cells sampled beyond a map are the network's cell on flat border colour (not the map's edge cells
repeated: those still see the frame's edge, and a target that left the view would seem to stay beside it).
With ten targets over an 854x480 frame and a margin of 32 the rectangle is 912x544 level pixels, not 976x704.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .siamfc_models import unit_norm

LEVELS_PER_OCTAVE = 4
MAP_ALIGN = 16  # the coarsest stride of the feature network: rectangles keep its cells on pixels
FLAT_SIDE = 6 * MAP_ALIGN  # side of the flat border-colour image whose central cell stands for all beyond a map


@dataclass
class SearchRegion:
    """A target's search crops: centred on `center` (frame pixel coordinates), one per scale,
    sides[k] frame pixels wide and `size` x `size` crop pixels, with `border` colour outside the frame."""

    center: np.ndarray  # (2,) cx, cy
    sides: np.ndarray  # (S,)
    size: int
    border: np.ndarray  # (3,)


def level_of(region: SearchRegion) -> int:
    """The level nearest the region's middle scale (crop pixels per frame pixel)."""
    scale = region.size / float(region.sides[len(region.sides) // 2])
    return int(round(LEVELS_PER_OCTAVE * math.log2(scale)))


def _level_rect(regions: list[SearchRegion], scale: float, margin: float, frame_hw: tuple[int, int],
                frame_margin: int | None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) level pixels covering every region's widest crop plus a margin, on MAP_ALIGN, and
    within frame_margin level pixels of the frame (None: as far as the regions reach)."""
    lows, highs = [], []
    for region in regions:
        half = float(region.sides.max()) / 2.0
        # frame index coordinate u lies at level pixel (u + 0.5) * scale - 0.5
        lows.append((region.center - half + 0.5) * scale - 0.5 - margin)
        highs.append((region.center + half + 0.5) * scale - 0.5 + margin)
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    if frame_margin is not None:
        low = np.maximum(low, -frame_margin)
        high = np.minimum(high, np.array([frame_hw[1], frame_hw[0]], np.float64) * scale + frame_margin)
    low = np.floor(low / MAP_ALIGN).astype(int) * MAP_ALIGN
    high = np.ceil(high / MAP_ALIGN).astype(int) * MAP_ALIGN
    return int(low[0]), int(low[1]), int(high[0]), int(high[1])


def _sample_grid(region: SearchRegion, scale: float, origin: np.ndarray, map_hw: tuple[int, int],
                 stride: int, cell_offset: float) -> torch.Tensor:
    """(1, S * n, n, 2) grid_sample coordinates of the region's n x n search cells per scale in the
    level map whose rectangle starts at level pixel `origin`; cell c of a map spans pixels
    [stride c, stride (c + 1)) and is centred at stride c + cell_offset."""
    cells = region.size // stride
    in_crop = stride * np.arange(cells) + cell_offset - (region.size - 1) / 2.0  # crop px from centre
    grids = []
    for side in region.sides:
        frame_xy = [region.center[axis] + in_crop * side / region.size for axis in (0, 1)]
        level_xy = [(frame_xy[axis] + 0.5) * scale - 0.5 - origin[axis] for axis in (0, 1)]
        cell_xy = [(level_xy[axis] - cell_offset) / stride for axis in (0, 1)]
        norm_x = (2.0 * cell_xy[0] + 1.0) / map_hw[1] - 1.0
        norm_y = (2.0 * cell_xy[1] + 1.0) / map_hw[0] - 1.0
        grid = np.stack(np.broadcast_arrays(norm_x[None, :], norm_y[:, None]), axis=-1)  # (n, n, 2)
        grids.append(grid)
    return torch.from_numpy(np.concatenate(grids).astype(np.float32))[None]


def _beyond_bands(outside: torch.Tensor, num_scales: int) -> list[tuple[slice, slice]]:
    """(rows, cols) slices that cover the cells of `outside` (S n, n), True where a sample reaches past the map, and
    no cell twice. A scale's cells lie on a grid whose rows and columns each run one way, so its cells past the map
    are bands along its edges: whole rows at its top and bottom, then columns at its left and right."""
    size = outside.shape[1]
    rows_out = outside.all(dim=1).view(num_scales, size).tolist()  # rows wholly past the map
    cols_out = outside.view(num_scales, size, size).all(dim=1).tolist()  # ...and columns, per scale
    bands = []
    for scale, (rows, cols) in enumerate(zip(rows_out, cols_out)):
        top = next((i for i, out in enumerate(rows) if not out), size)
        bottom = next((i for i, out in enumerate(reversed(rows)) if not out), size - top)
        left = next((i for i, out in enumerate(cols) if not out), size)
        right = next((i for i, out in enumerate(reversed(cols)) if not out), size - left)
        start, end = scale * size, (scale + 1) * size
        inner, whole = slice(start + top, end - bottom), slice(0, size)
        bands += [(slice(start, start + top), whole), (slice(end - bottom, end), whole),
                  (inner, slice(0, left)), (inner, slice(size - right, size))]
    return [(rows, cols) for rows, cols in bands if rows.stop > rows.start and cols.stop > cols.start]


@dataclass
class _LevelMap:
    scale: float  # level pixels per frame pixel
    rect: tuple[int, int, int, int]  # (x0, y0, x1, y1) level pixels the map covers
    features: torch.Tensor  # (1, C, h, w) the network's map of that rectangle, channels last
    border: np.ndarray  # (3,) the colour beyond the frame


class SharedPass:
    """One frame's backbone passes, one per scale level shared by its regions, and the search features
    sampled from them."""

    def __init__(self, frame: np.ndarray, regions: dict[int, SearchRegion],
                 features: Callable[[np.ndarray], torch.Tensor], stride: int, cell_offset: float,
                 frame_margin: int | None = None, beyond_cells: dict[tuple, torch.Tensor] | None = None):
        """features: uint8 image (H, W, 3), sides multiples of MAP_ALIGN -> (1, C, H / stride, W / stride).
        Regions left out of `features` are cheaper as crops (their level's rectangle has more pixels than
        their crops). frame_margin: level pixels the passes may stop beyond the frame (None: where the
        regions end). beyond_cells: the network's cell on each flat border colour, filled as asked for; it
        depends on the colour alone, so a caller that keeps it across frames computes each colour's once."""
        self.frame_hw = frame.shape[:2]
        self.frame_margin = frame_margin
        self._features = features
        self._beyond_cells = {} if beyond_cells is None else beyond_cells
        self.stride, self.cell_offset = stride, cell_offset
        self.maps: dict[int, _LevelMap] = {}
        self.features: dict[int, torch.Tensor] = {}  # search features (S, C, n, n), unit-norm per cell
        by_level: dict[int, list[int]] = {}
        for obj_id, region in regions.items():
            by_level.setdefault(level_of(region), []).append(obj_id)
        for level, ids in by_level.items():
            scale = 2.0 ** (level / LEVELS_PER_OCTAVE)
            members = [regions[obj_id] for obj_id in ids]
            x0, y0, x1, y1 = _level_rect(members, scale, float(stride), self.frame_hw, frame_margin)
            crop_pixels = sum(len(r.sides) * r.size ** 2 for r in members)
            if (x1 - x0) * (y1 - y0) >= crop_pixels:
                continue
            warp = np.array([[scale, 0.0, 0.5 * scale - 0.5 - x0], [0.0, scale, 0.5 * scale - 0.5 - y0]],
                            np.float32)
            image = cv2.warpAffine(frame, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT,
                                   borderValue=tuple(float(v) for v in members[0].border))
            # channels last: grid_sample gathers all channels of a cell at once (about 2x faster)
            level_map = features(image).contiguous(memory_format=torch.channels_last)
            self.maps[level] = _LevelMap(scale, (x0, y0, x1, y1), level_map, members[0].border)
            for obj_id, region in zip(ids, members):
                self.features[obj_id] = self._sampled(self.maps[level], region)

    def sample(self, region: SearchRegion) -> torch.Tensor | None:
        """Search features (S, C, n, n) of another region from this frame's map at its level, where that map
        covers it; None elsewhere. A map that reaches past the frame's edge on a side covers all beyond it
        there (flat border colour: its cells are the network's cell on that colour)."""
        level_map = self.maps.get(level_of(region))
        if level_map is None:
            return None
        low, high = np.array_split(np.array(_level_rect([region], level_map.scale, float(self.stride),
                                                        self.frame_hw, self.frame_margin)), 2)
        map_low, map_high = np.array_split(np.array(level_map.rect), 2)
        frame_high = np.array([self.frame_hw[1], self.frame_hw[0]]) * level_map.scale
        covered = ((low >= map_low) | (map_low <= 0)) & ((high <= map_high) | (map_high >= frame_high))
        return self._sampled(level_map, region) if covered.all() else None

    def _beyond(self, level_map: _LevelMap) -> torch.Tensor:
        """(1, C, 1, 1) the network's cell on flat border colour (its central cell on a flat image)."""
        colour = tuple(np.round(level_map.border).astype(np.uint8).tolist())
        if colour not in self._beyond_cells:
            flat = np.empty((FLAT_SIDE, FLAT_SIDE, 3), np.uint8)
            flat[:] = colour
            cells = self._features(flat)
            middle = cells.shape[-1] // 2
            self._beyond_cells[colour] = cells[:, :, middle:middle + 1, middle:middle + 1]
        return self._beyond_cells[colour]

    def _sampled(self, level_map: _LevelMap, region: SearchRegion) -> torch.Tensor:
        features = level_map.features
        origin = np.array(level_map.rect[:2], np.float64)
        grid = _sample_grid(region, level_map.scale, origin, tuple(features.shape[-2:]), self.stride,
                            self.cell_offset).to(features.device)
        sampled = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        inside = F.grid_sample(torch.ones_like(features[:, :1]), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)
        if float(inside.min()) < 1.0:  # bilinear between the map's cells and flat border colour's beyond it
            beyond = self._beyond(level_map)
            for rows, cols in _beyond_bands(inside[0, 0] < 1.0, len(region.sides)):
                # in place, on the bands that reach past the map only (elsewhere the term is 0)
                sampled[:, :, rows, cols].addcmul_(1.0 - inside[:, :, rows, cols], beyond)
        # normalised before the transpose: the sum over channels is 3x faster on the contiguous sample
        sampled = unit_norm(sampled, dim=1)
        cells = region.size // self.stride
        # (1, C, S n, n) -> (S, C, n, n)
        return sampled[0].reshape(sampled.shape[1], len(region.sides), cells, cells).transpose(0, 1)
