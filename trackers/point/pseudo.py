"""Pseudo point tracks on real clips with object masks: self-training data for train.py.

The object's mask on every frame is free supervision for points on it: a point on the object stays
inside the object's mask, and where the mask is gone (the object left the view or is covered) so is
the point. For each clip:

1. `num_points` queries are drawn inside the eroded mask of the first frame (or, walking backward,
   the last) and tracked through the clip with the given tracker (the main walk);
2. each track is queried again where the main walk last saw it on the object and tracked back to
   its query frame (the check walk). A track is kept when both walks agree within `fb_max_px` on
   every frame where both see the point and the check walk returns to the query point;
3. a track is dropped if the main walk ever reports it visible outside the object's mask (dilated
   by `dilate_px`: the masks' edges are not exact) while the object is in view: it drifted, or it
   was covered without the tracker noticing, and its later positions are not to be trusted;
4. labels of a kept track: visible where the main walk reports it visible (on the object); hidden
   where the object's mask is empty, where the point is outside the frame, or where the tracker
   reports it hidden and its estimate is off the object (something covers it); *unknown* where the
   tracker reports it hidden on the object (self-occlusion or a miss: the mask cannot tell).
   Positions of hidden points are the tracker's guesses, so the clip says they are not known.

Written in the layout train.py reads (<clip>/frames/frame_%06d.jpg + anno.npz with trajs_2d (T, N, 2),
visibs (T, N), and `valid` (T, N): labels that are known, `hidden_known` False: positions of hidden
points are not supervised).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..types import Prompt


@dataclass
class PseudoSpec:
    num_points: int = 48  # queries drawn per clip
    erode_px: int = 5  # queries at least this far inside the mask (edges are ambiguous)
    dilate_px: int = 4  # a visible point may lie this far outside the mask (mask edges are not exact)
    fb_max_px: float = 4.0  # most the two walks may disagree, in the pixels of the frames tracked
    min_visible: int = 8  # tracks seen on the object on fewer frames are dropped (too short to train on)
    reverse: bool = False  # main walk from the last frame backward (queries on the last frame)


@dataclass
class PseudoTracks:
    trajs: np.ndarray  # (T, M, 2) float32 pixels
    visibs: np.ndarray  # (T, M) bool
    valid: np.ndarray  # (T, M) bool: the visibility label (and, where visible, the position) is known
    num_queries: int  # tracks tried (M of them were kept)
    dropped_fb: int  # ... dropped because the two walks disagree
    dropped_off_mask: int  # ... dropped because they were reported visible off the object
    dropped_short: int  # ... dropped because they were seen on the object on too few frames


def sample_queries(mask: np.ndarray, num_points: int, erode_px: int, rng: np.random.Generator) -> np.ndarray:
    """(K, 2) float32 pixel (x, y) points drawn without replacement inside the eroded mask (K <= num_points)."""
    kernel = np.ones((2 * erode_px + 1, 2 * erode_px + 1), np.uint8)
    ys, xs = np.nonzero(cv2.erode(mask.astype(np.uint8), kernel))
    if len(xs) == 0:
        return np.zeros((0, 2), np.float32)
    chosen = rng.choice(len(xs), min(num_points, len(xs)), replace=False)
    return np.stack([xs[chosen], ys[chosen]], -1).astype(np.float32)


def track_from(tracker, frames: list[np.ndarray], query_frames: np.ndarray, points: np.ndarray,
               reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Track points (K, 2), each from its own query frame (K,), walking forward (or backward) from
    the earliest (latest) of them -> positions (T, K, 2) (NaN before a point's query) and visible (T, K)."""
    tracker.set_video(frames)
    for obj_id, (frame_idx, point) in enumerate(zip(query_frames, points)):
        tracker.add_prompt(int(frame_idx), obj_id, Prompt(point=np.asarray(point, np.float32)))
    positions = np.full((len(frames), len(points), 2), np.nan, np.float32)
    visible = np.zeros((len(frames), len(points)), bool)
    start = int(query_frames.max() if reverse else query_frames.min())
    for result in tracker.propagate(start, reverse=reverse):
        for obj_id, obj in result.objects.items():
            positions[result.frame_idx, obj_id] = obj.point
            visible[result.frame_idx, obj_id] = obj.visible
    return positions, visible


def on_object(points: np.ndarray, masks: np.ndarray, dilate_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """points (T, K, 2), masks (T, H, W) bool -> (in_frame, in_mask, mask_present): (T, K), (T, K), (T,)."""
    T, H, W = masks.shape
    kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
    near = np.stack([cv2.dilate(m.astype(np.uint8), kernel) > 0 for m in masks])
    xy = np.nan_to_num(np.round(points), nan=-1.0).astype(int)
    in_frame = (xy[..., 0] >= 0) & (xy[..., 0] < W) & (xy[..., 1] >= 0) & (xy[..., 1] < H)
    cols, rows = np.clip(xy[..., 0], 0, W - 1), np.clip(xy[..., 1], 0, H - 1)
    in_mask = in_frame & near[np.arange(T)[:, None], rows, cols]
    return in_frame, in_mask, masks.reshape(T, -1).any(1)


def pseudo_tracks(tracker, frames: list[np.ndarray], masks: np.ndarray, spec: PseudoSpec,
                  rng: np.random.Generator) -> PseudoTracks:
    """Pseudo-labelled tracks of one clip: frames [(H, W, 3) uint8 RGB] and masks (T, H, W) bool."""
    T = len(frames)
    query_frame = T - 1 if spec.reverse else 0
    queries = sample_queries(masks[query_frame], spec.num_points, spec.erode_px, rng)
    K = len(queries)
    empty = PseudoTracks(np.zeros((T, 0, 2), np.float32), np.zeros((T, 0), bool), np.zeros((T, 0), bool), K, 0, 0, 0)
    if K == 0:
        return empty
    main, main_vis = track_from(tracker, frames, np.full(K, query_frame), queries, spec.reverse)
    in_frame, in_mask, present = on_object(main, masks, spec.dilate_px)
    seen = main_vis & in_mask  # (T, K): visible on the object
    off_object = (main_vis & ~in_mask & present[:, None]).any(0)
    long_enough = seen.sum(0) >= spec.min_visible
    candidates = np.flatnonzero(long_enough & ~off_object)
    fb_ok = np.zeros(K, bool)
    if len(candidates):
        # the check walk starts where the main walk last saw each point on the object
        order = np.arange(T)[::-1] if spec.reverse else np.arange(T)
        last_seen = np.array([order[np.flatnonzero(seen[order, n])[-1]] for n in candidates])
        check, check_vis = track_from(tracker, frames, last_seen, main[last_seen, candidates], not spec.reverse)
        both = main_vis[:, candidates] & check_vis
        error = np.linalg.norm(np.nan_to_num(check - main[:, candidates], nan=np.inf), axis=-1)
        agree = np.where(both, error <= spec.fb_max_px, True).all(0)
        returned = check_vis[query_frame] & (error[query_frame] <= spec.fb_max_px)
        fb_ok[candidates] = agree & returned
    keep = fb_ok
    hidden = ~present[:, None] | ~in_frame | (~main_vis & ~in_mask)
    valid = seen | hidden
    return PseudoTracks(main[:, keep], seen[:, keep], valid[:, keep], K,
                        dropped_fb=int((long_enough & ~off_object & ~fb_ok).sum()),
                        dropped_off_mask=int(off_object.sum()),
                        dropped_short=int((~long_enough & ~off_object).sum()))


def write_pseudo_clip(clip_dir: str | Path, frames: list[np.ndarray], tracks: PseudoTracks,
                      height: int | None = None, jpeg_quality: int = 92) -> None:
    """Frames and labels in the layout train.py reads, resized to `height` (aspect kept; None: as
    given); anno.npz is written last (atomically): it marks a complete clip."""
    clip_dir = Path(clip_dir)
    (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
    trajs = tracks.trajs.astype(np.float32)
    if height and height != frames[0].shape[0]:
        size = (max(16, round(frames[0].shape[1] * height / frames[0].shape[0])), height)
        trajs = trajs * np.array([size[0] / frames[0].shape[1], height / frames[0].shape[0]], np.float32)
        frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames]
    for t, frame in enumerate(frames):
        path = clip_dir / "frames" / f"frame_{t:06d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
            raise OSError(f"could not write {path}")
    tmp = clip_dir / "anno.tmp.npz"
    np.savez_compressed(tmp, trajs_2d=trajs, visibs=tracks.visibs, valid=tracks.valid,
                        hidden_known=np.array(False))
    tmp.replace(clip_dir / "anno.npz")


def read_clip(clip_dir: Path, height: int | None) -> tuple[list[np.ndarray], np.ndarray]:
    """A DAVIS-layout clip (<clip>/frames/*.jpg + <clip>/masks/*.png) as RGB frames and (T, H, W) bool
    masks, resized to `height` (aspect kept; None: as stored)."""
    from ..mask.sam2_lite.train import read_mask  # binary, grey + alpha and palette PNGs alike
    from ..training import DataError

    frame_paths = sorted((clip_dir / "frames").glob("*.jpg"))
    mask_paths = sorted((clip_dir / "masks").glob("*.png"))
    if not frame_paths or len(mask_paths) != len(frame_paths):
        raise DataError(f"{clip_dir}: {len(frame_paths)} frames but {len(mask_paths)} masks")
    frames, masks = [], []
    for frame_path, mask_path in zip(frame_paths, mask_paths):
        bgr = cv2.imread(str(frame_path))
        if bgr is None:
            raise DataError(f"could not read frame {frame_path}")
        mask = read_mask(mask_path) > 0
        if height:
            size = (max(16, round(bgr.shape[1] * height / bgr.shape[0])), height)
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        masks.append(mask)
    return frames, np.stack(masks)


def merge(parts: list[PseudoTracks]) -> PseudoTracks:
    """The tracks of several walks over the same clip as one set."""
    return PseudoTracks(np.concatenate([p.trajs for p in parts], 1), np.concatenate([p.visibs for p in parts], 1),
                        np.concatenate([p.valid for p in parts], 1), *(sum(getattr(p, f) for p in parts) for f in
                        ("num_queries", "dropped_fb", "dropped_off_mask", "dropped_short")))
