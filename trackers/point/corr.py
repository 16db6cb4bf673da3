"""Correlation pyramid around each track's current estimate, and attention heatmaps for the GUI.

Feature maps are pooled into `levels` scales (1, 1/2, 1/4, ...); on each scale a (2r+1)^2 grid of
features around the estimate is sampled bilinearly and dotted with the track's feature. The coarse levels see far (radius * 2^level cells), the fine ones precisely.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_pyramid(fmaps: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """fmaps (M, C, h, w) -> channels-last levels [(M, h, w, C), (M, h/2, w/2, C), ...], each
    average-pooled by 2 from the one before (channels-last makes the gathers below contiguous)."""
    pyramid = [fmaps]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2, ceil_mode=True))
    return [level.permute(0, 2, 3, 1).contiguous() for level in pyramid]


def _gather_grid(fmap: torch.Tensor, corner: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features on the size x size integer grid whose top-left cell is `corner`, and where that grid lies on the map.
    fmap (M, h, w, C) channels-last; corner (M, N, 2) long (x, y) -> features (M, N, size, size, C), the map's edge
    cells where the grid reaches past it, and inside (M, N, size, size) bool. The caller zeroes what lies outside
    on whichever is smaller, the features or what it makes of them."""
    M, h, w, C = fmap.shape
    steps = torch.arange(size, device=fmap.device)
    xs = corner[..., 0, None] + steps  # (M, N, size)
    ys = corner[..., 1, None] + steps
    inside = ((xs >= 0) & (xs < w))[:, :, None, :] & ((ys >= 0) & (ys < h))[:, :, :, None]
    index = ys.clamp(0, h - 1)[:, :, :, None] * w + xs.clamp(0, w - 1)[:, :, None, :]  # (M, N, size, size)
    index = index + (torch.arange(M, device=fmap.device) * (h * w)).view(M, 1, 1, 1)
    # rows of the flattened maps: index_select copies whole rows, about 3x faster than indexing with two tensors
    gathered = fmap.reshape(M * h * w, C).index_select(0, index.reshape(-1))
    return gathered.reshape(M, corner.shape[1], size, size, C), inside


def _bilinear(values: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
    """Interpolate a (..., S+1, S+1, [C]) integer grid at a shared fractional offset frac (..., 2)
    -> (..., S, S, [C]). The grid's rows are y, its columns x."""
    extra = values.ndim - frac.ndim - 1  # 1 when values carry channels
    fx = frac[..., 0].reshape(frac.shape[:-1] + (1, 1) + (1,) * extra)
    fy = frac[..., 1].reshape(frac.shape[:-1] + (1, 1) + (1,) * extra)
    top = values[..., :-1, :-1, :] if extra else values[..., :-1, :-1]
    top_right = values[..., :-1, 1:, :] if extra else values[..., :-1, 1:]
    bottom = values[..., 1:, :-1, :] if extra else values[..., 1:, :-1]
    bottom_right = values[..., 1:, 1:, :] if extra else values[..., 1:, 1:]
    return ((1 - fy) * ((1 - fx) * top + fx * top_right) + fy * ((1 - fx) * bottom + fx * bottom_right))


def sample_features(fmap: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear features at points: fmap (M, h, w, C) channels-last, coords (M, P, 2) in cell units
    (cell centres at integers) -> (M, P, C); zeros outside the map."""
    base = coords.floor()
    grid, inside = _gather_grid(fmap, base.long(), 2)  # (M, P, 2, 2, C)
    return _bilinear(grid * inside[..., None], coords - base)[:, :, 0, 0]


def _level_coords(coords: torch.Tensor, level: int) -> torch.Tensor:
    # Pooling by 2 puts level-l cell k over level-0 cells 2^l k .. 2^l k + 2^l - 1: shift the
    # centre so the same image location is sampled on every level.
    return coords / 2**level - 0.5 + 0.5 / 2**level


def correlation_pyramid(pyramid: list[torch.Tensor], coords: torch.Tensor, track_feats: torch.Tensor,
                        radius: int) -> torch.Tensor:
    """Correlations of each track feature with the features around its estimate on every level.

    pyramid: channels-last levels (M, h_l, w_l, C), M = B * T frames (`feature_pyramid`); coords
    (M, N, 2) in level-0 cells; track_feats (M, N, C). All (2r+1)^2 samples of a point share one
    fractional offset, so the dot products are taken on the (2r+2)^2 integer cells around it and
    interpolated once. Correlating with pooled features equals pooling the correlation volume.
    Returns (M, N, levels * (2r+1)^2), scaled by 1/sqrt(C).
    """
    M, N, C = track_feats.shape
    size = 2 * radius + 2
    out = []
    for level, fmap in enumerate(pyramid):
        centres = _level_coords(coords, level)
        base = centres.floor()
        grid, inside = _gather_grid(fmap, base.long() - radius, size)  # (M, N, size, size, C)
        corr = torch.einsum("mnijc,mnc->mnij", grid, track_feats) * inside  # zero beyond the map
        out.append(_bilinear(corr, centres - base).reshape(M, N, -1))
    return torch.cat(out, -1) / C**0.5


def attention_heatmap(fmap: torch.Tensor, track_feats: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Where each track's feature matches one frame: fmap (h, w, C) channels-last, track_feats
    (N, C) -> (N, h, w) in [0, 1] (softmax over the frame, scaled so each map's peak is 1)."""
    h, w, C = fmap.shape
    logits = torch.einsum("nc,hwc->nhw", F.normalize(track_feats, dim=-1), F.normalize(fmap, dim=-1))
    weights = torch.softmax(logits.reshape(len(track_feats), -1) / temperature, -1)
    weights = weights / weights.amax(-1, keepdim=True).clamp_min(1e-12)
    return weights.reshape(-1, h, w)
