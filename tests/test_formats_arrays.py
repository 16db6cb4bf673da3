"""NPZ export and DAVIS-style PNG masks (export and import)."""
from __future__ import annotations

import errno

import numpy as np
import pytest
from PIL import Image

from trackstudio.app.model import AnnotationStore, FormatError, FrameState
from trackstudio.app.model.colors import davis_palette
from trackstudio.app.model.formats import export_npz, export_png_masks, import_png_masks
from trackstudio.app.video import VideoInfo

VIDEO = VideoInfo("clip.mp4", num_frames=12, width=40, height=30, fps=10.0)


def square(x: int, y: int, size: int = 8) -> np.ndarray:
    mask = np.zeros((VIDEO.height, VIDEO.width), bool)
    mask[y:y + size, x:x + size] = True
    return mask


def make_store() -> AnnotationStore:
    store = AnnotationStore()
    left = store.add_object("mask", name="left")
    right = store.add_object("mask", name="right")
    box = store.add_object("box", name="car")
    point = store.add_object("point", name="eye")
    store.add_object("point", name="unseen")  # no states at all
    for t in range(VIDEO.num_frames):
        store.set_state(left.obj_id, t, FrameState(mask=square(t, 2), keyframe=t == 0))
        if t % 2 == 0:
            store.set_state(right.obj_id, t, FrameState(mask=square(t + 4, 6)))  # overlaps left
        store.set_state(box.obj_id, t, FrameState(box=[t, 1, t + 5, 9], visible=t != 5))
        if t >= 3:
            store.set_state(point.obj_id, t, FrameState(point=[t + 0.5, 7.25], visible=t < 9))
    return store


def test_npz_export_layout_and_values(tmp_path):
    store = make_store()
    path = tmp_path / "out.npz"
    export_npz(store, VIDEO, path)
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    assert data["trajs_2d"].shape == (12, 2, 2) and data["trajs_2d"].dtype == np.float32
    assert data["visibs"].shape == (12, 2) and data["visibs"].dtype == bool
    assert np.isnan(data["trajs_2d"][:3, 0]).all() and np.isnan(data["trajs_2d"][:, 1]).all()
    assert data["trajs_2d"][10, 0].tolist() == [10.5, 7.25]  # occluded points keep their position
    assert data["visibs"][:, 0].tolist() == [False] * 3 + [True] * 6 + [False] * 3
    assert data["boxes"].shape == (12, 1, 4) and data["boxes"].dtype == np.float32
    assert data["boxes"][4, 0].tolist() == [4, 1, 9, 9] and np.isnan(data["boxes"][5, 0]).all()
    assert data["masks"].shape == (12, 30, 40) and data["masks"].dtype == np.uint16
    for t in range(12):
        expected = np.zeros((30, 40), np.uint16)
        expected[square(t, 2)] = 1
        if t % 2 == 0:
            expected[square(t + 4, 6)] = 2  # later objects are painted on top
        np.testing.assert_array_equal(data["masks"][t], expected)
    assert data["point_ids"].tolist() == [4, 5] and data["point_names"].tolist() == ["eye", "unseen"]
    assert data["box_ids"].tolist() == [3] and data["box_names"].tolist() == ["car"]
    assert data["mask_ids"].tolist() == [1, 2] and data["mask_names"].dtype.kind == "U"
    assert (int(data["num_frames"]), int(data["height"]), int(data["width"])) == (12, 30, 40)
    assert str(data["video_path"]) == "clip.mp4" and float(data["fps"]) == 10.0


def test_npz_omits_kinds_without_objects(tmp_path):
    store = AnnotationStore()
    box = store.add_object("box")
    store.set_state(box.obj_id, 2, FrameState(box=[1, 2, 3, 4]))
    export_npz(store, VIDEO, tmp_path / "b.npz")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as npz:
        assert "masks" not in npz.files and "trajs_2d" not in npz.files and "boxes" in npz.files


def test_npz_rejects_what_it_cannot_hold(tmp_path):
    store = AnnotationStore()
    obj = store.add_object("box")
    store.set_state(obj.obj_id, 12, FrameState(box=[1, 2, 3, 4]))
    with pytest.raises(FormatError, match="frame 12, beyond the video's 12 frames"):
        export_npz(store, VIDEO, tmp_path / "x.npz")
    store = AnnotationStore()
    obj = store.add_object("mask", obj_id=70000)
    with pytest.raises(FormatError, match="id 70000"):
        export_npz(store, VIDEO, tmp_path / "x.npz")
    store = AnnotationStore()
    obj = store.add_object("mask")
    store.set_state(obj.obj_id, 0, FrameState(mask=np.ones((5, 5), bool)))
    with pytest.raises(FormatError, match="5x5 mask, but the video is 30x40"):
        export_npz(store, VIDEO, tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_npz_streams_long_mask_videos(tmp_path):
    video = VideoInfo("long.mp4", 2000, 64, 48, 30.0)
    store = AnnotationStore()
    obj = store.add_object("mask")
    mask = np.zeros((48, 64), bool)
    mask[5:20, 7:30] = True
    with store.macro("Propagate"):
        for t in range(0, 2000, 3):
            store.apply_tracked(obj.obj_id, t, FrameState(mask=mask))
    export_npz(store, video, tmp_path / "long.npz")
    with np.load(tmp_path / "long.npz", allow_pickle=False) as npz:
        masks = npz["masks"]
    assert masks.shape == (2000, 48, 64)
    assert (masks[::3] == mask * obj.obj_id).all() and not masks[1::3].any()


def test_png_round_trip(tmp_path):
    store = make_store()
    written = export_png_masks(store, VIDEO, tmp_path / "masks")
    assert [p.name for p in written[:3]] == ["00000.png", "00001.png", "00002.png"] and len(written) == 12
    with Image.open(written[4]) as image:
        assert image.mode == "P" and image.size == (40, 30)
        assert np.array_equal(np.array(image.getpalette()[:9]), davis_palette()[:3].ravel())
        labels = np.asarray(image)
    assert set(np.unique(labels)) == {0, 1, 2}

    fresh = AnnotationStore()
    created = import_png_masks(tmp_path / "masks", fresh, VIDEO)
    assert [o.obj_id for o in created] == [1, 2]  # label values become ids when free
    for t in range(12):
        left = square(t, 2)
        if t % 2 == 0:
            left &= ~square(t + 4, 6)  # what the label map shows of the lower object
            np.testing.assert_array_equal(fresh.get_state(2, t).mask.decode(), square(t + 4, 6))
        np.testing.assert_array_equal(fresh.get_state(1, t).mask.decode(), left)
    assert fresh.frames(2) == list(range(0, 12, 2)) and fresh.keyframes(1) == list(range(12))
    fresh.undo_stack.undo()  # the whole import is one step
    assert fresh.objects == []


def test_png_import_into_a_store_that_uses_the_ids(tmp_path):
    store = make_store()
    export_png_masks(store, VIDEO, tmp_path / "m")
    created = import_png_masks(tmp_path / "m", store, VIDEO, keyframe=False)
    assert [o.obj_id for o in created] == [6, 7] and store.keyframes(6) == []


def test_png_export_refuses_ids_over_255(tmp_path):
    store = AnnotationStore()
    store.add_object("mask", obj_id=300)
    with pytest.raises(FormatError, match="id 300, but an 8-bit indexed PNG holds ids 1..255"):
        export_png_masks(store, VIDEO, tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("name, image, message", [
    ("00003.png", Image.new("RGB", (40, 30)), "got mode RGB"),
    ("00003.png", Image.new("P", (41, 30)), "the mask is 41x30 but the video is 40x30"),
    ("mask_3.png", Image.new("P", (40, 30)), "the file name must be the frame index"),
    ("00012.png", Image.new("P", (40, 30)), "frame 12 is beyond the video's 12 frames"),
])
def test_png_import_errors_name_the_file(tmp_path, name, image, message):
    good = Image.new("P", (40, 30))
    good.putpixel((3, 3), 1)
    good.save(tmp_path / "00000.png")
    image.save(tmp_path / name)
    store = AnnotationStore()
    with pytest.raises(FormatError, match=message) as info:
        import_png_masks(tmp_path, store, VIDEO)
    assert name in str(info.value)
    assert store.objects == []  # checked before anything changes


def test_png_import_of_a_corrupt_file_and_an_empty_folder(tmp_path):
    (tmp_path / "00000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(FormatError, match="00000.png: cannot read the PNG"):
        import_png_masks(tmp_path, AnnotationStore(), VIDEO)
    with pytest.raises(FormatError, match="no PNG masks"):
        import_png_masks(tmp_path / "missing", AnnotationStore(), VIDEO)


def test_davis_palette_matches_the_standard_colours():
    palette = davis_palette()
    assert palette[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert palette[255].tolist() == [224, 224, 192]


def test_import_judo_masks(shared_data):
    judo = shared_data / "judo"
    if not (judo / "masks").is_dir():
        pytest.skip("judo masks are not present")
    frames = sorted((judo / "images").glob("*.jpg"))
    with Image.open(frames[0]) as image:
        width, height = image.size
    video = VideoInfo(str(judo / "images"), len(frames), width, height, 30.0)
    store = AnnotationStore()
    sizes = {}
    for png in sorted((judo / "masks").glob("*.png")):
        with Image.open(png) as image:
            sizes[png.name] = image.size
    if any(size != (width, height) for size in sizes.values()):
        with pytest.raises(FormatError, match="import with resize"):  # one of the clip's pngs is a pixel short
            import_png_masks(judo / "masks", store, video)
    created = import_png_masks(judo / "masks", store, video, resize=True)
    # each png adds one object, on its own frame
    assert len(created) == len(sizes)
    for obj, name in zip(created, sorted(sizes)):
        assert store.keyframes(obj.obj_id) == [int(name[:-4])]
        state = store.get_state(obj.obj_id, int(name[:-4]))
        assert state.mask.size == (height, width) and state.mask.area() > 500
        with Image.open(judo / "masks" / name) as image:
            labels = np.asarray(image)
        if labels.shape == (height, width):
            np.testing.assert_array_equal(state.mask.decode(), labels == obj.obj_id)


def test_png_export_failing_midway_keeps_the_old_folder_and_names_it(tmp_path, monkeypatch):
    store = AnnotationStore()
    obj = store.add_object("mask").obj_id
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    store.set_state(obj, 1, FrameState(mask=mask, keyframe=True))
    video = VideoInfo("v.mp4", 4, 10, 8, 25.0)
    out = tmp_path / "masks"
    out.mkdir()
    (out / "00000.png").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    real_save, calls = Image.Image.save, []

    def full_disk_on_the_third(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", full_disk_on_the_third)
    with pytest.raises(OSError) as err:
        export_png_masks(store, video, out)
    assert err.value.filename == str(out) and err.value.errno == errno.ENOSPC  # the folder, not a temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks"]  # no temporary folder left
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "notes.txt"]
    monkeypatch.undo()
    export_png_masks(store, video, out)
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00002.png", "00003.png", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert np.array(Image.open(out / "00001.png"))[3, 4] == obj
