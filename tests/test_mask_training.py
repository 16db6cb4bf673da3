"""sam2-lite's propagation network: the training command runs, checkpoints and resumes; the composite
clip generator writes what the trainer reads."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from trackstudio.trackers.mask.sam2_lite.composite import cut_object, make_clip, write_clip
from trackstudio.trackers.mask.sam2_lite.train import list_clips, main, read_mask
from trackstudio.trackers.training import split_by_clip
from trackstudio.trackers.mask.sam2_lite.trained_propagation import load_weights


def _write_davis_clip(folder, seed: int, num_frames: int = 6, size=(128, 224)):
    """A textured square moving over a textured background, in the DAVIS layout."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h))
    patch = cv2.resize(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8), (40, 40), interpolation=cv2.INTER_NEAREST)
    (folder / "frames").mkdir(parents=True)
    (folder / "masks").mkdir()
    for t in range(num_frames):
        frame, mask = background.copy(), np.zeros((h, w), np.uint8)
        x, y = 20 + 8 * t, 30 + 3 * t
        frame[y:y + 40, x:x + 40] = patch
        mask[y:y + 40, x:x + 40] = 255
        cv2.imwrite(str(folder / "frames" / f"{t:05d}.jpg"), frame)
        Image.fromarray(mask).save(folder / "masks" / f"{t:05d}.png")


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "clips"
    for i in range(3):
        _write_davis_clip(root / f"clip{i}", seed=i)
    return root


def _args(data_root, tmp_path, max_steps: int) -> list[str]:
    return ["--data_root", str(data_root), "--cache_dir", str(tmp_path / "cache"), "--save_dir", str(tmp_path / "run"),
            "--export", str(tmp_path / "weights.pt"), "--max_steps", str(max_steps), "--val_every", "2",
            "--save_every", "1", "--batch_size", "2", "--sequence_length", "3", "--max_skip", "1",
            "--crop", "64x112", "--val_frames", "4", "--hidden", "24"]


def test_training_runs_two_steps_and_resumes(data_root, tmp_path, capsys):
    assert main(_args(data_root, tmp_path, 2)) == 0
    latest = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert latest["step"] == 2 and latest["history"]["val_step"] == [2]
    assert (tmp_path / "run" / "best.pth").is_file()
    assert (tmp_path / "run" / "visualizations" / "curves.png").is_file()
    assert (tmp_path / "run" / "visualizations" / "predictions_0000002.png").is_file()
    tags = {json.loads(line)["tag"] for line in (tmp_path / "run" / "logs" / "scalars.jsonl").read_text().splitlines()}
    assert {"train/total", "val/J"} <= tags
    model, meta = load_weights(tmp_path / "weights.pt")  # strict, weights_only
    assert meta["step"] == 2 and model.config.hidden == 24

    _write_davis_clip(tmp_path / "extra" / "composite0", seed=7)  # training-only clips join on resume
    assert main(_args(data_root, tmp_path, 3) + ["--resume", str(tmp_path / "run" / "latest.pth"),
                                                "--extra_train_root", str(tmp_path / "extra")]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "2 training (+ 1 extra) / 1 validation clips" in out
    resumed = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert resumed["step"] == 3
    changed = [k for k in latest["model"] if not torch.equal(latest["model"][k], resumed["model"][k])]
    assert changed  # the third step trained on from the saved weights


def test_validation_clips_are_split_by_clip_and_fixed(data_root):
    clips = list_clips([str(data_root)])
    train, val = split_by_clip(clips, 0.34)
    assert len(val) == 1 and not set(train) & set(val)
    assert split_by_clip(clips, 0.34) == (train, val)


def test_bad_data_root_is_a_clear_error(tmp_path, capsys):
    assert main(["--data_root", str(tmp_path / "missing"), "--cache_dir", str(tmp_path / "cache")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_composite_clip_has_the_occluded_target_as_visible_parts(tmp_path):
    rng = np.random.default_rng(0)
    background = [np.full((96, 160, 3), 90, np.uint8) for _ in range(8)]
    square = np.zeros((96, 160), bool)
    square[30:60, 40:80] = True
    colour = np.zeros((96, 160, 3), np.uint8)
    colour[...] = (200, 40, 40)
    target = cut_object(colour, square)
    occluder = cut_object(colour[..., ::-1].copy(), square)
    frames, masks = make_clip(rng, background, target, occluder, leave=False)
    write_clip(tmp_path / "comp", frames, masks)
    written = [read_mask(p) for p in sorted((tmp_path / "comp" / "masks").glob("*.png"))]
    assert len(written) == 8 and all(set(np.unique(m)) <= {0, 1, 2} for m in written)
    assert all(np.array_equal(a, b) for a, b in zip(written, masks))
    # where the occluder is, the target is not: ids are the visible parts
    assert any((m == 2).any() for m in written) and all((m == 1).any() or (m == 2).any() for m in written)


def test_procedural_clip_paints_flat_surfaces_and_bars_in_front():
    from trackstudio.trackers.mask.sam2_lite.composite import procedural_clip
    from trackstudio.trackers.point.synthetic import ClipSpec

    spec = ClipSpec(num_frames=4, height=96, width=160, num_objects=(2, 3), object_radius=(12, 30))
    frames, masks = procedural_clip(np.random.default_rng(3), spec, flat_share=1.0, num_bars=2)
    assert len(frames) == len(masks) == 4 and frames[0].shape == (96, 160, 3)
    ids = sorted(set(np.unique(np.stack(masks)).tolist()))
    assert ids[0] == 0 and ids == list(range(len(ids)))  # background 0, sprites and bars 1..K
    bar_id = ids[-1]  # the bars are drawn last, in front of everything
    assert all((m == bar_id).any() for m in masks)
    # every surface is painted flat: inside one object, colours vary by the noise and the soft light only
    for obj_id in ids[:-1]:
        inside = frames[0][masks[0] == obj_id].astype(float)
        if len(inside) > 50:
            assert inside.std(0).max() < 25, obj_id
    # flat_share 0 and no bars: the generator's textures stay, and no object is added
    frames, masks = procedural_clip(np.random.default_rng(3), spec, flat_share=0.0)
    textured = frames[0][masks[0] == 0].astype(float)
    assert textured.std(0).max() > 25 and np.stack(masks).max() < bar_id


def test_init_starts_a_new_stage_from_exported_weights(data_root, tmp_path, capsys):
    assert main(_args(data_root, tmp_path, 1)) == 0
    exported = load_weights(tmp_path / "weights.pt")[0].state_dict()
    stage = tmp_path / "stage2"
    args = _args(data_root, tmp_path, 1) + ["--init", str(tmp_path / "weights.pt"), "--val_passes", "3"]
    args[args.index("--save_dir") + 1] = str(stage)
    args[args.index("--export") + 1] = str(stage / "weights.pt")
    assert main(args + ["--eval_only"]) == 0
    assert "initialised from" in capsys.readouterr().out
    assert main(args) == 0
    stage_ckpt = torch.load(stage / "latest.pth", map_location="cpu", weights_only=True)
    assert stage_ckpt["step"] == 1  # a new schedule, counted from 0
    # one step from the exported weights: close to them, not a fresh random network
    drift = max(float((stage_ckpt["model"][k] - exported[k]).abs().max()) for k in exported)
    assert 0 < drift < 0.05


def test_pingpong_order_plays_the_clip_back_and_forth():
    from trackstudio.trackers.mask.sam2_lite.train import pingpong_order

    assert pingpong_order(4, 1) == [0, 1, 2, 3]
    assert pingpong_order(4, 3) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]


def test_mirrored_copy_is_pasted_beside_the_object_and_is_not_the_object():
    from trackstudio.trackers.mask.sam2_lite.composite import paste_mirrored_copy

    frame = np.zeros((60, 120, 3), np.uint8)
    mask = np.zeros((60, 120), bool)
    mask[10:40, 10:30] = True
    frame[10:40, 10:20] = 200  # the object's left half is bright: the copy's right half must be
    out, target, copy = paste_mirrored_copy(frame, mask, gap=8, dy=2)
    assert (target == mask).all() and not (target & copy).any()
    assert copy[12:42, 38:58].all() and copy.sum() == mask.sum()
    assert (out[12:42, 48:58] == 200).all() and (out[12:42, 38:48] == 0).all()
    assert paste_mirrored_copy(frame, mask, gap=8, dy=30) is None  # would leave the frame


def test_two_stages_weights_average_into_weights_siamfc_mask_loads(tmp_path):
    """scripts/average_weights.py's mean of sam2-lite propagation weights (as siamfc-mask's mask weights are made)."""
    from trackstudio.trackers import registry
    from trackstudio.trackers.mask.sam2_lite.propagation_net import PropagationNet, PropagationNetConfig
    from trackstudio.trackers.mask.sam2_lite.trained_propagation import export_weights
    from trackstudio.trackers.training import average_weights

    torch.manual_seed(0)
    stages = [PropagationNet(PropagationNetConfig()) for _ in range(2)]
    for step, stage in zip((1500, 600), stages):
        export_weights(stage, tmp_path / f"stage{step}.pt", {"step": step, "max_side": 864})
    average_weights([tmp_path / "stage1500.pt", tmp_path / "stage600.pt"], tmp_path / "mean.pt")
    model, meta = load_weights(tmp_path / "mean.pt")
    for key, value in model.state_dict().items():
        first, second = (stage.state_dict()[key] for stage in stages)
        if value.is_floating_point():
            torch.testing.assert_close(value, ((first.double() + second.double()) / 2).to(value.dtype))
    assert meta["max_side"] == 864 and meta["weights_version"] == 2 and "step" not in meta
    tracker = registry.build("siamfc-mask", device="cpu", checkpoint=str(tmp_path / "mean.pt"))
    loaded = tracker.masks.network.state_dict()
    torch.testing.assert_close(loaded["mask_head.weight"], model.state_dict()["mask_head.weight"])


def test_another_seed_keeps_the_split_that_split_seed_names(data_root, tmp_path):
    from trackstudio.trackers.mask.sam2_lite.train import build_parser, cached_clips

    def split(*extra):
        args = build_parser().parse_args(_args(data_root, tmp_path, 1) + list(extra))
        train, val, _, _ = cached_clips(args)
        return sorted(train), sorted(val)

    clips = list_clips([str(data_root)])
    seeds = [s for s in range(20) if split_by_clip(clips, 0.2, s) != split_by_clip(clips, 0.2, 0)]
    assert seeds, "no seed draws another split of the three clips"
    assert split("--seed", str(seeds[0])) != split()  # the seed draws the split by default
    assert split("--seed", str(seeds[0]), "--split_seed", "0") == split()
