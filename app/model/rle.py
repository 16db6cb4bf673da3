"""Masks as COCO run-length encodings: a 480p mask takes a few hundred bytes instead of 400 kB."""
from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as coco_mask

# COCO's compressed counts: each run is a signed LEB128-like number in 5-bit groups stored as
# chars '0' + value (6 bits: 5 data bits and a continuation bit); from the third run on, each is
# stored as the difference to the run two places before it.
_CHAR_OFFSET = 48
_MAX_GROUPS = 12  # 60 bits: more than any real run length


class MaskRLE:
    """A binary (H, W) mask as a COCO compressed RLE (column-major runs, background first).

    Values are immutable; `MaskRLE(size, counts)` validates untrusted input, `encode` builds one
    from an array. `counts` is the same string `pycocotools.mask.encode` yields (decoded to str).
    """

    __slots__ = ("_size", "_counts")

    def __init__(self, size, counts: str):
        height, width = _check_size(size)
        if isinstance(counts, bytes):
            counts = counts.decode("ascii", errors="replace")
        if not isinstance(counts, str):
            raise ValueError(f"RLE counts must be a string, got {type(counts).__name__}")
        runs = decode_counts(counts)
        if int(runs.sum()) != height * width:
            raise ValueError(f"RLE runs cover {int(runs.sum())} pixels, but size {height}x{width} "
                             f"has {height * width}")
        self._size = (height, width)
        self._counts = counts

    @classmethod
    def encode(cls, mask: np.ndarray) -> MaskRLE:
        """From an (H, W) array: bool, or any dtype where non-zero means foreground."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
        pixels = np.ascontiguousarray(mask if mask.dtype == bool else mask != 0).view(np.uint8)
        # COCO runs go down the columns: pycocotools needs Fortran order; cv2 transposes ~5x faster
        fortran = cv2.transpose(pixels).T if pixels.size else np.asfortranarray(pixels)
        coco = coco_mask.encode(fortran)
        return cls._trusted(mask.shape, coco["counts"].decode("ascii"))

    @classmethod
    def from_runs(cls, size, runs) -> MaskRLE:
        """From uncompressed COCO counts: run lengths, column-major, starting with background."""
        height, width = _check_size(size)
        runs = [int(r) for r in runs]
        if any(r < 0 for r in runs) or sum(runs) != height * width:
            raise ValueError(f"RLE runs must be non-negative and sum to {height * width}")
        coco = coco_mask.frPyObjects({"size": [height, width], "counts": runs}, height, width)
        return cls._trusted((height, width), coco["counts"].decode("ascii"))

    @classmethod
    def _trusted(cls, size, counts: str) -> MaskRLE:
        rle = cls.__new__(cls)
        rle._size = (int(size[0]), int(size[1]))
        rle._counts = counts
        return rle

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def counts(self) -> str:
        return self._counts

    def _coco(self) -> dict:
        return {"size": list(self._size), "counts": self._counts.encode("ascii")}

    def decode(self) -> np.ndarray:
        return coco_mask.decode(self._coco()).astype(bool)  # (H, W)

    def area(self) -> int:
        return int(coco_mask.area(self._coco()))

    def bbox(self) -> np.ndarray | None:
        """Tight [x1, y1, x2, y2] float32 (far edges), None for an empty mask."""
        if self.area() == 0:
            return None
        x, y, w, h = coco_mask.toBbox(self._coco())
        return np.array([x, y, x + w, y + h], np.float32)

    def __eq__(self, other) -> bool:
        if not isinstance(other, MaskRLE):
            return NotImplemented
        return self._size == other._size and self._counts == other._counts

    def __hash__(self) -> int:
        return hash((self._size, self._counts))

    def __repr__(self) -> str:
        return f"MaskRLE(size={self._size}, area={self.area()}, counts={len(self._counts)} chars)"

    def __getstate__(self):
        return self._size, self._counts

    def __setstate__(self, state):
        self._size, self._counts = state


def _check_size(size) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"mask size must be [H, W], got {size!r}") from None
    if height < 0 or width < 0:
        raise ValueError(f"mask size must be non-negative, got {[height, width]}")
    return height, width


def decode_counts(counts: str) -> np.ndarray:
    """Run lengths (int64) of a COCO compressed counts string; ValueError when it is malformed.

    pycocotools does not check its input (a short string decodes to uninitialised memory), so
    strings from files are parsed here first, vectorised.
    """
    try:
        codes = np.frombuffer(counts.encode("ascii"), np.uint8).astype(np.int64) - _CHAR_OFFSET
    except UnicodeEncodeError:
        raise ValueError("RLE counts must be ASCII") from None
    if codes.size == 0:
        return codes
    if codes.min() < 0 or codes.max() > 63:
        raise ValueError("RLE counts hold characters outside '0'..'o'")
    ends = (codes & 0x20) == 0
    if not ends[-1]:
        raise ValueError("RLE counts are truncated (the last run is unfinished)")
    starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    group = np.cumsum(np.concatenate(([0], ends[:-1].astype(np.int64))))
    position = np.arange(codes.size) - starts[group]
    if position.max() >= _MAX_GROUPS:
        raise ValueError("RLE counts hold an implausibly long run")
    values = np.add.reduceat((codes & 0x1F) << (5 * position), starts)
    last = np.flatnonzero(ends)
    negative = (codes[last] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[last][negative] + 1))
    runs = values.copy()
    runs[2::2] = np.cumsum(values[2::2])  # from the third run on: deltas to the run two before
    if values.size > 3:
        runs[3::2] = values[1] + np.cumsum(values[3::2])
    if runs.min() < 0:
        raise ValueError("RLE counts hold a negative run length")
    return runs
