"""Exchange formats: round trips, the reference readers (pycocotools, motmetrics, sleap-io, CVAT's
documented structure), imports as keyframes or tracked frames, and malformed files."""
from __future__ import annotations

import json
import os
import pickle
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from trackstudio.app.model import AnnotationStore, FormatError, FrameState
from trackstudio.app.model.interop import FORMATS, export, guess_format, import_file, read_file
from trackstudio.app.video import VideoInfo

VIDEO = VideoInfo("clips/walk.mp4", 12, 64, 48, 25.0)


def disc_mask(cx: float, cy: float, r: float = 7) -> np.ndarray:
    yy, xx = np.mgrid[:VIDEO.height, :VIDEO.width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def sample_store() -> AnnotationStore:
    """A car (box), a ball (mask) and two points of one animal; keyframes on 0 and 6, tracked elsewhere."""
    store = AnnotationStore()
    car = store.add_object("box", "car", label="vehicle")
    ball = store.add_object("mask", "ball", label="ball")
    nose = store.add_object("point", "nose", label="mouse")
    tail = store.add_object("point", "tail", label="mouse")
    for f in range(10):
        key = f in (0, 6)
        store.set_state(car.obj_id, f, FrameState(box=[4 + f, 5, 20 + f, 17.5], keyframe=key,
                                                  score=None if key else 0.9))
        store.set_state(ball.obj_id, f, FrameState(mask=disc_mask(30 + f, 24), keyframe=key))
        store.set_state(nose.obj_id, f, FrameState(point=[10.5 + f, 40.25], keyframe=key, visible=f != 4,
                                                   score=None if key else 0.75))
        if f < 8:
            store.set_state(tail.obj_id, f, FrameState(point=[50 - f, 8], keyframe=key))
    return store


def by_name(store: AnnotationStore) -> dict:
    return {obj.name: obj for obj in store.objects}


def visible_boxes(store, obj) -> dict[int, list[float]]:
    return {f: s.box.tolist() for f, s in store.states(obj.obj_id).items() if s.visible and s.box is not None}


def assert_same_boxes(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for frame_idx in a:
        assert a[frame_idx] == pytest.approx(b[frame_idx], abs=1e-3), frame_idx


def reimport(tmp_path, fmt: str, name: str, store=None, tracked=False):
    path = export(store or sample_store(), VIDEO, tmp_path / name, fmt)
    assert guess_format(path) == fmt
    result = AnnotationStore()
    import_file(path, fmt, result, VIDEO, tracked=tracked)
    return path, result


# ---- COCO --------------------------------------------------------------------------------------
def test_coco_round_trip_and_pycocotools(tmp_path):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    source = sample_store()
    path, result = reimport(tmp_path, "coco", "walk_coco.json", source)
    coco = COCO(str(path))  # the reference reader indexes what we wrote
    assert len(coco.getImgIds()) == 12 and {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"vehicle", "ball",
                                                                                                  "mouse"}
    ball = by_name(source)["ball"]
    ball_ann = coco.loadAnns(coco.getAnnIds(imgIds=[3 + 1], catIds=coco.getCatIds(catNms=["ball"])))[0]
    assert np.array_equal(coco.annToMask(ball_ann).astype(bool), source.get_state(ball.obj_id, 3).mask.decode())
    assert ball_ann["track_id"] == ball.obj_id
    # COCOeval of the boxes against themselves: a reader that misread them would not score 1.0
    gt = COCO(str(path))
    boxes = [dict(a, score=1.0) for a in gt.loadAnns(gt.getAnnIds(catIds=gt.getCatIds(catNms=["vehicle"])))]
    evaluation = COCOeval(gt, gt.loadRes(boxes), "bbox")
    evaluation.params.catIds = gt.getCatIds(catNms=["vehicle"])
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)

    names = by_name(result)
    assert set(names) == {"car", "ball", "nose", "tail"}
    assert visible_boxes(result, names["car"]) == visible_boxes(source, by_name(source)["car"])
    assert names["ball"].kind == "mask" and names["ball"].label == "ball"
    for f in range(10):
        assert result.get_state(names["ball"].obj_id, f).mask.counts == source.get_state(ball.obj_id, f).mask.counts
    nose = result.states(names["nose"].obj_id)
    assert nose[4].visible is False and nose[4].point.tolist() == [14.5, 40.25]
    assert result.keyframes(names["car"].obj_id) == list(range(10))  # imported as keyframes by default
    rle = {"size": ball_ann["segmentation"]["size"], "counts": ball_ann["segmentation"]["counts"].encode()}
    assert mask_utils.area(rle) == ball_ann["area"] > 100


def test_coco_polygons_and_tracked_import(tmp_path):
    doc = {"images": [{"id": 7, "width": 64, "height": 48, "frame_id": 2}, {"id": 8, "width": 64, "height": 48,
                                                                          "frame_id": 3}],
           "annotations": [
               {"id": 1, "image_id": 7, "category_id": 1, "track_id": 5,
                "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]], "bbox": [10, 10, 20, 10]},
               {"id": 2, "image_id": 8, "category_id": 1, "track_id": 5, "keyframe": True,
                "segmentation": [[12, 10, 32, 10, 32, 20, 12, 20]], "bbox": [12, 10, 20, 10]}],
           "categories": [{"id": 1, "name": "plate"}]}
    path = tmp_path / "user.json"
    path.write_text(json.dumps(doc))
    store = AnnotationStore()
    (obj,) = import_file(path, "coco", store, VIDEO, tracked=True)
    assert obj.kind == "mask" and obj.label == "plate"
    assert store.frames(obj.obj_id) == [2, 3] and store.keyframes(obj.obj_id) == [3]  # the file's keyframe stays
    assert 180 <= store.get_state(obj.obj_id, 2).mask.area() <= 231  # a 20 x 10 rectangle


# ---- YOLO --------------------------------------------------------------------------------------
def test_yolo_round_trip(tmp_path):
    import yaml

    source = sample_store()
    path, result = reimport(tmp_path, "yolo", "walk_yolo", source)
    data = yaml.safe_load((path / "data.yaml").read_text())
    assert data["names"] == {0: "vehicle", 1: "ball"} and data["nc"] == 2
    assert len(list((path / "labels").glob("*.txt"))) == 12  # every frame, empty when nothing is there
    line = (path / "labels" / "000000.txt").read_text().splitlines()[0].split()
    assert line[0] == "0" and [float(v) for v in line[1:]] == pytest.approx([12 / 64, 11.25 / 48, 16 / 64, 12.5 / 48],
                                                                             abs=1e-6)
    assert {o.kind for o in result.objects} == {"box", "mask"} and len(result.objects) == 2  # linked over frames
    car = next(o for o in result.objects if o.kind == "box")
    assert car.label == "vehicle"
    for f, box in visible_boxes(source, by_name(source)["car"]).items():
        assert result.get_state(car.obj_id, f).box.tolist() == pytest.approx(box, abs=1e-3)
    ball = next(o for o in result.objects if o.kind == "mask")
    original = source.get_state(by_name(source)["ball"].obj_id, 5).mask.decode()
    imported = result.get_state(ball.obj_id, 5).mask.decode()
    assert (original & imported).sum() / (original | imported).sum() > 0.8  # an outline, not the exact pixels


# ---- MOT ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Operation with tuple is deprecated")  # inside motmetrics' reader
def test_mot_round_trip_and_motmetrics(tmp_path):
    import motmetrics as mm

    source = sample_store()
    path, result = reimport(tmp_path, "mot", "gt.txt", source)
    frame_table = mm.io.loadtxt(str(path), fmt="mot16")  # the reference reader
    car, ball = by_name(source)["car"], by_name(source)["ball"]
    assert set(frame_table.index.get_level_values("Id")) == {car.obj_id, ball.obj_id}
    row = frame_table.loc[(1, car.obj_id)]
    assert [row["X"], row["Y"], row["Width"], row["Height"]] == pytest.approx([4, 5, 16, 12.5])
    # scored against itself, every box matches: MOTA 1, no switches (IoU through pycocotools:
    # motmetrics 1.4's own iou_matrix calls np.asfarray, which numpy 2 removed)
    from pycocotools import mask as mask_utils

    acc = mm.MOTAccumulator()
    for frame, rows in frame_table.groupby(level="FrameId"):
        boxes = rows[["X", "Y", "Width", "Height"]].to_numpy()
        distances = 1 - mask_utils.iou(boxes, boxes, [0] * len(boxes))
        ids = rows.index.get_level_values("Id").tolist()
        acc.update(ids, ids, np.where(distances <= 0.5, distances, np.nan), frameid=frame)
    summary = mm.metrics.create().compute(acc, metrics=["mota", "num_switches"])
    assert summary["mota"].iloc[0] == 1.0 and summary["num_switches"].iloc[0] == 0
    names = {o.name for o in result.objects}
    assert names == {f"track {car.obj_id}", f"track {ball.obj_id}"}
    imported_car = next(o for o in result.objects if o.name == f"track {car.obj_id}")
    assert_same_boxes(visible_boxes(result, imported_car), visible_boxes(source, car))


def test_mot_folder_layout_has_seqinfo(tmp_path):
    out = export(sample_store(), VIDEO, tmp_path / "MOT-walk", "mot")
    assert (out / "gt" / "gt.txt").is_file()
    seqinfo = (out / "seqinfo.ini").read_text()
    assert "seqLength=12" in seqinfo and "imWidth=64" in seqinfo and "frameRate=25" in seqinfo
    assert guess_format(out) == "mot"


# ---- CVAT --------------------------------------------------------------------------------------
def test_cvat_round_trip_and_documented_structure(tmp_path):
    source = sample_store()
    path, result = reimport(tmp_path, "cvat", "walk.xml", source)
    root = ET.parse(path).getroot()
    assert root.tag == "annotations" and root.findtext("version") == "1.1"
    assert root.findtext("meta/task/mode") == "interpolation" and root.findtext("meta/task/size") == "12"
    assert root.findtext("meta/task/original_size/width") == "64"
    tracks = root.findall("track")
    assert [t.get("label") for t in tracks] == ["vehicle", "ball", "mouse", "mouse"]
    box = tracks[0].find("box")
    assert {"frame", "outside", "occluded", "keyframe", "xtl", "ytl", "xbr", "ybr"} <= set(box.attrib)
    assert box.get("keyframe") == "1" and tracks[0].findall("box")[1].get("keyframe") == "0"
    assert tracks[0].findall("box")[-1].get("frame") == "10" and tracks[0].findall("box")[-1].get("outside") == "1"
    mask = tracks[1].find("mask")
    assert {"rle", "left", "top", "width", "height"} <= set(mask.attrib)

    names = by_name(result)
    car = names["vehicle 0"]
    assert_same_boxes(visible_boxes(result, car), visible_boxes(source, by_name(source)["car"]))
    assert result.get_state(car.obj_id, 10).visible is False  # CVAT's "outside" after the last frame
    ball = names["ball 1"]
    for f in range(10):
        assert result.get_state(ball.obj_id, f).mask.counts == source.get_state(by_name(source)["ball"].obj_id,
                                                                                  f).mask.counts
    nose = result.states(names["mouse 2"].obj_id)
    assert nose[4].visible is False and nose[4].point.tolist() == [14.5, 40.25]  # occluded, position kept


def test_cvat_tracked_import_keeps_cvat_keyframes(tmp_path):
    path = export(sample_store(), VIDEO, tmp_path / "walk.xml", "cvat")
    store = AnnotationStore()
    import_file(path, "cvat", store, VIDEO, tracked=True)
    car = by_name(store)["vehicle 0"]
    assert store.keyframes(car.obj_id) == [0, 6, 10]  # CVAT's keyframes (and the closing outside shape)


# ---- DLC / SLEAP ---------------------------------------------------------------------------------
def test_sleap_round_trip_through_sleap_io(tmp_path):
    import sleap_io as sio

    path, result = reimport(tmp_path, "sleap", "walk.slp")
    labels = sio.load_slp(str(path))  # the reference reader
    assert labels.skeletons[0].node_names == ["nose", "tail"] and [t.name for t in labels.tracks] == ["mouse"]
    frame0 = labels.find(labels.videos[0], 0)[0].instances[0]
    assert type(frame0) is sio.Instance and frame0.numpy().tolist() == [[10.5, 40.25], [50, 8]]
    frame4 = labels.find(labels.videos[0], 4)[0].instances[0]
    assert type(frame4) is sio.PredictedInstance and frame4.points["visible"].tolist() == [False, True]
    names = by_name(result)
    nose = result.states(names["mouse nose"].obj_id)
    assert nose[4].visible is False and nose[4].point.tolist() == [14.5, 40.25] and nose[3].score == 0.75
    assert names["mouse tail"].label == "mouse" and result.frames(names["mouse tail"].obj_id) == list(range(8))


def test_dlc_round_trip_and_sleap_io_reader(tmp_path):
    import sleap_io as sio
    from PIL import Image

    path, result = reimport(tmp_path, "dlc", "CollectedData_trackstudio.csv")
    names = by_name(result)
    nose = result.states(names["mouse nose"].obj_id)
    assert sorted(nose) == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # hidden points are empty cells in DLC
    assert nose[6].point.tolist() == [16.5, 40.25] and nose[3].score == pytest.approx(0.75)
    # sleap-io's DLC reader wants the labelled images beside the CSV
    rows = [line.split(",")[0] for line in path.read_text().splitlines()[4:]]
    for image in rows:
        (tmp_path / image).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48)).save(tmp_path / image)
    labels = sio.load_dlc(str(path), config=False)
    assert len(labels.labeled_frames) == 10
    assert labels.labeled_frames[6].instances[0].numpy()[0].tolist() == [16.5, 40.25]


def test_dlc_three_index_columns_and_analysis_csv(tmp_path):
    labelled = ("scorer,,,ana,ana\nbodyparts,,,snout,snout\ncoords,,,x,y\n"
                "labeled-data,walk,img0003.png,12.5,7\nlabeled-data,walk,img0005.png,,\n")
    (tmp_path / "CollectedData_ana.csv").write_text(labelled)
    store = AnnotationStore()
    (snout,) = import_file(tmp_path / "CollectedData_ana.csv", "dlc", store, VIDEO)
    assert store.frames(snout.obj_id) == [3] and store.get_state(snout.obj_id, 3).point.tolist() == [12.5, 7]
    analysis = ("scorer,DLC_resnet50,DLC_resnet50,DLC_resnet50\nbodyparts,ear,ear,ear\ncoords,x,y,likelihood\n"
                "0,1,2,0.9\n1,2,3,0.8\n")
    (tmp_path / "walkDLC_resnet50.csv").write_text(analysis)
    (ear,) = import_file(tmp_path / "walkDLC_resnet50.csv", "dlc", store, VIDEO, tracked=True)
    assert store.frames(ear.obj_id) == [0, 1] and store.keyframes(ear.obj_id) == []
    assert store.get_state(ear.obj_id, 1).score == pytest.approx(0.8)


# ---- TAP-Vid -----------------------------------------------------------------------------------
def test_tapvid_npz_and_pkl(tmp_path):
    times = np.arange(12) / 25.0
    source = sample_store()
    path = export(source, VIDEO, tmp_path / "walk_tapvid.npz", "tapvid", frame_times=times)
    with np.load(path) as data:
        assert data["tracks"].shape == (2, 12, 2) and data["occluded"].shape == (2, 12)
        assert data["query_points"][0].tolist() == [0, 40.25, 10.5]  # [t, y, x]
        assert data["occluded"][0, 4] and not data["occluded"][0, 3] and data["occluded"][1, 9]
        assert np.array_equal(data["timestamps"], times)
    result = AnnotationStore()
    import_file(path, "tapvid", result, VIDEO, tracked=True)
    nose = by_name(result)["nose"]
    assert result.keyframes(nose.obj_id) == [0]  # the query point stays a keyframe
    assert result.get_state(nose.obj_id, 4).visible is False

    pkl = export(source, VIDEO, tmp_path / "walk.pkl", "tapvid")
    with open(pkl, "rb") as f:
        doc = pickle.load(f)
    assert list(doc) == ["walk"] and doc["walk"]["points"].shape == (2, 12, 2)
    assert doc["walk"]["points"][0, 0].tolist() == pytest.approx([10.5 / 64, 40.25 / 48])
    result = AnnotationStore()
    import_file(pkl, "tapvid", result, VIDEO)
    assert result.get_state(result.objects[0].obj_id, 2).point.tolist() == pytest.approx([12.5, 40.25], abs=1e-4)


def test_tapvid_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):  # os.system: print would do, but Ray replaces builtins.print once it has run
            return (os.system, ("echo owned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"walk": Evil()}))
    with pytest.raises(FormatError, match=r"evil.pkl.*refusing to load (posix|nt)\.system"):
        read_file(path, "tapvid", VIDEO)


# ---- TrackStudio's own formats through the registry -------------------------------------------------
@pytest.mark.parametrize("fmt,name", [("json", "walk.json"), ("npz", "walk.npz"), ("png", "walk_masks")])
def test_builtin_formats_import_as_new_objects(tmp_path, fmt, name):
    source = sample_store()
    path, result = reimport(tmp_path, fmt, name, source)
    kinds = FORMATS[fmt].kinds
    assert {o.kind for o in result.objects} == set(kinds)
    ball = by_name(source)["ball"]
    imported_ball = next(o for o in result.objects if o.kind == "mask")
    assert result.get_state(imported_ball.obj_id, 7).mask.counts == source.get_state(ball.obj_id, 7).mask.counts


# ---- bad files -----------------------------------------------------------------------------------
BAD_FILES = [
    ("coco", "bad.json", json.dumps({"images": [{"id": 1, "width": 64, "height": 48}],
                                     "annotations": [{"id": 1, "image_id": 1, "bbox": [1, 2, 3]}]}),
     r"bad\.json: annotations\[0\]\.bbox: expected \[x, y, width, height\]"),
    ("coco", "bad.json", json.dumps({"images": [{"id": 1, "width": 640, "height": 48}], "annotations": []}),
     r"bad\.json: images\[0\]\.width: the image is 640x48 but the video is 64x48"),
    ("coco", "bad.json", json.dumps({"images": [], "annotations": [{"image_id": 3, "bbox": [0, 0, 1, 1]}]}),
     r"bad\.json: annotations\[0\]\.image_id: no image has id 3"),
    ("mot", "gt.txt", "1,1,10,10,5,5,1,1,1\n2,1,10,ten,5,5,1,1,1\n", r"gt\.txt: line 2: bb_top: expected a number"),
    ("mot", "gt.txt", "99,1,10,10,5,5\n", r"gt\.txt: line 1: frame: frame 98 is outside the video's 12 frames"),
    ("cvat", "bad.xml", '<annotations><track id="0" label="car"><box frame="0" outside="0" keyframe="1" xtl="1" '
                        'ytl="1" xbr="5"/></track></annotations>',
     r"bad\.xml: track\[0\] \(id 0\)\.box\[0\]\.ybr: expected a number"),
    ("cvat", "bad.xml", "<annotations><track", r"bad\.xml: not valid XML"),
    ("dlc", "bad.csv", "scorer,a,a\nbodyparts,nose,nose\ncoords,x,y\nimg0001.png,3,oops\n",
     r"bad\.csv: line 4: nose y: expected a number"),
    ("tapvid", "bad.npz", None, r"bad\.npz: occluded: the array is missing"),
    ("sleap", "bad.slp", "not an HDF5 file", r"bad\.slp: not a readable SLEAP file"),
]


@pytest.mark.parametrize("fmt,name,content,message", BAD_FILES)
def test_malformed_files_name_the_file_and_field_and_import_nothing(tmp_path, fmt, name, content, message):
    path = tmp_path / name
    if content is None:
        np.savez(path, tracks=np.zeros((1, 12, 2)))
    else:
        path.write_text(content)
    store = sample_store()
    revision = store.revision
    with pytest.raises(FormatError, match=message):
        import_file(path, fmt, store, VIDEO)
    assert store.revision == revision and len(store.objects) == 4


def test_yolo_bad_line_names_the_file_and_line(tmp_path):
    labels = tmp_path / "ds" / "labels"
    labels.mkdir(parents=True)
    (labels / "000001.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (labels / "000002.txt").write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(FormatError, match=r"000002\.txt: line 1: expected 'class cx cy w h'"):
        import_file(tmp_path / "ds", "yolo", AnnotationStore(), VIDEO)


def test_unknown_format_and_empty_file(tmp_path):
    with pytest.raises(FormatError, match="unknown format 'voc'; choose one of json, npz, png, coco"):
        export(sample_store(), VIDEO, tmp_path / "x", "voc")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(FormatError, match="empty.txt: holds no mot annotations"):
        import_file(tmp_path / "empty.txt", "mot", AnnotationStore(), VIDEO)
