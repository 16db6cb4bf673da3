"""The point tracker's patch alignment (trackers/point/align.py) and what it does for tracking:
sub-pixel positions measured against the query patch, no drift under rotation and scale."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from synthetic import rescale_frames, rescale_points

from trackstudio.trackers import Prompt, registry
from trackstudio.trackers.point.align import _CRITERIA, OPENCV_SINGLE_THREADED, PatchAligner
from trackstudio.trackers.point.synthetic import make_texture
from trackstudio.trackers.point.tracker import default_weights


def _texture(seed: int, size: int = 240) -> np.ndarray:
    return cv2.cvtColor(make_texture(np.random.default_rng(seed), size, size, "noise"), cv2.COLOR_RGB2GRAY)


def _similarity(angle_deg: float, scale: float, centre, shift) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D(tuple(map(float, centre)), angle_deg, scale)
    matrix[:, 2] += shift
    return matrix


def test_follows_rotation_and_scale_without_drift():
    image = _texture(1)
    point = np.array([[120.0, 118.0]], np.float32)
    aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
    aligner.set_template(0, image, point[0])
    for step in range(1, 11):  # up to 20 degrees and 10 % larger, always 2-3 px off to start with
        matrix = _similarity(2.0 * step, 1.0 + 0.01 * step, (110, 125), (1.5 * step, -0.8 * step))
        frame = cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_CUBIC)
        truth = matrix[:, :2] @ point[0] + matrix[:, 2]
        aligned, moved = aligner.align(frame, (truth + (2.0, -1.5))[None])
        assert moved[0]
        assert np.linalg.norm(aligned[0] - truth) < 0.3, f"step {step}: {aligned[0]} vs {truth}"


def test_occluded_flat_and_border_points_keep_their_estimate():
    image = _texture(2)
    aligner = PatchAligner(half_size=10, min_correlation=0.75, max_shift_px=12.0)
    aligner.set_template(0, image, np.array([100.0, 100.0]))
    aligner.set_template(1, image, np.array([4.0, 100.0]))  # the patch would leave the frame
    flat = image.copy()
    flat[50:150, 150:250] = 128
    aligner.set_template(2, flat, np.array([200.0, 100.0]))  # nothing to align to
    covered = image.copy()
    covered[70:130, 70:130] = _texture(3)[:60, :60]  # another surface now covers point 0
    estimates = np.array([[101.0, 99.0], [5.0, 101.0], [201.0, 99.0]], np.float32)
    aligned, moved = aligner.align(covered, estimates)
    assert not moved.any()
    assert np.array_equal(aligned, estimates)
    with pytest.raises(ValueError, match="half size"):
        PatchAligner(half_size=2, min_correlation=0.75, max_shift_px=12.0)


def test_a_point_that_left_the_frame_never_fits_on_the_sliver_of_its_patch_still_inside():
    image = _texture(4)
    aligners = [PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0) for _ in range(2)]
    for aligner in aligners:
        aligner.set_template(0, image, np.array([150.0, 100.0]))
    inside, moved = aligners[0].align(image, np.array([[151.0, 100.5]], np.float32))  # in the frame it fits
    assert moved[0] and np.linalg.norm(inside[0] - (150.0, 100.0)) < 0.05
    # the frame cut 4 px left of the point: its estimate beyond the edge, 8 of its patch's 25 columns still inside
    # (they correlate perfectly: before, that was a fit, and the point outside the frame counted as seen)
    cut = np.ascontiguousarray(image[:, :146])
    _, moved = aligners[1].align(cut, np.array([[150.0, 100.0]], np.float32))
    assert not moved[0]


def test_a_fit_afresh_finds_the_patch_that_a_distorted_last_warp_misses():
    # as a point passes behind a still bar, the fit can slide onto the bar's edge with a sheared, shrunk warp;
    # when the point is found again beyond the bar, a fit from that warp fails and one from the query patch fits
    image = _texture(4)
    point = np.array([120.0, 118.0], np.float32)
    aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
    aligner.set_template(0, image, point)
    aligner._templates[0].linear = np.array([[0.71, 0.02], [-0.13, 0.90]], np.float32)  # the one seen on the bar
    shifted = np.roll(image, (3, 40), axis=(0, 1))  # the point is now at (160, 121)
    estimate = (point + (41.5, 2.0))[None]
    _, moved = aligner.align(shifted, estimate)
    assert not moved[0]
    aligned, moved = aligner.align(shifted, estimate, afresh=True)
    assert moved[0] and np.linalg.norm(aligned[0] - (point + (40, 3))) < 0.3
    assert np.allclose(aligner._templates[0].linear, np.eye(2), atol=0.02)  # later fits start from the good warp


def test_fits_on_the_region_the_patch_can_reach_match_fits_on_the_whole_frame():
    # the aligner hands ECC only the region around each estimate (speed); the fit must be the one ECC finds
    # on the whole frame, at the border too (where the region is clipped)
    image = _texture(4, size=320)
    points = np.array([[160.0, 150.0], [30.0, 200.0], [290.0, 60.0], [150.0, 290.0]], np.float32)
    aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
    for index, point in enumerate(points):
        aligner.set_template(index, image, point)
    matrix = _similarity(3.0, 1.02, (160, 160), (2.0, -1.0))
    frame = cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_CUBIC)
    estimates = (points @ matrix[:, :2].T + matrix[:, 2] + (1.5, 1.0)).astype(np.float32)
    aligned, moved = aligner.align(frame, estimates)
    for index, point in enumerate(points):
        template = np.zeros((2, 3), np.float32)
        template[:, :2], template[:, 2] = np.eye(2), estimates[index] - 12.0
        patch = image[int(point[1]) - 12:int(point[1]) + 13, int(point[0]) - 12:int(point[0]) + 13].astype(np.float32)
        _, whole = cv2.findTransformECC(patch, frame.astype(np.float32), template, cv2.MOTION_AFFINE, _CRITERIA, None, 3)
        assert moved[index], index
        np.testing.assert_allclose(aligned[index], whole[:, :2] @ (12.0, 12.0) + whole[:, 2], atol=0.02)


def test_a_faint_texture_is_aligned_as_well_as_a_strong_one():
    """ECC's correlation ignores contrast: a texture spread over a few grey levels (std 0.7) gets a patch and
    fits as the same texture at full contrast does."""
    strong = _texture(1).astype(np.float32)
    faint = np.round(100.0 + (strong - strong.mean()) * 0.7 / strong[108:133, 108:133].std()).astype(np.uint8)
    point = np.array([120.0, 120.0], np.float32)
    assert faint[108:133, 108:133].std() < 1.0
    matrix = _similarity(4.0, 1.02, (110, 125), (3.0, -2.0))
    truth = matrix[:, :2] @ point + matrix[:, 2]
    for image in (strong.astype(np.uint8), faint):
        aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
        aligner.set_template(0, image, point)
        assert aligner.has_template(0)
        frame = cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_CUBIC)
        aligned, moved = aligner.align(frame, (truth + (2.0, -1.5))[None])
        assert moved[0]
        assert np.linalg.norm(aligned[0] - truth) < 0.3, f"{aligned[0]} vs {truth}"


def test_closed_form_singular_values_match_numpy():
    from trackstudio.trackers.point.align import _singular_values

    rng = np.random.default_rng(0)
    for matrix in [*rng.normal(size=(200, 2, 2)), np.eye(2), np.array([[0.0, -2.0], [0.5, 0.0]])]:
        np.testing.assert_allclose(_singular_values(matrix), np.linalg.svd(matrix, compute_uv=False), atol=1e-9)


@pytest.mark.skipif(not default_weights().is_file(), reason="trained point tracker weights are missing")
@pytest.mark.parametrize(("degrees_per_frame", "num_frames", "tolerance_px", "scale"),
                         [(1.5, 30, 1.0, 1.0), (3.0, 31, 2.0, 1.0), (3.0, 31, 2.0, 1.5)])
def test_tracker_holds_points_on_a_turning_object(degrees_per_frame, num_frames, tolerance_px, scale):
    """A textured disc turning (by 43.5 and by 90 degrees in all) and drifting right: chained
    frame-to-frame estimates would drift, and the learned features are not rotation invariant;
    aligned to the query patch, every point stays visible and within the tolerance (in the clip's pixels
    before it is enlarged by `scale`: larger video spreads the same texture over more pixels)."""
    torch.set_num_threads(2)
    rng = np.random.default_rng(5)
    background = make_texture(rng, 240, 400, "photo")
    disc = make_texture(rng, 160, 160, "noise")
    inside = np.zeros((160, 160), np.uint8)
    cv2.circle(inside, (80, 80), 78, 1, -1)
    queries = np.array([[130.0, 100.0], [170.0, 140.0], [150.0, 160.0]], np.float32)  # on the disc at frame 0
    frames, tracks = [], []
    for t in range(num_frames):
        matrix = _similarity(degrees_per_frame * t, 1.0, (80, 80), (70 + 2.0 * t, 40))  # disc pixels -> frame
        warped = cv2.warpAffine(disc, matrix, (400, 240), flags=cv2.INTER_CUBIC)
        mask = cv2.warpAffine(inside, matrix, (400, 240), flags=cv2.INTER_NEAREST).astype(bool)
        frame = background.copy()
        frame[mask] = warped[mask]
        frames.append(frame)
        to_disc = cv2.invertAffineTransform(_similarity(0.0, 1.0, (80, 80), (70, 40)))
        disc_points = queries @ to_disc[:, :2].T + to_disc[:, 2]
        tracks.append(disc_points @ matrix[:, :2].T + matrix[:, 2])
    if scale != 1.0:
        frames, queries, tracks = rescale_frames(frames, scale), rescale_points(queries, scale), \
            [rescale_points(track, scale) for track in tracks]
    tracker = registry.build("point_transformer", device="cpu")
    tracker.set_video(frames)
    for obj_id, query in enumerate(queries):
        tracker.add_prompt(0, obj_id, Prompt(point=query))
    for result in tracker.propagate(0):
        for obj_id, obj in result.objects.items():
            truth = tracks[result.frame_idx][obj_id]
            assert obj.visible, f"frame {result.frame_idx}, point {obj_id} is in plain view"
            error = np.linalg.norm(obj.point - truth) / scale
            assert error < tolerance_px, f"frame {result.frame_idx}, point {obj_id}: {obj.point} vs {truth}"


def _square_over_background(shift_square: float, shift_background: float) -> np.ndarray:
    """A textured 100 px square (left edge at 100 + shift_square) over another texture moving on its own."""
    background = np.roll(_texture(5, 320), int(shift_background), axis=0)[:240, :240]
    frame = background.copy()
    x0 = 100 + int(shift_square)
    frame[70:170, x0:x0 + 100] = _texture(6, 100)
    return frame


@pytest.mark.parametrize("centre_alone", [True, False])
def test_a_point_beside_an_edge_keeps_its_fit_on_its_own_surface(monkeypatch, centre_alone):
    # the point is 7 px inside the square's left edge: part of its 25 px patch shows the background, which
    # moves down while the square moves right. The whole patch stops fitting; its centre, on the square, goes on
    # (without the centre-alone fit, the same frames lose the point)
    if not centre_alone:
        monkeypatch.setattr("trackstudio.trackers.point.align.CENTRE_MIN_CORRELATION", 2.0)
    point = np.array([107.0, 120.0], np.float32)
    aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
    aligner.set_template(0, _square_over_background(0, 0), point, step=0)
    late = []
    for step in range(1, 9):
        truth = point + (2.0 * step, 0.0)
        aligned, moved = aligner.align(_square_over_background(2 * step, 3 * step), (truth + (1.5, -1.0))[None],
                                       step=step)
        if step >= 6:
            late.append(bool(moved[0]) and np.linalg.norm(aligned[0] - truth) < 0.5)
    assert all(late) if centre_alone else not any(late)


def test_the_centre_alone_only_goes_on_from_a_fit():
    # a fit on the step before (or this step) lets the centre alone fit; after steps without any fit it does
    # not: alone, a small patch also fits look-alike spots, so it never starts a fit
    point = np.array([107.0, 120.0], np.float32)
    frame = _square_over_background(12, 18)  # the whole patch no longer fits here (the test above)
    truth = point + (12.0, 0.0)
    for fitted_at, fits in ((5, True), (3, False)):
        aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
        aligner.set_template(0, _square_over_background(0, 0), point, step=fitted_at)
        aligned, moved = aligner.align(frame, (truth + (1.0, 1.0))[None], step=6)
        assert moved[0] == fits
        if fits:
            assert np.linalg.norm(aligned[0] - truth) < 0.5


def test_a_point_far_off_its_estimate_is_found_by_matching_its_patch():
    # the surface jumped 30 px right and 20 px down: too far for the fit to converge from the estimate. After
    # `after` steps without a fit the patch is looked for around the estimate and fitted where it matches
    after = 2
    image = _texture(7)
    point = np.array([110.0, 112.0], np.float32)
    aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
    aligner.set_template(0, image, point, step=0)
    moved_image = np.roll(image, (20, 30), axis=(0, 1))
    estimate = point[None].copy()
    for step in range(1, after + 1):
        _, moved = aligner.align(moved_image, estimate, step=step)
        assert not moved[0]
        found_points, found = aligner.search(moved_image, estimate, step, [0], after)
        assert found[0] == (step == after)
    assert np.linalg.norm(found_points[0] - (point + (30, 20))) < 0.3
    _, found = aligner.search(moved_image, estimate, after + 2, [], after)  # only the tracks asked for
    assert not found.any()


def test_the_patch_search_skips_a_match_that_repeats_nearby():
    # on stripes the patch matches as well one period along: no place stands out, so nothing is found
    stripes = cv2.cvtColor(make_texture(np.random.default_rng(3), 240, 240, "stripes"), cv2.COLOR_RGB2GRAY)
    point = np.array([120.0, 120.0], np.float32)
    for image, findable in ((stripes, False), (_texture(1), True)):
        aligner = PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0)
        aligner.set_template(0, image, point, step=0)
        shifted = np.roll(image, (0, 25), axis=(0, 1))
        _, found = aligner.search(shifted, point[None], 2, [0], 2)
        assert found[0] == findable


def test_fits_shared_among_workers_are_the_fits_made_one_after_another():
    # 36 points on a surface that turns and moves, a quarter of it covered from step 3 and the whole surface jumping
    # at step 6: fits, failures and searches all happen, and none may depend on how many workers share them
    image = _texture(4, 320)
    grid = np.stack(np.meshgrid(np.linspace(60, 260, 6), np.linspace(60, 260, 6)), -1).reshape(-1, 2).astype(np.float32)
    aligners = [PatchAligner(half_size=12, min_correlation=0.75, max_shift_px=12.0, workers=w) for w in (1, 2)]
    for aligner in aligners:
        for index, point in enumerate(grid):
            aligner.set_template(index, image, point, step=0)
    opencv_threads = cv2.getNumThreads()
    estimates = grid.copy()
    fitted, found_again = 0, 0
    for step in range(1, 9):
        matrix = _similarity(1.5 * step, 1.0, (160, 160), (1.0 * step + 25.0 * (step >= 6), 0.5 * step))
        frame = cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_CUBIC)
        if step >= 3:
            frame[:160, :160] = _texture(5, 160)
        results = []
        for aligner in aligners:
            aligned, moved = aligner.align(frame, estimates + 1.0, step=step)
            searched, found = aligner.search(frame, aligned, step, range(len(grid)), 2)
            results.append((aligned, moved, searched, found))
        for one, shared in zip(*results):
            assert np.array_equal(one, shared), f"step {step}"
        assert cv2.getNumThreads() == opencv_threads  # OpenCV's own threads are back after the shared fits
        estimates = results[0][2]
        fitted, found_again = fitted + results[0][1].sum(), found_again + results[0][3].sum()
    assert 0 < fitted < 8 * len(grid) and found_again > 0


def test_opencv_threads_come_back_after_the_last_of_overlapping_shared_fits():
    # a propagation and the window's attention on demand may share fits at the same time: OpenCV stays on one thread
    # until the last of them ends, then gets its own threads back, whichever ends first
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)  # not 1, on any machine
    try:
        OPENCV_SINGLE_THREADED.__enter__()  # the run's fits
        OPENCV_SINGLE_THREADED.__enter__()  # the attention's, begun meanwhile
        assert cv2.getNumThreads() == 1
        OPENCV_SINGLE_THREADED.__exit__(None, None, None)  # the run's end first
        assert cv2.getNumThreads() == 1
        OPENCV_SINGLE_THREADED.__exit__(None, None, None)
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)

