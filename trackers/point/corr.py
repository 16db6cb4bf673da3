"""Correlation pyramid around each track's current estimate, and attention heatmaps for the GUI.

Each track's feature is correlated with the whole frame's feature map, the correlation is pooled
into `levels` scales (1, 1/2, 1/4, ...) and on each scale a (2r+1)^2 grid around the estimate is
sampled bilinearly. The coarse levels see far (radius * 2^level cells), the fine ones precisely.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_features(fmap: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear features at points. fmap (M, C, h, w); coords (M, P, 2) in cell units (x, y) where
    cell centres sit at integers -> (M, P, C). Outside the map reads zeros."""
    out = F.grid_sample(fmap, _grid(coords, fmap.shape[-2:])[:, :, None], mode="bilinear",
                        padding_mode="zeros", align_corners=True)
    return out[..., 0].transpose(1, 2)  # (M, P, C)


def _grid(coords: torch.Tensor, size) -> torch.Tensor:
    """Cell coordinates -> grid_sample's [-1, 1] range (align_corners=True)."""
    h, w = size
    return torch.stack([2 * coords[..., 0] / max(w - 1, 1) - 1, 2 * coords[..., 1] / max(h - 1, 1) - 1], -1)


def _offsets(radius: int, device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dx, dy], -1).reshape(-1, 2)  # ((2r+1)^2, 2)


def correlation_volume(fmaps: torch.Tensor, track_feats: torch.Tensor) -> torch.Tensor:
    """fmaps (M, C, h, w), track_feats (M, N, C) -> (M, N, h, w) dot products scaled by 1/sqrt(C)."""
    M, C, h, w = fmaps.shape
    return torch.bmm(track_feats / C**0.5, fmaps.reshape(M, C, h * w)).reshape(M, -1, h, w)


def correlation_pyramid(fmaps: torch.Tensor, coords: torch.Tensor, track_feats: torch.Tensor,
                        levels: int, radius: int) -> torch.Tensor:
    """Correlations of each track feature with the features around its estimate on every level.

    fmaps (M, C, h, w) with M = B * T frames; coords (M, N, 2) in level-0 cells; track_feats
    (M, N, C). The full correlation volume is pooled by 2 per level (the same as correlating with
    pooled features, but one cheap matrix product) and sampled on a (2r+1)^2 grid around the
    estimate. Returns (M, N, levels * (2r+1)^2).
    """
    M, N, _ = track_feats.shape
    corr = correlation_volume(fmaps, track_feats).reshape(M * N, 1, *fmaps.shape[-2:])
    offsets = _offsets(radius, coords.device)
    out = []
    for level in range(levels):
        if level:
            corr = F.avg_pool2d(corr, 2, stride=2, ceil_mode=True)
        # Pooling by 2 puts level-l cell k over level-0 cells 2^l k .. 2^l k + 2^l - 1: shift the
        # centre so the same image location is sampled on every level.
        centres = coords.reshape(M * N, 1, 2) / 2**level - 0.5 + 0.5 / 2**level
        grid = _grid(centres + offsets[None], corr.shape[-2:])  # (M*N, K, 2)
        sampled = F.grid_sample(corr, grid[:, None], mode="bilinear", padding_mode="zeros", align_corners=True)
        out.append(sampled.reshape(M, N, -1))
    return torch.cat(out, -1)


def attention_heatmap(fmap: torch.Tensor, track_feats: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Where each track's feature matches one frame: fmap (C, h, w), track_feats (N, C) ->
    (N, h, w) in [0, 1] (softmax over the frame, scaled so each map's peak is 1)."""
    C, h, w = fmap.shape
    logits = torch.einsum("nc,chw->nhw", F.normalize(track_feats, dim=-1), F.normalize(fmap, dim=0))
    weights = torch.softmax(logits.reshape(len(track_feats), -1) / temperature, -1)
    weights = weights / weights.amax(-1, keepdim=True).clamp_min(1e-12)
    return weights.reshape(-1, h, w)
