"""sam2-lite's trained click-to-mask network: clicks (+/-), a box and the previous answer -> mask logits.

It reads the same frozen EfficientNet-Lite0 maps as the propagation network (normalised,
{4: 24 ch, 8: 40 ch, 16: 112 ch}). The prompt is drawn on the stride-4 grid as six channels
(RITM's click maps plus SAM's box and previous-mask inputs): positive / negative click disks,
positive / negative proximity (exp(-distance / reach)), the box's inside, and the previous
prediction for this object on this frame (what the user is correcting). At stride 16 two more
channels say how much each cell looks like the cells under the positive / negative clicks
(cosine of the frame's own features), the appearance cue a click carries. Dilated residual blocks
at stride 16 see the whole object; the decoder climbs to stride 4 through stride-8/4 skips that
also see the prompt maps, so a boundary is placed by the image and the clicks together.

Training: trackers/mask/sam2_lite/click_train.py (simulated clicks, as in RITM / SAM).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...checkpoints import load_network, save_network
from .propagation_net import FEATURE_CHANNELS, ResBlock

CLICK_WEIGHTS_FILE = "sam2_lite_clicks.pt"
CLICK_WEIGHTS_VERSION = 1
PROMPT_CHANNELS = 6
DISK_RADIUS_CELLS = 2.0  # stride-4 cells: a click marks a disk of 8 internal pixels
REACH_CELLS = 12.0  # proximity decays over this many stride-4 cells (48 internal pixels)


@dataclass
class ClickNetConfig:
    hidden: int = 96  # channels at stride 16 (stride 8: half, stride 4: a third)


def prompt_maps(size4: tuple[int, int], positive: np.ndarray, negative: np.ndarray, box: np.ndarray | None,
                previous: torch.Tensor | None) -> torch.Tensor:
    """(1, 6, h4, w4) prompt channels. positive / negative (K, 2) [x, y] and box [x1, y1, x2, y2] in
    internal pixels; previous (h4, w4) probability or None."""
    h4, w4 = size4
    ys = torch.arange(h4, dtype=torch.float32)[:, None] + 0.5
    xs = torch.arange(w4, dtype=torch.float32)[None, :] + 0.5
    channels = []
    for points in (positive, negative):
        if len(points):
            cells = torch.as_tensor(np.asarray(points, np.float32) / 4.0)  # (K, 2)
            dist = torch.sqrt((xs[None] - cells[:, 0, None, None]) ** 2 + (ys[None] - cells[:, 1, None, None]) ** 2)
            nearest = dist.amin(0)
            channels += [(nearest <= DISK_RADIUS_CELLS).float(), torch.exp(-nearest / REACH_CELLS)]
        else:
            channels += [torch.zeros(h4, w4), torch.zeros(h4, w4)]
    inside = torch.zeros(h4, w4)
    if box is not None:
        x1, y1, x2, y2 = (np.asarray(box, np.float32) / 4.0).tolist()
        inside = ((xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)).float()
    channels.append(inside)
    channels.append(torch.zeros(h4, w4) if previous is None else previous.float())
    disks_pos, near_pos, disks_neg, near_neg, inside, prev = channels
    return torch.stack([disks_pos, disks_neg, near_pos, near_neg, inside, prev])[None]


class ClickNet(nn.Module):
    def __init__(self, config: ClickNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or ClickNetConfig()
        c4, c8, c16 = FEATURE_CHANNELS[4], FEATURE_CHANNELS[8], FEATURE_CHANNELS[16]
        h16, h8, h4 = cfg.hidden, cfg.hidden // 2, cfg.hidden // 3
        self.prompt_down = nn.Sequential(nn.Conv2d(PROMPT_CHANNELS, 16, 3, stride=2, padding=1), nn.ReLU(),
                                         nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.fuse16 = ResBlock(c16 + 32 + 2, h16)
        self.context16 = nn.Sequential(ResBlock(h16, h16, dilation=2), ResBlock(h16, h16, dilation=4),
                                       ResBlock(h16, h16))
        self.skip8 = nn.Conv2d(c8 + PROMPT_CHANNELS, h8, 1)
        self.up8 = ResBlock(h16 + h8, h8)
        self.skip4 = nn.Conv2d(c4 + PROMPT_CHANNELS, h4, 1)
        self.up4 = ResBlock(h8 + h4, h4)
        self.mask_head = nn.Conv2d(h4, 1, 3, padding=1)

    @staticmethod
    def click_likeness(feats16: torch.Tensor, prompts4: torch.Tensor) -> torch.Tensor:
        """(B, 2, h16, w16): each cell's cosine to the features under the positive / negative click disks
        (the best match over the disk cells, 0 without clicks of that sign)."""
        unit = F.normalize(feats16, dim=1).flatten(2)  # (B, C, N)
        batch, _, cells = unit.shape
        out = unit.new_zeros(batch, 2, cells)
        for channel in (0, 1):
            disks = F.adaptive_max_pool2d(prompts4[:, channel:channel + 1], feats16.shape[-2:]).flatten(1) > 0.5
            for item in range(batch):
                clicked = disks[item].nonzero()[:, 0]  # (K,) the cells under this sign's disks
                if len(clicked):
                    # (K, N): the clicked cells against every cell, not every cell against every cell (N x N
                    # took 25 ms of a 100 ms click at 864 px; this takes 2)
                    out[item, channel] = (unit[item, :, clicked].T @ unit[item]).amax(0)
        return out.reshape(batch, 2, *feats16.shape[-2:])

    def forward(self, feats: dict[int, torch.Tensor], prompts4: torch.Tensor) -> torch.Tensor:
        """Normalised maps {stride: (B, C, h, w)} and prompt channels (B, 6, h4, w4) -> (B, 1, h4, w4) logits."""
        size16, size8, size4 = feats[16].shape[-2:], feats[8].shape[-2:], feats[4].shape[-2:]
        down = self.prompt_down(prompts4)
        if down.shape[-2:] != size16:
            down = F.interpolate(down, size=size16, mode="bilinear", align_corners=False)
        likeness = self.click_likeness(feats[16], prompts4)
        x = self.context16(self.fuse16(torch.cat([feats[16], down, likeness], 1)))
        prompts8 = F.adaptive_avg_pool2d(prompts4, size8)
        x8 = F.interpolate(x, size=size8, mode="bilinear", align_corners=False)
        x8 = self.up8(torch.cat([x8, self.skip8(torch.cat([feats[8], prompts8], 1))], 1))
        x4 = F.interpolate(x8, size=size4, mode="bilinear", align_corners=False)
        x4 = self.up4(torch.cat([x4, self.skip4(torch.cat([feats[4], prompts4], 1))], 1))
        return self.mask_head(x4)


def default_click_weights() -> Path:
    from trackstudio import resources

    return resources.path("weights", CLICK_WEIGHTS_FILE)


def export_click_weights(model: ClickNet, path: Path, meta: dict) -> None:
    save_network(model, path, CLICK_WEIGHTS_VERSION, meta)


def load_click_weights(path: str | Path | None = None) -> ClickNet:
    """The click network in eval mode from a file written by export_click_weights."""
    return load_network(path if path is not None else default_click_weights(), ClickNet, ClickNetConfig,
                        "a sam2-lite click network")[0]
