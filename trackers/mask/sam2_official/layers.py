"""Small building blocks shared by the SAM2.1 modules.

Attribute names (`layers`, `weight`, ...) follow the official checkpoints so their state dicts load
strictly; the code itself is the project's own.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """`num_layers` linear layers with an activation between them (stored as `layers.<i>`)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 activation: type[nn.Module] = nn.ReLU, sigmoid_output: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) map."""

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


def sine_position_map(channels: int, height: int, width: int, device, temperature: float = 10000.0
                      ) -> torch.Tensor:
    """DETR-style normalised 2-D sine encoding, (channels, H, W): first half y, second half x."""
    half = channels // 2
    scale = 2 * math.pi
    eps = 1e-6
    ys = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    xs = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    ys = ys / (ys[-1] + eps) * scale
    xs = xs / (xs[-1] + eps) * scale
    idx = torch.arange(half, dtype=torch.float32, device=device)
    freqs = temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / half)

    def encode(v: torch.Tensor) -> torch.Tensor:  # (L,) -> (L, half), sin on even, cos on odd
        phase = v[:, None] / freqs
        out = torch.empty_like(phase)
        out[:, 0::2] = phase[:, 0::2].sin()
        out[:, 1::2] = phase[:, 1::2].cos()
        return out

    pos_y = encode(ys)[:, None, :].expand(height, width, half)
    pos_x = encode(xs)[None, :, :].expand(height, width, half)
    return torch.cat([pos_y, pos_x], dim=-1).permute(2, 0, 1).contiguous()


class SinePositionEncoding(nn.Module):
    """Parameter-free sine encoding of a feature map's grid, cached per size."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self._cache: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, channels, H, W)
        key = (x.shape[-2], x.shape[-1], x.device)
        if key not in self._cache:
            self._cache[key] = sine_position_map(self.channels, x.shape[-2], x.shape[-1], x.device)
        return self._cache[key][None].expand(x.shape[0], -1, -1, -1).to(x.dtype)


def sine_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine/cosine embedding of (N,) positions -> (N, dim): [sin | cos] halves."""
    half = dim // 2
    idx = torch.arange(half, dtype=torch.float32, device=positions.device)
    freqs = temperature ** (2 * torch.div(idx, 2, rounding_mode="floor") / half)
    phase = positions.float()[:, None] / freqs
    return torch.cat([phase.sin(), phase.cos()], dim=-1)

