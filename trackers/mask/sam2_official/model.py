"""The SAM2.1 network: every parameter of an official checkpoint, with the per-frame operations the
video and image predictors are made of. Module and parameter names follow the official `{"model":
state_dict}` files so they load strictly; the code is the project's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import config as C
from .hiera import ImageEncoder
from .layers import MLP, sine_1d
from .memory import MemoryAttention, MemoryEncoder
from .sam_heads import PromptEncoder, MaskDecoder, LABEL_PAD


@dataclass
class FrameFeatures:
    vision: torch.Tensor  # (B, C, h, w) stride-16 features
    vision_pos: torch.Tensor  # (B, C, h, w) their sine position encoding
    high_res: tuple[torch.Tensor, torch.Tensor]  # decoder skips: (B, C/8, 4h, 4w), (B, C/4, 2h, 2w)


@dataclass
class SamOutput:
    low_res_logits: torch.Tensor  # (B, 1, 4h, 4w) the chosen mask's logits
    high_res_logits: torch.Tensor  # (B, 1, S, S) the same at model-input size
    iou: torch.Tensor  # (B,) predicted IoU of the chosen mask
    obj_ptr: torch.Tensor  # (B, C) object pointer
    object_score_logits: torch.Tensor  # (B, 1) > 0: the object is present


@dataclass
class Memory:
    """One frame's entry in an object's memory bank."""
    features: torch.Tensor  # (B, mem_dim, h, w)
    pos: torch.Tensor  # (B, mem_dim, h, w)
    obj_ptr: torch.Tensor  # (B, C)
    fg_prob: torch.Tensor  # (B, h*w) mask probability on the memory grid (for the attention overlay)


class Sam2Model(nn.Module):
    def __init__(self, hiera: C.HieraSpec, image_size: int = 1024):
        super().__init__()
        if image_size % (C.BACKBONE_STRIDE * 2):
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        dim, mem_dim = C.D_MODEL, C.MEM_DIM
        self.image_size = image_size
        self.embedding_size = image_size // C.BACKBONE_STRIDE
        self.image_encoder = ImageEncoder(hiera, dim)
        # turns a mask prompt into SAM logit scale at stride 4, to derive an object pointer from it
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(dim, mem_dim, num_layers=4)
        self.memory_encoder = MemoryEncoder(dim, mem_dim)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(C.NUM_MASKMEM, 1, 1, mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, dim))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, dim))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, dim))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, mem_dim))
        self.sam_prompt_encoder = PromptEncoder(dim, self.embedding_size, image_size)
        self.sam_mask_decoder = MaskDecoder(dim)
        self.obj_ptr_proj = MLP(dim, dim, dim, 3)
        self.obj_ptr_tpos_proj = nn.Linear(dim, mem_dim)
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr,
                  self.no_obj_embed_spatial):
            nn.init.trunc_normal_(p, std=0.02)

    # -- image ---------------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> FrameFeatures:
        """images (B, 3, S, S) normalised -> features (decoder skip convs already applied)."""
        features, positions = self.image_encoder(images)
        decoder = self.sam_mask_decoder
        high_res = (decoder.conv_s0(features[0]), decoder.conv_s1(features[1]))
        return FrameFeatures(features[2], positions[2], high_res)

    # -- SAM heads -----------------------------------------------------------------------------
    def sam_heads(self, pix_feat: torch.Tensor, high_res, coords: torch.Tensor | None = None,
                  labels: torch.Tensor | None = None, mask_logits: torch.Tensor | None = None,
                  multimask: bool = False) -> SamOutput:
        """pix_feat (B, C, h, w); coords (B, N, 2) in model-input pixels with labels (B, N);
        mask_logits (B, 1, *, *) a dense prompt (resized to the prompt encoder's input)."""
        b = pix_feat.shape[0]
        if coords is None:  # no clicks: a single padding point
            coords = pix_feat.new_zeros(b, 1, 2)
            labels = torch.full((b, 1), LABEL_PAD, dtype=torch.int32, device=pix_feat.device)
        if mask_logits is not None:
            size = self.sam_prompt_encoder.mask_input_size
            if mask_logits.shape[-2:] != (size, size):
                mask_logits = F.interpolate(mask_logits.float(), size=(size, size), mode="bilinear",
                                            align_corners=False, antialias=True)
        sparse, dense = self.sam_prompt_encoder(coords, labels, mask_logits)
        masks, ious, tokens, obj_scores = self.sam_mask_decoder(
            pix_feat, self.sam_prompt_encoder.dense_pe(), sparse, dense, high_res, multimask)
        present = obj_scores > 0  # (B, 1)
        masks = torch.where(present[:, :, None, None], masks, torch.full_like(masks, C.NO_OBJ_SCORE)).float()
        best = ious.argmax(-1)
        rows = torch.arange(b, device=masks.device)
        low_res = masks[rows, best][:, None]
        token = tokens[rows, best] if tokens.shape[1] > 1 else tokens[:, 0]
        return SamOutput(
            low_res_logits=low_res,
            high_res_logits=self.upsample_to_input(low_res),
            iou=ious[rows, best].float(),
            obj_ptr=self._pointer(self.obj_ptr_proj(token), present.float()),
            object_score_logits=obj_scores.float(),
        )

    def mask_as_output(self, features: FrameFeatures, mask: torch.Tensor) -> SamOutput:
        """A user mask (B, 1, S, S) in {0, 1} becomes the output as is (logits -10 / +10); the object
        pointer comes from the decoder run on the mask alone (no memory)."""
        mask = mask.float()
        high_res = mask * 20.0 - 10.0
        low_res = F.interpolate(high_res, size=(high_res.shape[-2] // 4, high_res.shape[-1] // 4),
                                mode="bilinear", align_corners=False, antialias=True)
        decoded = self.sam_heads(features.vision, features.high_res,
                                 mask_logits=self.mask_downsample(mask))
        present = mask.flatten(1).gt(0).any(1, keepdim=True).float()  # (B, 1)
        return SamOutput(low_res, high_res, torch.ones_like(present[:, 0]),
                         self._pointer(decoded.obj_ptr, present), present * 20.0 - 10.0)

    def _pointer(self, obj_ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Absent objects get the learnt no-object pointer instead."""
        return present * obj_ptr + (1 - present) * self.no_obj_ptr

    def upsample_to_input(self, low_res: torch.Tensor) -> torch.Tensor:
        return F.interpolate(low_res.float(), size=(self.image_size, self.image_size), mode="bilinear",
                             align_corners=False)

    # -- memory --------------------------------------------------------------------------------
    def without_memory(self, features: FrameFeatures) -> torch.Tensor:
        """Features of a frame segmented from its prompts alone (the no-memory embedding added)."""
        return features.vision + self.no_mem_embed.view(1, -1, 1, 1)

    def condition_on_memory(self, features: FrameFeatures, memories: list[tuple[int, Memory]],
                            pointers: list[tuple[int, torch.Tensor]], max_ptr_distance: int,
                            with_attention: bool = False):
        """Cross-attend the frame to its object's memory bank.

        memories: (t_pos, memory) with t_pos 0 for conditioning frames and 1..6 for recent frames
        (6 = the previous frame); pointers: (signed frame distance, obj_ptr (B, C)).
        Returns (conditioned features (B, C, h, w), attention readout (B, h, w) or None): the readout
        is the share of each position's attention that went to the object's own memory pixels.
        """
        b, c, h, w = features.vision.shape
        mem_tokens, mem_pos, fg = [], [], []
        for t_pos, mem in memories:
            mem_tokens.append(mem.features.flatten(2).transpose(1, 2))
            tpos = self.maskmem_tpos_enc[C.NUM_MASKMEM - t_pos - 1].view(1, 1, -1)
            mem_pos.append(mem.pos.flatten(2).transpose(1, 2) + tpos)
            fg.append(mem.fg_prob)
        num_ptr_tokens = 0
        if pointers:
            distances = torch.tensor([d for d, _ in pointers], device=features.vision.device)
            ptrs = torch.stack([p for _, p in pointers], dim=1)  # (B, P, C)
            tpos = self.obj_ptr_tpos_proj(sine_1d(distances / max(max_ptr_distance, 1), c))  # (P, mem)
            split = c // C.MEM_DIM  # each pointer becomes `split` memory tokens
            mem_tokens.append(ptrs.reshape(b, -1, C.MEM_DIM))
            mem_pos.append(tpos.repeat_interleave(split, dim=0)[None].expand(b, -1, -1))
            num_ptr_tokens = ptrs.shape[1] * split
            fg.append(ptrs.new_zeros(b, num_ptr_tokens))
        memory, memory_pos = torch.cat(mem_tokens, 1), torch.cat(mem_pos, 1)
        readout = torch.cat(fg, 1) if with_attention else None
        current = features.vision.flatten(2).transpose(1, 2)
        current_pos = features.vision_pos.flatten(2).transpose(1, 2)
        out, looked = self.memory_attention(current, current_pos, memory.to(current.dtype),
                                            memory_pos.to(current.dtype), num_ptr_tokens, readout)
        out = out.transpose(1, 2).reshape(b, c, h, w)
        return out, (looked.view(b, h, w) if looked is not None else None)

    def encode_memory(self, features: FrameFeatures, output: SamOutput, binarize: bool) -> Memory:
        """Memory of a frame from its raw features and its predicted (or given) mask."""
        logits = output.high_res_logits
        prob = (logits > 0).float() if binarize else torch.sigmoid(logits)
        scores = prob * C.SIGMOID_SCALE_FOR_MEM_ENC + C.SIGMOID_BIAS_FOR_MEM_ENC
        feats, pos = self.memory_encoder(features.vision, scores.to(features.vision.dtype))
        absent = (output.object_score_logits <= 0).float()  # (B, 1)
        feats = feats + absent[:, :, None, None] * self.no_obj_embed_spatial[:, :, None, None]
        h, w = feats.shape[-2:]
        fg_prob = F.adaptive_avg_pool2d(torch.sigmoid(logits), (h, w)).flatten(1)
        # stored in bfloat16 like the official video predictor: half the memory, same results
        return Memory(feats.to(torch.bfloat16), pos, output.obj_ptr, fg_prob)
