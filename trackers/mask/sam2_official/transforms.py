"""SAM2.1 input and output conversions: frames to the square normalised model input, video-pixel
prompts to model-input pixels, low-resolution mask logits back to video-sized masks."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .config import IMAGE_MEAN, IMAGE_STD


def preprocess_frame(frame: np.ndarray, image_size: int, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, S, S) float, as the official video predictor loads frames
    (sam2/utils/misc.py `_load_img_as_tensor`): stretched (not letterboxed) to S x S by PIL's default
    resize of an RGB image (bicubic, on uint8), divided by 255, then ImageNet mean/std normalised.

    The official image predictor (SAM2Transforms) resizes float pixels with torchvision's bilinear
    filter instead; this tracker is the video predictor, which uses these frames for prompts too.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"SAM2 expects (H, W, 3) uint8 RGB frames, got {frame.shape} {frame.dtype}")
    resized = Image.fromarray(np.ascontiguousarray(frame)).resize((image_size, image_size),
                                                                  Image.Resampling.BICUBIC)
    # float64 division, then float32, as the official loader fills its float32 frame buffer
    x = torch.from_numpy(np.asarray(resized) / 255.0).float().to(device).permute(2, 0, 1)[None]
    mean = torch.tensor(IMAGE_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def prompt_points(clicks: np.ndarray | None, box: np.ndarray | None, video_hw: tuple[int, int],
                  image_size: int, device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Clicks (K, 3) [x, y, label] and/or a box -> coords (1, N, 2) in model-input pixels and labels
    (1, N); the box goes first as two corner points labelled 2 and 3, as the official predictors do."""
    coords, labels = [], []
    if box is not None:
        coords += [box[:2], box[2:]]
        labels += [2, 3]
    if clicks is not None:
        for x, y, label in np.asarray(clicks, np.float32).reshape(-1, 3):
            coords.append(np.array([x, y], np.float32))
            labels.append(1 if label > 0 else 0)
    if not coords:
        return None
    h, w = video_hw
    scale = np.array([image_size / w, image_size / h], np.float32)
    pts = torch.from_numpy(np.stack(coords).astype(np.float32) * scale).to(device)[None]
    return pts, torch.tensor([labels], dtype=torch.int32, device=device)


def mask_to_input(mask: np.ndarray, image_size: int, device) -> torch.Tensor:
    """(H, W) bool -> (1, 1, S, S) {0, 1}: antialiased bilinear resize, thresholded at 0.5."""
    x = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)[None, None]
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return (x >= 0.5).float()


def fill_small_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Turn background islands (logit <= 0) of at most `max_area` pixels into weak foreground (0.1),
    on (B, 1, h, w) low-resolution logits (8-connected components)."""
    if max_area <= 0:
        return logits
    out = logits.clone()
    for i in range(logits.shape[0]):
        background = (logits[i, 0] <= 0).cpu().numpy().astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=8)
        small = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] <= max_area]
        if small:
            holes = torch.from_numpy(np.isin(labels, small)).to(logits.device)
            out[i, 0] = torch.where(holes, torch.full_like(out[i, 0], 0.1), out[i, 0])
    return out


def logits_to_video(low_res: torch.Tensor, video_hw: tuple[int, int]) -> torch.Tensor:
    """(B, 1, h, w) logits -> (B, 1, H, W) logits at video size (bilinear, pixel centres)."""
    return F.interpolate(low_res.float(), size=video_hw, mode="bilinear", align_corners=False)
