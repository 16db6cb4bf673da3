"""Sub-pixel re-alignment of tracked points to the patch around their query point.

Chaining frame-to-frame estimates lets small errors add up (drift). Each frame, every track's
estimate is aligned anew to the grayscale patch around its query point with an affine ECC fit
(enhanced correlation coefficient), started from the track's last accepted warp, so the position
is always measured against the original appearance, and rotation and scale are followed. A fit
that correlates poorly (occlusion, strong appearance change) or moves the point far is not used.
A point near a surface's edge has the surface behind in its patch; where that part no longer matches, the
patch's centre alone goes on from the last fit. A point whose patch has not fitted for a few frames (it was
covered, or the estimate slid off) is looked for by template matching around its estimate.
Tracks are fitted side by side on worker threads where there are several: each has its own template.
"""
from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import cv2
import numpy as np

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3)
# An affine fit can also "explain" a different surface by squashing the patch; surfaces seen
# frame to frame change scale by a few percent and stay nearly undistorted.
MAX_SCALE_CHANGE = 1.25  # per alignment, either way
MAX_ANISOTROPY = 1.5  # ratio of the warp's two singular values
# Where the whole patch does not fit, its centre (half its size) alone is fitted, at this correlation, to go on from
# a fit on the step before (session 34: see the point card)
CENTRE_MIN_CORRELATION = 0.8
FITS_KEPT = 32  # steps (walk positions) whose fits are remembered: more than a window reaches back
# A track whose patch has not fitted for a few steps (the caller says how many) is looked for every SEARCH_EVERY
# steps by template matching within SEARCH_RADIUS_PX: ECC only converges a few pixels from the truth. The best match
# must correlate at least SEARCH_MIN_CORRELATION, beat every match more than SEARCH_DISTINCT_PX from it by
# SEARCH_MARGIN (not a stripe or tile beside it), and the whole patch must fit there.
SEARCH_EVERY = 2
SEARCH_RADIUS_PX = 96
SEARCH_MIN_CORRELATION = 0.8
SEARCH_MARGIN = 0.1
SEARCH_DISTINCT_PX = 6
# A patch whose grey levels spread less than this (standard deviation, uint8 levels) is flat: nothing to align to.
# ECC's correlation ignores contrast, so a faint texture aligns as well as a strong one: at 1.0 (before session 52)
# a point on a faint stretch of the tests' turning disc, enlarged 1.5x, had a std of 0.87 and no patch at all
MIN_PATCH_STD = 0.5
CROP_MARGIN_PX = 16  # beyond the patch's reach, so ECC's iterations and its 3x3 filters see the pixels they would in the frame


def _singular_values(m: np.ndarray) -> tuple[float, float]:
    """(largest, smallest) singular value of a 2x2 matrix, in closed form (np.linalg.svd per call costs more
    than the fit it checks)."""
    (a, b), (c, d) = m.tolist()
    q = np.hypot((a + d) / 2, (c - b) / 2)
    r = np.hypot((a - d) / 2, (c + b) / 2)
    return q + r, abs(q - r)


def _plausible(previous: np.ndarray, linear: np.ndarray) -> bool:
    """Is the 2x2 warp `linear` a plausible next step from `previous`?"""
    before, after = _singular_values(previous), _singular_values(linear)
    changes = (after[0] / before[0], after[1] / before[1])
    determinant = float(linear[0, 0] * linear[1, 1] - linear[0, 1] * linear[1, 0])
    return bool(all(1.0 / MAX_SCALE_CHANGE <= change <= MAX_SCALE_CHANGE for change in changes)
                and after[0] <= MAX_ANISOTROPY * after[1] and determinant > 0)


@dataclass
class _Template:
    patch: np.ndarray  # (S, S) float32 grayscale around the query point
    centre: np.ndarray  # (2,) the query point in patch pixels
    linear: np.ndarray  # (2, 2) last accepted warp's linear part (patch -> frame)
    inner: int  # the centre patch is patch[inner:-inner, inner:-inner]
    centre_patch: np.ndarray  # (S - 2 * inner, S - 2 * inner), cut once: it is fitted on many frames
    fitted_at: set[int] = field(default_factory=set)  # the recent steps (walk positions) where a fit was accepted

    def accept(self, fit: tuple[np.ndarray, np.ndarray], step: int) -> np.ndarray:
        """Take `fit` (aligned point, linear part) as this step's: -> the aligned point."""
        point, self.linear = fit
        self.fitted_at = {k for k in self.fitted_at if k >= step - FITS_KEPT} | {step}
        return point


class _OpenCVSingleThreaded:
    """OpenCV's own threads off while at least one `with` block is inside (process-wide), set back after the last.

    The aligner's workers fit small patches side by side: OpenCV splitting each fit among its threads costs more than
    it gains, and its threads would compete with the workers for the cores. Counted, because two propagations (a run
    and the window's attention on demand) may share fits at the same time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._inside = 0
        self._threads_before = 0

    def __enter__(self):
        with self._lock:
            if self._inside == 0:
                self._threads_before = cv2.getNumThreads()
                cv2.setNumThreads(1)
            self._inside += 1

    def __exit__(self, *exc):
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                cv2.setNumThreads(self._threads_before)


OPENCV_SINGLE_THREADED = _OpenCVSingleThreaded()


class PatchAligner:
    def __init__(self, half_size: int, min_correlation: float, max_shift_px: float, workers: int = 1):
        if half_size < 3:
            raise ValueError(f"the alignment patch needs a half size of at least 3 px, got {half_size}")
        self.half_size = half_size
        self.min_correlation = min_correlation
        self.max_shift_px = max_shift_px
        self._templates: dict[int, _Template | None] = {}  # track index -> template (None: too close to the border)
        # Tracks are fitted independently, each on its own template, and OpenCV releases the GIL while it fits: with
        # several workers the fits run side by side and give the same results as one after another
        self._workers = workers
        self._pool = ThreadPoolExecutor(workers) if workers > 1 else None
        if self._pool is not None:
            weakref.finalize(self, self._pool.shutdown, wait=False)

    def set_template(self, index: int, gray: np.ndarray, point: np.ndarray, step: int = 0) -> None:
        """(Re)start track `index` from `point` (x, y) on the grayscale frame `gray` (at walk position `step`)."""
        x0, y0 = int(round(point[0])) - self.half_size, int(round(point[1])) - self.half_size
        size = 2 * self.half_size + 1
        if x0 < 0 or y0 < 0 or x0 + size > gray.shape[1] or y0 + size > gray.shape[0]:
            self._templates[index] = None
            return
        patch = gray[y0:y0 + size, x0:x0 + size].astype(np.float32)
        if patch.std() < MIN_PATCH_STD:  # a flat patch has nothing to align to
            self._templates[index] = None
            return
        inner = self.half_size - self.half_size // 2
        self._templates[index] = _Template(patch, np.array([point[0] - x0, point[1] - y0], np.float32),
                                           np.eye(2, dtype=np.float32), inner,
                                           np.ascontiguousarray(patch[inner:-inner, inner:-inner]), {step})

    def has_template(self, index: int) -> bool:
        """Can track `index` be aligned at all (its query patch was neither flat nor at the border)?"""
        return self._templates.get(int(index)) is not None

    def align(self, gray: np.ndarray, points: np.ndarray, indices=None, afresh: bool = False, step: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
        """points (N, 2) estimates on `gray` (its pixels, at walk position `step`) -> (N, 2) aligned
        points and (N,) bool: which were moved. Only the tracks in `indices` (all: None) are aligned; tracks
        without a template keep their estimate. `afresh` starts the fits from the query patch as it was
        (no rotation or scale) instead of the last accepted warp: for a point found again far from where it was,
        whose last warp may be one the fit slid into on an occluder's edge as the point went behind it."""
        out = points.astype(np.float32).copy()
        moved = np.zeros(len(points), bool)

        def align_one(index: int, template: _Template) -> None:
            start = np.eye(2, dtype=np.float32) if afresh else template.linear
            fit = self._fit(gray, template.patch, template.centre, start, points[index], self.min_correlation)
            if fit is None and not afresh and {step - 1, step} & template.fitted_at:
                # the centre alone, going on from a fit on the step before: a patch over a surface's edge fits only
                # while the surface behind moves with it. Never to start a fit: alone, a small patch also fits
                # look-alike spots
                fit = self._fit(gray, template.centre_patch, template.centre - template.inner, start, points[index],
                                CENTRE_MIN_CORRELATION)
            if fit is not None:
                out[index] = template.accept(fit, step)
                moved[index] = True

        self._each(align_one, self._usable(points, indices))
        return out, moved

    def search(self, gray: np.ndarray, points: np.ndarray, step: int, indices, after: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """points (N, 2) estimates on `gray` at walk position `step` -> (N, 2) and (N,) bool: those of the tracks in
        `indices` whose patch has not fitted for `after` steps or more, found again by template matching near their
        estimate (see SEARCH_*) and fitted there."""
        out = points.astype(np.float32).copy()
        found = np.zeros(len(points), bool)

        def search_one(index: int, template: _Template) -> None:
            peak = self._best_match(gray, template, points[index])
            if peak is None:
                return
            fit = self._fit(gray, template.patch, template.centre, template.linear, peak, self.min_correlation)
            if fit is not None:
                out[index] = template.accept(fit, step)
                found[index] = True

        def due(template: _Template) -> bool:
            unfit = step - max(template.fitted_at, default=step - FITS_KEPT - 1)
            return unfit >= after and unfit % SEARCH_EVERY == 0

        self._each(search_one, [(index, template) for index, template in self._usable(points, indices)
                                if due(template)])
        return out, found

    def _each(self, work, tracks) -> None:
        """work(index, template) for each (index, template) of `tracks`, shared among the workers."""
        def work_through(share):
            for index, template in share:
                work(index, template)

        tracks = list(tracks)
        if self._pool is None or len(tracks) < 2:
            work_through(tracks)
            return
        shares = [tracks[k::self._workers] for k in range(self._workers)]  # interleaved: neighbours cost alike
        with OPENCV_SINGLE_THREADED:
            running = [self._pool.submit(work_through, share) for share in shares]
            wait(running)  # all of them, so that none is still at work when one has failed
            for done in running:
                done.result()  # (raises what the work raised)

    def _usable(self, points: np.ndarray, indices):
        """(index, template) for the tracks in `indices` (all: None) that have a template and a finite estimate."""
        for index in (self._templates if indices is None else indices):
            template = self._templates.get(int(index))
            if template is not None and index < len(points) and np.isfinite(points[index]).all():
                yield index, template

    def _best_match(self, gray: np.ndarray, template: _Template, point: np.ndarray) -> np.ndarray | None:
        """Where the patch (as last warped) matches best within SEARCH_RADIUS_PX of `point`, if it stands out."""
        size = len(template.patch)
        warp = np.empty((2, 3), np.float32)  # the patch as last seen: its linear part about its centre
        warp[:, :2] = template.linear
        warp[:, 2] = template.centre - template.linear @ template.centre
        patch = cv2.warpAffine(template.patch, warp, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        x1, y1 = np.maximum(0, np.round(point - template.centre - SEARCH_RADIUS_PX)).astype(int)
        x2, y2 = np.minimum(gray.shape[::-1], np.round(point - template.centre + SEARCH_RADIUS_PX) + size).astype(int)
        if x2 - x1 < size + 2 * SEARCH_DISTINCT_PX or y2 - y1 < size + 2 * SEARCH_DISTINCT_PX:
            return None
        scores = cv2.matchTemplate(gray[y1:y2, x1:x2].astype(np.float32), patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best < SEARCH_MIN_CORRELATION:
            return None
        scores[max(0, by - SEARCH_DISTINCT_PX):by + SEARCH_DISTINCT_PX + 1,
               max(0, bx - SEARCH_DISTINCT_PX):bx + SEARCH_DISTINCT_PX + 1] = -1.0
        if scores.max() > best - SEARCH_MARGIN:
            return None
        return np.array([x1 + bx, y1 + by], np.float32) + template.centre

    def _fit(self, gray, patch, centre, start, point, min_correlation) -> tuple[np.ndarray, np.ndarray] | None:
        """ECC fit of `patch` (its `centre` on `point`, linear part `start`) -> (aligned point, linear part), or
        None where it correlates below min_correlation, moves the point too far or is no plausible step."""
        size = len(patch) - 1
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float32)  # the patch's, (4, 2)
        warp = np.empty((2, 3), np.float32)
        warp[:, :2] = start
        warp[:, 2] = point - start @ centre
        # ECC blurs and differentiates its whole input image on every call: it gets only the region the
        # patch can reach (its warped corners, grown by the largest accepted shift), the same fit for
        # a fraction of the time
        reach = corners @ warp[:, :2].T + warp[:, 2]
        margin = self.max_shift_px + CROP_MARGIN_PX
        x1, y1 = np.maximum(0, np.floor(reach.min(0) - margin)).astype(int)
        x2, y2 = np.minimum(gray.shape[::-1], np.ceil(reach.max(0) + margin)).astype(int)
        if x2 - x1 <= size or y2 - y1 <= size:  # (mostly) outside the frame
            return None
        origin = np.array([x1, y1], np.float32)
        warp[:, 2] -= origin
        try:
            correlation, warp = cv2.findTransformECC(patch, gray[y1:y2, x1:x2].astype(np.float32), warp,
                                                     cv2.MOTION_AFFINE, _CRITERIA, None, 3)
        except cv2.error:  # did not converge
            return None
        warp[:, 2] += origin
        aligned = warp[:, :2] @ centre + warp[:, 2]
        # a point outside the frame is out of view, however well the sliver of its patch still inside correlates
        inside = 0 <= aligned[0] <= gray.shape[1] - 1 and 0 <= aligned[1] <= gray.shape[0] - 1
        if (inside and correlation >= min_correlation and np.linalg.norm(aligned - point) < self.max_shift_px
                and _plausible(start, warp[:, :2])):
            return aligned, warp[:, :2].copy()
        return None
