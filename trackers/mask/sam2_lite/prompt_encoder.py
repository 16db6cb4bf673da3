"""Prompt encoder: clicks (+/-), a box or a mask on one frame -> the object's probability map.

A mask is taken as given. With the trained click network (click_net.py, the default), clicks and
a box go through it together with the previous answer when the prompt refines it (the same box,
the earlier clicks kept and more added), as in RITM / SAM. Its answer to a box stays within the box
(grown by `box_margin`) unless a positive click lies beyond it. Where its mask misses every positive
click (or, for a box alone, the whole box), the path below answers instead.

Without it (`clicks="grabcut"`), clicks and boxes become a mask in two steps:
1. a prior on the key grid: the box, or disks around the positive clicks, minus the cells whose keys
   resemble the negative clicks (and, with a box, the background ring just outside it) more than
   the positive clicks;
2. GrabCut on a crop around the prior, seeded with it (maybe-foreground where the prior says so,
   sure foreground / background disks at the clicks), which finds the pixel-accurate boundary;
   where it finds nothing in a box (a flat region), the box itself is the mask.
Only the parts connected to positive clicks are kept, so each extra click refines the mask locally.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import torch

import torch.nn.functional as F

from ...types import Prompt, box_iou
from .click_net import ClickNet, prompt_maps
from .image_encoder import STRIDE, EncodedFrame
from .mask_decoder import grid_to_pixels, snap_to_edges
from .propagation_net import normalize_maps

SIMILARITY_SOFTNESS = 0.05  # cosine difference that moves the prior from 27 % to 73 %
BOX_LIKENESS = 0.65  # with a box, cells more similar than this to the outside ring are background...
CLICK_LIKENESS = 0.5  # ...without one, cells more similar than this to a negative click
MIN_ZOOM = 1.25  # a region is looked at again only when zooming enlarges it at least this much
# a click's zoomed region is encoded anew only when it overlaps the last one less. Held-out train clips, box / 1 /
# 3 / 5 clicks: 0.860 / 0.783 / 0.882 / 0.918 never re-used, 0.860 / 0.783 / 0.882 / 0.920 at 0.85 and at 0.7,
# which re-encodes least (README)
ZOOM_REUSE_IOU = 0.7


def refines(earlier: Prompt, later: Prompt) -> bool:
    """Whether `later` corrects `earlier`: no masks, the same box, and the earlier clicks kept."""
    if earlier.mask is not None or later.mask is not None or earlier.point is not None or later.point is not None:
        return False
    if (earlier.box is None) != (later.box is None) or (
            earlier.box is not None and not np.allclose(earlier.box, later.box)):
        return False
    old = np.zeros((0, 3), np.float32) if earlier.clicks is None else earlier.clicks
    new = np.zeros((0, 3), np.float32) if later.clicks is None else later.clicks
    return len(new) > len(old) and np.array_equal(new[:len(old)], old)


class PromptEncoder:
    def __init__(self, click_net: ClickNet | None = None, seed_radius: int = 4, grabcut_iterations: int = 4,
                 work_side: int = 360, click_reach: float = 0.15,
                 encode_image: Callable[[np.ndarray], dict[int, torch.Tensor]] | None = None,
                 zoom_side: int = 0, zoom_expansion: float = 1.4, zoom_min_side: int = 40,
                 fine_zoom_side: int = 0, fine_zoom_from: int = 0,
                 edge_radius: int = 0, edge_eps: float = 0.002, box_margin: float = -1.0):
        self.click_net = click_net  # trained click-to-mask network; None: feature prior + GrabCut
        self.encode_image = encode_image  # RGB image -> raw backbone maps, for zooming in; None: no zoom
        self.zoom_side = zoom_side  # the zoomed region's long side at the network (internal px); 0: off
        # from this many clicks on (0: never) the region is enlarged to fine_zoom_side instead: late clicks
        # correct details (RITM zooms in only after its first clicks for the same reason)
        self.fine_zoom_side, self.fine_zoom_from = fine_zoom_side, fine_zoom_from
        self.zoom_expansion = zoom_expansion  # the region is the first answer's box grown by this factor...
        self.zoom_min_side = zoom_min_side  # ...and at least this long (internal px) before growing
        self.edge_radius = edge_radius  # the network's answer is guided-filtered to image edges; 0: off
        self.edge_eps = edge_eps * 255.0 ** 2  # guided-filter regularisation, (share of intensity range) ** 2
        # the network's answer to a box stays within the box grown by this share of its size per side (a
        # box says how far the object reaches; the network spills over onto ripples, shadows, reflections);
        # a positive click beyond that says the object reaches further: then the box does not bound it. < 0: off
        self.box_margin = box_margin
        self.seed_radius = seed_radius
        self.grabcut_iterations = grabcut_iterations
        self.work_side = work_side  # GrabCut runs on a crop scaled to at most this long side
        self.click_reach = click_reach  # clicks only: the object lies within this much of min(h, w)
        self._zoom_cache: tuple | None = None  # (frame image, zoom side, crop, input maps) of the last zoomed region
        self._frame_maps_of, self._normalized = None, None  # a frame's raw backbone maps -> the network's input

    def __call__(self, features: EncodedFrame, prompt: Prompt, scale: np.ndarray,
                 previous: np.ndarray | None = None) -> np.ndarray:
        """(h, w) float32 probability at internal resolution; `scale` (2,) = internal / video pixels in x, y;
        `previous` (h, w): the answer this prompt corrects (see `refines`), or None."""
        h, w = features.image.shape[:2]
        if not prompt.visible:
            return np.zeros((h, w), np.float32)
        if prompt.mask is not None:
            mask = prompt.mask.astype(np.float32)
            return mask if mask.shape == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
        clicks = np.zeros((0, 3), np.float32) if prompt.clicks is None else prompt.clicks.copy()
        clicks[:, :2] = clicks[:, :2] * scale
        box = None if prompt.box is None else prompt.box * np.tile(scale, 2)
        if prompt.point is not None:  # a single point prompt on a mask object is a positive click
            clicks = np.vstack([clicks, [[*(prompt.point * scale), 1.0]]]).astype(np.float32)
        positive, negative = clicks[clicks[:, 2] > 0, :2], clicks[clicks[:, 2] <= 0, :2]
        if box is None and len(positive) == 0:
            raise ValueError("a click prompt needs at least one positive click or a box")
        if self.click_net is not None:
            prob = self.segment_trained(features, box, positive, negative, previous)
            if box is not None:
                prob = self._within_box(prob, box, positive)
            if len(positive):  # as below: only the parts that hold a positive click are the object
                prob = np.where(self._keep_object_parts((prob > 0.5).astype(np.uint8), positive) > 0, prob, 0.0)
            if self._answers(prob, box, positive):
                return prob.astype(np.float32)
        # no network, or it found nothing where the user says the object is (imagery unlike its
        # training clips): the feature prior + GrabCut always answers
        return self.segment(features, box, positive, negative)

    def _within_box(self, prob: np.ndarray, box: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """The answer cleared outside the box grown by box_margin, unless that is off or a positive click
        lies outside."""
        if self.box_margin < 0:
            return prob
        grow = self.box_margin * (box[2:] - box[:2])
        low, high = box[:2] - grow, box[2:] + grow
        if len(positive) and np.any((positive < low) | (positive > high)):
            return prob
        bounded = np.zeros_like(prob)
        rows, cols = self._box_region(np.concatenate([low, high]), prob.shape)
        bounded[rows, cols] = prob[rows, cols]
        return bounded

    @staticmethod
    def _answers(prob: np.ndarray, box, positive: np.ndarray) -> bool:
        """Whether a mask answers the prompt: it covers a positive click, or (box only) lies in the box."""
        mask = prob > 0.5
        h, w = mask.shape
        if len(positive):
            cols = np.clip(np.round(positive[:, 0]).astype(int), 0, w - 1)
            rows = np.clip(np.round(positive[:, 1]).astype(int), 0, h - 1)
            return bool(mask[rows, cols].any())
        return bool(mask[PromptEncoder._box_region(box, mask.shape)].any())

    @staticmethod
    def _box_region(box: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice]:
        """(rows, cols) slices of the pixels inside `box` (x1, y1, x2, y2), clipped to `shape` (h, w)."""
        h, w = shape
        x1, y1, x2, y2 = np.clip(np.round(box).astype(int), 0, [w, h, w, h])
        return slice(y1, y2), slice(x1, x2)

    # -- the trained click network -----------------------------------------------------------------
    @torch.no_grad()
    def segment_trained(self, features: EncodedFrame, box, positive: np.ndarray, negative: np.ndarray,
                        previous: np.ndarray | None) -> np.ndarray:
        h, w = features.image.shape[:2]
        prob = self._click_net_prob(self._frame_maps(features), (h, w), box, positive, negative, previous)
        fine = 0 < self.fine_zoom_from <= len(positive) + len(negative)
        zoom_side = self.fine_zoom_side if fine else self.zoom_side
        crop = self._zoom_crop(prob, box, positive, h, w, zoom_side)
        if crop is not None:
            prob = self._zoomed_in(features.image, crop, zoom_side, prob, box, positive, negative, previous)
        # the stride-4 decoder's boundary, snapped to the frame's edges
        return snap_to_edges(features.image, prob, self.edge_radius, self.edge_eps)

    def _zoomed_in(self, image: np.ndarray, crop: tuple[int, int, int, int], zoom_side: int, prob: np.ndarray, box,
                   positive: np.ndarray, negative: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        # zoom in (RITM's Zoom-In): the network again on the object's surroundings, enlarged, so the
        # stride-4 decoder places the boundary of a small object from finer features
        crop, maps = self._zoom_maps(image, crop, zoom_side)
        x1, y1, x2, y2 = crop
        size_h, size_w = (4 * side for side in maps[4].shape[-2:])
        to_crop = np.array([size_w / (x2 - x1), size_h / (y2 - y1)], np.float32)
        origin = np.array([x1, y1], np.float32)
        local_box = None if box is None else np.concatenate([(box[:2] - origin) * to_crop, (box[2:] - origin) * to_crop])
        local_previous = None if previous is None else cv2.resize(
            previous[y1:y2, x1:x2], (size_w, size_h), interpolation=cv2.INTER_LINEAR)
        local = self._click_net_prob(maps, (size_h, size_w), local_box, (positive - origin) * to_crop,
                                     (negative - origin) * to_crop, local_previous)
        prob = prob.copy()
        # the mean of both scales: the zoomed answer alone lost as many objects as it gained
        # (held-out clips, 1 click: 0.740 -> 0.741 alone, 0.746 averaged)
        zoomed = cv2.resize(local, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        prob[y1:y2, x1:x2] = 0.5 * (prob[y1:y2, x1:x2] + zoomed)
        return prob

    def _zoom_maps(self, image: np.ndarray, crop: tuple[int, int, int, int], zoom_side: int
                   ) -> tuple[tuple[int, int, int, int], dict[int, torch.Tensor]]:
        """(crop, the network's input maps of it enlarged to zoom_side). The crop encoded for the prompt before on
        the same frame (and zoom) is used again where it overlaps this one by ZOOM_REUSE_IOU: a click that corrects
        an answer moves its region by a few pixels, and encoding the region was a third of a click's time."""
        if self._zoom_cache is not None:
            cached_image, cached_side, cached_crop, maps = self._zoom_cache
            if cached_image is image and cached_side == zoom_side and box_iou(cached_crop, crop) >= ZOOM_REUSE_IOU:
                return cached_crop, maps
        x1, y1, x2, y2 = crop
        zoom = zoom_side / max(x2 - x1, y2 - y1)
        size_w, size_h = (max(16, int(round(side * zoom / 16)) * 16) for side in (x2 - x1, y2 - y1))
        maps = normalize_maps(self.encode_image(cv2.resize(image[y1:y2, x1:x2], (size_w, size_h),
                                                           interpolation=cv2.INTER_LINEAR)))
        self._zoom_cache = (image, zoom_side, crop, maps)
        return crop, maps

    def _zoom_crop(self, prob: np.ndarray, box, positive: np.ndarray, h: int, w: int,
                   zoom_side: int) -> tuple[int, int, int, int] | None:
        """The region to look at again, enlarged to `zoom_side`: the first answer, the positive clicks and the box,
        grown by `zoom_expansion`; None when zooming is off or would enlarge it less than MIN_ZOOM."""
        if self.encode_image is None or zoom_side <= 0:
            return None
        ys, xs = np.nonzero(prob > 0.5)
        xs = np.concatenate([xs, xs + 1, positive[:, 0]] + ([] if box is None else [box[[0, 2]]]))
        ys = np.concatenate([ys, ys + 1, positive[:, 1]] + ([] if box is None else [box[[1, 3]]]))
        center = np.array([xs.min() + xs.max(), ys.min() + ys.max()]) / 2
        half = np.maximum([xs.max() - xs.min(), ys.max() - ys.min()], self.zoom_min_side) * self.zoom_expansion / 2
        x1, y1 = np.maximum(0, np.floor(center - half)).astype(int)
        x2, y2 = np.minimum([w, h], np.ceil(center + half)).astype(int)
        if zoom_side < MIN_ZOOM * max(x2 - x1, y2 - y1):
            return None
        return int(x1), int(y1), int(x2), int(y2)

    def _frame_maps(self, features: EncodedFrame) -> dict[int, torch.Tensor]:
        """The network's input maps of a frame, kept for the frame of the last prompt (its next clicks read them)."""
        if self._frame_maps_of is not features.maps:
            self._frame_maps_of, self._normalized = features.maps, normalize_maps(features.maps)
        return self._normalized

    def _click_net_prob(self, maps: dict[int, torch.Tensor], size: tuple[int, int], box,
                        positive: np.ndarray, negative: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """(h, w) probability from the click network on an image of `size` (h, w) whose input maps are given."""
        h, w = size
        size4 = tuple(maps[4].shape[-2:])
        previous4 = None
        if previous is not None:
            padded = np.zeros((4 * size4[0], 4 * size4[1]), np.float32)
            padded[:h, :w] = previous
            previous4 = F.adaptive_avg_pool2d(torch.from_numpy(padded)[None, None], size4)[0, 0]
        logits4 = self.click_net(maps, prompt_maps(size4, positive, negative, box, previous4))
        prob = torch.sigmoid(F.interpolate(logits4, scale_factor=4, mode="bilinear", align_corners=False))
        return np.ascontiguousarray(prob[0, 0, :h, :w].numpy(), dtype=np.float32)

    # -- without the network, step 1: feature prior -------------------------------------------------------------------
    def feature_prior(self, features: EncodedFrame, box, positive, negative) -> np.ndarray:
        """(gh, gw) float32 in [0, 1]: how much each cell looks like the object."""
        keys = features.keys
        channels, gh, gw = keys.shape
        flat = keys.reshape(channels, -1)
        negatives = [self._keys_at(keys, negative)]
        inside = np.ones((gh, gw), bool)
        if box is not None:
            c1, r1 = int(box[0] // STRIDE), int(box[1] // STRIDE)
            c2, r2 = int(np.ceil(box[2] / STRIDE)), int(np.ceil(box[3] / STRIDE))
            inside[:] = False
            inside[r1:r2, c1:c2] = True
            ring = np.zeros_like(inside)
            grow_r, grow_c = max(2, (r2 - r1) // 3), max(2, (c2 - c1) // 3)
            ring[max(0, r1 - grow_r):r2 + grow_r, max(0, c1 - grow_c):c2 + grow_c] = True
            ring &= ~inside
            cells = np.flatnonzero(ring)
            if cells.size:
                negatives.append(flat[:, torch.from_numpy(cells[:: max(1, cells.size // 400)])])
        negative_keys = torch.cat(negatives, 1)
        if negative_keys.shape[1] == 0:  # nothing to contrast with: the geometry of the prompt decides
            return inside.astype(np.float32)
        sim_neg = (negative_keys.T @ flat).topk(min(3, negative_keys.shape[1]), dim=0).values.mean(0)
        sim_pos = torch.full_like(sim_neg, -1.0)
        if len(positive):
            sim_pos = (self._keys_at(keys, positive).T @ flat).amax(0)
        # single-click similarities are weak and noisy: only strong look-alikes of the negatives go
        sim_pos = sim_pos.clamp(min=BOX_LIKENESS if box is not None else CLICK_LIKENESS)
        prior = torch.sigmoid((sim_pos - sim_neg) / SIMILARITY_SOFTNESS).reshape(gh, gw).numpy()
        return np.where(inside, prior, 0.0).astype(np.float32)

    @staticmethod
    def _keys_at(keys: torch.Tensor, points: np.ndarray) -> torch.Tensor:
        """(C, K) keys of the cells under (K, 2) [x, y] internal-pixel points."""
        _, gh, gw = keys.shape
        cols = np.clip((points[:, 0] // STRIDE).astype(int), 0, gw - 1)
        rows = np.clip((points[:, 1] // STRIDE).astype(int), 0, gh - 1)
        return keys[:, torch.from_numpy(rows), torch.from_numpy(cols)]

    # -- without the network, step 2: GrabCut ---------------------------------------------------------------------------
    def segment(self, features: EncodedFrame, box, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
        image = features.image
        h, w = image.shape[:2]
        prior = grid_to_pixels(self.feature_prior(features, box, positive, negative), (h, w))
        if box is not None:
            region = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
        else:  # clicks only: the object is looked for within reach of the positive clicks
            region, reachable = self._clicked_region(positive, h, w)
            prior = np.where(reachable, prior, 0.0)
        x1, y1, x2, y2 = self._crop(region, h, w)
        scale = min(1.0, self.work_side / max(x2 - x1, y2 - y1))
        size = (max(1, int(round((x2 - x1) * scale))), max(1, int(round((y2 - y1) * scale))))
        crop = cv2.resize(image[y1:y2, x1:x2], size, interpolation=cv2.INTER_AREA)
        crop_prior = cv2.resize(prior[y1:y2, x1:x2], size, interpolation=cv2.INTER_LINEAR)
        labels = np.where(crop_prior > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
        if box is not None:  # outside the box is sure background
            bx1, by1, bx2, by2 = np.round((region - [x1, y1, x1, y1]) * scale).astype(int)
            outside = np.ones(labels.shape, bool)
            outside[max(by1, 0):by2, max(bx1, 0):bx2] = False
            labels[outside] = cv2.GC_BGD
        else:  # the crop's border is background: the object lies inside it
            labels[[0, -1], :] = cv2.GC_BGD
            labels[:, [0, -1]] = cv2.GC_BGD
        local_pos = (positive - [x1, y1]) * scale
        local_neg = (negative - [x1, y1]) * scale
        for points, value in ((local_pos, cv2.GC_FGD), (local_neg, cv2.GC_BGD)):
            for x, y in points:
                cv2.circle(labels, (int(round(x)), int(round(y))), self.seed_radius, int(value), -1)
        if not np.any((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)):
            labels[labels.shape[0] // 2, labels.shape[1] // 2] = cv2.GC_PR_FGD
        if np.any((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)):
            cv2.grabCut(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), labels, None, np.zeros((1, 65)),
                        np.zeros((1, 65)), self.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
        fg = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.uint8)
        fg = self._keep_object_parts(fg, local_pos)
        out = np.zeros((h, w), np.float32)
        out[y1:y2, x1:x2] = cv2.resize(fg.astype(np.float32), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
        if box is not None and not self._answers(out, box, positive):
            # nothing stands out in the box (a flat region): the object is the box, as the user drew it
            out[self._box_region(box, out.shape)] = 1.0
        return out

    def _clicked_region(self, positive: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Clicks only: (box around the positive clicks' reach, (h, w) bool maybe-object disks).
        The disks are 3/4 of the reach: GrabCut grows them where colours agree, while disks larger
        than a small object would teach its foreground model the background's colours."""
        reach = int(self.click_reach * min(h, w))
        disks = np.zeros((h, w), np.uint8)
        for x, y in positive:
            cv2.circle(disks, (int(round(x)), int(round(y))), (3 * reach) // 4, 1, -1)
        box = np.array([positive[:, 0].min() - reach, positive[:, 1].min() - reach,
                        positive[:, 0].max() + reach, positive[:, 1].max() + reach], np.float32)
        return np.clip(box, 0, [w, h, w, h]), disks > 0

    @staticmethod
    def _crop(region: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = region
        margin = 0.25 * max(x2 - x1, y2 - y1) + 8
        return (int(max(0, x1 - margin)), int(max(0, y1 - margin)),
                int(min(w, np.ceil(x2 + margin))), int(min(h, np.ceil(y2 + margin))))

    @staticmethod
    def _keep_object_parts(fg: np.ndarray, positive: np.ndarray) -> np.ndarray:
        """The connected parts that hold a positive click; without clicks, the parts of note."""
        count, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
        if count <= 1:
            return fg
        if len(positive):
            rows = np.clip(np.round(positive[:, 1]).astype(int), 0, fg.shape[0] - 1)
            cols = np.clip(np.round(positive[:, 0]).astype(int), 0, fg.shape[1] - 1)
            keep = set(labels[rows, cols].tolist()) - {0}
        else:
            areas = stats[1:, cv2.CC_STAT_AREA]
            keep = {i + 1 for i in np.flatnonzero(areas >= 0.1 * areas.max())}
        if not keep:
            return fg
        return np.isin(labels, list(keep)).astype(np.uint8)
