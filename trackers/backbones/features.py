"""Per-frame backbone features for trackers, with a byte-bounded LRU cache keyed by frame_idx.

One FeatureExtractor can serve several trackers on the same video (the mask and point trackers
both look at EfficientNet features), so each frame goes through the network once. The cache knows
nothing about which video a frame_idx belongs to: call `clear()` when the video changes.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .efficientnet_lite import EfficientNetLite0, normalize_rgb

SIZE_MULTIPLE = 16  # network input sides are rounded to this so stride-16 cells tile the image


@dataclass
class FrameFeatures:
    """Feature maps of one frame and how they sit on the original frame."""

    maps: dict[int, torch.Tensor]  # stride -> (1, C, input_h / stride, input_w / stride)
    frame_hw: tuple[int, int]  # original frame (H, W)
    input_hw: tuple[int, int]  # size the frame was resized to before the network

    @property
    def nbytes(self) -> int:
        return sum(fmap.numel() * fmap.element_size() for fmap in self.maps.values())

    def pixels_per_cell(self, stride: int) -> tuple[float, float]:
        """(dy, dx): original-frame pixels covered by one cell of the stride map; cell (i, j)
        spans frame x in [j * dx, (j + 1) * dx)."""
        return (stride * self.frame_hw[0] / self.input_hw[0], stride * self.frame_hw[1] / self.input_hw[1])


class FeatureExtractor:
    """RGB uint8 (H, W, 3) frames -> EfficientNet-Lite0 feature maps at an inference scale.

    scale: resize factor applied to frames before the network (sides rounded to multiples of 16).
    cache_bytes: bound on the memory the cached feature maps take (on `device`); 0 disables it.
    """

    def __init__(self, out_strides: tuple[int, ...] = (8, 16), scale: float = 1.0,
                 device: torch.device | str = "cpu", cache_bytes: int = 512 << 20,
                 backbone: EfficientNetLite0 | None = None):
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.device = torch.device(device)
        self.scale = scale
        self.cache_bytes = cache_bytes
        self.backbone = (backbone if backbone is not None else EfficientNetLite0(out_strides=out_strides).fuse_batchnorm())
        self.backbone = self.backbone.to(self.device).eval()
        self.out_strides = self.backbone.out_strides
        self._cache: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()  # trackers may run in a worker thread while the UI asks too

    def input_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) the network sees for a frame of size frame_hw."""
        return tuple(max(SIZE_MULTIPLE, round(side * self.scale / SIZE_MULTIPLE) * SIZE_MULTIPLE)
                     for side in frame_hw)

    def __call__(self, frame_idx: int, frame: np.ndarray, network_input: np.ndarray | None = None) -> FrameFeatures:
        """Features of frame `frame_idx` (from the cache when present). network_input: the frame already
        resized by `self.network_input(frame)`, where the caller needs that image too (one resize, not two)."""
        with self._lock:
            cached = self._cache.get(frame_idx)
            if cached is not None:
                self._cache.move_to_end(frame_idx)
                return cached
        features = self.extract(frame, network_input)
        with self._lock:
            self._store(frame_idx, features)
        return features

    def cached(self, frame_idx: int) -> FrameFeatures | None:
        """Frame `frame_idx`'s features if they are in the cache (nothing is computed)."""
        with self._lock:
            return self._cache.get(frame_idx)

    def network_input(self, frame: np.ndarray) -> np.ndarray:
        """The RGB uint8 frame resized to the network's input size (itself where it has that size)."""
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3
                and frame.dtype == np.uint8):
            shape = getattr(frame, "shape", None)
            raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {shape} "
                             f"{getattr(frame, 'dtype', type(frame).__name__)}")
        frame_hw = frame.shape[:2]
        input_h, input_w = self.input_size(frame_hw)
        if (input_h, input_w) == frame_hw:
            return frame
        shrinking = input_h < frame_hw[0]
        return cv2.resize(frame, (input_w, input_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    def extract(self, frame: np.ndarray, network_input: np.ndarray | None = None) -> FrameFeatures:
        """Run the backbone on one frame, bypassing the cache (network_input: see __call__)."""
        image = self.network_input(frame) if network_input is None else network_input
        with torch.inference_mode():
            maps = self.backbone(normalize_rgb(image).to(self.device))
        return FrameFeatures(maps=maps, frame_hw=tuple(frame.shape[:2]), input_hw=tuple(image.shape[:2]))

    def _store(self, frame_idx: int, features: FrameFeatures) -> None:
        if features.nbytes > self.cache_bytes:
            return
        old = self._cache.pop(frame_idx, None)
        if old is not None:
            self._cached_bytes -= old.nbytes
        self._cache[frame_idx] = features
        self._cached_bytes += features.nbytes
        while self._cached_bytes > self.cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._cached_bytes -= evicted.nbytes

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    def cached_frames(self) -> list[int]:
        """Cached frame indices, least recently used first."""
        with self._lock:
            return list(self._cache)

    def clear(self) -> None:
        """Forget every cached frame (call when the video changes)."""
        with self._lock:
            self._cache.clear()
            self._cached_bytes = 0
