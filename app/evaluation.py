"""Standard tracking metrics on sequences with ground truth (the ../shared/data layout).

- boxes: success AUC over IoU thresholds 0, 0.05, ..., 1 and precision at 20 px (OTB / LaSOT)
- masks: DAVIS J (region IoU), F (boundary F-measure, tolerance 0.8 % of the image diagonal), J&F
- points: TAP-Vid AJ, delta_avg and OA, 'first' protocol, coordinates rescaled to 256x256

A sequence directory holds `frames/*.jpg` (read through app.video) and `gt.npz` with some of `boxes (T, O, 4)` (NaN where
absent), `box_present (T, O)`, `masks (T, H, W)` (uint8 label map), `mask_eval (T,)`,
`trajs_2d (T, N, 2)`, `visibs (T, N)`, `point_eval (T, N)`, `point_query (N,)` (-1: not judged).
The first frame of every box and mask object is its prompt, so it is never scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .video import VideoSource, open_video

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)  # IoU thresholds of the success plot
PRECISION_PX = 20.0  # centre-error threshold of the precision figure
TAPVID_SIZE = 256.0  # TAP-Vid judges points in a 256x256 rescaled frame
TAPVID_THRESHOLDS = (1, 2, 4, 8, 16)  # pixels, in the rescaled frame
MIN_MASK_AREA = 400  # smaller first-frame objects are not judged (as the reference judge)
BOUNDARY_TOLERANCE = 0.008  # DAVIS: tolerance as a fraction of the image diagonal


# -- boxes -------------------------------------------------------------------------------------
def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of [x1, y1, x2, y2] boxes, shapes (..., 4); a NaN box scores 0."""
    inter_w = np.clip(np.minimum(pred[..., 2], gt[..., 2]) - np.maximum(pred[..., 0], gt[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(pred[..., 3], gt[..., 3]) - np.maximum(pred[..., 1], gt[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_pred = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1])
    area_gt = (gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1])
    with np.errstate(invalid="ignore"):
        iou = inter / np.maximum(area_pred + area_gt - inter, 1e-9)
    return np.where(np.isnan(iou), 0.0, iou)


def box_scores(pred: np.ndarray, gt: np.ndarray, judged: np.ndarray) -> tuple[float, float]:
    """(success AUC, precision@20px) of pred (T, 4) against gt (T, 4) on the judged frames (T,) bool."""
    pred, gt = np.asarray(pred, np.float64)[judged], np.asarray(gt, np.float64)[judged]
    iou = box_iou(pred, gt)
    auc = float(np.mean([np.mean(iou > th) for th in SUCCESS_THRESHOLDS]))
    centre_pred = 0.5 * (pred[:, :2] + pred[:, 2:])
    centre_gt = 0.5 * (gt[:, :2] + gt[:, 2:])
    err = np.hypot(*(centre_pred - centre_gt).T)
    err[np.isnan(err)] = np.inf  # a missing box is a miss
    return auc, float(np.mean(err <= PRECISION_PX))


# -- masks -------------------------------------------------------------------------------------
def boundary_tolerance(shape: tuple[int, int]) -> int:
    return max(1, int(round(BOUNDARY_TOLERANCE * float(np.hypot(shape[0], shape[1])))))


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a background 8-neighbour; the image border counts as inside."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT,
                      borderValue=1)
    return mask.astype(bool) & (inner == 0)


def _near(boundary: np.ndarray, tol: int) -> np.ndarray:
    """Pixels within the tolerance disk of a boundary."""
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tol + 1, 2 * tol + 1))
    return cv2.dilate(boundary.astype(np.uint8), disk) > 0


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_f(pred: np.ndarray, gt: np.ndarray) -> float:
    if not pred.any() and not gt.any():
        return 1.0
    pred_b, gt_b = mask_boundary(pred), mask_boundary(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 or n_gt == 0:
        return 0.0
    tol = boundary_tolerance(gt.shape)
    precision = np.count_nonzero(pred_b & _near(gt_b, tol)) / n_pred
    recall = np.count_nonzero(gt_b & _near(pred_b, tol)) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def mask_scores(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """DAVIS (J, F) of one frame's bool masks (H, W)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    return float(region_j(pred, gt)), float(boundary_f(pred, gt))


# -- points ------------------------------------------------------------------------------------
def tapvid_scores(pred_xy: np.ndarray, pred_vis: np.ndarray, gt_xy: np.ndarray, gt_vis: np.ndarray,
                  size: tuple[int, int], query_frames: np.ndarray, judged: np.ndarray) -> dict[str, float]:
    """TAP-Vid AJ, delta_avg, OA. xy (T, N, 2), vis / judged (T, N) bool, size (H, W), query_frames (N,).
    'first' protocol: a point counts on the judged frames after its query frame; a NaN prediction
    is far away."""
    height, width = size
    num_frames = gt_xy.shape[0]
    scale = np.array([TAPVID_SIZE / width, TAPVID_SIZE / height])
    after_query = np.arange(num_frames)[:, None] > np.asarray(query_frames)[None, :]
    judged = np.asarray(judged, bool) & after_query  # (T, N)
    gt_vis, pred_vis = np.asarray(gt_vis, bool), np.asarray(pred_vis, bool)
    dist = np.linalg.norm((np.asarray(pred_xy, np.float64) - gt_xy) * scale, axis=-1)  # (T, N)
    dist[np.isnan(dist)] = np.inf
    gt_on, pred_on = gt_vis & judged, pred_vis & judged
    deltas, jaccards = [], []
    for th in TAPVID_THRESHOLDS:
        close = dist < th
        deltas.append(close[gt_on].mean() if gt_on.any() else 0.0)
        true_pos = np.count_nonzero(close & gt_on & pred_on)
        false_neg = np.count_nonzero(gt_on) - true_pos
        false_pos = np.count_nonzero(pred_on) - true_pos
        jaccards.append(true_pos / max(true_pos + false_neg + false_pos, 1))
    occlusion_acc = float(np.mean(gt_vis[judged] == pred_vis[judged])) if judged.any() else float("nan")
    return {"AJ": float(np.mean(jaccards)), "delta_avg": float(np.mean(deltas)), "OA": occlusion_acc}


# -- sequences ---------------------------------------------------------------------------------
@dataclass
class JudgedObjects:
    box_idxs: list[int]  # columns of gt boxes with a box on frame 0
    mask_labels: list[int]  # label values of gt masks large enough on frame 0
    point_idxs: np.ndarray  # (N,) columns of gt trajs with a query frame


@dataclass
class EvalSequence:
    name: str
    frames: VideoSource  # frames/*.jpg, RGB
    gt: dict[str, np.ndarray]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return self.frames.info.height, self.frames.info.width

    def judged(self) -> JudgedObjects:
        return judged_objects(self.gt)


def load_sequence(seq_dir: str | Path) -> EvalSequence:
    """A judged sequence: frames/*.jpg (sorted) and gt.npz."""
    seq_dir = Path(seq_dir)
    gt_path = seq_dir / "gt.npz"
    if not gt_path.is_file():
        raise FileNotFoundError(f"{seq_dir}: no gt.npz")
    with np.load(gt_path, allow_pickle=False) as npz:
        gt = {key: npz[key] for key in npz.files}
    return EvalSequence(seq_dir.name, open_video(seq_dir / "frames"), gt)


def judged_objects(gt: dict[str, np.ndarray]) -> JudgedObjects:
    """Which objects a sequence judges: boxes present on frame 0, mask labels of at least
    MIN_MASK_AREA pixels on frame 0, points with a query frame."""
    box_idxs = []
    if "boxes" in gt:
        box_idxs = [k for k in range(gt["boxes"].shape[1]) if not np.isnan(gt["boxes"][0, k, 0])]
    mask_labels = []
    if "masks" in gt:
        labels, areas = np.unique(gt["masks"][0], return_counts=True)
        mask_labels = [int(v) for v, a in zip(labels, areas) if v != 0 and a >= MIN_MASK_AREA]
    point_idxs = np.flatnonzero(gt["point_query"] >= 0) if "trajs_2d" in gt else np.zeros(0, int)
    return JudgedObjects(box_idxs, mask_labels, point_idxs)


def evaluate_predictions(gt: dict[str, np.ndarray], boxes=None, masks=None, points_xy=None,
                         points_vis=None, size: tuple[int, int] | None = None) -> dict[str, float]:
    """Figures of one sequence's predictions, in the order of `judged_objects(gt)`:
    boxes: list of (T, 4) (NaN = no box); masks: list of (T, H, W) bool; points_xy (T, N, 2) and
    points_vis (T, N) for the judged points. Kinds left None are not scored. `size` (H, W) of the
    frames is needed for points when gt has no masks."""
    judged = judged_objects(gt)
    out: dict[str, float] = {}
    if boxes:
        if len(boxes) != len(judged.box_idxs):
            raise ValueError(f"{len(boxes)} box tracks given, the sequence judges {len(judged.box_idxs)}")
        aucs, precisions = [], []
        for pred, k in zip(boxes, judged.box_idxs):
            on = gt["box_present"][:, k].copy()
            on[0] = False
            if on.any():
                auc, prec = box_scores(pred, gt["boxes"][:, k], on)
                aucs.append(auc)
                precisions.append(prec)
        if aucs:
            out["box_auc"], out["box_prec20"] = float(np.mean(aucs)), float(np.mean(precisions))
    if masks:
        if len(masks) != len(judged.mask_labels):
            raise ValueError(f"{len(masks)} mask tracks given, the sequence judges {len(judged.mask_labels)}")
        js, fs = [], []
        frames = [t for t in range(1, gt["masks"].shape[0]) if gt["mask_eval"][t]]
        for pred, label in zip(masks, judged.mask_labels):
            for t in frames:
                j, f = mask_scores(pred[t], gt["masks"][t] == label)
                js.append(j)
                fs.append(f)
        if js:
            out["mask_J"], out["mask_F"] = float(np.mean(js)), float(np.mean(fs))
            out["mask_JF"] = (out["mask_J"] + out["mask_F"]) / 2
    if points_xy is not None and len(judged.point_idxs):
        idx = judged.point_idxs
        if size is None and "masks" in gt:
            size = gt["masks"].shape[1:3]
        if size is None:
            raise ValueError("point figures need the frame size: gt has no masks")
        out.update(tapvid_scores(points_xy, points_vis, gt["trajs_2d"][:, idx], gt["visibs"][:, idx], size,
                                 gt["point_query"][idx], gt["point_eval"][:, idx]))
    return out


def evaluate_trackers(seq: EvalSequence, box_tracker: str | None = "csrt", mask_tracker: str | None = "dis-flow",
                      point_tracker: str | None = "lk", device: str = "auto") -> dict[str, float]:
    """Prompt the judged objects as the reference judge does (boxes and masks on frame 0, points on
    their query frames), track forward with the named trackers (None: skip that kind) and score."""
    from trackstudio.trackers import Prompt, registry  # the metrics above need no torch; only this does

    judged = seq.judged()
    gt, num_frames = seq.gt, len(seq.frames)
    height, width = seq.size

    def track(name, prompts):  # prompts: {obj_id: (frame_idx, Prompt)} -> {frame_idx: {obj_id: ObjectResult}}
        trk = registry.build(name, device=device)
        trk.set_video(seq.frames)
        for obj_id, (frame_idx, prompt) in prompts.items():
            trk.add_prompt(frame_idx, obj_id, prompt)
        start = min(frame_idx for frame_idx, _ in prompts.values())
        return {r.frame_idx: r.objects for r in trk.propagate(start)}

    boxes = masks = points_xy = points_vis = None
    if box_tracker and judged.box_idxs:
        out = track(box_tracker, {i: (0, Prompt(box=gt["boxes"][0, k])) for i, k in enumerate(judged.box_idxs)})
        boxes = [np.full((num_frames, 4), np.nan, np.float32) for _ in judged.box_idxs]
        for frame_idx, objects in out.items():
            for i, res in objects.items():
                if res.visible and res.box is not None:
                    boxes[i][frame_idx] = res.box
    if mask_tracker and judged.mask_labels:
        out = track(mask_tracker, {i: (0, Prompt(mask=gt["masks"][0] == label))
                                   for i, label in enumerate(judged.mask_labels)})
        masks = [np.zeros((num_frames, height, width), bool) for _ in judged.mask_labels]
        for frame_idx, objects in out.items():
            for i, res in objects.items():
                if res.visible and res.mask is not None:
                    masks[i][frame_idx] = res.mask
    if point_tracker and len(judged.point_idxs):
        queries = gt["point_query"][judged.point_idxs]
        out = track(point_tracker, {i: (int(q), Prompt(point=gt["trajs_2d"][q, n]))
                                    for i, (q, n) in enumerate(zip(queries, judged.point_idxs))})
        points_xy = np.full((num_frames, len(queries), 2), np.nan, np.float32)  # (T, N, 2)
        points_vis = np.zeros((num_frames, len(queries)), bool)  # (T, N)
        for frame_idx, objects in out.items():
            for i, res in objects.items():
                if res.point is not None:
                    points_xy[frame_idx, i] = res.point
                    points_vis[frame_idx, i] = res.visible
    return evaluate_predictions(gt, boxes, masks, points_xy, points_vis, size=(height, width))


def format_table(rows: list[dict]) -> str:
    """Rows of {"name": ..., figure: value} as an aligned text table with a mean row."""
    if not rows:
        return "(no results)"
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k != "name"]
    mean_row = {"name": "mean"}
    for k in keys:
        values = [row[k] for row in rows if isinstance(row.get(k), (int, float))]
        if values:
            mean_row[k] = float(np.mean(values))
    table = [["sequence"] + keys]
    for row in rows + ([mean_row] if len(rows) > 1 else []):
        table.append([str(row.get("name", ""))] + [_cell(row.get(k)) for k in keys])
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
             for r in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
