"""Device choice: 'auto' means CUDA, then Apple MPS, then CPU; and the CPU precision of frozen backbones."""
from __future__ import annotations

import functools

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"{device!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but no CUDA GPU is available; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                             "CUDA GPU(s), numbered from 0")
    elif dev.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r} was asked for but Apple MPS is not available; use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return dev


def autocast(device: torch.device):
    """Mixed precision where it pays (CUDA: bf16 if supported else fp16); a no-op on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


CPU_PRECISIONS = ("float32", "bfloat16")


@functools.lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    """True where oneDNN runs bfloat16 convolutions natively (AVX512-BF16 or AMX); elsewhere it emulates
    them, slower than float32."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def check_cpu_precision(precision: str, option: str = "backbone_precision") -> None:
    if precision not in CPU_PRECISIONS:
        raise ValueError(f"{option} must be one of {list(CPU_PRECISIONS)}, got {precision!r}")


def cpu_autocast(dtype: torch.dtype):
    """CPU ops in `dtype` where it is bfloat16 (cpu_inference_dtype), as they are for float32; CUDA ops untouched."""
    return torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32)


def cpu_inference_dtype(precision: str) -> torch.dtype:
    """The dtype a frozen network asked to run in `precision` computes in on a CPU: bfloat16 only where
    the CPU runs it natively (elsewhere it would be slower than float32, so float32)."""
    check_cpu_precision(precision)
    return torch.bfloat16 if precision == "bfloat16" and _cpu_has_bf16() else torch.float32
