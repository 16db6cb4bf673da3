"""The point benchmark reads the project's procedural training clips as judged sequences: every point
is queried on its first visible frame, a point never seen is not judged, and --max_points keeps
evenly spaced points (the held-out clips where the point tracker's settings are chosen)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_point_quality.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_point_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_procedural_clip_is_queried_on_first_visible_frame_and_never_seen_points_are_not_judged():
    visibs = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 0]], bool)  # (T=4, N=3)
    trajs = np.random.default_rng(0).uniform(0, 100, (4, 3, 2)).astype(np.float32)
    gt = _bench().procedural_gt({"trajs_2d": trajs, "visibs": visibs})
    assert gt["point_query"].tolist() == [0, 1, -1]
    assert gt["point_eval"].all() and gt["point_eval"].shape == visibs.shape
    assert np.array_equal(gt["trajs_2d"], trajs)


def test_max_points_keeps_evenly_spaced_judged_points():
    bench = _bench()
    query = np.array([0, -1, 2, 0, 0, 1, 0, -1, 3, 0], np.int32)  # 8 judged points
    kept = bench.keep_points({"point_query": query}, 3)["point_query"]
    judged = np.flatnonzero(kept >= 0)
    assert judged.tolist() == [0, 5, 9]  # first, middle, last judged
    assert kept[judged].tolist() == query[judged].tolist()
    assert bench.keep_points({"point_query": query}, None)["point_query"] is query
