"""Procedural training clips for the point tracker, written in the Point Odyssey layout.

Each clip is a textured background seen by a moving camera (translation, rotation, zoom) with a few
textured objects on top that translate, rotate and scale on their own, occlude each other in a fixed
depth order and leave the frame. Every point's trajectory is exact (it is an affine map of a fixed
point on its surface) and it is visible when it is inside the frame and no nearer surface covers it.

With `Footage` (DAVIS-layout clips: frames and object masks), the background is a real frame and the
objects are real objects cut out along their masks, moved the same way: real surfaces (flat regions, sharp
edges, fine detail) and real outlines, with tracks as exact as the procedural ones.

Layout written by `write_clip`:
    <clip>/frames/frame_000000.jpg ...
    <clip>/anno.npz   trajs_2d (T, N, 2) float32 pixel coordinates, visibs (T, N) bool
Without `Footage` nothing here reads outside data: every texture is generated from a seeded numpy RNG.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

TEXTURE_KINDS = ("noise", "stripes", "checker", "blobs", "photo")
# Repetitive patterns (checker, stripes) are ambiguous to track; keep them a minority.
_KIND_WEIGHTS = np.array([0.25, 0.1, 0.05, 0.25, 0.35])


# -- textures -------------------------------------------------------------------------------------
def fractal_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5,
                  persistence: float = 0.55) -> np.ndarray:
    """(H, W) float32 in [0, 1]: random grids of growing resolution, upsampled and summed."""
    out = np.zeros((height, width), np.float32)
    amplitude, total = 1.0, 0.0
    cells = int(rng.integers(2, 5))
    for _ in range(octaves):
        grid = rng.random((cells, max(2, cells * width // max(height, 1)))).astype(np.float32)
        out += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amplitude
        amplitude *= persistence
        cells *= 2
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return np.clip((out - lo) / max(hi - lo, 1e-6), 0, 1)


def _palette(rng: np.random.Generator, values: np.ndarray, num_colors: int | None = None) -> np.ndarray:
    """Map (H, W) values in [0, 1] through a random piecewise-linear colour ramp -> (H, W, 3) float."""
    num_colors = num_colors or int(rng.integers(2, 5))
    colors = rng.random((num_colors, 3)).astype(np.float32) * 255
    stops = np.linspace(0, 1, num_colors)
    lut = np.stack([np.interp(np.linspace(0, 1, 256), stops, colors[:, c]) for c in range(3)], -1)
    return lut.astype(np.float32)[np.clip(values * 255, 0, 255).astype(np.uint8)]


def _coords(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return xs, ys


def _stripes(rng, height, width):
    xs, ys = _coords(height, width)
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(6, 40)
    warp = fractal_noise(rng, height, width, 3) * rng.uniform(0, 20)
    phase = (xs * np.cos(theta) + ys * np.sin(theta) + warp) * 2 * np.pi / period
    values = 0.5 + 0.5 * np.sin(phase)
    if rng.random() < 0.5:  # hard-edged stripes
        values = (values > 0.5).astype(np.float32)
    return _palette(rng, values)


def _checker(rng, height, width):
    xs, ys = _coords(height, width)
    theta = rng.uniform(0, np.pi / 2)
    cell = rng.uniform(8, 40)
    u = xs * np.cos(theta) + ys * np.sin(theta)
    v = -xs * np.sin(theta) + ys * np.cos(theta)
    values = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    values = 0.75 * values + 0.25 * fractal_noise(rng, height, width)
    return _palette(rng, values)


def _blobs(rng, height, width):
    image = _palette(rng, fractal_noise(rng, height, width, 3), 2)
    for _ in range(int(rng.integers(20, 80) * height * width / 256**2) + 5):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(3, 30)), int(rng.integers(3, 30)))
        color = tuple(float(c) for c in rng.random(3) * 255)
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.5))


def _photo(rng, height, width):
    """A 'scene': shaded gradient, polygons, ellipses and lines in layers, blurred a little,
    with fine grain, so it has edges and texture at many scales like a photograph."""
    xs, ys = _coords(height, width)
    gradient = (xs * rng.uniform(-1, 1) + ys * rng.uniform(-1, 1)) / max(height, width)
    image = _palette(rng, np.clip(0.5 + gradient, 0, 1), 3)
    image *= 0.6 + 0.8 * fractal_noise(rng, height, width)[..., None]
    area_scale = height * width / 256**2
    for _ in range(int(rng.integers(10, 40) * area_scale) + 3):
        color = tuple(float(c) for c in rng.random(3) * 255)
        kind = rng.integers(0, 3)
        if kind == 0:
            num = int(rng.integers(3, 7))
            center = rng.random(2) * (width, height)
            pts = center + rng.normal(0, rng.uniform(5, 40), (num, 2))
            cv2.fillPoly(image, [pts.astype(np.int32)], color, cv2.LINE_AA)
        elif kind == 1:
            center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = (int(rng.integers(2, 40)), int(rng.integers(2, 40)))
            cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
        else:
            p1 = rng.random(2) * (width, height)
            p2 = p1 + rng.normal(0, 30, 2)
            p1, p2 = tuple(int(v) for v in p1), tuple(int(v) for v in p2)
            cv2.line(image, p1, p2, color, int(rng.integers(1, 5)), cv2.LINE_AA)
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    grain = fractal_noise(rng, height, width, 2, 1.0)[..., None] - 0.5
    return image + grain * rng.uniform(10, 40)


def make_texture(rng: np.random.Generator, height: int, width: int, kind: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB procedural texture of the given (or a random) kind, always with some
    fine-scale detail so every surface has something to track."""
    kind = kind or TEXTURE_KINDS[int(rng.choice(len(TEXTURE_KINDS), p=_KIND_WEIGHTS))]
    if kind == "noise":
        image = _palette(rng, fractal_noise(rng, height, width, int(rng.integers(4, 7))))
    elif kind == "stripes":
        image = _stripes(rng, height, width)
    elif kind == "checker":
        image = _checker(rng, height, width)
    elif kind == "blobs":
        image = _blobs(rng, height, width)
    elif kind == "photo":
        image = _photo(rng, height, width)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; expected one of {TEXTURE_KINDS}")
    detail = fractal_noise(rng, height, width, 6, 0.8)[..., None] - 0.5
    image = image + detail * rng.uniform(15, 50)
    return np.clip(image, 0, 255).astype(np.uint8)


# -- shapes and motion ----------------------------------------------------------------------------
def blob_mask(rng: np.random.Generator, radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 mask (0/255) of a random star-like blob, ellipse or rounded polygon."""
    size = 2 * radius + 1
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0, 0.25) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    r = r / r.max() * radius * 0.95
    aspect = rng.uniform(0.6, 1.0)
    pts = np.stack([radius + r * np.cos(theta), radius + aspect * r * np.sin(theta)], -1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    return mask


def _affine(center: np.ndarray, angle: float, scale: float, origin: np.ndarray) -> np.ndarray:
    """(2, 3) matrix mapping local coordinates: origin -> center, rotated by angle, scaled."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    rot = np.array([[c, -s], [s, c]], np.float64)
    return np.concatenate([rot, (center - rot @ origin)[:, None]], 1)


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


def _smooth_path(rng: np.random.Generator, num_frames: int, start: float, speed: float,
                 jitter: float) -> np.ndarray:
    """A 1-D path with random, smoothly varying velocity."""
    velocity = speed + np.cumsum(rng.normal(0, jitter, num_frames))
    return start + np.concatenate([[0.0], np.cumsum(velocity[:-1])])


def _composite(image: np.ndarray, owner: np.ndarray, obj_idx: int, texture: np.ndarray, mask: np.ndarray,
               matrix: np.ndarray) -> None:
    """Paint one object over `image` (H, W, 3 float32) in place, warping only its bounding box."""
    H, W = owner.shape
    size = mask.shape[0]
    corners = _apply(matrix, np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 2, (W, H))
    if x1 <= x0 or y1 <= y0:
        return  # entirely outside the frame
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    alpha = cv2.warpAffine(mask, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    color = cv2.warpAffine(texture, shifted, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR).astype(np.float32)
    roi = image[y0:y1, x0:x1]
    roi += (color - roi) * alpha[..., None]
    owner[y0:y1, x0:x1][alpha > 0.5] = obj_idx


class Footage:
    """Real frames and object masks to make clips from: DAVIS-layout clips (<clip>/frames/*.jpg and
    <clip>/masks/*.png, the object where the mask is non-zero), read on demand. `only` / `exclude`: clip
    names to keep / leave out (clips that validation sets are made from stay out of training sets)."""

    def __init__(self, roots: list[str | Path], only: set[str] | None = None, exclude: set[str] = frozenset()):
        self.clips = sorted(clip for root in roots for clip in Path(root).iterdir()
                            if (clip / "frames").is_dir() and any((clip / "masks").glob("*.png"))
                            and (only is None or clip.name in only) and clip.name not in exclude)
        if not self.clips:
            raise ValueError("no DAVIS-layout clips (<clip>/frames, <clip>/masks/*.png) under "
                             f"{[str(r) for r in roots]}"
                             + (f" among {sorted(only)}" if only is not None else "")
                             + (f" once {sorted(exclude)} are left out" if exclude else ""))

    def _pick(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random frame of a random clip (RGB) and its mask (bool)."""
        clip = self.clips[int(rng.integers(len(self.clips)))]
        masks = sorted((clip / "masks").glob("*.png"))
        mask_path = masks[int(rng.integers(len(masks)))]
        frame = cv2.imread(str(clip / "frames" / f"{mask_path.stem}.jpg"))
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if frame is None or mask is None:
            raise OSError(f"could not read {mask_path.stem} of {clip}")
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), mask > 0

    def background(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """(height, width, 3) uint8: a real frame, resized."""
        return cv2.resize(self._pick(rng)[0], (width, height), interpolation=cv2.INTER_LINEAR)

    def cutout(self, rng: np.random.Generator, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """(mask (2r+1, 2r+1) uint8 0/255, texture (2r+1, 2r+1, 3) uint8): a real object scaled so that its
        longer side spans the square, centred in it."""
        for _ in range(20):
            frame, mask = self._pick(rng)
            if mask.sum() >= 400:
                break
        else:
            raise ValueError(f"no object of at least 400 px in 20 frames drawn from {len(self.clips)} clips")
        ys, xs = np.nonzero(mask)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        size = 2 * radius + 1
        zoom = size / max(y2 - y1, x2 - x1)
        h, w = max(1, min(size, round((y2 - y1) * zoom))), max(1, min(size, round((x2 - x1) * zoom)))
        top, left = (size - h) // 2, (size - w) // 2
        square_mask = np.zeros((size, size), np.uint8)
        square_texture = np.zeros((size, size, 3), np.uint8)
        square_mask[top:top + h, left:left + w] = cv2.resize(mask[y1:y2, x1:x2].astype(np.uint8) * 255, (w, h),
                                                             interpolation=cv2.INTER_LINEAR)
        square_texture[top:top + h, left:left + w] = cv2.resize(frame[y1:y2, x1:x2], (w, h),
                                                                interpolation=cv2.INTER_AREA)
        return square_mask, square_texture


class Bend:
    """A smooth travelling-wave displacement of an object's own square (limbs swing, cloth folds): the pixel at
    local u shows the cut-out at u + offset(u, t), |offset| <= amplitude, slopes under one (so it folds nothing)."""

    def __init__(self, rng: np.random.Generator, size: int, share: float):
        if not 0 <= share < 1 / (2 * np.pi):  # the slope is at most 2 pi share: under one, or it would fold
            raise ValueError(f"object_bend must be in [0, {1 / (2 * np.pi):.3f}), got {share}")
        self.amplitude = rng.uniform(0, share) * size
        wavelengths = rng.uniform(1.0, 2.0, 2) * size
        angles = rng.uniform(0, 2 * np.pi, 2)
        self.waves = 2 * np.pi / wavelengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)  # (2, 2)
        self.speeds = rng.uniform(0.1, 0.3, 2) * rng.choice([-1, 1], 2)  # radians per frame
        self.phases = rng.uniform(0, 2 * np.pi, 2)

    def offset(self, local: np.ndarray, t: int) -> np.ndarray:
        """(N, 2) displacement at local points (N, 2) on frame t."""
        return self.amplitude * np.sin(local @ self.waves.T + self.speeds * t + self.phases)

    def render(self, t: int, *images: np.ndarray) -> tuple[np.ndarray, ...]:
        """The cut-out's images (its texture, its mask) as bent on frame t, through one sampling map."""
        size = images[0].shape[0]
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        source = np.stack([xs.ravel(), ys.ravel()], 1)
        source = (source + self.offset(source, t)).astype(np.float32)
        map_x, map_y = source[:, 0].reshape(size, size), source[:, 1].reshape(size, size)
        return tuple(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                     for image in images)

    def place(self, local: np.ndarray, t: int) -> np.ndarray:
        """Where the cut-out's points `local` (N, 2) are on frame t: u with u + offset(u) = local, by fixed-point
        iteration (a contraction: the offset's slope is under one)."""
        placed = local.copy()
        for _ in range(30):
            placed = local - self.offset(placed, t)
        return placed


def _scene_bar(rng: np.random.Generator, height: int, width: int, bg_maps: list[np.ndarray],
               footage: Footage | None) -> tuple:
    """A textured bar fixed in the scene (it moves with the background's camera), mostly upright, across
    a random place of the first frame; returned as an object (texture, mask, maps, bend)."""
    size = int(height * rng.uniform(0.8, 1.6)) | 1
    half_width = max(2, int(height * rng.uniform(0.015, 0.075)))
    mask = np.zeros((size, size), np.uint8)
    mask[:, size // 2 - half_width:size // 2 + half_width + 1] = 255
    texture = (footage.background(rng, size, size) if footage is not None else make_texture(rng, size, size))
    upright = rng.random() < 0.75
    angle = rng.normal(0, 0.2) + (0 if upright else np.pi / 2)
    where = _apply(cv2.invertAffineTransform(bg_maps[0]), rng.uniform(0.1, 0.9, (1, 2)) * (width, height))[0]
    place = _affine(where, angle, 1.0, np.array([size / 2, size / 2]))
    maps = [np.concatenate([m[:, :2] @ place[:, :2], (m[:, :2] @ place[:, 2] + m[:, 2])[:, None]], 1)
            for m in bg_maps]
    return texture, mask, maps, None


@dataclass
class ClipSpec:
    """Knobs for one generated clip (pixel sizes at the clip's resolution)."""

    num_frames: int = 24
    height: int = 256
    width: int = 448
    num_objects: tuple[int, int] = (2, 6)
    object_radius: tuple[int, int] = (20, 80)
    max_object_speed: float = 7.0  # px / frame
    max_camera_speed: float = 4.0
    points_per_object: int = 48
    background_points: int = 96
    brightness_drift: float = 0.004  # jitter of the global brightness's random walk (its rate's, per frame)
    # objects also bend (Bend) by up to this share of their size; 0: rigid (an affine map of their cut-out)
    object_bend: float = 0.0
    # up to this many bars (posts, poles, railings) fixed in the scene in front of everything: on real video
    # points that pass behind a still occluder stay on it (BADJA horsejump-low's poles, parkour's bollard)
    scene_bars: int = 0


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    trajs_2d: np.ndarray  # (T, N, 2) float32
    visibs: np.ndarray  # (T, N) bool
    owners: np.ndarray  # (T, H, W) int8: index of the object seen at each pixel, -1 for the background


def generate_clip(rng: np.random.Generator, spec: ClipSpec = ClipSpec(), footage: Footage | None = None) -> Clip:
    T, H, W = spec.num_frames, spec.height, spec.width
    # Background: a canvas larger than the frame, seen through a moving, rotating, zooming camera.
    bg_h, bg_w = int(H * 1.8), int(W * 1.8)
    background = footage.background(rng, bg_h, bg_w) if footage is not None else make_texture(rng, bg_h, bg_w)
    bg_center = np.array([bg_w / 2, bg_h / 2])
    cam_speed = rng.uniform(0, spec.max_camera_speed) * (rng.random() < 0.8)
    cam_dir = rng.uniform(0, 2 * np.pi)
    cam_x = _smooth_path(rng, T, W / 2, cam_speed * np.cos(cam_dir), 0.3)
    cam_y = _smooth_path(rng, T, H / 2, cam_speed * np.sin(cam_dir), 0.3)
    cam_angle = _smooth_path(rng, T, rng.uniform(-0.2, 0.2), rng.normal(0, 0.006), 0.001)
    cam_scale = np.exp(_smooth_path(rng, T, rng.uniform(-0.15, 0.15), rng.normal(0, 0.006), 0.001))
    bg_maps = [_affine(np.array([cam_x[t], cam_y[t]]), cam_angle[t], cam_scale[t], bg_center) for t in range(T)]

    objects = []
    for _ in range(int(rng.integers(spec.num_objects[0], spec.num_objects[1] + 1))):
        radius = int(rng.integers(*spec.object_radius))
        if footage is not None:
            mask, texture = footage.cutout(rng, radius)
        else:
            mask = blob_mask(rng, radius)
            texture = make_texture(rng, mask.shape[0], mask.shape[1])
        speed = rng.uniform(0, spec.max_object_speed)
        direction = rng.uniform(0, 2 * np.pi)
        xs = _smooth_path(rng, T, rng.uniform(0.05, 0.95) * W, speed * np.cos(direction), 0.4)
        ys = _smooth_path(rng, T, rng.uniform(0.05, 0.95) * H, speed * np.sin(direction), 0.4)
        angle = _smooth_path(rng, T, rng.uniform(0, 2 * np.pi), rng.normal(0, 0.03), 0.004)
        scale = np.exp(_smooth_path(rng, T, rng.uniform(-0.3, 0.3), rng.normal(0, 0.01), 0.002))
        origin = np.array([radius, radius], np.float64)
        maps = [_affine(np.array([xs[t], ys[t]]), angle[t], scale[t], origin) for t in range(T)]
        objects.append((texture, mask, maps, Bend(rng, mask.shape[0], spec.object_bend) if spec.object_bend else None))

    if spec.scene_bars:  # no draws otherwise: clips made without bars stay the same
        for _ in range(int(rng.integers(0, spec.scene_bars + 1))):
            objects.append(_scene_bar(rng, H, W, bg_maps, footage))

    # Points: fixed surface locations, on the background and inside each (eroded) object shape.
    bg_local = _apply(cv2.invertAffineTransform(bg_maps[0]),
                      rng.random((spec.background_points, 2)) * (W, H))
    point_sets = [(-1, bg_local, bg_maps, None)]
    for obj_idx, (_, mask, maps, bend) in enumerate(objects):
        inner = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 127
        ys_in, xs_in = np.nonzero(inner)
        if len(xs_in) == 0:
            continue
        pick = rng.integers(0, len(xs_in), spec.points_per_object)
        local = np.stack([xs_in[pick], ys_in[pick]], 1) + rng.random((spec.points_per_object, 2)) - 0.5
        point_sets.append((obj_idx, local, maps, bend))

    frames = np.zeros((T, H, W, 3), np.uint8)
    num_points = sum(len(local) for _, local, _, _ in point_sets)
    trajs = np.zeros((T, num_points, 2), np.float32)
    visibs = np.zeros((T, num_points), bool)
    owners = np.zeros((T, H, W), np.int8)
    gain = 1 + _smooth_path(rng, T, 0, 0, spec.brightness_drift)  # slow global brightness drift
    for t in range(T):
        image = cv2.warpAffine(background, bg_maps[t], (W, H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        owner = np.full((H, W), -1, np.int32)  # index of the nearest surface at each pixel
        for obj_idx, (texture, mask, maps, bend) in enumerate(objects):  # far to near
            if bend is not None:
                texture, mask = bend.render(t, texture, mask)
            _composite(image, owner, obj_idx, texture, mask, maps[t])
        noise = rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0, 3)
        frames[t] = np.clip(image * gain[t] + noise, 0, 255).astype(np.uint8)
        owners[t] = owner
        start = 0
        for obj_idx, local, maps, bend in point_sets:
            xy = _apply(maps[t], local if bend is None else bend.place(local, t))
            trajs[t, start:start + len(local)] = xy
            inside = (xy[:, 0] >= 0) & (xy[:, 0] <= W - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= H - 1)
            col = np.clip(np.round(xy[:, 0]).astype(int), 0, W - 1)
            row = np.clip(np.round(xy[:, 1]).astype(int), 0, H - 1)
            visibs[t, start:start + len(local)] = inside & (owner[row, col] == obj_idx)
            start += len(local)
    return Clip(frames, trajs, visibs, owners)


def write_clip(clip: Clip, clip_dir: str | Path, jpeg_quality: int = 92) -> None:
    """Write one clip in the Point Odyssey layout (frames/frame_%06d.jpg + anno.npz)."""
    clip_dir = Path(clip_dir)
    (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(clip.frames):
        path = clip_dir / "frames" / f"frame_{t:06d}.jpg"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
            raise OSError(f"could not write {path}")
    np.savez_compressed(clip_dir / "anno.npz", trajs_2d=clip.trajs_2d, visibs=clip.visibs)


def generate_dataset(out_dir: str | Path, num_clips: int, seed: int = 0, spec: ClipSpec = ClipSpec(),
                     progress=None, footage: Footage | None = None) -> list[Path]:
    """Write `num_clips` clips named clip_00000 ... under out_dir; clip i uses seed (seed, i), so any
    clip can be regenerated alone."""
    out_dir = Path(out_dir)
    written = []
    for clip_idx in range(num_clips):
        rng = np.random.default_rng((seed, clip_idx))
        clip_dir = out_dir / f"clip_{clip_idx:05d}"
        write_clip(generate_clip(rng, spec, footage), clip_dir)
        written.append(clip_dir)
        if progress is not None:
            progress(clip_idx + 1, num_clips)
    return written
