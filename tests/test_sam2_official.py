"""The official SAM2.1 architecture (trackers.mask.sam2_official), checked without the real weights,
which cannot be downloaded here: module names and shapes against a fixture transcribed from the
official model definition, a strict save/load round trip of a randomly initialised model in the
official `{"model": state_dict}` layout, the exact pre- and post-processing, and one end-to-end
propagation (a shape/flow test only: random weights cannot segment anything)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.checkpoints import OFFICIAL_WEIGHTS, CheckpointError
from trackstudio.trackers.mask.sam2_official import build_model
from trackstudio.trackers.mask.sam2_official.config import IMAGE_MEAN, IMAGE_STD
from trackstudio.trackers.mask.sam2_official.hiera import _from_windows, _to_windows
from trackstudio.trackers.mask.sam2_official.memory import _axial_rope_angles, _rotate
from trackstudio.trackers.mask.sam2_official.transforms import (fill_small_holes, logits_to_video, mask_to_input,
                                                    preprocess_frame, prompt_points)

FIXTURE = Path(__file__).parent / "data" / "sam2.1_official_keys.json"
SIZES = ("tiny", "small", "base_plus", "large")


def official_shapes(size: str) -> dict[str, list[int]]:
    ref = json.loads(FIXTURE.read_text())
    return {**ref["shared"], **ref["trunk_and_neck"][size]}


@pytest.mark.parametrize("size", SIZES)
def test_state_dict_names_and_shapes_match_the_official_definition(size):
    with torch.device("meta"):  # shapes only: no memory for the large model's 224M parameters
        model = build_model(size)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    expected = official_shapes(size)
    assert sorted(set(expected) - set(ours)) == []
    assert sorted(set(ours) - set(expected)) == []
    assert {k: v for k, v in ours.items() if v != expected[k]} == {}


@pytest.mark.parametrize("size, millions", [("tiny", 38.9), ("small", 46.0), ("base_plus", 80.8), ("large", 224.4)])
def test_fixture_agrees_with_the_published_model_sizes_and_files(size, millions):
    """The fixture is a reading of the official code; the official README's parameter counts and
    the published checkpoint file sizes are independent checks of that reading."""
    total = sum(math.prod(shape) for shape in official_shapes(size).values())
    assert 0 <= total / 1e6 - millions < 0.1  # the table truncates to one decimal
    file_bytes = OFFICIAL_WEIGHTS[f"sam2.1_hiera_{size}"].size_bytes
    overhead = file_bytes - 4 * total  # float32 tensors plus the pickle's per-tensor records
    assert 0 < overhead < 2000 * len(official_shapes(size))


@pytest.fixture(scope="module")
def random_tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("tiny", image_size=128)
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def test_random_checkpoint_in_official_layout_loads_strictly_through_the_registry(random_tiny_checkpoint):
    saved = torch.load(random_tiny_checkpoint, weights_only=True)["model"]
    tracker = registry.build("sam2.1-hiera-tiny", config={"image_size": 128}, device="cpu",
                             checkpoint=str(random_tiny_checkpoint))
    loaded = tracker.model.state_dict()
    assert set(loaded) == set(saved)
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    spec = registry.spec("sam2.1-hiera-tiny")
    assert not spec.experimental and spec.kind == "mask"  # pre/post-processing follows the official code
    assert spec.weights == (OFFICIAL_WEIGHTS["sam2.1_hiera_tiny"],)
    assert registry.default_name("mask") not in {s.name for s in registry.specs("mask") if s.experimental}


def test_a_checkpoint_that_does_not_match_is_refused_naming_the_file(random_tiny_checkpoint, tmp_path):
    state = torch.load(random_tiny_checkpoint, weights_only=True)["model"]
    del state["no_obj_ptr"]
    broken = tmp_path / "broken.pt"
    torch.save({"model": state}, broken)
    with pytest.raises(CheckpointError, match="broken.pt"):
        registry.build("sam2.1-hiera-tiny", config={"image_size": 128}, device="cpu", checkpoint=str(broken))
    with pytest.raises(CheckpointError, match="sam2.1_hiera_tiny.pt"):  # tiny weights, small model
        registry.build("sam2.1-hiera-small", config={"image_size": 128}, device="cpu",
                       checkpoint=str(random_tiny_checkpoint))


def test_preprocessing_stretches_to_the_square_input_and_normalises_with_imagenet_statistics():
    frame = np.empty((48, 64, 3), np.uint8)
    frame[:] = (200, 100, 50)
    x = preprocess_frame(frame, 1024, torch.device("cpu"))
    assert x.shape == (1, 3, 1024, 1024)
    expected = (np.array([200, 100, 50]) / 255.0 - np.array(IMAGE_MEAN)) / np.array(IMAGE_STD)
    assert np.allclose(x[0].mean(dim=(1, 2)).numpy(), expected, atol=1e-5)
    assert IMAGE_MEAN == (0.485, 0.456, 0.406) and IMAGE_STD == (0.229, 0.224, 0.225)


def _official_video_frame(frame: np.ndarray, path: Path, image_size: int) -> np.ndarray:
    """The official video predictor's loading steps (sam2/utils/misc.py `_load_img_as_tensor`, then
    `load_video_frames`), on a lossless file: PIL open, RGB, default resize, / 255, mean/std."""
    Image.fromarray(frame).save(path)
    pixels = np.array(Image.open(path).convert("RGB").resize((image_size, image_size))) / 255.0
    chw = torch.from_numpy(pixels).permute(2, 0, 1).float()
    return ((chw - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]).numpy()


@pytest.mark.parametrize("hw, size", [((30, 50), 64), ((90, 70), 48)])  # enlarging, and shrinking
def test_video_frames_are_resized_like_the_official_video_predictor(hw, size, tmp_path):
    """PIL's default resize (bicubic on uint8), not bilinear on float pixels: the two differ by
    several 1/255 steps on a textured frame."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
    x = preprocess_frame(frame, size, torch.device("cpu"))[0].numpy()
    reference = _official_video_frame(frame, tmp_path / "00000.png", size)
    assert x.shape == reference.shape == (3, size, size)
    assert np.abs(x - reference).max() < 1e-6
    bilinear = torch.nn.functional.interpolate(torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0,
                                               size=(size, size), mode="bilinear", antialias=True)[0]
    bilinear = (bilinear - torch.tensor(IMAGE_MEAN)[:, None, None]) / torch.tensor(IMAGE_STD)[:, None, None]
    assert np.abs(x - bilinear.numpy()).max() * 0.229 > 5 / 255  # the former resize is ruled out


def test_prompts_are_scaled_to_model_input_pixels_with_the_box_first():
    pts = prompt_points(np.array([[32, 12, 1], [8, 36, 0]], np.float32), np.array([16, 24, 48, 36], np.float32),
                        (48, 64), 1024, "cpu")
    coords, labels = pts
    assert labels.tolist() == [[2, 3, 1, 0]]
    assert torch.allclose(coords[0], torch.tensor([[256.0, 512.0], [768.0, 768.0], [512.0, 256.0], [128.0, 768.0]]))
    mask = np.zeros((48, 64), bool)
    mask[:, :32] = True  # left half
    m = mask_to_input(mask, 128, "cpu")[0, 0]
    assert m.shape == (128, 128) and m[:, :63].all() and not m[:, 65:].any()


def test_low_resolution_logits_map_back_onto_the_video_frame():
    low = torch.full((1, 1, 32, 32), -5.0)
    low[0, 0, 8:16, 16:24] = 5.0  # a block a quarter of the way down, half way across
    video = logits_to_video(low, (120, 160))
    assert video.shape == (1, 1, 120, 160)
    mask = (video[0, 0] > 0).numpy()
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == (30, 60, 80, 120)


def test_small_holes_are_filled_and_large_ones_kept():
    logits = torch.full((1, 1, 32, 32), 4.0)
    logits[0, 0, 5, 5:7] = -3.0  # a 2-pixel hole
    logits[0, 0, 15:25, 15:25] = -3.0  # a 100-pixel hole
    filled = fill_small_holes(logits, max_area=8)
    assert (filled[0, 0, 5, 5:7] > 0).all()
    assert (filled[0, 0, 15:25, 15:25] < 0).all()
    assert torch.equal(fill_small_holes(logits, 0), logits)


def test_window_partition_round_trips_with_padding():
    x = torch.randn(2, 13, 10, 5)
    windows, padded = _to_windows(x, 4)
    assert windows.shape == (2 * 4 * 3, 4, 4, 5) and padded == (16, 12)
    assert torch.equal(_from_windows(windows, 4, padded, (13, 10)), x)


def test_rotary_encoding_makes_attention_depend_on_relative_position_only():
    angles = _axial_rope_angles(head_dim=16, side=8, theta=10000.0, device="cpu")
    cos, sin = angles.cos(), angles.sin()
    q = torch.randn(16).expand(64, 16)
    k = torch.randn(16).expand(64, 16)
    rq, rk = _rotate(q, cos, sin), _rotate(k, cos, sin)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    score = lambda a, b: float(rq[a] @ rk[b])  # noqa: E731  (grid index = y * 8 + x)
    assert score(0, 1) == pytest.approx(score(8 * 3 + 4, 8 * 3 + 5), abs=1e-4)  # both: one step right
    assert score(0, 8) == pytest.approx(score(2, 10), abs=1e-4)  # both: one step down


def test_the_tracker_encodes_frames_as_the_official_video_predictor_loads_them(random_tiny_checkpoint, tmp_path):
    tracker = registry.build("sam2.1-hiera-tiny", config={"image_size": 128}, device="cpu",
                             checkpoint=str(random_tiny_checkpoint))
    encoded = []
    encode_image = tracker.model.encode_image
    tracker.model.encode_image = lambda x: encoded.append(x.clone()) or encode_image(x)
    frame = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    tracker.set_video([frame])
    tracker.add_prompt(0, 1, Prompt(point=np.array([40.0, 30.0], np.float32)))
    assert len(encoded) == 1
    reference = _official_video_frame(frame, tmp_path / "00000.png", 128)
    assert np.abs(encoded[0][0].numpy() - reference).max() < 1e-6


def test_end_to_end_propagation_yields_video_sized_masks(random_tiny_checkpoint):
    """Shape and flow only (random weights): prompts, memory bank, both directions, attention."""
    tracker = registry.build("sam2.1-hiera-tiny", config={"image_size": 128, "return_attention": True},
                             device="cpu", checkpoint=str(random_tiny_checkpoint))
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(3)]
    tracker.set_video(frames)
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    result = tracker.add_prompt(0, 1, Prompt(mask=mask))
    assert np.array_equal(result.mask, mask) and result.visible
    clicked = tracker.add_prompt(2, 2, Prompt(clicks=np.array([[40, 30, 1]]), box=np.array([30, 20, 50, 40])))
    assert clicked.mask.shape == (60, 80)

    forward = list(tracker.propagate(0))
    assert [r.frame_idx for r in forward] == [0, 1, 2]
    assert np.array_equal(forward[0].objects[1].mask, mask)
    assert sorted(forward[1].objects) == [1] and sorted(forward[2].objects) == [1, 2]
    tracked = forward[1].objects[1]
    assert tracked.mask.shape == (60, 80) and tracked.mask.dtype == bool
    assert tracked.attention is not None and tracked.attention.shape == (8, 8)
    assert 0.0 <= tracked.score <= 1.0
    assert tracked.visible == bool(tracked.mask.any())

    backward = list(tracker.propagate(2, reverse=True))
    assert [r.frame_idx for r in backward] == [2, 1, 0]
    assert sorted(backward[0].objects) == [2] and sorted(backward[2].objects) == [1, 2]
    assert np.array_equal(backward[2].objects[1].mask, mask)  # the keyframe is the prompt itself
