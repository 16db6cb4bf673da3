"""Videos per minute of `trackstudio batch` on one batch of synthetic clips: 1 and 2 local worker
processes, and Ray on this machine against --jobs with as many workers, all in the same run.

    .venv/bin/python benchmarks/bench_batch.py [--videos 16] [--frames 60] [--size 240x320]
        [--tracker csrt] [--workers 2] [--no-ray]

Each configuration runs the real command (`python -m trackstudio batch MANIFEST --out DIR`) in a
fresh output folder and is timed on the wall clock from start to exit, start-up included (spawning
workers, importing torch, starting Ray), because that is what a user waits for. The per-video
seconds come from the batch's own summary. On a shared machine the figures carry its load; the
script prints the load average beside them.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from synthetic import write_batch_clips  # noqa: E402


def run_batch(manifest: Path, out: Path, tracker: str, extra: list[str]) -> tuple[float, str]:
    command = [sys.executable, "-m", "trackstudio", "batch", str(manifest), "--out", str(out), "--quiet",
               "--box-tracker", tracker, "--device", "cpu", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="240x320", help="HxW of the clips")
    ap.add_argument("--tracker", default="csrt")
    ap.add_argument("--workers", type=int, default=2, help="local processes and Ray CPUs compared")
    ap.add_argument("--no-ray", action="store_true")
    args = ap.parse_args()
    h, w = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = write_batch_clips(tmp / "clips", args.videos, args.frames, (h, w))
        manifest = tmp / "manifest.csv"
        with open(manifest, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["video", "prompts"])
            writer.writerows([str(c["video"]), str(c["prompts"])] for c in clips)
        configs = [("--jobs 1", ["--jobs", "1"]), (f"--jobs {args.workers}", ["--jobs", str(args.workers)])]
        if not args.no_ray:
            configs.append((f"--ray local ({args.workers} CPUs, 1 per task)",
                            ["--ray", "local", "--ray-cpus", str(args.workers), "--task-cpus", "1"]))
        rows = []
        for name, extra in configs:
            seconds, summary = run_batch(manifest, tmp / f"out{len(rows)}", args.tracker, extra)
            rows.append((name, seconds, args.videos / seconds * 60, summary))
            print(f"{name}: {seconds:.1f} s", flush=True)
        outputs = [sorted((tmp / f"out{i}").iterdir()) for i in range(len(rows))]
        identical = all([p.read_bytes() for p in out] == [p.read_bytes() for p in outputs[0]] for out in outputs)
    print(f"\n{args.videos} clips x {args.frames} frames, {w}x{h}, {args.tracker}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; results byte-identical across runs: {identical}\n")
    print("| run | wall s | videos/min | batch summary |\n|---|---|---|---|")
    for name, seconds, per_minute, summary in rows:
        print(f"| {name} | {seconds:.1f} | {per_minute:.1f} | {summary} |")


if __name__ == "__main__":
    main()
