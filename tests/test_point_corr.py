"""The correlation pyramid against bilinear sampling done another way (torch's grid_sample)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trackstudio.trackers.point.corr import correlation_pyramid, feature_pyramid, sample_features


def _sampled(fmap: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """fmap (M, h, w, C) channels-last, xy (M, P, 2) in cell units -> (M, P, C), bilinear, zeros past the map."""
    h, w = fmap.shape[1:3]
    grid = torch.stack([2 * xy[..., 0] / (w - 1) - 1, 2 * xy[..., 1] / (h - 1) - 1], -1)[:, :, None]
    return F.grid_sample(fmap.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)[..., 0].transpose(1, 2)


def test_correlations_are_bilinear_samples_dotted_with_the_track_feature_and_zero_past_the_map():
    torch.manual_seed(0)
    frames, channels, points, radius = 3, 8, 40, 2
    pyramid = feature_pyramid(torch.randn(frames, channels, 24, 40), levels=3)
    # points inside, on the edges and well past them, where part or all of the grid falls outside
    coords = torch.rand(frames, points, 2) * torch.tensor([56.0, 36.0]) - torch.tensor([8.0, 6.0])
    track_feats = torch.randn(frames, points, channels)

    corr = correlation_pyramid(pyramid, coords, track_feats, radius)

    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(offsets, offsets, indexing="ij")
    expected = []
    for level, fmap in enumerate(pyramid):
        centres = coords / 2**level - 0.5 + 0.5 / 2**level  # level-0 cell centres on this level
        xy = (centres[:, :, None] + torch.stack([dx, dy], -1).reshape(1, 1, -1, 2)).reshape(frames, -1, 2)
        samples = _sampled(fmap, xy).reshape(frames, points, -1, channels)
        expected.append(torch.einsum("mnkc,mnc->mnk", samples, track_feats))
    expected = torch.cat(expected, -1) / channels**0.5
    assert corr.shape == (frames, points, 3 * (2 * radius + 1) ** 2)
    assert torch.allclose(corr, expected, atol=1e-5)
    assert (expected == 0).any()  # some grids lie wholly past the map


def test_features_at_points_are_bilinear_and_zero_past_the_map():
    torch.manual_seed(1)
    level0 = feature_pyramid(torch.randn(2, 6, 12, 20), levels=1)[0]
    coords = torch.rand(2, 30, 2) * torch.tensor([26.0, 18.0]) - 3.0
    assert torch.allclose(sample_features(level0, coords), _sampled(level0, coords), atol=1e-5)
