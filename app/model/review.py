"""The review queue: frames whose tracking deserves a human look, computed from the store.

A tracked (not key) frame of an object is doubtful when
- its score is low;
- the object appears or disappears there (visibility differs from the frame before);
- its box or mask area jumps (ratio to the frame before), or a point jumps far;
- two trackers disagree: a state holding both a box and a mask whose boxes hardly overlap, or two
  objects that follow the same target (box/mask objects whose boxes overlap on most frames, i.e.
  the target tracked twice) part ways on this frame.
Keyframes are the user's own word and are never doubtful. Qt-free; `ReviewIndex` caches per-object
series so that stepping through a long clip with many objects stays instant.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .store import AnnotationStore


@dataclass(frozen=True)
class ReviewConfig:
    low_score: float = 0.5  # tracked frames scoring below this are doubtful
    area_ratio: float = 1.5  # area grows or shrinks by more than this factor from one frame to the next
    point_jump_px: float = 20.0  # a point moving further in one frame (and > 4x its median step)
    twin_iou: float = 0.5  # two objects whose median box IoU reaches this follow the same target
    disagree_iou: float = 0.3  # ... and disagree on frames where their IoU falls below this


@dataclass(frozen=True)
class Doubt:
    frame_idx: int
    obj_id: int
    reason: str  # short, for the status bar: "low score 0.21", "area x2.3", "disagrees with box 3"


@dataclass
class _Series:
    """One object's states as (T, ...) arrays; NaN where absent."""

    present: np.ndarray  # (T,) bool
    visible: np.ndarray  # (T,) bool
    keyframe: np.ndarray  # (T,) bool
    score: np.ndarray  # (T,) float
    area: np.ndarray  # (T,) float: box or mask area
    box: np.ndarray  # (T, 4) float: the box, else the mask's box
    mask_box: np.ndarray  # (T, 4) float: the mask's box where the state holds both a box and a mask
    point: np.ndarray  # (T, 2) float


def _series(store: AnnotationStore, obj_id: int, num_frames: int) -> _Series:
    n = num_frames
    s = _Series(np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan),
                np.full((n, 4), np.nan), np.full((n, 4), np.nan), np.full((n, 2), np.nan))
    for f, state in store.states(obj_id).items():
        if f >= n:
            continue
        s.present[f], s.visible[f], s.keyframe[f] = True, state.visible, state.keyframe
        if state.score is not None:
            s.score[f] = state.score
        if not state.visible:
            continue
        mask_box = state.mask.bbox() if state.mask is not None else None
        box = state.box if state.box is not None else mask_box
        if box is not None:
            s.box[f] = box
        if state.mask is not None:
            s.area[f] = state.mask.area()
            if state.box is not None and mask_box is not None:
                s.mask_box[f] = mask_box
        elif box is not None:
            s.area[f] = (box[2] - box[0]) * (box[3] - box[1])
        if state.point is not None:
            s.point[f] = state.point
    return s


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T,) IoU of two (T, 4) box arrays; NaN where either is missing."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
        iou[union <= 0] = 0.0  # degenerate boxes; NaN (a missing box) compares False and stays
    return iou


def _object_doubts(obj_id: int, s: _Series, config: ReviewConfig) -> list[Doubt]:
    tracked = s.present & ~s.keyframe
    doubts = [Doubt(int(f), obj_id, f"low score {s.score[f]:.2f}")
              for f in np.flatnonzero(tracked & (s.score < config.low_score))]
    before = np.r_[False, s.present[:-1]]
    changed = tracked & before & (s.visible != np.r_[False, s.visible[:-1]])
    doubts += [Doubt(int(f), obj_id, "appears" if s.visible[f] else "disappears") for f in np.flatnonzero(changed)]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = s.area / np.r_[np.nan, s.area[:-1]]
        ratio = np.maximum(ratio, 1 / ratio)
    doubts += [Doubt(int(f), obj_id, f"area x{ratio[f]:.1f}")
               for f in np.flatnonzero(tracked & (ratio > config.area_ratio))]
    step = np.linalg.norm(np.diff(s.point, axis=0), axis=1)  # (T-1,), NaN where a point is missing
    if np.isfinite(step).any():
        limit = max(config.point_jump_px, 4 * float(np.nanmedian(step)))
        with np.errstate(invalid="ignore"):
            jumps = np.r_[False, step > limit] & tracked
        doubts += [Doubt(int(f), obj_id, f"jumps {step[f - 1]:.0f} px") for f in np.flatnonzero(jumps)]
    with np.errstate(invalid="ignore"):
        own = box_iou(s.box, s.mask_box)
        split = tracked & (own < config.disagree_iou)
    doubts += [Doubt(int(f), obj_id, f"box and mask disagree (IoU {own[f]:.2f})") for f in np.flatnonzero(split)]
    return doubts


class ReviewIndex:
    """Doubtful frames of a store's objects; call `invalidate(obj_id)` when an object's states change."""

    def __init__(self, store: AnnotationStore, num_frames: int, config: ReviewConfig | None = None):
        self.store, self.num_frames = store, num_frames
        self.config = config or ReviewConfig()
        self._series: dict[int, _Series] = {}
        self._doubts: dict[int, list[Doubt]] = {}  # obj_id -> its own doubts
        self._twins: dict[int, list[Doubt]] | None = None  # obj_id -> where it parts from its twin
        self._masks: dict[int, np.ndarray] = {}  # obj_id -> (T,) bool doubtful frames
        self._all: list[Doubt] | None = None  # doubts(None), sorted

    def invalidate(self, obj_id: int | None = None) -> None:
        """Forget what was computed for an object (all when None); a box or mask object's change
        also redoes the twin pairs, a point's does not."""
        self._all = None
        if obj_id is None or obj_id not in self.store or self.store.get_object(obj_id).kind != "point":
            self._twins = None
            self._masks.clear()
        if obj_id is None:
            self._series.clear()
            self._doubts.clear()
        else:
            for cache in (self._series, self._doubts, self._masks):
                cache.pop(obj_id, None)

    def series(self, obj_id: int) -> _Series:
        if obj_id not in self._series:
            self._series[obj_id] = _series(self.store, obj_id, self.num_frames)
        return self._series[obj_id]

    def object_doubts(self, obj_id: int) -> list[Doubt]:
        """One object's doubts, its twin's disagreements included (unsorted)."""
        if obj_id not in self._doubts:
            self._doubts[obj_id] = _object_doubts(obj_id, self.series(obj_id), self.config)
        if self._twins is None:
            self._twins = self._twin_doubts()
        return self._doubts[obj_id] + self._twins.get(obj_id, [])

    def doubt_mask(self, obj_id: int) -> np.ndarray:
        """(T,) bool: the object's doubtful frames (cached: the timeline draws them on every repaint)."""
        if obj_id not in self._masks:
            mask = np.zeros(self.num_frames, bool)
            mask[[d.frame_idx for d in self.object_doubts(obj_id)]] = True
            self._masks[obj_id] = mask
        return self._masks[obj_id]

    def doubts(self, obj_ids=None) -> list[Doubt]:
        """Every doubt about these objects (all when None), by frame then object."""
        if obj_ids is None and self._all is not None:
            return self._all
        out = [d for o in self.store.objects if obj_ids is None or o.obj_id in obj_ids
               for d in self.object_doubts(o.obj_id)]
        out.sort(key=lambda d: (d.frame_idx, d.obj_id))
        if obj_ids is None:
            self._all = out
        return out

    def _twin_doubts(self) -> dict[int, list[Doubt]]:
        """Frames where two objects that follow the same target part ways (either may be wrong)."""
        boxed = [o for o in self.store.objects if o.kind in ("box", "mask")]
        out: dict[int, list[Doubt]] = {}
        for a, b in combinations(boxed, 2):
            sa, sb = self.series(a.obj_id), self.series(b.obj_id)
            iou = box_iou(sa.box, sb.box)
            both = np.isfinite(iou)
            if both.sum() < 3 or np.median(iou[both]) < self.config.twin_iou:
                continue
            with np.errstate(invalid="ignore"):
                apart = both & (iou < self.config.disagree_iou) & ~(sa.keyframe & sb.keyframe)
            for f in np.flatnonzero(apart):
                for obj, other in ((a, b), (b, a)):
                    reason = f"disagrees with {other.name} (IoU {iou[f]:.2f})"
                    out.setdefault(obj.obj_id, []).append(Doubt(int(f), obj.obj_id, reason))
        return out

    def next_doubtful(self, frame_idx: int, forward: bool = True, obj_ids=None,
                      skip=None) -> tuple[int, list[Doubt]] | None:
        """The nearest doubtful frame after (or before) `frame_idx` and its doubts; `skip(doubt)` drops
        doubts already dealt with (e.g. on reviewed frames). None when there is none."""
        by_frame: dict[int, list[Doubt]] = {}
        for doubt in self.doubts(obj_ids):
            if (doubt.frame_idx > frame_idx if forward else doubt.frame_idx < frame_idx) and not (skip and skip(doubt)):
                by_frame.setdefault(doubt.frame_idx, []).append(doubt)
        if not by_frame:
            return None
        target = min(by_frame) if forward else max(by_frame)
        return target, by_frame[target]
