"""Foreground matching's evidence read on a window of cells equals the whole map's."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trackstudio.trackers.box.fg_matching import ForegroundMatcher

STRIDE, CELLS = 8, 32


def _map(box_cells: tuple[int, int, int, int], seed: int) -> torch.Tensor:
    """(C, CELLS, CELLS) features: a target's cells (one look) in box_cells (row0, col0, row1, col1) on a
    background of another, with noise drawn by seed."""
    target, background = np.random.default_rng(100).standard_normal((2, 48, 1, 1))
    rng = np.random.default_rng(seed)
    features = background + 1.5 * rng.standard_normal((48, CELLS, CELLS))
    r0, c0, r1, c1 = box_cells
    features[:, r0:r1, c0:c1] = target + 1.5 * rng.standard_normal((48, r1 - r0, c1 - c0))
    return torch.from_numpy(features).float()


@pytest.fixture(scope="module")
def matcher() -> ForegroundMatcher:
    box_px = np.array([12, 12, 20, 22], np.float64) * STRIDE  # x1, y1, x2, y2
    return ForegroundMatcher(_map((12, 12, 22, 20), 0), box_px, CELLS * STRIDE, STRIDE)


@pytest.mark.parametrize("box_cells, reach", [((5, 9, 14, 17), 9), ((20, 3, 29, 12), 8), ((0, 0, 9, 8), 8),
                                              ((11, 11, 21, 19), 3), ((11, 11, 21, 19), 12)])
def test_evidence_on_a_window_equals_the_whole_maps(matcher, box_cells, reach):
    features = _map(box_cells, 1)
    r0, c0, r1, c1 = box_cells
    center = np.array([(c0 + c1) / 2, (r0 + r1) / 2]) * STRIDE
    whole = matcher.probability(features)
    evidence = matcher.evidence(features, center, reach)
    for point in (center, center + [5.0, -7.0], np.array([3.0, 250.0])):
        assert evidence.presence(point) == pytest.approx(matcher.presence(whole, point), abs=1e-6)
        expected, got = matcher.extent(whole, point), evidence.extent(point)
        assert (got is None) == (expected is None)
        if expected is not None:
            np.testing.assert_allclose(got.box_in_crop, expected.box_in_crop, atol=1e-6)
            assert got.fg_fraction == pytest.approx(expected.fg_fraction, abs=1e-6)


def test_the_whole_map_is_computed_only_when_the_blob_reaches_the_windows_edge(matcher):
    features = _map((11, 11, 21, 19), 2)  # a target 10 x 8 cells
    center = np.array([15.0, 16.0]) * STRIDE
    roomy = matcher.evidence(features, center, 9)
    assert roomy.extent(center) is not None and roomy._whole is None
    assert roomy.window.size < 0.5 * CELLS ** 2
    tight = matcher.evidence(features, center, 3)  # the blob runs past this window
    assert tight.extent(center) is not None and tight._whole is not None


def test_a_window_past_the_crops_edge_falls_back_to_the_whole_map():
    """A map whose cells reach past the crop (a 224-px crop on 32 cells of 8 px) and a window that starts at the
    crop's edge: the whole map answers (the window's empty cut crashed OpenCV's connected components)."""
    box_px = np.array([12, 12, 20, 22], np.float64) * STRIDE
    matcher = ForegroundMatcher(_map((12, 12, 22, 20), 0), box_px, 224, STRIDE)
    features = _map((22, 22, 31, 31), 3)
    point = np.array([250.0, 250.0])
    evidence = matcher.evidence(features, point, 3)
    assert evidence.left * STRIDE == evidence.top * STRIDE == 224
    whole = matcher.probability(features)
    expected, got = matcher.extent(whole, point), evidence.extent(point)
    assert (got is None) == (expected is None)
    if expected is not None:
        np.testing.assert_allclose(got.box_in_crop, expected.box_in_crop)
    assert evidence.presence(point) == pytest.approx(matcher.presence(whole, point), abs=1e-6)
