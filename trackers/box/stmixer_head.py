"""STMixer's adaptive sampling and adaptive mixing (Wu et al., "STMixer", CVPR 2023), written for
this project from the design notes (../shared/design/stmixer_adaptive_sampling.md).

A query (one per object) decides *where* to look and *how* to mix what it sees:

- `make_sample_points`: per sampling point, an (x, y) offset in units of the box's width / height
  and a level offset, predicted from the query, around the box `xyzr` = (cx, cy, log2 scale,
  log2 aspect h/w); the box's own level is log2 of its scale, so big boxes read coarse maps.
- `translate_to_linear_weight`: a sample at a fractional level is spread over the feature levels
  with softmax(-(level - i)^2 / tau) weights.
- `mhaq3d` / `sample_4d`: the same points are read by bilinear `grid_sample` from every recent frame
  of every level (4-D over x, y, level, time), weighted per level and summed.
- `AdaptiveMixing`: channel mixing and point mixing whose matrices are generated from the query,
  then a projection back to the query (residual).

Coordinates are continuous pixel coordinates of the feature maps' input image (x = 0 is the left
edge of pixel 0), as `grid_sample(align_corners=False)` reads them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def box_to_xyzr(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) [x1, y1, x2, y2] -> (..., 4) [cx, cy, log2 sqrt(w h), log2 (h / w)]."""
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=1e-3)
    center = (boxes[..., :2] + boxes[..., 2:]) / 2
    scale = 0.5 * torch.log2(wh[..., 0] * wh[..., 1])
    ratio = torch.log2(wh[..., 1] / wh[..., 0])
    return torch.cat([center, scale[..., None], ratio[..., None]], dim=-1)


def xyzr_to_box(xyzr: torch.Tensor) -> torch.Tensor:
    """Inverse of box_to_xyzr."""
    scale = 2.0 ** xyzr[..., 2:3]
    ratio = 2.0 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    wh = scale * ratio
    return torch.cat([xyzr[..., :2] - wh / 2, xyzr[..., :2] + wh / 2], dim=-1)


def make_sample_points(offset: torch.Tensor, num_group: int, xyzr: torch.Tensor) -> torch.Tensor:
    """offset (B, L, num_group * 3): (dx, dy) in box widths / heights and a level offset per point;
    xyzr (B, L, 4) -> sample points (B, L, 1, num_group, 3) = [x, y, level]."""
    batch, queries, _ = offset.shape
    offset = offset.view(batch, queries, 1, num_group, 3)
    roi_cc = xyzr[..., :2]
    scale = 2.0 ** xyzr[..., 2:3]
    ratio = 2.0 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], dim=-1)
    roi_wh = scale * ratio  # (B, L, 2) box width, height
    roi_lvl = xyzr[..., 2:3].view(batch, queries, 1, 1, 1)
    sample_xy = roi_cc.view(batch, queries, 1, 1, 2) + offset[..., :2] * roi_wh.view(batch, queries, 1, 1, 2)
    sample_lvl = roi_lvl + offset[..., 2:3]
    return torch.cat([sample_xy, sample_lvl], dim=-1)


def translate_to_linear_weight(ref: torch.Tensor, num_total: int, tau: float = 2.0) -> torch.Tensor:
    """ref (...,) fractional level indices -> (..., num_total) softmax(-(ref - i)^2 / tau) weights."""
    grid = torch.arange(num_total, device=ref.device, dtype=ref.dtype)
    distance = (ref.unsqueeze(-1) - grid).pow(2.0).div(tau).abs().neg()
    return torch.softmax(distance, dim=-1)


def mhaq3d(sample_points: torch.Tensor, value: torch.Tensor, weight: torch.Tensor | None = None,
           n_points: int = 1) -> torch.Tensor:
    """Multi-head sampling of one level across time.

    sample_points: (B, Hq, Wq, n_heads * n_points, 2), x y normalised to [0, 1] of the map;
    value: (B, C, T, H, W); weight: (B, Hq, Wq, n_heads * n_points) or None
    -> (B, C // n_heads, n_heads, T, n_points, Hq, Wq)
    """
    batch, hq, wq, heads_points, _ = sample_points.shape
    _, channels, frames, height, width = value.shape
    n_heads = heads_points // n_points
    # (B n_heads, Hq, Wq, n_points, 2), the same points for every frame
    points = sample_points.view(batch, hq, wq, n_heads, n_points, 2).permute(0, 3, 1, 2, 4, 5).flatten(0, 1)
    points = points.repeat(frames, 1, 1, 1, 1).flatten(2, 3) * 2.0 - 1.0  # (T B n_heads, Hq, Wq n_points, 2)
    value = value.reshape(batch * n_heads, channels // n_heads, frames, height, width)
    value = value.permute(2, 0, 1, 3, 4).flatten(0, 1)  # (T B n_heads, C // n_heads, H, W)
    out = F.grid_sample(value, points, mode="bilinear", padding_mode="zeros", align_corners=False)
    # out: (T B n_heads, C // n_heads, Hq, Wq n_points)
    if weight is not None:
        weight = weight.view(batch, hq, wq, n_heads, n_points).permute(0, 3, 1, 2, 4).flatten(0, 1)
        out = out * weight.flatten(2, 3).unsqueeze(1).repeat(frames, 1, 1, 1)
    out = out.view(frames, batch, n_heads, channels // n_heads, hq, wq, n_points)
    return out.permute(1, 3, 2, 0, 6, 4, 5)


def sample_4d(sample_points: torch.Tensor, values: list[torch.Tensor], featmap_strides: list[int],
              n_points: int = 1, mapping_stride: float = 3.0, tau: float = 2.0) -> torch.Tensor:
    """Read points over x, y, level and time.

    sample_points: (B, Hq, Wq, n_heads * n_points, 3) [x, y, level] in input pixels and log2 scale;
    values: per level (B, C, T, H_l, W_l), strides featmap_strides; a point at level
    `mapping_stride + i` reads level i (fractional levels spread by translate_to_linear_weight)
    -> (B, C // n_heads, n_heads, T, n_points, Hq, Wq)
    """
    batch, hq, wq, heads_points, _ = sample_points.shape
    _, channels, frames, _, _ = values[0].shape
    n_heads = heads_points // n_points
    xy = sample_points[..., :2]
    level_weights = translate_to_linear_weight(sample_points[..., 2] - mapping_stride, len(values), tau=tau)
    out = sample_points.new_zeros(batch, channels // n_heads, n_heads, frames, n_points, hq, wq)
    for level, (value, stride) in enumerate(zip(values, featmap_strides)):
        mapping_size = value.new_tensor([value.size(4), value.size(3)]) * stride  # (W, H) in input pixels
        out = out + mhaq3d(xy / mapping_size, value, weight=level_weights[..., level], n_points=n_points)
    return out


class AdaptiveMixing(nn.Module):
    """Channel then point mixing with matrices generated from the query, projected back onto it.

    x: (B, N, G, P, C) sampled features (G groups of C = in_dim / G channels, P points);
    query: (B, N, query_dim) -> (B, N, query_dim)
    """

    def __init__(self, in_dim: int, in_points: int, n_groups: int, query_dim: int | None = None,
                 out_dim: int | None = None, out_points: int | None = None):
        super().__init__()
        out_dim = out_dim if out_dim is not None else in_dim
        out_points = out_points if out_points is not None else in_points
        self.query_dim = query_dim if query_dim is not None else in_dim
        self.in_points, self.out_points, self.n_groups = in_points, out_points, n_groups
        self.eff_in_dim = in_dim // n_groups
        self.eff_out_dim = out_dim // n_groups
        self.m_parameters = self.eff_in_dim * self.eff_out_dim
        self.s_parameters = self.in_points * self.out_points
        self.total_parameters = self.m_parameters + self.s_parameters
        self.parameter_generator = nn.Linear(self.query_dim, n_groups * self.total_parameters)
        self.out_proj = nn.Linear(self.eff_out_dim * self.out_points * n_groups, self.query_dim)
        self.channel_norm = nn.LayerNorm(self.eff_out_dim)
        self.point_norm = nn.LayerNorm([self.out_points, self.eff_out_dim])
        self.act = nn.ReLU(inplace=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # generated mixing matrices start at zero (the mixers begin as constants, as in the notes)
        nn.init.zeros_(self.parameter_generator.weight)
        nn.init.zeros_(self.parameter_generator.bias)
        bound = 1.0 / math.sqrt(self.out_proj.in_features)
        nn.init.uniform_(self.out_proj.weight, -bound, bound)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        batch, num, groups, points, channels = x.shape
        params = self.parameter_generator(query).reshape(batch * num, groups, self.total_parameters)
        mix_channels = params[..., :self.m_parameters].view(batch * num, groups, self.eff_in_dim, self.eff_out_dim)
        mix_points = params[..., self.m_parameters:].view(batch * num, groups, self.out_points, self.in_points)
        out = x.reshape(batch * num, groups, points, channels)
        out = self.act(self.channel_norm(out @ mix_channels))  # (B N, G, P, eff_out_dim)
        out = self.act(self.point_norm(mix_points @ out))  # (B N, G, out_points, eff_out_dim)
        out = self.out_proj(out.reshape(batch, num, -1))
        return query + out
