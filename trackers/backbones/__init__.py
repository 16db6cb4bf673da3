"""Pretrained image backbones (pure torch): EfficientNet-Lite0 features at strides 4, 8, 16 and 32."""
from .efficientnet_lite import FEATURE_CHANNELS, EfficientNetLite0, normalize_rgb
from .features import FeatureExtractor, FrameFeatures

__all__ = ["FEATURE_CHANNELS", "EfficientNetLite0", "FeatureExtractor", "FrameFeatures", "normalize_rgb"]
