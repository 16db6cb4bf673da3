"""STARK-ST style dynamic templates for Siamese trackers.

The first-frame template is kept for good (it is the user's ground truth); every `interval`
frames, when the tracker is confident, a template cut from the current frame is added to a small
FIFO of updated templates, so the tracker follows appearance change without drifting to whatever
it tracked last when unsure. Responses of the two kinds are blended.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TemplateUpdate:
    interval: int = 10  # frames between candidate updates (STARK-ST: its update intervals)
    threshold: float = 0.6  # confidence needed to take a new template (STARK-ST: 0.5 on its score)
    max_updated: int = 2  # updated templates kept besides the first one (oldest leaves first)
    first_weight: float = 0.6  # share of the first template's response in the blend

    def __post_init__(self):
        if self.interval < 1:
            raise ValueError(f"template update interval must be >= 1 frame, got {self.interval}")
        if not 0.0 <= self.first_weight <= 1.0:
            raise ValueError(f"first_weight must lie in [0, 1], got {self.first_weight}")


@dataclass
class TemplateBank:
    """Kernels (1, C, h, w) of one target: the first and the updated ones."""

    first: torch.Tensor
    updated: list[torch.Tensor] = field(default_factory=list)
    frames_since_update: int = 0

    def kernels(self) -> torch.Tensor:
        """(K, C, h, w): the first template, then the updated ones."""
        return torch.cat([self.first] + self.updated, dim=0)

    def blend(self, responses: torch.Tensor, policy: TemplateUpdate | None) -> torch.Tensor:
        """responses (S, K, H, W) from kernels() -> (S, H, W)."""
        if responses.shape[1] == 1 or policy is None:
            return responses[:, 0]
        rest = responses[:, 1:].mean(dim=1)
        return policy.first_weight * responses[:, 0] + (1.0 - policy.first_weight) * rest

    def wants_update(self, policy: TemplateUpdate | None, confidence: float) -> bool:
        """Count a frame; True when a template should be cut from it."""
        if policy is None or policy.max_updated == 0:
            return False
        self.frames_since_update += 1
        return self.frames_since_update >= policy.interval and confidence > policy.threshold

    def add(self, kernel: torch.Tensor, policy: TemplateUpdate) -> None:
        self.updated.append(kernel)
        del self.updated[:-policy.max_updated]
        self.frames_since_update = 0
