"""Procedural box-tracking clips in the frames/ + masks/ layout (as ../shared/train's DAVIS clips):
a textured target that leaves the view and comes back, or that a larger object covers and uncovers,
sometimes beside a look-alike (the same texture, another shape), over a panning textured background.
The mask is the target's visible part: empty while it is out of view or covered."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..point.synthetic import ClipSpec, _affine, _composite, blob_mask, generate_clip, make_texture

SCENARIOS = ("leaves_view", "covered", "plain")


def generate_box_clip(rng: np.random.Generator, num_frames: int = 30, height: int = 256, width: int = 448,
                      scenario: str | None = None, object_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """-> frames (T, H, W, 3) uint8 RGB, target masks (T, H, W) bool. The target's radius is 18-45 px
    times `object_scale`."""
    scenario = scenario or SCENARIOS[int(rng.integers(len(SCENARIOS)))]
    background = make_texture(rng, int(height * 1.5), int(width * 1.5))
    pan = rng.normal(0, 1.5, 2)
    radius = int(round(int(rng.integers(18, 45)) * object_scale))
    target = (make_texture(rng, 2 * radius + 1, 2 * radius + 1), blob_mask(rng, radius))
    t = np.arange(num_frames, dtype=np.float64)
    start = rng.uniform([0.3 * width, 0.3 * height], [0.7 * width, 0.7 * height])
    velocity = rng.normal(0, 2.0, 2)
    path = start + t[:, None] * velocity
    if scenario == "leaves_view":  # out past the nearest side edge and back
        side = -1.0 if start[0] < width / 2 else 1.0
        reach = (width / 2 + 2.5 * radius) * side
        path[:, 0] = width / 2 + reach * np.sin(np.pi * t / (num_frames - 1)) ** 2 + (start[0] - width / 2) * 0.2
    objects = []  # (texture, mask, centres) far to near
    if rng.random() < 0.3:  # a look-alike elsewhere
        other = blob_mask(rng, radius)
        offset = rng.choice([-1, 1], 2) * rng.uniform(2.5, 4.0, 2) * radius
        objects.append((cv2.resize(target[0], other.shape[::-1]), other, path + offset))
    objects.append((*target, path))
    if scenario == "covered":  # a bigger object slides over the target and off it again
        cover_radius = int(radius * rng.uniform(2.0, 2.5))
        direction = rng.normal(0, 1, 2)
        direction /= np.linalg.norm(direction) + 1e-9
        phase = 2 * t / (num_frames - 1) - 1
        travel = 3.0 * cover_radius * np.sign(phase) * np.abs(phase) ** 3  # dwells on the target mid-clip
        cover = (make_texture(rng, 2 * cover_radius + 1, 2 * cover_radius + 1), blob_mask(rng, cover_radius))
        objects.append((*cover, path + travel[:, None] * direction))
    target_idx = len(objects) - 1 if scenario != "covered" else len(objects) - 2
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), bool)
    for i in range(num_frames):
        cam = np.array([background.shape[1] / 2, background.shape[0] / 2]) + pan * i
        view = np.float32([[1, 0, -(cam[0] - width / 2)], [0, 1, -(cam[1] - height / 2)]])
        image = cv2.warpAffine(background, view, (width, height), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        owner = np.full((height, width), -1, np.int32)
        for idx, (texture, mask, centres) in enumerate(objects):
            origin = np.array([mask.shape[1] / 2, mask.shape[0] / 2])
            _composite(image, owner, idx, texture, mask, _affine(centres[i], 0.0, 1.0, origin))
        noise = rng.standard_normal(image.shape).astype(np.float32) * 2.0
        frames[i] = np.clip(image + noise, 0, 255).astype(np.uint8)
        masks[i] = owner == target_idx
    return frames, masks


def generate_sprite_clip(rng: np.random.Generator, spec: ClipSpec, min_area: int = 900
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The point tracker's procedural clip (several textured sprites that move, turn, grow or shrink and
    cover one another, under a moving camera) as a box and mask sequence: -> frames (T, H, W, 3), boxes
    (T, K, 4) of each sprite's visible part, present (T, K) and labels (T, H, W) uint8 (j + 1 where the
    j-th of them is seen, 0 elsewhere), for the K sprites with at least `min_area` pixels in view on the
    first frame. A sprite is present where at least 30 % of its typical visible area (median over the
    frames it is seen on) shows."""
    clip = generate_clip(rng, spec)
    count = int(clip.owners.max()) + 1
    ids = [k for k in range(count) if int((clip.owners[0] == k).sum()) >= min_area]
    T = len(clip.frames)
    boxes = np.full((T, len(ids), 4), np.nan, np.float32)
    present = np.zeros((T, len(ids)), bool)
    labels = np.zeros(clip.owners.shape, np.uint8)
    for j, k in enumerate(ids):
        seen = clip.owners == k  # (T, H, W)
        labels[seen] = j + 1
        areas = seen.sum((1, 2))
        typical = np.median(areas[areas > 0])
        for t in np.flatnonzero(areas >= 0.3 * typical):
            ys, xs = np.nonzero(seen[t])
            boxes[t, j] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            present[t, j] = True
    return clip.frames, boxes, present, labels


def _write_frames(frames: np.ndarray, clip_dir: Path) -> None:
    (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(clip_dir / "frames" / f"{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])


def write_box_clip(frames: np.ndarray, masks: np.ndarray, clip_dir: str | Path) -> None:
    """frames/ + masks/ (the target's visible part, 0 / 255), as ../shared/train's DAVIS clips."""
    clip_dir = Path(clip_dir)
    _write_frames(frames, clip_dir)
    (clip_dir / "masks").mkdir(parents=True, exist_ok=True)
    for i, mask in enumerate(masks):
        cv2.imwrite(str(clip_dir / "masks" / f"{i:05d}.png"), mask.astype(np.uint8) * 255)


def write_sprite_clip(frames: np.ndarray, boxes: np.ndarray, present: np.ndarray, labels: np.ndarray,
                      clip_dir: str | Path) -> None:
    """frames/ + gt.npz with the judge's box and mask fields (boxes (T, K, 4) NaN where absent,
    box_present (T, K), masks (T, H, W) object ids, mask_eval (T,): every frame scored)."""
    clip_dir = Path(clip_dir)
    _write_frames(frames, clip_dir)
    np.savez_compressed(clip_dir / "gt.npz", boxes=boxes, box_present=present, masks=labels,
                        mask_eval=np.ones(len(frames), bool))
