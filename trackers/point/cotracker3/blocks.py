"""CoTracker3 building blocks: the BasicEncoder CNN (`fnet`), the transformer blocks and the
EfficientUpdateFormer (time attention per track, space attention through virtual tracks).

Module and parameter names follow the official `scaled_online.pth` / `scaled_offline.pth` state
dicts so they load strictly (including the official spelling `virual_tracks`); the code is the
project's own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """Two 3x3 convs with parameter-free instance norm; a strided 1x1 conv shortcut when downsampling."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1)
        self.norm1 = nn.InstanceNorm2d(planes)
        self.norm2 = nn.InstanceNorm2d(planes)
        self.downsample = None
        if stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride),
                                            nn.InstanceNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        if self.downsample is not None:
            x = self.downsample(x)
        return F.relu(x + y)


class BasicEncoder(nn.Module):
    """Frame CNN: four residual stages at strides 2, 2, 4, 8, all resized to `stride` and fused."""

    def __init__(self, output_dim: int = 128, stride: int = 4):
        super().__init__()
        self.stride = stride
        half = output_dim // 2
        self.conv1 = nn.Conv2d(3, half, kernel_size=7, stride=2, padding=3)
        self.norm1 = nn.InstanceNorm2d(half)
        widths = [half, output_dim // 4 * 3, output_dim, output_dim]
        in_planes = half
        for i, (width, stride_i) in enumerate(zip(widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{i}", nn.Sequential(ResidualBlock(in_planes, width, stride_i),
                                                     ResidualBlock(width, width)))
            in_planes = width
        self.conv2 = nn.Conv2d(sum(widths), output_dim * 2, kernel_size=3, padding=1)
        self.norm2 = nn.InstanceNorm2d(output_dim * 2)
        self.conv3 = nn.Conv2d(output_dim * 2, output_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, output_dim, H/stride, W/stride)."""
        size = (x.shape[-2] // self.stride, x.shape[-1] // self.stride)
        x = F.relu(self.norm1(self.conv1(x)))
        stages = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            stages.append(F.interpolate(x, size, mode="bilinear", align_corners=True))
        x = F.relu(self.norm2(self.conv2(torch.cat(stages, dim=1))))
        return self.conv3(x)


class Mlp(nn.Module):
    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None,
                 tanh_gelu: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)
        self.approximate = "tanh" if tanh_gelu else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class Attention(nn.Module):
    def __init__(self, dim: int, context_dim: int | None = None, num_heads: int = 8):
        super().__init__()
        self.heads = num_heads
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(context_dim or dim, dim * 2)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        b, n, c = x.shape
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        k = k.reshape(b, context.shape[1], self.heads, -1).transpose(1, 2)
        v = v.reshape(b, context.shape[1], self.heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, c))


class AttnBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), tanh_gelu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    def __init__(self, dim: int, context_dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm_context = nn.LayerNorm(context_dim)
        self.cross_attn = Attention(dim, context_dim=context_dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), tanh_gelu=True)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = x + self.cross_attn(self.norm1(x), self.norm_context(context))
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """Per-iteration update of every track: attention along time within each track, then across
    tracks through a few learnt virtual tracks (points -> virtual, virtual self-attention,
    virtual -> points), so the cost grows linearly with the number of tracks."""

    def __init__(self, input_dim: int = 1110, hidden_size: int = 384, num_heads: int = 8, depth: int = 3,
                 num_virtual_tracks: int = 64, mlp_ratio: float = 4.0):
        super().__init__()
        self.num_virtual_tracks = num_virtual_tracks
        self.input_transform = nn.Linear(input_dim, hidden_size)
        self.flow_head = nn.Linear(hidden_size, 2)
        self.vis_conf_head = nn.Linear(hidden_size, 2)
        self.virual_tracks = nn.Parameter(torch.randn(1, num_virtual_tracks, 1, hidden_size))
        self.time_blocks = nn.ModuleList(AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_virtual_blocks = nn.ModuleList(AttnBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_point2virtual_blocks = nn.ModuleList(
            CrossAttnBlock(hidden_size, hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        self.space_virtual2point_blocks = nn.ModuleList(
            CrossAttnBlock(hidden_size, hidden_size, num_heads, mlp_ratio) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, T, input_dim) -> (B, N, T, 4): d_x, d_y, d_visibility, d_confidence."""
        tokens = self.input_transform(x)
        b, n, t, c = tokens.shape
        tokens = torch.cat([tokens, self.virual_tracks.expand(b, -1, t, -1)], dim=1)
        total = tokens.shape[1]
        for time_block, virtual_block, p2v, v2p in zip(self.time_blocks, self.space_virtual_blocks,
                                                       self.space_point2virtual_blocks,
                                                       self.space_virtual2point_blocks):
            tokens = time_block(tokens.reshape(b * total, t, c)).view(b, total, t, c)
            space = tokens.permute(0, 2, 1, 3).reshape(b * t, total, c)
            points, virtual = space[:, :n], space[:, n:]
            virtual = virtual_block(v2p(virtual, points))
            points = p2v(points, virtual)
            tokens = torch.cat([points, virtual], dim=1).view(b, t, total, c).permute(0, 2, 1, 3)
        points = tokens[:, :n]
        return torch.cat([self.flow_head(points), self.vis_conf_head(points)], dim=-1)
