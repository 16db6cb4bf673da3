"""Per-size hyper-parameters of the official SAM2.1 checkpoints (sam2/configs/sam2.1/*.yaml).

Everything but the Hiera trunk is the same in all four sizes; the model-wide constants below are the
values those configs (and the official video-predictor build) set.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HieraSpec:
    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_att_blocks: tuple[int, ...]
    window_pos_embed_bkg_spatial_size: tuple[int, int]
    window_spec: tuple[int, ...]


# name -> trunk; b+ uses the Hiera class defaults, the others override some of them.
HIERA_SPECS: dict[str, HieraSpec] = {
    "tiny": HieraSpec(96, 1, (1, 2, 7, 2), (5, 7, 9), (7, 7), (8, 4, 14, 7)),
    "small": HieraSpec(96, 1, (1, 2, 11, 2), (7, 10, 13), (7, 7), (8, 4, 14, 7)),
    "base_plus": HieraSpec(112, 2, (2, 3, 16, 3), (12, 16, 20), (14, 14), (8, 4, 14, 7)),
    "large": HieraSpec(144, 2, (2, 6, 36, 4), (23, 33, 43), (7, 7), (8, 4, 16, 8)),
}

D_MODEL = 256  # FPN width = SAM prompt/decoder width = memory-attention width
MEM_DIM = 64  # memory encoder output channels
NUM_MASKMEM = 7  # 1 conditioning slot + 6 most recent frames
BACKBONE_STRIDE = 16
MAX_OBJ_PTRS = 16
SIGMOID_SCALE_FOR_MEM_ENC = 20.0
SIGMOID_BIAS_FOR_MEM_ENC = -10.0
NO_OBJ_SCORE = -1024.0  # mask logit placed everywhere when the object is judged absent
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
