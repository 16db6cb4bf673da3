"""SiamFC inference (Bertinetto et al. 2016) with optional STARK-style template updates and a
lost / re-found state.

Per frame, for each target: crop the search region around the last centre at `scale_num` scales
(side x_side * scale_step^k, resampled to instance_size, mean-colour borders), extract features,
cross-correlate with the template kernel(s), upsample the responses x`response_up` (bicubic),
penalise the non-central scales, take the best scale, blend its normalised response with a Hann
window and move the centre to the peak (total_stride / response_up instance pixels per upsampled
cell). The size follows the chosen scale through a learning rate.

Optionally (extent_weight > 0) the box is also pulled towards the extent of the foreground blob
that nearest-neighbour feature matching finds around the peak (fg_matching.py), which lets it
change aspect ratio, and that blob's foreground probability at the peak ("presence") is a second
opinion on whether the target is there at all.

With foreground_kernel, the kernel's cells are weighted by their foreground probability on the
prompt frame (from the foreground matching above): the background inside a box would otherwise
pull the response along with it (a dog running before a panning camera).

Optionally (align_weight > 0) the target's grayscale box on its prompt frame is then fitted onto
the frame by an affine ECC alignment started from that box (box_align.py); where it correlates well,
it sets the box to sub-pixel precision (the scale pyramid's steps are coarse and biased).

Confidence is the raw response at the chosen peak over the response the first template gets on
its own frame. Below `lost_threshold` (and, with foreground matching, below `presence_threshold`
presence) the target is reported not visible (its last box kept), the tracker stops moving it and
searches a `lost_search_scale` times wider region at the same pixel scale until a peak above
`found_threshold` (or with `found_presence`) shows it again.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..base import SequentialTracker, TrackerConfig
from ..types import ObjectResult, Prompt
from ..types import prompt_box
from .box_align import BoxAligner
from .crops import box_to_cxcywh, crop_square, crop_to_frame, cxcywh_to_box, paste_map
from .fg_matching import ForegroundMatcher, MatchEvidence
from .shared_search import SearchRegion, SharedPass
from .template_bank import TemplateBank, TemplateUpdate

ATTENTION_DOWNSCALE = 4  # attention maps are 1/4 of the frame size (the view stretches them)
MIN_SIDE_PX = 4.0
DISTRACTOR_SCAN_CONFIDENCE = 0.8  # response at the target over its prompt-frame response
MAX_DISTRACTORS = 3  # the strongest look-alikes remembered per target


def search_side(size: np.ndarray, context: float = 0.5, search_to_template: float = 2.0) -> float:
    """Side in frame pixels of the search region of a target of size (w, h): the template side
    sqrt((w + p)(h + p)) with the context margin p = context * (w + h), times search_to_template."""
    size = np.asarray(size, np.float64)
    return float(np.sqrt(np.prod(size + context * size.sum()))) * search_to_template


def edge_gaps(box: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(4,) distances of a box [x1, y1, x2, y2] (a point: [x, y, x, y]) from the frame's sides: left, top,
    right, bottom."""
    height, width = frame_hw
    return np.array([box[0], box[1], width - box[2], height - box[3]])


def touched_sides(box: np.ndarray, frame_hw: tuple[int, int], margin: float) -> tuple[int, ...]:
    """The frame sides (0 left, 1 top, 2 right, 3 bottom) that a box [x1, y1, x2, y2] lies within
    `margin` of the frame's size from."""
    height, width = frame_hw
    sides = np.array([width, height, width, height])
    return tuple(int(side) for side in np.flatnonzero(edge_gaps(box, frame_hw) <= margin * sides))


@functools.lru_cache(maxsize=8)
def _hann_window(height: int, width: int, influence: float) -> np.ndarray:
    """(height, width) float32 cosine window summing to `influence` (read-only: it is shared)."""
    window = np.outer(np.hanning(height), np.hanning(width))
    window *= influence / window.sum()
    window = window.astype(np.float32)
    window.flags.writeable = False
    return window


@dataclass
class SiamFCConfig(TrackerConfig):
    # --- the paper's inference parameters (defaults of the widely used PyTorch port) ---
    context: float = 0.5  # context margin p = context * (w + h) around the target
    scale_num: int = 3
    scale_step: float = 1.0375
    scale_lr: float = 0.59
    scale_penalty: float = 0.9745
    window_influence: float = 0.176
    response_up: int = 16
    # --- losing and finding the target (0 disables) ---
    lost_threshold: float = 0.0  # confidence under which the target is reported not visible
    found_threshold: float = 0.0  # confidence a wide search needs to re-acquire it
    lost_search_scale: float = 2.0  # the search region grows this much while the target is lost
    # with foreground matching (extent_weight > 0), a target that still looks like foreground at the
    # peak (mean probability >= presence_threshold) is not lost; found_presence there re-finds it
    presence_threshold: float = 0.3
    found_presence: float = 0.5
    # --- STARK-ST style dynamic template (update_interval 0 disables) ---
    update_interval: int = 0
    update_threshold: float = 0.6
    max_updated_templates: int = 2
    first_template_weight: float = 0.6
    # --- motion prior: the search centre leads by this share of the smoothed velocity ---
    motion_prior: float = 0.0
    # --- box extent from foreground feature matching (fg_matching.py), blended in with this weight ---
    extent_weight: float = 0.0
    extent_max_change: float = 1.6  # an extent more than this factor off the current size is ignored
    extent_moves_center: bool = True  # False: the blob only resizes the box (the response places it)
    # with foreground matching, kernel cells are weighted by their foreground probability on the
    # prompt frame (a box holds background too, which moves otherwise), at least this floor
    foreground_kernel: bool = False
    foreground_kernel_floor: float = 0.3
    # --- direct alignment of the target's prompt-frame appearance (box_align.py), blended in with
    # this weight where it correlates at least align_min_correlation ---
    align_weight: float = 0.0
    align_min_correlation: float = 0.7
    align_max_change: float = 1.6  # a fit that changes the size more than this factor is ignored
    # --- one backbone pass per scale level shared by all the targets (shared_search.py; needs a model
    # whose `search` takes any image and whose cells sit at `cell_offset`). A lone target uses it too: its
    # three scales then cost one pass over about half their pixels ---
    shared_pass: bool = False
    # ... by the targets whose last match scored at least shared_min_score: a doubtful one (a new or lost target
    # scores 0) keeps its own crops, since the resampled features blur the position and scale it needs most
    shared_min_score: float = 0.0
    # ... over the frame and at most this many level pixels beyond it (-1: as far as the search regions reach, into
    # the crops' flat border colour). Near the frame's edge the cells then differ a little (the network's padding)
    shared_frame_margin: int = -1
    # --- distractor memory (DaSiamRPN's idea): look-alikes seen beside the visible target are
    # remembered (a scan of the lost-search region on the prompt frame and every
    # distractor_scan_interval frames while the target is seen) and followed while it is lost; the
    # re-detection ignores the response around them. 0 disables ---
    distractor_scan_interval: int = 0
    distractor_ratio: float = 0.7  # a response peak at least this share of the target's own is a look-alike
    keep_size_at_border: bool = False  # the box does not shrink along an axis where it leaves the frame
    # --- a doubtful match (confidence under recheck_below while the target is seen) is checked over the
    # lost-search region: a peak there, away from the match, scoring recheck_gain more takes over (the
    # target came out from behind a cover the search had stayed on). 0 disables ---
    recheck_below: float = 0.0
    recheck_gain: float = 0.2
    # --- a target lost across the frame's edge comes back across that edge: while it is lost, a match farther
    # than reentry_reach of its sizes (the longer side) from the edges its last box touched (within exit_margin
    # of the frame's side) re-finds it only with a sure match (confidence far_found_threshold). 0 disables ---
    reentry_reach: float = 0.0
    exit_margin: float = 0.02
    far_found_threshold: float = 0.7

    def __post_init__(self):
        if self.scale_num < 1 or self.scale_num % 2 == 0:
            raise ValueError(f"scale_num must be an odd number >= 1, got {self.scale_num}")
        if self.response_up < 1:
            raise ValueError(f"response_up must be >= 1, got {self.response_up}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError(f"window_influence must lie in [0, 1], got {self.window_influence}")
        if self.found_threshold < self.lost_threshold:
            raise ValueError(f"found_threshold ({self.found_threshold}) must be >= lost_threshold "
                             f"({self.lost_threshold})")
        if self.lost_search_scale < 1.0:
            raise ValueError(f"lost_search_scale must be >= 1, got {self.lost_search_scale}")
        if self.recheck_below < 0.0 or self.recheck_gain < 0.0:
            raise ValueError(f"recheck_below and recheck_gain must be >= 0, got {self.recheck_below} and "
                             f"{self.recheck_gain}")
        if self.shared_min_score < 0.0:
            raise ValueError(f"shared_min_score must be >= 0, got {self.shared_min_score}")
        if self.shared_frame_margin < -1:
            raise ValueError(f"shared_frame_margin must be >= 0 (level pixels) or -1 (no limit), got "
                             f"{self.shared_frame_margin}")
        if self.reentry_reach < 0.0 or self.exit_margin < 0.0:
            raise ValueError(f"reentry_reach and exit_margin must be >= 0, got {self.reentry_reach} and "
                             f"{self.exit_margin}")

    def template_update(self) -> TemplateUpdate | None:
        if self.update_interval <= 0:
            return None
        return TemplateUpdate(self.update_interval, self.update_threshold, self.max_updated_templates,
                              self.first_template_weight)


@dataclass
class _Target:
    center: np.ndarray  # (2,) cx, cy in frame pixels
    size: np.ndarray  # (2,) w, h
    z_side: float  # template crop side in frame pixels
    x_side: float  # search crop side in frame pixels
    border: np.ndarray  # (3,) mean colour of the first frame
    kernel_cells: tuple[int, int]
    bank: TemplateBank | None = None
    matcher: ForegroundMatcher | None = None
    ref_peak: float = 1.0
    lost_frames: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    aligner: BoxAligner | None = None  # template: the target on its prompt frame
    cell_weights: torch.Tensor | None = None  # (kh, kw) kernel cell weights, mean 1
    distractors: list = field(default_factory=list)  # (2,) frame positions of remembered look-alikes
    frames_since_scan: int = 0
    last_score: float = 0.0  # the last frame's match confidence; 0 while lost and before the first step
    exit_sides: tuple[int, ...] = ()  # frame sides (0 left, 1 top, 2 right, 3 bottom) its box touched when lost


@dataclass
class _Search:
    factors: np.ndarray  # (S,) scale factors of the crops
    crop_center: np.ndarray  # (2,) frame pixels
    side: float  # frame pixels of the unscaled crop
    instance: int  # crop side in crop pixels


@dataclass
class _Located:
    center: np.ndarray
    scale: float
    confidence: float
    response: np.ndarray  # (h, w) upsampled response of the chosen scale
    crop_center: np.ndarray
    extent: tuple[float, float]  # (w, h) frame pixels the response covers
    features: torch.Tensor  # (C, H, W) search features of the chosen scale
    crop_side: float  # side in frame pixels of the chosen scale's crop
    crop_size: int  # its side in crop pixels
    levels: list[torch.Tensor]  # backbone maps (C_l, H_l, W_l) of the chosen scale's crop, for heads


class SiamFCBase(SequentialTracker):
    """SiamFC inference over any feature model with template(crops, cells) / search / response."""

    kind = "box"
    config_cls = SiamFCConfig
    name = "siamfc"

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        self.model = self._build_model().to(self.device).eval()
        self.update_policy = self.config.template_update()
        half = self.config.scale_num // 2
        self.scale_factors = self.config.scale_step ** np.linspace(-half, half, self.config.scale_num)

    def _build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def reset(self) -> None:
        super().reset()
        self._targets: dict[int, _Target] = {}
        self._boxes: dict[int, np.ndarray] = {}
        self._gray_of: np.ndarray | None = None  # the frame _gray_frame was converted from
        self._gray_frame: np.ndarray | None = None
        self._confirmed: set[int] = set()  # objects the caller confirmed on the frame before (Tracker.confirm)
        self._shared: SharedPass | None = None  # the stepping frame's shared backbone passes, if any
        self._beyond_cells: dict[tuple, torch.Tensor] = {}  # SharedPass's cell on each border colour, for every frame

    def confirm(self, obj_ids: set[int]) -> None:
        self._confirmed = set(obj_ids)

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        return ObjectResult(box=prompt_box(prompt, frame_idx, self.name), visible=prompt.visible)

    # -- anchoring ------------------------------------------------------------------------------
    def _anchor(self, frame_idx, frame, prompts):
        results = {}
        for obj_id, prompt in prompts.items():
            box = prompt_box(prompt, frame_idx, self.name)
            self._boxes[obj_id] = box
            if prompt.visible:
                self._targets[obj_id] = self._init_target(frame, box)
            else:  # hidden on this keyframe: nothing to learn a template from
                self._targets.pop(obj_id, None)
            results[obj_id] = ObjectResult(box=box.copy(), visible=prompt.visible)
        return results

    @torch.no_grad()
    def _init_target(self, frame: np.ndarray, box: np.ndarray) -> _Target:
        cfg = self.config
        center, size = box_to_cxcywh(box)
        z_side = search_side(size, cfg.context, 1.0)
        x_side = z_side * self.model.instance_size / self.model.exemplar_size
        border = frame.reshape(-1, 3).mean(0)
        in_template = size * self.model.exemplar_size / z_side  # target size in template pixels
        stride = self.model.total_stride
        max_cells = self.model.exemplar_size // stride
        cells = tuple(int(np.clip(2 * np.ceil(s / (2 * stride)), 2, max_cells)) for s in in_template[::-1])
        target = _Target(center, size, z_side, x_side, border, cells)
        feats = self.model.search(crop_square(frame, center, x_side, self.model.instance_size, border)[None])
        if cfg.extent_weight > 0:
            instance = self.model.instance_size
            corners = (box.reshape(2, 2) - 0.5 - center) * instance / x_side + (instance - 1) / 2.0 + 0.5
            target.matcher = ForegroundMatcher(feats[0], corners.ravel(),
                                               instance, self.model.total_stride)
        kernel = self._template(frame, target)
        if target.matcher is not None and cfg.foreground_kernel:
            target.cell_weights = self._cell_weights(feats[0], kernel.shape[-2:], target.matcher)
            if target.cell_weights is not None:
                kernel = kernel * target.cell_weights
        target.bank = TemplateBank(kernel)
        # the response the template gets on its own frame: what confidence 1 means
        response = target.bank.blend(self.model.response(target.bank.kernels(), feats), None)
        target.ref_peak = max(float(response.max()), 1e-6)
        if cfg.align_weight > 0:
            target.aligner = BoxAligner(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), center, size)
        if cfg.distractor_scan_interval > 0:
            self._scan_distractors(frame, target)
        return target

    def _cell_weights(self, features: torch.Tensor, kernel_hw, matcher: ForegroundMatcher) -> torch.Tensor | None:
        """Kernel cell weights, mean 1, from the foreground probability of the same cells on the
        prompt frame's search map (same pixel scale and centre as the template); None where the
        kernel is larger than that map."""
        kh, kw = kernel_hw
        height, width = features.shape[-2:]
        if kh > height or kw > width:
            return None
        prob = matcher.own_cell_probability(features, (height - kh) // 2, (width - kw) // 2, kh, kw)
        weights = np.clip(prob, self.config.foreground_kernel_floor, 1.0)
        return torch.from_numpy(weights / weights.mean()).to(features)

    def _template(self, frame: np.ndarray, target: _Target) -> torch.Tensor:
        crop = crop_square(frame, target.center, target.z_side, self.model.exemplar_size, target.border)
        kernel = self.model.template(crop[None], target.kernel_cells)
        return kernel if target.cell_weights is None else kernel * target.cell_weights

    # -- stepping -------------------------------------------------------------------------------
    @torch.no_grad()
    def _step(self, frame_idx, frame, obj_ids):
        results = {}
        tracked = []
        for obj_id in obj_ids:
            target = self._targets.get(obj_id)
            if target is None:  # hidden since its last keyframe
                results[obj_id] = ObjectResult(box=self._boxes[obj_id].copy(), visible=False, score=0.0)
            else:
                tracked.append(obj_id)
        self._gray_of = None  # a frame source may refill the same array: convert each step afresh
        confirmed, self._confirmed = self._confirmed, set()
        searches = {obj_id: self._search_region(self._targets[obj_id]) for obj_id in tracked}
        features = self._search_features(frame, searches)
        for obj_id in tracked:
            target = self._targets[obj_id]
            located = self._locate(target, searches[obj_id], *features[obj_id])
            # a target the caller confirmed where it was on the frame before is not re-checked
            if target.lost_frames == 0 and located.confidence < self.config.recheck_below and obj_id not in confirmed:
                located = self._recheck(frame, target, located)
            results[obj_id] = self._track(frame, target, obj_id, located)
            target.last_score = located.confidence if target.lost_frames == 0 else 0.0
            interval = self.config.distractor_scan_interval
            # only where the target itself is surely seen: a scan from a wrong place would take
            # the target for a look-alike
            if interval > 0 and results[obj_id].visible and located.confidence >= DISTRACTOR_SCAN_CONFIDENCE:
                target.frames_since_scan += 1
                if target.frames_since_scan >= interval:
                    self._scan_distractors(frame, target)
        self._shared = None  # its maps are this frame's: free them (a prompt's scan later makes its own crop)
        return results

    def _recheck(self, frame: np.ndarray, target: _Target, located: _Located) -> _Located:
        """A doubtful match against the best one over the lost-search region (look-alikes blanked out)."""
        search = self._wide_region(target, target.center)
        wide = self._locate(target, search, *self._search_batch(self._search_crops(frame, target, search)),
                            suppress_distractors=True)
        far = np.linalg.norm(wide.center - located.center) > 0.5 * max(float(target.size.max()), 1.0)
        return wide if far and wide.confidence >= located.confidence + self.config.recheck_gain else located

    def _search_batch(self, crops: np.ndarray) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Search crops (B, H, W, 3) -> SiamFC features (B, C, h, w) and the backbone maps per level
        that a head reads (none here)."""
        return self.model.search(crops), []

    @torch.no_grad()
    def _search_features(self, frame: np.ndarray, searches: dict[int, _Search]
                         ) -> dict[int, tuple[torch.Tensor, list[torch.Tensor]]]:
        """Every object's search features. For sure objects with shared_pass, from one backbone pass per
        scale level over the frame (shared_search.py); otherwise (for doubtful objects, and for levels where
        that costs more) the search crops go through the network in one batch per crop size (a lost
        target's wider crop has its own size)."""
        features = {}
        self._shared = None
        sharing = ({obj_id: search for obj_id, search in searches.items()
                    if self._targets[obj_id].last_score >= self.config.shared_min_score}
                   if self.config.shared_pass else {})
        if sharing:
            regions = {obj_id: self._region(self._targets[obj_id], search) for obj_id, search in sharing.items()}
            margin = self.config.shared_frame_margin
            self._shared = SharedPass(frame, regions, lambda image: self.model.search(image[None]),
                                      self.model.total_stride, self.model.cell_offset, None if margin < 0 else margin,
                                      self._beyond_cells)
            features = {obj_id: (maps, []) for obj_id, maps in self._shared.features.items()}
        by_size: dict[int, list[int]] = {}
        for obj_id, search in searches.items():
            if obj_id not in features:
                by_size.setdefault(search.instance, []).append(obj_id)
        for ids in by_size.values():
            crops = [self._search_crops(frame, self._targets[obj_id], searches[obj_id]) for obj_id in ids]
            batch, levels = self._search_batch(np.concatenate(crops))
            start = 0
            for obj_id in ids:
                count = len(searches[obj_id].factors)
                features[obj_id] = (batch[start:start + count], [level[start:start + count] for level in levels])
                start += count
        return features

    @staticmethod
    def _region(target: _Target, search: _Search) -> SearchRegion:
        return SearchRegion(search.crop_center, search.side * search.factors, search.instance, target.border)

    @torch.no_grad()
    def _track(self, frame: np.ndarray, target: _Target, obj_id: int, located: _Located) -> ObjectResult:
        cfg = self.config
        lost_before = target.lost_frames > 0
        evidence = presence = None
        if target.matcher is not None:
            evidence = self._evidence(target, located)
            presence = evidence.presence(self._to_crop(located.center, located))
        if lost_before:
            # either kind of evidence re-finds it: a missed re-appearance costs more than a false one
            visible = located.confidence >= cfg.found_threshold or (
                presence is not None and presence >= cfg.found_presence)
            if visible and not self._near_exit(target, located.center, frame.shape[:2]):
                visible = located.confidence >= cfg.far_found_threshold
        else:
            visible = located.confidence >= cfg.lost_threshold or (
                presence is not None and presence >= cfg.presence_threshold)
        if visible:
            new_center = located.center
            height, width = frame.shape[:2]
            new_center = np.clip(new_center, [0.0, 0.0], [width - 1.0, height - 1.0])
            step = new_center - target.center
            target.velocity = 0.5 * target.velocity + 0.5 * step if not lost_before else np.zeros(2)
            target.center = new_center
            scale = 1.0 - cfg.scale_lr + cfg.scale_lr * located.scale
            size = target.size * scale
            if evidence is not None:
                target.center, size = self._blend_extent(target, located, evidence, size)
            if target.aligner is not None:
                target.center, size = self._blend_alignment(target, self._gray(frame), size)
            self._set_size(target, size, (height, width))
            self._found(obj_id, target, frame, located.confidence)
        else:
            if not lost_before and cfg.reentry_reach > 0.0:
                target.exit_sides = touched_sides(self._boxes[obj_id], frame.shape[:2], cfg.exit_margin)
            target.lost_frames += 1
            target.velocity = np.zeros(2)
        attention = None
        if cfg.return_attention:
            height, width = frame.shape[:2]
            attention = paste_map(located.response, located.crop_center, located.extent, (height, width),
                                  (max(height // ATTENTION_DOWNSCALE, 1), max(width // ATTENTION_DOWNSCALE, 1)))
        return ObjectResult(box=self._boxes[obj_id].copy(), visible=bool(visible),
                            score=float(np.clip(located.confidence, 0.0, 1.0)), attention=attention)

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        """The frame in grayscale, converted once for all of its targets."""
        if self._gray_of is not frame:
            self._gray_of, self._gray_frame = frame, cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return self._gray_frame

    def _near_exit(self, target: _Target, center: np.ndarray, frame_hw: tuple[int, int]) -> bool:
        """Whether a lost target's match lies within reentry_reach of its sizes of an edge it left across
        (always, for a target lost inside the frame)."""
        if not target.exit_sides:
            return True
        gaps = edge_gaps(np.concatenate([center, center]), frame_hw)[list(target.exit_sides)]
        return bool(gaps.min() <= self.config.reentry_reach * target.size.max())

    def _found(self, obj_id: int, target: _Target, frame: np.ndarray, confidence: float) -> None:
        """A target found on this frame at its new centre and size: its box, and its template bank's update."""
        height, width = frame.shape[:2]
        target.lost_frames = 0
        # the part of the target inside the frame is what a box can show
        self._boxes[obj_id] = np.clip(cxcywh_to_box(target.center, target.size), 0,
                                      [width, height, width, height]).astype(np.float32)
        if target.bank.wants_update(self.update_policy, confidence):
            target.bank.add(self._template(frame, target), self.update_policy)

    def _set_size(self, target: _Target, size: np.ndarray, frame_hw: tuple[int, int]) -> None:
        """New target size, clamped to [MIN_SIDE_PX, frame size]; crop sides follow it. With
        keep_size_at_border, along an axis where the box reaches past the frame's edge it does not
        shrink: only part of the target is in view there (a target leaving the view would come back
        with the sliver's size)."""
        frame_wh = np.array([frame_hw[1], frame_hw[0]], np.float64)
        if self.config.keep_size_at_border:
            cut = (target.center - target.size / 2 < 0) | (target.center + target.size / 2 > frame_wh)
            size = np.where(cut, np.maximum(size, target.size), size)
        size = np.clip(size, MIN_SIDE_PX, frame_wh)
        scale = float(np.sqrt(np.prod(size + self.config.context * size.sum())) / target.z_side)
        target.size = size
        target.z_side *= scale
        target.x_side *= scale

    @staticmethod
    def _to_crop(point: np.ndarray, located: _Located) -> np.ndarray:
        """Frame point -> pixel coordinates in the chosen scale's search crop."""
        return (point - located.crop_center) * located.crop_size / located.crop_side + (located.crop_size - 1) / 2.0

    def _evidence(self, target: _Target, located: _Located) -> MatchEvidence:
        """The foreground matching's evidence on the located crop, read first within 3/4 of the target's size (plus
        2 cells) of its centre: about a third of the crop's cells for a target a third of the crop's side."""
        cells = float(target.size.max()) * located.crop_size / located.crop_side / target.matcher.stride
        return target.matcher.evidence(located.features, self._to_crop(located.center, located),
                                       int(np.ceil(0.75 * cells)) + 2)

    def _blend_extent(self, target: _Target, located: _Located, evidence: MatchEvidence, size: np.ndarray):
        """Move the box towards the matched foreground blob (centre and size), when it is plausible."""
        cfg = self.config
        extent = evidence.extent(self._to_crop(target.center, located))
        if extent is None:
            return target.center, size
        corners = crop_to_frame(extent.box_in_crop.reshape(2, 2) - 0.5, located.crop_center, located.crop_side,
                                located.crop_size)
        seg_size = corners[1] - corners[0]
        ratio = seg_size / size
        if np.any(ratio > cfg.extent_max_change) or np.any(ratio < 1.0 / cfg.extent_max_change):
            return target.center, size
        weight = cfg.extent_weight * extent.fg_fraction
        seg_center = corners.mean(0) if cfg.extent_moves_center else target.center
        return ((1 - weight) * target.center + weight * seg_center,
                (1 - weight) * size + weight * seg_size)

    def _blend_alignment(self, target: _Target, gray: np.ndarray, size: np.ndarray):
        """Move the box towards the aligned template's box, when the fit is good and plausible."""
        cfg = self.config
        fit = target.aligner.align(gray, target.center, size)
        if fit is None:
            return target.center, size
        center, fit_size, correlation = fit
        ratio = fit_size / size
        if (correlation < cfg.align_min_correlation or np.any(ratio > cfg.align_max_change)
                or np.any(ratio < 1.0 / cfg.align_max_change)
                or np.any(np.abs(center - target.center) > 0.5 * size)):
            return target.center, size
        weight = cfg.align_weight
        return (1 - weight) * target.center + weight * center, (1 - weight) * size + weight * fit_size

    def _search_region(self, target: _Target) -> _Search:
        """Where one target's search crops lie: a scale pyramid, or one wider crop while it is lost."""
        cfg, model = self.config, self.model
        crop_center = target.center + cfg.motion_prior * target.velocity
        if target.lost_frames > 0:
            return self._wide_region(target, crop_center)
        return _Search(self.scale_factors, crop_center, target.x_side, model.instance_size)

    def _wide_region(self, target: _Target, crop_center: np.ndarray) -> _Search:
        """The lost target's search: one crop at the same pixel scale, lost_search_scale times wider
        (an even number of response cells added)."""
        model = self.model
        step = 2 * model.total_stride
        instance = model.instance_size + step * int(round(
            model.instance_size * (self.config.lost_search_scale - 1.0) / step))
        return _Search(np.ones(1), crop_center, target.x_side * instance / model.instance_size, instance)

    @staticmethod
    def _cell_positions(shape: tuple[int, int], crop_center: np.ndarray, frame_per_cell: float) -> np.ndarray:
        """(h, w, 2) frame positions of the cells of a response map centred on crop_center."""
        h, w = shape
        xs = (np.arange(w) - (w - 1) / 2.0) * frame_per_cell + crop_center[0]
        ys = (np.arange(h) - (h - 1) / 2.0) * frame_per_cell + crop_center[1]
        return np.stack(np.meshgrid(xs, ys), -1)

    @torch.no_grad()
    def _scan_distractors(self, frame: np.ndarray, target: _Target) -> None:
        """Remember the look-alikes around the visible target: local peaks of the response over the
        lost-search region, away from the target (more than its size), at least distractor_ratio of
        the response on the target itself."""
        target.frames_since_scan = 0
        search = self._wide_region(target, target.center)
        # a sure target's scan reads the frame's shared pass where that covers the region (one crop's pass less)
        features = None if self._shared is None else self._shared.sample(self._region(target, search))
        if features is None:
            features = self._search_batch(self._search_crops(frame, target, search))[0]
        response = self._responses(target, features)[0]
        cells = self._cell_positions(response.shape, search.crop_center,
                                     self.model.total_stride * search.side / search.instance)
        distance = np.linalg.norm(cells - target.center, axis=-1) / max(float(target.size.max()), 1.0)
        on_target = distance <= 0.5
        own = float(response[on_target].max() if on_target.any() else response.max())
        peaks = (response >= cv2.dilate(response, np.ones((3, 3), np.uint8))) & (distance > 1.0)
        peaks &= response >= self.config.distractor_ratio * own
        ys, xs = np.nonzero(peaks)
        strongest = np.argsort(-response[ys, xs])[:MAX_DISTRACTORS]
        target.distractors = [cells[ys[i], xs[i]] for i in strongest]

    def _suppress_distractors(self, target: _Target, raw: np.ndarray, crop_center: np.ndarray,
                              frame_per_cell: float) -> np.ndarray:
        """The lost target's response with the remembered look-alikes blanked out (each followed
        first to its strongest response nearby: they move too)."""
        cells = self._cell_positions(raw.shape, crop_center, frame_per_cell)
        size = max(float(target.size.max()), 1.0)
        suppressed = raw.copy()
        floor = float(raw.min())
        followed = []
        for position in target.distractors:
            near = np.linalg.norm(cells - position, axis=-1)
            reach = near <= 1.0 * size  # how far a look-alike may move between looks
            if not reach.any():
                followed.append(position)  # outside this search: keep where it was
                continue
            peak = np.unravel_index(int(np.argmax(np.where(reach, raw, -np.inf))), raw.shape)
            position = cells[peak]
            followed.append(position)
            suppressed[np.linalg.norm(cells - position, axis=-1) <= 0.75 * size] = floor
        target.distractors = followed
        return suppressed

    @staticmethod
    def _search_crops(frame: np.ndarray, target: _Target, search: _Search) -> np.ndarray:
        """(S, instance, instance, 3) uint8 search crops, one per scale factor."""
        return np.stack([crop_square(frame, search.crop_center, search.side * f, search.instance, target.border)
                         for f in search.factors])

    def _responses(self, target: _Target, features: torch.Tensor) -> np.ndarray:
        """(S, h, w) the target's templates correlated with search features (S, C, H, W), blended."""
        return target.bank.blend(self.model.response(target.bank.kernels(), features), self.update_policy).cpu().numpy()

    def _locate(self, target: _Target, search: _Search, features: torch.Tensor,
                levels: list[torch.Tensor], suppress_distractors: bool = False) -> _Located:
        """The response peak over a target's search features (S, C, H, W); levels: backbone maps
        per level (S, C_l, H_l, W_l) of the same crops, kept for the chosen scale. Remembered look-alikes
        are blanked out while the target is lost, or when asked."""
        cfg, model = self.config, self.model
        factors, side, crop_center, instance = search.factors, search.side, search.crop_center, search.instance
        responses = self._responses(target, features)  # (S, h, w)
        up_h, up_w = responses.shape[1] * cfg.response_up, responses.shape[2] * cfg.response_up
        # every scale in one resize, the scales as channels (a third of the time of a call per scale); each scale's
        # peak from the maxima down the columns of the (H, W S) view first: a reduction along contiguous rows, where
        # numpy's over the channels and cv2.split into planes are each over 15x slower (0.85 -> 0.05 ms at 272x272x3)
        upsampled = cv2.resize(np.ascontiguousarray(responses.transpose(1, 2, 0)), (up_w, up_h),
                               interpolation=cv2.INTER_CUBIC).reshape(up_h, up_w, len(factors))
        peaks = upsampled.reshape(up_h, -1).max(axis=0).reshape(up_w, len(factors)).max(axis=0)  # (S,)
        penalties = np.full(len(factors), cfg.scale_penalty)
        penalties[len(factors) // 2] = 1.0
        scale_id = int(np.argmax(peaks * penalties))
        raw = np.ascontiguousarray(upsampled[:, :, scale_id])
        frame_per_cell = model.total_stride * side * factors[scale_id] / instance
        if (target.lost_frames > 0 or suppress_distractors) and target.distractors:
            raw = self._suppress_distractors(target, raw, crop_center, frame_per_cell / cfg.response_up)
        response = raw - raw.min()
        # in place, the window in float32: these full-size maps were a tenth of a target's locating time
        response *= (1.0 - cfg.window_influence) / (response.sum() + 1e-16)
        response += _hann_window(up_h, up_w, cfg.window_influence)
        peak_y, peak_x = np.unravel_index(int(np.argmax(response)), response.shape)
        disp_response = np.array([peak_x - (up_w - 1) / 2.0, peak_y - (up_h - 1) / 2.0])
        disp_frame = disp_response * frame_per_cell / cfg.response_up
        confidence = float(raw[peak_y, peak_x]) / target.ref_peak
        extent = (responses.shape[2] * frame_per_cell, responses.shape[1] * frame_per_cell)
        return _Located(crop_center + disp_frame, float(factors[scale_id]), confidence, raw, crop_center, extent,
                        features[scale_id], side * factors[scale_id], instance,
                        [level[scale_id] for level in levels])
