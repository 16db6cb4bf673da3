"""Label schema (classes with colours, object / frame attributes) and the reviewed ranges in files:
round trips, undo, validation naming the field, and files without them (older versions) still load."""
from __future__ import annotations

import json

import pytest

from trackstudio.app.model import AnnotationStore, FormatError, FrameState, Project
from trackstudio.app.model import labels as lb
from trackstudio.app.model import reviewed as rv
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.video import VideoInfo

VIDEO = VideoInfo("clip.mp4", num_frames=10, width=64, height=48, fps=25.0)
SCHEMA = lb.LabelSchema((lb.LabelClass("person", "#ff0000"), lb.LabelClass("car", "#0000ff")),
                        (lb.Attribute("occluded", "frame"), lb.Attribute("truncated", "object")))


def labelled_store() -> tuple[AnnotationStore, int, int]:
    store = AnnotationStore()
    a = store.add_object("box").obj_id
    b = store.add_object("point").obj_id
    store.set_state(a, 0, FrameState(box=[1, 2, 10, 20], keyframe=True))
    store.set_state(b, 3, FrameState(point=[4, 5], keyframe=True))
    lb.set_schema(store, SCHEMA)
    lb.assign_class(store, a, "person")
    lb.assign_class(store, b, "car")
    lb.set_attribute(store, a, "occluded", True, frame_idx=2)
    lb.set_attribute(store, a, "truncated", True)
    rv.mark_reviewed(store, [a], 0, 4)
    return store, a, b


def test_schema_rejects_duplicates_bad_colours_and_scopes():
    with pytest.raises(ValueError, match="used twice"):
        lb.LabelSchema((lb.LabelClass("a", "#000000"), lb.LabelClass("a", "#ffffff")))
    with pytest.raises(ValueError, match="#rrggbb"):
        lb.LabelSchema((lb.LabelClass("a", "red"),))
    with pytest.raises(ValueError, match="scope"):
        lb.LabelSchema(attributes=(lb.Attribute("x", "video"),))


def test_classes_colour_objects_renames_follow_and_undo_restores():
    store, a, b = labelled_store()
    assert store.get_object(a).label == "person" and store.get_object(a).color == "#ff0000"
    assert lb.attributes_of(store, a, 2) == {"occluded"} and lb.attributes_of(store, a) == {"truncated"}
    with pytest.raises(ValueError, match="not a frame attribute"):
        lb.set_attribute(store, a, "truncated", True, frame_idx=1)
    with pytest.raises(ValueError, match="not a class"):
        lb.assign_class(store, a, "dog")
    lb.set_schema(store, lb.rename_class(SCHEMA, 0, "pedestrian"))
    assert store.get_object(a).label == "pedestrian"
    # dropping a class and an attribute: the objects lose that label, the values go
    lb.set_schema(store, lb.LabelSchema(SCHEMA.classes[1:], SCHEMA.attributes[:1]))
    assert store.get_object(a).label == "" and store.get_object(b).label == "car"
    assert lb.attributes_of(store, a) == frozenset() and lb.attributes_of(store, a, 2) == {"occluded"}
    store.undo_stack.undo()
    store.undo_stack.undo()
    assert store.get_object(a).label == "person" and lb.attributes_of(store, a) == {"truncated"}


def test_json_and_project_round_trip(tmp_path):
    store, a, b = labelled_store()
    save_json(store, VIDEO, tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["labels"] == {"classes": [{"name": "person", "color": "#ff0000"}, {"name": "car", "color": "#0000ff"}],
                             "attributes": [{"name": "occluded", "scope": "frame"},
                                            {"name": "truncated", "scope": "object"}]}
    assert doc["attributes"] == {str(a): {"object": ["truncated"], "frames": {"2": ["occluded"]}}}
    assert doc["reviewed"] == {str(a): [[0, 4]]}
    loaded, _video = load_json(tmp_path / "a.json")
    assert lb.schema(loaded) == SCHEMA and lb.values(loaded) == lb.values(store)
    assert rv.reviewed(loaded) == rv.reviewed(store) and not loaded.undo_stack.can_undo
    project = Project(VIDEO, store)
    project.save(tmp_path / "p.tsproj")
    again = Project.load(tmp_path / "p.tsproj")
    assert lb.schema(again.store) == SCHEMA and lb.values(again.store) == lb.values(store)
    assert rv.reviewed(again.store) == {a: ((0, 4),)} and not again.dirty


def test_files_without_the_new_keys_still_load(tmp_path):
    old = {"format": "trackstudio", "version": 1,
           "video": {"path": "clip.mp4", "num_frames": 10, "width": 64, "height": 48, "fps": 25.0},
           "objects": [{"id": 1, "name": "car", "kind": "box", "color": "#123456", "label": "anything goes",
                        "frames": {"0": {"box": [1, 2, 10, 20], "keyframe": True}}}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    store, _video = load_json(tmp_path / "old.json")
    assert store.get_object(1).label == "anything goes"  # no schema: labels stay free text
    assert lb.schema(store) == lb.LabelSchema() and rv.reviewed(store) == {}
    save_json(store, VIDEO, tmp_path / "again.json")
    assert set(json.loads((tmp_path / "again.json").read_text())) == set(old)  # nothing new written


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["labels"]["classes"][1].update(color="blue"), "labels.classes[1].color", "#rrggbb"),
    (lambda d: d["labels"]["attributes"][0].update(scope="video"), "labels.attributes[0].scope", "frame"),
    (lambda d: d["labels"].update(colours=[]), "labels", "unknown key"),
    (lambda d: d["objects"][0].update(label="dog"), "objects[0].label", "not a class"),
    (lambda d: d["attributes"]["1"]["frames"].update({"2": ["truncated"]}), 'attributes["1"].frames["2"]',
     "not one of"),
    (lambda d: d["attributes"]["1"]["frames"].update({"12": ["occluded"]}), 'attributes["1"].frames["12"]',
     "below 10"),
    (lambda d: d["reviewed"].update({"7": [[0, 1]]}), 'reviewed["7"]', "id of an object"),
])
def test_bad_values_name_their_field(tmp_path, change, field, words):
    store, _a, _b = labelled_store()
    save_json(store, VIDEO, tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    change(doc)
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError) as info:
        load_json(tmp_path / "bad.json")
    assert info.value.field == field and words in info.value.message


def test_saving_refuses_labels_outside_the_schema(tmp_path):
    store, a, _b = labelled_store()
    store.update_object(a, label="dog")  # around the schema: could not be read back
    with pytest.raises(FormatError, match="not a class"):
        save_json(store, VIDEO, tmp_path / "x.json")
