"""OSTrack (Ye et al. 2022): a one-stream ViT-B/16 with early candidate elimination and a centre head.

Module names and shapes follow the official checkpoint's `net` state dict (botaoye/OSTrack,
vit_base_patch16_224_ce + CenterPredictor, config vitb_256_mae_ce_32x4_ep300), so it loads strictly:
  backbone.cls_token (1, 1, 768), backbone.pos_embed (1, 197, 768) (kept from ImageNet pre-training,
  unused at inference), backbone.pos_embed_z (1, 64, 768), backbone.pos_embed_x (1, 256, 768),
  backbone.patch_embed.proj, backbone.blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2},
  backbone.norm, box_head.conv{1..4}_{ctr,offset,size}.{0 conv, 1 batch norm}, box_head.conv5_*.

Template (128 px) and search (256 px) patches are embedded, concatenated and run through 12 blocks;
at the candidate-elimination layers the search tokens that the template's centre token attends to
least are dropped (keep ratio), and after the last block the dropped positions are recovered as
zeros so the head sees the full 16x16 search map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 768
DEPTH = 12
NUM_HEADS = 12
PATCH = 16
PRETRAIN_GRID = 14  # ViT-B/16 at 224 px: pos_embed holds 14 x 14 + 1 (cls) positions


@dataclass(frozen=True)
class OSTrackGeometry:
    template_size: int = 128
    search_size: int = 256
    ce_layers: tuple[int, ...] = (3, 6, 9)  # blocks that eliminate candidates
    ce_keep_ratio: float = 0.7

    @property
    def template_grid(self) -> int:
        return self.template_size // PATCH

    @property
    def search_grid(self) -> int:
        return self.search_size // PATCH


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Conv2d(3, EMBED_DIM, PATCH, PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, C)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(EMBED_DIM, EMBED_DIM * 3)
        self.proj = nn.Linear(EMBED_DIM, EMBED_DIM)
        self.scale = (EMBED_DIM // NUM_HEADS) ** -0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, N, C) -> output (B, N, C) and attention weights (B, heads, N, N)."""
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, NUM_HEADS, channels // NUM_HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, tokens, channels)
        return self.proj(out), attn


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(EMBED_DIM, EMBED_DIM * 4)
        self.fc2 = nn.Linear(EMBED_DIM * 4, EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class CEBlock(nn.Module):
    """Pre-norm transformer block that may drop search tokens between attention and MLP."""

    def __init__(self, keep_ratio: float = 1.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        self.attn = Attention()
        self.norm2 = nn.LayerNorm(EMBED_DIM, eps=1e-6)
        self.mlp = Mlp()
        self.keep_ratio = keep_ratio

    def forward(self, x: torch.Tensor, len_template: int, search_index: torch.Tensor,
                template_mask: torch.Tensor | None):
        """x: (B, Lt + Ls, C); search_index: (B, Ls) original positions of the search tokens.
        Returns x, search_index, removed_index (B, R) or None, attention (B, heads, N, N)."""
        out, attn = self.attn(self.norm1(x))
        x = x + out
        removed = None
        if self.keep_ratio < 1.0:
            x, search_index, removed = eliminate_candidates(attn, x, len_template, self.keep_ratio,
                                                            search_index, template_mask)
        x = x + self.mlp(self.norm2(x))
        return x, search_index, removed, attn


def eliminate_candidates(attn: torch.Tensor, tokens: torch.Tensor, len_template: int, keep_ratio: float,
                         search_index: torch.Tensor, template_mask: torch.Tensor | None):
    """Keep the search tokens the (masked) template tokens attend to most.

    attn: (B, heads, N, N); tokens: (B, Lt + Ls, C); template_mask: (B, Lt) bool, the template
    tokens whose attention counts (OSTrack: the centre token), or None for all of them.
    """
    len_search = attn.shape[-1] - len_template
    keep = math.ceil(keep_ratio * len_search)
    if keep == len_search:
        return tokens, search_index, None
    t_to_s = attn[:, :, :len_template, len_template:]  # (B, heads, Lt, Ls)
    if template_mask is not None:
        weights = template_mask.to(t_to_s.dtype)[:, None, :, None]
        score = (t_to_s * weights).sum(dim=2) / weights.sum(dim=2).clamp(min=1.0)
    else:
        score = t_to_s.mean(dim=2)
    score = score.mean(dim=1)  # (B, Ls)
    order = torch.argsort(score, dim=1, descending=True)
    keep_idx, drop_idx = order[:, :keep], order[:, keep:]
    template_tokens = tokens[:, :len_template]
    search_tokens = tokens[:, len_template:]
    kept = search_tokens.gather(1, keep_idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
    return (torch.cat([template_tokens, kept], dim=1), search_index.gather(1, keep_idx),
            search_index.gather(1, drop_idx))


class VisionTransformerCE(nn.Module):
    def __init__(self, geometry: OSTrackGeometry):
        super().__init__()
        self.geometry = geometry
        self.patch_embed = PatchEmbed()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, EMBED_DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, PRETRAIN_GRID ** 2 + 1, EMBED_DIM))
        self.pos_embed_z = nn.Parameter(torch.zeros(1, geometry.template_grid ** 2, EMBED_DIM))
        self.pos_embed_x = nn.Parameter(torch.zeros(1, geometry.search_grid ** 2, EMBED_DIM))
        self.blocks = nn.Sequential(*[
            CEBlock(geometry.ce_keep_ratio if i in geometry.ce_layers else 1.0) for i in range(DEPTH)])
        self.norm = nn.LayerNorm(EMBED_DIM, eps=1e-6)

    def forward(self, template: torch.Tensor, search: torch.Tensor, template_mask: torch.Tensor | None = None):
        """template (B, 3, 128, 128), search (B, 3, 256, 256), ImageNet-normalised.

        Returns search features (B, Ls, C) in original token order (eliminated ones zero), the
        last block's template-centre -> search attention (B, Ls) (zero where eliminated) and
        `eliminated_at` (B, Ls): the index of the block that dropped each token, -1 if kept.
        """
        z = self.patch_embed(template) + self.pos_embed_z
        x = self.patch_embed(search) + self.pos_embed_x
        batch, len_t, len_s = x.shape[0], z.shape[1], x.shape[1]
        tokens = torch.cat([z, x], dim=1)
        search_index = torch.arange(len_s, device=x.device).expand(batch, -1)
        eliminated_at = torch.full((batch, len_s), -1, dtype=torch.long, device=x.device)
        attn = None
        for block_idx, block in enumerate(self.blocks):
            tokens, search_index, removed, attn = block(tokens, len_t, search_index, template_mask)
            if removed is not None:
                eliminated_at.scatter_(1, removed, block_idx)
        tokens = self.norm(tokens)
        kept = tokens[:, len_t:]
        features = torch.zeros(batch, len_s, kept.shape[-1], dtype=kept.dtype, device=kept.device)
        features.scatter_(1, search_index.unsqueeze(-1).expand(-1, -1, kept.shape[-1]), kept)
        t_to_s = attn[:, :, :len_t, len_t:]
        if template_mask is not None:
            weights = template_mask.to(t_to_s.dtype)[:, None, :, None]
            t_to_s = (t_to_s * weights).sum(dim=2) / weights.sum(dim=2).clamp(min=1.0)
        else:
            t_to_s = t_to_s.mean(dim=2)
        attention = torch.zeros(batch, len_s, dtype=t_to_s.dtype, device=x.device)
        attention.scatter_(1, search_index, t_to_s.mean(dim=1))
        return features, attention, eliminated_at


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CenterPredictor(nn.Module):
    """Three 5-layer conv towers: centre score (1), offset (2) and normalised size (2) maps."""

    def __init__(self, in_channels: int = EMBED_DIM, channels: int = 256):
        super().__init__()
        widths = [in_channels, channels, channels // 2, channels // 4, channels // 8]
        for branch, out in (("ctr", 1), ("offset", 2), ("size", 2)):
            for i in range(4):
                setattr(self, f"conv{i + 1}_{branch}", _conv_bn_relu(widths[i], widths[i + 1]))
            setattr(self, f"conv5_{branch}", nn.Conv2d(widths[4], out, 1))

    def _tower(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        for i in range(1, 6):
            x = getattr(self, f"conv{i}_{branch}")(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, C, G, G) -> score (B, 1, G, G), size (B, 2, G, G) in [0, 1] of the search side,
        offset (B, 2, G, G) in cells."""
        score = torch.sigmoid(self._tower(x, "ctr")).clamp(1e-4, 1 - 1e-4)
        size = torch.sigmoid(self._tower(x, "size")).clamp(1e-4, 1 - 1e-4)
        offset = self._tower(x, "offset")
        return score, size, offset


class OSTrackNet(nn.Module):
    def __init__(self, geometry: OSTrackGeometry = OSTrackGeometry()):
        super().__init__()
        self.geometry = geometry
        self.backbone = VisionTransformerCE(geometry)
        self.box_head = CenterPredictor()
        self.eval()

    def centre_template_mask(self, batch: int, device: torch.device) -> torch.Tensor:
        """(B, Lt) bool: OSTrack's CTR_POINT mask, the template token at the target centre."""
        grid = self.geometry.template_grid
        mask = torch.zeros(batch, grid, grid, dtype=torch.bool, device=device)
        centre = (grid - 1) // 2  # 3 for the 8 x 8 template grid, as the official code picks
        mask[:, centre, centre] = True
        return mask.flatten(1)

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> dict[str, torch.Tensor]:
        mask = self.centre_template_mask(template.shape[0], template.device)
        features, attention, eliminated_at = self.backbone(template, search, mask)
        grid = self.geometry.search_grid
        feature_map = features.transpose(1, 2).reshape(features.shape[0], -1, grid, grid)
        score, size, offset = self.box_head(feature_map)
        return {"score_map": score, "size_map": size, "offset_map": offset,
                "attention": attention.reshape(-1, grid, grid),
                "eliminated_at": eliminated_at.reshape(-1, grid, grid)}
