"""SAM2.1 memory: the encoder that turns (frame features, mask) into a memory map, and the memory
attention (self-attention + cross-attention to the memory bank, with 2-D rotary position encoding)
that conditions the current frame's features on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm2d, SinePositionEncoding
from .sam_heads import Attention


def _axial_rope_angles(head_dim: int, side: int, theta: float, device) -> torch.Tensor:
    """Rotation angles (side*side, head_dim/2) for a square grid in row-major order: the first
    half of the pairs rotate with x, the second half with y."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim))
    idx = torch.arange(side * side, device=device, dtype=torch.float32)
    xs, ys = idx % side, torch.div(idx, side, rounding_mode="floor")
    return torch.cat([torch.outer(xs, freqs), torch.outer(ys, freqs)], dim=-1)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of x (..., L, C) by per-position angles (L, C/2)."""
    pairs = x.float().unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return out.flatten(-2).type_as(x)


class RoPEAttention(Attention):
    """Attention with axial rotary encoding of a square query grid. Keys may hold several frames
    of that grid (`repeat_k`), followed by `num_k_exclude_rope` tokens (object pointers) that are
    not rotated."""

    def __init__(self, dim: int, num_heads: int = 1, kv_in_dim: int | None = None,
                 repeat_k: bool = False, theta: float = 10000.0):
        super().__init__(dim, num_heads, kv_in_dim=kv_in_dim)
        self.repeat_k = repeat_k
        self.theta = theta
        self._angles: dict[tuple, torch.Tensor] = {}

    def _cos_sin(self, num_q: int, head_dim: int, device):
        side = int(round(num_q ** 0.5))
        if side * side != num_q:
            raise ValueError(f"rotary attention needs a square feature grid, got {num_q} tokens")
        key = (side, head_dim, device)
        if key not in self._angles:
            self._angles[key] = _axial_rope_angles(head_dim, side, self.theta, device)
        angles = self._angles[key]
        return angles.cos(), angles.sin()

    def forward(self, q, k, v, num_k_exclude_rope: int = 0, readout: torch.Tensor | None = None):
        """q (B, Lq, C); k, v (B, Lk, Ckv). `readout` (B, Lk): also return, per query, the
        attention-weighted mean of it (averaged over heads) -> (B, Lq)."""
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        cos, sin = self._cos_sin(q.shape[-2], q.shape[-1], q.device)
        q = _rotate(q, cos, sin)
        num_rope = k.shape[-2] - num_k_exclude_rope
        if num_rope > 0:
            repeats = num_rope // q.shape[-2] if self.repeat_k else 1
            k_rot = _rotate(k[:, :, :num_rope], cos.repeat(repeats, 1), sin.repeat(repeats, 1))
            k = torch.cat([k_rot, k[:, :, num_rope:]], dim=2)
        out = self.out_proj(self._merge(F.scaled_dot_product_attention(q, k, v)))
        if readout is None:
            return out, None
        values = readout[:, None, :, None].expand(-1, q.shape[1], -1, -1).to(q.dtype)
        looked = F.scaled_dot_product_attention(q, k, values)  # (B, heads, Lq, 1)
        return out, looked.mean(1)[..., 0]


class MemoryAttentionLayer(nn.Module):
    def __init__(self, dim: int = 256, mem_dim: int = 64, ffn_dim: int = 2048):
        super().__init__()
        self.self_attn = RoPEAttention(dim)
        self.cross_attn_image = RoPEAttention(dim, kv_in_dim=mem_dim, repeat_k=True)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x, memory, memory_pos, num_obj_ptr_tokens: int, readout=None):
        normed = self.norm1(x)
        x = x + self.self_attn(normed, normed, normed)[0]
        attended, looked = self.cross_attn_image(self.norm2(x), memory + memory_pos, memory,
                                                 num_obj_ptr_tokens, readout)
        x = x + attended
        x = x + self.linear2(F.relu(self.linear1(self.norm3(x))))
        return x, looked


class MemoryAttention(nn.Module):
    def __init__(self, dim: int = 256, mem_dim: int = 64, num_layers: int = 4):
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(dim, mem_dim) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, current, current_pos, memory, memory_pos, num_obj_ptr_tokens: int = 0,
                readout: torch.Tensor | None = None):
        """current, current_pos (B, HW, C); memory, memory_pos (B, M, mem_dim).
        Returns (conditioned features (B, HW, C), last layer's readout (B, HW) or None)."""
        x = current + 0.1 * current_pos
        looked = None
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x, looked = layer(x, memory, memory_pos, num_obj_ptr_tokens, readout if i == last else None)
        return self.norm(x), looked


class MaskDownSampler(nn.Module):
    """Four stride-2 3x3 convs (x4 channels each) with LayerNorm + GELU, then a 1x1 conv: a
    full-resolution mask becomes a stride-16 map of `dim` channels."""

    def __init__(self, dim: int = 256, num_steps: int = 4):
        super().__init__()
        self.encoder = nn.Sequential()
        channels = 1
        for _ in range(num_steps):
            self.encoder.append(nn.Conv2d(channels, channels * 4, kernel_size=3, stride=2, padding=1))
            self.encoder.append(LayerNorm2d(channels * 4))
            self.encoder.append(nn.GELU())
            channels *= 4
        self.encoder.append(nn.Conv2d(channels, dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depth-wise 7x7 conv, LayerNorm, 4x MLP, layer scale, residual."""

    def __init__(self, dim: int = 256):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int = 256, num_layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, dim: int = 256, mem_dim: int = 64):
        super().__init__()
        self.mask_downsampler = MaskDownSampler(dim)
        self.pix_feat_proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.fuser = Fuser(dim)
        self.out_proj = nn.Conv2d(dim, mem_dim, kernel_size=1)
        self.position_encoding = SinePositionEncoding(mem_dim)

    def forward(self, pix_feat: torch.Tensor, mask_scores: torch.Tensor):
        """pix_feat (B, C, h, w) raw stride-16 features; mask_scores (B, 1, 16h, 16w) already scaled
        (the caller applies sigmoid/binarisation, scale and bias) -> (memory, position), each
        (B, mem_dim, h, w)."""
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask_scores)
        x = self.out_proj(self.fuser(x))
        return x, self.position_encoding(x)
