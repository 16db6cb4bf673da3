"""sam2-lite on synthetic clips: following, occlusion, corrections, several objects, click-to-mask."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from trackstudio.trackers import Prompt
from trackstudio.trackers.registry import build, default_name, spec
from trackstudio.trackers.types import mask_iou as iou

HEIGHT, WIDTH = 176, 256
SIZE = 44  # object side, px


def _texture(rng: np.random.Generator, height: int, width: int, colors: np.ndarray, cell: int) -> np.ndarray:
    """Blocky random texture in a palette: (height, width, 3) uint8."""
    idx = rng.integers(0, len(colors), size=(height // cell + 1, width // cell + 1))
    return np.kron(colors[idx], np.ones((cell, cell, 1)))[:height, :width].astype(np.uint8)


class SyntheticClip:
    """A lazily drawn clip: textured squares moving over a textured background, with an optional
    occluder. `masks(t)` gives each object's visible ground truth."""

    def __init__(self, num_frames: int, starts, velocities, occluder=None, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.num_frames = num_frames
        self.background = _texture(rng, HEIGHT, WIDTH, np.array([[40, 90, 40], [70, 120, 60], [30, 60, 90]]), 8)
        palettes = [np.array([[230, 60, 40], [250, 200, 40]]), np.array([[240, 240, 250], [140, 40, 200]])]
        self.sprites = [_texture(rng, SIZE, SIZE, palettes[i % 2], 6) for i in range(len(starts))]
        self.starts, self.velocities = np.array(starts, float), np.array(velocities, float)
        self.occluder = occluder  # (first_frame, last_frame, x1, x2): a grey bar hiding everything in x1..x2
        self.bar = _texture(rng, HEIGHT, WIDTH, np.array([[120, 120, 120], [160, 160, 160]]), 4)

    def __len__(self) -> int:
        return self.num_frames

    def _corner(self, i: int, t: int) -> tuple[int, int]:
        x, y = self.starts[i] + t * self.velocities[i]
        return int(round(x)), int(round(y))

    def masks(self, t: int) -> list[np.ndarray]:
        out = []
        for i in range(len(self.sprites)):
            m = np.zeros((HEIGHT, WIDTH), bool)
            x, y = self._corner(i, t)
            m[y:y + SIZE, x:x + SIZE] = True
            for later in range(i + 1, len(self.sprites)):  # later sprites are drawn on top
                lx, ly = self._corner(later, t)
                m[ly:ly + SIZE, lx:lx + SIZE] = False
            if self._occluded(t):
                m[:, self.occluder[2]:self.occluder[3]] = False
            out.append(m)
        return out

    def _occluded(self, t: int) -> bool:
        return self.occluder is not None and self.occluder[0] <= t <= self.occluder[1]

    def __getitem__(self, t: int) -> np.ndarray:
        if not 0 <= t < self.num_frames:
            raise IndexError(t)
        frame = self.background.copy()
        for i, sprite in enumerate(self.sprites):
            x, y = self._corner(i, t)
            frame[y:y + SIZE, x:x + SIZE] = sprite
        if self._occluded(t):
            x1, x2 = self.occluder[2:]
            frame[:, x1:x2] = self.bar[:, x1:x2]
        return frame


# The trained network's masks of these 44-px synthetic squares come out 2-3 px short on every side
# (IoU 0.65-0.85 where the training-free readout reaches 0.85-0.95); on real clips it is the better of
# the two (resources/weights/sam2_lite_propagation.md). Its following thresholds are this much lower.
TRAINED_SLACK = 0.2


@pytest.fixture(scope="module", params=["trained", "readout"])
def tracker(request):
    return build("sam2-lite", config={"propagation": request.param}, device="cpu")


@pytest.fixture(scope="module")
def grabcut_clicks():
    """The click path without the trained network (its fallback, and `clicks="grabcut"`): these blocky
    synthetic frames are unlike the network's training clips (it is tested on real frames in
    test_click_to_mask.py)."""
    return build("sam2-lite", config={"clicks": "grabcut"}, device="cpu")


def min_iou(tracker, readout_iou: float) -> float:
    return readout_iou - (TRAINED_SLACK if tracker.config.propagation == "trained" else 0.0)


def test_registered_as_default_mask_tracker():
    assert spec("sam2-lite").kind == "mask"
    assert default_name("mask") == "sam2-lite"


def test_mask_follows_moving_object(tracker):
    clip = SyntheticClip(16, starts=[(20, 40)], velocities=[(9, 3)])
    tracker.set_video(clip)
    tracker.add_prompt(0, 1, Prompt(mask=clip.masks(0)[0]))
    results = list(tracker.propagate(0))
    assert [r.frame_idx for r in results] == list(range(16))
    for r in results[5:]:
        assert r.objects[1].visible
        assert iou(r.objects[1].mask, clip.masks(r.frame_idx)[0]) > min_iou(tracker, 0.8), r.frame_idx


@pytest.mark.parametrize("propagation", ["trained", "readout"])
def test_only_the_readout_walk_computes_the_imagenet_keys_of_its_frames(monkeypatch, propagation):
    """The trained network makes its own keys from the backbone's maps: a frame it walks never pays for the
    ImageNet keys (5 ms a frame at 864 px), which the training-free readout matches with."""
    from trackstudio.trackers.mask.sam2_lite import image_encoder

    asked = []
    made = image_encoder.EncodedFrame.keys.func
    monkeypatch.setattr(image_encoder.EncodedFrame, "keys", property(lambda frame: asked.append(1) or made(frame)))
    tracker = build("sam2-lite", config={"propagation": propagation}, device="cpu")
    clip = SyntheticClip(6, starts=[(20, 40)], velocities=[(9, 3)])
    tracker.set_video(clip)
    tracker.add_prompt(0, 1, Prompt(mask=clip.masks(0)[0]))
    results = list(tracker.propagate(0))
    assert iou(results[-1].objects[1].mask, clip.masks(5)[0]) > min_iou(tracker, 0.8)
    assert (len(asked) > 0) == (propagation == "readout")


def test_backward_propagation_follows_object(tracker):
    clip = SyntheticClip(12, starts=[(20, 40)], velocities=[(9, 3)])
    tracker.set_video(clip)
    tracker.add_prompt(11, 1, Prompt(mask=clip.masks(11)[0]))
    results = list(tracker.propagate(11, reverse=True))
    assert [r.frame_idx for r in results] == list(range(11, -1, -1))
    assert iou(results[-1].objects[1].mask, clip.masks(0)[0]) > min_iou(tracker, 0.8)


def test_occluded_object_is_hidden_then_found_again(tracker):
    # the object passes x ~ 100..170 during frames 8..12, where a grey bar hides columns 80..200
    clip = SyntheticClip(22, starts=[(10, 60)], velocities=[(8, 0)], occluder=(8, 13, 70, 220))
    tracker.set_video(clip)
    tracker.add_prompt(0, 1, Prompt(mask=clip.masks(0)[0]))
    results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
    for t in range(9, 14):
        assert not clip.masks(t)[0].any()
        assert not results[t].visible and not results[t].mask.any(), t
    for t in range(18, 22):
        assert results[t].visible, t
        assert iou(results[t].mask, clip.masks(t)[0]) > min_iou(tracker, 0.7), t


def test_correction_changes_later_frames_never_keyframes(tracker):
    clip = SyntheticClip(14, starts=[(20, 40)], velocities=[(9, 3)])
    tracker.set_video(clip)
    first = clip.masks(0)[0]
    tracker.add_prompt(0, 1, Prompt(mask=first))
    before = {r.frame_idx: r.objects[1].mask for r in tracker.propagate(0)}
    # the user corrects frame 6 to only the object's upper half
    k = 6
    corrected = clip.masks(k)[0].copy()
    rows = np.flatnonzero(corrected.any(axis=1))
    corrected[rows[len(rows) // 2]:] = False
    tracker.add_prompt(k, 1, Prompt(mask=corrected))
    after = {r.frame_idx: r.objects[1].mask for r in tracker.propagate(0)}
    assert np.array_equal(after[0], first)
    assert np.array_equal(after[k], corrected)
    changed = [t for t in range(k + 1, 14) if not np.array_equal(before[t], after[t])]
    assert changed and changed[0] == k + 1
    assert after[k + 1].sum() < before[k + 1].sum()  # the smaller correction carries on


def test_two_objects_do_not_overlap(tracker):
    # they pass each other edge to edge: the lower one's top row touches the upper one's bottom row
    clip = SyntheticClip(14, starts=[(20, 40), (190, 40 + SIZE)], velocities=[(12, 0), (-12, 0)], seed=3)
    tracker.set_video(clip)
    for obj_id, mask in enumerate(clip.masks(0), start=1):
        tracker.add_prompt(0, obj_id, Prompt(mask=mask))
    for r in tracker.propagate(0):
        a, b = r.objects[1].mask, r.objects[2].mask
        assert not np.logical_and(a, b).any(), r.frame_idx
        if r.frame_idx >= 4:
            truth = clip.masks(r.frame_idx)
            assert iou(a, truth[0]) > min_iou(tracker, 0.7) and iou(b, truth[1]) > min_iou(tracker, 0.7), r.frame_idx


def test_each_extra_object_costs_about_one_probability_map(tracker):
    # numpy allocations traced over prompting and walking N objects: each extra object may hold its
    # (h, w) float32 map and its mask, not copies of the map (a cached prompt map, the previous and
    # the new one, a stack of every object's map for the soft aggregation: 4.5-5.5 maps before)
    import tracemalloc

    clip = SyntheticClip(3, starts=[(20, 40)], velocities=[(6, 0)])
    tracker.set_video(clip)
    for frame_idx in range(3):
        tracker.prepare_frame(frame_idx)  # backbone features: the same for every object count
    peaks = {}
    for count in (4, 24):
        tracker.reset()
        masks = []
        for i in range(count):  # cells of an 8-column grid
            row, col = divmod(i, 8)
            masks.append(np.zeros((HEIGHT, WIDTH), bool))
            masks[-1][4 + row * 28:24 + row * 28, 4 + col * 32:28 + col * 32] = True
        tracemalloc.start()
        try:
            for obj_id, mask in enumerate(masks, start=1):
                tracker.add_prompt(0, obj_id, Prompt(mask=mask))
            for result in tracker.propagate(0):
                assert len(result.objects) == count
            peaks[count] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    maps_per_object = (peaks[24] - peaks[4]) / 20 / (HEIGHT * WIDTH * 4)
    assert maps_per_object < 2.5, f"{maps_per_object:.2f} maps per extra object"


def test_soft_aggregation_gives_each_pixel_to_the_first_most_likely_object():
    from trackstudio.trackers.mask.sam2_lite.tracker import Sam2LiteTracker

    rng = np.random.default_rng(0)
    maps = [np.round(rng.random((30, 40)), 1).astype(np.float32) for _ in range(5)]  # rounded: many ties
    probs = dict(zip([7, 3, 9, 1, 4], (m.copy() for m in maps)))
    owned = np.zeros((30, 40), bool)
    owned[:5] = True
    Sam2LiteTracker._separate(probs, owned)
    winner = np.argmax(np.stack(maps), axis=0)  # ties: the first object in order
    for i, obj_id in enumerate([7, 3, 9, 1, 4]):
        expected = np.where(winner == i, maps[i], np.minimum(maps[i], 0.49))
        expected[owned] = 0.0
        assert probs[obj_id].dtype == np.float32
        np.testing.assert_array_equal(probs[obj_id], expected)


def test_attention_map_marks_the_object(tracker):
    clip = SyntheticClip(6, starts=[(20, 40)], velocities=[(6, 0)])
    trk = build("sam2-lite", config={"return_attention": True}, device="cpu")
    trk.set_video(clip)
    trk.add_prompt(0, 1, Prompt(mask=clip.masks(0)[0]))
    last = list(trk.propagate(0))[-1].objects[1]
    att = last.attention
    assert att.dtype == np.float32 and att.min() >= 0 and att.max() <= 1
    truth = clip.masks(5)[0]
    cells = truth[::8, ::8][: att.shape[0], : att.shape[1]]
    assert att[cells].mean() > 0.7 and att[~cells].mean() < 0.1


def test_positive_click_segments_textured_object(grabcut_clicks):
    tracker = grabcut_clicks
    clip = SyntheticClip(1, starts=[(100, 60)], velocities=[(0, 0)])
    tracker.set_video(clip)
    result = tracker.add_prompt(0, 1, Prompt(clicks=[[122, 82, 1]]))
    assert result.visible
    assert iou(result.mask, clip.masks(0)[0]) > 0.7


def test_prepare_frame_encodes_ahead_so_the_click_reuses_it(grabcut_clicks):
    tracker = grabcut_clicks
    clip = SyntheticClip(4, starts=[(100, 60)], velocities=[(2, 0)])
    tracker.set_video(clip)
    encoded = []
    extractor = tracker.image_encoder.extractor
    real_forward = extractor.backbone.forward
    extractor.backbone.forward = lambda *args, **kwargs: encoded.append(1) or real_forward(*args, **kwargs)
    tracker.prepare_frame(2)
    assert len(encoded) == 1
    result = tracker.add_prompt(2, 1, Prompt(clicks=[[126, 82, 1]]))
    assert len(encoded) == 1 and iou(result.mask, clip.masks(2)[0]) > 0.7
    with pytest.raises(IndexError):
        tracker.prepare_frame(4)


def test_box_prompt_gives_mask(grabcut_clicks):
    tracker = grabcut_clicks
    clip = SyntheticClip(1, starts=[(100, 60)], velocities=[(0, 0)])
    tracker.set_video(clip)
    result = tracker.add_prompt(0, 1, Prompt(box=[92, 52, 152, 112]))
    assert iou(result.mask, clip.masks(0)[0]) > 0.7


def test_negative_click_removes_a_region(grabcut_clicks):
    tracker = grabcut_clicks
    # two touching objects: a positive click on each, then a negative click on the right one
    clip = SyntheticClip(1, starts=[(60, 60), (60 + SIZE, 60)], velocities=[(0, 0), (0, 0)], seed=5)
    tracker.set_video(clip)
    left, right = clip.masks(0)
    both = tracker.add_prompt(0, 1, Prompt(clicks=[[80, 80, 1], [126, 80, 1]])).mask
    assert (both & right).sum() > 0.7 * right.sum()
    only_left = tracker.add_prompt(0, 1, Prompt(clicks=[[80, 80, 1], [126, 80, 0]])).mask
    assert (only_left & right).sum() < 0.2 * right.sum()
    assert iou(only_left, left) > 0.7


def test_memory_bank_keeps_prompts_and_only_the_latest_frames():
    import torch

    from trackstudio.trackers.mask.sam2_lite.memory import Memory, MemoryBank

    bank = MemoryBank(num_recent=3)
    for frame_idx in range(40):
        conditioning = frame_idx in (0, 25)
        bank.add(Memory(frame_idx, torch.zeros(8, 5), torch.ones(5), conditioning))
    assert [m.frame_idx for m in bank.memories()] == [0, 25, 37, 38, 39]


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="flow_preset"):
        build("sam2-lite", config={"flow_preset": "slow"}, device="cpu")
    with pytest.raises(ValueError, match="click_zoom_side"):
        build("sam2-lite", config={"click_zoom_side": -480}, device="cpu")
    with pytest.raises(ValueError, match="min_side"):
        build("sam2-lite", config={"min_side": -1}, device="cpu")
    with pytest.raises(ValueError, match="backbone_precision"):
        build("sam2-lite", config={"backbone_precision": "int8"}, device="cpu")
    with pytest.raises(ValueError, match="backbone_precision"):
        build("siamfc-effnet", config={"backbone_precision": "half"}, device="cpu")
    with pytest.raises(ValueError, match="decoder_precision"):
        build("sam2-lite", config={"decoder_precision": "float16"}, device="cpu")


def test_a_low_resolution_video_is_scaled_up_to_min_side_and_answered_at_its_own_size():
    height, width = 108, 192
    frames, masks = [], []
    for t in range(4):
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, (70 + 3 * t, 54), (30, 22), 0, 0, 360, 1, -1)
        frames.append(np.where(mask[..., None] > 0, (200, 60, 50), (70, 120, 160)).astype(np.uint8))
        masks.append(mask > 0)
    tracker = build("sam2-lite", config={"min_side": 640}, device="cpu")
    tracker.set_video(frames)
    assert tracker.image_encoder.internal_size(height, width) == (352, 640)  # x3.33, sides multiples of 16
    tracker.add_prompt(0, 1, Prompt(mask=masks[0]))
    results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
    for t in range(1, 4):
        assert results[t].mask.shape == (height, width) and iou(results[t].mask, masks[t]) > 0.85, t
    # capped by max_side; and videos larger than min_side keep their scale
    capped = build("sam2-lite", config={"min_side": 640, "max_side": 320}, device="cpu")
    capped.set_video(frames)
    assert capped.image_encoder.internal_size(height, width) == (176, 320)


def test_a_small_detached_look_alike_is_dropped_but_parts_near_the_object_stay():
    from trackstudio.trackers.mask.sam2_lite.tracker import drop_stray_parts

    prob = np.zeros((100, 160), np.float32)
    prob[40:80, 40:80] = 0.9  # the object
    prob[10:16, 140:146] = 0.8  # a small look-alike far away
    prob[40:46, 86:92] = 0.8  # a small detached part right beside where the object was
    previous = np.zeros_like(prob)
    previous[38:80, 42:84] = 0.9
    cleaned = drop_stray_parts(prob, previous, max_fraction=0.2, margin=6)
    assert (cleaned[40:80, 40:80] > 0.5).all() and (cleaned[40:46, 86:92] > 0.5).all()
    assert (cleaned[10:16, 140:146] < 0.5).all()
    # a large second part is kept even far away (an object split by an occluder)
    prob[10:40, 120:150] = 0.9
    assert (drop_stray_parts(prob, previous, 0.2, 6)[10:40, 120:150] > 0.5).all()
    # lost object (no previous mask): only the size rule applies
    assert (drop_stray_parts(prob, None, 0.2, 6)[40:46, 86:92] < 0.5).all()


def _follow_from_first_mask(frames, first_mask: np.ndarray, config: dict | None = None) -> dict:
    """sam2-lite (default: the default one) prompted with `first_mask` on frame 0 -> {frame_idx: ObjectResult} of
    the walk."""
    tracker = build("sam2-lite", config=config, device="cpu")
    tracker.set_video(frames)
    tracker.add_prompt(0, 1, Prompt(mask=first_mask))
    return {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}


@pytest.mark.parametrize("inside, outside", [((220, 40, 40), (60, 140, 60)), ((200, 170, 60), (90, 110, 160)),
                                             ((40, 40, 40), (235, 235, 235))])
def test_trained_model_follows_a_large_flat_coloured_object_whole(inside, outside):
    # a uniform ellipse 260 px wide, drifting and turning on a uniform background (sensor noise only): its
    # inside carries no texture to match. Weights trained on DAVIS alone kept its rim and lost the first two
    # cases within 5 frames; procedural clips with flat surfaces (gen_mask_data.py --procedural) fixed it
    height, width = 360, 640
    rng = np.random.default_rng(0)
    frames, masks = [], []
    for t in range(10):
        mask = np.zeros((height, width), np.uint8)
        cv2.ellipse(mask, (200 + 8 * t, 180 + 2 * t), (130, 104), 5 * t, 0, 360, 1, -1)
        frame = np.where(mask[..., None] > 0, inside, outside).astype(np.float32)
        frames.append(np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8))
        masks.append(mask > 0)
    results = _follow_from_first_mask(frames, masks[0])
    for t in range(1, 10):
        assert results[t].visible and iou(results[t].mask, masks[t]) > 0.9, t


def _smooth_texture(rng: np.random.Generator, height: int, width: int, base, spread: float, blur: float) -> np.ndarray:
    """Blurred colour noise around `base`: (height, width, 3) float32, a texture without blocks or a palette."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (height, width, 3)).astype(np.float32), (0, 0), blur)
    return np.clip(np.asarray(base, np.float32) + spread * noise / noise.std(), 0, 255)


def _ellipse_clip(seed: int, width: int = 480, look_alike_x: int | None = None, gone: range = range(0)):
    """An elliptic object 74 x 96 px crossing behind a bar 40 px wide (columns 150..190) on a 24-frame clip 320 px
    high: on frames 7..14 it is cut, on frames 9..10 into two parts. With look_alike_x, a copy of it stands still
    at that column, top row 10; on the frames in `gone` the object is not there. -> (frames, masks of the object,
    its boxes (T, 4))."""
    height, size, bar = 320, 96, (150, 190)
    rng = np.random.default_rng(seed)
    background = _smooth_texture(rng, height, width, (90, 120, 80), 35, 6)
    skin = _smooth_texture(rng, size, size, (200, 90, 60), 40, 3)
    bar_skin = _smooth_texture(rng, height, width, (150, 150, 160), 15, 2)
    yy, xx = np.mgrid[:size, :size]
    shape = (yy - size / 2) ** 2 / (size / 2) ** 2 + (xx - size / 2) ** 2 / (size / 2.6) ** 2 <= 1
    frames, masks = [], []
    for t in range(24):
        frame, mask = background.copy(), np.zeros((height, width), bool)
        x, y = 10 + 12 * t, 110
        if t not in gone:
            frame[y:y + size, x:x + size][shape] = skin[shape]
            mask[y:y + size, x:x + size] = shape
        if look_alike_x is not None:
            frame[10:10 + size, look_alike_x:look_alike_x + size][shape] = skin[shape]
        frame[:, bar[0]:bar[1]] = bar_skin[:, bar[0]:bar[1]]
        mask[:, bar[0]:bar[1]] = False
        frames.append(np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8))
        masks.append(mask)
    boxes = np.array([[10 + 12 * t, 110, 10 + 12 * t + size, 110 + size] for t in range(24)], np.float32)
    return frames, masks, boxes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trained_model_follows_an_object_through_partial_occlusion_at_video_scale(seed):
    # (The blocky 44-px square of the test below is too small for the network's stride-16 memory; this is the
    # scale of objects in real video.)
    frames, masks, _ = _ellipse_clip(seed)
    results = _follow_from_first_mask(frames, masks[0])
    for t in range(7, 15):
        assert results[t].visible and iou(results[t].mask, masks[t]) > 0.6, t
        assert not results[t].mask[:, 154:186].any(), t  # nothing on the bar itself
    for t in range(15, 24):
        assert iou(results[t].mask, masks[t]) > 0.85, t


def _focused_walk(frames, first_mask: np.ndarray, focus_boxes, config: dict | None = None) -> tuple[dict, list]:
    """As _follow_from_first_mask, the tracker told before each frame that the object is in focus_boxes[t] (nothing
    where that is None) -> (results, the (h, w) of each frame part the backbone ran on alone). No flow prior, as in
    siamfc-mask: the flow needs whole frames."""
    tracker = build("sam2-lite", config={"flow_prior": False, **(config or {})}, device="cpu")
    tracker.set_video(frames)
    tracker.add_prompt(0, 1, Prompt(mask=first_mask))
    parts, encode_part = [], tracker.image_encoder.part

    def spy(frames, frame_idx, region):
        parts.append((region[0].stop - region[0].start, region[1].stop - region[1].start))
        return encode_part(frames, frame_idx, region)

    tracker.image_encoder.part = spy
    results, walk = {}, tracker.propagate(0)
    for box in focus_boxes:
        tracker.focus({} if box is None else {1: box})
        result = next(walk)
        results[result.frame_idx] = result.objects[1]
    return results, parts


def test_a_focused_walk_runs_on_a_part_of_the_frame_and_follows_the_object_as_the_whole_frame_walk():
    # told where the object is on each frame (a box tracker's search does so), sam2-lite runs its backbone, reads
    # and decodes only around that box and the object's last mask, each grown by half its size per side (a sixth
    # of this 800 x 320 frame): it follows the object through the occlusion at least as well as the whole-frame
    # walk (frame 10, the object in two parts: IoU 0.89 against 0.30), and a copy of the object beyond the window
    # never enters its mask
    frames, masks, boxes = _ellipse_clip(0, width=800, look_alike_x=700)
    focused, parts = _focused_walk(frames, masks[0], boxes)
    whole = _follow_from_first_mask(frames, masks[0], {"flow_prior": False})
    assert len(parts) == 23 and max(h * w for h, w in parts) < 0.5 * 320 * 800
    for t in range(1, 24):
        assert focused[t].visible and iou(focused[t].mask, masks[t]) > (0.6 if t < 15 else 0.85), t
        assert not focused[t].mask[:, 690:].any(), t
        assert iou(focused[t].mask, masks[t]) > iou(whole[t].mask, masks[t]) - 0.03, t
    # told a wrong box (150 px to the right of the object) from frame 5 on, it still follows the object: the window
    # spans the object's last mask too
    misled, parts = _focused_walk(frames[:8], masks[0], boxes[:8] + np.where(np.arange(8) >= 5, 150, 0)[:, None]
                                  * np.array([1, 0, 1, 0], np.float32))
    assert len(parts) == 7
    for t in range(5, 8):
        assert np.logical_and(misled[t].mask, masks[t]).sum() > 0.9 * masks[t].sum(), t
    # a focus box whose window would cover more than half the frame: the whole frame, as without focus
    wide = np.array([[0, 0, 500, 300]] * 24, np.float32)
    unfocused, parts = _focused_walk(frames, masks[0], wide)
    assert not parts
    for t in range(1, 24):
        assert np.array_equal(unfocused[t].mask, whole[t].mask), t


def test_an_object_the_focused_walk_lost_is_looked_for_around_the_box_it_is_told():
    # the object is gone on frames 10..13 (so the mask tracker lets it go), and a copy of it stands 60 px to the
    # right of where it comes back. Told where the object is again (the box tracker's search re-found it), the mask
    # tracker looks for it around that box alone: on a part of the frame, not the whole frame, and finds it there
    # as well as the whole-frame walk does (IoU 0.97 on frames 14..19 either way), never the copy
    frames, masks, boxes = _ellipse_clip(0, width=800, look_alike_x=330, gone=range(10, 14))
    told = [None if 10 <= t < 14 else box for t, box in enumerate(boxes)]
    focused, parts = _focused_walk(frames[:20], masks[0], told[:20])
    assert all(not focused[t].visible for t in range(11, 14))
    assert len(parts) == 19 - 4 and max(h * w for h, w in parts) < 0.5 * 320 * 800
    for t in range(15, 20):
        assert iou(focused[t].mask, masks[t]) > 0.85, t
        assert not focused[t].mask[:, 330:].any(), t
    # without it (focus_lost off), the lost object is looked for on the whole frame
    _, parts = _focused_walk(frames[:20], masks[0], told[:20], {"focus_lost": False})
    assert len(parts) == 19 - 5


@pytest.mark.xfail(strict=True, reason="known failure of the stage-6 weights: on frame 10, where the bar leaves "
                   "two slivers of the square (6 and 14 px wide, 45 % of it), the presence head says absent (0.43); "
                   "frames 5-9 and 11-19 pass (stage 2: frames 8-11 empty, 5-7 and 12-13 under 0.6)")
def test_trained_model_follows_a_small_blocky_object_through_partial_occlusion():
    # a bar 24 px wide stands in the object's way (columns 96..120) on frames 5..13: the object
    # (44 px) is cut in one or two visible parts while it passes behind
    tracker = build("sam2-lite", device="cpu")
    assert tracker.network is not None  # the default is the trained propagation network
    clip = SyntheticClip(20, starts=[(10, 60)], velocities=[(8, 0)], occluder=(5, 13, 96, 120))
    tracker.set_video(clip)
    tracker.add_prompt(0, 1, Prompt(mask=clip.masks(0)[0]))
    results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
    for t in range(5, 14):
        truth = clip.masks(t)[0]
        assert results[t].visible and iou(results[t].mask, truth) > 0.6, t
        assert not results[t].mask[:, 100:116].any(), t  # nothing on the bar itself
    for t in range(14, 20):
        assert iou(results[t].mask, clip.masks(t)[0]) > 0.8, t


@pytest.mark.parametrize("read_chunk", [256, 7])
def test_objects_read_and_decoded_together_get_what_each_gets_alone(monkeypatch, read_chunk):
    # the trained network reads several objects' banks and decodes them as one batch; objects whose
    # banks hold the same frames share one affinity. Each object must get exactly its own answer, whether its
    # 96 query cells are read at once or a few at a time (READ_CHUNK)
    from trackstudio.trackers.mask.sam2_lite import propagation_net
    from trackstudio.trackers.mask.sam2_lite.propagation_net import PropagationNet, normalize_maps

    monkeypatch.setattr(propagation_net, "READ_CHUNK", read_chunk)
    torch.manual_seed(0)
    net = PropagationNet().eval()
    frames = [normalize_maps({4: torch.randn(1, 24, 32, 48), 8: torch.randn(1, 40, 16, 24),
                              16: torch.randn(1, 112, 8, 12)}) for _ in range(3)]
    keys = [net.keys(maps) for maps in frames]
    with torch.no_grad():
        probs = torch.rand(4, 1, 32, 48)
        shared = net.encode_memory(frames[0], probs, keys[0])  # four objects remembered on frame 0 together
        entries = [type(shared)(keys[0].flatten(2), shared.values[i:i + 1], shared.mask[i:i + 1]) for i in range(4)]
        later = net.encode_memory(frames[1], probs[:1], keys[1])
        banks = [[entries[0]], [entries[1]], [entries[2], later], [entries[3]]]  # object 2 also saw frame 1
        prev = torch.rand(4, 1, 32, 48)
        together = net.decode(frames[2], net.read_objects(keys[2], banks), prev)
        for i, bank in enumerate(banks):
            alone = net(frames[2], bank, prev[i:i + 1], keys[2])
            torch.testing.assert_close(together[0][i:i + 1], alone[0], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(together[1][i:i + 1], alone[1], rtol=1e-4, atol=1e-4)
        # values read in bfloat16 (where the decoder computes in it): the same readout to bfloat16's precision,
        # handed on in float32
        in_bf16 = net.read_objects(keys[2], banks, torch.bfloat16)
        assert in_bf16.dtype == torch.float32
        torch.testing.assert_close(in_bf16, net.read_objects(keys[2], banks), rtol=2e-2, atol=2e-2)


def test_a_walk_gives_the_same_masks_whatever_the_number_of_objects_decoded_at_once(monkeypatch):
    from trackstudio.trackers.mask.sam2_lite import tracker as sam2_tracker

    clip = SyntheticClip(6, starts=[(20, 40), (190, 40 + SIZE), (100, 100)], velocities=[(8, 0), (-8, 0), (0, -6)],
                         seed=5)
    walks = []
    for per_batch in (1, 2, 8):
        monkeypatch.setattr(sam2_tracker, "OBJECTS_PER_BATCH", per_batch)
        tracker = build("sam2-lite", device="cpu")
        tracker.set_video(clip)
        for obj_id, mask in enumerate(clip.masks(0), start=1):
            tracker.add_prompt(0, obj_id, Prompt(mask=mask))
        walks.append([{obj_id: obj.mask for obj_id, obj in r.objects.items()} for r in tracker.propagate(0)])
    assert any(m.any() for m in walks[0][-1].values())
    for other in walks[1:]:
        for frame_a, frame_b in zip(walks[0], other):
            for obj_id in frame_a:
                differing = np.logical_xor(frame_a[obj_id], frame_b[obj_id]).sum()
                assert differing <= 0.001 * frame_a[obj_id].size, (obj_id, differing)


def test_a_bfloat16_decoder_gives_nearly_the_masks_of_float32():
    # bfloat16 only where the CPU runs it natively (device.cpu_inference_dtype), else the same float32 walk
    clip = SyntheticClip(10, starts=[(20, 40), (190, 40 + SIZE)], velocities=[(8, 2), (-8, 0)], seed=3)
    walks = []
    for precision in ("float32", "bfloat16"):
        tracker = build("sam2-lite", config={"decoder_precision": precision}, device="cpu")
        tracker.set_video(clip)
        for obj_id, mask in enumerate(clip.masks(0), start=1):
            tracker.add_prompt(0, obj_id, Prompt(mask=mask))
        walks.append({r.frame_idx: r.objects for r in tracker.propagate(0)})
    for t in range(1, 10):
        for obj_id in (1, 2):
            full, half = walks[0][t][obj_id], walks[1][t][obj_id]
            assert half.visible == full.visible and iou(half.mask, full.mask) > 0.97, (t, obj_id)
            assert iou(half.mask, clip.masks(t)[obj_id - 1]) > min_iou(tracker, 0.8), (t, obj_id)
