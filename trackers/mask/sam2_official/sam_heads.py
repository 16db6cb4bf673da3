"""SAM's prompt encoder and two-way-transformer mask decoder, in their SAM2.1 form
(`sam_prompt_encoder`, `sam_mask_decoder`): an object-score token, high-resolution skip features
and three multimask outputs plus one single-mask output.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP, LayerNorm2d

# Point labels understood by the prompt encoder.
LABEL_PAD, LABEL_NEG, LABEL_POS, LABEL_BOX_TL, LABEL_BOX_BR = -1, 0, 1, 2, 3


class Attention(nn.Module):
    """Multi-head attention whose inner width may be reduced (`downsample_rate`) and whose keys and
    values may come from a narrower input (`kv_in_dim`)."""

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1, kv_in_dim: int | None = None):
        super().__init__()
        inner = dim // downsample_rate
        kv_in_dim = kv_in_dim or dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(kv_in_dim, inner)
        self.v_proj = nn.Linear(kv_in_dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, C) -> (B, heads, L, C/heads)
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, c = x.shape
        return x.transpose(1, 2).reshape(b, n, h * c)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        return self.out_proj(self._merge(F.scaled_dot_product_attention(q, k, v)))


class TwoWayBlock(nn.Module):
    """Tokens self-attend, attend to the image, go through an MLP; then the image attends to them."""

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, num_layers=2)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, tokens, image, token_pe, image_pe):
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)
        keys = image + image_pe
        tokens = self.norm2(tokens + self.cross_attn_token_to_image(tokens + token_pe, keys, image))
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.cross_attn_image_to_token(keys, tokens + token_pe, tokens))
        return tokens, image


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048):
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, num_heads, mlp_dim, i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor):
        """image, image_pe: (B, C, h, w); tokens: (B, N, C) -> (tokens (B, N, C), image (B, hw, C))."""
        image = image.flatten(2).transpose(1, 2)
        image_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, image = layer(queries, image, tokens, image_pe)
        out = self.final_attn_token_to_image(queries + tokens, image + image_pe, image)
        return self.norm_final_attn(queries + out), image


class RandomFourierPositions(nn.Module):
    """SAM's positional encoding of (x, y) in [0, 1] through a fixed random Gaussian projection."""

    def __init__(self, num_feats: int):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:  # (..., 2) -> (..., 2 * num_feats)
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix * (2 * math.pi)
        return torch.cat([proj.sin(), proj.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:  # -> (C, h, w) at pixel centres
        dev = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return self.encode(torch.stack([xx, yy], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    def __init__(self, dim: int, embedding_size: int, image_size: int, mask_in_chans: int = 16):
        super().__init__()
        self.dim = dim
        self.embedding_size = embedding_size
        self.image_size = image_size
        self.mask_input_size = 4 * embedding_size
        self.pe_layer = RandomFourierPositions(dim // 2)
        # negative, positive, box top-left, box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, dim)

    def dense_pe(self) -> torch.Tensor:  # (1, C, h, w)
        return self.pe_layer.grid(self.embedding_size, self.embedding_size)[None]

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """coords (B, N, 2) in model-input pixels, labels (B, N) -> (B, N + 1, C); a padding point is
        appended, as SAM2 always does (its boxes arrive as two labelled points)."""
        b = coords.shape[0]
        coords = torch.cat([coords + 0.5, coords.new_zeros(b, 1, 2)], dim=1)  # +0.5: pixel centres
        labels = torch.cat([labels, labels.new_full((b, 1), LABEL_PAD)], dim=1)
        emb = self.pe_layer.encode(coords / self.image_size)
        emb = torch.where((labels == LABEL_PAD)[..., None], torch.zeros_like(emb), emb)
        table = torch.cat([self.not_a_point_embed.weight] + [e.weight for e in self.point_embeddings])
        return emb + table[(labels + 1).long()]

    def forward(self, coords: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | None):
        """-> sparse (B, N + 1, C), dense (B, C, h, w)."""
        sparse = self.embed_points(coords, labels)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            size = self.embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(coords.shape[0], -1, size, size)
        return sparse, dense


class MaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, num_multimask_outputs: int = 3,
                 stability_delta: float = 0.05, stability_thresh: float = 0.98):
        super().__init__()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.transformer = TwoWayTransformer(depth=2, dim=dim, num_heads=8, mlp_dim=2048)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.obj_score_token = nn.Embedding(1, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        # projections of the stride-4 and stride-8 backbone maps, added while upscaling
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, 256, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(dim, dim, 1, 3)
        self.stability_delta = stability_delta
        self.stability_thresh = stability_thresh

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor,
                dense: torch.Tensor, high_res: tuple[torch.Tensor, torch.Tensor], multimask: bool):
        """image (B, C, h, w) (already memory-conditioned), high_res = (conv_s0(stride 4), conv_s1(stride 8)).

        Returns mask logits (B, M, 4h, 4w), IoU predictions (B, M), the output tokens that become
        object pointers (B, M, C) and object-score logits (B, 1); M = 3 with `multimask`, else 1.
        """
        b, c, h, w = image.shape
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], dim=1)
        hs, src = self.transformer(image + dense, image_pe.expand(b, -1, -1, -1), tokens)
        mask_tokens_out = hs[:, 2: 2 + self.num_mask_tokens]

        up1, ln1, act1, up2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        src = src.transpose(1, 2).reshape(b, c, h, w)
        upscaled = act1(ln1(up1(src) + feat_s1))
        upscaled = act2(up2(upscaled) + feat_s0)  # (B, C/8, 4h, 4w)
        hyper = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        masks = (hyper @ upscaled.flatten(2)).view(b, -1, 4 * h, 4 * w)
        ious = self.iou_prediction_head(hs[:, 1])
        obj_scores = self.pred_obj_score_head(hs[:, 0])

        if multimask:
            return masks[:, 1:], ious[:, 1:], mask_tokens_out[:, 1:], obj_scores
        masks, ious = self._single_or_most_stable(masks, ious)
        return masks, ious, mask_tokens_out[:, 0:1], obj_scores

    def _single_or_most_stable(self, masks: torch.Tensor, ious: torch.Tensor):
        """The single-mask output, unless its logits are unstable around 0; then the multimask output
        with the best predicted IoU (the official predictors' post-processing)."""
        single = masks[:, 0:1]
        flat = single.flatten(-2)
        inter = (flat > self.stability_delta).sum(-1).float()
        union = (flat > -self.stability_delta).sum(-1).float()
        stable = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)) >= self.stability_thresh
        best = ious[:, 1:].argmax(-1)
        rows = torch.arange(masks.shape[0], device=masks.device)
        best_masks = masks[:, 1:][rows, best][:, None]
        best_ious = ious[:, 1:][rows, best][:, None]
        masks_out = torch.where(stable[..., None, None], single, best_masks)
        ious_out = torch.where(stable, ious[:, 0:1], best_ious)
        return masks_out, ious_out
