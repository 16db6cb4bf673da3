"""Object pointer: one appearance vector per object, the mean key of its cells where the user showed it.

It decides, together with the readout, whether the object is present: a readout blob whose cells look
nothing like the object (low cosine to its pointer) is background that merely resembles a memory cell.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .memory import Memory


class ObjectPointer:
    def __init__(self, memories: list[Memory]):
        shown = [m for m in memories if m.fg_cells > 0]
        if shown:
            total = sum((m.keys * m.values[None]).sum(1) for m in shown)
            self.vector = F.normalize(total, dim=0)  # (C,)
        else:
            self.vector = None  # the object is hidden in every prompt: nothing to compare with

    def score(self, keys: torch.Tensor, weights: torch.Tensor) -> float:
        """Cosine between the pointer and the `weights`-weighted mean of `keys` (C, N)."""
        if self.vector is None or float(weights.sum()) <= 0:
            return 0.0
        mean = F.normalize((keys * weights[None]).sum(1), dim=0)
        return float(mean @ self.vector)
