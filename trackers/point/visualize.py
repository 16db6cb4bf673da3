"""Pictures for training runs, drawn with OpenCV (no plotting library needed): predicted tracks
against ground truth, attention heatmaps over a frame, and loss / metric curves."""
from __future__ import annotations

import cv2
import numpy as np

_COLORS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


def draw_tracks(frame_rgb: np.ndarray, gt_xy: np.ndarray, gt_vis: np.ndarray, pred_xy: np.ndarray,
                pred_vis: np.ndarray, max_points: int = 12) -> np.ndarray:
    """The last frame with every point's trail: ground truth as thin lines ending in a ring, the
    prediction as thick lines ending in a dot (hollow square when predicted hidden).
    gt_xy / pred_xy (T, N, 2), gt_vis / pred_vis (T, N)."""
    image = np.ascontiguousarray(frame_rgb.copy())
    for n in range(min(max_points, gt_xy.shape[1])):
        color = _COLORS[n % len(_COLORS)]
        for trail, thickness in ((gt_xy[:, n], 1), (pred_xy[:, n], 2)):
            pts = np.round(trail).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(image, [pts], False, color, thickness, cv2.LINE_AA)
        gx, gy = np.round(gt_xy[-1, n]).astype(int)
        px, py = np.round(pred_xy[-1, n]).astype(int)
        if gt_vis[-1, n]:
            cv2.circle(image, (gx, gy), 5, color, 1, cv2.LINE_AA)
        if pred_vis[-1, n]:
            cv2.circle(image, (px, py), 3, color, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (px - 3, py - 3), (px + 3, py + 3), color, 1)
    return image


def overlay_heatmap(frame_rgb: np.ndarray, heatmap: np.ndarray, point: np.ndarray | None = None) -> np.ndarray:
    """Blend a (h, w) heatmap in [0, 1] (any resolution) over the frame; mark `point` if given."""
    H, W = frame_rgb.shape[:2]
    heat = cv2.resize(np.clip(heatmap, 0, 1).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    image = (0.55 * frame_rgb + 0.45 * colored).astype(np.uint8)
    if point is not None:
        cv2.drawMarker(image, tuple(int(v) for v in np.round(point)), (255, 255, 255), cv2.MARKER_CROSS, 12, 2)
    return image


def draw_curves(series: dict[str, tuple[list[float], list[float]]], title: str, size=(480, 800),
                log_y: bool = False) -> np.ndarray:
    """Line chart of named (x, y) series with axes, min/max labels and a legend -> (H, W, 3) RGB."""
    H, W = size
    image = np.full((H, W, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 40, 40
    xs = [x for x_list, _ in series.values() for x in x_list]
    ys = [y for _, y_list in series.values() for y in y_list if np.isfinite(y) and (not log_y or y > 0)]
    cv2.putText(image, title, (left, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    if not xs or not ys:
        return image
    transform = np.log10 if log_y else (lambda v: v)
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = transform(min(ys)), transform(max(ys))
    if y1 - y0 < 1e-9:
        y1 = y0 + 1
    cv2.rectangle(image, (left, top), (W - right, H - bottom), (0, 0, 0), 1)

    def to_px(x, y):
        u = left + (x - x0) / (x1 - x0) * (W - left - right)
        v = H - bottom - (transform(y) - y0) / (y1 - y0) * (H - top - bottom)
        return int(round(u)), int(round(v))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for value, v in ((y1, top), (y0, H - bottom)):
        label = f"{10 ** value:.3g}" if log_y else f"{value:.3g}"
        cv2.putText(image, label, (5, v + 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"{x0:g}", (left, H - bottom + 15), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"{x1:g}", (W - right - 40, H - bottom + 15), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for idx, (name, (x_list, y_list)) in enumerate(series.items()):
        color = _COLORS[idx % len(_COLORS)]
        pts = [to_px(x, y) for x, y in zip(x_list, y_list) if np.isfinite(y) and (not log_y or y > 0)]
        if len(pts) > 1:
            cv2.polylines(image, [np.array(pts, np.int32).reshape(-1, 1, 2)], False, color, 2, cv2.LINE_AA)
        elif pts:
            cv2.circle(image, pts[0], 3, color, -1)
        cv2.putText(image, name, (W - right - 200, top + 20 + 18 * idx), font, 0.5, color, 1, cv2.LINE_AA)
    return image
