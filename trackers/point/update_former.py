"""The update transformer: attention along time per track, and across tracks through a few
virtual (proxy) tokens per frame, so the cost grows linearly with the number of tracks."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, L, D) attends to context (B, S, D); key_mask (B, S) bool, True = may be attended."""
        B, L, D = x.shape
        q = self.q(x).reshape(B, L, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).reshape(B, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn_mask = key_mask[:, None, None, :] if key_mask is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))


class Block(nn.Module):
    """Pre-norm attention + MLP block; `context=None` means self-attention."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)
        ctx = h if context is None else self.norm_context(context)
        x = x + self.attn(h, ctx, key_mask)
        return x + self.mlp(self.norm2(x))


class UpdateFormer(nn.Module):
    """tokens (B, N, T, D) for N tracks over T frames -> updated tokens of the same shape.

    Each layer: time attention within every track (and every virtual track), then per frame the
    virtual tokens gather from the real tracks (and themselves) and the tracks read back from them.
    `valid` (B, N, T) masks frames a track has not reached yet.
    """

    def __init__(self, dim: int, depth: int, heads: int, num_virtual: int):
        super().__init__()
        self.virtual = nn.Parameter(torch.randn(num_virtual, dim) * 0.02)
        self.time_blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.gather_blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.scatter_blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, N, T, D = tokens.shape
        K = self.virtual.shape[0]
        virtual = self.virtual[None, :, None, :].expand(B, K, T, D)
        x = torch.cat([tokens, virtual], 1)  # (B, N + K, T, D)
        time_mask = torch.cat([valid, valid.new_ones(B, K, T)], 1).reshape(B * (N + K), T)
        space_mask = time_mask.reshape(B, N + K, T).transpose(1, 2).reshape(B * T, N + K)
        for time_block, gather, scatter in zip(self.time_blocks, self.gather_blocks, self.scatter_blocks):
            x = time_block(x.reshape(B * (N + K), T, D), key_mask=time_mask).reshape(B, N + K, T, D)
            frame_major = x.transpose(1, 2).reshape(B * T, N + K, D)
            tracks, virtual = frame_major[:, :N], frame_major[:, N:]
            virtual = gather(virtual, frame_major, key_mask=space_mask)
            tracks = scatter(tracks, virtual)
            x = torch.cat([tracks, virtual], 1).reshape(B, T, N + K, D).transpose(1, 2)
        return x[:, :N]
