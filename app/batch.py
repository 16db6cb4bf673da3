"""`trackstudio batch`: track many videos, one result file each, in this process, in N local worker
processes, or as Ray tasks (app/batch_ray.py).

Each worker builds its models once (`TrackerPool`) and reuses them for every video it gets. A video
that fails is reported and skipped; the others go on. Results are written atomically, so a batch
that was killed resumes: a rerun skips every video whose result exists.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import glob
import multiprocessing
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .batch_jobs import VideoJob

DONE, FAILED, SKIPPED, CANCELLED = "done", "failed", "skipped", "cancelled"
_CRASH_ATTEMPTS = 2  # a video whose worker process dies is tried this often in a fresh process


@dataclass(frozen=True)
class BatchSettings:
    """What every video of a batch shares (a job's own tracker choices win)."""

    out_dir: str
    fmt: str = "json"
    trackers: dict[str, str] = field(default_factory=dict)  # kind -> name
    device: str = "auto"
    checkpoints: dict[str, str] = field(default_factory=dict)  # tracker name -> weights file
    frame_progress: bool = True
    configs: dict[str, dict] = field(default_factory=dict)  # tracker name -> options (--set); a job's own win


@dataclass
class JobResult:
    name: str
    video: str
    status: str  # DONE, FAILED, SKIPPED or CANCELLED
    seconds: float = 0.0
    frames: int = 0
    error: str = ""


def result_path(job: VideoJob, settings: BatchSettings) -> Path:
    from .model.export import result_name

    return Path(settings.out_dir) / result_name(job.name, settings.fmt)


# ---- one video (in whichever process runs it) ----------------------------------------------
_pool = None  # this process's TrackerPool: models are built on first use and reused
_stop = None  # an Event set by the parent to stop between frames
_position: int | None = None  # this worker's progress bar line
_started = None  # a Queue: worker processes announce each video they start


def run_job(job: VideoJob, settings: BatchSettings) -> JobResult:
    """Track one video and write its result atomically; every failure becomes a FAILED result."""
    from .api import Cancelled, TrackerPool, export, track

    global _pool
    if _pool is None:
        _pool = TrackerPool()
    started = time.perf_counter()
    try:
        trackers = {**settings.trackers, **job.trackers}
        configs = {name: {**settings.configs.get(name, {}), **job.configs.get(name, {})}
                   for name in {*settings.configs, *job.configs}}
        result = track(job.video, job.prompts, box_tracker=trackers.get("box"), mask_tracker=trackers.get("mask"),
                       point_tracker=trackers.get("point"), device=job.device or settings.device,
                       checkpoints=settings.checkpoints, configs=configs, progress=settings.frame_progress,
                       trackers=_pool, desc=job.name[:24], position=_position, should_stop=_should_stop)
        _write_atomically(result, result_path(job, settings), settings.fmt, export)
    except Cancelled:
        return JobResult(job.name, job.video, CANCELLED, time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001  (one bad video must not end the batch)
        return JobResult(job.name, job.video, FAILED, time.perf_counter() - started, error=_one_line(exc))
    return JobResult(job.name, job.video, DONE, time.perf_counter() - started, result.video.num_frames)


def _should_stop() -> bool:
    return _stop is not None and _stop.is_set()


def _write_atomically(result, target: Path, fmt: str, export) -> None:
    """Files are written by atomic writers; a PNG folder is written beside and renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix:
        export(result, target, fmt)
        return
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    export(result, partial, fmt)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def _one_line(exc: BaseException) -> str:
    from .model import FormatError
    from .video import VideoError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (VideoError, FormatError, ValueError)):
        return text
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _clean_leftovers(job: VideoJob, settings: BatchSettings) -> None:
    """Temporary files of a run that was killed while writing this video's result."""
    target = result_path(job, settings)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*"):
        if leftover.name.endswith((".tmp", ".partial")):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


# ---- many videos ---------------------------------------------------------------------------
def plan(jobs: list[VideoJob], settings: BatchSettings, overwrite: bool = False) -> tuple[list[VideoJob], list[JobResult]]:
    """(jobs to run, SKIPPED results for videos whose result already exists)."""
    Path(settings.out_dir).mkdir(parents=True, exist_ok=True)
    todo, skipped = [], []
    for job in jobs:
        _clean_leftovers(job, settings)
        if not overwrite and result_path(job, settings).exists():
            skipped.append(JobResult(job.name, job.video, SKIPPED))
        else:
            todo.append(job)
    return todo, skipped


def run_local(jobs: list[VideoJob], settings: BatchSettings, workers: int = 1,
              on_result: Callable[[JobResult], None] = lambda r: None) -> list[JobResult]:
    """Run the jobs here (workers=1) or in `workers` spawned processes; results in finishing order."""
    results = []

    def report(result: JobResult) -> None:
        results.append(result)
        on_result(result)

    workers = min(workers, len(jobs))
    if workers <= 1:
        with stop_on_signals(lambda: None):
            for job in jobs:
                report(run_job(job, settings))
        return results
    context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads and CUDA state
    stop, slots, started = context.Event(), context.Queue(), context.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    crashes = {job.name: 0 for job in jobs}
    pending = list(jobs)
    while pending:
        for slot in range(workers):  # each worker of a (fresh) pool takes a progress bar line
            slots.put(slot + 1)
        running, retry = set(), []
        executor = cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                          initargs=(stop, slots, started, threads))
        with stop_on_signals(stop.set), executor:
            futures = {executor.submit(_run_in_worker, job, settings): job for job in pending}
            try:
                for future in cf.as_completed(futures):
                    job = futures[future]
                    try:
                        report(future.result())
                    except cf.process.BrokenProcessPool:  # a worker died: every unfinished future fails
                        running.update(_drain(started))
                        if job.name in running:  # it was being tracked when the worker died
                            crashes[job.name] += 1
                        if crashes[job.name] < _CRASH_ATTEMPTS:
                            retry.append(job)
                        else:
                            report(JobResult(job.name, job.video, FAILED,
                                             error=f"its worker process died {_CRASH_ATTEMPTS} times"))
                    finally:
                        running.update(_drain(started))
                        running.discard(job.name)
            except KeyboardInterrupt:
                stop.set()  # running videos stop at their next frame; queued ones never start
                executor.shutdown(wait=True, cancel_futures=True)
                raise
        pending = retry
    return results


def _drain(queue) -> list:
    items = []
    with contextlib.suppress(Exception):  # queue.Empty, or the queue's feeder died with its worker
        while True:
            items.append(queue.get_nowait())
    return items


def _run_in_worker(job: VideoJob, settings: BatchSettings) -> JobResult:
    _started.put(job.name)  # the parent charges a worker's death to the video it was tracking
    return run_job(job, settings)


def _init_worker(stop, slots, started, threads: int) -> None:
    """Runs once in each worker process: the stop flag, a progress line, a share of the CPU cores."""
    import cv2

    global _stop, _position, _started
    _stop, _position, _started = stop, slots.get(), started
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; workers stop between frames
    cv2.setNumThreads(threads)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]):
    """SIGTERM acts like Ctrl+C: `stop()` asks the workers to stop, then KeyboardInterrupt ends the batch."""
    def handler(signum, frame):
        stop()
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---- the report ----------------------------------------------------------------------------
def summary(results: Iterable[JobResult], seconds: float) -> str:
    """A table of every video (failures with their reason) and the totals."""
    results = list(results)
    width = max([len(r.name) for r in results] + [5])
    lines = [f"{'video':<{width}}  {'status':<9} {'seconds':>8} {'frames':>7}  error"]
    for r in results:
        seconds_text = f"{r.seconds:8.1f}" if r.status in (DONE, FAILED) else f"{'-':>8}"
        frames_text = f"{r.frames:7d}" if r.status == DONE else f"{'-':>7}"
        lines.append(f"{r.name:<{width}}  {r.status:<9} {seconds_text} {frames_text}  {r.error}".rstrip())
    counts = {status: sum(r.status == status for r in results) for status in (DONE, FAILED, SKIPPED, CANCELLED)}
    done = counts[DONE]
    rate = f", {done / seconds * 60:.1f} videos/min" if done and seconds > 0 else ""
    total = (f"{counts[DONE]} done, {counts[FAILED]} failed, {counts[SKIPPED]} skipped (already done)"
             + (f", {counts[CANCELLED]} cancelled" if counts[CANCELLED] else "") + f" in {seconds:.1f} s{rate}")
    return "\n".join(lines + ["", total])
