"""Image encoder: EfficientNet-Lite0 ImageNet features of each frame, computed once and cached.

A frame is scaled to the tracker's internal resolution (long side at most `max_side`); its stride-8
map (40 channels, edges and texture) and its stride-16 map (112 channels, parts) are each L2-normalised,
concatenated on the stride-8 grid and normalised again, so a dot product of two keys is a cosine
similarity that weighs fine and coarse evidence alike. Frames are read lazily and only the last
`cache_frames` encodings are kept (LRU), so memory does not grow with the video.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...backbones import EfficientNetLite0, normalize_rgb
from ...types import FrameSequence

STRIDE = 8  # the key grid's cell size in internal pixels


@dataclass
class FrameFeatures:
    image: np.ndarray  # (h, w, 3) uint8 RGB at the internal resolution
    gray: np.ndarray  # (h, w) uint8, for optical flow
    keys: torch.Tensor  # (C, gh, gw) float32, unit length along C; gh = ceil(h / 8)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.keys.shape[1], self.keys.shape[2]


class ImageEncoder:
    def __init__(self, device: torch.device, max_side: int = 864, cache_frames: int = 8,
                 coarse_weight: float = 1.0):
        self.device = device
        self.max_side = max_side
        self.cache_frames = cache_frames
        self.coarse_weight = coarse_weight  # weight of the stride-16 half of the key
        self.backbone = EfficientNetLite0(pretrained=True, out_strides=(8, 16)).eval().to(device)
        self._cache: OrderedDict[tuple[int, int], FrameFeatures] = OrderedDict()

    def internal_size(self, height: int, width: int) -> tuple[int, int]:
        scale = min(1.0, self.max_side / max(height, width))
        return max(16, int(round(height * scale))), max(16, int(round(width * scale)))

    def clear(self) -> None:
        self._cache.clear()

    def __call__(self, frames: FrameSequence, frame_idx: int) -> FrameFeatures:
        key = (id(frames), frame_idx)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        features = self.encode(frames[frame_idx])
        self._cache[key] = features
        while len(self._cache) > self.cache_frames:
            self._cache.popitem(last=False)
        return features

    @torch.no_grad()
    def encode(self, frame: np.ndarray) -> FrameFeatures:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        height, width = self.internal_size(*frame.shape[:2])
        image = frame if (height, width) == frame.shape[:2] else cv2.resize(
            frame, (width, height), interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image)
        maps = self.backbone(normalize_rgb(image).to(self.device))
        fine = F.normalize(maps[8][0], dim=0)  # (40, gh, gw)
        coarse = F.interpolate(maps[16], size=fine.shape[1:], mode="bilinear", align_corners=False)[0]
        coarse = F.normalize(coarse, dim=0) * self.coarse_weight
        keys = F.normalize(torch.cat([fine, coarse], 0), dim=0).float().cpu()
        return FrameFeatures(image=image, gray=cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), keys=keys)
