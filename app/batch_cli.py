"""The `trackstudio batch` command: arguments, the progress bar over videos and the summary."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

BATCH_HELP = """INPUT is a project (.tsproj: its prompted videos), a folder of videos (each prompted by
<name>.json beside it) or a manifest (.csv or .jsonl with columns video, prompts and optional name,
box_tracker, mask_tracker, point_tracker, device, config). One result per video is written to DIR,
named after the video. A rerun skips videos whose result exists. Exit status: 0 when every video
is done, 1 when some failed, 130 when interrupted."""


def add_parser(sub, add_tracker_options) -> None:
    p = sub.add_parser("batch", help="track many videos: one result each, resumable, local processes or Ray",
                       description=BATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="project (.tsproj), folder of videos, or manifest (.csv / .jsonl)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (on Ray: one every node reaches)")
    p.add_argument("--format", default="json",
                   help="result format: json (default), npz, png (a folder of masks), or any `export` format "
                        "(coco, yolo, mot, cvat, dlc, sleap, tapvid)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="local worker processes (default: 1)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run one Ray task per video: auto (this machine's cluster), local (start Ray here) or "
                        "ray://HOST:10001")
    p.add_argument("--ray-cpus", type=int, help="with --ray local: CPUs of the local Ray instance (default: all)")
    p.add_argument("--task-cpus", type=float, default=1.0, help="CPUs each Ray task asks for (default: 1)")
    p.add_argument("--task-gpus", type=float, default=0.0,
                   help="GPUs each Ray task asks for (default: 0; e.g. 1, or 0.5 to share a GPU)")
    p.add_argument("--retries", type=int, default=3, help="Ray: re-runs of a task whose worker died (default: 3)")
    p.add_argument("--overwrite", action="store_true", help="track videos again even when their result exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_tracker_options(p)


def run(args, checkpoints: dict[str, str], configs: dict[str, dict] | None = None) -> int:
    """Raises ValueError for bad arguments or input; failing videos are reported, not raised."""
    from tqdm import tqdm

    from .api import tracker_names
    from .batch import FAILED, BatchSettings, plan, run_local, summary
    from .batch_jobs import read_jobs
    from .model.export import check_format

    check_format(args.format)
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    if args.ray and args.jobs != 1:
        raise ValueError("--jobs is for local processes; with --ray, Ray runs as many tasks at once as the "
                         "cluster has room for (--task-cpus / --task-gpus per task)")
    chosen = {"box": args.box_tracker, "mask": args.mask_tracker, "point": args.point_tracker}
    trackers = {kind: name for kind, name in chosen.items() if name}
    tracker_names(trackers, **{f"{kind}_tracker": name for kind, name in trackers.items()})  # fail now, not 20 times
    jobs = read_jobs(args.input)
    settings = BatchSettings(str(Path(args.out).resolve()), args.format, trackers, args.device, checkpoints,
                             frame_progress=not args.quiet, configs=configs or {})
    todo, skipped = plan(jobs, settings, args.overwrite)
    order = {job.name: i for i, job in enumerate(jobs)}
    results = list(skipped)
    bar = tqdm(total=len(jobs), initial=len(skipped), unit="video", desc="videos", disable=args.quiet, position=0)

    def on_result(result) -> None:
        results.append(result)
        bar.update(1)
        if result.status == FAILED:
            bar.write(f"{result.name}: failed: {result.error}")

    started = time.perf_counter()
    interrupted = False
    try:
        if args.ray:
            from .batch_ray import run_ray

            run_ray(todo, settings, args.ray, args.task_cpus, args.task_gpus, args.retries, on_result, args.ray_cpus)
        else:
            run_local(todo, settings, args.jobs, on_result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    results.sort(key=lambda r: order[r.name])
    print(summary(results, time.perf_counter() - started))
    if interrupted:
        print(f"interrupted: {len(jobs) - len(results)} videos not started; run the same command again to "
              "finish them (finished videos are skipped)")
        return 130
    return 1 if any(r.status == FAILED for r in results) else 0
