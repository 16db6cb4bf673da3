"""Many box objects at once: siamfc-effnet's shared backbone pass (trackers/box/shared_search.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.box.crops import crop_square
from trackstudio.trackers.box.shared_search import MAP_ALIGN, SearchRegion, SharedPass, _beyond_bands, _sample_grid
from trackstudio.trackers.box.siamfc_models import EffNetSiamFeatures, unit_norm
from trackstudio.trackers.types import box_iou

HEIGHT, WIDTH = 360, 640
NUM_OBJECTS, NUM_FRAMES = 10, 10


def _texture(height: int, width: int, cells: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((max(height // cells, 2), max(width // cells, 2), 3)).astype(np.float32)
    return (cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)


def _clip() -> tuple[list[np.ndarray], np.ndarray]:
    """Ten textured squares of different sizes, each moving its own way over a dull background.
    -> frames, boxes (T, N, 4)."""
    rng = np.random.default_rng(3)
    background = (_texture(HEIGHT, WIDTH, 16, 0) * 0.5 + 60).astype(np.uint8)
    sides = rng.integers(30, 56, NUM_OBJECTS)
    patches = [_texture(int(s), int(s), 6, 10 + k) for k, s in enumerate(sides)]
    starts = np.array([[70 + 125 * (k % 5), 90 + 180 * (k // 5)] for k in range(NUM_OBJECTS)], np.float64)
    velocities = rng.uniform(-3.5, 3.5, (NUM_OBJECTS, 2))
    frames, boxes = [], np.zeros((NUM_FRAMES, NUM_OBJECTS, 4), np.float32)
    for t in range(NUM_FRAMES):
        frame = background.copy()
        for k, (patch, side) in enumerate(zip(patches, sides)):
            x1, y1 = np.round(starts[k] + t * velocities[k] - side / 2).astype(int)
            frame[y1:y1 + side, x1:x1 + side] = patch
            boxes[t, k] = [x1, y1, x1 + side, y1 + side]
        frames.append(frame)
    return frames, boxes


def _track(tracker, frames: list[np.ndarray], first_boxes: dict[int, np.ndarray]) -> dict[int, list]:
    tracker.set_video(frames)
    for obj_id, box in first_boxes.items():
        tracker.add_prompt(0, obj_id, Prompt(box=box))
    results = {obj_id: [] for obj_id in first_boxes}
    for result in tracker.propagate(0):
        for obj_id, obj in result.objects.items():
            results[obj_id].append(obj)
    return results


pytestmark = pytest.mark.usefixtures("few_torch_threads")  # conftest.py


def test_ten_objects_tracked_together_match_each_tracked_alone_and_follow_their_targets():
    frames, truth = _clip()
    tracker = registry.build("siamfc-effnet", device="cpu")
    together = _track(tracker, frames, {k + 1: truth[0, k] for k in range(NUM_OBJECTS)})  # shared pass
    for k in range(NUM_OBJECTS):
        alone = _track(tracker, frames, {1: truth[0, k]})[1]  # its own pass, over its own search region alone
        shared = together[k + 1]
        assert all(obj.visible for obj in shared), k
        # tolerance: the shared features are resampled from a frame-wide map, not cut from crops
        agreement = [box_iou(a.box, b.box) for a, b in zip(shared, alone)]
        assert min(agreement) > 0.8, (k, agreement)
        accuracy = [box_iou(obj.box, box) for obj, box in zip(shared, truth[:, k])]
        assert np.mean(accuracy) > 0.75 and accuracy[-1] > 0.6, (k, accuracy)


def test_shared_features_equal_crop_features_where_the_crop_lies_on_the_level_grid():
    """A crop at a level's scale that starts on the level's pixel grid sees the same pixels as the
    shared map: away from the crop's padded border, its features are the same cells."""
    model = EffNetSiamFeatures()
    frame = _texture(HEIGHT, WIDTH, 10, 7)
    border = frame.reshape(-1, 3).mean(0)
    size = model.instance_size
    # level 0 (scale 1): crop pixel 0 lies on frame pixel center - (size - 1) / 2, a multiple of 16
    center = np.array([(size - 1) / 2 + 16 * 5, (size - 1) / 2 + 16 * 3])
    regions = {1: SearchRegion(center, np.array([float(size)]), size, border),
               2: SearchRegion(center + (48, 16), np.array([float(size)]), size, border)}
    with torch.no_grad():
        crop_features = model.search(crop_square(frame, center, size, size, border)[None])
        shared = SharedPass(frame, regions, lambda image: model.search(image[None]), model.total_stride,
                            model.cell_offset).features
    assert set(shared) == {1, 2} and shared[1].shape == crop_features.shape
    cosine = (crop_features * shared[1]).sum(dim=1)[0]  # (32, 32), both unit-norm per cell
    inner = cosine[6:-6, 6:-6]
    assert float(inner.mean()) > 0.99 and float(inner.min()) > 0.95, float(inner.mean())
    # half a cell off the grid the cells are interpolated, and differ (the check can fail)
    shifted = SearchRegion(center + 4.0, regions[1].sides, size, border)
    with torch.no_grad():
        off_grid = SharedPass(frame, {1: shifted, 2: regions[2]}, lambda image: model.search(image[None]),
                              model.total_stride, model.cell_offset).features[1]
        crop_shifted = model.search(crop_square(frame, shifted.center, size, size, border)[None])
    assert float((crop_shifted * off_grid).sum(dim=1)[0, 6:-6, 6:-6].mean()) < 0.99


def test_the_shared_pass_stops_near_the_frame_and_cells_beyond_are_flat_border_colour():
    """Search regions at the frame's corners reach far past it; with a frame margin the pass covers the frame
    and that many pixels of border colour beyond it, not the regions' whole rectangle. Inside the frame the
    cells are those of the crops; beyond the map they are the network's cell on flat border colour."""
    model = EffNetSiamFeatures()
    frame = _texture(HEIGHT, WIDTH, 10, 7)
    border = frame.reshape(-1, 3).mean(0)
    size, frame_margin = model.instance_size, 32
    # level 0; crop pixel 0 on the level grid (a multiple of 16), each centre within 24 px of a corner
    near = (size - 1) / 2 - 16 * 7
    far = np.array([WIDTH, HEIGHT]) - 1 - (size - 1) / 2 + 16 * 7
    centers = [np.array([near, near]), far] + [np.array([near + 160 * (k % 4), near + 160 * (k // 4)])
                                               for k in range(8)]
    # ten targets: one pass costs fewer pixels than their crops
    regions = {k + 1: SearchRegion(c.astype(np.float64), np.array([float(size)]), size, border)
               for k, c in enumerate(centers)}
    passes = []

    def features(image: np.ndarray) -> torch.Tensor:
        passes.append(image.shape[:2])
        return model.search(image[None])

    with torch.no_grad():
        shared = SharedPass(frame, regions, features, model.total_stride, model.cell_offset, frame_margin).features
        crop_features = model.search(crop_square(frame, regions[1].center, size, size, border)[None])
    reach = frame_margin + MAP_ALIGN  # the margin, rounded out to the grid
    assert passes and all(h <= HEIGHT + 2 * reach and w <= WIDTH + 2 * reach for h, w in passes), passes
    assert (size - 1) / 2 - near > reach  # the region reaches past the map: the check below can fail
    cosine = (crop_features * shared[1]).sum(dim=1)[0]  # (32, 32), both unit-norm per cell
    inside = cosine[20:-6, 20:-6]  # the crop's cells over the frame, away from its edges
    assert float(inside.mean()) > 0.98 and float(inside.min()) > 0.9, float(inside.mean())
    flat = np.empty((96, 96, 3), np.uint8)
    flat[:] = np.round(border).astype(np.uint8)
    with torch.no_grad():
        flat_cell = model.search(flat[None])[0, :, 6, 6]  # away from the flat image's own edges
    outside = shared[1][0, :, :4, :4].flatten(1)  # cells beyond the map, above-left of the frame
    assert float((flat_cell[:, None] * outside).sum(dim=0).min()) > 0.99


def test_a_shared_pass_gives_another_region_only_where_its_map_covers_it():
    """SharedPass.sample: a wider region around a member, at the member's level, reads the frame's map (its
    cells those of its own crop); a region beyond the map, or at a level no member has, gets None."""
    model = EffNetSiamFeatures()
    frame = _texture(HEIGHT, WIDTH, 10, 7)
    border = frame.reshape(-1, 3).mean(0)
    size = model.instance_size
    start = (size - 1) / 2  # crop pixel 0 on the level-0 grid
    # ten members over the left half of the frame: the map stops short of its right edge
    members = {k + 1: SearchRegion(np.array([start + 32 * (k % 5), start + 64 * (k // 5)]), np.array([float(size)]),
                                   size, border) for k in range(10)}
    with torch.no_grad():
        shared = SharedPass(frame, members, lambda image: model.search(image[None]), model.total_stride,
                            model.cell_offset)
        assert shared.maps and shared.features.keys() == members.keys()
        wide_size = size + 32
        middle = np.array([start + 64, start + 32])  # on the grid, its wider crop within the members' reach
        wide = SearchRegion(middle, np.array([float(wide_size)]), wide_size, border)
        sampled = shared.sample(wide)
        crop = model.search(crop_square(frame, wide.center, wide_size, wide_size, border)[None])
        assert sampled is not None and sampled.shape == crop.shape
        inner = (sampled * crop).sum(dim=1)[0, 6:-6, 6:-6]
        assert float(inner.mean()) > 0.99, float(inner.mean())
        beyond = SearchRegion(np.array([WIDTH - start, start]), np.array([float(size)]), size, border)
        assert shared.sample(beyond) is None  # the right half was never passed through the network
        finer = SearchRegion(members[7].center.copy(), np.array([size / 2.0]), size, border)
        assert shared.sample(finer) is None  # level 4: no member there


def test_sure_targets_scan_for_look_alikes_on_the_shared_pass():
    """The distractor scan of a sure target that shares the pass reads the pass's map, not a wide crop of its
    own, and still remembers the look-alike beside it."""
    side, decoy = 40, (60, 110)  # decoy: a still copy of object 1, below it
    background = (_texture(HEIGHT, WIDTH, 16, 0) * 0.5 + 60).astype(np.uint8)
    patches = [_texture(side, side, 6, 10 + k) for k in range(NUM_OBJECTS)]
    frames, first = [], {}
    for t in range(NUM_FRAMES):  # ten textured squares of one size (one scale level), moving right
        frame = background.copy()
        frame[decoy[1]:decoy[1] + side, decoy[0]:decoy[0] + side] = patches[0]
        for k, patch in enumerate(patches):
            x1, y1 = 60 + 120 * (k % 5) + 2 * t, 20 + 280 * (k // 5)  # search regions reach past the frame
            frame[y1:y1 + side, x1:x1 + side] = patch
            first.setdefault(k + 1, np.array([x1, y1, x1 + side, y1 + side], np.float32))
        frames.append(frame)
    tracker = registry.build("siamfc-effnet", device="cpu", config={"distractor_scan_interval": 3})
    wide_crops = []
    search = tracker.model.search

    def counted(crops):
        if crops.shape[1] == crops.shape[2] > tracker.model.instance_size:
            wide_crops.append(len(crops))
        return search(crops)

    tracker.model.search = counted
    results = _track(tracker, frames, first)
    assert len(wide_crops) == NUM_OBJECTS, wide_crops  # the scans on the prompt frame alone: no pass there
    assert all(obj.visible for obj in results[1])
    decoy_center = np.array(decoy) + (side - 1) / 2.0
    remembered = tracker._targets[1].distractors
    assert any(np.linalg.norm(position - decoy_center) < 16 for position in remembered), remembered


def test_a_doubtful_target_keeps_its_own_crops_beside_sure_ones_that_share_the_pass():
    """shared_min_score: a target whose match is doubtful is searched as if alone, with its own crops,
    while the sure ones keep sharing the pass (resampled features blur what a doubtful match needs)."""
    frames, truth = _clip()
    patch = _texture(48, 48, 6, 99)
    turning = np.zeros((NUM_FRAMES, 4), np.float32)
    for t, frame in enumerate(frames):  # an eleventh square that turns 12 degrees a frame
        rotation = cv2.getRotationMatrix2D((23.5, 23.5), 12.0 * t, 1.0)
        x1, y1 = 300 + 2 * t, 150 + t
        frame[y1:y1 + 48, x1:x1 + 48] = cv2.warpAffine(patch, rotation, (48, 48), borderMode=cv2.BORDER_REFLECT)
        turning[t] = [x1, y1, x1 + 48, y1 + 48]
    first = {k + 1: truth[0, k] for k in range(NUM_OBJECTS)} | {NUM_OBJECTS + 1: turning[0]}
    doubtful_id = NUM_OBJECTS + 1
    own_crops = registry.build("siamfc-effnet", device="cpu", config={"shared_pass": False})
    alone = _track(own_crops, frames, {doubtful_id: turning[0]})[doubtful_id]
    runs = {}
    for name, config in (("all share", {}), ("doubtful alone", {"shared_min_score": 0.8})):
        tracker = registry.build("siamfc-effnet", device="cpu", config=config)
        runs[name] = _track(tracker, frames, first)
        runs[name, "agreement"] = [box_iou(a.box, b.box) for a, b in zip(runs[name][doubtful_id], alone)]
    scores = [obj.score for obj in runs["doubtful alone"][doubtful_id][1:]]
    assert max(scores) < 0.8, scores  # the turning square is doubtful from its first step on
    assert min(runs["doubtful alone", "agreement"]) > 0.99, runs["doubtful alone", "agreement"]
    # sharing the pass moves it (so the check above can fail)
    assert min(runs["all share", "agreement"]) < 0.95, runs["all share", "agreement"]
    for k in range(NUM_OBJECTS):  # the sure squares still follow their targets
        accuracy = [box_iou(obj.box, box) for obj, box in zip(runs["doubtful alone"][k + 1], truth[:, k])]
        assert np.mean(accuracy) > 0.75 and accuracy[-1] > 0.6, (k, accuracy)
    with pytest.raises(ValueError, match="shared_min_score"):
        registry.build("siamfc-effnet", config={"shared_min_score": -0.1}, device="cpu")


def test_a_lone_sure_target_searches_one_rectangle_and_a_doubtful_one_its_three_crops():
    """A lone target shares the pass with nobody, but one rectangle over its three scales holds about
    half their pixels; a doubtful one (shared_min_score above its score) still gets its own crops."""
    frames, truth = _clip()
    for config, sure in (({}, True), ({"shared_min_score": 1.5}, False)):
        tracker = registry.build("siamfc-effnet", device="cpu", config=config)
        passes = []
        search = tracker.model.search
        tracker.model.search = lambda images: passes.append(images.shape) or search(images)
        boxes = [obj.box for obj in _track(tracker, frames, {1: truth[0, 4]})[1]]
        assert np.mean([box_iou(box, truth[t, 4]) for t, box in enumerate(boxes)]) > 0.75, config
        steps = passes[-(NUM_FRAMES - 1):]  # one pass per tracked frame (the prompt frame's come first)
        crop_pixels = tracker.config.scale_num * tracker.model.instance_size ** 2
        if sure:
            assert all(shape[0] == 1 for shape in steps), steps
            assert max(np.prod(shape[:3]) for shape in steps) < 0.6 * crop_pixels, steps
        else:
            assert all(shape[0] == tracker.config.scale_num for shape in steps), steps


@pytest.mark.parametrize("low, high", [(-3.0, 20.0), (4.0, 60.0), (-9.5, 70.0), (2.0, 30.0)])
def test_border_bands_cover_the_cells_past_the_map_once(low, high):
    """A region's cells past its level map lie in bands along each scale's edges: the bands cover every such cell
    and no cell twice, so the flat border colour's term is added where it is not 0, once."""
    size, scales, map_side = 12, 3, 40
    axes = [np.linspace(low + k, high - k, size) for k in range(scales)]  # cell coordinates in the map, per scale
    # a bilinear sample's weight on the map's cells along one axis (the rest falls past the map)
    in_map = [np.clip(np.minimum(a + 1.0, map_side - a), 0.0, 1.0) for a in axes]
    inside = torch.from_numpy(np.concatenate([np.outer(w, w) for w in in_map])).float()  # (S n, n)
    outside = inside < 1.0
    covered = torch.zeros_like(inside)
    for rows, cols in _beyond_bands(outside, scales):
        covered[rows, cols] += 1.0
    assert torch.equal(covered, outside.float()), (covered - outside.float()).abs().sum()


def test_the_shared_pass_samples_the_border_term_as_over_the_whole_sample():
    """The flat border colour's term added on the bands alone equals adding it over the whole sample, up to float
    rounding (a region at a frame corner, half of it past the map)."""
    model = EffNetSiamFeatures()
    frame = _texture(HEIGHT, WIDTH, 10, 7)
    border = frame.reshape(-1, 3).mean(0)
    size = model.instance_size
    region = SearchRegion(np.array([8.0, 13.0]), np.array([0.96, 1.0, 1.04]) * size, size, border)
    with torch.no_grad():
        shared = SharedPass(frame, {1: region}, lambda image: model.search(image[None]), model.total_stride,
                            model.cell_offset, 32)
        level_map = next(iter(shared.maps.values()))
        grid = _sample_grid(region, level_map.scale, np.array(level_map.rect[:2], np.float64),
                            tuple(level_map.features.shape[-2:]), model.total_stride, model.cell_offset)
        whole = torch.nn.functional.grid_sample(level_map.features, grid, align_corners=False)
        inside = torch.nn.functional.grid_sample(torch.ones_like(level_map.features[:, :1]), grid,
                                                 align_corners=False)
        assert float(inside.min()) < 1.0 and float(inside.max()) == 1.0  # partly past the map
        whole.addcmul_(1.0 - inside, shared._beyond(level_map))
        cells = size // model.total_stride
        expected = unit_norm(whole, dim=1)[0].reshape(whole.shape[1], 3, cells, cells).transpose(0, 1)
    torch.testing.assert_close(shared.features[1], expected, rtol=0.0, atol=1e-6)


def test_the_border_colours_cell_is_computed_once_for_every_frame_that_shares_it():
    """A caller that keeps `beyond_cells` across frames runs the network on the flat border colour once; each frame's
    features stay what a pass of its own gives."""
    model = EffNetSiamFeatures()
    frames = [_texture(HEIGHT, WIDTH, seed, 7) for seed in (10, 11)]
    border = frames[0].reshape(-1, 3).mean(0)
    size = model.instance_size
    region = SearchRegion(np.array([8.0, 13.0]), np.array([0.96, 1.0, 1.04]) * size, size, border)
    flat_passes = []

    def features(image):
        if (image == image[:1, :1]).all():
            flat_passes.append(image.shape)
        return model.search(image[None])

    cells: dict = {}
    with torch.no_grad():
        for frame in frames:
            kept = SharedPass(frame, {1: region}, features, model.total_stride, model.cell_offset, 32, cells)
            own = SharedPass(frame, {1: region}, lambda image: model.search(image[None]), model.total_stride,
                             model.cell_offset, 32)
            assert torch.equal(kept.features[1], own.features[1])
    assert len(flat_passes) == 1 and len(cells) == 1
