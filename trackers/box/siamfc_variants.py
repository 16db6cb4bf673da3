"""The registered SiamFC trackers: the paper's AlexNet (user-supplied checkpoint) and the offline
EfficientNet-Lite0 variant."""
from __future__ import annotations

from dataclasses import dataclass

from ..checkpoints import OFFICIAL_WEIGHTS, resolve_checkpoint
from ..device import check_cpu_precision
from ..registry import register
from .siamfc import SiamFCBase, SiamFCConfig
from .siamfc_models import EffNetSiamFeatures, SiamFCAlexNet

SIAMFC_ALEXNET_WEIGHTS = OFFICIAL_WEIGHTS["siamfc_alexnet_e50"]  # user-supplied, no download address


@register("siamfc-alexnet", kind="box", priority=-10, weights=(SIAMFC_ALEXNET_WEIGHTS,), experimental=True,
          description="SiamFC (AlexNet) as in the paper; needs siamfc_alexnet_e50.pth as the checkpoint")
class SiamFCAlexNetTracker(SiamFCBase):
    name = "siamfc-alexnet"

    def _build_model(self):
        model = SiamFCAlexNet()
        model.load_checkpoint(resolve_checkpoint(self.checkpoint or SIAMFC_ALEXNET_WEIGHTS, download=False))
        return model


@dataclass
class SiamFCEffNetConfig(SiamFCConfig):
    # chosen on the shared DAVIS + synthetic clips (benchmarks/bench_box_quality.py, AUC); the dynamic
    # template (update_interval) measured neutral there (+-0.01 AUC per clip), so it stays off.
    # Session 4: the aligned prompt-frame box (0.640 -> 0.691), then foreground-weighted kernel
    # cells (-> 0.710; cell floor 0.2 / 0.5: 0.699 / 0.705; extent_weight 0.4: 0.696; single clips
    # such as bmx-trees swing by +-0.1 between such neighbours)
    extent_weight: float = 0.5
    lost_threshold: float = 0.35
    found_threshold: float = 0.4
    presence_threshold: float = 0.1
    stride16_weight: float = 1.0  # share of the semantic stride-16 features in the descriptor
    align_weight: float = 1.0
    foreground_kernel: bool = True
    shared_pass: bool = True  # one backbone pass per scale level, shared by the targets (shared_search.py)
    # session 7, on the box head's held-out training clips (bench_box_quality.py --heldout): AUC
    # 0.716 -> 0.743 (a look-alike beside the target took the re-detection on synth_00001; the
    # DAVIS clips unchanged); ratios 0.4 / 0.5 the same, 0.6 / 0.7 miss that look-alike; scans every
    # 5 / 10 / 30 frames the same, and every 10 cost ten objects 9 % of their speed
    distractor_scan_interval: int = 30
    distractor_ratio: float = 0.5
    # session 24: a target that left across the frame's edge is re-found only within half its size of that edge
    # (or by a sure match). On the selection clips the right re-finds of such targets lay within 0.41 of their
    # longer side from that edge, the wrong ones 0.35-2.07; sprites (20 clips): absent frames hidden 0.553 ->
    # 0.624 at the same AUC (0.6871); DAVIS train (30), procedural and larger sets unchanged (README)
    reentry_reach: float = 0.5
    backbone_precision: str = "float32"  # "bfloat16": see EfficientNetLite0.fuse_batchnorm

    def __post_init__(self):
        super().__post_init__()
        check_cpu_precision(self.backbone_precision)


@register("siamfc-effnet", kind="box", priority=10,
          description="SiamFC on ImageNet EfficientNet-Lite0 features (offline, no download): scale pyramid "
                      "and feature-matched extent, reports lost targets and re-finds them; optional "
                      "STARK-style template updates")
class SiamFCEffNetTracker(SiamFCBase):
    name = "siamfc-effnet"
    config_cls = SiamFCEffNetConfig

    def _build_model(self):
        if self.checkpoint is not None:
            raise ValueError("siamfc-effnet uses the EfficientNet-Lite0 ImageNet weights of its package; "
                             "it takes no checkpoint")
        return EffNetSiamFeatures(pretrained=True, stride16_weight=self.config.stride16_weight,
                                  cpu_precision=self.config.backbone_precision)
