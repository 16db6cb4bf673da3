"""Training of the box refinement + presence head (refine_head.py) on clips with object masks.

    python -m trackstudio.trackers.box.train_head --data_root ../shared/train/davis2016_train \
        --cache_dir /work/cache/boxhead --save_dir /work/cache/boxhead/run1 --export resources/weights/box_head.pt
    (scripts/train_box_head.py is the same command)

Data: <data_root>/<clip>/frames/*.jpg and masks/*.png (any non-zero pixel is the target; its tight
box is the ground truth; an empty mask: the target is absent). Clips are split 80/20 into training
and validation by a fixed shuffle (`split_clips`, which the tracker comparison on held-out clips uses
too).

Cache: the frozen backbone's maps (strides 8 / 16 / 32) of CROPS_PER_FRAME SiamFC search crops per
frame (or every --cache_frame_step-th frame) are computed once into --cache_dir (float16 .npy files per clip): two around the target
(jittered centre and scale, as the Siamese search leaves them) and one pushed away so that the
target sits at or past its border (or out of it): the crops where the target has left the view.

A sample: a template (the target in a crop of one frame, which makes the query), a current frame
and the num_frames - 1 frames before it with a random frame step (1-3) in a random direction, the
past crops resampled into the current crop. The first box is the true box jittered (centre by
0.15 of its size, log-size by 0.2), or for a pushed-away crop a box of the target's size at a
random place. Negatives for the presence loss: the target out of the crop (less than half of it
inside) or the first box off it (IoU < 0.1), and templates from another clip (a distractor
replacing the target); --absent_share draws that share of samples on frames where the target is
gone (covered or out of view), the first box then half the time where it was nearest seen, as the
tracker's proposal stays on whatever covers it. Loss per iteration (later iterations weigh more): L1 on the box corners
in units of the true size + GIoU, on positives; BCE on presence; L1 on the predicted IoU.
AdamW, cosine learning rate with warm-up, gradient clipping, `latest.pth` every --save_every
steps and `best.pth` on the lowest validation loss, --resume, scalars.jsonl (+ TensorBoard when
installed) and curves.png in --save_dir.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..backbones import EfficientNetLite0, normalize_rgb
from ..point.train import ScalarLog
from ..point.visualize import draw_curves
from ..training import (DataError, RunningMeans, list_davis_clips, log_train_step, optimizer_step,
                        resume_training, run_command, save_checkpoint, split_by_clip, warmup_cosine)
from ..types import box_iou
from .crops import crop_square
from .refine_head import BoxRefineHead, RefineHeadConfig, align_to_crop, save_head
from .siamfc import search_side

CROP_SIZE = 256
CROPS_PER_FRAME = 3  # two around the target, one pushed away
STRIDES = (8, 16, 32)
POSITIVE_MIN_INSIDE = 0.5  # share of the true box inside the crop for the target to count as there
POSITIVE_MIN_IOU = 0.1  # first box overlap with the true box for the target to count as found
ITER_GAMMA = 0.8


list_clips = list_davis_clips  # every clip under the roots (the held-out tracker comparison lists them too)


def split_clips(clips: list[Path], seed: int = 0) -> tuple[list[Path], list[Path]]:
    """80/20 train/validation split by clip (the held-out comparison of trackers uses it too)."""
    return split_by_clip(clips, 0.2, seed)


def limit_per_root(clips: list[Path], roots: list[str], limits: list[int] | None) -> list[Path]:
    """The first limits[i] clips (by name) under roots[i]; 0 or no limit: all."""
    if not limits:
        return clips
    if len(limits) != len(roots):
        raise DataError(f"give one limit per --data_root ({len(roots)}), got {len(limits)}")
    kept = []
    for root, limit in zip(roots, limits):
        under = sorted(c for c in clips if c.parent == Path(root))
        kept += under[:limit] if limit > 0 else under
    return kept


def clip_boxes(clip: Path) -> np.ndarray:
    """(T, 4) tight boxes [x1, y1, x2, y2] of the masks' foreground; NaN where the mask is empty."""
    masks = sorted((clip / "masks").glob("*.png"))
    boxes = np.full((len(masks), 4), np.nan, np.float32)
    for t, path in enumerate(masks):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise DataError(f"cannot read mask {path}")
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[t] = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    return boxes


def crop_geometries(boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(T, K, 3) crop centre x, y (continuous frame coordinates) and side per frame."""
    geoms = np.zeros((len(boxes), CROPS_PER_FRAME, 3), np.float32)
    last = boxes[np.flatnonzero(~np.isnan(boxes[:, 0]))[0]]
    for t, box in enumerate(boxes):
        if not np.isnan(box[0]):
            last = box
        size = last[2:] - last[:2]
        center = (last[:2] + last[2:]) / 2
        side = search_side(size)
        for k in range(CROPS_PER_FRAME):
            scaled = side * np.exp(rng.normal(0, 0.12))
            if k < CROPS_PER_FRAME - 1:
                shift = rng.normal(0, 0.08 * (k + 1), 2) * scaled
            else:  # pushed away: the target at the border or outside
                angle = rng.uniform(0, 2 * np.pi)
                shift = np.array([np.cos(angle), np.sin(angle)]) * scaled * rng.uniform(0.45, 0.9)
            geoms[t, k] = [*(center + shift), scaled]
    return geoms


def build_cache(clip: Path, cache_dir: Path, backbone: EfficientNetLite0, seed: int, frame_step: int = 1) -> Path:
    """Backbone maps of the crops of every frame_step-th frame, written once:
    <cache_dir>/<clip>/s{8,16,32}.npy (T, K, C, H, W) float16, geoms.npy (T, K, 3), boxes.npy (T, 4)."""
    out = cache_dir / clip.name
    if (out / "done").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    frames = sorted((clip / "frames").glob("*.jpg"))
    boxes = clip_boxes(clip)
    if len(frames) != len(boxes):
        raise DataError(f"{clip}: {len(frames)} frames but {len(boxes)} masks")
    frames, boxes = frames[::frame_step], boxes[::frame_step]
    rng = np.random.default_rng([seed, sum(map(ord, clip.name))])
    geoms = crop_geometries(boxes, rng)
    arrays = None
    for t, path in enumerate(frames):
        frame = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        border = frame.reshape(-1, 3).mean(0)
        # crop_square centres on pixel-index coordinates: continuous minus 0.5
        crops = np.stack([crop_square(frame, g[:2] - 0.5, g[2], CROP_SIZE, border) for g in geoms[t]])
        with torch.inference_mode():
            maps = backbone(normalize_rgb(crops))
        if arrays is None:
            arrays = {s: np.lib.format.open_memmap(out / f"s{s}.npy", "w+", np.float16,
                                                   (len(frames), *maps[s].shape)) for s in STRIDES}
        for s in STRIDES:
            arrays[s][t] = maps[s].numpy().astype(np.float16)
    for array in arrays.values():
        array.flush()
    np.save(out / "geoms.npy", geoms)
    np.save(out / "boxes.npy", boxes)
    (out / "done").write_text("ok\n")
    return out


def to_crop(boxes: np.ndarray, geom: np.ndarray) -> np.ndarray:
    """Frame boxes (..., 4) -> continuous coordinates of a crop (centre x, y, side)."""
    scale = CROP_SIZE / geom[..., 2:3]
    origin = geom[..., :2] - geom[..., 2:3] / 2
    return (boxes - np.concatenate([origin, origin], -1)) * scale


class CachedClips:
    """Samples drawn from cached crop maps (see the module docstring)."""

    def __init__(self, cache_paths: list[Path], num_frames: int, seed: int, absent_share: float = 0.0):
        self.absent_share = absent_share  # share of samples whose current frame is one where the target is gone
        self.clips = []
        for path in cache_paths:
            maps = [np.load(path / f"s{s}.npy", mmap_mode="r") for s in STRIDES]
            self.clips.append((maps, np.load(path / "geoms.npy"), np.load(path / "boxes.npy")))
        self.num_frames = num_frames
        self.rng = np.random.default_rng(seed)

    def _maps(self, clip: int, t: int, k: int) -> list[np.ndarray]:
        return [np.asarray(m[t, k], np.float32) for m in self.clips[clip][0]]

    def sample(self) -> dict:
        rng = self.rng
        clip = int(rng.integers(len(self.clips)))
        _, geoms, boxes = self.clips[clip]
        present = np.flatnonzero(~np.isnan(boxes[:, 0]))
        # template: the target in a crop around it on one of its frames
        distractor = len(self.clips) > 1 and rng.random() < 0.15
        t_clip = int(rng.choice([c for c in range(len(self.clips)) if c != clip])) if distractor else clip
        t_boxes, t_geoms = self.clips[t_clip][2], self.clips[t_clip][1]
        t0 = int(rng.choice(np.flatnonzero(~np.isnan(t_boxes[:, 0]))))
        template_maps = self._maps(t_clip, t0, 0)
        template_box = to_crop(t_boxes[t0], t_geoms[t0, 0])
        # current frame and the ones before it (either direction in time)
        absent = np.flatnonzero(np.isnan(boxes[:, 0]))
        if len(absent) and rng.random() < self.absent_share:  # covered or out of view: presence negatives
            t = int(rng.choice(absent))
        else:
            t = int(rng.choice(present)) if rng.random() < 0.9 else int(rng.integers(len(boxes)))
        step = int(rng.integers(1, 4)) * (1 if rng.random() < 0.5 else -1)
        times = [int(np.clip(t - i * step, 0, len(boxes) - 1)) for i in range(self.num_frames)]
        k = int(rng.choice(CROPS_PER_FRAME, p=[0.4, 0.3, 0.3]))
        geom = geoms[t, k]
        crops = [(t, k)] + [(tp, int(rng.integers(2))) for tp in times[1:]]
        maps = [self._maps(clip, tp, kp) for tp, kp in crops]
        past_geoms = np.stack([geoms[tp, kp] for tp, kp in crops])
        true = to_crop(boxes[t], geom) if not np.isnan(boxes[t, 0]) else None
        start = self._start_box(true, to_crop(boxes[present[np.argmin(np.abs(present - t))]], geom), k)
        inside = 0.0
        if true is not None:
            clipped = np.clip(true, 0, CROP_SIZE)
            inside = np.prod(clipped[2:] - clipped[:2]) / max(np.prod(true[2:] - true[:2]), 1e-6)
        positive = (not distractor and true is not None and inside >= POSITIVE_MIN_INSIDE
                    and box_iou(start, true) >= POSITIVE_MIN_IOU)
        return {"template_maps": template_maps, "template_box": template_box.astype(np.float32),
                "maps": maps, "geoms": past_geoms, "start": start.astype(np.float32),
                "true": (true if true is not None else start).astype(np.float32), "present": float(positive)}

    def _start_box(self, true: np.ndarray | None, last: np.ndarray, k: int) -> np.ndarray:
        """The first box: the true box jittered, or (pushed-away crop, or target absent) a box of the
        target's nearest seen size somewhere in the crop or (target absent) where it was nearest seen."""
        rng = self.rng
        ref = true if true is not None else last
        size = ref[2:] - ref[:2]
        # a gone target: half the time where it was last seen, as the tracker's proposal stays there
        # (on whatever covers it); otherwise anywhere
        if (true is None and rng.random() < 0.5) or (k == CROPS_PER_FRAME - 1 and rng.random() < 0.5):
            center = rng.uniform(0.2, 0.8, 2) * CROP_SIZE
        else:
            center = (ref[:2] + ref[2:]) / 2 + rng.normal(0, 0.15, 2) * size
        size = size * np.exp(rng.normal(0, 0.2, 2))
        return np.concatenate([center - size / 2, center + size / 2])

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        samples = [self.sample() for _ in range(size)]
        num_levels = len(STRIDES)
        template_maps = [torch.from_numpy(np.stack([s["template_maps"][i] for s in samples])) for i in range(num_levels)]
        current = torch.from_numpy(np.stack([s["geoms"][0] for s in samples]))
        frames = []
        for f in range(self.num_frames):
            level_maps = [torch.from_numpy(np.stack([s["maps"][f][i] for s in samples])) for i in range(num_levels)]
            if f > 0:
                past = torch.from_numpy(np.stack([s["geoms"][f] for s in samples]))
                level_maps = align_to_crop(level_maps, past, current)
            frames.append(level_maps)
        maps = [torch.stack([frames[f][i] for f in range(self.num_frames)], dim=1) for i in range(num_levels)]
        return {"template_maps": template_maps,
                "template_box": torch.from_numpy(np.stack([s["template_box"] for s in samples])),
                "maps": maps, "start": torch.from_numpy(np.stack([s["start"] for s in samples])),
                "true": torch.from_numpy(np.stack([s["true"] for s in samples])),
                "present": torch.tensor([s["present"] for s in samples])}


def giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of (N, 4) box pairs."""
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    union = area_a + area_b - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    iou = inter / union.clamp(min=1e-6)
    return iou - (hull - union) / hull.clamp(min=1e-6), iou


def run_head(model: BoxRefineHead, batch: dict) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    query, cells = model.template(batch["template_maps"], batch["template_box"])
    return model(query, cells, batch["maps"], batch["start"])


def compute_losses(stages, presence_logit, iou_pred, batch) -> dict[str, torch.Tensor]:
    true, present = batch["true"], batch["present"]
    scale = (true[:, 2:] - true[:, :2]).clamp(min=1.0).repeat(1, 2)
    weight = present / present.sum().clamp(min=1.0)
    box_loss = true.new_zeros(())
    for i, boxes in enumerate(stages):
        stage_weight = ITER_GAMMA ** (len(stages) - 1 - i)
        l1 = ((boxes - true).abs() / scale).mean(1)
        g, _ = giou(boxes, true)
        box_loss = box_loss + stage_weight * ((l1 + (1 - g)) * weight).sum()
    _, iou = giou(stages[-1].detach(), true)
    iou_target = iou * present
    presence = F.binary_cross_entropy_with_logits(presence_logit, present)
    iou_loss = (iou_pred - iou_target).abs().mean()
    return {"total": box_loss + presence + iou_loss, "box": box_loss, "presence": presence, "iou": iou_loss,
            "final_iou": (iou * weight).sum()}


@torch.no_grad()
def validate(model: BoxRefineHead, batches: list[dict]) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    start_iou, correct, count = 0.0, 0.0, 0
    for batch in batches:
        stages, logit, iou_pred = run_head(model, batch)
        losses = compute_losses(stages, logit, iou_pred, batch)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        weight = batch["present"] / batch["present"].sum().clamp(min=1.0)
        start_iou += float((giou(batch["start"], batch["true"])[1] * weight).sum())
        correct += float(((logit > 0).float() == batch["present"]).float().sum())
        count += len(logit)
    model.train()
    out = {("loss" if k == "total" else f"loss_{k}"): v / len(batches) for k, v in sums.items()}
    out["final_iou"] = out.pop("loss_final_iou")
    out["start_iou"] = start_iou / len(batches)
    out["presence_accuracy"] = correct / max(count, 1)
    return out


def save_curves(history: dict, out_dir: Path) -> None:
    losses = draw_curves({"train loss": (history["train_step"], history["train_loss"]),
                          "val loss": (history["val_step"], history["val_loss"])}, "loss (log scale) vs step", log_y=True)
    metrics = draw_curves({name: (history["val_step"], history[f"val_{name}"])
                           for name in ("final_iou", "start_iou", "presence_accuracy")}, "validation vs step")
    cv2.imwrite(str(out_dir / "curves.png"), cv2.cvtColor(np.concatenate([losses, metrics], 0), cv2.COLOR_RGB2BGR))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train TrackStudio's box refinement + presence head.")
    p.add_argument("--data_root", action="append", required=True, help="folder of <clip>/frames + <clip>/masks")
    p.add_argument("--cache_dir", required=True, help="where the backbone maps of the crops are cached")
    p.add_argument("--save_dir", required=True)
    p.add_argument("--cache_frame_step", type=int, default=1,
                   help="cache every n-th frame only (cheaper; sampled frame steps then count cached frames)")
    p.add_argument("--max_train_clips", type=int, action="append",
                   help="per --data_root (same order): use at most this many of its training clips (0: all)")
    p.add_argument("--max_val_clips", type=int, action="append",
                   help="per --data_root: validate on at most this many of its validation clips (0: all)")
    p.add_argument("--export", default=None, help="also write the best head in the tracker's format here")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. save_dir/latest.pth)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--val_every", type=int, default=200)
    p.add_argument("--val_batches", type=int, default=16)
    p.add_argument("--save_every", type=int, default=50, help="steps between latest.pth saves")
    p.add_argument("--absent_share", type=float, default=0.0,
                   help="share of samples drawn on frames where the target is absent (clips that have such frames)")
    p.add_argument("--iters", type=int, default=RefineHeadConfig.iters)
    p.add_argument("--num_frames", type=int, default=RefineHeadConfig.num_frames)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def train(args) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    clips = list_clips(args.data_root)
    train_clips, val_clips = split_clips(clips, args.seed)
    # the split is over every clip; limits only leave some out (of training / validation)
    train_clips = limit_per_root(train_clips, args.data_root, args.max_train_clips)
    val_clips = limit_per_root(val_clips, args.data_root, args.max_val_clips)
    print(f"{len(train_clips)} training clips, {len(val_clips)} validation clips: "
          f"{', '.join(c.name for c in val_clips)}", flush=True)
    cache_dir = Path(args.cache_dir)
    backbone = EfficientNetLite0(out_strides=STRIDES).fuse_batchnorm()
    started = time.time()
    paths = {}
    for i, clip in enumerate(train_clips + val_clips):
        paths[clip] = build_cache(clip, cache_dir / "features", backbone, args.seed, args.cache_frame_step)
        print(f"cached {i + 1}/{len(train_clips) + len(val_clips)} {clip.name} ({(time.time() - started) / 60:.1f} min)", flush=True)
    del backbone
    train_data = CachedClips([paths[c] for c in train_clips], args.num_frames, args.seed, args.absent_share)
    val_data = CachedClips([paths[c] for c in val_clips], args.num_frames, args.seed + 1)
    val_batches = [val_data.batch(args.batch_size) for _ in range(args.val_batches)]  # fixed

    config = RefineHeadConfig(iters=args.iters, num_frames=args.num_frames)
    model = BoxRefineHead(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = warmup_cosine(optimizer, args.max_steps, max_warmup=100)
    save_dir = Path(args.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    history = {key: [] for key in ("train_step", "train_loss", "val_step", "val_loss", "val_final_iou",
                                   "val_start_iou", "val_presence_accuracy")}
    step, best_val = 0, float("inf")
    if args.resume:
        ckpt = resume_training(args.resume, model, optimizer, scheduler)
        step, best_val, history = ckpt["step"], ckpt["best_val"], ckpt["history"]
        train_data.rng = np.random.default_rng([args.seed, step])  # new samples after a resume
        print(f"resumed from {args.resume} at step {step}", flush=True)
    writer = ScalarLog(save_dir / "logs")
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f} M trainable parameters, {args.max_steps} steps",
          flush=True)

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "best_val": best_val, "history": history, "args": json.dumps(vars(args), default=str)}

    model.train()
    running = RunningMeans()
    started = time.time()
    while step < args.max_steps:
        batch = train_data.batch(args.batch_size)
        stages, logit, iou_pred = run_head(model, batch)
        losses = compute_losses(stages, logit, iou_pred, batch)
        grad_norm = optimizer_step(losses, model.parameters(), optimizer, scheduler)
        step += 1
        running.add(losses)
        means = running.pop(step)
        if means is not None:
            log_train_step(writer, history, step, means, scheduler, grad_norm)
            print(f"step {step} loss {means['total']:.3f} box {means['box']:.3f} presence {means['presence']:.3f} "
                  f"iou {means['iou']:.3f} final_iou {means['final_iou']:.3f} lr {scheduler.get_last_lr()[0]:.2e} "
                  f"{(time.time() - started) / 60:.1f} min", flush=True)
        if step % args.save_every == 0:
            save_checkpoint(save_dir / "latest.pth", state())
        if step % args.val_every == 0 or step == args.max_steps:
            metrics = validate(model, val_batches)
            for key, value in metrics.items():
                writer.add_scalar(f"val/{key}", value, step)
            history["val_step"].append(step)
            for key in ("loss", "final_iou", "start_iou", "presence_accuracy"):
                history[f"val_{key}"].append(metrics[key])
            print(f"validation step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
            if metrics["loss"] < best_val:
                best_val = metrics["loss"]
                save_checkpoint(save_dir / "best.pth", state())
                if args.export:
                    save_head(model, args.export, {"step": step, **metrics,
                                                   "validation_clips": [c.name for c in val_clips]})
                print(f"new best validation loss {best_val:.4f}", flush=True)
            save_checkpoint(save_dir / "latest.pth", state())
            save_curves(history, save_dir)
    writer.close()
    print(f"finished: {step} steps in {(time.time() - started) / 60:.1f} min, best validation loss {best_val:.4f}",
          flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), train, argv)


if __name__ == "__main__":
    sys.exit(main())
