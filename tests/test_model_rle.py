"""MaskRLE: COCO-compatible compact masks, strict parsing of untrusted counts, memory."""
from __future__ import annotations

import pickle
import tracemalloc

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from trackstudio.app.model import AnnotationStore, FrameState, MaskRLE
from trackstudio.app.model.rle import decode_counts


def runs_of(mask: np.ndarray) -> list[int]:
    """Column-major run lengths starting with background: the uncompressed COCO counts."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def random_masks(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = rng.integers(1, 40, 2)
        mask = rng.random((h, w)) < rng.random()
        if i % 7 == 0:
            mask[:] = i % 14 == 0  # all background / all foreground
        yield mask


def test_encode_matches_pycocotools_and_decodes_exactly():
    for mask in random_masks(200):
        rle = MaskRLE.encode(mask)
        coco = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle.counts == coco["counts"].decode("ascii")
        assert rle.size == mask.shape
        np.testing.assert_array_equal(rle.decode(), mask)
        np.testing.assert_array_equal(coco_mask.decode({"size": list(rle.size), "counts": rle.counts}), mask)
        assert rle.area() == int(mask.sum())


def test_counts_parser_agrees_with_run_lengths():
    for mask in random_masks(200, seed=1):
        rle = MaskRLE.encode(mask)
        assert decode_counts(rle.counts).tolist() == runs_of(mask)
        assert MaskRLE(rle.size, rle.counts) == rle  # validating constructor accepts it
        assert MaskRLE.from_runs(rle.size, runs_of(mask)) == rle


def test_long_runs_and_large_masks():
    mask = np.zeros((1080, 1920), bool)
    mask[100:900, 5:1800] = True
    rle = MaskRLE.encode(mask)
    assert decode_counts(rle.counts).sum() == mask.size
    assert rle.bbox().tolist() == [5, 100, 1800, 900]  # far edges, like trackers.types.mask_to_box
    assert MaskRLE.encode(np.zeros((4, 4), bool)).bbox() is None


@pytest.mark.parametrize("counts, message", [
    ("", "cover 0 pixels"),
    ("zzzz", "outside"),
    ("0o", "truncated"),
    ("5", "cover 5 pixels"),
    ("o" * 14 + "0", "implausibly long"),
    ("ñ", "ASCII"),
    ("1@", "negative"),
])
def test_malformed_counts_are_rejected(counts, message):
    # pycocotools would decode these into garbage (even uninitialised memory), so parse first
    with pytest.raises(ValueError, match=message):
        MaskRLE((4, 6), counts)


def test_truncated_real_counts_are_rejected():
    mask = np.zeros((48, 64), bool)
    mask[10:30, 5:50] = True
    counts = MaskRLE.encode(mask).counts
    with pytest.raises(ValueError):
        MaskRLE((48, 64), counts[:-2])
    with pytest.raises(ValueError, match="cover"):
        MaskRLE((48, 65), counts)
    with pytest.raises(ValueError, match="size"):
        MaskRLE((48,), counts)
    with pytest.raises(ValueError, match="2-D"):
        MaskRLE.encode(np.zeros((2, 3, 4), bool))


def test_value_semantics():
    mask = np.eye(5, dtype=bool)
    a, b = MaskRLE.encode(mask), MaskRLE.encode(mask.copy())
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != MaskRLE.encode(~mask)
    assert pickle.loads(pickle.dumps(a)) == a
    assert "area=5" in repr(a)


def test_store_of_5000_480p_masks_stays_small():
    height, width = 480, 854
    yy, xx = np.mgrid[:height, :width]
    blob = ((yy - 240) / 120.0) ** 2 + ((xx - 300) / 90.0) ** 2 < 1  # about 34,000 pixels
    store = AnnotationStore()
    obj = store.add_object("mask")
    tracemalloc.start()
    try:
        with store.macro("Propagate"):
            for frame_idx in range(5000):
                mask = np.roll(blob, (frame_idx % 97) - 48, axis=0)
                mask = np.roll(mask, frame_idx % 400, axis=1)
                store.apply_tracked(obj.obj_id, frame_idx, FrameState(mask=mask, score=0.9))
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    raw_bytes = 5000 * height * width  # as bool arrays: 2 GB
    assert len(store.frames(obj.obj_id)) == 5000
    assert used < 15e6, f"{used / 1e6:.1f} MB for 5000 masks"  # store + undo history, ~1/150 of raw
    assert used < raw_bytes / 100
    np.testing.assert_array_equal(store.get_state(obj.obj_id, 1234).mask.decode(),
                                  np.roll(np.roll(blob, (1234 % 97) - 48, axis=0), 1234 % 400, axis=1))


def test_encode_accepts_non_bool_and_strided_masks():
    mask = np.zeros((20, 30), bool)
    mask[3:9, 4:25] = True
    probabilities = mask * 0.7  # float: non-zero is foreground
    assert MaskRLE.encode(probabilities) == MaskRLE.encode(mask)
    assert MaskRLE.encode(mask.astype(np.uint8) * 255) == MaskRLE.encode(mask)
    big = np.zeros((40, 60), bool)
    big[::2, ::2] = mask
    np.testing.assert_array_equal(MaskRLE.encode(big[::2, ::2]).decode(), mask)  # a strided view
    np.testing.assert_array_equal(MaskRLE.encode(mask.T).decode(), mask.T)  # a Fortran-ordered view
    assert MaskRLE.encode(np.zeros((0, 5), bool)).size == (0, 5)
