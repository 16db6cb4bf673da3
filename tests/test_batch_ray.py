"""Batch tracking as Ray tasks on a local Ray instance: the same bytes as a local run, and a worker
killed mid-task is retried to a complete result. Skipped when Ray is not installed."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from synthetic import write_batch_clips

from trackstudio.app.batch import DONE, FAILED, BatchSettings, run_local
from trackstudio.app.batch_jobs import VideoJob

ray = pytest.importorskip("ray")

TASK_TITLE = b"ray::track_video_task"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _jobs(clips) -> list[VideoJob]:
    return [VideoJob(c["name"], str(c["video"]), str(c["prompts"])) for c in clips]


def _settings(out, fmt="json") -> BatchSettings:
    return BatchSettings(str(out), fmt, trackers={"box": "csrt"}, device="cpu", frame_progress=False)


def _running_task_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read().startswith(TASK_TITLE):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@pytest.mark.parametrize("fmt", ["json", "npz"])
def test_ray_results_are_byte_identical_to_a_local_run(tmp_path, local_ray, fmt):
    from trackstudio.app.batch_ray import run_ray

    clips = write_batch_clips(tmp_path / "clips", 4, num_frames=10)
    clips[1]["video"].write_bytes(b"\x00corrupt" * 50)
    jobs = _jobs(clips)
    local = {r.name: r for r in run_local(jobs, _settings(tmp_path / "local", fmt))}
    remote = {r.name: r for r in run_ray(jobs, _settings(tmp_path / "ray", fmt), task_cpus=1)}
    assert {n: r.status for n, r in remote.items()} == {n: r.status for n, r in local.items()}
    assert remote["clip01"].status == FAILED and "could not be opened" in remote["clip01"].error
    names = sorted(os.listdir(tmp_path / "local"))
    assert len(names) == 3 and sorted(os.listdir(tmp_path / "ray")) == names
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds Ray's worker processes through /proc")
def test_a_worker_killed_mid_task_is_retried_to_a_complete_result(tmp_path, local_ray):
    from trackstudio.app.batch_ray import run_ray

    clips = write_batch_clips(tmp_path / "clips", 6, num_frames=40, size=(240, 320))
    jobs = _jobs(clips)
    results, killed = [], []
    runner = threading.Thread(target=lambda: results.extend(run_ray(jobs, _settings(tmp_path / "ray"),
                                                                    max_retries=3)))
    runner.start()
    deadline = time.monotonic() + 240
    while not killed and runner.is_alive() and time.monotonic() < deadline:
        pids = _running_task_pids()
        if pids and os.path.isdir(tmp_path / "ray") and os.listdir(tmp_path / "ray"):  # warm workers, mid-task
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        time.sleep(0.005)
    runner.join(timeout=300)
    assert killed, "no task was running to be killed"
    assert sorted(r.status for r in results) == [DONE] * 6  # the killed task ran again
    local = {r.name: r for r in run_local(jobs, _settings(tmp_path / "local"))}
    assert all(r.status == DONE for r in local.values())
    for clip in clips:
        name = f"{clip['name']}.json"
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
