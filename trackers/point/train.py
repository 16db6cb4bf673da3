"""Training of the point track predictor on clips in the Point Odyssey layout.

    python -m trackers.point.train --data_root DATA [--data_root DATA2 ...] [--batch_size 4 --epochs 50 ...]
    (scripts/train_point_tracker.py is the same command)

Data: <data_root>/<video>/frames/frame_000000.jpg ... and anno.npz with trajs_2d (T, N, 2) pixels
and visibs (T, N); optionally valid (T, N) (labels that are known: other point-frames are not
supervised) and hidden_known (False: positions of hidden points are guesses, not supervised), as
pseudo-labelled real clips have them (pseudo.py). The videos of all roots are split 80/20 into
training and validation by clip (a fixed shuffle); --root_share sets how often training draws from
each root (default: in proportion to its clips). --init starts a fine-tuning stage from given
weights with a new optimizer and schedule; --trainable limits it to named parts (the visibility and
confidence heads alone leave the tracks' positions as they were, up to what those heads feed back).
Each sample is a window of --sequence_length frames (random start, random frame step 1 to --max_frame_step (2) and
random direction when training), resized to --image_size, with --num_points points that are
visible on its first frame; coordinates are normalised to [0, 1] by the image size.
The first guess of every track is Lucas-Kanade from the query (or, for 20% of training windows,
the query position itself), as in the tracker. The loss: Huber (delta 1 px) on coordinates for
every refinement iteration (later ones weigh more; hidden points weigh less, and not at all outside
the frame), BCE on visibility and on confidence (target: visible and within 3 px). The backbone
maps are cached per clip (<video>/cache/) when the backbone is the frozen pretrained one.
AdamW, cosine learning rate with warm-up, gradient clipping at 1.0, TensorBoard logs, `latest.pth`
and `best.pth` (lowest validation loss) checkpoints with --resume, and pictures in
<save_dir>/visualizations: predictions against ground truth, attention heatmaps and curves.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .corr import attention_heatmap, feature_pyramid
from .init_flow import lk_chain, to_gray
from .motion_blur import blur_along, motion_field
from .metrics import track_metrics
from ..backbones import normalize_rgb
from .model import (BACKBONES, MIN_CORRECTION_PX, EfficientNetFeatures, PointTrackPredictor, PredictorConfig,
                    gate_corrections)
from .visualize import draw_curves, draw_tracks, overlay_heatmap
from ..training import (DataError, RunningMeans, initial_weights, log_train_step, normalised_shares, optimizer_step,
                        resume_training, run_command, save_checkpoint, split_by_clip, warmup_cosine)

CONF_THRESHOLD_PX = 3.0  # a prediction this close to the truth counts as 'confident' for training
HIDDEN_WEIGHT = 0.2  # coordinate loss weight on frames where the point is hidden
COORD_HUBER_PX = 1.0  # nearly L1: small errors keep a full-size gradient, which buys precision
ITER_GAMMA = 0.8
CONTINUATION_MAX_GAP = 12  # continuation windows: the query lies at most this many steps before the window


def list_videos(data_root: str | Path, video_dirs: str | None = None) -> list[Path]:
    """The videos of one root (all, or the named ones)."""
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"--data_root {root} is not a folder")
    if video_dirs:
        videos = [root / name.strip() for name in video_dirs.split(",") if name.strip()]
        missing = [str(v) for v in videos if not (v / "anno.npz").is_file()]
        if missing:
            raise DataError(f"--video_dirs: no anno.npz in {', '.join(missing)}")
    else:
        videos = sorted(p.parent for p in root.glob("*/anno.npz"))
    if not videos:
        raise DataError(f"no videos (<video>/anno.npz + <video>/frames/) under {root}")
    return videos


def list_root_videos(data_roots: list[str], video_dirs: str | None) -> list[list[Path]]:
    """The videos of each root; --video_dirs (names) applies to the first root only."""
    return [list_videos(root, video_dirs if i == 0 else None) for i, root in enumerate(data_roots)]


def root_shares(groups: list[list[Path]], shares: list[float] | None) -> list[float]:
    """Sampling probability of each root's training videos: given (normalised) or by video count."""
    if shares is None:
        shares = [float(len(g)) for g in groups]
    return normalised_shares(shares, len(groups), "--root_share needs one value per --data_root")


def parse_non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def parse_image_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '256x448' -> (height 256, width 448)."""
    try:
        parts = [int(v) for v in str(text).lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 32:
        raise argparse.ArgumentTypeError(f"--image_size must be N or HxW with sides >= 32, got {text!r}")
    return (parts[0], parts[-1])


class FeatureCache:
    """The frozen EfficientNet-Lite0 maps of whole clips, computed once and stored beside each clip
    (<video>/cache/*.npy, float16), so training never runs the backbone twice on a frame."""

    def __init__(self, image_size: tuple[int, int]):
        self.image_size = image_size
        self._backbone: EfficientNetFeatures | None = None

    def paths(self, video: Path) -> tuple[Path, Path]:
        H, W = self.image_size
        return (video / "cache" / f"effnet_lite0_{H}x{W}_s4.npy", video / "cache" / f"effnet_lite0_{H}x{W}_s8.npy")

    def load(self, video: Path, frame_paths: list[Path], frame_ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        fine_path, coarse_path = self.paths(video)
        if not coarse_path.exists():
            self._compute(frame_paths, fine_path, coarse_path)
        fine = np.load(fine_path, mmap_mode="r")[frame_ids]
        coarse = np.load(coarse_path, mmap_mode="r")[frame_ids]
        return torch.from_numpy(np.ascontiguousarray(fine)), torch.from_numpy(np.ascontiguousarray(coarse))

    @torch.no_grad()
    def maps(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (T, H, W, 3) uint8 at image_size -> their stride-4 and stride-8 maps (float16), as cached."""
        if self._backbone is None:
            self._backbone = EfficientNetFeatures(pretrained=True)
        fine, coarse = [], []
        for chunk in np.array_split(frames, max(1, len(frames) // 8)):
            f4, f8 = self._backbone.raw(normalize_rgb(torch.from_numpy(chunk).permute(0, 3, 1, 2)))
            fine.append(f4.half())
            coarse.append(f8.half())
        return torch.cat(fine), torch.cat(coarse)

    def _compute(self, frame_paths: list[Path], fine_path: Path, coarse_path: Path) -> None:
        fine, coarse = self.maps(np.stack([read_frame(path, self.image_size) for path in frame_paths]))
        fine_path.parent.mkdir(exist_ok=True)
        for path, maps in ((fine_path, fine), (coarse_path, coarse)):  # coarse last: it marks completion
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")  # two runs on one data root may write at once
            np.save(tmp, maps.numpy())
            tmp.replace(path)


def read_frame(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """A frame file resized to image_size (H, W) as RGB uint8."""
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise DataError(f"could not read frame {path}")
    H, W = image_size
    return cv2.cvtColor(cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


class PointOdysseyDataset(Dataset):
    """Windows of point-tracking clips. Training draws random windows; validation fixed ones."""

    def __init__(self, videos: list[Path], sequence_length: int, num_points: int, image_size: tuple[int, int],
                 train: bool, samples_per_video: int = 1, static_init_prob: float = 0.2,
                 feature_cache: FeatureCache | None = None, corr_levels: int = PredictorConfig.corr_levels,
                 pools: list[tuple[list[Path], float]] | None = None, continuation_prob: float = 0.0,
                 max_frame_step: int = 2, motion_blur: float = 0.0):
        """pools: [(videos, share)]: training windows come from each pool's videos with its share
        (mixing data sources in a fixed proportion); None: every video equally often.
        continuation_prob: share of windows that start after their points' query frame, as the
        tracker's later windows do: the points are queried up to `CONTINUATION_MAX_GAP` steps before
        the window, and its first frame holds their Lucas-Kanade estimate chained from there (drifted
        where they were covered), fixed as the tracker fixes it. With it, every sample carries its
        query frame (`query_frame`, `query_xy`). max_frame_step: training windows step 1 to this many frames
        (where the clip is long enough), for larger motion between the frames a window shows. motion_blur: share
        of training windows whose frames are blurred along each pixel's motion to the window's next frame
        (motion_blur.py; their backbone maps are computed, not cached)."""
        self.videos = videos
        self.pools = [(pool, share) for pool, share in pools if pool and share > 0] if pools else None
        self.sequence_length = sequence_length
        self.num_points = num_points
        self.image_size = image_size
        self.train = train
        self.samples_per_video = samples_per_video
        self.static_init_prob = static_init_prob if train else 0.0
        self.continuation_prob = continuation_prob if train else 0.0
        self.max_frame_step = max_frame_step
        self.motion_blur = motion_blur if train else 0.0
        self.feature_cache = feature_cache
        self.corr_levels = corr_levels
        self._annos: dict[Path, tuple[np.ndarray, np.ndarray, np.ndarray, bool, list[Path]]] = {}
        self._sizes: dict[Path, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.videos) * self.samples_per_video

    def _load(self, video: Path):
        if video not in self._annos:
            anno_path = video / "anno.npz"
            try:
                with np.load(anno_path) as anno:
                    trajs, visibs = anno["trajs_2d"].astype(np.float32), anno["visibs"].astype(bool)
                    valid = anno["valid"].astype(bool) if "valid" in anno else np.ones_like(visibs)
                    hidden_known = bool(anno["hidden_known"]) if "hidden_known" in anno else True
            except KeyError as exc:
                raise DataError(f"{anno_path} lacks the array {exc}") from None
            except Exception as exc:
                raise DataError(f"could not read {anno_path}: {exc}") from None
            frames = sorted((video / "frames").glob("frame_*.jpg")) or sorted((video / "frames").glob("*.jpg"))
            if trajs.ndim != 3 or trajs.shape[-1] != 2 or visibs.shape != trajs.shape[:2] or valid.shape != visibs.shape:
                raise DataError(f"{anno_path}: trajs_2d must be (T, N, 2) and visibs and valid (T, N), got "
                                f"{trajs.shape}, {visibs.shape} and {valid.shape}")
            if len(frames) < trajs.shape[0]:
                raise DataError(f"{video / 'frames'} has {len(frames)} frames but anno.npz has {trajs.shape[0]}")
            self._annos[video] = (trajs, visibs & valid, valid, hidden_known, frames)
        return self._annos[video]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng() if self.train else np.random.default_rng(index)
        if self.pools:
            pool = self.pools[rng.choice(len(self.pools), p=[share for _, share in self.pools])][0]
            video = pool[int(rng.integers(len(pool)))]
        else:
            video = self.videos[index % len(self.videos)]
        trajs, visibs, valid, hidden_known, frame_paths = self._load(video)
        T = trajs.shape[0]
        longest = min(self.max_frame_step, (T - 1) // max(self.sequence_length - 1, 1))
        step = int(rng.integers(1, longest + 1)) if self.train and T >= 2 * self.sequence_length else 1
        span = (self.sequence_length - 1) * step + 1
        if span > T:
            raise DataError(f"{video} has {T} frames, fewer than --sequence_length {self.sequence_length}")
        # windows (start, reversed) whose first frame shows a point; validation: the first forward one
        starts = np.arange(T - span + 1)
        windows = [(int(start), backward) for backward in ((False, True) if self.train else (False,))
                   for start in starts if visibs[start + (span - 1 if backward else 0)].any()]
        if not windows:
            raise DataError(f"{video}: no window of {span} frames starts on a frame with a visible point")
        start, backward = windows[int(rng.integers(len(windows))) if self.train else 0]
        frame_ids = np.arange(start, start + span, step)
        if backward:
            frame_ids = frame_ids[::-1]
        direction = -step if backward else step
        lead = self._continuation_lead(rng, int(frame_ids[0]), direction, visibs)
        query_idx = int(frame_ids[0]) - direction * lead  # the points' query frame
        chain_ids = np.concatenate([np.arange(query_idx, frame_ids[0], direction), frame_ids])
        candidates = np.flatnonzero(visibs[query_idx])
        chosen = rng.choice(candidates, self.num_points, replace=len(candidates) < self.num_points)
        H, W = self.image_size
        chain = np.stack([read_frame(frame_paths[frame_idx], self.image_size) for frame_idx in chain_ids])
        norm = np.array(self._original_size(video, frame_paths[0]), np.float32)
        blurred = self.motion_blur > 0 and rng.random() < self.motion_blur
        if blurred:
            chain = self._blurred(chain, chain_ids, trajs / norm * (W, H), visibs, float(rng.uniform(0.25, 1.0)))
        frames = chain[lead:]
        tracks = trajs[frame_ids][:, chosen] / norm  # (T, N, 2) in [0, 1]
        vis = visibs[frame_ids][:, chosen]
        known = valid[frame_ids][:, chosen]
        queries_px = trajs[query_idx, chosen] / norm * (W, H)
        if rng.random() < self.static_init_prob:
            init_px = np.repeat(queries_px[None], len(chain_ids), 0)
        else:
            init_px = lk_chain([to_gray(f) for f in chain], queries_px)
        init_px = init_px[lead:]  # with a lead, the window's first estimate is chained, maybe drifted
        sample = {"frames": torch.from_numpy(frames), "tracks": torch.from_numpy(tracks),
                  "visibs": torch.from_numpy(vis), "init": torch.from_numpy(init_px / (W, H)).float(),
                  "valid": torch.from_numpy(known), "hidden_known": torch.tensor(hidden_known)}
        if self.continuation_prob > 0:
            sample["query_frame"] = torch.from_numpy(chain[0])
            sample["query_xy"] = torch.from_numpy(queries_px / (W, H)).float()
        if self.feature_cache is not None:  # the pyramid is built here, in the loader's worker
            fine, coarse = (self.feature_cache.maps(chain) if blurred
                            else self.feature_cache.load(video, frame_paths[:len(trajs)], chain_ids))
            pyramid = feature_pyramid(EfficientNetFeatures.fuse(fine, coarse), self.corr_levels)
            for level, fmap in enumerate(pyramid):
                sample[f"pyramid_{level}"] = fmap[lead:]
            if self.continuation_prob > 0:
                sample["query_pyramid_0"] = pyramid[0][0]
        return sample

    @staticmethod
    def _blurred(chain: np.ndarray, chain_ids: np.ndarray, tracks_px: np.ndarray, visibs: np.ndarray,
                 exposure: float) -> np.ndarray:
        """The chain's frames blurred along each pixel's motion to the chain's next frame (the last frame: from
        the one before); tracks_px (T, N, 2) at the chain's image size."""
        out = chain.copy()
        fields = [motion_field(tracks_px[a], tracks_px[b], visibs[a] & visibs[b], chain.shape[1:3])
                  for a, b in zip(chain_ids[:-1], chain_ids[1:])]
        for k, field in enumerate(fields + fields[-1:]):  # the last frame moves as the pair before it
            if field is not None:
                out[k] = blur_along(chain[k], field, exposure)
        return out

    def _continuation_lead(self, rng, first: int, direction: int, visibs) -> int:
        """How many steps (of `direction` frames) before the window's first frame its points are
        queried: 0, or with continuation_prob a random lead whose query frame lies in the clip and
        shows a point."""
        if self.continuation_prob <= 0 or rng.random() >= self.continuation_prob:
            return 0
        leads = [lead for lead in range(1, CONTINUATION_MAX_GAP + 1)
                 if 0 <= first - direction * lead < len(visibs) and visibs[first - direction * lead].any()]
        return int(rng.choice(leads)) if leads else 0

    def _original_size(self, video: Path, first_frame: Path) -> tuple[int, int]:
        """(width, height) of the clip's frame files, read once."""
        if video not in self._sizes:
            bgr = cv2.imread(str(first_frame))
            if bgr is None:
                raise DataError(f"could not read frame {first_frame}")
            self._sizes[video] = (bgr.shape[1], bgr.shape[0])
        return self._sizes[video]


# -- one step ----------------------------------------------------------------------------------------
def run_model(model: PointTrackPredictor, batch: dict[str, torch.Tensor], iters: int):
    """Forward a batch: returns predictions in pixels and the ground truth in pixels."""
    frames = batch["frames"]  # (B, T, H, W, 3) uint8
    B, T, H, W, _ = frames.shape
    scale = torch.tensor([W, H], dtype=torch.float32)
    gt = batch["tracks"] * scale  # (B, T, N, 2)
    init = batch["init"] * scale
    if "pyramid_0" in batch:  # built by the data loader from cached frozen backbone maps
        levels = sorted(key for key in batch if key.startswith("pyramid_"))
        pyramid = [batch[key].flatten(0, 1) for key in levels]
    else:
        pyramid = model.pyramid(model.encode_frames(frames.reshape(B * T, H, W, 3)))
    anchors = torch.zeros(gt.shape[:3], dtype=torch.bool)
    anchors[:, 0] = True
    if "query_xy" in batch:  # queried before the window: its first frame holds the (fixed) chained estimate
        query_level0 = (batch["query_pyramid_0"] if "query_pyramid_0" in batch
                        else model.pyramid(model.encode_frames(batch["query_frame"]))[0])
        query_feats = model.query_features(query_level0, batch["query_xy"] * scale)
    else:
        first_frames = pyramid[0].reshape(B, T, *pyramid[0].shape[1:])[:, 0]
        query_feats = model.query_features(first_frames, gt[:, 0])
        init[:, 0] = gt[:, 0]
    coords, vis, conf, track_feats = model(pyramid, query_feats, init, anchors, iters=iters)
    return coords, vis, conf, gt, pyramid[0].reshape(B, T, *pyramid[0].shape[1:]), track_feats


def compute_losses(coords, vis_logits, conf_logits, gt, gt_vis, image_size, valid=None,
                   hidden_known=None, hidden_vis_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """image_size (H, W): hidden points are supervised (weakly) only while inside the frame;
    beyond it their position is a guess that would swamp the loss. valid (B, T, N): point-frames
    whose labels are known (default all); hidden_known (B,): clips whose hidden positions are true
    positions (default all; pseudo-labelled clips only have the tracker's guesses there).
    hidden_vis_weight: weight of the visibility loss on hidden point-frames (visible ones weigh 1);
    hidden frames are few, so above 1 a point reported visible behind an occluder costs more."""
    gt_vis = gt_vis.float()[:, 1:]  # frame 0 is the query: given, not predicted
    known = torch.ones_like(gt_vis) if valid is None else valid.float()[:, 1:]
    hidden_weight = HIDDEN_WEIGHT if hidden_known is None else HIDDEN_WEIGHT * hidden_known.float()[:, None, None]
    H, W = image_size
    in_frame = ((gt[:, 1:, :, 0] >= 0) & (gt[:, 1:, :, 0] <= W - 1) &
                (gt[:, 1:, :, 1] >= 0) & (gt[:, 1:, :, 1] <= H - 1)).float()
    weight = known * (gt_vis + hidden_weight * (1 - gt_vis) * in_frame)
    num_known = known.sum().clamp_min(1.0)
    vis_weight = known * (gt_vis + hidden_vis_weight * (1 - gt_vis))
    num_iters = len(coords)
    coord_loss = vis_loss = conf_loss = 0.0
    for it in range(num_iters):
        w = ITER_GAMMA ** (num_iters - 1 - it)
        error = F.huber_loss(coords[it][:, 1:], gt[:, 1:], reduction="none", delta=COORD_HUBER_PX).sum(-1)
        coord_loss = coord_loss + w * (error * weight).sum() / weight.sum().clamp_min(1e-6)
        vis_loss = vis_loss + w * (F.binary_cross_entropy_with_logits(vis_logits[it][:, 1:], gt_vis, reduction="none")
                                   * vis_weight).sum() / num_known
        distance = (coords[it][:, 1:].detach() - gt[:, 1:]).norm(dim=-1)
        conf_target = gt_vis * (distance < CONF_THRESHOLD_PX).float()
        conf_loss = conf_loss + w * (F.binary_cross_entropy_with_logits(conf_logits[it][:, 1:], conf_target,
                                                                        reduction="none") * known).sum() / num_known
    total = coord_loss + 5.0 * vis_loss + 2.0 * conf_loss
    return {"total": total, "coord": coord_loss, "vis": vis_loss, "conf": conf_loss}


# -- checkpoints -------------------------------------------------------------------------------------
def export_weights(model: PointTrackPredictor, path: Path, meta: dict) -> None:
    """The file the tracker loads: {"config", "state_dict", "meta"} (weights_only-safe)."""
    save_checkpoint(path, {"config": dataclasses.asdict(model.config), "state_dict": model.state_dict(), "meta": meta})


# -- validation and pictures -------------------------------------------------------------------------
@torch.no_grad()
def validate(model, loader, iters: int) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    all_pred, all_pvis, all_init, all_gt, all_gvis, all_valid = [], [], [], [], [], []
    for batch in loader:
        coords, vis, conf, gt, _, _ = run_model(model, batch, iters)
        losses = compute_losses(coords, vis, conf, gt, batch["visibs"], batch["frames"].shape[2:4], batch["valid"],
                                batch["hidden_known"])
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(gt)
        count += len(gt)
        init = batch["init"] * gt.new_tensor([gt_size(batch)[1], gt_size(batch)[0]])
        all_pred.append(coords[-1]); all_pvis.append(torch.sigmoid(vis[-1]) > 0.5)
        all_init.append(init); all_gt.append(gt); all_gvis.append(batch["visibs"]); all_valid.append(batch["valid"])
    model.train()
    out = {f"loss_{k}" if k != "total" else "loss": v / max(count, 1) for k, v in sums.items()}
    pred, pvis, gt, gvis, valid = (torch.cat(x).numpy() for x in (all_pred, all_pvis, all_gt, all_gvis, all_valid))
    out.update(track_metrics(pred, pvis, gt, gvis, valid=valid))
    # as the tracker runs by default: corrections smaller than MIN_CORRECTION_PX keep the first guess
    gated = gate_corrections(torch.cat(all_init), torch.from_numpy(pred), MIN_CORRECTION_PX).numpy()
    out.update({f"gated_{k}": v for k, v in track_metrics(gated, pvis, gt, gvis, valid=valid).items()})
    return out


def gt_size(batch) -> tuple[int, int]:
    return tuple(batch["frames"].shape[2:4])


@torch.no_grad()
def save_visualizations(model, batch, iters: int, out_dir: Path, step: int, history: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    coords, vis, _, gt, fmaps, track_feats = run_model(model, batch, iters)
    model.train()
    frames = batch["frames"].numpy()
    pred_vis = (torch.sigmoid(vis[-1]) > 0.5).numpy()
    panels = [draw_tracks(frames[b, -1], gt[b].numpy(), batch["visibs"][b].numpy(), coords[-1][b].numpy(),
                          pred_vis[b]) for b in range(min(2, len(frames)))]
    cv2.imwrite(str(out_dir / f"predictions_{step:07d}.png"), cv2.cvtColor(np.concatenate(panels, 0), cv2.COLOR_RGB2BGR))
    # attention of the first point of the first clip on the window's middle and last frames
    heat_panels = []
    for t in (frames.shape[1] // 2, frames.shape[1] - 1):
        heat = attention_heatmap(fmaps[0, t], model.corr_proj(track_feats[0, t, :1]))[0].numpy()
        heat_panels.append(overlay_heatmap(frames[0, t], heat, gt[0, t, 0].numpy()))
    cv2.imwrite(str(out_dir / f"attention_{step:07d}.png"), cv2.cvtColor(np.concatenate(heat_panels, 1), cv2.COLOR_RGB2BGR))
    save_curves(history, out_dir)


def save_curves(history: dict, out_dir: Path) -> None:
    losses = draw_curves({"train loss": (history["train_step"], history["train_loss"]),
                          "val loss": (history["val_step"], history["val_loss"])}, "loss (log scale) vs step", log_y=True)
    metrics = draw_curves({name: (history["val_step"], history[f"val_{name}"])
                           for name in ("AJ", "delta_avg", "OA")}, "validation metrics vs step")
    cv2.imwrite(str(out_dir / "curves.png"), cv2.cvtColor(np.concatenate([losses, metrics], 0), cv2.COLOR_RGB2BGR))


# -- main --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train TrackStudio's point tracker on Point Odyssey-layout data.")
    p.add_argument("--data_root", action="append", required=True,
                   help="folder of <video>/frames/*.jpg + <video>/anno.npz (repeat to mix several)")
    p.add_argument("--root_share", type=float, nargs="+", default=None,
                   help="share of training windows drawn from each --data_root (default: by video count)")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--sequence_length", type=int, default=8)
    p.add_argument("--num_points", type=int, default=8)
    p.add_argument("--image_size", type=parse_image_size, default=(256, 256), help="N or HxW")
    p.add_argument("--num_workers", type=int, default=4)
    p.add_argument("--save_dir", default="./checkpoints")
    p.add_argument("--log_dir", default="./logs")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. checkpoints/latest.pth)")
    p.add_argument("--init", default=None,
                   help="start from these weights (exported point_tracker.pt or a training checkpoint; their model "
                        "options win) with a new optimizer and schedule: a fine-tuning stage")
    p.add_argument("--video_dirs", default=None,
                   help="comma-separated video folder names of the first --data_root (default: all)")
    p.add_argument("--backbone", choices=BACKBONES, default="efficientnet_lite0")
    p.add_argument("--no_pretrained", action="store_true", help="do not load ImageNet backbone weights")
    # options beyond the design notes' list
    p.add_argument("--iters", type=int, default=4, help="refinement iterations")
    p.add_argument("--hidden_size", type=int, default=PredictorConfig.hidden_size)
    p.add_argument("--depth", type=int, default=PredictorConfig.depth)
    p.add_argument("--samples_per_video", type=int, default=1, help="training windows per video per epoch")
    p.add_argument("--continuation_prob", type=float, default=0.0,
                   help="share of training windows that start after their points' query frame, from the "
                        "chained (maybe drifted) estimate, as the tracker's later windows do")
    p.add_argument("--max_frame_step", type=int, default=2,
                   help="training windows step 1 to this many frames (larger motion between the frames shown)")
    p.add_argument("--motion_blur", type=float, default=0.0,
                   help="share of training windows blurred along each pixel's motion (their maps are computed)")
    p.add_argument("--hidden_vis_weight", type=parse_non_negative, default=1.0,
                   help="training visibility loss weight on hidden point-frames (visible ones weigh 1; validation "
                        "always weighs both 1, so validation losses compare across runs)")
    p.add_argument("--trainable", default=None,
                   help="comma-separated parameter-name prefixes to train (e.g. vis_head,conf_head); the rest stays "
                        "as loaded (default: everything but a pretrained backbone)")
    p.add_argument("--save_every", type=int, default=100, help="steps between latest.pth saves")
    p.add_argument("--max_steps", type=int, default=0, help="stop after this many steps in total (0: no limit)")
    p.add_argument("--export", default=None, help="also write the best model in the tracker's format here")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), train, argv)


class ScalarLog:
    """Training curves: always `scalars.jsonl` in log_dir (one line per value), and TensorBoard too when
    it is installed (`pip install -e ".[train]"`), so training never fails for want of a viewer."""

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._lines = open(self.log_dir / "scalars.jsonl", "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("TensorBoard is not installed: curves go to scalars.jsonl only", flush=True)
            self._board = None
        else:
            self._board = SummaryWriter(str(self.log_dir))

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._lines.write(json.dumps({"tag": tag, "value": float(value), "step": step}) + "\n")
        if self._board is not None:
            self._board.add_scalar(tag, value, step)

    def close(self) -> None:
        self._lines.close()
        if self._board is not None:
            self._board.close()


def train(args) -> int:
    if args.max_frame_step < 1 or not 0.0 <= args.motion_blur <= 1.0:
        raise DataError(f"--max_frame_step must be at least 1 and --motion_blur between 0 and 1, got "
                        f"{args.max_frame_step} and {args.motion_blur}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    groups = list_root_videos(args.data_root, args.video_dirs)
    shares = root_shares(groups, args.root_share)
    splits = [split_by_clip(group, 0.2, args.seed) for group in groups]
    train_videos = [v for train_part, _ in splits for v in train_part]
    val_videos = [v for _, val_part in splits for v in val_part] or train_videos
    # The frozen pretrained backbone's maps are cached; a backbone that trains is run every step.
    cache = FeatureCache(args.image_size) if args.backbone == "efficientnet_lite0" and not args.no_pretrained else None
    pools = [(train_part, share) for (train_part, _), share in zip(splits, shares)] if len(groups) > 1 else None
    train_set = PointOdysseyDataset(train_videos, args.sequence_length, args.num_points, args.image_size, True,
                                    args.samples_per_video, feature_cache=cache, pools=pools,
                                    continuation_prob=args.continuation_prob, max_frame_step=args.max_frame_step,
                                    motion_blur=args.motion_blur)
    val_set = PointOdysseyDataset(val_videos, args.sequence_length, args.num_points, args.image_size, False,
                                  feature_cache=cache)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                              num_workers=args.num_workers, persistent_workers=args.num_workers > 0)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, shuffle=False, num_workers=args.num_workers)
    if len(train_loader) == 0:
        raise DataError(f"{len(train_set)} training windows are fewer than --batch_size {args.batch_size}")

    config = PredictorConfig(backbone=args.backbone, hidden_size=args.hidden_size, depth=args.depth,
                             max_window=max(16, args.sequence_length))
    init_state = None
    if args.init and not args.resume:
        init_config = torch.load(args.init, map_location="cpu", weights_only=True).get("config")
        if isinstance(init_config, dict):  # the weights' own model options
            config = PredictorConfig.from_dict(init_config)
        init_state = initial_weights(args.init)
    model = PointTrackPredictor(config, pretrained=not args.no_pretrained)
    if init_state is not None:
        model.load_state_dict(init_state, strict=True)
        print(f"initialised from {args.init}", flush=True)
    if args.trainable:  # a stage that trains only these parts (e.g. the visibility and confidence heads)
        prefixes = tuple(args.trainable.split(","))
        unknown = [prefix for prefix in prefixes if not any(n.startswith(prefix) for n, _ in model.named_parameters())]
        if unknown:
            raise ValueError(f"--trainable names no parameters: {unknown}")
        for name, param in model.named_parameters():
            param.requires_grad_(param.requires_grad and name.startswith(prefixes))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    total_steps = args.epochs * len(train_loader)
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    scheduler = warmup_cosine(optimizer, total_steps, max_warmup=200)
    save_dir = Path(args.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    history = {"train_step": [], "train_loss": [], "val_step": [], "val_loss": [],
               "val_AJ": [], "val_delta_avg": [], "val_OA": []}
    step, start_epoch, best_val = 0, 0, float("inf")
    if args.resume:
        ckpt = resume_training(args.resume, model, optimizer, scheduler)
        step, start_epoch, best_val = ckpt["step"], ckpt["epoch"], ckpt["best_val"]
        history = ckpt["history"]
        print(f"resumed from {args.resume} at step {step}, epoch {start_epoch}", flush=True)
    writer = ScalarLog(args.log_dir)
    num_params = sum(p.numel() for p in params)
    print(f"{len(train_videos)} training / {len(val_videos)} validation videos, {len(train_loader)} steps per "
          f"epoch, {total_steps} steps, {num_params / 1e6:.2f} M trainable parameters", flush=True)

    def state(epoch: int) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "epoch": epoch, "best_val": best_val,
                "history": history, "config": dataclasses.asdict(config), "args": json.dumps(vars(args), default=str)}

    vis_batch = next(iter(DataLoader(val_set, batch_size=2, shuffle=False)))
    model.train()
    started = time.time()
    running = RunningMeans()
    done = False
    for epoch in range(start_epoch, args.epochs):
        steps_left_in_epoch = len(train_loader) * (epoch + 1) - step
        for batch_idx, batch in enumerate(train_loader):
            if batch_idx >= steps_left_in_epoch:
                break
            coords, vis, conf, gt, _, _ = run_model(model, batch, args.iters)
            losses = compute_losses(coords, vis, conf, gt, batch["visibs"], batch["frames"].shape[2:4],
                                    batch["valid"], batch["hidden_known"], args.hidden_vis_weight)
            grad_norm = optimizer_step(losses, params, optimizer, scheduler)
            step += 1
            running.add(losses)
            means = running.pop(step)
            if means is not None:
                log_train_step(writer, history, step, means, scheduler, grad_norm)
                print(f"step {step} epoch {epoch} loss {means['total']:.3f} coord {means['coord']:.3f} "
                      f"vis {means['vis']:.3f} conf {means['conf']:.3f} lr {scheduler.get_last_lr()[0]:.2e} "
                      f"{(time.time() - started) / 60:.1f} min", flush=True)
            if step % args.save_every == 0:
                save_checkpoint(save_dir / "latest.pth", state(epoch))
            if args.max_steps and step >= args.max_steps:
                done = True
                break
        metrics = validate(model, val_loader, args.iters)
        for key, value in metrics.items():
            writer.add_scalar(f"val/{key}", value, step)
        history["val_step"].append(step)
        for key in ("loss", "AJ", "delta_avg", "OA"):
            history[f"val_{key}"].append(metrics[key])
        print(f"validation epoch {epoch} step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
              flush=True)
        if metrics["loss"] < best_val:
            best_val = metrics["loss"]
            save_checkpoint(save_dir / "best.pth", state(epoch + 1))
            if args.export:
                export_weights(model, Path(args.export), {"step": step, "epoch": epoch, **metrics,
                                                          "image_size": list(args.image_size)})
            print(f"new best validation loss {best_val:.4f}", flush=True)
        save_checkpoint(save_dir / "latest.pth", state(epoch + 1))
        save_visualizations(model, vis_batch, args.iters, save_dir / "visualizations", step, history)
        if done:
            break
    writer.close()
    print(f"finished: {step} steps in {(time.time() - started) / 60:.1f} min, best validation loss {best_val:.4f}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
