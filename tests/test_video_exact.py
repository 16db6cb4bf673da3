"""Frame-exact PyAV decoding on generated files: VFR, rotated and B-frame-heavy clips.

Frame N read by a seek (in a shuffled order, no cache) must equal frame N of a sequential decode,
bit for bit. The clips are written with PyAV here, so every property is known.
"""
from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from trackstudio.app.video import open_video
from trackstudio.app.video.frame_index import load_cached_index
from trackstudio.app.video.pyav_files import PyAVFileSource

WIDTH, HEIGHT = 64, 48


def write_clip(path, num_frames: int, *, durations_ms=(40,), rotation: int | None = None, bframes: bool = False,
               gop: int = 12):
    """Random-noise frames (every frame differs, so a wrong frame cannot pass); returns the pts in ms."""
    rng = np.random.default_rng(7)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.codec_context.time_base = fractions.Fraction(1, 1000)
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    if bframes:
        stream.codec_context.max_b_frames = 3
        params += ":bframes=3:b-adapt=0:b-pyramid=normal"
    stream.options = {"x264-params": params, "crf": "20", "preset": "ultrafast" if not bframes else "medium"}
    if rotation is not None:
        stream.set_display_rotation(rotation)
    pts_ms, t = [], 0
    for frame_idx in range(num_frames):
        image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        image[: HEIGHT // 4, : WIDTH // 4] = 255  # a white top-left corner shows which way is up
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = t, fractions.Fraction(1, 1000)
        pts_ms.append(t)
        t += durations_ms[frame_idx % len(durations_ms)]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return pts_ms


def assert_seek_equals_sequential(path, num_frames: int):
    with open_video(path) as sequential_src:
        assert isinstance(sequential_src, PyAVFileSource)
        sequential = [np.array(frame) for frame in sequential_src]
    assert len(sequential) == num_frames
    order = list(np.random.default_rng(0).permutation(num_frames)) + [num_frames - 1, 0, 5, 4, 3, 2, 1]
    with open_video(path, cache_bytes=0) as src:  # no cache: every read seeks or decodes on
        for frame_idx in order:
            assert np.array_equal(src[int(frame_idx)], sequential[frame_idx]), f"frame {frame_idx}"
    return sequential


def test_variable_frame_rate_clip(tmp_path):
    path = tmp_path / "vfr.mkv"
    pts_ms = write_clip(path, 30, durations_ms=(20, 40, 100))
    assert_seek_equals_sequential(path, 30)
    with open_video(path) as src:
        assert np.allclose(src.frame_times(), np.array(pts_ms) / 1000)  # real times, not frame_idx / fps
        assert len(src) == 30


def test_rotated_clip_is_turned_like_players_do(tmp_path):
    path = tmp_path / "rotated.mp4"
    write_clip(path, 20, rotation=90)
    frames = assert_seek_equals_sequential(path, 20)
    with open_video(path) as src:
        assert (src.info.width, src.info.height) == (HEIGHT, WIDTH)  # portrait, as shown
    assert frames[0].shape == (WIDTH, HEIGHT, 3)
    # 90 degrees counter-clockwise: the white top-left corner is now bottom-left
    assert frames[0][-WIDTH // 4 + 2:, : HEIGHT // 4 - 2].min() > 200


def test_bframe_heavy_clip(tmp_path):
    path = tmp_path / "bframes.mp4"
    write_clip(path, 60, bframes=True)
    with av.open(str(path)) as container:  # the clip really reorders frames
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        assert any(p.pts != p.dts for p in packets)
    assert_seek_equals_sequential(path, 60)


def test_index_is_cached_by_path_size_and_mtime(tmp_path, frame_index_cache, monkeypatch):
    from trackstudio.app.video import pyav_files

    path = tmp_path / "clip.mp4"
    write_clip(path, 12)
    assert load_cached_index(path) is None
    with open_video(path):
        pass
    index = load_cached_index(path)
    assert index is not None and len(index) == 12
    with monkeypatch.context() as patch:  # a second open reads the cache: it does not demux again
        patch.setattr(pyav_files, "build_index", lambda *_: pytest.fail("the index was built again"))
        with open_video(path) as src:
            assert isinstance(src, PyAVFileSource) and len(src) == 12
    write_clip(path, 15)  # the same path, another file: the old index must not be used
    assert load_cached_index(path) is None
    with open_video(path) as src:
        assert len(src) == 15


def test_opencv_stays_the_fallback(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(path, 10)
    with open_video(path, backend="opencv") as cv_src, open_video(path) as av_src:
        assert type(cv_src).__name__ == "VideoFileSource" and len(cv_src) == len(av_src) == 10
        # the same decoder underneath: the pictures agree up to colour-conversion rounding
        assert np.abs(cv_src[7].astype(int) - av_src[7].astype(int)).mean() < 3
