"""Hiera image encoder with the FPN neck, as in SAM2.1 (`image_encoder.trunk` / `image_encoder.neck`).

Hiera is a plain hierarchical ViT: a stride-4 patch embedding, then stages of transformer blocks;
the first block of each later stage max-pools its queries by 2 (halving the resolution, doubling
the width and the heads). Most blocks attend inside non-overlapping windows, a few globally.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HieraSpec
from .layers import MLP, SinePositionEncoding


def _to_windows(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWin, size, size, C), zero-padding H and W up to multiples of size."""
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % size, (-w) % size
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // size, size, wp // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size, size, c), (hp, wp)


def _from_windows(windows: torch.Tensor, size: int, padded: tuple[int, int], hw: tuple[int, int]
                  ) -> torch.Tensor:
    hp, wp = padded
    b = windows.shape[0] // ((hp // size) * (wp // size))
    x = windows.view(b, hp // size, wp // size, size, size, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, -1)[:, : hw[0], : hw[1]]


def _pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """2x2 max-pool of a channels-last (B, H, W, C) map."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), stride, stride).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H/4, W/4, C)


class MultiScaleAttention(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: int | None):
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C) windows or whole maps
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # each (B, HW, heads, c)
        if self.q_stride:
            q = _pool(q.reshape(b, h, w, -1), self.q_stride)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class HieraBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, window_size: int, q_stride: int | None):
        super().__init__()
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, 4 * dim_out, dim_out, num_layers=2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        normed = self.norm1(x)
        shortcut = x
        if hasattr(self, "proj"):  # a stage change: widen (and pool) the residual path too
            shortcut = self.proj(normed)
            if self.q_stride:
                shortcut = _pool(shortcut, self.q_stride)
        window = self.window_size
        if window > 0:
            hw = normed.shape[1:3]
            normed, _ = _to_windows(normed, window)
        y = self.attn(normed)
        if window > 0:
            if self.q_stride:  # the queries were pooled inside each window
                window //= self.q_stride
            hw = shortcut.shape[1:3]
            padded = (hw[0] + (-hw[0]) % window, hw[1] + (-hw[1]) % window)
            y = _from_windows(y, window, padded, hw)
        x = shortcut + y
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    def __init__(self, spec: HieraSpec):
        super().__init__()
        dim, heads = spec.embed_dim, spec.num_heads
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *spec.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, spec.window_spec[0], spec.window_spec[0]))
        self.stage_ends = [sum(spec.stages[: i + 1]) - 1 for i in range(len(spec.stages))]
        pool_blocks = {end + 1 for end in self.stage_ends[:-1]}  # first block of stages 2..4
        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(sum(spec.stages)):
            dim_out = dim
            # The window size lags one block behind the stage: a stage's first block still uses
            # the previous stage's window (over the pooled-from, larger map).
            window = 0 if i in spec.global_att_blocks else spec.window_spec[stage]
            if i in pool_blocks:
                dim_out, heads, stage = dim * 2, heads * 2, stage + 1
            self.blocks.append(HieraBlock(dim, dim_out, heads, window, 2 if i in pool_blocks else None))
            dim = dim_out
        self.channel_list = [self.blocks[i].mlp.layers[-1].out_features for i in self.stage_ends[::-1]]

    def _position_embedding(self, h: int, w: int) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile(1, 1, h // win.shape[-2], w // win.shape[-1])
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, S, S) -> per-stage maps (B, C_i, S/4/2^i, S/4/2^i), highest resolution first."""
        x = self.patch_embed(x)
        x = x + self._position_embedding(*x.shape[1:3])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs


class FpnNeck(nn.Module):
    """1x1 lateral convs to d_model; top-down (nearest x2) fusion only into `top_down_levels`."""

    def __init__(self, d_model: int, backbone_channel_list: list[int], top_down_levels=(2, 3)):
        super().__init__()
        self.convs = nn.ModuleList()
        for channels in backbone_channel_list:  # lowest resolution first
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(channels, d_model, kernel_size=1))
            self.convs.append(lateral)
        self.top_down_levels = set(top_down_levels)
        self.position_encoding = SinePositionEncoding(d_model)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs) - 1
        features: list[torch.Tensor | None] = [None] * (n + 1)
        previous = None
        for level in range(n, -1, -1):
            lateral = self.convs[n - level](xs[level])
            if level in self.top_down_levels and previous is not None:
                top_down = F.interpolate(previous.float(), scale_factor=2.0, mode="nearest")
                previous = lateral + top_down.to(lateral.dtype)
            else:
                previous = lateral
            features[level] = previous
        return features, [self.position_encoding(f) for f in features]


class ImageEncoder(nn.Module):
    """Hiera trunk + FPN neck; drops the lowest-resolution level (`scalp=1` in every SAM2.1 size)."""

    def __init__(self, spec: HieraSpec, d_model: int = 256):
        super().__init__()
        self.trunk = Hiera(spec)
        self.neck = FpnNeck(d_model, self.trunk.channel_list)

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """-> (features, position encodings), strides 4, 8, 16, each (B, d_model, h, w)."""
        features, positions = self.neck(self.trunk(images))
        return features[:-1], positions[:-1]
