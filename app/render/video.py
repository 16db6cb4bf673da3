"""Review videos: the clip with its annotations drawn, encoded as H.264 MP4 through PyAV (no Qt).

Frames keep their timestamps (a variable-frame-rate clip stays in sync), odd sizes are padded by
one pixel (H.264 4:2:0 needs even sizes), the file appears only when complete (written beside the
target, then renamed), and `should_stop` is asked between frames.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from trackstudio.app.video import VideoSource

from .draw import RenderOptions, Snapshot, draw_overlay

_TIME_BASE = Fraction(1, 90_000)  # MPEG's clock: exact for every common frame rate


def render_video(video: VideoSource, objects: Snapshot, out_path: str | os.PathLike, *,
                 side_by_side: bool = False, options: RenderOptions = RenderOptions(), crf: int = 20,
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> bool:
    """Write the review video; returns False (and leaves no file) when `should_stop` said so.

    side_by_side: the original frame on the left, the annotated one on the right.
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise ValueError(f"{out_path.name}: render writes H.264 into .mp4, .mov or .mkv")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.stem}.rendering{out_path.suffix}")
    times = video.frame_times()
    total = len(video)
    done = False
    try:
        with av.open(str(tmp), "w") as container:
            stream = container.add_stream("libx264", rate=Fraction(video.info.fps).limit_denominator(1001))
            width = video.info.width * (2 if side_by_side else 1)
            stream.width, stream.height = width + width % 2, video.info.height + video.info.height % 2
            stream.pix_fmt = "yuv420p"
            stream.codec_context.time_base = _TIME_BASE
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for frame_idx in range(total):
                if should_stop is not None and should_stop():
                    return False
                frame = video[frame_idx]
                picture = draw_overlay(frame, objects, frame_idx, options)
                if side_by_side:
                    picture = np.hstack([frame, picture])
                picture = np.pad(picture, ((0, stream.height - picture.shape[0]),
                                           (0, stream.width - picture.shape[1]), (0, 0)), mode="edge")
                av_frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                av_frame.pts = round(float(times[frame_idx]) / _TIME_BASE)
                av_frame.time_base = _TIME_BASE
                for packet in stream.encode(av_frame):
                    container.mux(packet)
                if progress is not None:
                    progress(frame_idx + 1, total)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, out_path)
        done = True
        return True
    finally:
        if not done:
            tmp.unlink(missing_ok=True)
