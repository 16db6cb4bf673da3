"""CoTracker3 (online and offline share one network; they differ in window length and in how a
video is walked). Coordinates inside the model are in feature-map units (model pixels / stride).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicEncoder, EfficientUpdateFormer, Mlp

MODEL_RESOLUTION = (384, 512)  # (H, W) every frame is resized to
STRIDE = 4
CORR_LEVELS = 4
CORR_RADIUS = 3
LATENT_DIM = 128
INPUT_DIM = 1110  # 2 (vis, conf) + 4 levels x 256 (correlation embeddings) + 84 (motion encoding)
ONLINE_WINDOW = 16
OFFLINE_WINDOW = 60


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """(M,) -> (1, M, dim): [sin | cos] with frequencies 1 / 10000^(2i/dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.double().reshape(-1, 1) * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)[None].float()


def motion_encoding(x: torch.Tensor, num_octaves: int = 10) -> torch.Tensor:
    """x (..., D) -> (..., D + 2 * D * num_octaves): x, then sin and cos of x * 2^k."""
    scales = 2.0 ** torch.arange(num_octaves, dtype=x.dtype, device=x.device)
    scaled = (x[..., None, :] * scales[:, None]).flatten(-2)
    return torch.cat([x, torch.sin(scaled), torch.cos(scaled)], dim=-1)


def patch_offsets(radius: int, device) -> torch.Tensor:
    """(2r+1, 2r+1, 2) (dx, dy) offsets; dx varies along the first axis, as the official
    support grids do (their correlation MLP weights depend on this order)."""
    d = torch.linspace(-radius, radius, 2 * radius + 1, device=device)
    dx, dy = torch.meshgrid(d, d, indexing="ij")
    return torch.stack([dx, dy], dim=-1)


def sample_points(fmap: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (pixel centres at integers, border padding).
    fmap (B, C, H, W), xy (B, P, Q, 2) -> (B, C, P, Q)."""
    h, w = fmap.shape[-2:]
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=xy.device, dtype=xy.dtype)
    return F.grid_sample(fmap, xy * scale - 1, mode="bilinear", align_corners=True, padding_mode="border")


@dataclass
class TrackEstimate:
    coords: torch.Tensor  # (B, S, N, 2) feature-map units
    vis: torch.Tensor  # (B, S, N) logits
    conf: torch.Tensor  # (B, S, N) logits


class CoTracker3(nn.Module):
    def __init__(self, window_len: int):
        super().__init__()
        self.window_len = window_len
        self.fnet = BasicEncoder(LATENT_DIM, STRIDE)
        self.updateformer = EfficientUpdateFormer(INPUT_DIM, hidden_size=384, num_heads=8, depth=3)
        patch = (2 * CORR_RADIUS + 1) ** 2
        self.corr_mlp = Mlp(patch * patch, 384, 256)
        self.register_buffer("time_emb", sincos_1d(INPUT_DIM, torch.arange(window_len)))

    # -- features ------------------------------------------------------------------------------
    def feature_pyramid(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """frames (T, 3, H, W) float in [0, 255] at MODEL_RESOLUTION -> CORR_LEVELS unit-norm maps
        (T, C, H/4/2^l, W/4/2^l)."""
        fmaps = self.fnet(frames / 127.5 - 1.0)
        fmaps = fmaps / fmaps.square().sum(1, keepdim=True).clamp(min=1e-12).sqrt()
        pyramid = [fmaps]
        for _ in range(CORR_LEVELS - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2, stride=2))
        return pyramid

    def track_patches(self, pyramid: list[torch.Tensor], frame_idx: torch.Tensor, xy: torch.Tensor
                      ) -> list[torch.Tensor]:
        """Feature patches (N, r2, r2, C) around query points xy (N, 2) (feature units, level 0) on
        their frames (N,) (indices into the pyramid's time axis), per level."""
        offsets = patch_offsets(CORR_RADIUS, xy.device)
        patches = []
        for level, fmaps in enumerate(pyramid):
            centres = xy / 2 ** level
            grid = centres[:, None, None, :] + offsets[None]  # (N, r2, r2, 2)
            sampled = sample_points(fmaps[frame_idx], grid)  # (N, C, r2, r2)
            patches.append(sampled.permute(0, 2, 3, 1))
        return patches

    # -- one window ----------------------------------------------------------------------------
    def refine(self, pyramid: list[torch.Tensor], patches: list[torch.Tensor], init: TrackEstimate,
               iters: int = 6) -> TrackEstimate:
        """Iteratively update tracks over the S frames of `pyramid` (B = 1).

        pyramid levels (S, C, h, w); patches per level (N, r2, r2, C) (zeros for tracks that have
        not started); init coords (1, S, N, 2), vis / conf logits (1, S, N)."""
        coords, vis, conf = init.coords, init.vis, init.conf
        s, n = coords.shape[1], coords.shape[2]
        r2 = 2 * CORR_RADIUS + 1
        offsets = patch_offsets(CORR_RADIUS, coords.device)
        scale = torch.tensor([MODEL_RESOLUTION[1], MODEL_RESOLUTION[0]], device=coords.device) / STRIDE
        time_emb = self.time_embedding(s)
        for _ in range(iters):
            embeddings = []
            for level, (fmaps, patch) in enumerate(zip(pyramid, patches)):
                grid = (coords[0] / 2 ** level)[:, :, None, None, :] + offsets  # (S, N, r2, r2, 2)
                around = sample_points(fmaps, grid.reshape(s, n, r2 * r2, 2))  # (S, C, N, r2*r2)
                around = around.view(s, -1, n, r2, r2).permute(0, 2, 3, 4, 1)  # (S, N, r2, r2, C)
                volume = torch.einsum("snhwc,nijc->snhwij", around, patch)
                embeddings.append(self.corr_mlp(volume.reshape(s * n, r2 ** 4)))
            corr = torch.cat(embeddings, dim=-1).view(1, s, n, -1)
            forward = F.pad(coords[:, :-1] - coords[:, 1:], (0, 0, 0, 0, 0, 1)) / scale
            backward = F.pad(coords[:, 1:] - coords[:, :-1], (0, 0, 0, 0, 1, 0)) / scale
            motion = motion_encoding(torch.cat([forward, backward], dim=-1))
            x = torch.cat([vis[..., None], conf[..., None], corr, motion], dim=-1)  # (1, S, N, 1110)
            x = x.permute(0, 2, 1, 3) + time_emb  # (1, N, S, 1110)
            delta = self.updateformer(x).permute(0, 2, 1, 3)  # (1, S, N, 4)
            coords = coords + delta[..., :2]
            vis = vis + delta[..., 2]
            conf = conf + delta[..., 3]
        return TrackEstimate(coords, vis, conf)

    def time_embedding(self, length: int) -> torch.Tensor:
        """(1, length, 1110): the checkpoint's embedding, linearly interpolated (half-pixel centres)
        to other window lengths, as the official `interpolate_time_embed`."""
        if length == self.time_emb.shape[1]:
            return self.time_emb
        emb = F.interpolate(self.time_emb.float().permute(0, 2, 1), size=length, mode="linear")
        return emb.permute(0, 2, 1)
