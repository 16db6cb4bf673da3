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
from ...device import cpu_autocast
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
def predict(model: PropagationNet, feats: dict[int, torch.Tensor], banks: list[ObjectBank],
            prev_probs: list[torch.Tensor | None], keys: torch.Tensor | None = None,
            decoder_dtype: torch.dtype = torch.float32):
    """Objects on one frame, decoded as one batch -> (probabilities (B, H, W) at internal pixels, presence
    probabilities (B,), the frame's keys). feats: the frame's normalised maps (propagation_net.normalize_maps).

    prev_probs: each object's (H, W) probability on the previous frame walked, None where it was hidden.
    decoder_dtype: what the decoder computes in on a CPU (device.cpu_inference_dtype), and what the memory
    readout's values are read in; its affinities and their softmax over the bank stay in float32, since that is
    where low precision would tell."""
    keys = model.keys(feats) if keys is None else keys
    size4 = feats[4].shape[-2:]
    prev4 = torch.cat([torch.zeros(1, 1, *size4) if prev is None else F.adaptive_avg_pool2d(prev[None, None], size4)
                       for prev in prev_probs])
    readout = model.read_objects(keys, [bank.entries() for bank in banks], decoder_dtype)
    with cpu_autocast(decoder_dtype):
        logits4, presence = model.decode(feats, readout, prev4)
    logits4, presence = logits4.float(), presence.float()
    size = (size4[0] * 4, size4[1] * 4)
    probs = torch.sigmoid(F.interpolate(logits4, size=size, mode="bilinear", align_corners=False))[:, 0]
    return probs, torch.sigmoid(presence), keys


@torch.no_grad()
def memorise(model: PropagationNet, feats: dict[int, torch.Tensor], probs: list[torch.Tensor],
             keys: torch.Tensor | None = None) -> list[MemoryEntry]:
    """Memories of the objects shown by `probs` ((H, W) each) on this frame, one per object (one batch)."""
    keys = model.keys(feats) if keys is None else keys
    prob4 = F.adaptive_avg_pool2d(torch.stack(probs)[:, None].float(), feats[4].shape[-2:])
    batch = model.encode_memory(feats, prob4, keys)
    # the frame's keys are shared (objects remembered on the same frames share their reads: read_objects);
    # each object's values are its own (a bank outlives the batch)
    return [MemoryEntry(keys.flatten(2), batch.values[i:i + 1].clone(), batch.mask[i:i + 1].clone())
            for i in range(len(probs))]


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
            bank.add(0, memorise(model, feats, [first_prob])[0], conditioning=True)
            prev = first_prob
            yield first_prob
            continue
        probs, presences, keys = predict(model, feats, [bank], [prev])
        prob = probs[0]
        if presences[0] < 0.5 or not bool((prob > 0.5).any()):
            prev = None
            yield torch.zeros_like(prob)
            continue
        bank.add(t, memorise(model, feats, [prob], keys)[0], conditioning=False)
        prev = prob
        yield prob
