"""The trained part of sam2-lite: memory encoder, memory attention, mask decoder and presence head.

It sits on frozen EfficientNet-Lite0 maps ({4: 24 ch, 8: 40 ch, 16: 112 ch} at strides 4/8/16):

- memory encoder: the object's probability at stride 4, downsampled by two strided convolutions,
  fused with the frame's stride-16 features into a value per cell (SAM2's mask downsampler + fuser);
  the key of each cell is a projection of the frame's stride-16 and (pooled) stride-8 features;
- memory attention: every stride-16 cell of the current frame reads the bank (prompt frames + recent
  frames) with a softmax over cosine similarities (learned temperature): it reads the values and,
  as one extra channel, the remembered mask itself (STCN's readout);
- mask decoder: readout + the frame's own features + the previous frame's mask, upsampled to stride 4
  through stride-8 and stride-4 skips (24 / 40 ch), one logit per stride-4 cell; the presence head
  (SAM2's object-score head) pools the stride-16 decoder features into one logit.

Maps are normalised per cell across channels (layer norm, `normalize_maps`, once per frame), so the
input statistics do not depend on the crop or frame size. Every method takes normalised maps.
Training: trackers/mask/sam2_lite/train.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_CHANNELS = {4: 24, 8: 40, 16: 112}


@dataclass
class PropagationNetConfig:
    key_dim: int = 64
    value_dim: int = 64
    hidden: int = 96  # decoder channels at stride 16 (stride 8: half, stride 4: a third)


@dataclass
class MemoryEntry:
    """One remembered frame of one object: keys, values and mask on its stride-16 cells."""

    keys: torch.Tensor  # (B, key_dim, N) unit length along key_dim
    values: torch.Tensor  # (B, value_dim, N)
    mask: torch.Tensor  # (B, 1, N) object probability of each cell


def norm_map(x: torch.Tensor) -> torch.Tensor:
    """Layer norm across channels at each cell of a (B, C, h, w) map (no learned affine)."""
    return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2]).permute(0, 3, 1, 2)


def normalize_maps(feats: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Raw backbone maps {stride: (B, C, h, w)} -> the network's input."""
    return {stride: norm_map(fmap).contiguous() for stride, fmap in feats.items()}


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=dilation, dilation=dilation)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.skip(x) + self.conv2(F.relu(self.conv1(F.relu(x)))))


class PropagationNet(nn.Module):
    def __init__(self, config: PropagationNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or PropagationNetConfig()
        c4, c8, c16 = FEATURE_CHANNELS[4], FEATURE_CHANNELS[8], FEATURE_CHANNELS[16]
        h16, h8, h4 = cfg.hidden, cfg.hidden // 2, cfg.hidden // 3
        self.key_proj = nn.Conv2d(c16 + c8, cfg.key_dim, 1)
        self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))  # inverse softmax temperature
        self.mask_down = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                                       nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        self.value_fuse = nn.Sequential(nn.Conv2d(c16 + 32, cfg.value_dim, 1), ResBlock(cfg.value_dim, cfg.value_dim))
        self.query_proj = nn.Conv2d(c16, cfg.value_dim, 1)
        # readout values + readout mask + the frame's own features + previous mask
        self.fuse16 = ResBlock(cfg.value_dim + 1 + cfg.value_dim + 1, h16)
        self.mix16 = ResBlock(h16, h16)
        self.skip8 = nn.Conv2d(c8 + 1, h8, 1)
        self.up8 = ResBlock(h16 + h8, h8)
        self.skip4 = nn.Conv2d(c4, h4, 1)
        self.up4 = ResBlock(h8 + h4, h4)
        self.mask_head = nn.Conv2d(h4, 1, 3, padding=1)
        self.presence_head = nn.Sequential(nn.Linear(2 * h16 + 1, 64), nn.ReLU(), nn.Linear(64, 1))

    # -- memory ------------------------------------------------------------------------------------
    def keys(self, feats: dict[int, torch.Tensor]) -> torch.Tensor:
        """(B, key_dim, h16, w16) unit keys of a frame's stride-16 cells."""
        fine = F.adaptive_avg_pool2d(feats[8], feats[16].shape[-2:])
        return F.normalize(self.key_proj(torch.cat([feats[16], fine], 1)), dim=1)

    def encode_memory(self, feats: dict[int, torch.Tensor], prob4: torch.Tensor,
                      keys: torch.Tensor | None = None) -> MemoryEntry:
        """prob4 (B, 1, h4, w4): the object's probability at stride 4 on this frame; feats (and keys) have
        batch B, or 1 for B objects on one frame."""
        keys = self.keys(feats) if keys is None else keys
        size16 = feats[16].shape[-2:]
        mask_feat = self.mask_down(prob4)
        if mask_feat.shape[-2:] != size16:
            mask_feat = F.interpolate(mask_feat, size=size16, mode="bilinear", align_corners=False)
        values = self.value_fuse(torch.cat([_per_object(feats[16], len(prob4)), mask_feat], 1))
        mask16 = F.adaptive_avg_pool2d(prob4, size16)
        return MemoryEntry(_per_object(keys, len(prob4)).flatten(2), values.flatten(2), mask16.flatten(2))

    def read(self, query_keys: torch.Tensor, memories: list[MemoryEntry]) -> torch.Tensor:
        """(B, value_dim + 1, h16, w16): values and mask read from the bank for every query cell."""
        B, _, h, w = query_keys.shape
        keys, values = _bank_tensors(memories)
        affinity = torch.einsum("bkq,bkn->bqn", query_keys.flatten(2), keys) * self.log_scale.exp()
        readout = torch.einsum("bqn,bvn->bvq", affinity.softmax(dim=2), values)
        return readout.reshape(B, -1, h, w)

    def read_objects(self, query_keys: torch.Tensor, banks: list[list[MemoryEntry]],
                     value_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """(B, value_dim + 1, h16, w16): `read` for B objects of one frame (query_keys (1, key_dim, h16, w16)).

        Objects whose banks hold the same frames (the same key tensors) share one affinity and its softmax:
        only their values differ. value_dtype: what the softmax weights and values are multiplied in (the
        affinity and its softmax stay in float32); bfloat16 where the decoder computes in it, which casts the
        readout to bfloat16 anyway."""
        _, _, h, w = query_keys.shape
        queries = query_keys.flatten(2)[0].T * self.log_scale.exp()  # (Q, key_dim), the temperature folded in
        groups: dict[tuple, list[int]] = {}
        for index, entries in enumerate(banks):
            groups.setdefault(tuple((m.keys.data_ptr(), tuple(m.keys.shape)) for m in entries), []).append(index)
        readouts: list[torch.Tensor | None] = [None] * len(banks)
        for members in groups.values():
            keys = torch.cat([m.keys[0] for m in banks[members[0]]], 1)  # (K, N): the group's shared keys
            values = torch.cat([_bank_values(banks[i]) for i in members]).flatten(0, 1)  # (G * (V + 1), N)
            read = _softmax_read(queries, keys, values.to(value_dtype).T)  # (Q, G * (V + 1))
            for i, readout in zip(members, read.T.reshape(len(members), -1, h, w)):
                readouts[i] = readout[None]
        return torch.cat(readouts)

    # -- decoding ----------------------------------------------------------------------------------
    def forward(self, feats: dict[int, torch.Tensor], memories: list[MemoryEntry],
                prev_prob4: torch.Tensor, query_keys: torch.Tensor | None = None):
        """-> (mask logits (B, 1, h4, w4), presence logit (B,), query keys for the memory encoder).

        prev_prob4 (B, 1, h4, w4): the object's probability on the previous frame walked (zeros when
        it was hidden)."""
        query_keys = self.keys(feats) if query_keys is None else query_keys
        return (*self.decode(feats, self.read(query_keys, memories), prev_prob4), query_keys)

    def decode(self, feats: dict[int, torch.Tensor], readout: torch.Tensor, prev_prob4: torch.Tensor):
        """readout (B, value_dim + 1, h16, w16) and prev_prob4 (B, 1, h4, w4) of B objects; feats with batch
        B, or 1 (B objects on one frame) -> (mask logits (B, 1, h4, w4), presence logit (B,))."""
        count = len(readout)
        size16, size8, size4 = feats[16].shape[-2:], feats[8].shape[-2:], feats[4].shape[-2:]
        prev16 = F.adaptive_avg_pool2d(prev_prob4, size16)
        prev8 = F.adaptive_avg_pool2d(prev_prob4, size8)
        x = self.fuse16(torch.cat([readout, _per_object(self.query_proj(feats[16]), count), prev16], 1))
        x = self.mix16(x)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3)), readout[:, -1:].amax((2, 3))], 1)
        presence = self.presence_head(pooled)[:, 0]
        x8 = F.interpolate(x, size=size8, mode="bilinear", align_corners=False)
        x8 = self.up8(torch.cat([x8, self.skip8(torch.cat([_per_object(feats[8], count), prev8], 1))], 1))
        x4 = F.interpolate(x8, size=size4, mode="bilinear", align_corners=False)
        x4 = self.up4(torch.cat([x4, _per_object(self.skip4(feats[4]), count)], 1))
        return self.mask_head(x4), presence


def _bank_tensors(memories: list[MemoryEntry]) -> tuple[torch.Tensor, torch.Tensor]:
    """A bank's entries side by side: keys (B, key_dim, N) and values with the mask (B, value_dim + 1, N)."""
    return torch.cat([m.keys for m in memories], 2), _bank_values(memories)


def _bank_values(memories: list[MemoryEntry]) -> torch.Tensor:
    """(B, value_dim + 1, N): a bank's values with the mask as one more channel, its entries side by side."""
    return torch.cat([torch.cat([m.values, m.mask], 1) for m in memories], 2)


READ_CHUNK = 256  # query cells read at once (below)


def _softmax_read(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """queries (Q, K) scaled, keys (K, N), values (N, C) -> (Q, C) float32: each query's softmax over its N
    affinities, the values' weighted mean. READ_CHUNK queries at a time, so that a (chunk, N) affinity stays in
    the CPU's cache where a whole (Q, N) one would go through memory three times (made, softmaxed, read): 1,590
    queries on 6,360 remembered cells (blackswan) 44.7 -> 36.8 ms; the same figures to float32 rounding."""
    out = queries.new_empty(len(queries), values.shape[1])
    for start in range(0, len(queries), READ_CHUNK):
        weights = (queries[start:start + READ_CHUNK] @ keys).softmax(dim=1)
        out[start:start + READ_CHUNK] = weights.to(values.dtype) @ values
    return out


def _per_object(x: torch.Tensor, count: int) -> torch.Tensor:
    """A map of one frame (batch 1) repeated for `count` objects (a view); a batch of `count` as it is."""
    return x.expand(count, *x.shape[1:]) if len(x) != count else x


def pool_to_stride4(prob: torch.Tensor, size4: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) probability at pixels -> (B, 1, h4, w4) mean per stride-4 cell."""
    return F.adaptive_avg_pool2d(prob, size4)
