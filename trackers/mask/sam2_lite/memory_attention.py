"""Memory attention as a training-free readout (STCN / XMem style top-k affinity).

Every query cell of the current frame compares its key with every remembered cell (cosine
similarity), keeps its `top_k` best matches, softmaxes them with a temperature and reads the object
probability out of their values. Locality comes from the memories themselves: each holds only the
cells around its object, and the query is the region around the object's last position (the whole
frame while the object is lost, when the conditioning memories are what finds it again).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .memory import Memory


@dataclass
class Readout:
    prob: torch.Tensor  # (Nq,) object probability of each query cell
    similarity: torch.Tensor  # (Nq,) mean similarity of each query cell's top-k matches


class MemoryAttention:
    def __init__(self, top_k: int = 20, temperature: float = 0.05):
        self.top_k = top_k
        self.temperature = temperature

    @torch.no_grad()
    def __call__(self, query_keys: torch.Tensor, memories: list[Memory]) -> Readout:
        """query_keys (C, Nq) of the query cells."""
        keys = torch.cat([m.keys for m in memories], 1)  # (C, M)
        values = torch.cat([m.values for m in memories])  # (M,)
        similarity = query_keys.T @ keys  # (Nq, M)
        top, idx = similarity.topk(min(self.top_k, similarity.shape[1]), dim=1)
        weights = torch.softmax(top / self.temperature, dim=1)  # (Nq, k)
        prob = (weights * values[idx]).sum(1)
        return Readout(prob=prob.clamp_(0, 1), similarity=top.clamp(min=-1).mean(1))
