"""SAM2's video-propagation structure built offline on EfficientNet-Lite0 features (`sam2-lite`)."""
from .tracker import Sam2LiteConfig, Sam2LiteTracker

__all__ = ["Sam2LiteConfig", "Sam2LiteTracker"]
