"""EfficientNet-Lite0 forward time on this machine (CPU, a fixed thread count).

    .venv/bin/python benchmarks/bench_backbone.py [--threads 2] [--repeats 15]

Prints one JSON line per (input size, out_strides, memory format) with the median and fastest
wall-clock forward in milliseconds, and the median process CPU time per forward (all threads
together): on a shared, busy machine the CPU time is the steadier figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import trackstudio.trackers  # noqa: F401  (allocator fix before torch allocates)
import torch

from trackstudio.trackers.backbones import EfficientNetLite0

SIZES = ((256, 256), (480, 854))
STRIDES = ((8,), (8, 16), (4, 8, 16))


def time_forward(net: EfficientNetLite0, x: torch.Tensor, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU milliseconds of each forward."""
    wall, cpu = [], []
    with torch.inference_mode():
        for _ in range(3):  # warm-up: oneDNN picks kernels on the first calls
            net(x)
        for _ in range(repeats):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            net(x)
            wall.append((time.perf_counter() - start_wall) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for strides in STRIDES:
        net = EfficientNetLite0(out_strides=strides)
        for h, w in SIZES:
            for channels_last in (False, True):
                memory_format = torch.channels_last if channels_last else torch.contiguous_format
                net = net.to(memory_format=memory_format)
                x = torch.randn(1, 3, h, w).contiguous(memory_format=memory_format)
                wall, cpu = time_forward(net, x, args.repeats)
                print(json.dumps({"size": [h, w], "out_strides": list(strides), "channels_last": channels_last,
                                  "threads": args.threads, "median_ms": round(statistics.median(wall), 1),
                                  "min_ms": round(min(wall), 1), "cpu_ms": round(statistics.median(cpu), 1)}))


if __name__ == "__main__":
    main()
