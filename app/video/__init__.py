"""Video sources (Qt-free): video files and image folders with frame-exact random access.

`open_video(path)` returns a `VideoSource`: `len(src)`, `src[frame_idx] -> (H, W, 3) uint8 RGB`
(read-only, thread-safe, through a byte-bounded LRU `FrameCache`), `.info: VideoInfo`,
`.frame_times()` (seconds), `.close()`. Video files decode through PyAV with a cached timestamp index
(frame-exact on VFR, B-frame and rotated files); OpenCV is the fallback where PyAV cannot index a file.
Every failure is a `VideoError` whose message names the file (and the frame, for decode failures).
"""
from __future__ import annotations

import os
from pathlib import Path

from .cache import DEFAULT_CACHE_BYTES, WALK_CACHE_BYTES, FrameCache
from .files import VIDEO_EXTENSIONS, VideoFileSource
from .folders import IMAGE_EXTENSIONS, ImageFolderSource, natural_key
from .source import VideoError, VideoInfo, VideoSource
from .writer import write_video

__all__ = [
    "DEFAULT_CACHE_BYTES", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "FrameCache", "VideoError",
    "VideoInfo", "VideoSource", "WALK_CACHE_BYTES", "natural_key", "open_video", "write_video",
]


def open_video(path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES, backend: str = "auto") -> VideoSource:
    """Open a video file or a folder of images; nothing is decoded beyond the first frame.

    `backend` for files: "auto" (PyAV, else OpenCV), "pyav" or "opencv".
    """
    if backend not in ("auto", "pyav", "opencv"):
        raise ValueError(f"backend must be 'auto', 'pyav' or 'opencv', got {backend!r}")
    path = Path(path).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, cache_bytes)
    if not path.exists():
        raise VideoError(f"{path}: no such file or folder")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file or folder")  # a FIFO or device would block reads
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        raise VideoError(f"{path}: a single image is not a video; open the folder that holds the frames")
    if suffix not in VIDEO_EXTENSIONS:
        raise VideoError(
            f"{path}: unsupported file type '{suffix}'; open a video "
            f"({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) or a folder of images"
        )
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes)")
    if backend in ("auto", "pyav"):
        try:
            from .pyav_files import NotFrameExact, PyAVFileSource
        except ImportError:  # PyAV is optional: OpenCV reads the file instead
            if backend == "pyav":
                raise VideoError(f"{path}: PyAV is not installed (pip install av)") from None
        else:
            try:
                return PyAVFileSource(path, cache_bytes)
            except NotFrameExact as exc:
                if backend == "pyav":
                    raise VideoError(f"{path}: PyAV cannot read it frame-exactly ({exc})") from None
    return VideoFileSource(path, cache_bytes)
