"""The official CoTracker3 architecture (trackers.point.cotracker3), checked without the real
weights, which cannot be downloaded here: module names and shapes against a fixture transcribed from
the official model definition, a strict save/load round trip of a randomly initialised model in the
official plain-state-dict layout, the coordinate conventions, and end-to-end runs on tiny clips
(shape/flow and prompt-anchoring behaviour only: random weights cannot track anything)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.checkpoints import OFFICIAL_WEIGHTS, CheckpointError
from trackstudio.trackers.point.cotracker3 import CoTracker3
from trackstudio.trackers.point.cotracker3.model import (CORR_LEVELS, LATENT_DIM, TrackEstimate, motion_encoding,
                                             patch_offsets, sample_points, sincos_1d)

FIXTURE = Path(__file__).parent / "data" / "cotracker3_official_keys.json"
FILES = {"online": ("scaled_online.pth", 16), "offline": ("scaled_offline.pth", 60)}


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_state_dict_names_and_shapes_match_the_official_definition(mode):
    filename, window = FILES[mode]
    expected = json.loads(FIXTURE.read_text())[filename]
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in CoTracker3(window).state_dict().items()}
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}


def test_fixture_agrees_with_the_published_file_sizes():
    """Independent check of the fixture: the two official files differ only by the length of the
    time-embedding buffer (60 vs 16 frames of 1110 float32 values), and both are the fixture's
    tensors in float32 plus a little pickle overhead."""
    ref = json.loads(FIXTURE.read_text())
    online, offline = OFFICIAL_WEIGHTS["cotracker3_online"], OFFICIAL_WEIGHTS["cotracker3_offline"]
    assert abs((offline.size_bytes - online.size_bytes) - (60 - 16) * 1110 * 4) < 256
    for spec, filename in ((online, "scaled_online.pth"), (offline, "scaled_offline.pth")):
        tensors = ref[filename]
        overhead = spec.size_bytes - 4 * sum(math.prod(s) for s in tensors.values())
        assert 0 < overhead < 2000 * len(tensors)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cotracker3")
    paths = {}
    for mode, (filename, window) in FILES.items():
        paths[mode] = folder / filename
        torch.save(CoTracker3(window).state_dict(), paths[mode])
    return paths


def test_random_checkpoint_in_official_layout_loads_strictly_through_the_registry(checkpoints):
    saved = torch.load(checkpoints["online"], weights_only=True)
    tracker = registry.build("cotracker3-online", device="cpu", checkpoint=str(checkpoints["online"]))
    loaded = tracker.model.state_dict()
    assert set(loaded) == set(saved) and all(torch.equal(loaded[k], saved[k]) for k in saved)
    for name, key in (("cotracker3-online", "cotracker3_online"), ("cotracker3-offline", "cotracker3_offline")):
        spec = registry.spec(name)
        assert not spec.experimental and spec.kind == "point" and spec.weights == (OFFICIAL_WEIGHTS[key],)
    assert not registry.spec(registry.default_name("point")).experimental
    # the offline file has a 60-frame time embedding: not an online checkpoint
    with pytest.raises(CheckpointError, match="scaled_offline.pth"):
        registry.build("cotracker3-online", device="cpu", checkpoint=str(checkpoints["offline"]))


def test_time_embedding_and_motion_encoding_follow_the_official_formulas():
    emb = sincos_1d(1110, torch.arange(16))
    assert emb.shape == (1, 16, 1110)
    assert torch.allclose(emb[0, 3, 0], torch.tensor(math.sin(3.0)))
    assert torch.allclose(emb[0, 3, 555], torch.tensor(math.cos(3.0)))
    assert torch.allclose(emb[0, 3, 1], torch.tensor(math.sin(3.0 / 10000 ** (1 / 555))), atol=1e-6)
    enc = motion_encoding(torch.tensor([[0.5, -0.25, 0.125, 1.0]]))
    assert enc.shape == (1, 84)  # 1110 = 2 + 4 * 256 + 84
    assert torch.allclose(enc[0, 4 + 3 * 4 + 1], torch.tensor(math.sin(-0.25 * 8)))
    assert torch.allclose(enc[0, 44 + 3 * 4 + 1], torch.tensor(math.cos(-0.25 * 8)))


def test_sampling_uses_pixel_centres_at_integers_and_patches_are_x_major():
    fmap = torch.arange(6 * 8, dtype=torch.float32).view(1, 1, 6, 8)  # value = 8 * y + x
    xy = torch.tensor([[[[3.0, 2.0], [3.5, 2.0], [7.0, 5.0], [20.0, 1.0]]]])
    assert sample_points(fmap, xy).flatten().tolist() == [19.0, 19.5, 47.0, 15.0]  # border clamp
    offsets = patch_offsets(3, "cpu")
    assert offsets.shape == (7, 7, 2)
    assert offsets[0, 6].tolist() == [-3.0, 3.0] and offsets[6, 0].tolist() == [3.0, -3.0]


def _clip(num_frames: int, hw=(48, 64)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for _ in range(num_frames)]


def test_online_tracker_runs_end_to_end_on_a_tiny_clip(checkpoints):
    """Shape/flow only (random weights): real frames through the real network."""
    tracker = registry.build("cotracker3-online", config={"iters": 1, "return_attention": True}, device="cpu",
                             checkpoint=str(checkpoints["online"]))
    tracker.set_video(_clip(4))
    tracker.add_prompt(0, 1, Prompt(point=[10.0, 20.0]))
    tracker.add_prompt(2, 2, Prompt(point=[30.0, 30.0]))
    results = list(tracker.propagate(0))
    assert [r.frame_idx for r in results] == [0, 1, 2, 3]
    assert sorted(results[1].objects) == [1] and sorted(results[3].objects) == [1, 2]
    assert results[2].objects[2].point.tolist() == [30.0, 30.0] and results[2].objects[2].visible
    moved = results[3].objects[1]
    assert moved.point.shape == (2,) and np.isfinite(moved.point).all() and 0.0 <= moved.score <= 1.0
    assert moved.attention.shape == (96, 128) and 0.0 <= moved.attention.min() <= moved.attention.max() <= 1.0


class _CheapNetwork:
    """Stand-in for the CNN and the update transformer (far too slow on a CPU for long test clips):
    random small feature maps and a refinement that nudges every track by +0.25 feature units per
    frame, recording which frames were encoded, so the window logic can be checked on long walks."""

    def __init__(self):
        self.frames_seen: list[int] = []

    def install(self, tracker):
        def model_frames(frame_idxs):
            self.frames_seen.extend(frame_idxs)
            return torch.zeros(len(frame_idxs), 3, 48, 64)

        def pyramid(frames):
            maps = F.normalize(torch.randn(frames.shape[0], LATENT_DIM, 12, 16), dim=1)
            return [F.avg_pool2d(maps, 2 ** level) if level else maps for level in range(CORR_LEVELS)]

        def refine(pyramid, patches, init, iters):
            assert len(patches) == CORR_LEVELS and patches[0].shape[0] == init.coords.shape[2]
            return TrackEstimate(init.coords + 0.25, init.vis + 5.0, init.conf + 5.0)

        tracker._model_frames = model_frames
        tracker.model.feature_pyramid = pyramid
        tracker.model.refine = refine


@pytest.mark.parametrize("name", ["cotracker3-online", "cotracker3-offline"])
def test_long_walks_visit_every_frame_once_and_prompts_reanchor(name, checkpoints):
    mode = name.split("-")[1]
    tracker = registry.build(name, config={"iters": 1}, device="cpu", checkpoint=str(checkpoints[mode]))
    features = _CheapNetwork()
    features.install(tracker)
    # online: three 16-frame windows; offline: one window over all 75 frames, as the official model
    num_frames, anchor = (25, 20) if mode == "online" else (75, 65)
    tracker.set_video(_clip(num_frames, hw=(24, 32)))
    tracker.add_prompt(5, 1, Prompt(point=[4.0, 6.0]))
    tracker.add_prompt(anchor, 1, Prompt(point=[20.0, 10.0]))
    tracker.add_prompt(12, 2, Prompt(point=[8.0, 8.0], visible=False))  # hidden there: not a query
    tracker.add_prompt(9, 3, Prompt(point=[16.0, 16.0]))

    results = list(tracker.propagate(0))
    assert [r.frame_idx for r in results] == list(range(num_frames))
    assert sorted(features.frames_seen) == list(range(num_frames))
    assert 1 not in results[4].objects and 1 in results[5].objects
    assert results[5].objects[1].point.tolist() == [4.0, 6.0]
    assert results[anchor].objects[1].point.tolist() == [20.0, 10.0]
    assert results[anchor + 1].objects[1].point.shape == (2,)
    assert results[12].objects[2].visible is False and 2 not in results[13].objects
    # each window nudges the tracks it runs by 0.25 feature units; running tracks carry the previous
    # window's estimate into the next, so the drift counts the windows a track went through
    unit = 0.25 * 4 * np.array([31 / 511, 23 / 383])  # feature units -> video pixels (32 x 24 clip)
    windows_obj1, windows_obj3 = (2, 3) if mode == "online" else (1, 1)
    assert np.allclose(results[-1].objects[1].point, [20.0, 10.0] + windows_obj1 * unit, atol=1e-4)
    assert np.allclose(results[-1].objects[3].point, [16.0, 16.0] + windows_obj3 * unit, atol=1e-4)
    assert results[-1].objects[3].visible  # sigmoid(5) ** 2 > 0.6

    backward = list(tracker.propagate(num_frames - 1, reverse=True))
    assert [r.frame_idx for r in backward] == list(range(num_frames - 1, -1, -1))
    by_frame = {r.frame_idx: r.objects for r in backward}
    assert 1 not in by_frame[anchor + 1] and by_frame[anchor][1].point.tolist() == [20.0, 10.0]
    assert 3 not in by_frame[num_frames - 1] and 3 in by_frame[8]


def _official_time_embedding(emb: np.ndarray, length: int) -> np.ndarray:
    """Linear resampling of (T, D) rows with half-pixel centres (F.interpolate(mode="linear"),
    align_corners=False, as the official interpolate_time_embed calls it), written out."""
    t = emb.shape[0]
    out = np.empty((length, emb.shape[1]))
    for i in range(length):
        src = max((i + 0.5) * t / length - 0.5, 0.0)
        lo = min(int(np.floor(src)), t - 1)
        hi = min(lo + 1, t - 1)
        out[i] = (1 - (src - lo)) * emb[lo] + (src - lo) * emb[hi]
    return out


def test_offline_tracks_a_clip_longer_than_its_window_as_one_window(checkpoints):
    """The official offline model runs the whole clip as one window, its 60-frame time embedding
    interpolated to the clip's length."""
    tracker = registry.build("cotracker3-offline", config={"iters": 1}, device="cpu",
                             checkpoint=str(checkpoints["offline"]))
    # small random feature maps stand in for the CNN (too slow on a CPU); the refinement is the real one
    cheap = _CheapNetwork()
    cheap.install(tracker)
    tracker.model.refine = CoTracker3.refine.__get__(tracker.model)
    windows, embeddings = [], []  # frames of each refined window; time embeddings it used
    refine, time_embedding = tracker.model.refine, tracker.model.time_embedding

    def recording_refine(pyramid, patches, init, iters):
        windows.append(init.coords.shape[1])
        return refine(pyramid, patches, init, iters)

    def recording_time_embedding(length):
        embeddings.append(time_embedding(length))
        return embeddings[-1]

    tracker.model.refine, tracker.model.time_embedding = recording_refine, recording_time_embedding

    num_frames = 75
    tracker.set_video(_clip(num_frames, hw=(24, 32)))
    tracker.add_prompt(3, 1, Prompt(point=[4.0, 6.0]))
    tracker.add_prompt(70, 2, Prompt(point=[20.0, 10.0]))
    results = list(tracker.propagate(0))
    assert [r.frame_idx for r in results] == list(range(num_frames))
    assert windows == [num_frames] and sorted(cheap.frames_seen) == list(range(num_frames))
    assert len(embeddings) == 1 and embeddings[0].shape == (1, num_frames, 1110)
    checkpoint_emb = torch.load(checkpoints["offline"], weights_only=True)["time_emb"][0].double().numpy()
    assert checkpoint_emb.shape == (60, 1110)
    assert np.abs(embeddings[0][0].double().numpy() - _official_time_embedding(checkpoint_emb, num_frames)).max() < 1e-5
    assert np.isfinite(results[-1].objects[1].point).all() and results[-1].objects[2].point.shape == (2,)
