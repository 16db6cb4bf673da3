"""Composite training clips for mask propagation (the static-image pre-training of STM / XMem / SAM2).

An object cut out of one training frame (its mask) moves over the frames of another training clip
(real background, real camera motion, and that clip's own object as a look-alike distractor) with
its own translation, scale and rotation; a second cut-out may cross in front of it (partial or full
occlusion) and the target may leave the frame. Both cut-outs are objects of the clip (ids 1 and 2,
as the visible parts), so every clip trains occlusion, presence and multi-object separation.

`procedural_clip` makes the other kind: the point tracker's procedural sprites, some surfaces painted
flat, thin bars in front (see there).

Written in the DAVIS layout the trainer reads: <out>/<clip>/frames/00000.jpg, masks/00000.png.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


@dataclass
class Cutout:
    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32 in [0, 1], edges feathered


def cut_object(frame_rgb: np.ndarray, mask: np.ndarray, feather: float = 1.0) -> Cutout | None:
    ys, xs = np.nonzero(mask)
    if ys.size < 400:
        return None
    y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    alpha = cv2.GaussianBlur(mask[y1:y2, x1:x2].astype(np.float32), (0, 0), feather)
    return Cutout(np.ascontiguousarray(frame_rgb[y1:y2, x1:x2]), alpha)


def _paste(frame: np.ndarray, cutout: Cutout, centre, scale: float, angle: float) -> np.ndarray:
    """Draw the cut-out onto `frame` (in place); returns its coverage (H, W) float32."""
    h, w = cutout.alpha.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += np.asarray(centre) - (w / 2, h / 2)
    size = (frame.shape[1], frame.shape[0])
    alpha = cv2.warpAffine(cutout.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    rgb = cv2.warpAffine(cutout.rgb, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    frame[:] = (alpha[..., None] * rgb + (1 - alpha[..., None]) * frame).astype(np.uint8)
    return alpha


def _motion(rng: np.random.Generator, size: tuple[int, int], num_frames: int, leave: bool):
    """Per-frame (centre, scale, angle) of one cut-out: constant velocity (+ jitter), slow zoom and turn."""
    H, W = size
    start = np.array([rng.uniform(0.2, 0.8) * W, rng.uniform(0.25, 0.75) * H])
    speed = rng.uniform(2, 10) if not leave else max(W, H) * 0.8 / num_frames
    direction = rng.uniform(0, 2 * np.pi)
    velocity = speed * np.array([np.cos(direction), np.sin(direction)])
    scale0, scale_rate = rng.uniform(0.6, 1.2), rng.uniform(-0.01, 0.01)
    angle_rate = rng.uniform(-2, 2)
    jitter = np.cumsum(rng.normal(0, 1.0, (num_frames, 2)), 0)
    return [(start + t * velocity + jitter[t], max(0.2, scale0 * (1 + scale_rate * t)), angle_rate * t)
            for t in range(num_frames)]


def make_clip(rng: np.random.Generator, background: list[np.ndarray], target: Cutout, occluder: Cutout | None,
              leave: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (RGB) and masks (ids: 1 target, 2 occluder; visible parts only)."""
    T = len(background)
    H, W = background[0].shape[:2]
    target_path = _motion(rng, (H, W), T, leave)
    occluder_path = None
    if occluder is not None:  # crosses the target's path around the middle of the clip
        middle = target_path[T // 2][0]
        direction = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(6, 14) * np.array([np.cos(direction), np.sin(direction)])
        scale = rng.uniform(0.6, 1.2)
        occluder_path = [(middle + (t - T // 2) * velocity, scale, 0.0) for t in range(T)]
    frames, masks = [], []
    for t in range(T):
        frame = background[t].copy()
        cover_target = _paste(frame, target, *target_path[t])
        ids = np.where(cover_target > 0.5, 1, 0).astype(np.uint8)
        if occluder_path is not None:
            cover_occluder = _paste(frame, occluder, *occluder_path[t])
            ids[cover_occluder > 0.5] = 2
        frames.append(frame)
        masks.append(ids)
    return frames, masks


def paste_mirrored_copy(frame: np.ndarray, mask: np.ndarray, gap: int, dy: int = 0
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(frame, object, copy): the object's pixels mirrored and pasted `gap` px beside it (right where
    there is room, else left), `dy` px lower; the object keeps what the copy does not cover. A
    look-alike that is not the object: a click on one must not select both. None where it does not fit."""
    ys, xs = np.nonzero(mask)
    x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    height, width = frame.shape[:2]
    shift = x2 - x1 + gap
    if x2 + shift > width:
        shift = -shift
    if x1 + shift < 0 or not (0 <= y1 + dy and y2 + dy <= height):
        return None
    sprite, sprite_mask = frame[y1:y2, x1:x2][:, ::-1], mask[y1:y2, x1:x2][:, ::-1]
    out, copy = frame.copy(), np.zeros_like(mask)
    region = (slice(y1 + dy, y2 + dy), slice(x1 + shift, x2 + shift))
    out[region][sprite_mask] = sprite[sprite_mask]
    copy[region] = sprite_mask
    return out, mask & ~copy, copy


def write_clip(folder: Path, frames: list[np.ndarray], masks: list[np.ndarray]) -> None:
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    for t, (frame, mask) in enumerate(zip(frames, masks)):
        cv2.imwrite(str(folder / "frames" / f"{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        Image.fromarray(mask).save(folder / "masks" / f"{t:05d}.png")


def procedural_clip(rng: np.random.Generator, spec, flat_share: float, num_bars: int = 0
                    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The point tracker's procedural clip (textured sprites that move, turn, cover one another, under a
    moving camera; spec: trackers.point.synthetic.ClipSpec) -> frames and masks (sprite k has id k + 1).

    Each surface (every sprite, and the background) is repainted with probability `flat_share` in one flat
    colour under a soft lighting gradient: large uniform objects, whose inside carries no texture to match,
    are what the DAVIS clips teach least (the decoder kept only their rim). With `num_bars`, up to that many
    thin bars (poles, 6-28 px) cross in front of everything, cutting the sprites behind them into parts."""
    from ...point.synthetic import generate_clip

    clip = generate_clip(rng, spec)
    T, H, W = clip.owners.shape
    frames = clip.frames.astype(np.float32)
    owners = clip.owners.astype(np.int16)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    for owner in range(-1, int(owners.max()) + 1):
        if rng.random() >= flat_share:
            continue
        angle = rng.uniform(0, 2 * np.pi)
        light = 1 + rng.uniform(0, 0.25) * ((xs * np.cos(angle) + ys * np.sin(angle)) / max(H, W) - 0.5)
        paint = rng.uniform(0, 255, 3).astype(np.float32) * light[..., None]  # (H, W, 3)
        where = owners == owner  # (T, H, W)
        frames[where] = np.broadcast_to(paint, (T, H, W, 3))[where]
    for _ in range(int(rng.integers(1, num_bars + 1)) if num_bars > 0 else 0):
        _draw_bar(rng, frames, owners)
    frames += rng.standard_normal(frames.shape, dtype=np.float32) * rng.uniform(1, 6)
    frames = np.clip(frames, 0, 255).astype(np.uint8)
    masks = (owners + 1).astype(np.uint8)
    return list(frames), list(masks)


def _draw_bar(rng: np.random.Generator, frames: np.ndarray, owners: np.ndarray) -> None:
    """One thin, nearly upright (or level) bar drifting across every frame, in front of all, as a new object."""
    T, H, W = owners.shape
    bar_id = int(owners.max()) + 1
    upright = rng.random() < 0.7
    length, across = (H, W) if upright else (W, H)
    width = rng.uniform(6, 28)
    start, speed, tilt = rng.uniform(0.1, 0.9) * across, rng.uniform(-5, 5), rng.uniform(-0.15, 0.15)
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    along, offset = np.mgrid[0:length, 0:across].astype(np.float32)
    for t in range(T):
        centre = start + speed * t + tilt * (along - length / 2)
        inside = np.abs(offset - centre) <= width / 2  # (length, across)
        if not upright:
            inside = inside.T
        frames[t][inside] = colour * rng.uniform(0.9, 1.1)
        owners[t][inside] = bar_id
