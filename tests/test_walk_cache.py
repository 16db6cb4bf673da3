"""One pass through a video (`trackstudio track`, `trackstudio.track`) keeps few decoded frames in RAM."""
from __future__ import annotations

import cv2
import pytest
from synthetic import texture

from trackstudio.app.api import track
from trackstudio.app.cli import main
from trackstudio.app.model import AnnotationStore, FrameState
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.video import WALK_CACHE_BYTES, FrameCache, VideoInfo

HEIGHT, WIDTH = 480, 854


@pytest.fixture()
def long_clip(tmp_path):
    """More 854x480 frames than WALK_CACHE_BYTES holds (links to one JPEG), a point prompt on frame 0."""
    frame_bytes = HEIGHT * WIDTH * 3
    num_frames = WALK_CACHE_BYTES // frame_bytes + 20
    folder = tmp_path / "frames"
    folder.mkdir()
    image = folder.parent / "frame.jpg"
    cv2.imwrite(str(image), texture(HEIGHT, WIDTH, seed=3))
    for frame_idx in range(num_frames):
        (folder / f"{frame_idx:05d}.jpg").symlink_to(image)
    store = AnnotationStore()
    point = store.add_object("point", name="corner").obj_id
    store.set_state(point, 0, FrameState(point=[400.0, 200.0], keyframe=True))
    prompts = tmp_path / "prompts.json"
    save_json(store, VideoInfo(str(folder), num_frames, WIDTH, HEIGHT, 30.0), prompts)
    return folder, prompts, num_frames


@pytest.fixture()
def cache_sizes(monkeypatch):
    """(frames, bytes) held by the frame cache after every frame put into it."""
    sizes = []
    put = FrameCache.put

    def recording_put(cache, frame_idx, frame):
        stored = put(cache, frame_idx, frame)
        sizes.append((len(cache), cache.nbytes))
        return stored

    monkeypatch.setattr(FrameCache, "put", recording_put)
    return sizes


@pytest.mark.parametrize("path", ["command", "library"])
def test_a_tracking_pass_keeps_the_frame_cache_small(tmp_path, long_clip, cache_sizes, path):
    folder, prompts, num_frames = long_clip
    out = tmp_path / "result.json"
    if path == "command":
        assert main(["track", str(folder), "--prompts", str(prompts), "--out", str(out), "--quiet",
                     "--point-tracker", "lk"]) == 0
        store, _ = load_json(out)
    else:
        store = track(str(folder), str(prompts), point_tracker="lk").store
    assert store.frames(store.objects[0].obj_id) == list(range(num_frames))  # every frame was walked
    assert len(cache_sizes) >= num_frames  # ... and decoded into the cache once
    assert max(nbytes for _, nbytes in cache_sizes) <= WALK_CACHE_BYTES
    assert max(frames for frames, _ in cache_sizes) < num_frames - 10
