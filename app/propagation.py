"""Plan and run propagation: from the user's keyframes in the store to tracked states.

Planning reads the store (call it on the thread that owns the store); running drives the trackers'
generators and only yields updates, so a GUI worker thread can run it while the GUI thread applies
the updates. Keyframes are ground truth: they are the trackers' prompts and are never written.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from trackstudio.trackers.base import Tracker
from trackstudio.trackers.types import FrameSequence, ObjectResult, Prompt

from .model import AnnotationStore, FrameState, MaskRLE


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


def state_to_prompt(state: FrameState) -> Prompt | None:
    """The prompt a stored state stands for; None for an 'absent here' state with no geometry."""
    if state.mask is not None:
        return Prompt(mask=state.mask.decode(), visible=state.visible)
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


def plan_whole_video(store: AnnotationStore, num_frames: int, obj_ids: Iterable[int] | None = None) -> list[Pass]:
    """Track every object through the whole clip: forward from its first keyframe (re-anchoring at
    each later keyframe), then backward from its first keyframe to frame 0."""
    by_kind: dict[str, dict[int, dict[int, Prompt]]] = {}
    for obj in store.objects:
        if obj_ids is not None and obj.obj_id not in obj_ids:
            continue
        prompts = _keyframe_prompts(store, obj.obj_id)
        if prompts:
            by_kind.setdefault(obj.kind, {})[obj.obj_id] = prompts
    passes = []
    last = num_frames - 1
    for kind, per_obj in by_kind.items():
        first_kf = {obj_id: min(p) for obj_id, p in per_obj.items()}
        forward = _invert(per_obj)
        passes += skip_prompted_spans(Pass(kind, min(first_kf.values()), last, False, forward,
                                           {obj_id: (f, last) for obj_id, f in first_kf.items()}))
        behind = {obj_id: f for obj_id, f in first_kf.items() if f > 0}
        if behind:
            backward = _invert({obj_id: {f: per_obj[obj_id][f]} for obj_id, f in behind.items()})
            passes.append(Pass(kind, max(behind.values()), 0, True, backward,
                               {obj_id: (0, f) for obj_id, f in behind.items()}))
    return passes


def plan_from_frame(store: AnnotationStore, num_frames: int, obj_ids: Iterable[int], frame_idx: int,
                    reverse: bool = False, max_frames: int | None = None,
                    until_keyframe: bool = False) -> list[Pass]:
    """Re-propagate some objects from `frame_idx` (a correction, or the current frame) in one
    direction: to the end of the clip, over `max_frames` frames, or up to each object's next keyframe."""
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
        seed = state_to_prompt(state) if state is not None else None
        if seed is None:
            continue  # nothing to start from on this frame
        keyframes = _keyframe_prompts(store, obj_id)
        # keyframes strictly ahead of frame_idx and not beyond the edge, nearest first
        ahead = sorted((kf for kf in keyframes if (kf - frame_idx) * step > 0 and (edge - kf) * step >= 0),
                       key=lambda kf: abs(kf - frame_idx))
        prompts = {frame_idx: seed}
        if until_keyframe:
            end = ahead[0] if ahead else edge
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
    prompt there); spans of one prompted frame are walked through, since a restart would save
    nothing and cut the tracker's memory of the frames before."""
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
    if len(spans) == 1 and spans[0] == [p.start_frame_idx, p.end_frame_idx]:
        return [p]
    passes = []
    for first, last in spans:
        lo, hi = min(first, last), max(first, last)
        ranges = {obj_id: (max(a, lo), min(b, hi)) for obj_id, (a, b) in p.write_ranges.items() if a <= hi and b >= lo}
        prompts = {f: objs for f, objs in p.prompts.items() if lo <= f <= hi}
        passes.append(Pass(p.kind, first, last, p.reverse, prompts, ranges))
    return passes


def _invert(per_obj: dict[int, dict[int, Prompt]]) -> dict[int, dict[int, Prompt]]:
    """obj_id -> frame_idx -> prompt  becomes  frame_idx -> obj_id -> prompt."""
    out: dict[int, dict[int, Prompt]] = {}
    for obj_id, frames in per_obj.items():
        for frame_idx, prompt in frames.items():
            out.setdefault(frame_idx, {})[obj_id] = prompt
    return out


def run_passes(passes: list[Pass], trackers: dict[str, Tracker], frames: FrameSequence) -> Iterator[FrameUpdate]:
    """Drive the trackers through the passes, yielding one update per frame walked.

    Closing the generator (or just not asking for more) stops tracking between two frames."""
    total = sum(p.num_frames for p in passes)
    done = 0
    attached: set[int] = set()
    for p in passes:
        tracker = trackers[p.kind]
        if id(tracker) not in attached:
            tracker.set_video(frames)
            attached.add(id(tracker))
        tracker.reset()
        for frame_idx, objs in p.prompts.items():
            for obj_id, prompt in objs.items():
                tracker.add_prompt(frame_idx, obj_id, prompt)
        for result in tracker.propagate(p.start_frame_idx, reverse=p.reverse, end_frame_idx=p.end_frame_idx):
            done += 1
            states = {}
            for obj_id, obj_result in result.objects.items():
                lo, hi = p.write_ranges.get(obj_id, (result.frame_idx, result.frame_idx))
                if lo <= result.frame_idx <= hi:
                    states[obj_id] = result_to_state(obj_result)
            yield FrameUpdate(p.kind, result.frame_idx, states, done, total)


def apply_update(store: AnnotationStore, update: FrameUpdate) -> int:
    """Write an update into the store (keyframes stay untouched); returns how many states were written."""
    return sum(store.apply_tracked(obj_id, update.frame_idx, state) for obj_id, state in update.states.items())
