"""The official SAM2.1 checkpoints (Hiera tiny / small / base+ / large), run as the official video
predictor: the network matches the official code with the same (random) weights loaded into both,
and frames, prompts and masks are converted as the official video predictor does.
Importing this package registers `sam2.1-hiera-<size>` mask trackers."""
from ...checkpoints import OFFICIAL_WEIGHTS
from ...registry import register
from .tracker import Sam2OfficialConfig, Sam2OfficialTracker, build_model, load_official

# registry name, config.HIERA_SPECS key, priority (all below the offline default)
_SIZES = (("tiny", "tiny", -5), ("small", "small", -6), ("base-plus", "base_plus", -7), ("large", "large", -8))

for _name, _size, _priority in _SIZES:
    _spec = OFFICIAL_WEIGHTS[f"sam2.1_hiera_{_size}"]
    _cls = type(f"Sam2Official_{_size}", (Sam2OfficialTracker,), {"size": _size, "weights_spec": _spec})
    register(f"sam2.1-hiera-{_name}", kind="mask", priority=_priority, weights=(_spec,),
             description=f"SAM 2.1 Hiera-{_name} official weights ({_spec.size_bytes // 2**20} MB "
                         "download, slow without a GPU)")(_cls)

__all__ = ["Sam2OfficialConfig", "Sam2OfficialTracker", "build_model", "load_official"]
