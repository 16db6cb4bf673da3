"""`trackstudio batch --ray auto|local|ADDRESS`: the same jobs as Ray tasks, one task per video.

Ray (`pip install "trackstudio[cluster]"`) schedules the tasks over a cluster with the CPU/GPU
each one asks for, and re-runs a task whose worker process or node died (`max_retries`). A task
runs `batch.run_job`, so results are identical to a local run; they are written by the task
itself, so `out_dir` must be a path every node can reach (a shared file system). Ray reuses its
worker processes, and each keeps its models (batch's TrackerPool) for the next video.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from .batch import FAILED, BatchSettings, JobResult, stop_on_signals, run_job
from .batch_jobs import VideoJob


def ray_module():
    """The `ray` package, or a ValueError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError('--ray needs Ray: pip install "trackstudio[cluster]"') from None
    return ray


def connect(address: str, local_cpus: int | None = None) -> None:
    """Join a running cluster ("auto": the one this machine belongs to, or "ray://host:10001"), or
    start a Ray instance on this machine ("local", with `local_cpus` CPUs; default all). An already
    connected session is reused."""
    ray = ray_module()
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(num_cpus=local_cpus, include_dashboard=False)
        return
    try:
        ray.init(address=address)
    except ConnectionError as exc:
        raise ValueError(f"no Ray cluster at {address!r} ({exc}); start one with `ray start --head` or "
                         "`ray up cluster.yaml`, or use --ray local") from None


def track_video_task(job: VideoJob, settings: BatchSettings) -> JobResult:
    """One video (the process title of a Ray worker running it is `ray::track_video_task`)."""
    return run_job(job, settings)


def run_ray(jobs: list[VideoJob], settings: BatchSettings, address: str = "auto", task_cpus: float = 1.0,
            task_gpus: float = 0.0, max_retries: int = 3, on_result: Callable[[JobResult], None] = lambda r: None,
            local_cpus: int | None = None) -> list[JobResult]:
    """Run one Ray task per job; results in finishing order. Ctrl+C cancels the tasks not yet done."""
    ray = ray_module()
    connect(address, local_cpus)
    settings = dataclasses.replace(settings, frame_progress=False)  # workers' bars would interleave in the log
    remote = ray.remote(track_video_task).options(
        num_cpus=task_cpus, num_gpus=task_gpus, max_retries=max_retries,
        retry_exceptions=False)  # run_job reports bad input itself: only a dead worker is a reason to retry
    jobs_by_ref = {remote.remote(job, settings): job for job in jobs}
    pending, results = list(jobs_by_ref), []
    with stop_on_signals(lambda: None):  # SIGTERM: cancel like Ctrl+C
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    job = jobs_by_ref[ref]
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died more than max_retries times
                        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        result = JobResult(job.name, job.video, FAILED, error=f"Ray: {message}")
                    results.append(result)
                    on_result(result)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return results
