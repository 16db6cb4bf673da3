"""Property-based: whatever a file holds, the loaders either load it or raise one ValueError
(FormatError) that names the bad field, never another exception; and any loaded keyframe either
can prompt a tracker or is refused with its field path."""
from __future__ import annotations

import json
import re

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from trackstudio.app.model import FormatError, Project
from trackstudio.app.model.formats import load_json
from trackstudio.app.model.prompts import check_prompts, prompt_problem
from trackstudio.app.model.objects import FrameState

HEIGHT, WIDTH, NUM_FRAMES = 24, 32, 6
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

numbers = st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, -0.5, WIDTH, HEIGHT, 1e30, 1e39, -1e9]))
json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def _maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """About nine times in ten a well-formed value, else anything at all (so whole documents get deep).
    The odd one is a middle value: Hypothesis favours the ends of a range."""
    return st.integers(0, 9).flatmap(lambda k: json_values if k == 4 else valid)


near = st.one_of(st.integers(-60, 200), st.floats(-60, 200, allow_nan=False))
runs = st.lists(st.integers(0, 150), max_size=4).map(lambda r: r + [HEIGHT * WIDTH - sum(r)])  # (empty masks too)
mask = st.fixed_dictionaries({"size": _maybe(st.just([HEIGHT, WIDTH])), "counts": _maybe(runs)})
clicks = st.lists(st.tuples(near, near, st.sampled_from([0, 1, 1, 2])).map(list), max_size=3)
sides = st.one_of(st.integers(0, 40), st.floats(0, 40))
boxes = st.one_of(st.tuples(near, near, sides, sides).map(lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]),
                  st.lists(near, min_size=4, max_size=4))  # the second often inverted
geometry = {"box": _maybe(boxes),
            "point": _maybe(st.lists(near, min_size=2, max_size=2)), "mask": _maybe(mask), "clicks": _maybe(clicks)}


def entry(kind: str) -> st.SearchStrategy:
    """A frame entry for an object of `kind` with its kind's geometry (`_maybe` varies the rest)."""
    own = {"box": ("box",), "point": ("point",), "mask": ("mask", "clicks", "box")}.get(str(kind), tuple(geometry))
    return st.fixed_dictionaries(
        {"keyframe": _maybe(st.booleans()), own[0]: geometry[own[0]]},
        optional={"visible": _maybe(st.booleans()), "score": _maybe(numbers)})
frame_keys = _maybe(st.integers(0, NUM_FRAMES - 1).map(str)).map(lambda k: k if isinstance(k, str) else json.dumps(k))
obj = st.tuples(_maybe(st.integers(1, 4)), _maybe(st.sampled_from(["box", "mask", "point"]))).flatmap(
    lambda id_kind: st.fixed_dictionaries(
        {"id": st.just(id_kind[0]), "kind": st.just(id_kind[1]),
         "frames": _maybe(st.dictionaries(frame_keys, _maybe(entry(id_kind[1])), max_size=3))},
        optional={"name": _maybe(st.text(max_size=5)), "color": _maybe(st.sampled_from(["#ff0000", "#ABCDEF"])),
                  "label": _maybe(st.text(max_size=3)), "hidden": _maybe(st.booleans())}))
VALID_VIDEO = {"path": "clip.mp4", "num_frames": NUM_FRAMES, "width": WIDTH, "height": HEIGHT, "fps": 25.0}
video = st.integers(0, 9).flatmap(
    lambda k: json_values if k == 4 else
    st.tuples(st.sampled_from(sorted(VALID_VIDEO)), json_values).map(lambda kv: {**VALID_VIDEO, kv[0]: kv[1]})
    if k == 5 else st.just(VALID_VIDEO))


def _document(format_name: str) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"format": _maybe(st.just(format_name)), "version": _maybe(st.just(1)), "video": video,
         "objects": _maybe(st.lists(_maybe(obj), max_size=3))},
        optional={"settings": json_values, "extra": json_values})


_FIELD = re.compile(r"^[A-Za-z_]")


def _assert_names_its_field(exc: FormatError, data: bytes) -> None:
    assert isinstance(exc, ValueError)
    if exc.field:
        assert _FIELD.match(exc.field), exc.field
    else:  # only a document that is not a JSON object at all has no field to name
        assert re.search(r"JSON|UTF-8|top level", exc.message), exc.message


@SETTINGS
@given(doc=_document("trackstudio"))
def test_json_loader_loads_or_names_the_bad_field(tmp_path, doc):
    data = json.dumps(doc).encode()
    path = tmp_path / "a.json"
    path.write_bytes(data)
    try:
        store, info = load_json(path)
    except FormatError as exc:
        event(f"refused at {exc.field.split('.')[0] or 'top'}")
        _assert_names_its_field(exc, data)
        assert str(path) in str(exc)
        return
    try:
        check_prompts(store, info)
        event("loaded; every keyframe can prompt")
    except FormatError as exc:
        event("loaded; a keyframe refused")
        assert re.fullmatch(r'objects\[\d+\]\.frames\["\d+"\]\.(box|point|mask|clicks\[\d+\])', exc.field), exc.field


@st.composite
def _one_keyframe_document(draw) -> dict:
    """A well-formed document with one object and one keyframe whose geometry varies: the prompt check's input."""
    kind = draw(st.sampled_from(["box", "mask", "point"]))
    key = {"box": "box", "point": "point", "mask": draw(st.sampled_from(["mask", "clicks", "box"]))}[kind]
    value = draw(geometry[key])
    return {"format": "trackstudio", "version": 1, "video": VALID_VIDEO,
            "objects": [{"id": 1, "kind": kind, "frames": {"2": {key: value, "keyframe": True}}}]}


@SETTINGS
@given(doc=_one_keyframe_document())
def test_keyframes_load_and_prompt_or_name_the_bad_field(tmp_path, doc):
    test_json_loader_loads_or_names_the_bad_field.hypothesis.inner_test(tmp_path, doc)


@SETTINGS
@given(doc=_document("trackstudio-project"))
def test_project_loader_loads_or_names_the_bad_field(tmp_path, doc):
    data = json.dumps(doc).encode()
    path = tmp_path / "a.tsproj"
    path.write_bytes(data)
    try:
        Project.load(path)
    except FormatError as exc:
        _assert_names_its_field(exc, data)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=64), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_bytes_load_or_give_a_format_error(tmp_path, data):
    path = tmp_path / "a.json"
    path.write_bytes(data)
    try:
        load_json(path)
    except FormatError as exc:
        _assert_names_its_field(exc, data)


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(box=st.tuples(finite, finite, finite, finite), point=st.tuples(finite, finite), visible=st.booleans())
def test_prompt_check_agrees_with_the_frame(box, point, visible):
    x1, y1, x2, y2 = box
    if x2 < x1 or y2 < y1:
        return  # the loader refuses those already (state_problem)
    state = FrameState(box=np.array(box, np.float32), visible=visible)
    problem = prompt_problem(state, WIDTH, HEIGHT)
    b = state.box
    overlaps = b[2] > b[0] and b[3] > b[1] and b[2] > 0 and b[3] > 0 and b[0] < WIDTH and b[1] < HEIGHT
    assert (problem is None) == (overlaps or not visible)
    state = FrameState(point=np.array(point, np.float32), visible=visible)
    problem = prompt_problem(state, WIDTH, HEIGHT)
    p = state.point
    # on the image in either convention: pixel 0 spans -0.5..0.5 (the project's) or 0..1 (COCO keypoints')
    on_image = -0.5 <= p[0] <= WIDTH and -0.5 <= p[1] <= HEIGHT
    assert (problem is None) == (on_image or not visible)
    assert problem is None or problem[0] == "point"
