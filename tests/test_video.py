"""app.video on synthetic clips whose frames carry their own index, so every read can be checked."""
from __future__ import annotations

import json
import threading

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from trackstudio.app.video import FrameCache, VideoError, VideoInfo, natural_key, open_video, write_video

GRID = 4  # frames show their index as a GRID x GRID block pattern of bits: survives lossy codecs


def coded_frame(frame_idx: int, width: int = 64, height: int = 48) -> np.ndarray:
    """(H, W, 3) uint8 RGB whose blocks are white where frame_idx has a 1 bit."""
    frame = np.zeros((height, width, 3), np.uint8)
    bh, bw = height // GRID, width // GRID
    for bit in range(GRID * GRID):
        if frame_idx >> bit & 1:
            row, col = divmod(bit, GRID)
            frame[row * bh:(row + 1) * bh, col * bw:(col + 1) * bw] = 255
    return frame


def frame_index(frame: np.ndarray) -> int:
    """Read back the index drawn by `coded_frame`, from the centre of each block."""
    height, width = frame.shape[:2]
    bh, bw = height // GRID, width // GRID
    index = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        y, x = row * bh + bh // 2, col * bw + bw // 2
        if frame[y - bh // 4:y + bh // 4, x - bw // 4:x + bw // 4].mean() > 127:
            index |= 1 << bit
    return index


def coded_clip(path, num_frames: int, fps: float = 25.0, width: int = 64, height: int = 48):
    write_video((coded_frame(i, width, height) for i in range(num_frames)), path, fps)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return coded_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", 120)


def test_metadata_and_rgb_order(tmp_path, clip):
    with open_video(clip) as src:
        assert src.info == VideoInfo(str(clip), 120, 64, 48, 25.0)
        assert len(src) == 120
        frame = src[7]
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert frame_index(frame) == 7
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 255
    write_video([red] * 3, tmp_path / "red.avi", fps=10)
    with open_video(tmp_path / "red.avi") as src:
        assert src[2][..., 0].mean() > 200 and src[2][..., 2].mean() < 50  # R first: RGB, not BGR
        assert src.info.fps == 10.0


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mov", ".mkv", ".webm"])
def test_every_container_round_trips(tmp_path, suffix):
    path = coded_clip(tmp_path / f"clip{suffix}", 30)
    with open_video(path) as src:
        assert len(src) == 30
        assert [frame_index(src[i]) for i in (29, 0, 15, 16)] == [29, 0, 15, 16]


def test_random_access_is_frame_exact(clip):
    order = list(np.random.default_rng(0).permutation(120)) + [5, 5, 6, 7, 119, 0, 118, 117, 3]
    with open_video(clip, cache_bytes=0) as src:  # no cache: every read goes to the decoder
        assert [frame_index(src[i]) for i in order] == [int(i) for i in order]
        assert [frame_index(frame) for frame in src] == list(range(120))


def test_reading_backwards_decodes_runs_into_the_cache(clip):
    with open_video(clip) as src:
        assert [frame_index(src[i]) for i in range(119, -1, -1)] == list(range(119, -1, -1))
        assert len(src.cache) == 120
    with open_video(clip, cache_bytes=20 * 48 * 64 * 3) as src:  # too small to hold runs: one frame at a time
        assert [frame_index(src[i]) for i in range(60, 20, -1)] == list(range(60, 20, -1))
        assert src.cache.nbytes <= src.cache.max_bytes


def test_index_errors(clip):
    with open_video(clip) as src:
        assert frame_index(src[-1]) == 119  # sequence convention
        with pytest.raises(IndexError, match="frame 120 is out of range.*120 frames"):
            src[120]
        with pytest.raises(IndexError):
            src[-121]
        with pytest.raises(TypeError):
            src[1.5]


def test_frames_are_read_only_and_close_is_final(clip):
    src = open_video(clip)
    frame = src[3]
    assert not frame.flags.writeable
    with pytest.raises(ValueError):
        frame[0, 0] = 1
    assert src[3] is frame  # served from the cache, still intact
    src.close()
    with pytest.raises(VideoError, match="closed"):
        src[4]
    src.close()  # closing twice is harmless


def test_frame_cache_is_lru_and_bounded_in_bytes():
    frame_bytes = 48 * 64 * 3
    cache = FrameCache(max_bytes=3 * frame_bytes)
    for frame_idx in range(3):
        cache.put(frame_idx, coded_frame(frame_idx))
    assert cache.get(0) is not None  # 0 becomes the most recently used
    cache.put(3, coded_frame(3))
    assert 1 not in cache and {0, 2, 3} <= {i for i in range(4) if i in cache}
    assert cache.nbytes == 3 * frame_bytes and len(cache) == 3
    big = np.zeros((100, 100, 3), np.uint8)
    assert cache.put(9, big) is big and 9 not in cache  # larger than the whole budget: not kept
    assert not big.flags.writeable
    cache.clear()
    assert cache.nbytes == 0 and len(cache) == 0
    with pytest.raises(ValueError):
        FrameCache(-1)


def test_ten_thousand_frames_open_lazily_in_bounded_memory(tmp_path):
    path = coded_clip(tmp_path / "long.mp4", 10_000, fps=50)
    frame_bytes = 48 * 64 * 3
    budget = 100 * frame_bytes
    with open_video(path, cache_bytes=budget) as src:
        assert len(src) == 10_000
        assert src.cache.nbytes <= frame_bytes  # opening decoded one frame at most
        assert [frame_index(src[i]) for i in (9_999, 5_000, 0, 9_998, 1)] == [9_999, 5_000, 0, 9_998, 1]
        for frame_idx, frame in enumerate(src):
            assert src.cache.nbytes <= budget
            if frame_idx % 997 == 0:
                assert frame_index(frame) == frame_idx
        assert src.cache.nbytes == budget and len(src.cache) == 100


def test_concurrent_reads_from_two_threads(clip):
    rng = np.random.default_rng(1)
    orders = [rng.integers(0, 120, 300), rng.integers(0, 120, 300)]
    wrong, errors = [], []
    with open_video(clip, cache_bytes=0) as src:

        def read_all(order):
            try:
                wrong.extend(int(i) for i in order if frame_index(src[int(i)]) != i)
            except Exception as exc:  # surfaced below: an exception in a thread would be lost
                errors.append(exc)

        threads = [threading.Thread(target=read_all, args=(order,)) for order in orders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [] and wrong == []


def test_image_folder_in_natural_order(tmp_path):
    for frame_idx in (1, 2, 10, 11, 100):
        cv2.imwrite(str(tmp_path / f"frame{frame_idx}.png"), coded_frame(frame_idx))
    (tmp_path / "notes.txt").write_text("not a frame")
    cv2.imwrite(str(tmp_path / ".frame0.png"), coded_frame(0))  # hidden: skipped
    with open_video(tmp_path) as src:
        assert src.info == VideoInfo(str(tmp_path), 5, 64, 48, 30.0)
        assert [frame_index(src[i]) for i in (4, 0, 2, 1, 3)] == [100, 1, 10, 2, 11]
    assert sorted(["f10.jpg", "f2.jpg", "F1.jpg"], key=natural_key) == ["F1.jpg", "f2.jpg", "f10.jpg"]


def test_an_image_folder_s_frames_are_its_images_of_the_most_common_format(tmp_path):
    # a preview in another format beside the frames is not read as a frame among them (natural order would put
    # frame1_cover.png between frame1.jpg and frame2.jpeg otherwise); .jpg and .jpeg are one format
    for frame_idx, ext in ((0, "jpg"), (1, "jpg"), (2, "jpeg")):
        cv2.imwrite(str(tmp_path / f"frame{frame_idx}.{ext}"), coded_frame(frame_idx))
    cv2.imwrite(str(tmp_path / "frame1_cover.png"), coded_frame(7))
    with open_video(tmp_path) as src:
        assert len(src) == 3 and [frame_index(src[i]) for i in range(3)] == [0, 1, 2]
    # a mask beside each frame: as many of each format, so which are the frames is not guessed
    for frame_idx in (0, 2):
        cv2.imwrite(str(tmp_path / f"frame{frame_idx}_mask.png"), coded_frame(frame_idx))
    with pytest.raises(VideoError, match=r"as many \.(jpg|png) as \.(jpg|png) images \(3 each\)"):
        open_video(tmp_path)


def test_image_folder_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="holds no images"):
        open_video(tmp_path)
    cv2.imwrite(str(tmp_path / "0.jpg"), coded_frame(0))
    cv2.imwrite(str(tmp_path / "1.jpg"), coded_frame(1, width=32, height=32))
    (tmp_path / "2.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "3.jpg").write_bytes(b"")
    with open_video(tmp_path) as src:
        with pytest.raises(VideoError, match=r"1\.jpg: frame 1 is 32x32.*0\.jpg is 64x48"):
            src[1]
        with pytest.raises(VideoError, match=r"2\.jpg: not a readable image"):
            src[2]
        with pytest.raises(VideoError, match=r"3\.jpg: the image file is empty"):
            src[3]
    (tmp_path / "0.jpg").write_bytes(b"broken first image")
    with pytest.raises(VideoError, match=r"0\.jpg: not a readable image"):
        open_video(tmp_path)


def test_bad_files_give_clear_errors(tmp_path):
    cases = {
        "missing.mp4": (None, "no such file"),
        "empty.mp4": (b"", "empty"),
        "junk.mp4": (np.random.default_rng(0).bytes(5000), "could not be opened as a video"),
        "notes.txt": (b"hello", "unsupported file type '.txt'"),
        "still.png": (cv2.imencode(".png", coded_frame(1))[1].tobytes(), "single image is not a video"),
    }
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        with pytest.raises(VideoError, match=message) as excinfo:
            open_video(tmp_path / name)
        assert name in str(excinfo.value)


def test_truncated_mp4_without_index_fails_at_open(tmp_path, clip):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # OpenCV writes the index (moov) last: now gone
    with pytest.raises(VideoError, match="cut.mp4: could not be opened"):
        open_video(cut)


def _faststart_clip(path, num_frames: int):
    """H.264 with the index first, as cameras and web videos have it: a cut file still opens."""
    writer = imageio_ffmpeg.write_frames(
        str(path), (64, 48), fps=25, codec="libx264", macro_block_size=1,
        output_params=["-movflags", "+faststart"],
    )
    writer.send(None)
    for frame_idx in range(num_frames):
        writer.send(coded_frame(frame_idx))
    writer.close()
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_truncated_video_reports_the_frame_that_fails(tmp_path, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".mp4":
        _faststart_clip(full, 300)
    else:
        coded_clip(full, 300)  # MJPG in AVI: the index at the end is lost, the frames before remain
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut, cache_bytes=0) as src:
        assert len(src) == 300  # the header's claim; the truth only shows when decoding
        # Past the cut a seek can land on the last good frame and "succeed": it must not be returned.
        message = r"cut\.\w+: frame 250 could not be decoded.*only frames 0\.\.\d+ of the 300"
        with pytest.raises(VideoError, match=message):
            src[250]
        assert frame_index(src[10]) == 10
        for frame_idx in range(len(src)):
            try:
                assert frame_index(src[frame_idx]) == frame_idx
            except VideoError as exc:
                assert f"frame {frame_idx} could not be decoded" in str(exc)
                break
        assert 10 < frame_idx < 250
        with pytest.raises(VideoError, match="frame 299"):
            src[299]


def test_write_video_rejects_bad_frames(tmp_path):
    with pytest.raises(VideoError, match="frame 1 is 32x32"):
        write_video([coded_frame(0), coded_frame(1, 32, 32)], tmp_path / "a.mp4")
    with pytest.raises(VideoError, match="must be even"):
        write_video([np.zeros((49, 65, 3), np.uint8)], tmp_path / "b.mp4")
    with pytest.raises(VideoError, match="no frames"):
        write_video([], tmp_path / "c.mp4")
    with pytest.raises(VideoError, match="cannot write '.gif'"):
        write_video([coded_frame(0)], tmp_path / "d.gif")


def test_shared_davis_frames_folder(shared_data):
    folders = sorted(p for p in shared_data.glob("davis_*") if (p / "meta.json").is_file())
    if not folders:
        pytest.skip("no davis_* sequence in ../shared/data")
    meta = json.loads((folders[0] / "meta.json").read_text())
    with open_video(folders[0] / "frames") as src:
        assert len(src) == meta["num_frames"]
        assert (src.info.height, src.info.width) == (meta["height"], meta["width"])
        last = src[-1]
        assert last.shape == (meta["height"], meta["width"], 3) and last.std() > 5  # a real picture
