"""sam2-lite's click-to-mask network: simulated clicks follow the interactive protocol; the training
command runs, exports strictly loadable weights and resumes."""
from __future__ import annotations

import numpy as np
import torch

from trackstudio.trackers.mask.sam2_lite.click_net import load_click_weights
from trackstudio.trackers.mask.sam2_lite.click_train import boundary_weights, main, next_click, train_step
from trackstudio.trackers.mask.sam2_lite.prompt_encoder import refines
from trackstudio.trackers.types import Prompt

from test_mask_training import data_root  # noqa: F401  (fixture: three small DAVIS-layout clips)


def test_first_click_is_deep_inside_and_next_clicks_fix_the_larger_error():
    gt = np.zeros((60, 100), bool)
    gt[10:50, 20:60] = True
    x, y, label = next_click(np.zeros_like(gt), gt)
    assert label == 1 and 35 <= x <= 44 and 25 <= y <= 34  # the centre of the square
    pred = gt.copy()
    pred[10:50, 60:95] = True  # a false alarm larger than any miss
    x, y, label = next_click(pred, gt)
    assert label == 0 and 60 <= x < 95
    rng = np.random.default_rng(0)
    for _ in range(20):  # random first clicks stay in the deep half of the object
        x, y, label = next_click(np.zeros_like(gt), gt, rng, depth_share=0.5)
        assert label == 1 and 29 <= x <= 50 and 19 <= y <= 40


def test_boundary_weights_cover_a_thin_part_whole_and_a_large_one_near_its_edge_only():
    gt = np.zeros((60, 100), bool)
    gt[10:50, 10:50] = True  # a 40-px square
    gt[20:23, 60:95] = True  # a 3-px bar
    weights = boundary_weights([gt], band=3.0, weight=4.0)[0, 0].numpy()
    assert np.all(weights[20:23, 62:93] == 5.0)  # the bar, every pixel of it
    assert weights[30, 30] == 1.0 and weights[11, 30] == 5.0 and weights[8, 30] == 5.0  # centre, edge, just outside
    assert weights[2, 30] == 1.0 and weights[45, 97] == 1.0  # far from either object
    assert np.all(boundary_weights([gt], band=3.0, weight=0.0).numpy() == 1.0)


def test_the_first_answer_adds_its_loss_only_where_corrections_followed_it():
    from trackstudio.trackers.mask.sam2_lite.click_net import ClickNet, ClickNetConfig

    torch.manual_seed(0)
    model = ClickNet(ClickNetConfig(hidden=16)).eval()  # eval: the same answer for the same prompt
    feats = {4: torch.randn(2, 24, 16, 28), 8: torch.randn(2, 40, 8, 14), 16: torch.randn(2, 112, 4, 7)}
    gts = [np.zeros((64, 112), bool) for _ in range(2)]
    gts[0][10:40, 20:60] = True
    gts[1][30:60, 50:100] = True

    def step(seed, max_extra, first_weight):
        return train_step(model, feats, gts, np.random.default_rng(seed), max_extra, 0.0, 0.0, 3.0, 0.0,
                          first_weight)[0]

    extra_seen = 0
    for seed in range(6):
        plain, weighed = step(seed, 3, 0.0), step(seed, 3, 2.0)
        # the same clicks and last answer either way: only the objective changes
        assert torch.equal(plain["mask_bce"], weighed["mask_bce"]) and torch.equal(plain["dice"], weighed["dice"])
        extra = float((weighed["total"] - plain["total"]).detach())
        assert extra >= 0.0
        if extra > 0:
            extra_seen += 1
            grads = torch.autograd.grad(weighed["total"] - plain["total"], model.mask_head.weight)
            assert grads[0].abs().sum() > 0  # the first answer is trained, not only counted
    assert extra_seen >= 2  # rounds followed the first prompt in most draws of 0..3
    # no correction round: the last answer is the first, counted once
    assert torch.equal(step(0, 0, 0.0)["total"], step(0, 0, 2.0)["total"])


def test_a_prompt_refines_an_earlier_one_only_when_it_keeps_its_box_and_clicks():
    box = np.array([1, 2, 30, 40], np.float32)
    one = Prompt(clicks=[[5, 5, 1]], box=box)
    two = Prompt(clicks=[[5, 5, 1], [9, 9, 0]], box=box)
    assert refines(one, two) and refines(Prompt(box=box), two)
    assert not refines(two, one)  # fewer clicks: a new prompt
    assert not refines(one, Prompt(clicks=[[5, 5, 1], [9, 9, 0]]))  # the box was dropped
    assert not refines(Prompt(clicks=[[6, 5, 1]], box=box), two)  # another first click


def _args(root, tmp_path, max_steps: int) -> list[str]:
    return ["--data_root", str(root), "--cache_dir", str(tmp_path / "cache"), "--save_dir", str(tmp_path / "run"),
            "--export", str(tmp_path / "clicks.pt"), "--max_steps", str(max_steps), "--val_every", "2",
            "--save_every", "1", "--batch_size", "2", "--crop", "64x112", "--hidden", "24",
            "--max_extra_clicks", "2"]


def test_click_training_runs_two_steps_and_resumes(data_root, tmp_path, capsys):  # noqa: F811
    assert main(_args(data_root, tmp_path, 2)) == 0
    latest = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert latest["step"] == 2 and latest["history"]["val_step"] == [2]
    assert (tmp_path / "run" / "visualizations" / "curves.png").is_file()
    model = load_click_weights(tmp_path / "clicks.pt")  # strict, weights_only
    assert model.config.hidden == 24
    assert "box" in capsys.readouterr().out  # validation reports the box and click IoUs

    resume = ["--resume", str(tmp_path / "run" / "latest.pth"), "--boundary_weight", "4",  # weighed edges too
              "--first_weight", "1"]  # and the first answer's loss
    assert main(_args(data_root, tmp_path, 3) + resume) == 0
    assert "resumed from" in capsys.readouterr().out
    resumed = torch.load(tmp_path / "run" / "latest.pth", map_location="cpu", weights_only=True)
    assert resumed["step"] == 3
    assert any(not torch.equal(latest["model"][k], resumed["model"][k]) for k in latest["model"])


def test_click_likeness_is_each_cells_best_cosine_to_the_clicked_cells():
    """Against the definition, cell by cell, for a batch whose items have different clicks (one has none)."""
    from trackstudio.trackers.mask.sam2_lite.click_net import ClickNet

    torch.manual_seed(0)
    feats16 = torch.randn(3, 8, 5, 6)
    prompts4 = torch.zeros(3, 6, 20, 24)
    prompts4[0, 0, 0:4, 0:4] = 1  # item 0: a positive disk over cell (0, 0), a negative one over cell (4, 5)
    prompts4[0, 1, 16:20, 20:24] = 1
    prompts4[1, 0, 8:12, 8:16] = 1  # item 1: positive over cells (2, 2) and (2, 3); item 2: no clicks
    likeness = ClickNet.click_likeness(feats16, prompts4)
    unit = torch.nn.functional.normalize(feats16, dim=1)
    clicked = {(0, 0): [(0, 0)], (0, 1): [(4, 5)], (1, 0): [(2, 2), (2, 3)], (1, 1): [], (2, 0): [], (2, 1): []}
    for (item, sign), cells in clicked.items():
        for row in range(5):
            for col in range(6):
                expected = max((float(unit[item, :, row, col] @ unit[item, :, r, c]) for r, c in cells), default=0.0)
                assert abs(float(likeness[item, sign, row, col]) - expected) < 1e-5, (item, sign, row, col)


def test_loaded_networks_compute_the_same_in_either_memory_layout():
    """load_network hands out channels-last networks (faster on a CPU): their answers are the standard layout's."""
    from trackstudio.trackers.mask.sam2_lite.click_net import prompt_maps

    net = load_click_weights()
    assert net.up4.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    feats = {4: torch.randn(1, 24, 32, 40), 8: torch.randn(1, 40, 16, 20), 16: torch.randn(1, 112, 8, 10)}
    prompts = prompt_maps((32, 40), np.array([[60.0, 50.0]]), np.array([[120.0, 90.0]]), None, None)
    with torch.no_grad():
        fast = net(feats, prompts)
        standard = net.to(memory_format=torch.contiguous_format)(feats, prompts)
    assert not net.up4.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(fast, standard, atol=1e-4), float((fast - standard).abs().max())
