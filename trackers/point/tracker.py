"""TrackStudio's own point tracker: the trained point track predictor run online over a video.

Every point object (one obj_id, `Prompt(point=...)`) is tracked jointly with the others. The walk
goes through the frames in overlapping windows (`window` frames, stride `window // 2`): each
window starts from the previous window's refined estimates, guesses the new frames with
Lucas-Kanade, and the predictor refines all of it. Every guess and every correction is aligned to
the patch around the point's query (align.py: no drift). A point is visible where that alignment
holds or where the model says so; one whose feature no longer matches the query's or the track's
latest trusted one is reported hidden and looked for again, and so is one outside the frame. Once
hidden, a point comes back only on strong evidence (alignment, re-detection, or a confident
visibility), so visibility does not flicker.
A frame is reported once it leaves the overlap, so only one window of feature maps is ever held:
memory does not grow with the video's length.
Frames are resized so their short side is `internal_short_side` (the scale the model was trained at, on
landscape frames, so a portrait video is seen as finely as a landscape one); Lucas-Kanade and the patch
fits work on the grayscale frame, shrunk on large video and enlarged on small video (`max_work_short_side`,
`min_work_short_side`); results come back in original pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..base import Tracker, TrackerConfig
from ..checkpoints import CheckpointError
from ..registry import register
from ..types import FrameResult, ObjectResult, Prompt
from .align import PatchAligner
from .corr import attention_heatmap
from .init_flow import LK_TRACKING_PARAMS, lk_step, to_gray
from .model import (FEATURE_STRIDE, MIN_CORRECTION_PX, EfficientNetFeatures, PointTrackPredictor, PredictorConfig,
                    gate_corrections, query_similarity)


def default_weights() -> Path:
    from trackstudio import resources

    return resources.path("weights", "point_tracker.pt")


@dataclass
class PointTrackerConfig(TrackerConfig):
    window: int = 8  # frames per window; consecutive windows overlap by half
    iters: int = 3  # refinement iterations per window (as trained)
    # frames are resized so their short side is this (aspect kept) for the model: the height of a landscape frame,
    # the width of a portrait one (by the height, a 360x640 portrait frame came to 144 px wide: AJ 0.620 against
    # 0.686 for the same clips upright, session 51)
    internal_short_side: int = 256
    # Lucas-Kanade and the patch fits work on the grayscale frame shrunk so its short side is at most this (None:
    # never shrunk). Their pixel sizes (LK's window, the patch, its reach) were chosen on
    # 360-480 px video; on larger video a frame's motion outgrows them and the patch covers too little texture
    # (session 52, see the point card)
    max_work_short_side: int | None = 720
    # ... and enlarged (pixels repeated, INTER_AREA) so its short side is at least this, its long side at most
    # MAX_WORK_LONG_SIDE (None: never enlarged). On small video a 25-px patch and LK's window cover too much of the
    # frame (session 53, see the point card)
    min_work_short_side: int | None = 360
    # A point whose patch does not fit is seen where its visibility probability is at least this and its confidence at
    # least that (the same test picks the hidden points to look for and the frames that give a trusted feature).
    # Session 35, five-set mean of AJ and OA (see the point card): visibility 0.5 (before) 0.66612, 0.6 0.66622,
    # 0.7 0.66633, 0.8 0.66580. A lower confidence threshold raised the mean (0.4 0.66781, 0.2 0.67041) by showing
    # more joints, but reported fewer covered frames hidden (cover clips 0.469 -> 0.454, 0.393): not changed
    visibility_threshold: float = 0.7
    confidence_threshold: float = 0.5
    # A point reported hidden is reported visible again only where its patch alignment holds (or it
    # is re-detected and the alignment confirms it), or its visibility probability reaches this
    # (hysteresis: no flicker). None: points that have a query patch come back only by alignment.
    reappear_visibility: float | None = 0.8
    # An estimate whose feature matches neither the track's query feature nor its latest trusted
    # one with a cosine similarity of at least this has lost the point (drifted onto an occluder
    # or the background): it is reported hidden and looked for again. None: no such check.
    min_similarity: float | None = 0.4
    # An estimate whose feature matches the query or latest trusted one at least this well (cosine) is
    # confident: its confidence is at least that similarity. On real video a deforming object (animal
    # joints) lowers the predictor's confidence while the point stays on it. Session 13, BADJA joints AJ /
    # OA, sel_360 AJ / OA: None (before) 0.232 / 0.700, 0.610 / 0.893; 0.8: 0.235 / 0.715; 0.7: 0.235 / 0.734,
    # 0.605 / 0.900; 0.6: 0.233 / 0.743; 0.5: 0.234 / 0.748. Below 0.7 the tests' point behind a bar is
    # reported hidden on fewer of its covered frames (0.6: 3 of 11, 0.5: 2; 0.7: 4, as None)
    confident_similarity: float | None = 0.7
    # A reported visible estimate whose feature matches the query or latest trusted feature at
    # least this well becomes the latest trusted feature (appearance changes on real video).
    trust_similarity: float = 0.6
    # A point reported hidden is looked for again within `redetect_radius_px` (internal pixels):
    # where its query feature matches with at least this cosine similarity, and better by `redetect_margin`
    # than anywhere 16 px or more away (not a like stripe or tile), it is back. None: off.
    # Session 33: 0.8 (0.9 before, without the distinct-match test): five-set mean
    # 0.6546 against 0.6532, held-out DAVIS train visible 0.863 against 0.858 (point card, "Session 33").
    redetect_similarity: float | None = 0.8
    redetect_radius_px: float = 96.0
    # A point reported visible whose patch does not fit and whose feature is no confident match is looked for
    # too. It is moved where its query feature matches at least this much better than where it is and than
    # anywhere 16 px or more from there, if the query patch fits there (else it stays). A point left on a still
    # occluder looks visible to the visibility head, so the re-detection above never ran for it. Session 33
    # (points behind a still bar, picked up / stuck of 24; five-set mean, see the point card), hidden points at
    # 0.9 without the distinct-match test: None 13 / 8, 0.6525; 0.1: 18 / 4, 0.6521; 0.15: 17 / 5, 0.6532.
    # None: neither shown points looked for nor the distinct-match test.
    redetect_margin: float | None = 0.15
    redetect_shown_similarity: float = 0.8  # ... and at least this (the query patch must fit there as well)
    redetect_shown_radius_px: float = 160.0  # ... within this (internal pixels)
    # Every first guess is re-aligned to the patch (2 * align_half_size + 1 pixels of the grayscale work frame)
    # around its query point (align.py) when the fit correlates at least this well and moves it less than
    # align_max_shift_px (work-frame pixels). None: no alignment.
    align_half_size: int | None = 12
    align_min_correlation: float = 0.75
    align_max_shift_px: float = 12.0
    # A point that left the frame is back once its query patch fits on this many consecutive frames: where
    # it left, the patch fits now and then on whatever is there (parkour's bollard: the concrete post's patches
    # fitted the building's wall on single frames, or two in a row, 10 to 50 frames after it left; on the AVX2
    # machine of ../shared/ENVIRONMENT.md with two threads, three in a row, 61-63). Session 21, BADJA AJ / OA and
    # sel_360 AJ / OA: 3 fits 0.2319 / 0.7378, 0.6223 / 0.9110; 4 fits 0.2319 / 0.7378, 0.6227 / 0.9115
    reenter_fits: int = 4
    init: str = "lk"  # first guess on new frames: "lk" (Lucas-Kanade) or "static" (last position)
    # corrections of the first guess smaller than this (internal pixels) are not applied (model.py)
    min_correction_px: float = MIN_CORRECTION_PX
    # and only where the corrected point's feature is this much closer to the query's (cosine);
    # None: no such check
    verify_margin: float | None = 0.0

    def __post_init__(self):
        if self.reenter_fits < 1:
            raise ValueError(f"reenter_fits must be at least 1 (frames), got {self.reenter_fits}")
        low, high = self.min_work_short_side, self.max_work_short_side
        if any(side is not None and side < 16 for side in (low, high)) or (
                low is not None and high is not None and low > high):
            raise ValueError(f"min_work_short_side ({low}) and max_work_short_side ({high}) must be at least 16 px, "
                             "the first at most the second")


# A re-detected point must match there better, by `redetect_margin`, than anywhere further than this many
# feature cells (16 internal pixels) away.
DISTINCT_CELLS = 4

# A hidden point is looked for by its patch (align.py) once the patch has not fitted for this many steps, a shown
# one after this many (session 34, see the point card)
SEARCH_HIDDEN_AFTER, SEARCH_SHOWN_AFTER = 2, 6

# A point last seen at most this many frames ago whose motion then carries it out of the frame has
# left the view (further back, the extrapolation says too little).
OUT_OF_VIEW_STEPS = 3
# ...and one whose estimate lies within a patch's width (2 * align_half_size work pixels) of the border while its last
# two patch fits, at most EXIT_FIT_GAP steps apart and the later at most EXIT_FIT_AGE steps back, carry it out at their
# velocity. The estimates cannot leave the frame: they stop at the border or slide along it, and a stopped estimate
# that is still shown is what the rule above extrapolates from. Session 60 (point card): on the generated sets most
# hidden point-frames reported visible were points outside the frame shown at its border; away from the border the
# fits' velocity also sends a jumping dancer's points out of the top of the frame (DAVIS train dance-jump)
EXIT_FIT_GAP, EXIT_FIT_AGE = 3, 12

# An enlarged work frame (min_work_short_side) is never longer than this: a 16:9 frame at the 720-px cap
MAX_WORK_LONG_SIDE = 1280

# The model's frames are never longer than this (internal pixels): a panorama or a strip of video keeps a frame of
# a few times the usual 256x455 (a 16:9 video) instead of growing with its aspect ratio.
MAX_INTERNAL_SIDE = 1024


def load_predictor(path: str | Path, device: torch.device) -> PointTrackPredictor:
    """The predictor saved by trackers.point.train (--export): {"config", "state_dict", "meta"}."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"point tracker weights not found: {path} (train them with "
                              f"scripts/train_point_tracker.py --export {path})")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = PredictorConfig.from_dict(saved["config"])
        model = PointTrackPredictor(config, pretrained=False)
        model.load_state_dict(saved["state_dict"], strict=True)
    except Exception as exc:  # torch raises many types for truncated, corrupt or foreign files
        raise CheckpointError(f"{path} is not a point tracker checkpoint this version can load "
                              f"(corrupt, truncated or another format): {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if isinstance(model.features, EfficientNetFeatures):
        model.features.backbone.fuse_batchnorm()  # the tracker only infers: faster, and never saved
    return model.eval().to(device)


def _inside(point: np.ndarray, width: int, height: int) -> bool:
    return bool(0 <= point[0] <= width - 1 and 0 <= point[1] <= height - 1)


def _carried_out(track: "_Track", p: int, width: int, height: int, point: np.ndarray, near: np.ndarray) -> bool:
    """Whether the track's motion carries it out of the frame by walk position p: its motion when last seen (within
    OUT_OF_VIEW_STEPS), or, where its estimate `point` lies within `near` (x, y) pixels of the border, the velocity
    between its last two patch fits (EXIT_FIT_GAP, EXIT_FIT_AGE)."""
    if track.last_seen is not None and abs(p - track.last_seen[1]) <= OUT_OF_VIEW_STEPS:
        if not _inside(track.last_seen[0] + track.velocity * abs(p - track.last_seen[1]), width, height):
            return True
    if len(track.last_fits) < 2:
        return False
    (before, p_before), (last, p_last) = track.last_fits
    if p_last - p_before > EXIT_FIT_GAP or p - p_last > EXIT_FIT_AGE:
        return False
    at_border = np.any(np.minimum(point, np.array([width - 1, height - 1]) - point) < near)
    return bool(at_border) and not _inside(last + (last - before) * ((p - p_last) / (p_last - p_before)), width, height)


@dataclass
class _Track:
    """One point object's state during a walk."""

    obj_id: int
    query_feat: torch.Tensor  # (C,) feature at its latest visible prompt
    start_pos: int  # walk position where it joined the walk
    trusted_feat: torch.Tensor | None = None  # (C,) latest feature that matched query or trusted
    shown: bool = True  # reported visible on the latest reported frame (hysteresis)
    # where it was last reported visible (original pixels, walk position) and how it moved then
    last_seen: tuple[np.ndarray, int] | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # px per walk step
    gone: bool = False  # left the frame: hidden until its query patch fits again, on reenter_fits frames in a row
    fits_while_gone: int = 0  # consecutive frames the query patch fitted while gone
    last_fits: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (point, walk position) of its last two fits

    def __post_init__(self):
        if self.trusted_feat is None:
            self.trusted_feat = self.query_feat


@register("point_transformer", kind="point", priority=10,
          description="TrackStudio's transformer point tracker (correlation pyramid + update transformer, "
                      "trained on procedural clips); visibility, confidence and attention heatmaps")
class TransformerPointTracker(Tracker):
    kind = "point"
    config_cls = PointTrackerConfig

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        if self.config.window < 2 or self.config.window > 16:
            raise ValueError(f"window must be between 2 and 16 frames, got {self.config.window}")
        if self.config.init not in ("lk", "static"):
            raise ValueError(f"init must be 'lk' or 'static', got {self.config.init!r}")
        self.model = load_predictor(checkpoint or default_weights(), self.device)

    # -- per-frame inputs ------------------------------------------------------------------------
    def _scale(self) -> tuple[float, float, tuple[int, int]]:
        height, width = self.frames[0].shape[:2]
        factor = min(self.config.internal_short_side / min(height, width), MAX_INTERNAL_SIDE / max(height, width))
        internal_h = max(16, int(round(height * factor)))
        internal_w = max(16, int(round(width * factor)))
        return internal_w / width, internal_h / height, (internal_h, internal_w)

    def _work_size(self) -> tuple[int, int]:
        """(h, w) of the grayscale frame that Lucas-Kanade and the patch fits work on."""
        height, width = self.frames[0].shape[:2]
        short, long = min(height, width), max(height, width)
        cap, floor = self.config.max_work_short_side, self.config.min_work_short_side
        if cap is not None and short > cap:
            factor = cap / short
        elif floor is not None and short < floor:
            factor = max(1.0, min(floor / short, MAX_WORK_LONG_SIDE / long))
        else:
            return height, width
        return max(1, int(round(height * factor))), max(1, int(round(width * factor)))

    @torch.no_grad()
    def _frame_inputs(self, frame_idx: int, size: tuple[int, int], work_size: tuple[int, int]
                      ) -> tuple[list[torch.Tensor], np.ndarray]:
        """The frame's correlation pyramid [(1, h_l, w_l, C)] and its grayscale image at `work_size` (h, w)
        (Lucas-Kanade guesses finer than the model's frame: sub-pixel there, which the gate then keeps)."""
        frame = np.asarray(self.frames[frame_idx])
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame {frame_idx}: expected an (H, W, 3) uint8 RGB image, got "
                             f"{frame.shape} {frame.dtype}")
        small = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        fmaps = self.model.encode_frames(torch.from_numpy(small)[None].to(self.device))
        gray = to_gray(frame)
        if gray.shape != work_size:
            gray = cv2.resize(gray, (work_size[1], work_size[0]), interpolation=cv2.INTER_AREA)
        return self.model.pyramid(fmaps), gray

    # -- propagation -----------------------------------------------------------------------------
    @torch.no_grad()
    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        walk = list(self._frame_range(start_frame_idx, reverse, end_frame_idx))
        sx, sy, size = self._scale()
        scale = np.array([sx, sy], np.float32)  # internal pixels per video pixel
        work_size = self._work_size()
        height, width = self.frames[0].shape[:2]
        frame_wh = (width, height)
        work = np.array([work_size[1] / width, work_size[0] / height], np.float32)  # work pixels per video pixel
        work_scale = scale / work  # internal pixels per pixel of the frames Lucas-Kanade and the fits work on
        # a patch's width in video pixels: how near the border an estimate waits for `_carried_out`
        near_border = 2.0 * (self.config.align_half_size or 0) * np.array([width / work_size[1], height / work_size[0]])
        window, stride = self.config.window, self.config.window // 2
        inputs: dict[int, tuple[list[torch.Tensor], np.ndarray]] = {}  # walk position -> frame inputs
        tracks: list[_Track] = []
        aligner = (PatchAligner(self.config.align_half_size, self.config.align_min_correlation,
                                self.config.align_max_shift_px, workers=torch.get_num_threads())
                   if self.config.align_half_size else None)
        coords: dict[int, np.ndarray] = {}  # walk position -> (N, 2) internal pixels
        aligned: dict[int, np.ndarray] = {}  # walk position -> (N,) bool: the estimate fits its query patch
        judged: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # walk position -> (N,) visibility, confidence
        anchors: dict[int, dict[int, np.ndarray]] = {}  # walk position -> track index -> point
        seen = 0  # walk positions [0, seen) have been guessed at least once
        pos = 0
        while pos < len(walk):
            end = min(pos + window, len(walk))
            for p in range(pos, end):
                if p not in inputs:
                    inputs[p] = self._frame_inputs(walk[p], size, work_size)
            for p in range(seen, end):  # frames entering for the first time: joins and guesses
                self._guess(p, walk[p], tracks, coords, aligned, anchors, inputs, work_scale, work, aligner)
            seen = end
            positions = list(range(pos, end))
            last_window = end == len(walk)
            report_until = end if last_window else pos + stride
            if tracks:
                refined, vis, conf, feats = self._refine(positions, tracks, coords, aligned, anchors, inputs,
                                                         work_scale, aligner)
                for i, p in enumerate(positions):
                    coords[p] = refined[i]
                if pos in judged:  # the window's first frame is pinned: its visibility is the last window's
                    last_vis, last_conf = judged[pos]
                    kept = [n for n in range(len(last_vis)) if n not in anchors.get(pos, {})]
                    vis[0, kept], conf[0, kept] = last_vis[kept], last_conf[kept]
                for i, p in enumerate(positions[1:], start=1):
                    judged[p] = vis[i].copy(), conf[i].copy()
            for p in range(pos, report_until):
                i = p - pos
                results = {}
                if tracks:
                    heat = (attention_heatmap(inputs[p][0][0][0], self.model.corr_proj(feats[i])).cpu().numpy()
                            if self.config.return_attention else None)
                    visible = self._visible(tracks, coords[p] / scale, aligned[p], vis[i], conf[i], p, aligner,
                                           frame_wh, near_border)
                    for n, track in enumerate(tracks):
                        if p < track.start_pos:
                            continue
                        results[track.obj_id] = ObjectResult(
                            point=(coords[p][n] / scale).astype(np.float32), visible=bool(visible[n]),
                            score=float(conf[i, n]), attention=heat[n] if heat is not None else None)
                for obj_id, prompt in self._prompts_at(walk[p]).items():  # keyframes are ground truth
                    results[obj_id] = ObjectResult(point=prompt.point, visible=prompt.visible, score=1.0,
                                                   attention=results.get(obj_id, ObjectResult()).attention)
                    for track in tracks:
                        if track.obj_id == obj_id:  # a keyframe restarts its visibility and motion
                            track.shown = prompt.visible
                            track.last_seen = (np.asarray(prompt.point, np.float32), p) if prompt.visible else None
                            track.velocity = np.zeros(2, np.float32)
                            track.gone = False
                            track.last_fits = []
                yield FrameResult(walk[p], results)
            if tracks and self.config.min_similarity is not None:
                self._update_trusted(tracks, coords, vis, conf, inputs, range(pos, report_until), pos)
            for p in range(pos, report_until):  # constant memory: drop what no window needs again
                inputs.pop(p, None)
                coords.pop(p, None)
                aligned.pop(p, None)
                judged.pop(p, None)
                anchors.pop(p, None)
            pos = report_until

    def _visible(self, tracks, points, aligned, vis, conf, p, aligner, frame_wh, near_border) -> np.ndarray:
        """(N,) what to report visible on walk position p (points (N, 2) in original pixels), and
        each track's state updated: a point that left the frame (its estimate, or where its motion
        when last seen, at most OUT_OF_VIEW_STEPS ago, carries it, is outside) is hidden until its query
        patch fits again on `reenter_fits` frames in a row; a shown point stays shown while its patch
        alignment holds or the model sees it; a hidden one needs its alignment, a re-detection or a
        confident visibility to come back. frame_wh: the video's (width, height); near_border: (2,) how near
        its border an estimate waits (`_carried_out`), in video pixels."""
        width, height = frame_wh
        seen = aligned | ((vis >= self.config.visibility_threshold) & (conf >= self.config.confidence_threshold))
        visible = np.zeros(len(tracks), bool)
        for n, track in enumerate(tracks):
            if p < track.start_pos:
                continue
            if aligned[n]:
                track.last_fits = track.last_fits[-1:] + [(points[n].copy(), p)]
            if track.gone:
                track.fits_while_gone = track.fits_while_gone + 1 if aligned[n] else 0
                track.gone = track.fits_while_gone < self.config.reenter_fits
            elif aligned[n]:
                pass  # its query patch fits: in view
            elif not _inside(points[n], width, height):
                track.gone, track.fits_while_gone = True, 0
            else:
                # where its motion when last seen, or between its last fits, carries it; not the estimate, which
                # lands on whatever is near the border once the point has left (parkour's bollard top: 29 px back
                # inside on the wall)
                track.gone = _carried_out(track, p, width, height, points[n], near_border)
                track.fits_while_gone = 0
            if self.config.reappear_visibility is not None:
                back = aligned[n] or vis[n] >= self.config.reappear_visibility
            else:
                back = aligned[n] if aligner is not None and aligner.has_template(n) else seen[n]
            visible[n] = not track.gone and (seen[n] if track.shown else back)
            track.shown = bool(visible[n])
            if visible[n]:
                if track.last_seen is not None:
                    last_point, last_p = track.last_seen
                    step = (points[n] - last_point) / max(abs(p - last_p), 1)
                    track.velocity = 0.5 * track.velocity + 0.5 * step.astype(np.float32)
                track.last_seen = (points[n].copy(), p)
        return visible

    def _prompts_at(self, frame_idx: int) -> dict[int, Prompt]:
        return {obj_id: prompt for obj_id, prompt in self.prompts.get(frame_idx, {}).items()
                if prompt.point is not None}

    def _guess(self, p, frame_idx, tracks, coords, aligned, anchors, inputs, scale, work, aligner) -> None:
        """First guess for walk position p (new to the walk): move the known points on from p - 1
        (and align them to their query patches), then (re)start the objects prompted on this frame.
        `scale`: internal pixels per pixel of the grayscale frames; `work`: their pixels per video pixel."""
        if p > 0 and (p - 1) in coords and len(coords[p - 1]):
            prev = coords[p - 1] / scale
            guess = (lk_step(inputs[p - 1][1], inputs[p][1], prev, LK_TRACKING_PARAMS) if self.config.init == "lk"
                     else prev.copy())
            fits = np.zeros(len(guess), bool)
            if aligner is not None:
                guess, fits = aligner.align(inputs[p][1], guess, step=p)
                self._align_where_motion_goes(p, coords, scale, prev, guess, fits, inputs, aligner)
                # shown points only after longer without a fit: after 2 steps, one beside a bear's lower edge matched
                # with the ground a few px off and went off the bear (held-out DAVIS train on the mask 0.954 -> 0.937)
                for shown, after in ((False, SEARCH_HIDDEN_AFTER), (True, SEARCH_SHOWN_AFTER)):
                    indices = [n for n, track in enumerate(tracks) if track.shown == shown]
                    searched, found = aligner.search(inputs[p][1], guess, p, indices, after)
                    guess[found], fits[found] = searched[found], True
            coords[p] = guess * scale
            aligned[p] = fits
        else:
            coords[p] = np.zeros((len(tracks), 2), np.float32)
            aligned[p] = np.zeros(len(tracks), bool)
        level0 = inputs[p][0][0]  # (1, h, w, C)
        for obj_id, prompt in self._prompts_at(frame_idx).items():
            work_point = prompt.point * work
            point = work_point * scale
            if not prompt.visible:
                continue  # nothing to take a feature from; the prompt's state is reported as given
            query_feat = self.model.query_features(level0, torch.from_numpy(point)[None, None].to(level0))[0, 0]
            index = next((n for n, t in enumerate(tracks) if t.obj_id == obj_id), None)
            if index is None:  # a new track: one more column in every stored estimate
                tracks.append(_Track(obj_id, query_feat, p))
                index = len(tracks) - 1
                for q in coords:
                    coords[q] = np.concatenate([coords[q], point[None].astype(np.float32)])
                    aligned[q] = np.append(aligned[q], False)
            else:  # re-anchored: the latest keyframe's feature is the best description
                tracks[index].query_feat = tracks[index].trusted_feat = query_feat
            if aligner is not None:
                aligner.set_template(index, inputs[p][1], work_point, step=p)
            coords[p][index] = point
            aligned[p][index] = True  # the prompt itself
            anchors.setdefault(p, {})[index] = point

    @staticmethod
    def _align_where_motion_goes(p, coords, scale, prev, guess, fits, inputs, aligner) -> None:
        """Where the query patch does not fit at Lucas-Kanade's guess, try where the point's last step carries
        it (in place): on weak texture Lucas-Kanade can jump tens of pixels, forward-backward consistent."""
        last_step = prev - coords[p - 2] / scale if (p - 2) in coords and len(coords[p - 2]) == len(prev) else 0.0
        expected = prev + last_step
        # (closer than a quarter of the fit's reach, the fit from there is the one that just failed)
        retry = np.flatnonzero(~fits & (np.linalg.norm(guess - expected, axis=-1) > aligner.max_shift_px / 4))
        if len(retry):
            realigned, fits_there = aligner.align(inputs[p][1], expected, retry, step=p)
            guess[fits_there], fits[fits_there] = realigned[fits_there], True

    def _refine(self, positions, tracks, coords, aligned, anchors, inputs, scale, aligner):
        """Run the predictor on one window -> coords (T, N, 2), vis (T, N), conf (T, N), feats (T, N, C).
        `scale`: internal pixels per pixel of the grayscale frames."""
        T, N = len(positions), len(tracks)
        device = self.device
        pyramid = [torch.cat([inputs[p][0][level] for p in positions]) for level in range(len(inputs[positions[0]][0]))]
        init = torch.from_numpy(np.stack([coords[p] for p in positions]))[None].to(device)
        anchor_mask = torch.zeros(1, T, N, dtype=torch.bool, device=device)
        valid = torch.zeros(1, T, N, dtype=torch.bool, device=device)
        for n, track in enumerate(tracks):
            first = max(track.start_pos, positions[0])
            valid[0, first - positions[0]:, n] = True
            # the window's first frame holds the estimate the last window settled on: keep it fixed,
            # as in training, where the first frame of every window is the query
            anchor_mask[0, first - positions[0], n] = True
        for i, p in enumerate(positions):
            for n, point in anchors.get(p, {}).items():
                init[0, i, n] = torch.from_numpy(point)
                anchor_mask[0, i, n] = True
        query_feats = torch.stack([t.query_feat for t in tracks])[None]
        coord_preds, vis, conf, feats = self.model(pyramid, query_feats, init, anchor_mask, valid, iters=self.config.iters)
        vis_prob = torch.sigmoid(vis[-1][0])
        for i, p in enumerate(positions):  # a visible prompt means visible
            for n in anchors.get(p, {}):
                vis_prob[i, n] = 1.0
        refined = coord_preds[-1][0]
        accept = None
        if self.config.verify_margin is not None:  # a correction must look more like the query
            accept = (query_similarity(pyramid[0], refined, query_feats[0]) >
                      query_similarity(pyramid[0], init[0], query_feats[0]) + self.config.verify_margin)
        refined = gate_corrections(init[0], refined, self.config.min_correction_px, accept)
        # an estimate that fits its query patch under an affine warp is measured against the query's
        # own appearance: the predictor does not move it, and it is neither lost nor looked for elsewhere
        # (features are not rotation invariant; the patch fit follows rotation and scale)
        fits = torch.from_numpy(np.stack([aligned[p] for p in positions])).to(device)
        refined = torch.where(fits[..., None], init[0], refined)
        conf_prob = torch.sigmoid(conf[-1][0])
        lost = torch.zeros_like(vis_prob, dtype=torch.bool)
        here = query_similarity(pyramid[0], refined, query_feats[0])  # (T, N) each estimate against its query
        if self.config.min_similarity is not None or self.config.confident_similarity is not None:
            trusted_feats = torch.stack([t.trusted_feat for t in tracks])
            similarity = torch.maximum(here, query_similarity(pyramid[0], refined, trusted_feats))
            if self.config.min_similarity is not None:
                lost = (similarity < self.config.min_similarity) & ~anchor_mask[0]
            if self.config.confident_similarity is not None:
                matches = similarity >= self.config.confident_similarity
                conf_prob = torch.where(matches, torch.maximum(conf_prob, similarity), conf_prob)
        lost &= ~fits
        redetected, moved_shown, before = set(), set(), None
        if self.config.redetect_similarity is not None:
            hidden = ((vis_prob < self.config.visibility_threshold) | (conf_prob < self.config.confidence_threshold)
                      | lost) & ~fits
            minimum = torch.full_like(vis_prob, self.config.redetect_similarity)
            shown = torch.zeros_like(hidden)
            if self.config.redetect_margin is not None and aligner is not None:
                shown = ~hidden & ~fits & ~anchor_mask[0]
                if self.config.confident_similarity is not None:  # a confident match is where it is
                    shown &= here < self.config.confident_similarity
                minimum = torch.where(shown, torch.clamp(here + self.config.redetect_margin,
                                                         min=self.config.redetect_shown_similarity), minimum)
                before = refined.clone(), vis_prob.clone(), conf_prob.clone()  # to undo a move the patch denies
            redetected = self._redetect(pyramid[0], query_feats[0], refined, vis_prob, conf_prob, lost, hidden,
                                        shown, minimum)
            moved_shown = {(t, n) for t, n in redetected if shown[t, n]}
        vis_prob[lost] = 0.0
        refined = refined.cpu().numpy()
        if aligner is not None:  # what the predictor or the re-detection moved is aligned again
            moved = np.linalg.norm(refined - init[0].cpu().numpy(), axis=-1) > 0.5
            for i, p in enumerate(positions):
                indices = np.flatnonzero(moved[i])
                if len(indices):
                    realigned, fits_now = aligner.align(inputs[p][1], refined[i] / scale, indices, step=p)
                    refined[i] = realigned * scale
                    aligned[p][indices] = fits_now[indices]
            for i, n in redetected:  # a re-detection counts once the query patch fits there too
                p = positions[i]
                if not aligner.has_template(n) or aligned[p][n]:
                    continue
                # from the query's own warp: the last one may have slid onto an occluder's edge (align.py)
                realigned, fits_now = aligner.align(inputs[p][1], refined[i] / scale, [n], afresh=True, step=p)
                refined[i, n], aligned[p][n] = realigned[n] * scale, fits_now[n]
                if not aligned[p][n]:
                    if (i, n) in moved_shown:  # a shown point stays where it was, as it was
                        coords_before, vis_before, conf_before = before
                        refined[i, n] = coords_before[i, n].cpu().numpy()
                        vis_prob[i, n], conf_prob[i, n] = vis_before[i, n], conf_before[i, n]
                    else:
                        vis_prob[i, n] = 0.0
        return refined, vis_prob.cpu().numpy(), conf_prob.cpu().numpy(), feats[0]

    def _update_trusted(self, tracks, coords, vis, conf, inputs, reported, window_start) -> None:
        """Take each track's feature on the reported frames where it is visible and still looks
        like its query or trusted feature as the new trusted feature (frames in walk order)."""
        query_feats = torch.stack([t.query_feat for t in tracks])
        for p in reported:
            i = p - window_start
            level0 = inputs[p][0][0]
            points = torch.from_numpy(coords[p])[None].to(level0)
            feats = self.model.query_features(level0, points)[0]  # (N, C)
            trusted_feats = torch.stack([t.trusted_feat for t in tracks])
            similarity = torch.maximum(F.cosine_similarity(feats, query_feats, dim=-1),
                                       F.cosine_similarity(feats, trusted_feats, dim=-1))
            for n, track in enumerate(tracks):
                if (p >= track.start_pos and vis[i, n] >= self.config.visibility_threshold
                        and conf[i, n] >= self.config.confidence_threshold
                        and similarity[n] >= self.config.trust_similarity):
                    track.trusted_feat = feats[n]

    def _redetect(self, level0, query_feats, coords, vis_prob, conf_prob, lost, hidden, shown, minimum
                  ) -> set[tuple[int, int]]:
        """Look for the hidden and the `shown` points ((T, N) bool each) near their estimate (in place): the
        best match of the query feature within the radius, if its cosine similarity is at least `minimum`
        ((T, N)). A lost point found again is no longer lost. Returns the (window frame, track) pairs found."""
        frames_idx, points_idx = torch.nonzero(hidden | shown, as_tuple=True)
        if len(frames_idx) == 0:
            return set()
        is_shown = shown[frames_idx, points_idx]
        radii = torch.where(is_shown, self.config.redetect_shown_radius_px,
                            self.config.redetect_radius_px) / FEATURE_STRIDE  # (K,) cells
        T, h, w, C = level0.shape
        maps = F.normalize(level0, dim=-1).reshape(T, h * w, C)
        queries = F.normalize(query_feats, dim=-1)[points_idx]  # (K, C)
        sims = torch.empty(len(frames_idx), h * w, dtype=maps.dtype, device=maps.device)
        for t in torch.unique(frames_idx).tolist():  # one matrix product per frame, not one map copy per point
            rows = torch.nonzero(frames_idx == t)[:, 0]
            sims[rows] = queries[rows] @ maps[t].T
        # only the cells within the radius: the bounding square of each circle, cells outside it (or the map) at -1
        side = 2 * int(np.ceil(float(radii.max()))) + 2
        cells = coords[frames_idx, points_idx] / FEATURE_STRIDE  # (K, 2)
        offsets = torch.arange(side, device=sims.device)
        xs = torch.floor(cells[:, :1] - radii[:, None]).long() + offsets  # (K, side)
        ys = torch.floor(cells[:, 1:] - radii[:, None]).long() + offsets
        near = (((xs[:, None, :] - cells[:, 0, None, None]) ** 2 + (ys[:, :, None] - cells[:, 1, None, None]) ** 2
                 <= radii[:, None, None] ** 2) & ((xs >= 0) & (xs < w))[:, None, :] & ((ys >= 0) & (ys < h))[:, :, None])
        cells_at = (ys.clamp(0, h - 1)[:, :, None] * w + xs.clamp(0, w - 1)[:, None, :]).reshape(len(sims), -1)
        window = torch.gather(sims, 1, cells_at).masked_fill(~near.reshape(len(sims), -1), -1.0)  # (K, side * side)
        best, at = window.max(-1)
        flat = torch.gather(cells_at, 1, at[:, None])[:, 0]
        found = best >= minimum[frames_idx, points_idx]
        if self.config.redetect_margin is not None:  # and stand out: a like stripe or tile further away
            best_x, best_y = flat % w, flat // w
            beyond = ((xs[:, None, :] - best_x[:, None, None]) ** 2 + (ys[:, :, None] - best_y[:, None, None]) ** 2
                      > DISTINCT_CELLS ** 2).reshape(len(sims), -1)
            runner_up = window.masked_fill(~beyond, -1.0).max(-1).values
            found &= best >= runner_up + self.config.redetect_margin
        redetected = set()
        for k in torch.nonzero(found)[:, 0].tolist():  # frames in time order
            t, n = int(frames_idx[k]), int(points_idx[k])
            coords[t, n] = torch.stack([flat[k] % w, flat[k] // w]).to(coords) * FEATURE_STRIDE
            vis_prob[t, n] = 1.0
            conf_prob[t, n] = float(best[k])
            lost[t, n] = False
            redetected.add((t, n))
            # later hidden frames of this window start from here (the next window refines them)
            for later in range(t + 1, T):
                if hidden[later, n] and (later, n) not in redetected:
                    coords[later, n] = coords[t, n]
        return redetected
