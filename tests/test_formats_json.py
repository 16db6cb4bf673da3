"""The JSON annotation format: round trips, the judge's reading of it, and malformed files."""
from __future__ import annotations

import copy
import importlib
import json
import sys

import numpy as np
import pytest

from trackstudio.app.model import AnnotationStore, FormatError, FrameState, MaskRLE
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.video import VideoInfo

VIDEO = VideoInfo("clip.mp4", num_frames=30, width=64, height=48, fps=25.0)


def blob(frame_idx: int) -> np.ndarray:
    mask = np.zeros((VIDEO.height, VIDEO.width), bool)
    mask[10:20 + frame_idx % 7, 5 + frame_idx:30 + frame_idx] = True
    return mask


def make_store() -> AnnotationStore:
    store = AnnotationStore()
    box = store.add_object("box", name="car", label="vehicle")
    mask = store.add_object("mask", color="#00aa00")
    point = store.add_object("point", name="nose")
    hidden = store.add_object("box", name="hidden one", obj_id=9)
    store.update_object(hidden.obj_id, hidden=True)
    store.set_state(box.obj_id, 0, FrameState(box=[1.5, 2.25, 30.1, 40.7], keyframe=True))
    store.set_state(mask.obj_id, 0, FrameState(mask=blob(0), clicks=[[12.5, 15, 1], [3, 3, 0]], keyframe=True))
    store.set_state(point.obj_id, 4, FrameState(point=[10.3, 20.6], keyframe=True))
    with store.macro("Propagate"):
        for t in range(1, 30):
            store.apply_tracked(box.obj_id, t, FrameState(box=[1 + t, 2, 30 + t, 40], score=0.5 + t / 100))
            store.apply_tracked(mask.obj_id, t, FrameState(mask=blob(t), score=0.8))
        for t in range(5, 30):  # tracked, occluded from frame 20 on (position still predicted)
            store.apply_tracked(point.obj_id, t, FrameState(point=[10 + t * 0.1, 20], visible=t < 20))
        store.apply_tracked(box.obj_id, 12, FrameState(visible=False))
    return store


def assert_same_store(a: AnnotationStore, b: AnnotationStore) -> None:
    assert a.objects == b.objects
    for obj in a.objects:
        assert a.states(obj.obj_id) == b.states(obj.obj_id), obj.name


def test_round_trip_keeps_everything(tmp_path):
    store = make_store()
    store.extra = {"creator": {"tool": "test"}, "notes": [1, 2]}
    path = tmp_path / "a.json"
    save_json(store, VIDEO, path)
    loaded, video = load_json(path)
    assert video == VIDEO
    assert_same_store(store, loaded)
    assert loaded.extra == store.extra
    assert not loaded.undo_stack.can_undo  # loading is not an edit
    np.testing.assert_array_equal(loaded.get_state(2, 7).mask.decode(), blob(7))
    save_json(loaded, video, tmp_path / "b.json")
    assert (tmp_path / "b.json").read_bytes() == path.read_bytes()


def test_written_entries_follow_the_documented_layout(tmp_path):
    path = tmp_path / "a.json"
    save_json(make_store(), VIDEO, path)
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("trackstudio", 1)
    assert doc["video"] == {"path": "clip.mp4", "num_frames": 30, "width": 64, "height": 48, "fps": 25.0}
    car, mask, nose, hidden = doc["objects"]
    assert {k: car[k] for k in ("id", "name", "kind", "color", "label")} == \
        {"id": 1, "name": "car", "kind": "box", "color": car["color"], "label": "vehicle"}
    assert car["frames"]["0"] == {"box": [1.5, 2.25, 30.1, 40.7], "keyframe": True}  # shortest decimals
    assert car["frames"]["12"] == {"visible": False}
    assert car["frames"]["3"] == {"box": [4.0, 2.0, 33.0, 40.0], "score": 0.53}
    assert mask["frames"]["0"]["clicks"] == [[12.5, 15.0, 1], [3.0, 3.0, 0]]
    assert mask["frames"]["0"]["mask"]["size"] == [48, 64]
    assert nose["frames"]["25"] == {"point": [12.5, 20.0], "visible": False}
    assert hidden["hidden"] is True and hidden["frames"] == {}
    assert "3" not in nose["frames"]  # not annotated there: absent


def _load_judge(shared_data):
    eval_dir = str(shared_data.parent / "eval")
    sys.path.insert(0, eval_dir)  # run_eval imports its neighbours (metrics, baselines)
    try:
        return importlib.import_module("run_eval")
    finally:
        sys.path.remove(eval_dir)


def test_the_judge_reads_what_we_write(tmp_path, shared_data):
    run_eval = _load_judge(shared_data)
    store = make_store()
    path = tmp_path / "r.json"
    save_json(store, VIDEO, path)
    doc = json.loads(path.read_text())
    boxes, masks, pxy, pvis = run_eval.parse_result(doc, doc, VIDEO.num_frames, VIDEO.height, VIDEO.width)
    assert boxes[0][3].tolist() == [4, 2, 33, 40] and np.isnan(boxes[0][12]).all()
    np.testing.assert_array_equal(masks[0][9], blob(9))
    assert np.isnan(pxy[:4, 0]).all() and pvis[:4, 0].sum() == 0
    np.testing.assert_allclose(pxy[25, 0], [12.5, 20])
    assert pvis[19, 0] and not pvis[20, 0]  # tracked but occluded reads as not visible


def test_judge_prompts_on_a_real_sequence_round_trip(tmp_path, shared_data):
    run_eval = _load_judge(shared_data)
    seq = shared_data / "synth_07_00"
    if not seq.is_dir():
        pytest.skip("synth_07_00 is not present")
    frames, gt, (num_frames, height, width) = run_eval.load_seq(seq)
    prompts = run_eval.make_prompts(gt, seq / "frames", ["box", "mask", "point"], num_frames, height, width)
    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(prompts))
    store, video = load_json(path)
    assert (video.num_frames, video.height, video.width) == (num_frames, height, width)
    assert {o.kind for o in store.objects} == {"box", "mask", "point"}
    save_json(store, video, tmp_path / "result.json")
    boxes, masks, pxy, pvis = run_eval.parse_result(json.loads((tmp_path / "result.json").read_text()), prompts,
                                                    num_frames, height, width)
    box_ids, mask_values, point_ids = run_eval.objects_to_judge(gt)
    for b, k in zip(boxes, box_ids):
        np.testing.assert_array_equal(b[0], gt["boxes"][0, k])
    for m, v in zip(masks, mask_values):
        np.testing.assert_array_equal(m[0], gt["masks"][0] == v)
    queries = gt["point_query"][point_ids]
    np.testing.assert_array_equal(pxy[queries, np.arange(len(point_ids))], gt["trajs_2d"][queries, point_ids])
    assert pvis[queries, np.arange(len(point_ids))].all()


def test_judge_style_prompt_file_loads_with_defaults(tmp_path):
    mask = blob(0)
    coco = MaskRLE.encode(mask)
    prompts = {"format": "trackstudio", "version": 1,
               "video": {"path": "/data/frames", "num_frames": 30, "width": 64, "height": 48},  # no fps
               "objects": [{"id": 1, "name": "box1", "kind": "box", "frames": {"0": {"box": [1, 2, 3, 4], "keyframe": True}}},
                           {"id": 2, "name": "mask1", "kind": "mask",
                            "frames": {"0": {"mask": {"size": [48, 64], "counts": coco.counts}, "keyframe": True}}},
                           {"id": 5, "name": "pt3", "kind": "point",
                            "frames": {"7": {"point": [3.5, 4.5], "visible": True, "keyframe": True}}}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(prompts))
    store, video = load_json(path)
    assert video.fps == 30.0 and video.path == "/data/frames"
    assert [o.obj_id for o in store.objects] == [1, 2, 5]
    assert len({o.color for o in store.objects}) == 3 and store.objects[0].label == ""
    assert store.keyframes(2) == [0] and store.get_state(2, 0).mask == coco
    assert store.get_state(5, 7).point.tolist() == [3.5, 4.5]


def test_uncompressed_rle_counts_are_accepted(tmp_path):
    mask = blob(3)
    flat = mask.flatten(order="F").astype(np.int8)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
    runs = np.diff(bounds).tolist()  # starts with background (the corner is empty)
    doc = {"format": "trackstudio", "version": 1, "video": {"num_frames": 30, "width": 64, "height": 48},
           "objects": [{"id": 1, "kind": "mask", "frames": {"3": {"mask": {"size": [48, 64], "counts": runs}}}}]}
    path = tmp_path / "u.json"
    path.write_text(json.dumps(doc))
    store, _ = load_json(path)
    np.testing.assert_array_equal(store.get_state(1, 3).mask.decode(), mask)
    assert store.objects[0].name == "mask 1"


def _valid_doc() -> dict:
    return {"format": "trackstudio", "version": 1,
            "video": {"path": "v.mp4", "num_frames": 30, "width": 64, "height": 48, "fps": 25},
            "objects": [
                {"id": 1, "name": "a", "kind": "box", "color": "#ff0000", "label": "",
                 "frames": {"0": {"box": [1, 2, 3, 4], "keyframe": True}}},
                {"id": 2, "name": "b", "kind": "mask", "color": "#00ff00",
                 "frames": {"12": {"mask": {"size": [48, 64], "counts": MaskRLE.encode(blob(0)).counts}}}},
                {"id": 3, "name": "c", "kind": "point", "frames": {"5": {"point": [1, 2], "score": 0.5}}},
            ]}


def _set(path: str, value):
    """A mutation that sets doc[path...] (a '/'-separated key path); value DELETE removes the key."""
    def mutate(doc):
        *parents, last = path.split("/")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            last = int(last)
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return mutate


DELETE = object()

MALFORMED = [
    (_set("format", "coco"), "format", 'expected "trackstudio", got "coco"'),
    (_set("format", DELETE), "format", "missing"),
    (_set("version", 2), "version", "unsupported version 2"),
    (_set("version", True), "version", "unsupported version"),
    (_set("video", [1]), "video", "expected an object"),
    (_set("video/width", 0), "video.width", "expected an integer >= 1, got 0"),
    (_set("video/height", "48"), "video.height", 'got "48"'),
    (_set("video/num_frames", DELETE), "video.num_frames", "missing"),
    (_set("video/fps", -1), "video.fps", "expected a number > 0"),
    (_set("video/path", 3), "video.path", "expected a string"),
    (_set("video/codec", "h264"), "video.codec", "unknown key"),
    (_set("objects", {}), "objects", "expected a list"),
    (_set("objects/0", "box"), "objects[0]", "expected an object"),
    (_set("objects/1/id", 1), "objects[1].id", "duplicate id 1 (also objects[0])"),
    (_set("objects/0/id", 0), "objects[0].id", "expected an integer >= 1"),
    (_set("objects/0/id", "1"), "objects[0].id", 'got "1"'),
    (_set("objects/2/id", DELETE), "objects[2].id", "missing"),
    (_set("objects/1/kind", "polygon"), "objects[1].kind", 'expected one of "box", "mask", "point", got "polygon"'),
    (_set("objects/0/color", "red"), "objects[0].color", 'expected a colour "#rrggbb", got "red"'),
    (_set("objects/0/color", "#ff00zz"), "objects[0].color", "#rrggbb"),
    (_set("objects/0/name", 5), "objects[0].name", "expected a string"),
    (_set("objects/0/label", None), "objects[0].label", "expected a string"),
    (_set("objects/0/hidden", "yes"), "objects[0].hidden", "expected true or false"),
    (_set("objects/0/colour", "#ff0000"), "objects[0].colour", "unknown key"),
    (_set("objects/0/frames", []), "objects[0].frames", "expected an object"),
    (_set("objects/0/frames/-3", {"box": [1, 2, 3, 4]}), 'objects[0].frames["-3"]', "frame index must be an integer >= 0"),
    (_set("objects/0/frames/first", {"box": [1, 2, 3, 4]}), 'objects[0].frames["first"]', "frame index"),
    (_set("objects/0/frames/07", {"box": [1, 2, 3, 4]}), 'objects[0].frames["07"]', "frame index"),
    (_set("objects/0/frames/30", {"box": [1, 2, 3, 4]}), 'objects[0].frames["30"]', "beyond the video's 30 frames"),
    (_set("objects/0/frames/0", [1, 2, 3, 4]), 'objects[0].frames["0"]', "expected an object, got a list"),
    (_set("objects/0/frames/0/box", [1, 2, 3]), 'objects[0].frames["0"].box', "expected 4 numbers, got 3"),
    (_set("objects/0/frames/0/box", "1,2,3,4"), 'objects[0].frames["0"].box', "expected 4 numbers"),
    (_set("objects/0/frames/0/box", [1, 2, "3", 4]), 'objects[0].frames["0"].box[2]', "expected a finite number"),
    (_set("objects/0/frames/0/box", [1, 2, True, 4]), 'objects[0].frames["0"].box[2]', "expected a finite number"),
    (_set("objects/0/frames/0/box", [1, 2, float("nan"), 4]), 'objects[0].frames["0"].box[2]', "got NaN"),
    (_set("objects/0/frames/0/box", [1, 2, 10**400, 4]), 'objects[0].frames["0"].box[2]', "expected a finite number"),
    (_set("objects/0/frames/0/box", [1, 2, 1e39, 4]), 'objects[0].frames["0"].box[2]', "expected a finite number"),
    (_set("objects/0/frames/0/score", float("inf")), 'objects[0].frames["0"].score', "got Infinity"),
    (_set("objects/0/frames/0/box", [5, 2, 3, 4]), 'objects[0].frames["0"]', "x2 >= x1"),
    (_set("objects/0/frames/0/box", DELETE), 'objects[0].frames["0"]', "a visible box entry needs a box"),
    (_set("objects/0/frames/0/visible", "no"), 'objects[0].frames["0"].visible', "expected true or false"),
    (_set("objects/0/frames/0/keyframe", 1), 'objects[0].frames["0"].keyframe', "expected true or false, got 1"),
    (_set("objects/0/frames/0/score", "high"), 'objects[0].frames["0"].score', "expected a number or null"),
    (_set("objects/0/frames/0/visble", False), 'objects[0].frames["0"].visble', "unknown key"),
    (_set("objects/1/frames/12/mask", [1, 2]), 'objects[1].frames["12"].mask', "expected an object"),
    (_set("objects/1/frames/12/mask/size", [48, 65]), 'objects[1].frames["12"].mask.size',
     "expected [H, W] = [48, 64] (the video's size), got [48, 65]"),
    (_set("objects/1/frames/12/mask/size", DELETE), 'objects[1].frames["12"].mask.size', "missing"),
    (_set("objects/1/frames/12/mask/counts", "zz"), 'objects[1].frames["12"].mask.counts', "outside '0'..'o'"),
    (_set("objects/1/frames/12/mask/counts", "PP"), 'objects[1].frames["12"].mask.counts', "truncated"),
    (_set("objects/1/frames/12/mask/counts", "52"), 'objects[1].frames["12"].mask.counts', "cover"),
    (_set("objects/1/frames/12/mask/counts", [10, 20]), 'objects[1].frames["12"].mask.counts', "sum to 3072"),
    (_set("objects/1/frames/12/mask/counts", 7), 'objects[1].frames["12"].mask.counts', "expected a COCO RLE string"),
    (_set("objects/1/frames/12/clicks", [[1, 2]]), 'objects[1].frames["12"].clicks[0]', "expected [x, y, label]"),
    (_set("objects/1/frames/12/clicks", [[1, 2, 3]]), 'objects[1].frames["12"].clicks[0]', "label 1 (positive) or 0"),
    (_set("objects/1/frames/12/clicks", "1,2,1"), 'objects[1].frames["12"].clicks', "expected a list"),
    (_set("objects/2/frames/5/point", [1, 2, 3]), 'objects[2].frames["5"].point', "expected 2 numbers, got 3"),
    (_set("objects/2/frames/5/point", DELETE), 'objects[2].frames["5"]', "a visible point entry needs a point"),
]


@pytest.mark.parametrize("mutate, field, message", MALFORMED, ids=[f"{m[1]}:{m[2][:25]}" for m in MALFORMED])
def test_malformed_file_names_the_field(tmp_path, mutate, field, message):
    doc = copy.deepcopy(_valid_doc())
    mutate(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError) as info:
        load_json(path)
    assert info.value.field == field
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}: {field}: ")


@pytest.mark.parametrize("content, message", [
    (b"{\"format\": \"trackstudio\",", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object at the top level, got a list"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"", "not valid JSON"),
])
def test_unreadable_documents(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as info:
        load_json(path)
    assert str(path) in str(info.value)


def test_valid_document_loads(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_valid_doc()))
    store, _ = load_json(path)
    assert [o.name for o in store.objects] == ["a", "b", "c"]
    assert store.get_state(3, 5).score == 0.5


def test_long_video_of_20000_frames(tmp_path):
    video = VideoInfo("long.mp4", 20000, 640, 360, 30.0)
    store = AnnotationStore()
    obj = store.add_object("box")
    with store.macro("Propagate"):
        for t in range(20000):
            store.apply_tracked(obj.obj_id, t, FrameState(box=[t % 600, 5, t % 600 + 30.5, 60], score=0.75))
    path = tmp_path / "long.json"
    save_json(store, video, path)
    loaded, loaded_video = load_json(path)
    assert loaded_video.num_frames == 20000
    assert loaded.frames(obj.obj_id) == list(range(20000))
    assert loaded.get_state(obj.obj_id, 19999) == store.get_state(obj.obj_id, 19999)


def test_save_refuses_what_could_not_be_read_back(tmp_path):
    store = AnnotationStore()
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 30, FrameState(box=[1, 2, 3, 4]))
    with pytest.raises(FormatError, match="'box 1' has a state on frame 30, beyond the video's 30 frames"):
        save_json(store, VIDEO, tmp_path / "a.json")
    store.clear_state(obj.obj_id, 30)
    mask = store.add_object("mask")
    store.set_state(mask.obj_id, 0, FrameState(mask=np.ones((48, 65), bool)))
    with pytest.raises(FormatError, match="48x65 mask, but the video is 48x64"):
        save_json(store, VIDEO, tmp_path / "a.json")
    assert not list(tmp_path.iterdir())
