"""sam2-lite's trained click-to-mask network on real frames (a held-out training clip, composited).

The network never saw these clips (they are in the validation split of its training), and the
look-alike is made here: the object's own pixels, mirrored, pasted beside it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from trackstudio.trackers import Prompt
from trackstudio.trackers.mask.sam2_lite.click_train import next_click
from trackstudio.trackers.mask.sam2_lite.composite import paste_mirrored_copy
from trackstudio.trackers.registry import build
from trackstudio.trackers.types import mask_iou as iou

CLIP = "davis2016_train/car-turn"  # validation split of the click and propagation training


@pytest.fixture(scope="module")
def tracker():
    return build("sam2-lite", device="cpu")


def _frame_and_mask(shared_train, frame_idx: int = 0, clip: str = CLIP) -> tuple[np.ndarray, np.ndarray]:
    clip = shared_train / clip
    frame = cv2.cvtColor(cv2.imread(str(clip / "frames" / f"{frame_idx:05d}.jpg")), cv2.COLOR_BGR2RGB)
    mask = cv2.imread(str(clip / "masks" / f"{frame_idx:05d}.png"), cv2.IMREAD_GRAYSCALE) > 127
    return frame, mask


def test_a_click_selects_the_object_and_never_its_look_alike_beside_it(tracker, shared_train):
    frame, mask = _frame_and_mask(shared_train)
    frame, target, copy = paste_mirrored_copy(frame, mask, gap=24)
    tracker.set_video([frame])
    x, y, _ = next_click(np.zeros_like(target), target)
    result = tracker.add_prompt(0, 1, Prompt(clicks=[[x, y, 1]])).mask
    assert iou(result, target) > 0.7
    assert (result & copy).sum() < 0.05 * copy.sum()


def test_a_small_object_is_looked_at_again_enlarged(tracker, shared_train):
    # the car at half size (about 60 x 45 px): the network's stride-4 answer alone is coarse; looking
    # again at its surroundings enlarged to 480 px places the boundary (IoU 0.75 -> 0.80 when measured;
    # 0.57 -> 0.79 with the first click weights, whose answer without zoom-in was coarser)
    frame, mask = _frame_and_mask(shared_train)
    small = cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    target = cv2.resize(mask.astype(np.uint8), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    x, y, _ = next_click(np.zeros_like(target), target)
    scores = {}
    for name, config in (("zoomed", {}), ("not zoomed", {"click_zoom_side": 0, "click_edge_radius": 0})):
        model = build("sam2-lite", config, device="cpu")
        model.set_video([small])
        scores[name] = iou(model.add_prompt(0, 1, Prompt(clicks=[[x, y, 1]])).mask, target)
    assert scores["zoomed"] > 0.75 and scores["zoomed"] > scores["not zoomed"] + 0.03, scores
    # a click in the frame's corner zooms into a region cut at the border
    corner = build("sam2-lite", device="cpu")
    corner.set_video([small])
    assert corner.add_prompt(0, 1, Prompt(clicks=[[1, 1, 1]])).mask.shape == target.shape


def test_late_corrections_look_at_the_object_enlarged_more(shared_train):
    # from the 4th click on, the region around the answer is looked at again at 640 px, not 480: late clicks
    # correct details (held-out clips, 5 clicks 0.908 -> 0.918). A correcting click moves that region by a few
    # pixels: the region encoded for the click before serves again (the same zoom), and a click answers sooner
    frame, target = _frame_and_mask(shared_train)
    model = build("sam2-lite", device="cpu")
    model.set_video([frame])
    encode, encoded = model.prompt_encoder.encode_image, []  # (click number, long side) of each region encoded
    model.prompt_encoder.encode_image = lambda image: encoded.append((len(clicks), max(image.shape[:2]))) or encode(image)
    clicks, pred = [], np.zeros_like(target)
    for _ in range(5):
        clicks.append(next_click(pred, target))
        pred = model.add_prompt(0, 1, Prompt(clicks=np.array(clicks, np.float32))).mask
    assert encoded[0] == (1, 480) and (4, 640) in encoded, encoded
    assert all((side == 480) == (click < 4) for click, side in encoded), encoded
    assert len(encoded) < 5, encoded  # at least one click re-used the region before
    assert iou(pred, target) > 0.9


def test_more_clicks_never_make_it_worse_and_a_negative_click_opens_no_leak(tracker, shared_train):
    frame, target = _frame_and_mask(shared_train, 20)
    tracker.set_video([frame])
    clicks, pred, scores, previous_false = [], np.zeros_like(target), [], 0
    for _ in range(5):
        clicks.append(next_click(pred, target))
        pred = tracker.add_prompt(0, 1, Prompt(clicks=np.array(clicks, np.float32))).mask
        scores.append(iou(pred, target))
        if clicks[-1][2] == 0:  # a negative click: the background it leaves must not grow elsewhere
            assert (pred & ~target).sum() <= previous_false + 0.01 * target.sum()
        previous_false = (pred & ~target).sum()
    assert scores[-1] > 0.85 and min(np.diff(scores)) > -0.03, scores


def test_a_box_gives_the_object_and_falls_back_where_the_network_finds_nothing(tracker, shared_train):
    frame, target = _frame_and_mask(shared_train)
    tracker.set_video([frame])
    ys, xs = np.nonzero(target)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    assert iou(tracker.add_prompt(0, 1, Prompt(box=box)).mask, target) > 0.8
    flat = np.full_like(frame, 128)  # nothing stands out: neither the network nor GrabCut finds a part
    tracker.set_video([flat])
    mask = tracker.add_prompt(0, 1, Prompt(box=np.array([40, 40, 120, 120], np.float32))).mask
    assert mask[40:120, 40:120].mean() > 0.95 and not mask[:, 125:].any()  # the box as drawn


def test_a_click_on_the_road_gives_the_road_never_the_car_beyond_it(tracker, shared_train):
    # the network learned on clips whose one object is the salient one; only the parts of its mask
    # that hold a positive click are the answer, so a click elsewhere never returns that object
    frame, car = _frame_and_mask(shared_train)
    tracker.set_video([frame])
    result = tracker.add_prompt(0, 1, Prompt(clicks=[[600, 260, 1]])).mask
    assert result[260, 600] and (result & car).sum() < 0.02 * car.sum()


def test_a_box_bounds_its_answer_unless_a_click_beyond_it_says_the_object_reaches_further(tracker, shared_train):
    # mallard-water (held out too), frame 0: the network's answer to the duck's tight box spilled onto the
    # ripples at its tail and breast, 3,431 px beyond the box (IoU 0.75); bounded by the box grown by the default
    # 2 %, IoU 0.85
    frame, target = _frame_and_mask(shared_train, clip="davis2016_train/mallard-water")
    ys, xs = np.nonzero(target)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    grow = tracker.config.click_box_margin * (box[2:] - box[:2])
    x1, y1 = np.floor(box[:2] - grow).astype(int)
    x2, y2 = np.ceil(box[2:] + grow).astype(int)
    beyond = np.ones_like(target)
    beyond[y1:y2, x1:x2] = False
    unbounded = build("sam2-lite", {"click_box_margin": -1.0}, device="cpu")
    unbounded.set_video([frame])
    spilled = unbounded.add_prompt(0, 1, Prompt(box=box)).mask
    assert (spilled & beyond).sum() > 0.05 * target.sum()
    tracker.set_video([frame])
    bounded = tracker.add_prompt(0, 1, Prompt(box=box)).mask
    assert not (bounded & beyond).any()
    assert iou(bounded, target) > iou(spilled, target) + 0.05

    # a positive click on what spilled over: the user says the object reaches there, so the box bounds nothing
    ys_out, xs_out = np.nonzero(spilled & beyond)
    x, y = int(xs_out[len(xs_out) // 2]), int(ys_out[len(ys_out) // 2])
    reached = tracker.add_prompt(0, 1, Prompt(box=box, clicks=[[x, y, 1]])).mask
    assert reached[y, x]
