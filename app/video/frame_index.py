"""Per-file index of a video's presentation timestamps, built once by demuxing and cached on disk.

The index is what makes seeking frame-exact: frame N is the frame whose timestamp is the N-th
smallest, whatever the frame rate does (VFR), however frames are reordered (B-frames). Demuxing
reads packets without decoding, so building it costs about one read of the file.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

INDEX_CACHE_ENV = "TRACKSTUDIO_FRAME_INDEX_DIR"
_INDEX_VERSION = 1


@dataclass(frozen=True)
class FrameIndex:
    pts: np.ndarray  # (T,) int64 presentation timestamps in `time_base` units, increasing
    keyframes: np.ndarray  # (K,) int64 frame indices a seek can start decoding from, increasing
    time_base: Fraction
    claimed_frames: int  # the container header's frame count (0: it states none)
    packets: int  # video packets found, discarded ones included

    def __len__(self) -> int:
        return len(self.pts)

    def times(self) -> np.ndarray:
        """(T,) float64 seconds of each frame from the first one."""
        return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)

    def keyframe_before(self, frame_idx: int) -> int:
        """The last keyframe at or before `frame_idx` (0 when none is marked)."""
        i = int(np.searchsorted(self.keyframes, frame_idx, side="right")) - 1
        return int(self.keyframes[i]) if i >= 0 else 0


def build_index(container, stream) -> FrameIndex | None:
    """Demux every packet of `stream`; None when packets lack timestamps (raw streams): decode instead."""
    pts, key_pts, packets = [], [], 0
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        packets += 1
        if packet.pts is None:
            return None
        if packet.is_discard or packet.is_corrupt:  # dropped by the decoder (edit lists, damage)
            continue
        pts.append(packet.pts)
        if packet.is_keyframe:
            key_pts.append(packet.pts)
    if not pts:
        return None
    order = np.unique(np.asarray(pts, np.int64))  # presentation order
    if len(order) != len(pts):
        return None  # duplicate timestamps: frames could not be told apart by them
    keyframes = np.searchsorted(order, np.asarray(sorted(key_pts), np.int64))
    return FrameIndex(order, keyframes.astype(np.int64), Fraction(stream.time_base), int(stream.frames or 0), packets)


def index_cache_dir() -> Path:
    """$TRACKSTUDIO_FRAME_INDEX_DIR, else <user cache>/trackstudio/frame-index."""
    env = os.environ.get(INDEX_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("trackstudio")) / "frame-index"


def _cache_file(video_path: Path) -> Path:
    """Keyed by path, size and modification time: an edited or replaced file gets a new index."""
    stat = video_path.stat()
    key = f"{video_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    return index_cache_dir() / f"{hashlib.sha1(key).hexdigest()}.json"


def load_cached_index(video_path: Path) -> FrameIndex | None:
    try:
        doc = json.loads(_cache_file(video_path).read_text())
        if doc.get("version") != _INDEX_VERSION:
            return None
        num, den = doc["time_base"]
        return FrameIndex(np.asarray(doc["pts"], np.int64), np.asarray(doc["keyframes"], np.int64),
                          Fraction(num, den), int(doc["claimed_frames"]), int(doc["packets"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: rebuilt from the file


def save_cached_index(video_path: Path, index: FrameIndex) -> None:
    """Best effort: a read-only cache folder only costs rebuilding the index next time."""
    doc = {"version": _INDEX_VERSION, "pts": index.pts.tolist(), "keyframes": index.keyframes.tolist(),
           "time_base": [index.time_base.numerator, index.time_base.denominator],
           "claimed_frames": index.claimed_frames, "packets": index.packets}
    tmp = None
    try:
        target = _cache_file(video_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, target)  # readers see the old index or the new one, never half of one
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
