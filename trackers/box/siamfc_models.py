"""Feature networks for SiamFC: the paper's AlexNet and the offline EfficientNet-Lite0 variant.

Both turn uint8 RGB crops into feature maps whose cross-correlation is the response map:
`template(crops) -> kernel (1, C, h, w)`, `search(crops) -> (S, C, H, W)`, `total_stride` pixels
per response cell, and `exemplar_size` / `instance_size` crop sides.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import EfficientNetLite0, normalize_rgb
from ..checkpoints import CheckpointError, load_state_dict_file


def unit_norm(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x / its L2 norm along dim (as F.normalize, eps 1e-12): F.normalize's norm across channels of a
    (.., C, H, W) map is about 30x slower on CPUs than this sum of squares."""
    return x * x.square().sum(dim, keepdim=True).clamp_min(1e-24).rsqrt()


def xcorr(kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Cross-correlate every search map with every kernel.

    kernels: (K, C, h, w); search: (S, C, H, W) -> responses (S, K, H - h + 1, W - w + 1).

    As one matrix product of every kernel cell with every search cell, then a sum along shifted
    diagonals (a strided view): about 3x faster on CPUs than conv2d, whose single-output-channel
    convolutions with large kernels are slow there; the same up to float rounding.
    """
    num_k, channels, kh, kw = kernels.shape
    num_s, _, height, width = search.shape
    # products[k, i, j, s, y, x] = kernel k's cell (i, j) . search s's cell (y, x)
    products = (kernels.permute(0, 2, 3, 1).reshape(-1, channels)
                @ search.transpose(0, 1).reshape(channels, -1)).contiguous()
    plane = num_s * height * width
    # response[s, k, y, x] = sum over (i, j) of products[k, i, j, s, y + i, x + j]
    shifted = products.as_strided((num_s, num_k, height - kh + 1, width - kw + 1, kh, kw),
                                  (height * width, kh * kw * plane, width, 1, kw * plane + width, plane + 1))
    return shifted.sum(dim=(-2, -1))


# -- AlexNet (SiamFC paper, the `siamfc_alexnet_e50.pth` layout) --------------------------------
class _SiamBatchNorm(nn.BatchNorm2d):
    """Batch norm with the epsilon the widely used PyTorch SiamFC checkpoint was trained with."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-6, momentum=0.05)


class SiamFCAlexNetBackbone(nn.Module):
    """The 5-layer AlexNet of SiamFC (grouped conv2/4/5, no padding): 127 -> 6x6, 255 -> 22x22."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 2), _SiamBatchNorm(96), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5, 1, groups=2), _SiamBatchNorm(256), nn.ReLU(inplace=True),
                                   nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3, 1), _SiamBatchNorm(384), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, 1, groups=2), _SiamBatchNorm(384), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, 1, groups=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = layer(x)
        return x


class SiamFCAlexNet(nn.Module):
    """`backbone.*` keys as in siamfc_alexnet_e50.pth; the head (xcorr * 0.001) has no parameters.

    Inputs are RGB crops as float 0..255 (the checkpoint was trained without normalisation).
    """

    exemplar_size = 127
    instance_size = 255
    total_stride = 8
    out_scale = 0.001

    def __init__(self):
        super().__init__()
        self.backbone = SiamFCAlexNetBackbone()
        self.eval()

    def load_checkpoint(self, path: str | Path) -> None:
        state = load_state_dict_file(path)
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} is not a SiamFC AlexNet checkpoint (siamfc_alexnet_e50.pth layout): "
                               f"{exc}") from exc

    @staticmethod
    def _to_tensor(crops: np.ndarray, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float()

    def template(self, crops: np.ndarray, cells: tuple[int, int] | None = None) -> torch.Tensor:
        """The whole 6 x 6 exemplar map is the kernel, as in the paper (`cells` is not used)."""
        device = next(self.parameters()).device
        return self.backbone(self._to_tensor(crops, device))

    def search(self, crops: np.ndarray) -> torch.Tensor:
        device = next(self.parameters()).device
        return self.backbone(self._to_tensor(crops, device))

    def response(self, kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return xcorr(kernels, search) * self.out_scale


# -- EfficientNet-Lite0 features (offline variant) ---------------------------------------------
class EffNetSiamFeatures(nn.Module):
    """Stride-8 SiamFC features from ImageNet EfficientNet-Lite0.

    The stride-8 (40 ch, local detail) and stride-16 (112 ch, more semantic, upsampled x2) maps
    are each unit-normalised per cell, weighted, concatenated and unit-normalised per cell again, so
    that the response of a kernel with n cells divided by n is the mean cosine similarity: 1 for a
    perfect match, which makes the peak a usable confidence. Nothing is trained on top of the
    ImageNet features.

    Crops are 128 / 256 pixels (multiples of 16 keep feature cells aligned with pixels), so the
    crop centre falls between cells 7|8 of the template map and 15|16 of the search map; kernels
    with an even number of cells keep the response centre on the crop centre.

    With stride32=True the network also runs to its stride-32 map, which `search_maps` returns
    beside the others for heads that read several levels (refine_head.py).
    """

    exemplar_size = 128
    instance_size = 256
    total_stride = 8
    cell_offset = 3.5  # a map cell c is centred on input pixel total_stride * c + cell_offset

    def __init__(self, pretrained: bool = True, stride16_weight: float = 1.0, stride32: bool = False,
                 cpu_precision: str = "float32"):
        super().__init__()
        self.net = EfficientNetLite0(pretrained=pretrained, out_strides=(8, 16, 32) if stride32 else (8, 16))
        if pretrained:
            self.net.fuse_batchnorm(cpu_precision)  # frozen ImageNet features: never trained here
        self.stride16_weight = stride16_weight
        self.eval()

    def combine(self, maps: dict[int, torch.Tensor]) -> torch.Tensor:
        """Backbone maps -> (B, 192, H/8, W/8) SiamFC features, unit-norm per cell."""
        s8 = unit_norm(maps[8], dim=1)
        s16 = F.interpolate(unit_norm(maps[16], dim=1), size=s8.shape[-2:], mode="bilinear", align_corners=False)
        return unit_norm(torch.cat([s8, s16 * self.stride16_weight], dim=1), dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) normalised -> (B, 192, H/8, W/8) unit-norm per cell."""
        return self.combine(self.net(x))

    def search_maps(self, crops: np.ndarray) -> dict[int, torch.Tensor]:
        """uint8 crops (B, H, W, 3) -> the backbone's maps {stride: (B, C, H/stride, W/stride)}."""
        device = next(self.parameters()).device
        return self.net(normalize_rgb(crops).to(device))

    def template(self, crops: np.ndarray, cells: tuple[int, int] = (8, 8)) -> torch.Tensor:
        """Kernel = the central cells (h, w), both even, of the template map (the target itself)."""
        full = self.search(crops)  # (B, C, 16, 16)
        size = full.shape[-1]
        kh, kw = cells
        top, left = (size - kh) // 2, (size - kw) // 2
        return full[:, :, top:top + kh, left:left + kw]

    def search(self, crops: np.ndarray) -> torch.Tensor:
        return self.combine(self.search_maps(crops))

    def response(self, kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        cells = kernels.shape[-1] * kernels.shape[-2]
        return xcorr(kernels, search) / cells
