"""docs/trackstudio.schema.json: every JSON file TrackStudio writes validates, and documents the
schema refuses the loader refuses too (the schema covers structure; the loader also checks ids,
frame ranges, mask sizes and RLE strings)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from test_interop import VIDEO, sample_store

from trackstudio.app.cli import main
from trackstudio.app.model import AnnotationStore, FormatError, FrameState
from trackstudio.app.model.formats import load_json, save_json
from trackstudio.app.model.labels import Attribute, LabelClass, LabelSchema, set_attribute, set_schema
from trackstudio.app.model.reviewed import mark_reviewed

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "trackstudio.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def written_documents(tmp_path) -> list[dict]:
    store = sample_store()
    prompt = store.add_object("mask", "prompted", color="#ABCDEF")
    store.set_state(prompt.obj_id, 2, FrameState(clicks=[[3, 4, 1], [9, 9, 0]], keyframe=True))
    store.set_state(prompt.obj_id, 3, FrameState(visible=False))
    store.update_object(prompt.obj_id, hidden=True)
    # the label schema, attribute values and reviewed ranges (docs/formats.md)
    used = sorted({obj.label for obj in store.objects if obj.label})
    set_schema(store, LabelSchema(classes=tuple(LabelClass(name, f"#1122{n:02x}") for n, name in enumerate(used)),
                                  attributes=(Attribute("occluded"), Attribute("truncated", "object"))))
    set_attribute(store, prompt.obj_id, "occluded", True, frame_idx=3)
    set_attribute(store, prompt.obj_id, "truncated", True)
    mark_reviewed(store, [prompt.obj_id], 0, 3)
    store.extra = {"judge": {"note": "kept as is"}}
    docs = []
    path = tmp_path / "all.json"
    save_json(store, VIDEO, path)
    docs.append(json.loads(path.read_text()))
    assert {"labels", "attributes", "reviewed"} <= set(docs[0])
    save_json(AnnotationStore(), VIDEO, tmp_path / "empty.json")
    docs.append(json.loads((tmp_path / "empty.json").read_text()))
    assert main(["export", str(path), "--format", "json", "--out", str(tmp_path / "cli.json")]) == 0
    docs.append(json.loads((tmp_path / "cli.json").read_text()))
    return docs


def test_every_file_we_write_validates(tmp_path):
    for doc in written_documents(tmp_path):
        VALIDATOR.validate(doc)


def _bad(doc: dict, edit) -> dict:
    doc = copy.deepcopy(doc)
    edit(doc)
    return doc


EDITS = {
    "wrong format name": lambda d: d.update(format="coco"),
    "version 2": lambda d: d.update(version=2),
    "no video": lambda d: d.pop("video"),
    "zero frames": lambda d: d["video"].update(num_frames=0),
    "unknown video key": lambda d: d["video"].update(duration=3),
    "kind typo": lambda d: d["objects"][0].update(kind="boxes"),
    "id 0": lambda d: d["objects"][0].update(id=0),
    "bad colour": lambda d: d["objects"][0].update(color="red"),
    "entry key typo": lambda d: d["objects"][0]["frames"]["1"].update(visble=False),
    "3-number box": lambda d: d["objects"][0]["frames"]["1"].update(box=[1, 2, 3]),
    "padded frame index": lambda d: d["objects"][0]["frames"].update({"012": {"box": [1, 2, 3, 4]}}),
    "visible box entry without a box": lambda d: d["objects"][0]["frames"].update({"11": {"score": 0.5}}),
    "visible point entry without a point": lambda d: d["objects"][2]["frames"].update({"11": {"keyframe": True}}),
    "visible mask entry without a mask": lambda d: d["objects"][1]["frames"].update({"11": {}}),
    "click label 2": lambda d: d["objects"][4]["frames"]["2"].update(clicks=[[1, 2, 2]]),
    "RLE counts with a space": lambda d: d["objects"][1]["frames"]["0"]["mask"].update(counts="ab cd"),
    "string score": lambda d: d["objects"][0]["frames"]["1"].update(score="high"),
    "class colour name": lambda d: d["labels"]["classes"][0].update(color="red"),
    "attribute scope typo": lambda d: d["labels"]["attributes"][0].update(scope="frames"),
    "reviewed range of three": lambda d: next(iter(d["reviewed"].values())).append([1, 2, 3]),
}


@pytest.mark.parametrize("name", list(EDITS))
def test_schema_and_loader_refuse_the_same_mistakes(tmp_path, name):
    doc = written_documents(tmp_path)[0]
    bad = _bad(doc, EDITS[name])
    assert not VALIDATOR.is_valid(bad), name
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(FormatError, match="bad.json"):
        load_json(path)


def test_hidden_entries_need_no_geometry():
    doc = {"format": "trackstudio", "version": 1, "video": {"num_frames": 3, "width": 4, "height": 2},
           "objects": [{"id": 1, "kind": "point", "frames": {"0": {"visible": False},
                                                             "1": {"point": [1, 1], "visible": False}}}]}
    VALIDATOR.validate(doc)
