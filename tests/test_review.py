"""The review queue (doubtful frames) and reviewed ranges, on stores built by hand."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackstudio.app.model import AnnotationStore, FormatError, FrameState
from trackstudio.app.model import reviewed as rv
from trackstudio.app.model.review import ReviewIndex

T = 20


def boxes(store, xs, sizes=None, scores=None, visible=None, kind="box", keyframes=(0,)):
    obj = store.add_object(kind)
    for f, x in enumerate(xs):
        size = sizes[f] if sizes is not None else 10
        state = FrameState(box=[x, 0, x + size, size], keyframe=f in keyframes,
                           score=None if scores is None else scores[f],
                           visible=True if visible is None else visible[f])
        store.set_state(obj.obj_id, f, state)
    return obj.obj_id


def reasons(index, obj_ids=None):
    return [(d.frame_idx, d.obj_id, d.reason.split(" (")[0]) for d in index.doubts(obj_ids)]


def test_low_score_visibility_and_area_jumps_on_tracked_frames_only():
    store = AnnotationStore()
    scores = [1.0] * T
    scores[4] = 0.2
    scores[0] = 0.1  # a keyframe: never doubtful
    visible = [True] * T
    visible[9:12] = [False] * 3
    sizes = [10] * T
    sizes[15:] = [30] * 5  # grows 3x at frame 15
    a = boxes(store, range(T), sizes, scores, visible)
    got = reasons(ReviewIndex(store, T))
    assert got == [(4, a, "low score 0.20"), (9, a, "disappears"), (12, a, "appears"), (15, a, "area x9.0")]


def test_points_that_jump():
    store = AnnotationStore()
    p = store.add_object("point")
    for f in range(T):
        store.set_state(p.obj_id, f, FrameState(point=[f * 2 + (50 if f >= 7 else 0), 5], keyframe=f == 0))
    assert reasons(ReviewIndex(store, T)) == [(7, p.obj_id, "jumps 52 px")]


def test_the_same_target_tracked_twice_disagrees_where_they_part():
    store = AnnotationStore()
    xs = np.arange(T) * 3.0
    a = boxes(store, xs)
    m = store.add_object("mask").obj_id
    for f in range(T):
        mask = np.zeros((40, 120), bool)
        x = int(xs[f]) + (40 if 10 <= f < 13 else 0)  # the mask tracker drifts away on 10..12
        mask[0:10, x:x + 10] = True
        store.set_state(m, f, FrameState(mask=mask, keyframe=f == 0))
    far = boxes(store, xs + 60)  # another target: never a twin of a
    index = ReviewIndex(store, T)
    got = reasons(index)
    assert [(f, o) for f, o, _ in got] == [(10, a), (10, m), (11, a), (11, m), (12, a), (12, m)]
    assert got[0][2] == f"disagrees with mask {m}"
    assert reasons(index, [far]) == []
    # a fix invalidates the cached series
    fixed = np.zeros((40, 120), bool)
    fixed[0:10, 30:40] = True
    store.set_state(m, 10, FrameState(mask=fixed, keyframe=True))
    index.invalidate(m)
    assert [f for f, _, _ in reasons(index, [a])] == [11, 12]


def test_next_doubtful_walks_both_ways_and_skips_reviewed_frames():
    store = AnnotationStore()
    scores = [1.0] * T
    for f in (3, 8, 14):
        scores[f] = 0.1
    a = boxes(store, range(T), scores=scores)
    index = ReviewIndex(store, T)
    assert index.next_doubtful(0)[0] == 3
    assert index.next_doubtful(8)[0] == 14
    assert index.next_doubtful(8, forward=False)[0] == 3
    assert index.next_doubtful(14) is None
    rv.mark_reviewed(store, [a], 6, 10)
    skip = lambda d: rv.is_reviewed(store, d.obj_id, d.frame_idx)  # noqa: E731
    assert index.next_doubtful(3, skip=skip)[0] == 14


def test_reviewed_ranges_merge_cut_undo_and_validate():
    store = AnnotationStore()
    a = boxes(store, range(T))
    rv.mark_reviewed(store, [a], 2, 5)
    rv.mark_reviewed(store, [a], 6, 9)  # touching: joined
    assert rv.reviewed(store) == {a: ((2, 9),)}
    rv.mark_reviewed(store, [a], 4, 6, done=False)
    assert rv.reviewed(store) == {a: ((2, 3), (7, 9))}
    assert rv.reviewed_mask(store, a, T)[[2, 4, 7]].tolist() == [True, False, True]
    store.undo_stack.undo()
    assert rv.reviewed(store) == {a: ((2, 9),)}
    assert rv.to_json(store) == {str(a): [[2, 9]]}
    assert rv.from_json({str(a): [[2, 9]]}, store, T) == {a: ((2, 9),)}
    with pytest.raises(FormatError, match=r"reviewed\[\"1\"\]\[0\].*last < 20"):
        rv.from_json({str(a): [[2, 20]]}, store, T)
    with pytest.raises(FormatError, match="id of an object"):
        rv.from_json({"99": []}, store, T)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, T - 1), st.integers(0, T - 1), st.booleans()), max_size=12))
def test_reviewed_ranges_behave_like_a_set_of_frames(operations):
    store = AnnotationStore()
    a = store.add_object("box").obj_id
    expected = set()
    for first, last, done in operations:
        rv.mark_reviewed(store, [a], first, last, done)
        frames = set(range(min(first, last), max(first, last) + 1))
        expected = expected | frames if done else expected - frames
    ranges = rv.reviewed(store).get(a, ())
    assert set(np.flatnonzero(rv.reviewed_mask(store, a, T))) == expected
    assert all(b + 1 < c for (_, b), (c, _) in zip(ranges, ranges[1:]))  # sorted, apart, never touching
