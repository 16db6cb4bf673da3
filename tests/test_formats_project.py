"""Project files: round trips, video paths, unknown keys, atomic saves and autosave recovery."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import trackstudio.app.model.atomic as atomic
from trackstudio.app.model import AnnotationStore, Autosaver, FormatError, FrameState, Project
from trackstudio.app.model.atomic import atomic_write_bytes
from trackstudio.app.model.formats import export_npz, save_json
from trackstudio.app.model.labels import Attribute, LabelClass, LabelSchema, attributes_of, set_attribute, set_schema
from trackstudio.app.model.labels import schema as labels_schema
from trackstudio.app.video import VideoInfo


@pytest.fixture
def video_file(tmp_path):
    path = tmp_path / "media" / "clip.mp4"
    path.parent.mkdir()
    path.write_bytes(b"not really a video; projects only reference it")
    return path


def make_project(video_file) -> Project:
    video = VideoInfo(str(video_file), 20, 32, 24, 25.0)
    project = Project(video, settings={"box_tracker": "csrt", "view": {"zoom": 1.5}})
    mask_obj = project.store.add_object("mask", name="ball")
    box_obj = project.store.add_object("box")
    mask = np.zeros((24, 32), bool)
    mask[3:9, 4:20] = True
    project.store.set_state(mask_obj.obj_id, 0, FrameState(mask=mask, keyframe=True))
    project.store.set_state(box_obj.obj_id, 7, FrameState(box=[1, 2, 3, 4], score=0.25))
    return project


def test_round_trip(tmp_path, video_file):
    project = make_project(video_file)
    project.extra = {"plugin_state": {"a": [1, 2]}}
    path = project.save(tmp_path / "p.tsproj")
    loaded = Project.load(path)
    assert loaded.video == project.video
    assert loaded.settings == project.settings
    assert loaded.extra == {"plugin_state": {"a": [1, 2]}}
    assert loaded.store.objects == project.store.objects
    for obj in project.store.objects:
        assert loaded.store.states(obj.obj_id) == project.store.states(obj.obj_id)
    np.testing.assert_array_equal(loaded.store.get_state(1, 0).mask.decode(),
                                  project.store.get_state(1, 0).mask.decode())
    assert loaded.path == path and not loaded.dirty


def test_file_layout_and_relative_video_path(tmp_path, video_file):
    path = make_project(video_file).save(tmp_path / "p.tsproj")
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("trackstudio-project", 2)
    video = doc["videos"][0]["video"]
    assert video["path"] == os.path.join("media", "clip.mp4")
    assert video["absolute_path"] == str(video_file.resolve())
    assert doc["settings"]["box_tracker"] == "csrt"
    assert doc["videos"][0]["objects"][1]["frames"] == {"7": {"box": [1.0, 2.0, 3.0, 4.0], "score": 0.25}}


def test_moving_project_with_its_video_and_alone(tmp_path, video_file):
    make_project(video_file).save(tmp_path / "p.tsproj")
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "media", moved / "media")
    shutil.copy(tmp_path / "p.tsproj", moved / "p.tsproj")
    assert Project.load(moved / "p.tsproj").video.path == str(moved / "media" / "clip.mp4")  # relative wins
    alone = tmp_path / "elsewhere" / "deep"
    alone.mkdir(parents=True)
    shutil.copy(tmp_path / "p.tsproj", alone / "p.tsproj")
    assert Project.load(alone / "p.tsproj").video.path == str(video_file.resolve())  # absolute fallback


def test_unknown_keys_survive_a_load_save_cycle(tmp_path, video_file):
    path = make_project(video_file).save(tmp_path / "p.tsproj")
    doc = json.loads(path.read_text())
    doc["written_by"] = {"app": "TrackStudio 9", "features": ["x"]}
    path.write_text(json.dumps(doc))
    project = Project.load(path)
    project.store.add_object("point")
    project.save()
    assert json.loads(path.read_text())["written_by"] == {"app": "TrackStudio 9", "features": ["x"]}


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d.update(format="trackstudio"), "format", 'expected "trackstudio-project"'),
    (lambda d: d.update(version=3), "version", "unsupported version 3"),
    (lambda d: d.update(settings=[]), "settings", "expected an object"),
    (lambda d: d["videos"][0]["video"].update(absolute_path=5), "videos[0].video.absolute_path", "expected a string"),
    (lambda d: d["videos"][0]["objects"][0].update(kind="blob"), "videos[0].objects[0].kind", "got \"blob\""),
    (lambda d: d["videos"][0]["objects"][0]["frames"]["0"]["mask"].update(size=[24, 33]),
     'videos[0].objects[0].frames["0"].mask.size', "expected [H, W] = [24, 32]"),
    (lambda d: d.update(videos=[]), "videos", "at least one video"),
    (lambda d: d.update(current=1), "current", "expected a video index 0..0"),
    (lambda d: d["videos"][0].update(video_reviewed="yes"), "videos[0].video_reviewed", "expected true or false"),
])
def test_malformed_project_names_the_field(tmp_path, video_file, change, field, message):
    path = make_project(video_file).save(tmp_path / "p.tsproj")
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError) as info:
        Project.load(path)
    assert info.value.field == field and message in info.value.message and str(path) in str(info.value)


def test_dirty_tracks_store_and_settings(tmp_path, video_file):
    project = make_project(video_file)
    assert project.dirty
    with pytest.raises(ValueError, match="no file yet"):
        project.save()
    project.save(tmp_path / "p.tsproj")
    assert not project.dirty
    project.settings["view"]["zoom"] = 2.0
    assert project.dirty
    project.save()
    project.store.update_object(1, name="football")
    assert project.dirty


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_crash_during_rename_keeps_the_old_file(tmp_path, video_file, monkeypatch):
    project = make_project(video_file)
    path = project.save(tmp_path / "p.tsproj")
    old = path.read_bytes()
    project.store.add_object("point", name="new")

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        project.save()
    assert path.read_bytes() == old
    assert _files(tmp_path) == ["media", "p.tsproj"]  # no temporary file left behind
    assert project.dirty  # still unsaved
    monkeypatch.undo()
    project.save()
    assert [o.name for o in Project.load(path).store.objects][-1] == "new"


@pytest.mark.parametrize("save", ["json", "npz", "project"])
def test_crash_while_writing_keeps_the_old_file(tmp_path, video_file, monkeypatch, save):
    project = make_project(video_file)
    path = tmp_path / f"out.{save}"
    write = {"json": lambda: save_json(project.store, project.video, path),
             "npz": lambda: export_npz(project.store, project.video, path),
             "project": lambda: project.save(path)}[save]
    write()
    old = path.read_bytes()
    project.store.set_state(2, 8, FrameState(box=[5, 5, 9, 9]))
    real_fsync = os.fsync

    def crash_after_partial_write(fd):
        raise KeyboardInterrupt  # the process is killed after the data was written, before the rename

    monkeypatch.setattr(atomic.os, "fsync", crash_after_partial_write)
    with pytest.raises(KeyboardInterrupt):
        write()
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert path.read_bytes() == old
    assert _files(tmp_path) == sorted(["media", path.name])


def test_exception_inside_atomic_open_leaves_nothing(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), atomic.atomic_open(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("writer failed")
    assert path.read_bytes() == b"old" and _files(tmp_path) == ["f.bin"]


def test_atomic_write_keeps_permissions(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two" and path.stat().st_mode & 0o777 == 0o600


def test_autosave_writes_only_after_changes_and_recovers(tmp_path, video_file):
    project = make_project(video_file)
    saver = Autosaver()
    assert saver.autosave(project) is None  # no file yet: nowhere to autosave
    path = project.save(tmp_path / "p.tsproj")
    assert saver.autosave(project) is None  # nothing changed since the save
    assert Autosaver.find(path) is None and Autosaver.recover(path) is None

    project.store.set_state(2, 9, FrameState(box=[2, 2, 6, 6], keyframe=True))
    autosave = saver.autosave(project)
    assert autosave == tmp_path / "p.tsproj.autosave" and autosave.exists()
    stamp = autosave.stat().st_mtime_ns
    assert saver.autosave(project) is None  # unchanged since the autosave
    assert autosave.stat().st_mtime_ns == stamp

    # the app crashes here; on restart the newer autosave is found and recovered
    os.utime(path, ns=(stamp - 10**9, stamp - 10**9))
    assert Autosaver.find(path) == autosave
    recovered = Autosaver.recover(path)
    assert recovered.path == path and recovered.dirty
    assert recovered.store.keyframes(2) == [9]
    assert recovered.video.path == str(video_file)
    assert Project.load(path).store.keyframes(2) == []  # the project file itself is untouched
    recovered.save()
    assert not autosave.exists()  # saving makes the autosave stale: it is removed
    assert Project.load(path).store.keyframes(2) == [9]


def test_stale_autosave_is_ignored(tmp_path, video_file):
    project = make_project(video_file)
    path = project.save(tmp_path / "p.tsproj")
    stale = Autosaver.autosave_path(path)
    stale.write_bytes(b"{}")
    os.utime(stale, ns=(1, 1))  # older than the project file
    assert Autosaver.find(path) is None


def test_json_and_project_share_the_object_layout(tmp_path, video_file):
    project = make_project(video_file)
    project.save(tmp_path / "p.tsproj")
    save_json(project.store, project.video, tmp_path / "a.json")
    as_project = json.loads((tmp_path / "p.tsproj").read_text())["videos"][0]["objects"]
    as_json = json.loads((tmp_path / "a.json").read_text())["objects"]
    assert as_project == as_json


def test_empty_store_project(tmp_path):
    project = Project(VideoInfo("", 5, 8, 8, 30.0), AnnotationStore())
    loaded = Project.load(project.save(tmp_path / "e.tsproj"))
    assert loaded.store.objects == [] and loaded.video.path == "" and loaded.settings == {}


def test_multi_video_project_round_trips(tmp_path, video_file):
    project = make_project(video_file)
    second_path = tmp_path / "media" / "second.mp4"
    second_path.write_bytes(b"another referenced video")
    second = project.add_video(VideoInfo(str(second_path), 10, 16, 12, 30.0))
    person = second.store.add_object("box", name="runner", label="person").obj_id
    second.store.set_state(person, 4, FrameState(box=[1, 1, 5, 6], keyframe=True))
    schema = LabelSchema(classes=(LabelClass("person", "#e6194b"), LabelClass("car", "#4363d8")),
                         attributes=(Attribute("occluded"),))
    set_schema(project.store, schema)
    project.store.update_object(2, label="car")
    set_attribute(project.store, 2, "occluded", True, frame_idx=3)
    project.current = 1
    project.share_label_schema(project.videos[0].store)
    second.reviewed = True
    with pytest.raises(ValueError, match="already in the project"):
        project.add_video(VideoInfo(str(second_path), 10, 16, 12, 30.0))

    loaded = Project.load(project.save(tmp_path / "many.tsproj"))
    assert [e.video for e in loaded.videos] == [e.video for e in project.videos]
    assert loaded.current == 1 and loaded.video.path == str(second_path) and loaded.store.keyframes(1) == [4]
    assert all(labels_schema(entry.store) == schema for entry in loaded.videos)  # one schema, every video
    assert attributes_of(loaded.videos[0].store, 2, 3) == {"occluded"}
    assert not attributes_of(loaded.videos[1].store, 1, 4)
    assert [e.status for e in loaded.videos] == ["tracked", "reviewed"]
    for before, after in zip(project.videos, loaded.videos):
        assert after.store.objects == before.store.objects
        for obj in before.store.objects:
            assert after.store.states(obj.obj_id) == before.store.states(obj.obj_id)
    assert not loaded.dirty
    loaded.videos[0].reviewed = True
    assert loaded.dirty


def test_video_status_follows_the_annotations(video_file):
    project = Project(VideoInfo(str(video_file), 20, 32, 24, 25.0))
    entry = project.entry
    assert entry.status == "not started"
    obj = project.store.add_object("box").obj_id
    assert entry.status == "not started"  # an object without any annotation is not a prompt
    project.store.set_state(obj, 3, FrameState(box=[1, 2, 8, 9], keyframe=True))
    assert entry.status == "prompted"
    project.store.apply_tracked(obj, 4, FrameState(box=[2, 2, 9, 9]))
    assert entry.status == "tracked"
    entry.reviewed = True
    assert entry.status == "reviewed"


def test_version_1_project_is_migrated(tmp_path, video_file):
    """A file written by TrackStudio before multi-video projects opens as a one-video project."""
    v1 = {"format": "trackstudio-project", "version": 1,
          "video": {"path": "media/clip.mp4", "absolute_path": str(video_file), "num_frames": 20, "width": 32,
                    "height": 24, "fps": 25.0},
          "objects": [{"id": 1, "name": "ball", "kind": "box", "color": "#ff0000", "label": "toy",
                       "frames": {"3": {"box": [1, 2, 3, 4], "keyframe": True}, "4": {"box": [2, 2, 4, 4]}}}],
          "settings": {"tracker": {"device": "cpu"}}, "written_by": "TrackStudio 0.1"}
    path = tmp_path / "old.tsproj"
    path.write_text(json.dumps(v1))
    project = Project.load(path)
    assert len(project.videos) == 1 and project.video.path == str(video_file)
    assert project.store.keyframes(1) == [3] and project.store.frames(1) == [3, 4]
    assert project.settings == {"tracker": {"device": "cpu"}} and project.extra == {"written_by": "TrackStudio 0.1"}
    assert project.store.get_object(1).label == "toy" and not project.dirty
    project.save()
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and "video" not in doc and doc["videos"][0]["objects"][0]["name"] == "ball"
    assert doc["written_by"] == "TrackStudio 0.1"
    assert Project.load(path).store.frames(1) == [3, 4]


def test_version_1_project_errors_still_name_the_field(tmp_path):
    path = tmp_path / "old.tsproj"
    path.write_text(json.dumps({"format": "trackstudio-project", "version": 1, "objects": []}))
    with pytest.raises(FormatError, match="video"):
        Project.load(path)


def test_removing_videos_keeps_the_current_one(video_file, tmp_path):
    project = Project(VideoInfo(str(video_file), 20, 32, 24, 25.0))
    for name in ("b", "c"):
        project.add_video(VideoInfo(str(tmp_path / f"{name}.mp4"), 5, 32, 24, 25.0))
    project.current = 2
    project.remove_video(0)
    assert [e.name for e in project.videos] == ["b.mp4", "c.mp4"] and project.entry.name == "c.mp4"
    project.remove_video(1)  # the current one: its neighbour becomes current
    assert project.entry.name == "b.mp4"
    with pytest.raises(ValueError, match="at least one video"):
        project.remove_video(0)


def test_the_next_save_removes_what_a_killed_writer_left(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_bytes(path, b"old")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a process id that no longer runs
    leftover = tmp_path / f".r.json.{dead}.abcd1234.tmp"
    leftover.write_bytes(b"half a file")
    live = tmp_path / f".r.json.{os.getppid()}.efgh5678.tmp"  # a live writer's (our parent's): kept
    live.write_bytes(b"being written")
    other = tmp_path / f".other.json.{dead}.abcd1234.tmp"  # another file's: not this save's business
    other.write_bytes(b"x")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert _files(tmp_path) == sorted([other.name, live.name, "r.json"])


def test_a_folder_swap_cut_between_its_renames_gets_the_old_folder_back(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    old = tmp_path / f".masks.{dead}.abcd1234.old.tmp"  # renamed away; the new one never arrived
    old.mkdir()
    (old / "00000.png").write_bytes(b"old frame")
    (tmp_path / f".masks.{dead}.efgh5678.tmp").mkdir()  # the new folder, half written
    assert atomic.remove_stale_temps(tmp_path / "masks") == [tmp_path / f".masks.{dead}.efgh5678.tmp"]
    assert _files(tmp_path) == ["masks"] and (tmp_path / "masks" / "00000.png").read_bytes() == b"old frame"
