"""Target extent from nearest-neighbour feature matching (as in VideoMatch), to refine Siamese boxes.

A fixed-aspect template pyramid cannot follow a person who crouches or a dog that turns; the
object's extent can be read off the search features instead. Every search cell is compared with
the first frame's target cells and background cells (cosine similarity of unit-norm features):
cells closer to the target than to any background form the foreground, and the connected
foreground blob under the located centre gives the box.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .siamfc_models import unit_norm


@dataclass
class Extent:
    box_in_crop: np.ndarray  # (4,) x1, y1, x2, y2 in crop pixels
    fg_fraction: float  # share of the blob's cells that are confidently foreground


class ForegroundMatcher:
    """Foreground / background feature memory of one target."""

    def __init__(self, features: torch.Tensor, target_in_crop: np.ndarray, crop_size: int, stride: int,
                 margin_cells: float = 1.0, temperature: float = 0.05, bg_similarity: float = 0.85):
        """features: (C, H, W) map of a crop; target_in_crop: (4,) box in its pixels."""
        features = unit_norm(features, dim=0)
        box = np.asarray(target_in_crop, np.float64)
        fg_mask, bg_mask = self._cell_masks(features.shape[-2:], box, stride, margin_cells)
        flat = features.flatten(1).T  # (H W, C)
        fg = flat[torch.from_numpy(fg_mask.ravel())]
        self.bg = flat[torch.from_numpy(bg_mask.ravel())]
        if len(self.bg):
            # a box holds background too (its corners, gaps): drop the cells that look like it
            like_bg = (fg @ self.bg.T).max(dim=1).values
            keep = like_bg < bg_similarity
            keep[torch.argmin(like_bg)] = True
            fg = fg[keep]
        self.fg = fg
        self.memory = torch.cat([fg, self.bg])  # (F + B, C)
        self.stride = stride
        self.crop_size = crop_size
        self.temperature = temperature
        # The blob of cell probabilities is not the box: mixed cells at the edges and the box's
        # own background shift each side. Measure that on the first frame, where the box is known,
        # as per-side offsets in units of the target's size, and take them off later extents.
        self.side_bias = np.zeros(4)
        first = self.extent(self.probability(features), (box[:2] + box[2:]) / 2.0)
        size = np.maximum(box[2:] - box[:2], 1.0)
        if first is not None:
            self.side_bias = (first.box_in_crop - box) / np.tile(size, 2)

    @staticmethod
    def _cell_masks(shape, box: np.ndarray, stride: int, margin_cells: float):
        rows, cols = shape
        centres_y = (np.arange(rows) + 0.5) * stride
        centres_x = (np.arange(cols) + 0.5) * stride
        inside_y = (centres_y >= box[1]) & (centres_y <= box[3])
        inside_x = (centres_x >= box[0]) & (centres_x <= box[2])
        fg = inside_y[:, None] & inside_x[None, :]
        pad = margin_cells * stride  # cells near the box edge are mixed: neither kind
        near_y = (centres_y >= box[1] - pad) & (centres_y <= box[3] + pad)
        near_x = (centres_x >= box[0] - pad) & (centres_x <= box[2] + pad)
        bg = ~(near_y[:, None] & near_x[None, :])
        if not fg.any():  # a target smaller than a cell: its centre cell
            row = min(int((box[1] + box[3]) / 2 // stride), rows - 1)
            col = min(int((box[0] + box[2]) / 2 // stride), cols - 1)
            fg[row, col] = True
        return fg, bg

    def probability(self, features: torch.Tensor, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
        """(C, H, W) search features -> (H, W) float32 foreground probability; of the cells [rows, cols] only,
        when given."""
        window = features[:, rows, cols]
        flat = unit_norm(window, dim=0).flatten(1)  # (C, h w)
        sim = self.memory @ flat  # (F + B, h w): one product for both kinds of cell
        num_fg = len(self.fg)
        sim_fg = sim[:num_fg].amax(dim=0)
        sim_bg = sim[num_fg:].amax(dim=0) if len(self.bg) else torch.zeros_like(sim_fg)
        prob = torch.sigmoid((sim_fg - sim_bg) / self.temperature)
        return prob.reshape(window.shape[-2:]).cpu().numpy().astype(np.float32)

    def evidence(self, features: torch.Tensor, center_in_crop: np.ndarray, reach_cells: int) -> "MatchEvidence":
        """Presence and extent read from the cells within reach_cells of a crop point first (MatchEvidence)."""
        return MatchEvidence(self, features, center_in_crop, reach_cells)

    def own_cell_probability(self, features: torch.Tensor, top: int, left: int, rows: int, cols: int) -> np.ndarray:
        """Foreground probability of the cells [top:top+rows, left:left+cols] of the prompt frame's
        own map: each cell against the others of that window at least two cells away (matching
        itself would say nothing) and against the background.  -> (rows, cols) float32"""
        window = unit_norm(features, dim=0)[:, top:top + rows, left:left + cols]
        flat = window.flatten(1).T  # (rows cols, C)
        ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        near = ((ys[:, None] - ys[None]).abs() <= 1) & ((xs[:, None] - xs[None]).abs() <= 1)
        sim_fg = (flat @ flat.T).masked_fill(near.to(flat.device), -1.0).max(dim=1).values
        sim_bg = (flat @ self.bg.T).max(dim=1).values if len(self.bg) else torch.full_like(sim_fg, -1.0)
        prob = torch.sigmoid((sim_fg - sim_bg) / self.temperature)
        return prob.reshape(rows, cols).cpu().numpy().astype(np.float32)

    def presence(self, prob: np.ndarray, center_in_crop: np.ndarray) -> float:
        """Mean foreground probability of the 3 x 3 cells around a crop point: is the target there?"""
        return float(prob[_around(*_cell_at(center_in_crop, self.stride, prob.shape))].mean())

    def extent(self, prob: np.ndarray, center_in_crop: np.ndarray) -> Extent | None:
        """The foreground blob of a probability map at (or nearest to) center_in_crop, in crop pixels;
        None if there is none."""
        size = self.crop_size
        cx, cy = _pixel_at(center_in_crop, size)
        blob = self._blob(prob, cx, cy, nearest=True, limit=(size, size))
        return None if blob is None else self._extent_of(*blob[:2])

    def _blob(self, prob: np.ndarray, cx: int, cy: int, nearest: bool, limit: tuple[int, int]
              ) -> tuple[np.ndarray, float, tuple[int, int]] | None:
        """(x1, y1, x2, y2) of the blob of `prob`'s cells (upsampled to pixels, cut at limit (h, w)) under pixel
        (cx, cy), the share of its pixels that are confidently foreground, and the upsampled map's (h, w); with
        nearest, the blob closest to it where the pixel is background. None: no blob there."""
        up_h, up_w = (min(cells * self.stride, side) for cells, side in zip(prob.shape, limit))
        if not (0 <= cx < up_w and 0 <= cy < up_h):  # (also an empty cut: OpenCV would crash on it)
            return None
        up = cv2.resize(prob, (prob.shape[1] * self.stride, prob.shape[0] * self.stride),
                        interpolation=cv2.INTER_LINEAR)[:up_h, :up_w]
        mask = (up > 0.5).astype(np.uint8)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count <= 1:
            return None
        label = labels[cy, cx]
        if label == 0:  # the centre fell on background: take the closest blob
            if not nearest:
                return None
            dists = np.linalg.norm(centroids[1:] - np.array([cx, cy]), axis=1)
            label = int(np.argmin(dists)) + 1
        x, y, w, h, area = stats[label]
        fg_fraction = float((up[labels == label] > 0.8).mean())
        return np.array([x, y, x + w, y + h], np.float64), fg_fraction, up.shape

    def _extent_of(self, blob: np.ndarray, fg_fraction: float) -> Extent | None:
        w, h = blob[2:] - blob[:2]
        # blob side = true side + bias * true size, so true size = blob size / (1 + far - near bias)
        stretch = 1.0 + self.side_bias[2:] - self.side_bias[:2]
        if np.any(stretch <= 0.2):
            return None
        size = np.array([w, h], np.float64) / stretch
        return Extent(blob - self.side_bias * np.tile(size, 2), fg_fraction)


class MatchEvidence:
    """A search crop's foreground probability as presence and extent read it, computed first on the cells within
    `reach_cells` of one point: presence reads the 3 x 3 cells at a point, and the blob under a point is the whole
    map's blob wherever it ends a cell or more inside that window (bilinear upsampling reads a cell's neighbours
    only, so such a blob and the ring around it have the same values). The whole map (the similarity product is
    most of a target's step) is computed only when the window does not decide; the answers are the whole map's."""

    def __init__(self, matcher: ForegroundMatcher, features: torch.Tensor, center_in_crop: np.ndarray,
                 reach_cells: int):
        self.matcher, self.features = matcher, features
        self.map_hw = tuple(features.shape[-2:])
        row, col = _cell_at(center_in_crop, matcher.stride, self.map_hw)
        self.top, self.left = max(row - reach_cells, 0), max(col - reach_cells, 0)
        self.bottom, self.right = min(row + reach_cells + 1, self.map_hw[0]), min(col + reach_cells + 1, self.map_hw[1])
        self.window = matcher.probability(features, slice(self.top, self.bottom), slice(self.left, self.right))
        self._whole: np.ndarray | None = None

    def whole(self) -> np.ndarray:
        if self._whole is None:
            self._whole = self.matcher.probability(self.features)
        return self._whole

    def presence(self, center_in_crop: np.ndarray) -> float:
        rows, cols = _around(*_cell_at(center_in_crop, self.matcher.stride, self.map_hw))
        if self.top <= rows.start and min(rows.stop, self.map_hw[0]) <= self.bottom \
                and self.left <= cols.start and min(cols.stop, self.map_hw[1]) <= self.right:
            return float(self.window[rows.start - self.top:rows.stop - self.top,
                                     cols.start - self.left:cols.stop - self.left].mean())
        return self.matcher.presence(self.whole(), center_in_crop)

    def extent(self, center_in_crop: np.ndarray) -> Extent | None:
        matcher, stride, size = self.matcher, self.matcher.stride, self.matcher.crop_size
        cx, cy = _pixel_at(center_in_crop, size)
        origin = np.array([self.left, self.top]) * stride
        found = matcher._blob(self.window, cx - origin[0], cy - origin[1], nearest=False,
                              limit=(size - origin[1], size - origin[0]))
        if found is not None:
            blob, fg_fraction, (up_h, up_w) = found
            # a window edge inside the map: the blob must end a cell short of it
            low_ok = (origin == 0) | (blob[:2] >= stride)
            at_map_end = np.array([self.right, self.bottom]) == self.map_hw[::-1]
            high_ok = at_map_end | (blob[2:] <= np.array([up_w, up_h]) - stride)
            if low_ok.all() and high_ok.all():
                return matcher._extent_of(blob + np.tile(origin, 2), fg_fraction)
        return matcher.extent(self.whole(), center_in_crop)


def _pixel_at(center_in_crop: np.ndarray, crop_size: int) -> tuple[int, int]:
    """(x, y) of the crop pixel nearest a crop point, clipped to the crop."""
    x, y = np.clip(np.round(center_in_crop).astype(int), 0, crop_size - 1)
    return int(x), int(y)


def _cell_at(center_in_crop: np.ndarray, stride: int, map_hw: tuple[int, int]) -> tuple[int, int]:
    """(row, col) of the map cell under a crop point, clipped to the map."""
    col, row = np.clip((np.asarray(center_in_crop) // stride).astype(int), 0, np.array(map_hw[::-1]) - 1)
    return int(row), int(col)


def _around(row: int, col: int) -> tuple[slice, slice]:
    """(rows, cols) of the 3 x 3 cells around a cell (fewer at the map's edge) that presence averages."""
    return slice(max(row - 1, 0), row + 2), slice(max(col - 1, 0), col + 2)
