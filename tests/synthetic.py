"""Small synthetic clips for tests: a textured square moving over a textured background."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random colour texture (H, W, 3) uint8 that trackers can lock on to."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-20, 21, (h, w, 3))
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def rescale_frames(frames, scale: float) -> list[np.ndarray]:
    """Frames resized by `scale`, as a larger (bilinear) or smaller (pixel areas averaged) video of the same
    scene."""
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    return [cv2.resize(frame, None, fx=scale, fy=scale, interpolation=interpolation) for frame in frames]


def rescale_points(points: np.ndarray, scale: float) -> np.ndarray:
    """Points (..., 2) on frames resized by `scale`: pixel centres scale about the image's corner."""
    return (np.asarray(points) + 0.5) * scale - 0.5


def moving_square_clip(num_frames: int = 20, size: tuple[int, int] = (120, 160), side: int = 32,
                       start=(20, 30), velocity=(4, 2)) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames (RGB) and the square's true boxes (T, 4) [x1, y1, x2, y2]."""
    h, w = size
    background = texture(h, w, seed=1)
    patch = texture(side, side, seed=2)
    frames, boxes = [], []
    for t in range(num_frames):
        x = int(start[0] + velocity[0] * t)
        y = int(start[1] + velocity[1] * t)
        frame = background.copy()
        frame[y:y + side, x:x + side] = patch
        frames.append(frame)
        boxes.append([x, y, x + side, y + side])
    return frames, np.array(boxes, np.float32)


def write_frames(frames: list[np.ndarray], folder: Path) -> Path:
    """Write RGB frames as a lossless PNG folder (000000.png, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{t:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def write_batch_clips(folder: Path, count: int, num_frames: int = 8, size: tuple[int, int] = (120, 160)) -> list[dict]:
    """`count` short .avi clips of a moving square (each its own start and velocity) and, beside each,
    `<name>.json` prompting the square's box on frame 0. Returns [{name, video, prompts, boxes}]."""
    from trackstudio.app.model import AnnotationStore, FrameState
    from trackstudio.app.model.formats import save_json
    from trackstudio.app.video import VideoInfo, write_video

    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    clips = []
    for i in range(count):
        start = (10 + 3 * (i % 7), 12 + 2 * (i % 5))
        room = ((w - 32 - start[0]) / max(num_frames - 1, 1), (h - 32 - start[1]) / max(num_frames - 1, 1))
        velocity = (min(1 + i % 4, room[0]), min(1 + i % 3, room[1]))  # long clips: slower, still inside
        frames, boxes = moving_square_clip(num_frames, size, start=start, velocity=velocity)
        video = folder / f"clip{i:02d}.avi"
        write_video(frames, video)
        store = AnnotationStore()
        obj_id = store.add_object("box", name="square").obj_id
        store.set_state(obj_id, 0, FrameState(box=boxes[0], keyframe=True))
        prompts = folder / f"clip{i:02d}.json"
        save_json(store, VideoInfo(str(video), num_frames, w, h, 30.0), prompts)
        clips.append({"name": video.stem, "video": video, "prompts": prompts, "boxes": boxes})
    return clips
