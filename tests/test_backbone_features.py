"""FeatureExtractor: inference scale, geometry, and the byte-bounded per-frame LRU cache."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from trackstudio.trackers.backbones import EfficientNetLite0, FeatureExtractor, normalize_rgb


@pytest.fixture(scope="module")
def backbone() -> EfficientNetLite0:
    return EfficientNetLite0(out_strides=(8, 16))


def _frame(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def test_features_at_half_scale(backbone):
    extractor = FeatureExtractor(scale=0.5, backbone=backbone)
    frame = _frame(240, 427, seed=0)
    feats = extractor(0, frame)
    assert feats.frame_hw == (240, 427)
    assert feats.input_hw == (128, 208)  # 120 x 213.5 rounded to multiples of 16
    assert feats.maps[8].shape == (1, 40, 16, 26) and feats.maps[16].shape == (1, 112, 8, 13)
    dy, dx = feats.pixels_per_cell(16)
    assert dy * 8 == pytest.approx(240) and dx * 13 == pytest.approx(427)
    # Same numbers as running the backbone by hand on the resized frame.
    resized = cv2.resize(frame, (208, 128), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        direct = backbone(normalize_rgb(resized))
    torch.testing.assert_close(feats.maps[16], direct[16], atol=1e-4, rtol=1e-4)


def test_cache_hits_and_lru_eviction_by_bytes(backbone):
    probe = FeatureExtractor(backbone=backbone, cache_bytes=0).extract(_frame(64, 64, 0))
    extractor = FeatureExtractor(backbone=backbone, cache_bytes=int(2.5 * probe.nbytes))
    frames = [_frame(64, 64, seed) for seed in range(4)]
    first = extractor(0, frames[0])
    assert extractor(0, frames[0]) is first  # cached: no second forward
    extractor(1, frames[1])
    extractor(0, frames[0])  # 0 becomes the most recently used
    extractor(2, frames[2])  # over budget: evicts 1, the least recently used
    assert extractor.cached_frames() == [0, 2]
    assert extractor.cached_bytes == 2 * probe.nbytes <= extractor.cache_bytes
    extractor.clear()
    assert extractor.cached_frames() == [] and extractor.cached_bytes == 0


def test_frames_bigger_than_the_budget_are_not_cached(backbone):
    extractor = FeatureExtractor(backbone=backbone, cache_bytes=1000)
    feats = extractor(3, _frame(64, 64, 0))
    assert feats.maps[8].shape == (1, 40, 8, 8)
    assert extractor.cached_frames() == []


def test_bad_frames_are_refused(backbone):
    extractor = FeatureExtractor(backbone=backbone)
    with pytest.raises(ValueError, match="uint8"):
        extractor(0, np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        extractor(0, np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="scale"):
        FeatureExtractor(backbone=backbone, scale=0)
