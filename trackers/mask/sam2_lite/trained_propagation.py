"""Running the trained propagation network: weights file, memory bank of tensors, one walk step.

The weights file (`resources/weights/sam2_lite_propagation.pt`) is {"config", "state_dict", "meta"},
loaded with weights_only=True and strictly. `track_walk` is the single-object loop that the training
validation runs; the tracker runs the same `PropagationStep` per object with its own prompts.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F

from ...checkpoints import load_network, save_network
from .propagation_net import MemoryEntry, PropagationNet, PropagationNetConfig, normalize_maps

WEIGHTS_VERSION = 2  # 1 was the training-free readout; 2 the first trained propagation network
WEIGHTS_FILE = "sam2_lite_propagation.pt"


def default_weights() -> Path:
    from trackstudio import resources

    return resources.path("weights", WEIGHTS_FILE)


def export_weights(model: PropagationNet, path: Path, meta: dict) -> None:
    save_network(model, path, WEIGHTS_VERSION, meta)


def load_weights(path: str | Path | None = None) -> tuple[PropagationNet, dict]:
    """(model in eval mode, meta) from a file written by export_weights."""
    return load_network(path if path is not None else default_weights(), PropagationNet, PropagationNetConfig,
                        "a sam2-lite propagation network")


class ObjectBank:
    """One object's memories: every prompt (never evicted) and the `num_recent` latest predictions."""

    def __init__(self, num_recent: int):
        self.conditioning: dict[int, MemoryEntry] = {}
        self.recent: deque[MemoryEntry] = deque(maxlen=max(num_recent, 1))
        self.keep_recent = num_recent > 0

    def add(self, frame_idx: int, entry: MemoryEntry, conditioning: bool) -> None:
        if conditioning:
            self.conditioning[frame_idx] = entry
        elif self.keep_recent:
            self.recent.append(entry)

    def entries(self) -> list[MemoryEntry]:
        return list(self.conditioning.values()) + list(self.recent)


@torch.no_grad()
def predict(model: PropagationNet, feats: dict[int, torch.Tensor], bank: ObjectBank,
            prev_prob: torch.Tensor | None, keys: torch.Tensor | None = None):
    """-> (probability (H, W) at internal pixels, presence probability, the frame's keys).
    feats: the frame's normalised maps (propagation_net.normalize_maps).

    prev_prob (H, W): the object on the previous frame walked, None when it was hidden."""
    size4 = feats[4].shape[-2:]
    prev4 = (torch.zeros(1, 1, *size4) if prev_prob is None
             else F.adaptive_avg_pool2d(prev_prob[None, None], size4))
    logits4, presence, keys = model(feats, bank.entries(), prev4, keys)
    size = (size4[0] * 4, size4[1] * 4)
    prob = torch.sigmoid(F.interpolate(logits4, size=size, mode="bilinear", align_corners=False))[0, 0]
    return prob, float(torch.sigmoid(presence)[0]), keys


@torch.no_grad()
def memorise(model: PropagationNet, feats: dict[int, torch.Tensor], prob: torch.Tensor,
             keys: torch.Tensor | None = None) -> MemoryEntry:
    """A memory of the object shown by `prob` (H, W) on this frame."""
    prob4 = F.adaptive_avg_pool2d(prob[None, None].float(), feats[4].shape[-2:])
    return model.encode_memory(feats, prob4, keys)


@torch.no_grad()
def track_walk(model: PropagationNet, frames_feats: Iterable[dict[int, torch.Tensor]], first_prob: torch.Tensor,
               num_recent: int) -> Iterator[torch.Tensor]:
    """One object from a mask on the first frame of `frames_feats` (raw backbone maps): yields (H, W) probabilities,
    the first being `first_prob` itself; a frame where the object is judged absent yields zeros."""
    bank = ObjectBank(num_recent)
    prev: torch.Tensor | None = None
    for t, raw in enumerate(frames_feats):
        feats = normalize_maps(raw)
        if t == 0:
            bank.add(0, memorise(model, feats, first_prob), conditioning=True)
            prev = first_prob
            yield first_prob
            continue
        prob, presence, keys = predict(model, feats, bank, prev)
        if presence < 0.5 or not bool((prob > 0.5).any()):
            prev = None
            yield torch.zeros_like(prob)
            continue
        bank.add(t, memorise(model, feats, prob, keys), conditioning=False)
        prev = prob
        yield prob
