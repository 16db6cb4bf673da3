"""The OSTrack tracker (vitb_256_mae_ce_32x4_ep300 inference).

As the official tracker (lib/test/tracker/ostrack.py), per frame: crop a search region of
search_factor x sqrt(w h) whole pixels around the last box (zero padded, resized to 256 px), run
the one-stream network with the first-frame template (template_factor, 128 px), multiply the
centre score map by a Hann window, take its peak cell, add the offset there and read the size
there; map the box back around the last box's centre and clip it into the frame with a 10-pixel
margin (`clip_box`); the clipped box is the next state. The score peak (before the window) is the
confidence; under `lost_threshold` (off by default, as in the official tracker) the target is
reported not visible and the last box is kept.

No weights ship (the official release is a Google Drive folder): pass OSTrack_ep0300.pth.tar as
the checkpoint, or import it into the cache. `random_weights` builds an untrained network, for
speed measurements and tests only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..base import SequentialTracker, TrackerConfig
from ..checkpoints import OFFICIAL_WEIGHTS, CheckpointError, load_state_dict_file, resolve_checkpoint
from ..registry import register
from ..types import ObjectResult, Prompt
from ..types import prompt_box
from .crops import crop_whole_pixels, paste_map
from .ostrack_model import OSTrackGeometry, OSTrackNet

OSTRACK_WEIGHTS = OFFICIAL_WEIGHTS["ostrack_vitb_256_mae_ce_32x4_ep300"]
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
ATTENTION_DOWNSCALE = 4
CLIP_MARGIN = 10  # the official tracker keeps each box at least this many pixels inside the frame


@dataclass
class OSTrackConfig(TrackerConfig):
    template_factor: float = 2.0
    search_factor: float = 4.0
    ce_layers: tuple[int, ...] = (3, 6, 9)
    ce_keep_ratio: float = 0.7
    hann_window: bool = True
    lost_threshold: float = 0.0  # score-map peak under which the target is reported not visible
    random_weights: bool = False  # untrained network: for speed benchmarks and tests only

    def __post_init__(self):
        self.ce_layers = tuple(int(i) for i in self.ce_layers)
        if not 0.0 < self.ce_keep_ratio <= 1.0:
            raise ValueError(f"ce_keep_ratio must lie in (0, 1], got {self.ce_keep_ratio}")
        if any(not 0 <= i < 12 for i in self.ce_layers):
            raise ValueError(f"ce_layers must be block indices 0..11, got {self.ce_layers}")


def load_ostrack_checkpoint(net: OSTrackNet, path) -> None:
    """Load the official checkpoint (its `net` entry, or a bare state dict) strictly."""
    state = load_state_dict_file(path)
    state = state.get("net", state)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit OSTrack ViT-B/16 (vitb_256_mae_ce_32x4_ep300 layout): "
                              f"{str(exc).splitlines()[0]}") from exc


def hann_window(size: int) -> torch.Tensor:
    """(size, size) float32 cosine window, the official `hann2d(..., centered=True)`."""
    hann = 0.5 * (1 - torch.cos((2 * math.pi / (size + 1)) * torch.arange(1, size + 1).float()))
    return hann[:, None] * hann[None, :]


def clip_box(box_xywh: list[float], height: int, width: int, margin: float = 0) -> list[float]:
    """The official `clip_box` (lib/utils/box_ops.py): corners clamped into the frame, at least
    `margin` pixels of the box inside it and a size of at least `margin`."""
    x1, y1, w, h = box_xywh
    x2, y2 = x1 + w, y1 + h
    x1, x2 = min(max(0, x1), width - margin), min(max(margin, x2), width)
    y1, y2 = min(max(0, y1), height - margin), min(max(margin, y2), height)
    return [x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)]


@dataclass
class _Target:
    state: list[float]  # [x, y, w, h], the official tracker's state
    template: torch.Tensor  # (1, 3, 128, 128) normalised


@register("ostrack", kind="box", priority=-20, weights=(OSTRACK_WEIGHTS,),
          description="OSTrack ViT-B/16 with candidate elimination; needs OSTrack_ep0300.pth.tar (~0.5 s/frame on CPU)")
class OSTrackTracker(SequentialTracker):
    kind = "box"
    config_cls = OSTrackConfig
    name = "ostrack"

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        geometry = OSTrackGeometry(ce_layers=self.config.ce_layers, ce_keep_ratio=self.config.ce_keep_ratio)
        self.net = OSTrackNet(geometry)
        if not self.config.random_weights:
            load_ostrack_checkpoint(self.net, resolve_checkpoint(checkpoint or OSTRACK_WEIGHTS, download=False))
        self.net.to(self.device).eval()
        self.window = hann_window(geometry.search_grid)
        # what the last step saw, per object: the maps behind the attention overlay
        self.last_maps: dict[int, dict[str, np.ndarray]] = {}

    def reset(self) -> None:
        super().reset()
        self._targets: dict[int, _Target] = {}
        self._boxes: dict[int, np.ndarray] = {}

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        return ObjectResult(box=prompt_box(prompt, frame_idx, self.name), visible=prompt.visible)

    def _patch(self, frame: np.ndarray, state: list[float], factor: float, out_size: int
               ) -> tuple[torch.Tensor, int, tuple[int, int]]:
        crop, side, origin = crop_whole_pixels(frame, state, factor, out_size)
        # the official Preprocessor: float pixels / 255, then ImageNet mean / std
        tensor = torch.from_numpy(crop).float().permute(2, 0, 1)[None]
        tensor = (tensor / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return tensor.to(self.device), side, origin

    def _anchor(self, frame_idx, frame, prompts):
        results = {}
        geometry = self.net.geometry
        for obj_id, prompt in prompts.items():
            box = prompt_box(prompt, frame_idx, self.name)
            self._boxes[obj_id] = box
            if prompt.visible:
                state = [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]
                template, _, _ = self._patch(frame, state, self.config.template_factor, geometry.template_size)
                self._targets[obj_id] = _Target(state, template)
            else:
                self._targets.pop(obj_id, None)
            results[obj_id] = ObjectResult(box=box.copy(), visible=prompt.visible)
        return results

    def _step(self, frame_idx, frame, obj_ids):
        results = {}
        for obj_id in obj_ids:
            target = self._targets.get(obj_id)
            if target is None:
                results[obj_id] = ObjectResult(box=self._boxes[obj_id].copy(), visible=False, score=0.0)
            else:
                results[obj_id] = self._track(frame, target, obj_id)
        return results

    @torch.no_grad()
    def _track(self, frame: np.ndarray, target: _Target, obj_id: int) -> ObjectResult:
        geometry = self.net.geometry
        height, width = frame.shape[:2]
        search, side, origin = self._patch(frame, target.state, self.config.search_factor, geometry.search_size)
        resize_factor = geometry.search_size / side
        out = self.net(target.template, search)
        score = out["score_map"][0, 0].cpu()  # (G, G)
        confidence = float(score.max())
        windowed = score * self.window if self.config.hann_window else score
        grid = geometry.search_grid
        cell_y, cell_x = divmod(int(torch.argmax(windowed)), grid)
        offset = out["offset_map"][0, :, cell_y, cell_x].cpu()
        size = out["size_map"][0, :, cell_y, cell_x].cpu()
        # the official arithmetic, float32 up to here: (cx, cy, w, h) in crop units, in frame pixels
        cells = torch.tensor([cell_x, cell_y], dtype=torch.float32)
        pred = torch.cat([(cells + offset) / grid, size]) * geometry.search_size / resize_factor
        visible = confidence >= self.config.lost_threshold
        if visible:
            target.state = clip_box(self._map_box_back(pred.tolist(), target.state, resize_factor),
                                    height, width, margin=CLIP_MARGIN)
            x, y, w, h = target.state
            self._boxes[obj_id] = np.array([x, y, x + w, y + h], np.float32)
        attention_map = out["attention"][0].cpu().numpy()
        eliminated_at = out["eliminated_at"][0].cpu().numpy()
        self.last_maps[obj_id] = {"attention": attention_map, "eliminated_at": eliminated_at,
                                  "score": score.numpy()}
        attention = None
        if self.config.return_attention:
            crop_center = np.array(origin, np.float64) + side / 2.0 - 0.5  # pixel-index coordinates
            attention = paste_map(attention_map, crop_center, (side, side), (height, width),
                                  (max(height // ATTENTION_DOWNSCALE, 1), max(width // ATTENTION_DOWNSCALE, 1)))
        return ObjectResult(box=self._boxes[obj_id].copy(), visible=bool(visible), score=confidence,
                            attention=attention)

    def _map_box_back(self, pred_box: list[float], state: list[float], resize_factor: float) -> list[float]:
        """Crop-relative (cx, cy, w, h) -> frame [x, y, w, h], as the official `map_box_back`: around
        the last box's centre (not the whole-pixel crop origin)."""
        cx_prev, cy_prev = state[0] + 0.5 * state[2], state[1] + 0.5 * state[3]
        cx, cy, w, h = pred_box
        half_side = 0.5 * self.net.geometry.search_size / resize_factor
        cx_real, cy_real = cx + (cx_prev - half_side), cy + (cy_prev - half_side)
        return [cx_real - 0.5 * w, cy_real - 0.5 * h, w, h]
