"""The point track predictor: feature maps -> correlation pyramid -> update transformer, iterated.

Given per-frame feature maps of a window of T frames, one feature per track (sampled at its query
point) and a first guess of every track's position on every frame, each iteration
  1. samples a multi-level correlation pyramid around the current estimates (corr.py),
  2. encodes it with an MLP, embeds the flow (frame-to-frame and from the window start) and the
     absolute coordinates, and adds the track feature and the current visibility / confidence,
  3. runs the update transformer (time attention + virtual-track attention, update_former.py),
  4. moves the estimates, updates the per-frame track features and re-predicts visibility and
     confidence logits.
Coordinates are in pixels of the model's input images; frames where a track is anchored (its query
frame) stay fixed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import EfficientNetLite0, normalize_rgb
from .corr import correlation_pyramid, feature_pyramid, sample_features
from .update_former import UpdateFormer

BACKBONES = ("efficientnet_lite0", "small_cnn")
FEATURE_STRIDE = 4
# Lucas-Kanade's first guess is sub-pixel exact where it holds; the predictor's job is to catch
# where it does not (drift, occlusion, re-appearance). Corrections below this many pixels are
# within the predictor's own noise and are not applied.
MIN_CORRECTION_PX = 3.0


def gate_corrections(init: torch.Tensor, refined: torch.Tensor, min_correction: float,
                     accept: torch.Tensor | None = None) -> torch.Tensor:
    """(..., 2) first guesses and refined estimates -> refined where it moved at least
    min_correction pixels away from the guess (and `accept` (...) allows it), else the guess."""
    moved = (refined - init).norm(dim=-1) >= min_correction
    if accept is not None:
        moved = moved & accept
    return torch.where(moved[..., None], refined, init)


def query_similarity(level0: torch.Tensor, points: torch.Tensor, query_feats: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each track's query feature to the frame's feature at its point:
    level0 (T, h, w, C) channels-last, points (T, N, 2) image pixels, query_feats (N, C) -> (T, N)."""
    feats = sample_features(level0, points / FEATURE_STRIDE)
    return F.cosine_similarity(feats, query_feats[None].expand_as(feats), dim=-1)


@dataclass
class PredictorConfig:
    backbone: str = "efficientnet_lite0"
    corr_levels: int = 4
    corr_radius: int = 3
    hidden_size: int = 96
    depth: int = 2
    heads: int = 4
    num_virtual: int = 8
    max_window: int = 16

    @classmethod
    def from_dict(cls, values: dict) -> "PredictorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown point-tracker model options {sorted(unknown)}")
        return cls(**values)


class EfficientNetFeatures(nn.Module):
    """EfficientNet-Lite0's stride-4 (24 ch) and stride-8 (40 ch, upsampled) maps concatenated into
    one 64-channel stride-4 map. With ImageNet weights the backbone is frozen, so training can cache
    the maps and never back-propagates into them (the predictor learns how to compare them);
    without them (--no_pretrained) it trains from scratch."""

    channels = 24 + 40

    def __init__(self, pretrained: bool):
        super().__init__()
        self.frozen = pretrained
        self.backbone = EfficientNetLite0(pretrained=pretrained, out_strides=(4, 8))
        self.backbone.requires_grad_(not self.frozen)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.backbone.eval()  # batch norms keep their ImageNet statistics
        return self

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            feats = self.backbone(images)
        return feats[4], feats[8]

    @staticmethod
    def fuse(fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(coarse.float(), size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([fine.float(), coarse], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fuse(*self.raw(images))


class SmallCNNFeatures(nn.Module):
    """A small stride-4 CNN trained from scratch (no pretrained weights needed)."""

    channels = 64

    def __init__(self):
        super().__init__()

        def conv(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.ReLU(inplace=True))

        self.net = nn.Sequential(conv(3, 32, 2), conv(32, 32, 1), conv(32, 64, 2), conv(64, 64, 1),
                                 nn.Conv2d(64, self.channels, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _fourier(values: torch.Tensor, base: float, num_freqs: int) -> torch.Tensor:
    """values (..., 2) -> (..., 2 + 4 * num_freqs): scaled values and their sin/cos at octaves."""
    freqs = torch.pi * base * 2.0 ** torch.arange(num_freqs, device=values.device, dtype=values.dtype)
    angles = (values[..., None] * freqs).flatten(-2)
    return torch.cat([values * base, angles.sin(), angles.cos()], -1)


class PointTrackPredictor(nn.Module):
    def __init__(self, config: PredictorConfig = PredictorConfig(), pretrained: bool = True):
        super().__init__()
        if config.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {config.backbone!r}; expected one of {BACKBONES}")
        self.config = config
        self.features = (EfficientNetFeatures(pretrained) if config.backbone == "efficientnet_lite0"
                         else SmallCNNFeatures())
        C, D = self.features.channels, config.hidden_size
        # corr = <W track_feat, fmap>: a learned metric on the (frozen) features, applied on the
        # track side so that nothing back-propagates through the sampled feature maps
        self.corr_proj = nn.Linear(C, C)
        nn.init.eye_(self.corr_proj.weight)
        nn.init.zeros_(self.corr_proj.bias)
        corr_dim = config.corr_levels * (2 * config.corr_radius + 1) ** 2
        self.corr_mlp = nn.Sequential(nn.Linear(corr_dim, 128), nn.GELU(), nn.Linear(128, 64))
        embed_dim = 3 * (2 + 4 * 4)  # frame-to-frame flow, flow from the window start, position
        self.input_proj = nn.Linear(64 + C + embed_dim + 2, D)
        self.time_embed = nn.Parameter(torch.zeros(config.max_window, D))
        self.updateformer = UpdateFormer(D, config.depth, config.heads, config.num_virtual)
        self.delta_head = nn.Linear(D, 2 + C)
        nn.init.zeros_(self.delta_head.weight)
        nn.init.zeros_(self.delta_head.bias)
        self.feat_norm = nn.LayerNorm(C)
        self.ffeat_updater = nn.Sequential(nn.Linear(C, C), nn.GELU())
        self.vis_head = nn.Linear(D, 1)
        self.conf_head = nn.Linear(D, 1)

    # -- features ------------------------------------------------------------------------------
    def encode_frames(self, frames_uint8: torch.Tensor) -> torch.Tensor:
        """(M, H, W, 3) uint8 RGB -> (M, C, ceil(H/4), ceil(W/4)) feature maps."""
        return self.features(normalize_rgb(frames_uint8.permute(0, 3, 1, 2)))

    def pyramid(self, fmaps: torch.Tensor) -> list[torch.Tensor]:
        """(M, C, h, w) feature maps -> the channels-last correlation pyramid [(M, h_l, w_l, C)]."""
        return feature_pyramid(fmaps, self.config.corr_levels)

    @staticmethod
    def query_features(level0: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """level0 (M, h, w, C) channels-last maps, points (M, N, 2) in image pixels -> (M, N, C)."""
        return sample_features(level0, points / FEATURE_STRIDE)

    # -- refinement ------------------------------------------------------------------------------
    def forward(self, pyramid: list[torch.Tensor], query_feats: torch.Tensor, init_coords: torch.Tensor,
                anchors: torch.Tensor, valid: torch.Tensor | None = None, iters: int = 4):
        """pyramid: channels-last levels (B * T, h_l, w_l, C) from `pyramid()`; query_feats (B, N, C);
        init_coords (B, T, N, 2) image pixels; anchors (B, T, N) bool: frames whose coordinates are
        given (query frames) and stay fixed; valid (B, T, N) bool: frames each track exists on
        (default all).

        Returns (coord_preds: list over iterations of (B, T, N, 2) pixels, vis_logits list of (B, T, N),
        conf_logits list of (B, T, N), track_feats (B, T, N, C) of the last iteration)."""
        B, T, N, _ = init_coords.shape
        h, w, C = pyramid[0].shape[1:]
        if T > self.config.max_window:
            raise ValueError(f"window of {T} frames is longer than the model's max_window {self.config.max_window}")
        if valid is None:
            valid = torch.ones(B, T, N, dtype=torch.bool, device=init_coords.device)
        anchor_coords = init_coords / FEATURE_STRIDE
        coords = anchor_coords.clone()
        track_feats = query_feats[:, None].expand(B, T, N, C).contiguous()
        vis = torch.zeros(B, T, N, device=init_coords.device)
        conf = torch.zeros_like(vis)
        size = torch.tensor([w, h], dtype=coords.dtype, device=coords.device)
        valid_tracks = valid.permute(0, 2, 1)  # (B, N, T)
        coord_preds, vis_preds, conf_preds = [], [], []
        for _ in range(iters):
            coords = coords.detach()
            corr = correlation_pyramid(pyramid, coords.reshape(B * T, N, 2),
                                       self.corr_proj(track_feats).reshape(B * T, N, C),
                                       self.config.corr_radius).reshape(B, T, N, -1)
            step = torch.cat([torch.zeros_like(coords[:, :1]), coords[:, 1:] - coords[:, :-1]], 1)
            embeds = torch.cat([
                self.corr_mlp(corr), track_feats,
                _fourier(step, 1 / 16, 4), _fourier(coords - coords[:, :1], 1 / 32, 4),
                _fourier(coords / size, 1.0, 4),
                torch.sigmoid(vis.detach())[..., None], torch.sigmoid(conf.detach())[..., None]], -1)
            tokens = self.input_proj(embeds) + self.time_embed[:T, None, :]
            out = self.updateformer(tokens.permute(0, 2, 1, 3), valid_tracks).permute(0, 2, 1, 3)  # (B, T, N, D)
            delta = self.delta_head(out)
            coords = torch.where(anchors[..., None], anchor_coords, coords + delta[..., :2])
            track_feats = track_feats + self.ffeat_updater(self.feat_norm(delta[..., 2:]))
            vis = self.vis_head(out)[..., 0]
            conf = self.conf_head(out)[..., 0]
            coord_preds.append(coords * FEATURE_STRIDE)
            vis_preds.append(vis)
            conf_preds.append(conf)
        return coord_preds, vis_preds, conf_preds, track_feats
