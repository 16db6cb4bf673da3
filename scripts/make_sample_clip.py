"""Render TrackStudio's sample clip: resources/sample/{sample.mp4, prompts.json, gt.npz}.

A procedural 640x360 clip of 60 frames: a textured background under a slow camera pan, a textured
square (the box object), a rotating lobed blob (the mask object), a bar that passes in front of the
square for a few frames (the occlusion) and tracked points on all of them, one of which pans out of
view. Everything is drawn from exact geometry, so gt.npz is exact (../shared/data layout):
boxes (T, 1, 4) of the square, box_present (T, 1), masks (T, H, W) label map (1 square, 2 blob, 3 bar),
mask_eval (T,), trajs_2d (T, N, 2), visibs (T, N), point_eval (T, N), point_query (N,).
prompts.json (TrackStudio JSON format) prompts the square's box, the blob's mask and the points on
frame 0. Deterministic: the same seed gives the same files.

    python scripts/make_sample_clip.py [--out resources/sample] [--seed 7]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

WIDTH, HEIGHT, NUM_FRAMES, FPS = 640, 360, 60, 30.0
PAN_PX_PER_FRAME = np.array([2.0, 0.5])  # the camera moves right and down, so the scene drifts left and up
SQUARE_SIDE = 64
BLOB_RADIUS = 52
BAR_SIZE = (36, 150)  # (w, h)
BAR_FRAMES = (28, 40)  # the bar crosses the square between these frames
LABEL_SQUARE, LABEL_BLOB, LABEL_BAR = 1, 2, 3


def texture(rng: np.random.Generator, height: int, width: int, tint: np.ndarray,
            cells=((64, 0.5), (16, 0.3), (4, 0.2))) -> np.ndarray:
    """Multi-scale noise (cell size, weight) with crisp blotches: corners for point and correlation trackers."""
    img = np.zeros((height, width), np.float32)
    for cell, weight in cells:
        coarse = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
        img += weight * cv2.resize(coarse, (width + 2 * cell, height + 2 * cell),
                                   interpolation=cv2.INTER_CUBIC)[cell:cell + height, cell:cell + width]
    for _ in range(height * width // 900):  # sharp-edged spots
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.circle(img, centre, int(rng.integers(2, 7)), float(rng.random()), -1)
    img = (img - img.min()) / (np.ptp(img) + 1e-6)
    rgb = img[..., None] * tint[None, None, :] + (1 - img[..., None]) * (tint[::-1][None, None, :] * 0.3)
    return np.clip(rgb * 255, 0, 255).astype(np.uint8)


def square_corner(t: int) -> np.ndarray:
    """Top-left of the square on frame t, in frame pixels."""
    return np.array([120 + 5.2 * t, 150 + 45 * np.sin(t / 12)], np.float32)


def blob_pose(t: int) -> tuple[np.ndarray, float]:
    """Centre and rotation (degrees) of the blob on frame t."""
    return np.array([480 - 2.5 * t, 110 + 1.8 * t], np.float32), 1.5 * t


def bar_corner(t: int) -> np.ndarray:
    """Top-left of the occluding bar: it sweeps down through the square's path."""
    start, end = BAR_FRAMES
    progress = (t - start) / (end - start)
    x = square_corner((start + end) // 2)[0] + SQUARE_SIDE / 2 - BAR_SIZE[0] / 2
    return np.array([x, -BAR_SIZE[1] + progress * (HEIGHT + BAR_SIZE[1])], np.float32)


def blob_shape() -> np.ndarray:
    """Outline (K, 2) of a four-lobed blob around (0, 0), unrotated."""
    angle = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    radius = BLOB_RADIUS * (0.78 + 0.22 * np.cos(4 * angle))
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)


def rotation(degrees: float) -> np.ndarray:
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)


def paste(frame: np.ndarray, sprite: np.ndarray, affine: np.ndarray, shape_mask: np.ndarray) -> None:
    """Draw the sprite through the 2x3 affine (sprite -> frame) where shape_mask (frame-sized) is set."""
    warped = cv2.warpAffine(sprite, affine, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    frame[shape_mask] = warped[shape_mask]


def polygon_mask(outline: np.ndarray) -> np.ndarray:
    """Pixels whose centres lie inside the polygon, with sub-pixel vertices (8x fixed point)."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.fillPoly(mask, [np.round(outline * 8).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=3)
    return mask.astype(bool)


def rect_outline(corner: np.ndarray, size) -> np.ndarray:
    x, y = corner
    w, h = size
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32) - 0.5


def render(seed: int):
    """Frames (T, H, W, 3) RGB, the gt dict, and the point objects' frame-0 positions."""
    rng = np.random.default_rng(seed)
    pan_total = PAN_PX_PER_FRAME * (NUM_FRAMES - 1)
    background = texture(rng, HEIGHT + int(np.ceil(pan_total[1])) + 4, WIDTH + int(np.ceil(pan_total[0])) + 4,
                         np.array([0.75, 0.7, 0.55]))
    fine = ((16, 0.5), (6, 0.3), (3, 0.2))  # objects are small: finer texture
    square = texture(rng, SQUARE_SIDE, SQUARE_SIDE, np.array([0.95, 0.35, 0.2]), fine)
    blob = texture(rng, 2 * BLOB_RADIUS + 1, 2 * BLOB_RADIUS + 1, np.array([0.2, 0.55, 0.95]), fine)
    bar = texture(rng, BAR_SIZE[1], BAR_SIZE[0], np.array([0.3, 0.9, 0.35]), fine)
    outline = blob_shape()

    # Points: (layer, local coordinates). Layers: background (scene coordinates), square and blob
    # (sprite coordinates). The last background point sits near the left edge and pans out of view.
    points = [("background", np.array([300.0, 60.0])), ("background", np.array([560.0, 300.0])),
              ("background", np.array([40.0, 320.0])), ("background", np.array([14.0, 200.0])),
              ("square", np.array([16.0, 16.0])), ("square", np.array([46.0, 40.0])),
              ("blob", np.array([0.0, 0.0])), ("blob", np.array([20.0, -12.0]))]

    frames, labels, trajs, visibs, boxes = [], [], [], [], []
    for t in range(NUM_FRAMES):
        pan = PAN_PX_PER_FRAME * t
        # Background: scene point s appears at s - pan.
        to_frame = np.float32([[1, 0, -pan[0]], [0, 1, -pan[1]]])
        frame = cv2.warpAffine(background, to_frame, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
        label = np.zeros((HEIGHT, WIDTH), np.uint8)

        centre, degrees = blob_pose(t)
        rot = rotation(degrees)
        blob_affine = np.hstack([rot, (centre - rot @ np.array([BLOB_RADIUS, BLOB_RADIUS], np.float32))[:, None]])
        blob_mask = polygon_mask(outline @ rot.T + centre)
        paste(frame, blob, blob_affine, blob_mask)
        label[blob_mask] = LABEL_BLOB

        corner = square_corner(t)
        square_mask = polygon_mask(rect_outline(corner, (SQUARE_SIDE, SQUARE_SIDE)))
        paste(frame, square, np.float32([[1, 0, corner[0]], [0, 1, corner[1]]]), square_mask)
        label[square_mask] = LABEL_SQUARE

        if BAR_FRAMES[0] <= t <= BAR_FRAMES[1]:
            bar_at = bar_corner(t)
            bar_mask = polygon_mask(rect_outline(bar_at, BAR_SIZE))
            paste(frame, bar, np.float32([[1, 0, bar_at[0]], [0, 1, bar_at[1]]]), bar_mask)
            label[bar_mask] = LABEL_BAR

        xy = []
        for layer, local in points:
            if layer == "background":
                xy.append(local - pan)
            elif layer == "square":
                xy.append(corner + local)
            else:
                xy.append(centre + rot @ local)
        xy = np.array(xy, np.float32)
        own = {"background": 0, "square": LABEL_SQUARE, "blob": LABEL_BLOB}
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= WIDTH - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= HEIGHT - 1)
        vis = np.zeros(len(points), bool)
        for n, (layer, _) in enumerate(points):
            if inside[n]:
                vis[n] = label[int(round(xy[n, 1])), int(round(xy[n, 0]))] == own[layer]
        frames.append(frame)
        labels.append(label)
        trajs.append(xy)
        visibs.append(vis)
        boxes.append([[corner[0], corner[1], corner[0] + SQUARE_SIDE, corner[1] + SQUARE_SIDE]])

    num_points = len(points)
    gt = {"boxes": np.array(boxes, np.float32), "box_present": np.ones((NUM_FRAMES, 1), bool),
          "masks": np.stack(labels), "mask_eval": np.ones(NUM_FRAMES, bool),
          "trajs_2d": np.stack(trajs), "visibs": np.stack(visibs),
          "point_eval": np.ones((NUM_FRAMES, num_points), bool),
          "point_query": np.zeros(num_points, np.int32)}
    return np.stack(frames), gt


def write_video(frames: np.ndarray, path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write mp4v video to {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def coco_rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def prompts(gt: dict, video_name: str) -> dict:
    """Frame-0 keyframes: the square's box, the blob's mask and every point."""
    objects = [
        {"id": 1, "name": "square", "kind": "box", "color": "#e6550d", "label": "square",
         "frames": {"0": {"box": [float(v) for v in gt["boxes"][0, 0]], "keyframe": True}}},
        {"id": 2, "name": "blob", "kind": "mask", "color": "#3182bd", "label": "blob",
         "frames": {"0": {"mask": coco_rle(gt["masks"][0] == LABEL_BLOB), "keyframe": True}}},
    ]
    palette = ["#31a354", "#756bb1", "#de2d26", "#fd8d3c", "#636363", "#e7ba52", "#17becf", "#bc80bd"]
    for n, (x, y) in enumerate(gt["trajs_2d"][0]):
        objects.append({"id": 3 + n, "name": f"point{n + 1}", "kind": "point", "color": palette[n % len(palette)],
                        "label": "", "frames": {"0": {"point": [float(x), float(y)], "visible": True,
                                                      "keyframe": True}}})
    return {"format": "trackstudio", "version": 1,
            "video": {"path": video_name, "num_frames": NUM_FRAMES, "width": WIDTH, "height": HEIGHT, "fps": FPS},
            "objects": objects}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "sample")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames, gt = render(args.seed)
    write_video(frames, args.out / "sample.mp4")
    np.savez_compressed(args.out / "gt.npz", **gt)
    (args.out / "prompts.json").write_text(json.dumps(prompts(gt, "sample.mp4"), indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir())}
    print(f"wrote {args.out}: " + ", ".join(f"{name} {size // 1024} KB" for name, size in sizes.items()))


if __name__ == "__main__":
    main()
