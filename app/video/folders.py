"""Folders of numbered images read as a video, in natural order (frame2 before frame10)."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from .source import DEFAULT_FPS, VideoError, VideoInfo, VideoSource

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def natural_key(name: str) -> list:
    """Sort key that compares runs of digits as numbers: 'frame2' < 'frame10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def holds_images(folder: Path) -> bool:
    """Whether the folder holds any image file (then it is a video, or a clear error when opened)."""
    return next(_image_files(folder), None) is not None


def _image_files(folder: Path):
    return (p for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


# extensions of one image format: a folder's frames are of one format (see list_images)
_FORMAT_OF = {".jpeg": ".jpg", ".tiff": ".tif"}


def list_images(folder: Path) -> list[Path]:
    """The folder's frames in natural order: its image files of the format most of them have, skipping hidden files
    (.DS_Store, ._frame.jpg): a preview or cover image beside the frames in another format would otherwise be read
    as a frame among them. Where two formats are equally many (a mask beside each frame: 00000.jpg, 00000.png, ...),
    which are the frames cannot be told, and that is an error."""
    by_format: dict[str, list[Path]] = {}
    for path in _image_files(folder):
        by_format.setdefault(_FORMAT_OF.get(path.suffix.lower(), path.suffix.lower()), []).append(path)
    counts = sorted(((len(paths), ext) for ext, paths in by_format.items()), reverse=True)
    if len(counts) > 1 and counts[0][0] == counts[1][0]:
        raise VideoError(f"{folder}: the folder holds as many {counts[0][1]} as {counts[1][1]} images "
                         f"({counts[0][0]} each), so which are the frames is unclear; move one kind elsewhere")
    frames = by_format[counts[0][1]] if counts else []
    return sorted(frames, key=lambda p: natural_key(p.name))


def read_image(path: Path) -> np.ndarray:
    """One image as (H, W, 3) uint8 RGB (grey, alpha and 16-bit images are converted)."""
    try:
        data = np.fromfile(path, np.uint8)  # imdecode rather than imread: non-ASCII paths work everywhere
    except OSError as exc:
        raise VideoError(f"{path}: could not be read ({exc.strerror})") from None
    if data.size == 0:
        raise VideoError(f"{path}: the image file is empty (0 bytes)")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"{path}: not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageFolderSource(VideoSource):
    """Every image in a folder is one frame; all must have the first image's size."""

    def __init__(self, folder: Path, cache_bytes: int, fps: float = DEFAULT_FPS):
        self._files = list_images(folder)
        if not self._files:
            raise VideoError(
                f"{folder}: the folder holds no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})"
            )
        first = read_image(self._files[0])
        height, width = first.shape[:2]
        super().__init__(VideoInfo(str(folder), len(self._files), width, height, fps), cache_bytes)
        self.cache.put(0, first)

    @property
    def files(self) -> list[Path]:
        """The image behind each frame_idx."""
        return list(self._files)

    def _decode(self, frame_idx: int) -> np.ndarray:
        path = self._files[frame_idx]
        frame = read_image(path)
        if frame.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(
                f"{path}: frame {frame_idx} is {frame.shape[1]}x{frame.shape[0]}, but the folder's "
                f"first image {self._files[0].name} is {self.info.width}x{self.info.height}"
            )
        return frame
