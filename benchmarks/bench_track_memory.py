"""Peak RAM of the command users run, `trackstudio track`, against clip length and object count.

    .venv/bin/python benchmarks/bench_track_memory.py [--lengths 100,1000] [--objects 1,10,100,300]
        [--kind mask|box|point] [--video] [--mask-tracker sam2-lite] [--keep DIR]

Each figure is one child process `python -m trackstudio track CLIP --prompts P.json --out R.json
--device cpu --quiet`; its peak resident size comes from the kernel (`os.wait4`'s ru_maxrss of
that child alone), so the figures do not depend on how busy the machine is.

- length: the DAVIS-2016 training clip `bear` (854x480) played back and forth to each length as a
  folder of links to its JPEGs (`--video`: also as an mp4 file read through PyAV), one mask prompt
  (its ground truth) on frame 0. Flat in length means the 1,000-frame figure is within 1.3x of the
  100-frame one. `--kind box` prompts the mask's tight box instead, `--kind point` 16 points on the mask.
- objects: a 2-frame clip (bear's first two frames) with N mask objects prompted on frame 0, cells
  of a 20 x 15 grid (300 cells); MB per extra object is the slope against the 1-object run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from trackstudio.trackers import mask_to_box

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO.parent / "shared" / "train" / "davis2016_train" / "bear"
GRID_COLS, GRID_ROWS = 20, 15
POINTS_PER_MASK = 16


def rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def write_prompts(path: Path, masks: list[np.ndarray], num_frames: int, kind: str = "mask") -> None:
    """One object a mask (its mask, its tight box, or POINTS_PER_MASK points on it for kind "point")."""
    height, width = masks[0].shape
    objects = []
    for m in masks:
        if kind == "point":
            ys, xs = np.nonzero(m)
            picks = np.linspace(0, len(xs) - 1, POINTS_PER_MASK).astype(int)
            entries = [{"point": [float(xs[i]), float(ys[i])], "keyframe": True} for i in picks]
        elif kind == "box":
            entries = [{"box": [float(v) for v in mask_to_box(m)], "keyframe": True}]
        else:
            entries = [{"mask": rle(m), "keyframe": True}]
        objects += [{"id": obj_id, "name": f"{kind}{obj_id}", "kind": kind, "frames": {"0": e}}
                    for obj_id, e in enumerate(entries, len(objects) + 1)]
    path.write_text(json.dumps({"format": "trackstudio", "version": 1,
                                "video": {"num_frames": num_frames, "width": width, "height": height},
                                "objects": objects}))


def bounce(num_frames: int, clip_len: int) -> list[int]:
    """Source frame of each output frame: the clip forwards, backwards, forwards... (no jumps)."""
    period = 2 * (clip_len - 1)
    return [t % period if t % period < clip_len else period - t % period for t in range(num_frames)]


def make_folder(root: Path, num_frames: int) -> Path:
    sources = sorted((CLIP / "frames").glob("*.jpg"))
    folder = root / f"frames_{num_frames}"
    folder.mkdir()
    for t, s in enumerate(bounce(num_frames, len(sources))):
        (folder / f"{t:05d}.jpg").symlink_to(sources[s])
    return folder


def make_video(root: Path, folder: Path) -> Path:
    from trackstudio.app.video import open_video, write_video

    path = root / f"{folder.name}.mp4"
    with open_video(folder) as frames:
        write_video(frames, path)
    return path


def peak_rss_mb(clip: Path, prompts: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one `trackstudio track` child process."""
    cmd = [sys.executable, "-m", "trackstudio", "track", str(clip), "--prompts", str(prompts),
           "--out", str(out), "--device", "cpu", "--quiet", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's maximum
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds  # Linux reports KiB


def grid_masks(count: int, height: int, width: int) -> list[np.ndarray]:
    masks = []
    for i in range(count):
        r, c = divmod(i, GRID_COLS)
        m = np.zeros((height, width), bool)
        y1, y2 = r * height // GRID_ROWS, (r + 1) * height // GRID_ROWS
        x1, x2 = c * width // GRID_COLS, (c + 1) * width // GRID_COLS
        m[y1 + 2:y2 - 2, x1 + 2:x2 - 2] = True
        masks.append(m)
    return masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="100,1000", help="clip lengths in frames; empty: skip")
    ap.add_argument("--objects", default="1,10,100,300", help="object counts on a 2-frame clip; empty: skip")
    ap.add_argument("--kind", choices=("mask", "box", "point"), default="mask", help="what the length runs prompt")
    ap.add_argument("--video", action="store_true", help="also time the lengths as mp4 files")
    ap.add_argument("--mask-tracker", default=None)
    ap.add_argument("--keep", help="write the clips and results here (kept) instead of a temporary folder")
    args = ap.parse_args()
    if not CLIP.is_dir():
        raise SystemExit(f"{CLIP}: the shared DAVIS training clip is missing")
    extra = ["--mask-tracker", args.mask_tracker] if args.mask_tracker else []
    first = cv2.imread(str(CLIP / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 127
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        lengths = [int(n) for n in args.lengths.split(",") if n]
        if lengths:
            print("| clip | frames | peak RSS (MB) | s |\n|---|---|---|---|", flush=True)
        peaks: dict[str, list[float]] = {}
        for n in lengths:
            folder = make_folder(root, n)
            prompts = root / f"prompts_{n}.json"
            write_prompts(prompts, [first], n, args.kind)
            clips = [("folder", folder)] + ([("mp4", make_video(root, folder))] if args.video else [])
            for kind, clip in clips:
                mb, seconds = peak_rss_mb(clip, prompts, root / f"result_{kind}_{n}.json", extra)
                peaks.setdefault(kind, []).append(mb)
                print(f"| {kind} | {n} | {mb:.0f} | {seconds:.0f} |", flush=True)
        for kind, mbs in peaks.items():
            if len(mbs) > 1:
                print(f"{kind}: {lengths[-1]} / {lengths[0]} frames peak RSS ratio {mbs[-1] / mbs[0]:.2f}")
        counts = [int(n) for n in args.objects.split(",") if n]
        if counts:
            folder = make_folder(root, 2)
            print("\n| objects | peak RSS (MB) | MB per extra object | s |\n|---|---|---|---|", flush=True)
            base = None
            for count in counts:
                prompts = root / f"prompts_objects_{count}.json"
                write_prompts(prompts, grid_masks(count, *first.shape), 2)
                mb, seconds = peak_rss_mb(folder, prompts, root / f"result_objects_{count}.json", extra)
                base = base or (count, mb)
                slope = (mb - base[1]) / (count - base[0]) if count > base[0] else float("nan")
                print(f"| {count} | {mb:.0f} | {slope:.2f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
