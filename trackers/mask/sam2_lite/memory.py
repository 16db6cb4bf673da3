"""Memory encoder and memory bank.

The memory encoder turns (frame features, predicted mask) into a memory: the keys of the grid cells
around the object (its box grown by a margin, so nearby background is remembered too) and the
object's soft mask on those cells as the value. The bank holds, per object, the
conditioning memories (every user prompt: never evicted) and the N most recent tracked ones, so its
size, and the readout's cost, stay constant however long the video.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .image_encoder import STRIDE, EncodedFrame


@dataclass
class Memory:
    frame_idx: int
    keys: torch.Tensor  # (C, M) float32 unit keys of the remembered cells
    values: torch.Tensor  # (M,) float32 object probability of each cell
    conditioning: bool  # a user prompt: never evicted

    @property
    def fg_cells(self) -> float:
        return float(self.values.sum())


def prob_to_grid(prob: np.ndarray, grid_shape: tuple[int, int]) -> np.ndarray:
    """(h, w) probability at internal pixels -> (gh, gw) mean probability of each grid cell."""
    gh, gw = grid_shape
    padded = np.zeros((gh * STRIDE, gw * STRIDE), np.float32)
    padded[:prob.shape[0], :prob.shape[1]] = prob
    return cv2.resize(padded, (gw, gh), interpolation=cv2.INTER_AREA)


def grid_box(prob_grid: np.ndarray, margin: float, min_margin: int) -> tuple[int, int, int, int] | None:
    """Cells (r1, c1, r2, c2) (exclusive ends) around the object grown by `margin` x its size."""
    rows = np.flatnonzero(prob_grid.max(axis=1) > 0.5)
    cols = np.flatnonzero(prob_grid.max(axis=0) > 0.5)
    if rows.size == 0:
        return None
    gh, gw = prob_grid.shape
    grow_r = max(min_margin, int(np.ceil(margin * (rows[-1] - rows[0] + 1))))
    grow_c = max(min_margin, int(np.ceil(margin * (cols[-1] - cols[0] + 1))))
    return (max(0, rows[0] - grow_r), max(0, cols[0] - grow_c),
            min(gh, rows[-1] + 1 + grow_r), min(gw, cols[-1] + 1 + grow_c))


class MemoryEncoder:
    """`context_margin`: how much background around the object (x its size) a memory keeps.
    `recent_pool`: tracked (non-prompt) memories average pool x pool cells into one, which keeps
    the bank small; prompts stay at full grid resolution since they are the reference."""

    def __init__(self, context_margin: float = 0.3, min_context_cells: int = 3, recent_pool: int = 2):
        self.context_margin = context_margin
        self.min_context_cells = min_context_cells
        self.recent_pool = recent_pool

    def __call__(self, frame_idx: int, features: EncodedFrame, prob: np.ndarray,
                 conditioning: bool) -> Memory:
        """`prob` (h, w) float32: the object's probability at internal pixels (empty: hidden)."""
        prob_grid = prob_to_grid(prob, features.grid_shape)
        region = grid_box(prob_grid, self.context_margin, self.min_context_cells)
        pool = 1 if conditioning else self.recent_pool
        if region is None:  # hidden: remember a coarse sample of pure background
            region, pool = (0, 0, *features.grid_shape), 4
        r1, c1, r2, c2 = region
        keys = features.keys[:, r1:r2, c1:c2]
        values = torch.from_numpy(np.ascontiguousarray(prob_grid[r1:r2, c1:c2]))[None]
        if pool > 1:
            keys = F.normalize(F.avg_pool2d(keys, pool, ceil_mode=True), dim=0)
            values = F.avg_pool2d(values, pool, ceil_mode=True)
        return Memory(frame_idx, keys.reshape(keys.shape[0], -1).contiguous(), values.reshape(-1).float(),
                      conditioning)


class MemoryBank:
    """One object's memories: conditioning frames plus the `num_recent` latest tracked frames."""

    def __init__(self, num_recent: int):
        self.conditioning: dict[int, Memory] = {}
        self.recent: deque[Memory] = deque(maxlen=num_recent)

    def add(self, memory: Memory) -> None:
        if memory.conditioning:
            self.conditioning[memory.frame_idx] = memory
        elif memory.frame_idx not in self.conditioning:
            self.recent.append(memory)

    def memories(self) -> list[Memory]:
        return list(self.conditioning.values()) + list(self.recent)

    def reference_fg_cells(self) -> float:
        """How many grid cells the object covers on its conditioning frames (where it is shown)."""
        sizes = [m.fg_cells for m in self.conditioning.values() if m.fg_cells > 0]
        return float(np.mean(sizes)) if sizes else 0.0
