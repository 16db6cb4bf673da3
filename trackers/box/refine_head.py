"""A learned box refinement + presence head on frozen EfficientNet-Lite0 maps (strides 8 / 16 / 32),
built from STMixer's adaptive sampling and mixing (stmixer_head.py).

Inputs, per object: the backbone maps of its search crop on the current frame and on the last few
frames (each past crop's maps resampled into the current crop's coordinates, `align_to_crop`), a
query made from the target's template (its box on the prompt frame, read at a 7 x 7 grid), and a
first box (the Siamese search's). Each of `iters` iterations predicts sampling points and levels
from the query around the current box, reads them from every level and frame (4-D sampling), mixes
them into the query (AdaptiveMixing) and moves the box; the last query gives a presence logit (is
the target in this box at all?) and a predicted IoU.

Coordinates are continuous pixel coordinates of the crop (x = 0 is its left edge).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CheckpointError
from .stmixer_head import AdaptiveMixing, box_to_xyzr, make_sample_points, sample_4d, xyzr_to_box

TEMPLATE_GRID = 7  # template cells read per side


@dataclass
class RefineHeadConfig:
    strides: tuple[int, ...] = (8, 16, 32)
    in_channels: tuple[int, ...] = (40, 112, 320)
    dim: int = 64  # channels of the projected maps
    query_dim: int = 128
    n_heads: int = 4
    n_points: int = 8  # sampling points per head
    num_frames: int = 3  # current + past frames read together
    iters: int = 3
    mapping_stride: float = 5.0  # a box of 2^(5 + i) px reads level i: a 64 px box, stride 16
    tau: float = 2.0


def align_to_crop(maps: list[torch.Tensor], past: torch.Tensor, current: torch.Tensor,
                  sizes: list[tuple[int, int]] | None = None) -> list[torch.Tensor]:
    """Resample maps of past crops into current crops' coordinates.

    maps: per level (B, C, H, W) of crops with geometry `past`; past / current: (B, 3) crop centre x, y
    and side in frame pixels; sizes: per level (H, W) of the current crops' maps (default: the
    past maps' sizes) -> the maps as the current crops would see them (zeros outside).
    """
    ratio = current[:, 2] / past[:, 2]
    theta = torch.zeros(len(past), 2, 3, dtype=maps[0].dtype, device=maps[0].device)
    theta[:, 0, 0] = theta[:, 1, 1] = ratio
    theta[:, :, 2] = 2.0 * (current[:, :2] - past[:, :2]) / past[:, 2:3]
    out = []
    for level, fmap in enumerate(maps):
        out_hw = sizes[level] if sizes is not None else fmap.shape[-2:]
        grid = F.affine_grid(theta, [fmap.shape[0], fmap.shape[1], *out_hw], align_corners=False)
        out.append(F.grid_sample(fmap, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return out


class BoxRefineHead(nn.Module):
    def __init__(self, config: RefineHeadConfig = RefineHeadConfig()):
        super().__init__()
        self.config = config
        c = config
        self.level_proj = nn.ModuleList(nn.Sequential(nn.Conv2d(ch, c.dim, 1), nn.GroupNorm(8, c.dim))
                                        for ch in c.in_channels)
        cells = TEMPLATE_GRID * TEMPLATE_GRID
        self.template_proj = nn.Sequential(nn.Linear(c.dim * cells, c.query_dim), nn.LayerNorm(c.query_dim),
                                           nn.ReLU(inplace=True))
        groups = c.n_heads * c.n_points
        self.offset = nn.Linear(c.query_dim, groups * 3)
        self.mixing = AdaptiveMixing(c.dim, c.num_frames * c.n_points, c.n_heads, query_dim=c.query_dim)
        self.mix_norm = nn.LayerNorm(c.query_dim)
        self.ffn = nn.Sequential(nn.Linear(c.query_dim, 2 * c.query_dim), nn.ReLU(inplace=True),
                                 nn.Linear(2 * c.query_dim, c.query_dim))
        self.ffn_norm = nn.LayerNorm(c.query_dim)
        self.box_delta = nn.Linear(c.query_dim, 4)
        # presence and IoU from the query and the template-vs-box similarity of the current frame
        self.score = nn.Sequential(nn.Linear(c.query_dim + 2, c.query_dim), nn.ReLU(inplace=True), nn.Linear(c.query_dim, 2))
        self._init_offsets()
        nn.init.zeros_(self.box_delta.weight)
        nn.init.zeros_(self.box_delta.bias)

    def _init_offsets(self) -> None:
        """Points start spread over the box (a ring per head), the level at the box's own."""
        c = self.config
        nn.init.zeros_(self.offset.weight)
        angles = torch.arange(c.n_heads * c.n_points, dtype=torch.float32) * (2.3999632)  # golden angle
        radius = 0.5 * torch.sqrt((torch.arange(c.n_heads * c.n_points, dtype=torch.float32) + 0.5)
                                  / (c.n_heads * c.n_points))
        bias = torch.stack([radius * torch.cos(angles), radius * torch.sin(angles),
                            torch.zeros_like(angles)], dim=-1)
        with torch.no_grad():
            self.offset.bias.copy_(bias.flatten())

    # -- pieces ------------------------------------------------------------------------------------
    def project(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        """Backbone maps per level (B, C_l, H, W) -> (B, dim, H, W)."""
        return [proj(fmap) for proj, fmap in zip(self.level_proj, maps)]

    def read_box(self, values: list[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        """values per level (B, dim, T, H, W); boxes (B, 4) -> (B, T, 49, dim): a 7 x 7 grid inside
        each box at its own level."""
        c = self.config
        steps = (torch.arange(TEMPLATE_GRID, dtype=boxes.dtype, device=boxes.device) + 0.5) / TEMPLATE_GRID - 0.5
        gy, gx = torch.meshgrid(steps, steps, indexing="ij")
        grid = torch.stack([gx.flatten(), gy.flatten(), torch.zeros_like(gx.flatten())], -1)  # (49, 3)
        offset = grid.flatten().expand(len(boxes), 1, -1)
        points = make_sample_points(offset, TEMPLATE_GRID ** 2, box_to_xyzr(boxes)[:, None])
        out = sample_4d(points, values, list(c.strides), n_points=TEMPLATE_GRID ** 2, mapping_stride=c.mapping_stride,
                        tau=c.tau)  # (B, dim, 1, T, 49, 1, 1)
        return out[:, :, 0, :, :, 0, 0].permute(0, 2, 3, 1)

    def template(self, maps: list[torch.Tensor], boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Template crop maps per level (B, C_l, H, W) and the target's box in it (B, 4)
        -> query (B, query_dim) and cell descriptors (B, 49, dim)."""
        values = [v[:, :, None] for v in self.project(maps)]
        cells = self.read_box(values, boxes)[:, 0]  # (B, 49, dim)
        return self.template_proj(cells.flatten(1)), cells

    def forward(self, query: torch.Tensor, template_cells: torch.Tensor, maps: list[torch.Tensor],
                boxes: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """query (B, query_dim), template_cells (B, 49, dim), maps per level (B, T, C_l, H, W) with the
        current frame first, boxes (B, 4) first boxes -> (boxes after each iteration (B, 4),
        presence logit (B,), predicted IoU (B,))."""
        c = self.config
        batch, frames = maps[0].shape[:2]
        values = [v.unflatten(0, (batch, frames)).transpose(1, 2)  # (B, dim, T, H, W)
                  for v in self.project([m.flatten(0, 1) for m in maps])]
        if frames < c.num_frames:  # too few past frames yet: repeat the oldest
            values = [torch.cat([v] + [v[:, :, -1:]] * (c.num_frames - frames), dim=2) for v in values]
        xyzr = box_to_xyzr(boxes)[:, None]  # (B, 1, 4)
        q = query[:, None]
        stages = []
        for _ in range(c.iters):
            xyzr = xyzr.detach()
            points = make_sample_points(self.offset(q), c.n_heads * c.n_points, xyzr)
            sampled = sample_4d(points, values, list(c.strides), n_points=c.n_points,
                                mapping_stride=c.mapping_stride, tau=c.tau)  # (B, dim/h, h, T, P, 1, 1)
            x = sampled[..., 0].permute(0, 5, 2, 3, 4, 1).flatten(3, 4)  # (B, 1, h, T P, dim/h)
            q = self.mix_norm(self.mixing(x, q))
            q = self.ffn_norm(q + self.ffn(q))
            delta = self.box_delta(q)
            wh = 2.0 ** xyzr[..., 2:3] * 2.0 ** torch.cat([xyzr[..., 3:4] * -0.5, xyzr[..., 3:4] * 0.5], -1)
            xyzr = torch.cat([xyzr[..., :2] + delta[..., :2] * wh, xyzr[..., 2:] + delta[..., 2:]], dim=-1)
            stages.append(xyzr_to_box(xyzr[:, 0]))
        cells = self.read_box(values, stages[-1])[:, 0]  # current frame, (B, 49, dim)
        cosine = F.cosine_similarity(cells, template_cells, dim=-1)  # (B, 49)
        similarity = torch.stack([cosine.mean(1), cosine.max(1).values], dim=-1)
        scores = self.score(torch.cat([q[:, 0], similarity], dim=-1))
        return stages, scores[:, 0], torch.sigmoid(scores[:, 1])


def save_head(model: BoxRefineHead, path: str | Path, meta: dict) -> None:
    """The file the tracker loads: {"config", "state_dict", "meta"} (weights_only-safe), written atomically;
    weights in float16 (half the size in the repository), float32 again when loaded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    state = {key: value.half() if value.is_floating_point() else value for key, value in model.state_dict().items()}
    torch.save({"config": dataclasses.asdict(model.config), "state_dict": state, "meta": meta}, tmp)
    tmp.replace(path)


def load_head(path: str | Path, device: torch.device | str = "cpu") -> BoxRefineHead:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        config = RefineHeadConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["config"].items()})
        model = BoxRefineHead(config)
        model.load_state_dict({key: value.float() if value.is_floating_point() else value
                               for key, value in payload["state_dict"].items()}, strict=True)
    except (OSError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a box refinement head file: {exc}") from exc
    return model.to(device).eval()
