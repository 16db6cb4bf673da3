"""The box refinement + presence head: crop alignment, shapes, weights file, training pieces."""
import numpy as np
import torch

from trackstudio.trackers.box.refine_head import BoxRefineHead, RefineHeadConfig, align_to_crop, load_head, save_head
from trackstudio.trackers.box.synthetic_clips import generate_box_clip, generate_sprite_clip
from trackstudio.trackers.point.synthetic import ClipSpec, generate_clip
from trackstudio.trackers.box.train_head import compute_losses, to_crop


def test_align_to_crop_moves_a_marker_to_where_the_current_crop_sees_it():
    # past crop: centre (100, 100), side 64 px over a 32-cell map (2 px per cell); marker at frame (110, 90)
    fmap = torch.zeros(1, 1, 32, 32)
    fmap[0, 0, 11, 21] = 1.0  # cell (row, col) whose centre is frame x = 68 + 21.5 * 2 = 111, y = 68 + 11.5 * 2 = 91
    past = torch.tensor([[100.0, 100.0, 64.0]])
    same = align_to_crop([fmap], past, past)[0]
    torch.testing.assert_close(same, fmap)
    current = torch.tensor([[111.0 - 8.0, 91.0 + 6.0, 32.0]])  # 1 px per cell, marker 8 px right / 6 px up of centre
    moved = align_to_crop([fmap], past, current)[0]
    row, col = np.unravel_index(int(moved[0, 0].argmax()), (32, 32))
    assert (abs(row + 0.5 - (16 - 6)) <= 1.0) and (abs(col + 0.5 - (16 + 8)) <= 1.0)


def test_head_shapes_and_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    config = RefineHeadConfig(dim=16, query_dim=32, n_heads=2, n_points=4, iters=2)
    head = BoxRefineHead(config).eval()
    template_maps = [torch.randn(2, c, 256 // s, 256 // s) for c, s in zip(config.in_channels, config.strides)]
    maps = [torch.randn(2, 2, c, 256 // s, 256 // s) for c, s in zip(config.in_channels, config.strides)]  # 2 frames
    boxes = torch.tensor([[96.0, 96.0, 160.0, 160.0], [40.0, 60.0, 100.0, 90.0]])
    query, cells = head.template(template_maps, boxes)
    assert query.shape == (2, 32) and cells.shape == (2, 49, 16)
    stages, presence, iou = head(query, cells, maps, boxes)
    assert len(stages) == 2 and stages[-1].shape == (2, 4)
    torch.testing.assert_close(stages[0], boxes)  # the box regressor starts at zero: no move before training
    assert presence.shape == (2,) and ((iou >= 0) & (iou <= 1)).all()
    path = tmp_path / "head.pt"
    save_head(head, path, {"step": 0})
    loaded = load_head(path)
    _, presence_loaded, _ = loaded(query, cells, maps, boxes)
    torch.testing.assert_close(presence_loaded, presence, atol=1e-2, rtol=1e-2)  # float16 on disk


def test_losses_ignore_the_box_of_absent_targets():
    true = torch.tensor([[10.0, 10.0, 50.0, 50.0], [10.0, 10.0, 50.0, 50.0]])
    far = torch.tensor([[100.0, 100.0, 140.0, 140.0], [100.0, 100.0, 140.0, 140.0]])
    batch = {"true": true, "present": torch.tensor([1.0, 0.0])}
    good = compute_losses([torch.stack([true[0], far[1]])], torch.tensor([5.0, -5.0]), torch.tensor([1.0, 0.0]), batch)
    bad = compute_losses([far], torch.tensor([5.0, -5.0]), torch.tensor([1.0, 0.0]), batch)
    assert float(good["box"]) < 1e-4 < float(bad["box"])
    assert float(good["presence"]) < 0.01


def test_frame_boxes_map_into_crop_coordinates():
    geom = np.array([100.0, 50.0, 128.0])  # 256-px crop over 128 frame px: x2
    assert np.allclose(to_crop(np.array([100.0, 50.0, 132.0, 66.0]), geom), [128.0, 128.0, 192.0, 160.0])


def test_synthetic_clips_hide_the_target_and_bring_it_back():
    for scenario in ("leaves_view", "covered"):
        frames, masks = generate_box_clip(np.random.default_rng(1), scenario=scenario)
        area = masks.sum((1, 2))
        hidden = np.flatnonzero(area == 0)
        assert frames.shape == (30, 256, 448, 3) and len(hidden) >= 3
        assert area[0] > 0 and area[-1] > 0  # seen at the start and again at the end


def test_sprite_clips_box_each_sprites_visible_part():
    spec = ClipSpec(num_frames=12, height=120, width=200, object_radius=(25, 40), brightness_drift=0.001)
    frames, boxes, present, labels = generate_sprite_clip(np.random.default_rng(5), spec, min_area=200)
    owners = generate_clip(np.random.default_rng(5), spec).owners  # the same clip: the same seed
    assert frames.shape == (12, 120, 200, 3) and boxes.shape[:2] == present.shape == (12, boxes.shape[1])
    assert boxes.shape[1] >= 1 and present[0].all()
    assert np.isnan(boxes[~present]).all() and not np.isnan(boxes[present]).any()
    ids = [k for k in range(int(owners.max()) + 1) if (owners[0] == k).sum() >= 200]
    for j, k in enumerate(ids):
        for t in np.flatnonzero(present[:, j]):
            ys, xs = np.nonzero(owners[t] == k)
            assert list(boxes[t, j]) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert np.array_equal(labels == j + 1, owners == k)


def test_training_runs_two_steps_and_resumes(tmp_path, capsys):
    """scripts/train_box_head.py's command on three tiny DAVIS-layout clips: it caches the crop maps,
    trains, validates, checkpoints and exports; a resumed run trains on from the saved weights."""
    from test_mask_training import _write_davis_clip

    from trackstudio.trackers.box.train_head import main

    for i in range(3):
        _write_davis_clip(tmp_path / "clips" / f"clip{i}", seed=i, num_frames=8)
    args = ["--data_root", str(tmp_path / "clips"), "--cache_dir", str(tmp_path / "cache"), "--save_dir",
            str(tmp_path / "run"), "--export", str(tmp_path / "head.pt"), "--val_every", "2", "--save_every", "1",
            "--batch_size", "2", "--val_batches", "1", "--threads", "2"]
    assert main(args + ["--max_steps", "2"]) == 0
    latest = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert latest["step"] == 2 and latest["history"]["val_step"] == [2]
    assert (tmp_path / "run" / "best.pth").is_file() and (tmp_path / "run" / "curves.png").is_file()
    assert isinstance(load_head(tmp_path / "head.pt"), torch.nn.Module)  # strict, weights_only

    assert main(args + ["--max_steps", "3", "--resume", str(tmp_path / "run" / "latest.pth")]) == 0
    resumed = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert resumed["step"] == 3
    assert [k for k in latest["model"] if not torch.equal(latest["model"][k], resumed["model"][k])]
    assert "resum" in capsys.readouterr().out.lower()
