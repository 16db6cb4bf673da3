"""Plan and run propagation: from the user's keyframes in the store to tracked states.

Planning reads the store (call it on the thread that owns the store); running drives the trackers'
generators and only yields updates, so a GUI worker thread can run it while the GUI thread applies
the updates. Keyframes are ground truth: they are the trackers' prompts and are never replaced; a mask
keyframe given as clicks or a box alone only gains the mask the tracker makes from them (as the window stores a
click's answer beside its clicks).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from trackstudio.trackers import release_free_memory
from trackstudio.trackers.base import Tracker
from trackstudio.trackers.types import FrameSequence, ObjectResult, Prompt

from .model import AnnotationStore, FrameState, MaskRLE
from .model.undo import MacroCommand


@dataclass
class Pass:
    """One walk of one tracker over a frame range."""

    kind: str
    start_frame_idx: int
    end_frame_idx: int  # inclusive
    reverse: bool
    prompts: dict[int, dict[int, Prompt]]  # frame_idx -> obj_id -> prompt
    # obj_id -> (first, last) frame the pass may write for it; outside it, results are dropped.
    write_ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    tracker: str | None = None  # a tracker name chosen for these objects; None: the kind's default

    @property
    def tracker_key(self) -> str:
        """What `run_passes`' trackers are looked up by: the chosen tracker's name, else the kind."""
        return self.tracker or self.kind

    @property
    def num_frames(self) -> int:
        return abs(self.end_frame_idx - self.start_frame_idx) + 1


@dataclass
class FrameUpdate:
    """Tracked states of one frame, ready for `AnnotationStore.apply_tracked`."""

    kind: str
    frame_idx: int
    states: dict[int, FrameState]  # obj_id -> state
    done: int  # frames walked so far over all passes
    total: int
    tracker_key: str = ""  # the pass's `tracker_key`
    # obj_id -> the mask the tracker made from this frame's mask keyframe given as clicks or a box alone
    keyframe_masks: dict[int, MaskRLE] = field(default_factory=dict)


def state_to_prompt(state: FrameState) -> Prompt | None:
    """The prompt a stored state stands for; None for an 'absent here' state with no geometry. A state
    with a mask and a box (a box tracker that also yields masks) gives both: box trackers take the box,
    which is what the user saw and accepted, mask trackers the mask."""
    if state.mask is not None:
        return Prompt(mask=state.mask.decode(), box=state.box, visible=state.visible)
    if state.box is not None and state.visible:
        return Prompt(box=state.box)
    if state.point is not None:
        return Prompt(point=state.point, visible=state.visible)
    if state.clicks is not None and len(state.clicks):
        return Prompt(clicks=state.clicks)
    return None


def result_to_state(result: ObjectResult) -> FrameState:
    mask = MaskRLE.encode(result.mask) if result.mask is not None else None
    return FrameState(box=result.box, mask=mask, point=result.point, visible=bool(result.visible),
                      keyframe=False, score=float(result.score))


def _keyframe_prompts(store: AnnotationStore, obj_id: int) -> dict[int, Prompt]:
    prompts = {}
    for frame_idx in store.keyframes(obj_id):
        prompt = state_to_prompt(store.get_state(obj_id, frame_idx))
        if prompt is not None:
            prompts[frame_idx] = prompt
    return prompts


@dataclass
class _Walk:
    """One object's walk into one gap of frames it has no state on: from `seed_frame_idx` to `end_frame_idx`."""

    obj_id: int
    seed_frame_idx: int
    end_frame_idx: int
    reverse: bool
    prompts: dict[int, Prompt]  # frame_idx -> prompt: the seed, and keyframes on the way
    write_range: tuple[int, int]  # (first, last) frame of the gap


def _gaps(states: dict[int, FrameState], num_frames: int) -> list[tuple[int, int]]:
    """(first, last) of every run of frames without a state."""
    gaps, start = [], None
    for frame_idx in range(num_frames + 1):
        empty = frame_idx < num_frames and frame_idx not in states
        if empty and start is None:
            start = frame_idx
        elif not empty and start is not None:
            gaps.append((start, frame_idx - 1))
            start = None
    return gaps


def _seed(states: dict[int, FrameState], keyframes: dict[int, Prompt], frame_idx: int) -> Prompt | None:
    """What a walk into a gap may start from on `frame_idx`: a keyframe, or the tracked state a
    cancelled run stopped at (a resumed walk continues it; it is not re-written)."""
    if frame_idx in keyframes:
        return keyframes[frame_idx]
    state = states.get(frame_idx)
    if state is None or state.keyframe or not state.visible:
        return None
    return state_to_prompt(state)


def _walk_into_gap(obj_id: int, states, keyframes, gap: tuple[int, int], num_frames: int) -> _Walk | None:
    """Forward from the frame just before the gap (else the nearest keyframe before it), or, with
    nothing usable before it, backward from the frame after it (else the nearest keyframe after)."""
    first, last = gap
    for reverse, next_to_gap, beyond in ((False, first - 1, sorted((k for k in keyframes if k < first),
                                                                     reverse=True)),
                                         (True, last + 1, sorted(k for k in keyframes if k > last))):
        candidates = [next_to_gap] if 0 <= next_to_gap < num_frames else []
        for frame_idx in candidates + beyond:
            seed = _seed(states, keyframes, frame_idx)
            if seed is None:
                continue
            between = range(frame_idx + 1, first) if not reverse else range(last + 1, frame_idx)
            prompts = {frame_idx: seed, **{k: keyframes[k] for k in between if k in keyframes}}
            return _Walk(obj_id, frame_idx, first if reverse else last, reverse, prompts, gap)
    return None


def _object_walks(store: AnnotationStore, obj_id: int, num_frames: int) -> list[_Walk]:
    keyframes = _keyframe_prompts(store, obj_id)
    if not keyframes:
        return []
    states = store.states(obj_id)
    walks: list[_Walk] = []
    for gap in _gaps(states, num_frames):
        walk = _walk_into_gap(obj_id, states, keyframes, gap, num_frames)
        if walk is None:
            continue
        previous = walks[-1] if walks else None
        if (previous is not None and not walk.reverse and not previous.reverse
                and walk.seed_frame_idx == previous.end_frame_idx + 1 and walk.seed_frame_idx in keyframes):
            # a keyframe between two gaps re-anchors one walk: the tracker keeps its memory
            previous.end_frame_idx = walk.end_frame_idx
            previous.prompts.update(walk.prompts)
            previous.write_range = (previous.write_range[0], walk.write_range[1])
        else:
            walks.append(walk)
    return walks


def plan_whole_video(store: AnnotationStore, num_frames: int, obj_ids: Iterable[int] | None = None) -> list[Pass]:
    """Track every object over the frames it has no state on yet, never re-walking frames it has.

    From keyframes only, this is forward from each object's first keyframe (re-anchoring at each
    later keyframe), then backward from it to frame 0. After a cancelled run it resumes: each gap
    is walked from the tracked frame the run stopped at. Walks of one kind that end on the same
    frame share a pass (a tracker walks its objects together)."""
    grouped: dict[tuple[str, bool, int], list[_Walk]] = {}
    for obj in store.objects:
        if obj_ids is not None and obj.obj_id not in obj_ids:
            continue
        for walk in _object_walks(store, obj.obj_id, num_frames):
            grouped.setdefault((obj.kind, walk.reverse, walk.end_frame_idx), []).append(walk)
    passes = []
    for (kind, reverse, end), walks in sorted(grouped.items(), key=lambda item: (item[0][1], item[0][2])):
        seeds = [w.seed_frame_idx for w in walks]
        prompts = _invert({w.obj_id: w.prompts for w in walks})
        passes.append(Pass(kind, max(seeds) if reverse else min(seeds), end, reverse, prompts,
                           {w.obj_id: w.write_range for w in walks}))
    return passes + _keyframe_mask_passes(store, passes, obj_ids)


def _keyframe_mask_passes(store: AnnotationStore, passes: list[Pass], obj_ids: Iterable[int] | None) -> list[Pass]:
    """One-frame passes that make the masks of mask keyframes given as clicks or a box alone where no walk
    prompts them (every frame around them is tracked or keyframed already, or the video is one frame long);
    their write range is the keyframe itself, which a tracked state never replaces."""
    prompted = {(frame_idx, obj_id) for p in passes for frame_idx, objs in p.prompts.items() for obj_id in objs}
    wanted: dict[int, dict[int, Prompt]] = {}
    for obj in store.objects:
        if obj.kind != "mask" or (obj_ids is not None and obj.obj_id not in obj_ids):
            continue
        for frame_idx, state in store.states(obj.obj_id).items():
            # the keyframes without a mask only: a stored mask is never decoded here (planning runs on the GUI thread)
            if state.keyframe and state.mask is None and (frame_idx, obj.obj_id) not in prompted:
                prompt = state_to_prompt(state)
                if prompt is not None:
                    wanted.setdefault(frame_idx, {})[obj.obj_id] = prompt
    return [Pass("mask", frame_idx, frame_idx, False, {frame_idx: objs}, dict.fromkeys(objs, (frame_idx, frame_idx)))
            for frame_idx, objs in sorted(wanted.items())]


def plan_from_frame(store: AnnotationStore, num_frames: int, obj_ids: Iterable[int], frame_idx: int,
                    reverse: bool = False, max_frames: int | None = None,
                    until_keyframe: bool = False) -> list[Pass]:
    """Re-propagate the objects keyframed on `frame_idx` (a correction) in one direction: to the end
    of the clip, over `max_frames` frames, or up to each object's next keyframe. Objects with only a
    tracked state (or none) there are left alone."""
    if not 0 <= frame_idx < num_frames:
        raise IndexError(f"frame {frame_idx} is out of range: the video has {num_frames} frames")
    step = -1 if reverse else 1
    edge = 0 if reverse else num_frames - 1
    if max_frames is not None:
        edge = frame_idx + step * (max_frames - 1)
        edge = min(max(edge, 0), num_frames - 1)
    by_kind: dict[str, tuple[dict[int, dict[int, Prompt]], dict[int, tuple[int, int]]]] = {}
    for obj_id in obj_ids:
        obj = store.get_object(obj_id)
        state = store.get_state(obj_id, frame_idx)
        # only the user's keyframes anchor a run: a tracked state (maybe lost, maybe drifted) never does
        seed = state_to_prompt(state) if state is not None and state.keyframe else None
        if seed is None:
            continue  # no keyframe to start from on this frame
        keyframes = _keyframe_prompts(store, obj_id)
        # keyframes strictly ahead of frame_idx and not beyond the edge, nearest first
        ahead = sorted((kf for kf in keyframes if (kf - frame_idx) * step > 0 and (edge - kf) * step >= 0),
                       key=lambda kf: abs(kf - frame_idx))
        prompts = {frame_idx: seed}
        if until_keyframe:
            end = ahead[0] if ahead else edge
            if ahead:  # the run stops there; interpolation needs it as its far end
                prompts[end] = keyframes[end]
        else:
            end = edge
            prompts.update((kf, keyframes[kf]) for kf in ahead)  # re-anchor on the way
        kind_prompts, ranges = by_kind.setdefault(obj.kind, ({}, {}))
        for f, prompt in prompts.items():
            kind_prompts.setdefault(f, {})[obj_id] = prompt
        ranges[obj_id] = (min(frame_idx, end), max(frame_idx, end))
    passes = []
    for kind, (prompts, ranges) in by_kind.items():
        far = min(r[0] for r in ranges.values()) if reverse else max(r[1] for r in ranges.values())
        passes += skip_prompted_spans(Pass(kind, frame_idx, far, reverse, prompts, ranges))
    return passes


def skip_prompted_spans(p: Pass) -> list[Pass]:
    """`p` without the spans where it has nothing to write: frames on which every object it may
    write there has a prompt (a keyframe, never overwritten). A mask keyframe on every frame
    leaves no pass at all.

    Each remaining pass starts on the last prompted frame before its frames (every object has a
    prompt there) and ends on the prompted frame after them; spans of one prompted frame are walked
    through, since a restart would save nothing and cut the tracker's memory of the frames before."""
    step = -1 if p.reverse else 1
    walk = range(p.start_frame_idx, p.end_frame_idx + step, step)

    def needs_tracking(frame_idx: int) -> bool:
        objs = p.prompts.get(frame_idx)
        return objs is None or any(lo <= frame_idx <= hi and obj_id not in objs
                                   for obj_id, (lo, hi) in p.write_ranges.items())

    spans: list[list[int]] = []  # [first, last] frames walked, in walk order
    for i, frame_idx in enumerate(walk):
        if not needs_tracking(frame_idx):
            continue
        start = walk[max(i - 1, 0)]  # the prompted frame before (or the pass's own start)
        if spans and (start - spans[-1][1]) * step <= 1:
            spans[-1][1] = frame_idx  # at most one prompted frame since the last: walk on
        else:
            spans.append([start, frame_idx])
    for span in spans:  # each walk ends on the prompted frame after it: interpolation needs its far end
        after = span[1] + step
        if (after - p.end_frame_idx) * step <= 0:
            span[1] = after
    if len(spans) == 1 and spans[0] == [p.start_frame_idx, p.end_frame_idx]:
        return [p]
    passes = []
    for first, last in spans:
        lo, hi = min(first, last), max(first, last)
        ranges = {obj_id: (max(a, lo), min(b, hi)) for obj_id, (a, b) in p.write_ranges.items() if a <= hi and b >= lo}
        prompts = {f: objs for f, objs in p.prompts.items() if lo <= f <= hi}
        passes.append(Pass(p.kind, first, last, p.reverse, prompts, ranges))
    return passes


def split_by_tracker(passes: list[Pass], object_trackers: dict[int, str]) -> list[Pass]:
    """Give objects that have their own tracker (obj_id -> tracker name) passes of their own.

    Each pass is split by tracker and narrowed to the frames its objects may write.
    """
    out = []
    for p in passes:
        groups: dict[str | None, list[int]] = {}
        for obj_id in p.write_ranges:
            groups.setdefault(object_trackers.get(obj_id, p.tracker), []).append(obj_id)
        for tracker, obj_ids in groups.items():
            ranges = {obj_id: p.write_ranges[obj_id] for obj_id in obj_ids}
            prompts = {f: kept for f, objs in p.prompts.items()
                       if (kept := {obj_id: prompt for obj_id, prompt in objs.items() if obj_id in ranges})}
            # from the seed (the frame the walk starts from, written or not) to the farthest frame written
            lo = min(min(r[0] for r in ranges.values()), *prompts)
            hi = max(max(r[1] for r in ranges.values()), *prompts)
            start, end = (hi, lo) if p.reverse else (lo, hi)
            out.append(Pass(p.kind, start, end, p.reverse, prompts, ranges, tracker))
    return out


def _invert(per_obj: dict[int, dict[int, Prompt]]) -> dict[int, dict[int, Prompt]]:
    """obj_id -> frame_idx -> prompt  becomes  frame_idx -> obj_id -> prompt."""
    out: dict[int, dict[int, Prompt]] = {}
    for obj_id, frames in per_obj.items():
        for frame_idx, prompt in frames.items():
            out.setdefault(frame_idx, {})[obj_id] = prompt
    return out


RELEASE_EVERY = 100  # steps between trims; every 10 kept about as little (one box, 1,200 frames: 712 against 739 MB)


def run_passes(passes: list[Pass], trackers: dict[str, Tracker], frames: FrameSequence) -> Iterator[FrameUpdate]:
    """Drive the trackers (looked up by each pass's `tracker_key`) through the passes, yielding one
    update per frame walked.

    Kinds advance together (one frame of each in turn), so box, mask and point results arrive side
    by side; a kind's own passes run one after another (a tracker is never walked by two passes at
    once). `done` / `total` count the frames of the longest kind's walk. Closing the generator stops
    tracking between two frames. Every RELEASE_EVERY steps the heap's free pages go back to the OS: the results
    kept meanwhile fragment it (trackers/alloc.py)."""
    by_kind: dict[str, list[Pass]] = {}
    for p in passes:
        by_kind.setdefault(p.kind, []).append(p)
    total = max((sum(p.num_frames for p in kind_passes) for kind_passes in by_kind.values()), default=0)
    walked = dict.fromkeys(by_kind, 0)
    walks = {kind: _walk_passes(kind_passes, trackers, frames) for kind, kind_passes in by_kind.items()}
    try:
        while walks:
            for kind in list(walks):
                step = next(walks[kind], None)
                if step is None:
                    del walks[kind]
                    continue
                walked[kind] += 1
                if sum(walked.values()) % RELEASE_EVERY == 0:
                    release_free_memory()
                tracker_key, frame_idx, states, keyframe_masks = step
                yield FrameUpdate(kind, frame_idx, states, max(walked.values()), total, tracker_key, keyframe_masks)
    finally:
        for walk in walks.values():
            walk.close()


def _walk_passes(passes: list[Pass], trackers: dict[str, Tracker],
                 frames: FrameSequence) -> Iterator[tuple[str, int, dict, dict]]:
    """One kind's passes, each on its tracker: (tracker_key, frame_idx, {obj_id: state}, {obj_id: keyframe mask})
    per frame walked."""
    attached: set[int] = set()
    for p in passes:
        tracker = trackers[p.tracker_key]
        if id(tracker) not in attached:
            tracker.set_video(frames)
            attached.add(id(tracker))
        tracker.reset()
        keyframe_masks: dict[int, dict[int, MaskRLE]] = {}  # frame_idx -> obj_id -> mask made from clicks / a box
        for frame_idx, objs in p.prompts.items():
            for obj_id, prompt in objs.items():
                answer = tracker.add_prompt(frame_idx, obj_id, prompt)
                if p.kind == "mask" and prompt.mask is None and answer.mask is not None and answer.mask.any():
                    keyframe_masks.setdefault(frame_idx, {})[obj_id] = MaskRLE.encode(answer.mask)
        for result in tracker.propagate(p.start_frame_idx, reverse=p.reverse, end_frame_idx=p.end_frame_idx):
            states = {}
            for obj_id, obj_result in result.objects.items():
                lo, hi = p.write_ranges.get(obj_id, (result.frame_idx, result.frame_idx))
                if lo <= result.frame_idx <= hi:
                    states[obj_id] = result_to_state(obj_result)
            yield p.tracker_key, result.frame_idx, states, keyframe_masks.pop(result.frame_idx, {})


def apply_update(store: AnnotationStore, update: FrameUpdate, step: MacroCommand | None = None) -> int:
    """Write an update into the store, into undo `step` when given: the tracked states (keyframes stay untouched)
    and the masks made from mask keyframes given as clicks or a box alone; returns how many states were written."""
    completed = sum(store.complete_keyframe(obj_id, update.frame_idx, mask, step)
                    for obj_id, mask in update.keyframe_masks.items() if obj_id in store)
    return completed + sum(store.apply_tracked(obj_id, update.frame_idx, state, step)
                           for obj_id, state in update.states.items() if obj_id in store)
