"""Self-training data for the point tracker (trackers/point/pseudo.py): pseudo tracks on clips with
object masks keep what is consistent and on the object, and train.py mixes them with procedural
clips, resumes and starts fine-tuning stages from given weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trackstudio.trackers import registry
from trackstudio.trackers.point.pseudo import PseudoSpec, pseudo_tracks, write_pseudo_clip
from trackstudio.trackers.point.synthetic import ClipSpec, generate_dataset, make_texture
from trackstudio.trackers.point.tracker import default_weights

needs_weights = pytest.mark.skipif(not default_weights().is_file(), reason="trained point tracker weights are missing")


def square_clip(height=160, width=320, num_frames=20, side=64, speed=4, gone=()):
    """A textured square moving right over noise: frames, its true masks (T, H, W) and the true
    motion of its points (T, 2) (offset from frame 0). On the frames `gone` its mask is empty (as if
    something covered it) while the frames still show it."""
    rng = np.random.default_rng(5)
    background = make_texture(rng, height, width, "noise")
    square = make_texture(rng, side, side, "blobs")
    frames, masks, offsets = [], [], []
    for t in range(num_frames):
        x0, y0 = 30 + speed * t, (height - side) // 2
        frame = background.copy()
        frame[y0:y0 + side, x0:x0 + side] = square
        mask = np.zeros((height, width), bool)
        if t not in gone:
            mask[y0:y0 + side, x0:x0 + side] = True
        frames.append(frame)
        masks.append(mask)
        offsets.append((speed * t, 0))
    return frames, np.stack(masks), np.array(offsets, np.float32)


@needs_weights
@pytest.mark.parametrize("reverse", [False, True])
def test_consistent_tracks_on_the_object_are_kept_with_their_true_motion(reverse):
    torch.set_num_threads(2)
    gone = range(0, 3) if reverse else range(17, 20)  # the query frame's mask is there
    frames, masks, offsets = square_clip(gone=gone)
    shown = np.setdiff1d(np.arange(len(frames)), gone)
    tracker = registry.build("point_transformer", device="cpu")
    spec = PseudoSpec(num_points=12, reverse=reverse)
    tracks = pseudo_tracks(tracker, frames, masks, spec, np.random.default_rng(0))
    assert tracks.num_queries == 12
    kept = tracks.trajs.shape[1]
    assert kept >= 9, f"only {kept} of 12 tracks on a plain moving square were kept"
    query_frame = len(frames) - 1 if reverse else 0
    starts = tracks.trajs[query_frame]
    assert masks[query_frame][starts[:, 1].astype(int), starts[:, 0].astype(int)].all()
    # on the frames where the object's mask is there every kept track is visible and follows the square
    truth = starts[None] + (offsets - offsets[query_frame])[:, None]
    assert tracks.visibs[shown].all() and tracks.valid[shown].all()
    error = np.linalg.norm(tracks.trajs[shown] - truth[shown], axis=-1)
    assert error.max() < 2.0, f"kept tracks are off the true motion by {error.max():.2f} px"
    # where the object's mask is gone the points are labelled hidden, and that label is known
    assert not tracks.visibs[gone].any() and tracks.valid[gone].all()


@needs_weights
def test_tracks_that_leave_the_mask_are_dropped():
    """The mask stays where the square was on frame 0 while the square moves on: every point is
    reported visible off the (dilated) mask once the square has moved more than a few pixels."""
    torch.set_num_threads(2)
    frames, masks, _ = square_clip(speed=6)
    still_masks = np.repeat(masks[:1], len(frames), 0)
    tracker = registry.build("point_transformer", device="cpu")
    tracks = pseudo_tracks(tracker, frames, still_masks, PseudoSpec(num_points=12, erode_px=3),
                           np.random.default_rng(0))
    # points near the square's left edge leave the still mask last, but all of them leave it
    assert tracks.trajs.shape[1] == 0
    assert tracks.dropped_off_mask == 12


def _predictions_and_truth(seed: int, B: int = 2, T: int = 5, N: int = 3):
    """Random predictions (one iteration) and true tracks (B, T, N, 2) in a 64 x 64 frame."""
    rng = np.random.default_rng(seed)
    coords = [torch.from_numpy(rng.uniform(0, 60, (B, T, N, 2)).astype(np.float32))]
    vis_logits, conf_logits = [torch.randn(B, T, N)], [torch.randn(B, T, N)]
    gt = torch.from_numpy(rng.uniform(0, 60, (B, T, N, 2)).astype(np.float32))
    return coords, vis_logits, conf_logits, gt


def test_losses_ignore_unknown_labels():
    from trackstudio.trackers.point.train import compute_losses

    B, T, N = 2, 5, 3
    coords, vis_logits, conf_logits, gt = _predictions_and_truth(0, B, T, N)
    gt_vis = torch.ones(B, T, N, dtype=torch.bool)
    valid = torch.ones(B, T, N, dtype=torch.bool)
    valid[:, 3:] = False
    base = compute_losses(coords, vis_logits, conf_logits, gt, gt_vis, (64, 64), valid)
    changed_gt, changed_vis = gt.clone(), gt_vis.clone()
    changed_gt[:, 3:] += 17.0
    changed_vis[:, 3:] = False
    other = compute_losses(coords, vis_logits, conf_logits, changed_gt, changed_vis, (64, 64), valid)
    for key in base:
        assert torch.allclose(base[key], other[key]), key
    # a hidden point's position counts only where the clip knows it (procedural), not where it is a guess
    hidden = gt_vis.clone()
    hidden[:, 1] = False
    moved = gt.clone()
    moved[:, 1] += 9.0

    def coord_loss(targets, hidden_known):
        return compute_losses(coords, vis_logits, conf_logits, targets, hidden, (64, 64), valid,
                              torch.tensor([hidden_known] * B))["coord"]

    assert not torch.allclose(coord_loss(gt, True), coord_loss(moved, True))
    assert torch.allclose(coord_loss(gt, False), coord_loss(moved, False))


def test_hidden_frames_visibility_loss_is_weighed_by_hidden_vis_weight():
    # the weight scales the visibility loss of hidden point-frames only: with every frame visible it changes
    # nothing; with frame 2 hidden, the loss is the visible frames' part plus the weight times the hidden part
    from trackstudio.trackers.point.train import compute_losses

    coords, vis_logits, conf_logits, gt = _predictions_and_truth(1)
    shown = torch.ones(2, 5, 3, dtype=torch.bool)
    assert torch.allclose(compute_losses(coords, vis_logits, conf_logits, gt, shown, (64, 64))["vis"],
                          compute_losses(coords, vis_logits, conf_logits, gt, shown, (64, 64),
                                         hidden_vis_weight=4.0)["vis"])
    hidden = shown.clone()
    hidden[:, 2] = False
    vis_at = {w: compute_losses(coords, vis_logits, conf_logits, gt, hidden, (64, 64), hidden_vis_weight=w)["vis"]
              for w in (0.0, 1.0, 4.0)}
    hidden_part = vis_at[1.0] - vis_at[0.0]
    assert hidden_part > 0
    assert torch.allclose(vis_at[4.0], vis_at[0.0] + 4.0 * hidden_part)
    losses = compute_losses(coords, vis_logits, conf_logits, gt, hidden, (64, 64), hidden_vis_weight=4.0)
    plain = compute_losses(coords, vis_logits, conf_logits, gt, hidden, (64, 64))
    assert torch.allclose(losses["coord"], plain["coord"]) and torch.allclose(losses["conf"], plain["conf"])


def test_training_mixes_real_and_procedural_clips_resumes_and_inits(tmp_path):
    from trackstudio.trackers.point.train import main

    spec = ClipSpec(num_frames=8, height=64, width=96, object_radius=(8, 20), points_per_object=8,
                    background_points=16)
    generate_dataset(tmp_path / "procedural", 3, seed=1, spec=spec)
    frames, masks, _ = square_clip(height=64, width=96, num_frames=8, side=32, speed=2)
    lk = registry.build("lk", device="cpu")
    for clip_idx in range(2):
        tracks = pseudo_tracks(lk, frames, masks, PseudoSpec(num_points=8, min_visible=4), np.random.default_rng(clip_idx))
        assert tracks.trajs.shape[1] > 0
        write_pseudo_clip(tmp_path / "real" / f"clip_{clip_idx}", frames, tracks)
    anno = np.load(tmp_path / "real" / "clip_0" / "anno.npz")
    assert anno["valid"].shape == anno["visibs"].shape and not bool(anno["hidden_known"])

    common = ["--data_root", str(tmp_path / "procedural"), "--data_root", str(tmp_path / "real"),
              "--root_share", "0.5", "0.5", "--batch_size", "2", "--epochs", "3", "--lr", "1e-3",
              "--sequence_length", "4", "--num_points", "4", "--image_size", "64x96", "--num_workers", "0",
              "--log_dir", str(tmp_path / "logs"), "--backbone", "small_cnn", "--no_pretrained", "--iters", "2",
              "--threads", "1"]
    first_dir = tmp_path / "first"
    assert main(common + ["--save_dir", str(first_dir), "--export", str(tmp_path / "w.pt"), "--max_steps", "2"]) == 0
    assert torch.load(first_dir / "latest.pth", map_location="cpu", weights_only=True)["step"] == 2
    assert main(common + ["--save_dir", str(first_dir), "--max_steps", "3",
                          "--resume", str(first_dir / "latest.pth")]) == 0
    assert torch.load(first_dir / "latest.pth", map_location="cpu", weights_only=True)["step"] == 3

    # a fine-tuning stage from the exported weights: their model options, a fresh step count and schedule
    exported = torch.load(tmp_path / "w.pt", map_location="cpu", weights_only=True)
    stage_dir = tmp_path / "stage"
    assert main(common + ["--save_dir", str(stage_dir), "--max_steps", "2", "--hidden_size", "32",
                          "--lr", "0", "--init", str(tmp_path / "w.pt")]) == 0
    stage = torch.load(stage_dir / "latest.pth", map_location="cpu", weights_only=True)
    assert stage["step"] == 2 and stage["config"] == exported["config"]
    for name, value in exported["state_dict"].items():  # learning rate 0: the weights are the initial ones
        assert torch.equal(stage["model"][name], value), name

    # a stage that trains the visibility and confidence heads alone leaves every other weight as it was
    heads_dir = tmp_path / "heads"
    assert main(common + ["--save_dir", str(heads_dir), "--max_steps", "2", "--init", str(tmp_path / "w.pt"),
                          "--trainable", "vis_head,conf_head"]) == 0
    heads = torch.load(heads_dir / "latest.pth", map_location="cpu", weights_only=True)["model"]
    changed = {name for name, value in exported["state_dict"].items() if not torch.equal(heads[name], value)}
    assert changed and all(name.startswith(("vis_head.", "conf_head.")) for name in changed), changed
    with pytest.raises(ValueError, match="names no parameters"):
        main(common + ["--save_dir", str(tmp_path / "typo"), "--max_steps", "1", "--init", str(tmp_path / "w.pt"),
                       "--trainable", "visibility_head"])
    assert main(common + ["--save_dir", str(tmp_path / "bad"), "--root_share", "1", "--max_steps", "1"]) == 2


def test_windows_start_where_a_point_is_visible(tmp_path):
    """A pseudo-labelled clip may see its points on a few frames only (the object enters late):
    every training window still starts on a frame that shows a point, whatever the draw."""
    from trackstudio.trackers.point.pseudo import PseudoTracks
    from trackstudio.trackers.point.train import PointOdysseyDataset

    frames, _, _ = square_clip(height=64, width=96, num_frames=8, side=32, speed=2)
    visibs = np.zeros((8, 1), bool)
    visibs[5:] = True  # seen on the last three frames only
    trajs = np.full((8, 1, 2), 40.0, np.float32)
    write_pseudo_clip(tmp_path / "late", frames, PseudoTracks(trajs, visibs, np.ones_like(visibs), 1, 0, 0, 0))
    dataset = PointOdysseyDataset([tmp_path / "late"], 4, 2, (64, 96), train=True, samples_per_video=1)
    for _ in range(100):  # (drawing random windows until one fits failed on 3% of draws here)
        sample = dataset[0]
        assert sample["visibs"][0].all() and sample["valid"][0].all()
