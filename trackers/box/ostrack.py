"""The OSTrack tracker (vitb_256_mae_ce_32x4_ep300 inference).

Per frame: crop a search region search_factor x sqrt(w h) around the last box (256 px), run the
one-stream network with the first-frame template (template_factor, 128 px), multiply the centre
score map by a Hann window, take its peak cell, add the offset there and read the size there.
The score peak (before the window) is the confidence; under `lost_threshold` the target is
reported not visible and the last box is kept.

No weights ship (the official release is a Google Drive folder): pass OSTrack_ep0300.pth.tar as
the checkpoint, or import it into the cache. `random_weights` builds an untrained network, for
speed measurements and tests only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..base import SequentialTracker, TrackerConfig
from ..checkpoints import OFFICIAL_WEIGHTS, CheckpointError, load_state_dict_file, resolve_checkpoint
from ..registry import register
from ..types import ObjectResult, Prompt
from ..types import prompt_box
from .crops import box_to_cxcywh, crop_square, crop_to_frame, cxcywh_to_box, paste_map
from .ostrack_model import OSTrackGeometry, OSTrackNet

OSTRACK_WEIGHTS = OFFICIAL_WEIGHTS["ostrack_vitb_256_mae_ce_32x4_ep300"]
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
ATTENTION_DOWNSCALE = 4


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


@dataclass
class _Target:
    center: np.ndarray
    size: np.ndarray
    template: torch.Tensor  # (1, 3, 128, 128) normalised


@register("ostrack", kind="box", priority=-20, weights=(OSTRACK_WEIGHTS,), experimental=True,
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
        grid = geometry.search_grid
        self.window = torch.from_numpy(np.outer(np.hanning(grid + 2)[1:-1], np.hanning(grid + 2)[1:-1])).float()
        # what the last step saw, per object: the maps behind the attention overlay
        self.last_maps: dict[int, dict[str, np.ndarray]] = {}

    def reset(self) -> None:
        super().reset()
        self._targets: dict[int, _Target] = {}
        self._boxes: dict[int, np.ndarray] = {}

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        return ObjectResult(box=prompt_box(prompt, frame_idx, self.name), visible=prompt.visible)

    def _patch(self, frame: np.ndarray, center: np.ndarray, size: np.ndarray, factor: float,
               out_size: int) -> tuple[torch.Tensor, float]:
        side = float(np.ceil(np.sqrt(size.prod()) * factor))
        crop = crop_square(frame, center, side, out_size, border=(0, 0, 0))  # OSTrack pads with zeros
        tensor = torch.from_numpy((crop.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD)
        return tensor.permute(2, 0, 1)[None].to(self.device), side

    def _anchor(self, frame_idx, frame, prompts):
        results = {}
        geometry = self.net.geometry
        for obj_id, prompt in prompts.items():
            box = prompt_box(prompt, frame_idx, self.name)
            self._boxes[obj_id] = box
            if prompt.visible:
                center, size = box_to_cxcywh(box)
                template, _ = self._patch(frame, center, size, self.config.template_factor, geometry.template_size)
                self._targets[obj_id] = _Target(center, size, template)
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
        crop_center = target.center.copy()
        search, side = self._patch(frame, target.center, target.size, self.config.search_factor,
                                   geometry.search_size)
        out = self.net(target.template, search)
        score = out["score_map"][0, 0].cpu()  # (G, G)
        confidence = float(score.max())
        windowed = score * self.window if self.config.hann_window else score
        grid = geometry.search_grid
        cell_y, cell_x = divmod(int(torch.argmax(windowed)), grid)
        offset = out["offset_map"][0, :, cell_y, cell_x].cpu().numpy()
        size_norm = out["size_map"][0, :, cell_y, cell_x].cpu().numpy()
        centre_in_crop = (np.array([cell_x, cell_y]) + offset) / grid * geometry.search_size
        visible = confidence >= self.config.lost_threshold
        if visible:
            height, width = frame.shape[:2]
            center = crop_to_frame(centre_in_crop - 0.5, crop_center, side, geometry.search_size)
            target.center = np.clip(center, [0.0, 0.0], [width - 1.0, height - 1.0])
            target.size = np.clip(size_norm * side, 1.0, [width, height])
            self._boxes[obj_id] = cxcywh_to_box(target.center, target.size)
        attention_map = out["attention"][0].cpu().numpy()
        eliminated_at = out["eliminated_at"][0].cpu().numpy()
        self.last_maps[obj_id] = {"attention": attention_map, "eliminated_at": eliminated_at,
                                  "score": score.numpy()}
        attention = None
        if self.config.return_attention:
            height, width = frame.shape[:2]
            attention = paste_map(attention_map, crop_center, (side, side), (height, width),
                                  (max(height // ATTENTION_DOWNSCALE, 1), max(width // ATTENTION_DOWNSCALE, 1)))
        return ObjectResult(box=self._boxes[obj_id].copy(), visible=bool(visible), score=confidence,
                            attention=attention)
