"""Image encoder: EfficientNet-Lite0 ImageNet features of each frame, computed once and cached.

The backbone runs through `trackers.backbones.FeatureExtractor` (byte-bounded LRU cache keyed by
frame_idx, so memory does not grow with the video). The internal resolution is the network input:
frames scaled so their long side is at most `max_side` (and, with `min_side`, at least that), sides
multiples of 16. The stride-8 map
(40 channels: edges, texture) and the stride-16 map (112 channels: parts) are each L2-normalised,
concatenated on the stride-8 grid and normalised again, so the dot product of two keys is a cosine
similarity that weighs fine and coarse evidence alike. The raw stride-4/8/16 maps are kept too: they
are the trained propagation network's input.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...backbones import EfficientNetLite0, FeatureExtractor
from ...types import FrameSequence

STRIDE = 8  # the key grid's cell size in internal pixels


@dataclass
class EncodedFrame:
    image: np.ndarray  # (h, w, 3) uint8 RGB at the internal resolution
    gray: np.ndarray  # (h, w) uint8, for optical flow
    maps: dict[int, torch.Tensor]  # stride -> (1, C, h / stride, w / stride) raw backbone maps (4, 8, 16)
    # a part of the frame (ImageEncoder.part): where its top-left lies in the frame (internal px), and the
    # whole frame's (h, w); the fields above then cover that part only
    origin: tuple[int, int] = (0, 0)
    whole_hw: tuple[int, int] | None = None

    @functools.cached_property
    def keys(self) -> torch.Tensor:
        """(C, h / 8, w / 8) float32, unit length along C. Made when first asked for: the trained propagation
        network makes its own keys from the maps, so with it a frame never needs these (5 ms a frame at 864 px)."""
        with torch.inference_mode():
            fine = F.normalize(self.maps[8][0], dim=0)  # (40, h/8, w/8)
            coarse = F.interpolate(self.maps[16], size=fine.shape[1:], mode="bilinear", align_corners=False)[0]
            return F.normalize(torch.cat([fine, F.normalize(coarse, dim=0)], 0), dim=0).cpu().contiguous()

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the whole frame at the internal resolution."""
        return self.whole_hw if self.whole_hw is not None else self.gray.shape

    @property
    def grid_shape(self) -> tuple[int, int]:
        """The whole frame's key grid."""
        height, width = self.shape
        return height // STRIDE, width // STRIDE


class ImageEncoder:
    def __init__(self, device: torch.device, max_side: int = 864, cache_mb: int = 64, min_side: int = 0,
                 cpu_precision: str = "float32"):
        self.device = device
        self.max_side = max_side
        self.min_side = min_side
        self.cache_bytes = cache_mb << 20
        self.backbone = EfficientNetLite0(pretrained=True, out_strides=(4, 8, 16)).fuse_batchnorm(cpu_precision)
        self.extractor = self._extractor(1.0)
        self._uncached = FeatureExtractor(scale=1.0, device=self.device, cache_bytes=0, backbone=self.backbone)
        # the frame asked for last: each object's prompt, join and memory ask for it again
        self._last: tuple[int, EncodedFrame] | None = None

    def _extractor(self, scale: float) -> FeatureExtractor:
        return FeatureExtractor(scale=scale, device=self.device, cache_bytes=self.cache_bytes, backbone=self.backbone)

    def set_video(self, frames: FrameSequence) -> None:
        """A new video: new internal scale, empty cache."""
        height, width = frames[0].shape[:2]
        long_side = max(height, width)
        scale = self.max_side / long_side if long_side > self.max_side else max(
            1.0, min(self.min_side, self.max_side) / long_side)
        self.extractor = self._extractor(scale)
        self._last = None

    def internal_size(self, height: int, width: int) -> tuple[int, int]:
        return self.extractor.input_size((height, width))

    def encode_image(self, image: np.ndarray) -> dict[int, torch.Tensor]:
        """Raw maps {stride: (1, C, h / stride, w / stride)} of any RGB uint8 image whose sides are
        multiples of 16 (a zoomed crop), not cached."""
        return {stride: fmap.float() for stride, fmap in self._uncached.extract(image).maps.items()}

    def __call__(self, frames: FrameSequence, frame_idx: int) -> EncodedFrame:
        last = self._last
        if last is not None and last[0] == frame_idx:
            return last[1]
        frame = frames[frame_idx]
        image = np.ascontiguousarray(self.extractor.network_input(frame))
        encoded = _encoded(image, self.extractor(frame_idx, frame, image).maps)
        self._last = (frame_idx, encoded)
        return encoded

    def part(self, frames: FrameSequence, frame_idx: int, region: tuple[slice, slice]) -> EncodedFrame:
        """Frame `frame_idx` encoded on `region` (rows, columns at internal px, on the 16-px grid) only: its maps
        cut from the whole frame's where those are cached, else the backbone run on that part of the frame alone
        (the same maps away from the part's edges; not cached)."""
        rows, cols = region
        image = self.extractor.network_input(frames[frame_idx])
        part = np.ascontiguousarray(image[rows, cols])
        cached = self.extractor.cached(frame_idx)
        if cached is not None:
            maps = {s: m[..., rows.start // s:rows.stop // s, cols.start // s:cols.stop // s]
                    for s, m in cached.maps.items()}
        else:
            maps = self._uncached.extract(part).maps
        return _encoded(part, maps, (rows.start, cols.start), image.shape[:2])


def _encoded(image: np.ndarray, maps: dict[int, torch.Tensor], origin: tuple[int, int] = (0, 0),
             whole_hw: tuple[int, int] | None = None) -> EncodedFrame:
    """An RGB image (a frame or a part of one) and its raw backbone maps -> EncodedFrame."""
    return EncodedFrame(image=image, gray=cv2.cvtColor(image, cv2.COLOR_RGB2GRAY),
                        maps={s: m.float() for s, m in maps.items()}, origin=origin, whole_hw=whole_hw)
