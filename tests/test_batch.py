"""`trackstudio batch` end to end: bad videos reported and skipped, resume after a kill, worker
processes giving the same bytes as one process, and every kind of input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_batch_clips

import trackstudio as ts
from trackstudio.app.batch_jobs import read_jobs
from trackstudio.app.model import FrameState, Project
from trackstudio.app.model.formats import load_json
from trackstudio.app.video import VideoInfo



def _manifest(tmp_path, clips, extra_rows=()) -> Path:
    path = tmp_path / "manifest.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "prompts"])
        for clip in clips:
            writer.writerow([os.path.relpath(clip["video"], tmp_path), os.path.relpath(clip["prompts"], tmp_path)])
        writer.writerows(extra_rows)
    return path


@pytest.fixture()
def twenty_clips(tmp_path):
    """A manifest of 20 clips: 18 good ones, one corrupt file and one missing file."""
    clips = write_batch_clips(tmp_path / "clips", 19, num_frames=10)
    clips[7]["video"].write_bytes(b"\x00not a video" * 64)  # corrupt
    missing = tmp_path / "clips" / "gone.avi"
    manifest = _manifest(tmp_path, clips, [[os.path.relpath(missing, tmp_path), "clips/clip00.json"]])
    return manifest, clips


def _batch(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trackstudio", "batch", *map(str, args), "--box-tracker", "csrt"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _results(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_bad_videos_are_reported_and_skipped_and_a_rerun_only_retries_them(tmp_path, twenty_clips):
    manifest, clips = twenty_clips
    out = tmp_path / "out"
    proc = _batch(manifest, "--out", out, "--jobs", "2")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr
    good = [c for i, c in enumerate(clips) if i != 7]
    assert _results(out) == sorted(f"{c['name']}.json" for c in good)  # 18 results, named after the videos
    assert "18 done, 2 failed, 0 skipped" in stdout
    report = {line.split()[0]: line for line in stdout.splitlines() if line.startswith(("clip", "gone"))}
    assert "failed" in report["clip07"] and "could not be opened as a video" in report["clip07"]
    assert "failed" in report["gone"] and "no such file" in report["gone"]
    assert all(" done " in report[c["name"]] for c in good)
    assert "Traceback" not in stderr

    store, info = load_json(out / "clip03.json")  # a real tracking result, keyframe kept
    assert info.num_frames == 10 and store.keyframes(1) == [0]
    np.testing.assert_allclose(store.get_state(1, 9).box, clips[3]["boxes"][9], atol=4)

    stamps = {name: (out / name).stat().st_mtime_ns for name in _results(out)}
    proc = _batch(manifest, "--out", out, "--quiet")
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "0 done, 2 failed, 18 skipped" in stdout
    assert {name: (out / name).stat().st_mtime_ns for name in _results(out)} == stamps  # nothing rewritten


@pytest.mark.parametrize("sig, jobs", [(signal.SIGKILL, 1), (signal.SIGTERM, 2)])
def test_killed_batch_resumes_with_only_the_rest(tmp_path, twenty_clips, sig, jobs):
    manifest, clips = twenty_clips
    out = tmp_path / "out"
    proc = _batch(manifest, "--out", out, "--jobs", jobs, "--quiet")
    deadline = time.monotonic() + 240
    while len([n for n in _results(out) if not n.startswith(".")]) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the batch ended before it could be killed"
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130)
    finished = [n for n in _results(out) if not n.startswith(".")]
    assert 3 <= len(finished) < 18, "kill earlier: the batch was almost done"
    if sig == signal.SIGTERM:
        assert "interrupted" in stdout
    for name in finished:  # every result that exists is complete
        store, info = load_json(out / name)
        assert all(store.frames(o.obj_id) == list(range(10)) for o in store.objects)

    proc = _batch(manifest, "--out", out, "--quiet")
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert f"{18 - len(finished)} done, 2 failed, {len(finished)} skipped" in stdout
    assert len(_results(out)) == 18  # and no temporary files left behind


def test_worker_processes_give_the_same_bytes_as_one_process_and_as_the_api(tmp_path):
    clips = write_batch_clips(tmp_path / "clips", 4, num_frames=10)
    manifest = _manifest(tmp_path, clips)
    for jobs, out in ((1, "one"), (2, "two")):
        proc = _batch(manifest, "--out", tmp_path / out, "--jobs", jobs, "--format", "npz", "--quiet")
        assert proc.communicate(timeout=300) and proc.returncode == 0
    fresh = ts.track(clips[2]["video"], clips[2]["prompts"], box_tracker="csrt", device="cpu")
    ts.export(fresh, tmp_path / "fresh.npz")
    for clip in clips:
        name = f"{clip['name']}.npz"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    # models reused across videos in a worker give what a fresh model gives
    assert (tmp_path / "one" / "clip02.npz").read_bytes() == (tmp_path / "fresh.npz").read_bytes()


def test_folder_project_and_jsonl_inputs(tmp_path):
    clips = write_batch_clips(tmp_path / "folder", 3, num_frames=6)
    jobs = read_jobs(tmp_path / "folder")
    assert [(j.name, j.video, j.prompts) for j in jobs] == [
        (c["name"], str(c["video"]), str(c["prompts"])) for c in clips]

    project = Project.load(Project(VideoInfo(str(clips[0]["video"]), 6, 160, 120, 30.0)).save(tmp_path / "p.tsproj"))
    project.settings["tracker"] = {"trackers": {"box": "csrt"}}
    second = project.add_video(VideoInfo(str(clips[1]["video"]), 6, 160, 120, 30.0))
    second.store.add_object("box")
    second.store.set_state(1, 2, FrameState(box=[10, 10, 40, 40], keyframe=True))
    project.add_video(VideoInfo(str(clips[2]["video"]), 6, 160, 120, 30.0))  # not prompted: left out
    project.save()
    jobs = read_jobs(tmp_path / "p.tsproj")
    assert [j.name for j in jobs] == ["clip01"] and jobs[0].trackers == {"box": "csrt"}
    assert jobs[0].prompts[0]["frames"] == {"2": {"box": [10.0, 10.0, 40.0, 40.0], "keyframe": True}}

    inline = json.loads(clips[2]["prompts"].read_text())["objects"]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in [
        {"video": "folder/clip00.avi", "prompts": "folder/clip00.json", "name": "first", "box_tracker": "csrt",
         "config": {"lk": {"window": 31}}},
        {"video": str(clips[2]["video"]), "prompts": inline, "device": "cpu"}]))
    first, last = read_jobs(manifest)
    assert (first.name, first.video, first.trackers, first.configs) == (
        "first", str(tmp_path / "folder" / "clip00.avi"), {"box": "csrt"}, {"lk": {"window": 31}})
    assert (last.name, last.prompts, last.device) == ("clip02", inline, "cpu")


@pytest.mark.parametrize("rows, message", [
    ([{"video": "a.avi", "prompts": "a.json", "colour": "red"}], "unknown column(s) 'colour'"),
    ([{"video": "a.avi"}], "line 1: the 'prompts' column is empty"),
    ([{"video": "x/a.avi", "prompts": "p.json"}, {"video": "y/a.avi", "prompts": "p.json"}], "'a'"),
    ([{"video": "a.avi", "prompts": "a.json", "config": [1]}], "config must be a JSON object"),
])
def test_bad_manifests_name_the_line(tmp_path, rows, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(row) for row in rows))
    with pytest.raises(ValueError) as info:
        read_jobs(manifest)
    assert message in str(info.value)


def test_bad_input_is_one_line_and_exit_2_before_anything_runs(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,prompts,colour\na.avi,a.json,red\n")
    for args, message in (([manifest], "line 2: unknown column(s) 'colour'"),
                          ([tmp_path / "nothing.csv"], "nothing.csv: no such file or folder"),
                          ([manifest, "--format", "gif"], "unknown format 'gif'"),
                          ([manifest, "--jobs", "2", "--ray", "auto"], "--jobs is for local processes"),
                          ([manifest, "--set", "csrt.return_attention=yes"], "return_attention takes bool values"),
                          ([manifest, "--set", "nope.window=3"], "no tracker named 'nope'")):
        r = subprocess.run([sys.executable, "-m", "trackstudio", "batch", *map(str, args), "--out", str(tmp_path / "o")],
                           capture_output=True, text=True)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_png_results_are_folders_moved_into_place(tmp_path):
    clips = write_batch_clips(tmp_path / "clips", 2, num_frames=5)
    mask = np.zeros((120, 160), bool)
    mask[20:50, 30:60] = True
    prompts = ts.load(clips[0]["prompts"])
    obj = prompts.store.add_object("mask", name="blob").obj_id
    prompts.store.set_state(obj, 0, FrameState(mask=mask, keyframe=True))
    ts.export(prompts, clips[0]["prompts"])
    manifest = _manifest(tmp_path, clips)
    proc = _batch(manifest, "--out", tmp_path / "out", "--format", "png", "--mask-tracker", "dis-flow", "--quiet")
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    assert _results(tmp_path / "out") == ["clip00", "clip01"]
    assert len(list((tmp_path / "out" / "clip00").glob("*.png"))) == 5


@pytest.fixture()
def built_models(monkeypatch) -> list[tuple[str, dict | None]]:
    """(tracker name, config) of every model a fresh batch worker builds, in order."""
    from trackstudio.app import batch
    from trackstudio.trackers import registry

    built, real_build = [], registry.build

    def counting_build(name, **kwargs):
        built.append((name, kwargs.get("config")))
        return real_build(name, **kwargs)

    monkeypatch.setattr(registry, "build", counting_build)
    monkeypatch.setattr(batch, "_pool", None)  # a fresh worker
    return built


def test_models_are_built_once_per_worker_and_per_video_settings_apply(tmp_path, built_models):
    from trackstudio.app import batch
    from trackstudio.app.batch_jobs import VideoJob

    built = built_models
    clips = write_batch_clips(tmp_path / "clips", 4, num_frames=5)
    jobs = [VideoJob(c["name"], str(c["video"]), str(c["prompts"])) for c in clips[:3]]
    jobs.append(VideoJob("odd", str(clips[3]["video"]), str(clips[3]["prompts"]), configs={"csrt": {"padding": 2}}))
    settings = batch.BatchSettings(str(tmp_path / "out"), trackers={"box": "csrt"}, device="cpu",
                                   frame_progress=False)
    results = batch.run_local(jobs, settings)
    assert [r.status for r in results] == [batch.DONE] * 3 + [batch.FAILED]
    assert "cannot build tracker 'csrt'" in results[3].error and "padding" in results[3].error
    assert built == [("csrt", None), ("csrt", {"padding": 2})]  # one model for three videos


def test_set_options_apply_to_every_video_and_a_jobs_own_config_wins(tmp_path, built_models):
    from trackstudio.app import batch
    from trackstudio.app.batch_jobs import VideoJob

    clips = write_batch_clips(tmp_path / "clips", 3, num_frames=5)
    jobs = [VideoJob(c["name"], str(c["video"]), str(c["prompts"])) for c in clips[:2]]
    jobs.append(VideoJob("own", str(clips[2]["video"]), str(clips[2]["prompts"]),
                         configs={"csrt": {"return_attention": False}}))
    settings = batch.BatchSettings(str(tmp_path / "out"), trackers={"box": "csrt"}, device="cpu",
                                   frame_progress=False, configs={"csrt": {"return_attention": True}})
    assert [r.status for r in batch.run_local(jobs, settings)] == [batch.DONE] * 3
    assert built_models == [("csrt", {"return_attention": True}), ("csrt", {"return_attention": False})]


def _pool_workers(parent_pid: int) -> list[int]:
    """The spawned worker processes of a batch (not multiprocessing's resource tracker)."""
    workers = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent_pid and b"spawn_main" in cmdline:
            workers.append(int(entry))
    return workers


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the worker processes through /proc")
def test_a_worker_process_killed_mid_video_is_replaced_and_the_video_redone(tmp_path):
    clips = write_batch_clips(tmp_path / "clips", 6, num_frames=40, size=(240, 320))
    out = tmp_path / "out"
    proc = _batch(_manifest(tmp_path, clips), "--out", out, "--jobs", 2, "--quiet")
    deadline = time.monotonic() + 240
    while not [n for n in _results(out) if not n.startswith(".")]:  # workers are warm and busy
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    workers = _pool_workers(proc.pid)
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    assert "6 done, 0 failed, 0 skipped" in stdout
    for clip in clips:
        store, _ = load_json(out / f"{clip['name']}.json")
        assert store.frames(1) == list(range(40))
