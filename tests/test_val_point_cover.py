"""The covered-point validation clips: the point is covered exactly while the bar's pixels are where it is,
and a tracker without appearance memory (Lucas-Kanade) is caught staying on the bar."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "val_point_cover.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("val_point_cover", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed, speed, bar", [(0, 4, 0), (1, 8, 1)])
def test_the_point_is_covered_while_the_still_bar_is_over_it(bench, seed, speed, bar):
    width, kinds = bench.BARS[bar]
    frames, track, in_view = bench.cover_clip(seed, speed, width, kinds, 1.0)
    covered = [t for t in np.flatnonzero(~in_view) if track[t][0] < bench.WIDTH - 10]  # not the frames it leaves by
    assert len(covered) >= 4 and in_view[0] and in_view[covered[-1] + 1]
    for t in range(len(frames)):
        x, y = np.round(track[t]).astype(int)
        if x >= bench.WIDTH - 10 or x < 100:
            continue  # out of the frame, or where frame 0 shows the square itself
        # the bar is still: a covered point shows the bar's pixel of frame 0 there; one in view shows the square
        on_bar = np.array_equal(frames[t][y, x], frames[0][y, x])
        assert on_bar == (t in covered), t


def test_lucas_kanade_stays_on_the_bar(bench):
    from trackstudio.trackers import registry

    scores = bench.cover_scores(registry.build("lk", device="cpu"))
    assert scores["clips"] == len(bench.SEEDS) * len(bench.SPEEDS) * len(bench.BARS)
    assert scores["recovered"] == 0 and scores["stuck"] == scores["clips"]


@pytest.mark.parametrize("seed, speed", [(1, 6), (1, 4)])
def test_the_point_tracker_takes_a_point_off_the_bar_once_the_patch_fits_beyond_it(bench, seed, speed, monkeypatch):
    from trackstudio.trackers import Prompt, registry
    from trackstudio.trackers.point.tracker import default_weights

    if not default_weights().is_file():
        pytest.skip("trained point tracker weights are missing")
    width, kinds = bench.BARS[0]
    frames, track, in_view = bench.cover_clip(seed, speed, width, kinds, 1.0)
    behind = np.flatnonzero(~in_view)
    behind = behind[behind < np.flatnonzero(in_view)[-1]]
    judged = [t for t in range(behind[-1] + 3, len(frames)) if in_view[t]][:bench.JUDGED_AFTER]
    errors = {}
    for margin in (None, "default"):
        # with the re-detection as it was before session 33 (no patch search, session 34; session 35's visibility
        # threshold undone) it stays on the bar, shown (the session-37 weights alone take it off the bar on clip (0, 8),
        # which this test used before)
        config = {} if margin == "default" else {"redetect_margin": None, "redetect_similarity": 0.9,
                                                 "visibility_threshold": 0.5}
        tracker = registry.build("point_transformer", config, device="cpu")
        tracker.set_video(frames)
        tracker.add_prompt(0, 1, Prompt(point=track[0]))
        with monkeypatch.context() as patch:
            if margin is None:
                patch.setattr("trackstudio.trackers.point.align.SEARCH_MIN_CORRELATION", 2.0)  # no match is enough
            results = {r.frame_idx: r.objects[1] for r in tracker.propagate(0)}
        assert all(results[t].visible for t in judged)
        errors[margin] = np.array([np.linalg.norm(results[t].point - track[t]) for t in judged])
    assert (errors[None] > 16).any()
    assert (errors["default"] < 4).all(), errors["default"]
