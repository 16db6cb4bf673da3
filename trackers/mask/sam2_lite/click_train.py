"""Training of sam2-lite's click-to-mask network (click_net.py) on frozen EfficientNet-Lite0 maps.

    python -m trackstudio.trackers.mask.sam2_lite.click_train --data_root ../shared/train/davis2016_train \
        --data_root ../shared/train/davis2017_lowres --cache_dir /work/cache/masktrain/features ...
    (scripts/train_click_to_mask.py is the same command)

It shares the propagation network's data and feature cache (train.py: DAVIS-layout clips, maps cached
once per clip, the same split by clip, composites through --extra_train_root). A sample is one
object on one frame, cropped around it (--crop) and flipped at random. Clicks are simulated as in
RITM / SAM: the first positive click deep inside the object (a random point among the deepest,
not always the single deepest, so the network does not learn one spot); each next click in the
largest error region at its deepest point (positive on a miss, negative on a false alarm), after the
network's own prediction for the clicks so far, which also becomes its "previous mask" input.
A share of the samples (--lookalike_prob) gets a mirrored copy of the object's features pasted
beside it that is not the object: a click must select its own instance, not every look-alike.
Per batch 0..--max_extra_clicks such rounds run without gradients (the first with them where
--first_weight adds its answer to the loss), then one with; a share of the
samples (--box_share) starts from a jittered box. Loss: BCE + Dice. Validation runs the
benchmark's protocol on frames of the validation clips: IoU after the box, and after 1 / 3 / 5
clicks placed deterministically at the deepest error point.
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

from ...alloc import tune_allocator
from ...point.train import ScalarLog
from ...point.visualize import draw_curves
from ...training import DataError, RunningMeans, log_train_step, optimizer_step, run_command, save_checkpoint
from ...types import mask_iou
from .click_net import ClickNet, ClickNetConfig, export_click_weights, prompt_maps
from .propagation_net import normalize_maps
from .train import STRIDES, ClipCache, add_run_arguments, cached_clips, dice_loss, parse_crop, start_run

CLICK_COUNTS = (1, 3, 5)
VAL_FRAMES = (0, 15, 30)  # frames of each validation clip whose objects are clicked
MIN_OBJECT_PIXELS = 400  # smaller objects are not clicked (the judge skips them too)


# -- simulated clicks ------------------------------------------------------------------------------
def next_click(pred: np.ndarray, gt: np.ndarray, rng: np.random.Generator | None = None,
               depth_share: float = 1.0) -> tuple[float, float, int]:
    """(x, y, label) of the next click: inside the larger error (miss: positive, false alarm: negative),
    at its point farthest from the region's boundary; with `rng`, a random point whose depth is at least
    `depth_share` of that farthest depth."""
    best = None
    for error, label in ((gt & ~pred, 1), (pred & ~gt, 0)):
        padded = np.pad(error, 1).astype(np.uint8)  # the frame border counts as the region's boundary
        depth = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        peak = float(depth.max())
        if best is None or peak > best[0]:
            best = (peak, depth, label)
    peak, depth, label = best
    if rng is None or peak <= 0:
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    else:
        ys, xs = np.nonzero(depth >= depth_share * peak)
        pick = int(rng.integers(len(ys)))
        y, x = ys[pick], xs[pick]
    return float(x), float(y), label


def tight_box(gt: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(gt)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def jittered_box(gt: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> np.ndarray:
    """The mask's tight box with each side moved by up to `jitter` of the box's size, as a user draws it."""
    box = tight_box(gt)
    size = np.tile([box[2] - box[0], box[3] - box[1]], 2)
    return box + rng.uniform(-jitter, jitter, 4).astype(np.float32) * size


class ClickPrompt:
    """One object's prompt as the user builds it: an optional box, the clicks so far, the last answer."""

    def __init__(self, box: np.ndarray | None = None):
        self.box = box
        self.clicks: list[tuple[float, float, int]] = []
        self.previous: torch.Tensor | None = None  # (h4, w4) probability of the last answer

    def maps(self, size4: tuple[int, int]) -> torch.Tensor:
        clicks = np.array(self.clicks, np.float32).reshape(-1, 3)
        return prompt_maps(size4, clicks[clicks[:, 2] > 0, :2], clicks[clicks[:, 2] <= 0, :2], self.box,
                           self.previous)


def run_prompts(model: ClickNet, feats: dict[int, torch.Tensor], prompts: list[ClickPrompt]) -> torch.Tensor:
    """(B, 1, h4, w4) logits for a batch of prompts on normalised maps."""
    size4 = feats[4].shape[-2:]
    return model(feats, torch.cat([p.maps(size4) for p in prompts]))


def to_pixels(logits4: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(logits4, size=size, mode="bilinear", align_corners=False)


# -- samples ---------------------------------------------------------------------------------------
class ObjectSampler:
    """Random (frame, object) crops of the cached maps with their ground truth."""

    def __init__(self, clips: list[ClipCache], crop16: tuple[int, int], seed: int,
                 extra_clips: list[ClipCache] = (), extra_share: float = 0.0, lookalike_prob: float = 0.0):
        self.real_clips, self.extra_clips = list(clips), list(extra_clips)
        self.lookalike_prob = lookalike_prob
        self.extra_share = extra_share if self.extra_clips else 0.0
        self.crop16 = crop16
        self.rng = np.random.default_rng(seed)

    def pick(self) -> tuple[ClipCache, int, np.ndarray]:
        """(clip, frame_idx, (H, W) bool ground truth) of an object large enough to click on."""
        rng = self.rng
        for _ in range(50):
            pool = self.extra_clips if rng.random() < self.extra_share else self.real_clips
            clip = pool[rng.integers(len(pool))]
            frame_idx = int(rng.integers(len(clip)))
            gt = np.asarray(clip.masks[frame_idx]) == int(rng.choice(clip.object_ids))
            if gt.sum() >= MIN_OBJECT_PIXELS:
                return clip, frame_idx, gt
        raise DataError("no clip has an object of at least 400 pixels")

    def cut(self, clip: ClipCache, frame_idx: int, gt_full: np.ndarray,
            crop16: tuple[int, int]) -> tuple[dict[int, torch.Tensor], np.ndarray]:
        """The maps and ground truth of a crop16 (cells) window around the object, flipped at random."""
        rng = self.rng
        (h16, w16), (ch, cw) = clip.size16, crop16
        ys, xs = np.nonzero(gt_full)
        cy, cx = ys.mean() / 16 + rng.normal(0, ch / 8), xs.mean() / 16 + rng.normal(0, cw / 8)
        y0 = int(np.clip(round(cy - ch / 2), 0, h16 - ch))
        x0 = int(np.clip(round(cx - cw / 2), 0, w16 - cw))
        flip = rng.random() < 0.5
        maps = {}
        for s in STRIDES:
            f = 16 // s
            crop = clip.maps[s][frame_idx, :, y0 * f:(y0 + ch) * f, x0 * f:(x0 + cw) * f]
            maps[s] = torch.from_numpy(np.array(crop[..., ::-1] if flip else crop, dtype=np.float32))
        gt = np.ascontiguousarray(gt_full[y0 * 16:(y0 + ch) * 16, x0 * 16:(x0 + cw) * 16])
        gt = np.ascontiguousarray(gt[:, ::-1]) if flip else gt
        if rng.random() < self.lookalike_prob:
            paste_look_alike(maps, gt, rng)
        return maps, gt

    def batch(self, batch_size: int) -> tuple[dict[int, torch.Tensor], list[np.ndarray]]:
        """A batch of crops of one size: --crop, or less where a picked clip is smaller."""
        picks = [self.pick() for _ in range(batch_size)]
        crop16 = (min([self.crop16[0]] + [c.size16[0] for c, _, _ in picks]),
                  min([self.crop16[1]] + [c.size16[1] for c, _, _ in picks]))
        samples = [self.cut(*pick, crop16) for pick in picks]
        for i, (_, gt) in enumerate(samples):
            while gt.sum() < 64:  # a crop that misses the object teaches nothing: cut it again
                samples[i] = self.cut(*picks[i], crop16)
                gt = samples[i][1]
        feats = {s: torch.stack([m[s] for m, _ in samples]) for s in STRIDES}
        return feats, [gt for _, gt in samples]


def paste_look_alike(maps: dict[int, torch.Tensor], gt: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Paste the object's features, mirrored, beside it (a gap of 1-3 stride-16 cells) in place: a
    look-alike that is not the object, so a click learns to select its own instance only. The ground
    truth stays the original object. Returns the copy's (H, W) pixels (whole stride-16 cells), or None
    where it does not fit in the crop."""
    h16, w16 = maps[16].shape[-2:]
    cells = gt.reshape(h16, 16, w16, 16).any((1, 3))  # stride-16 cells that hold object pixels
    rows, cols = np.nonzero(cells)
    r1, r2, c1, c2 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    gap = int(rng.integers(1, 4))
    shifts = [s for s in (c2 - c1 + gap, -(c2 - c1 + gap)) if 0 <= c1 + s and c2 + s <= w16]
    if not shifts:
        return None
    shift = shifts[int(rng.integers(len(shifts)))]
    for stride, fmap in maps.items():
        f = 16 // stride
        src = fmap[:, r1 * f:r2 * f, c1 * f:c2 * f].flip(-1)
        keep = torch.from_numpy(np.kron(cells[r1:r2, c1:c2][:, ::-1], np.ones((f, f))).astype(bool))
        dst = fmap[:, r1 * f:r2 * f, (c1 + shift) * f:(c2 + shift) * f]
        dst[:, keep] = src[:, keep]
    copy = np.zeros_like(cells)
    copy[r1:r2, c1 + shift:c2 + shift] = cells[r1:r2, c1:c2][:, ::-1]
    return np.kron(copy, np.ones((16, 16), bool)).astype(bool)


# -- one step --------------------------------------------------------------------------------------
def boundary_weights(gts: list[np.ndarray], band: float, weight: float) -> torch.Tensor:
    """(B, 1, H, W) per-pixel weights of the mask loss: 1 + `weight` within `band` pixels of an object's
    boundary (either side), so that edges and thin parts, few pixels of a mask, count for more."""
    out = np.ones((len(gts), 1) + gts[0].shape, np.float32)
    if weight <= 0:
        return torch.from_numpy(out)
    for i, gt in enumerate(gts):
        # unpadded: the crop's edge, where an object is cut, is not its boundary
        inside = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, 3)
        outside = cv2.distanceTransform((~gt.astype(bool)).astype(np.uint8), cv2.DIST_L2, 3)
        out[i, 0] += weight * (np.maximum(inside, outside) <= band)
    return torch.from_numpy(out)


def train_step(model: ClickNet, feats: dict[int, torch.Tensor], gts: list[np.ndarray], rng: np.random.Generator,
               max_extra: int, box_share: float, drop_previous: float, boundary_band: float,
               boundary_weight: float, first_weight: float = 0.0) -> tuple[dict, torch.Tensor]:
    """Simulate 0..max_extra correction rounds without gradients, then the loss of one more prediction
    (where a share `drop_previous` of the prompts forget their previous answer: clicks reloaded from a
    saved project come without it). BCE is weighed by `boundary_weights`. With `first_weight`, the answer
    to the first prompt (one click or a box) is computed with gradients too, and where rounds followed it its
    loss is added at that weight: the more rounds are simulated, the less the last answer alone asks of
    the first click (session 45: more rounds made the first click take a look-alike beside the object). Tried
    in session 48 at weight 1 with up to 7 clicks: the first click took look-alikes more often, not less."""
    feats = normalize_maps(feats)
    size = gts[0].shape
    prompts = []
    for gt in gts:
        if rng.random() < box_share:
            prompts.append(ClickPrompt(jittered_box(gt, rng)))
        else:
            prompt = ClickPrompt()
            prompt.clicks.append(next_click(np.zeros_like(gt), gt, rng, depth_share=0.5))
            prompts.append(prompt)
    target = torch.from_numpy(np.stack(gts))[:, None].float()
    weights = boundary_weights(gts, boundary_band, boundary_weight)
    rounds = int(rng.integers(0, max_extra + 1))
    first_losses = None
    for round_idx in range(rounds):
        if round_idx == 0 and first_weight > 0:
            logits4 = run_prompts(model, feats, prompts)
            pixels = to_pixels(logits4, size)
            first_losses = mask_losses(pixels, target, weights)
            logits4, pixels = logits4.detach(), pixels.detach()
        else:
            with torch.no_grad():
                logits4 = run_prompts(model, feats, prompts)
                pixels = to_pixels(logits4, size)
        preds = (pixels[:, 0] > 0).numpy()
        for prompt, pred, gt, logit in zip(prompts, preds, gts, logits4):
            prompt.clicks.append(next_click(pred, gt, rng, depth_share=0.8))
            prompt.previous = torch.sigmoid(logit[0]) if rng.random() >= drop_previous else None
    logits = to_pixels(run_prompts(model, feats, prompts), size)
    losses = mask_losses(logits, target, weights)
    losses["total"] = losses["mask_bce"] + losses["dice"]
    if first_losses is not None:  # the logged total is the objective: it holds the first answer's share
        losses["total"] = losses["total"] + first_weight * (first_losses["mask_bce"] + first_losses["dice"])
    return losses, logits.detach()


def mask_losses(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, 1, H, W) logits against targets: BCE weighed per pixel and Dice."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return {"mask_bce": (bce * weights).sum() / weights.sum(),
            "dice": dice_loss(logits, target, torch.ones(len(target)))}


# -- validation ------------------------------------------------------------------------------------
@torch.no_grad()
def validate(model: ClickNet, clips: list[ClipCache]) -> dict[str, float]:
    """Mean IoU after a box and after 1 / 3 / 5 clicks (deepest-error protocol), whole frames; and
    (not in the mean) the share of a pasted look-alike that one click on the object selects."""
    model.eval()
    scores: dict[str, list[float]] = {}
    look_alike: list[float] = []
    for clip in clips:
        for frame_idx in (f for f in VAL_FRAMES if f < len(clip)):
            raw = {s: torch.from_numpy(np.asarray(clip.maps[s][frame_idx], np.float32))[None] for s in STRIDES}
            feats = normalize_maps(raw)
            for obj_id in clip.object_ids:
                gt = np.asarray(clip.masks[frame_idx]) == obj_id
                if gt.sum() < MIN_OBJECT_PIXELS:
                    continue
                box = ClickPrompt(tight_box(gt))
                scores.setdefault("box", []).append(mask_iou(predict_mask(model, feats, box, gt.shape), gt))
                prompt, pred = ClickPrompt(), np.zeros_like(gt)
                for count in range(1, max(CLICK_COUNTS) + 1):
                    prompt.clicks.append(next_click(pred, gt))
                    pred = predict_mask(model, feats, prompt, gt.shape)
                    if count in CLICK_COUNTS:
                        scores.setdefault(f"{count} clicks", []).append(mask_iou(pred, gt))
                pasted = {s: m[0].clone() for s, m in raw.items()}
                copy = paste_look_alike(pasted, gt, np.random.default_rng(0))
                if copy is not None:
                    copy = copy[:gt.shape[0], :gt.shape[1]] & ~gt
                    first = ClickPrompt()
                    first.clicks.append(next_click(np.zeros_like(gt), gt))
                    pred = predict_mask(model, normalize_maps({s: m[None] for s, m in pasted.items()}), first, gt.shape)
                    look_alike.append(float((pred & copy).sum() / max(copy.sum(), 1)))
    model.train()
    means = {key: float(np.mean(values)) for key, values in scores.items()}
    means["mean"] = float(np.mean(list(means.values()))) if means else 0.0
    if look_alike:
        means["look-alike selected"] = float(np.mean(look_alike))
    return means


def predict_mask(model: ClickNet, feats: dict[int, torch.Tensor], prompt: ClickPrompt,
                 size: tuple[int, int]) -> np.ndarray:
    """The network's mask for `prompt`; its probability becomes the prompt's previous answer."""
    logits4 = run_prompts(model, feats, [prompt])
    prompt.previous = torch.sigmoid(logits4[0, 0])
    padded = to_pixels(logits4, tuple(4 * s for s in logits4.shape[-2:]))[0, 0]
    return (padded[:size[0], :size[1]] > 0).numpy()


def save_pictures(feats: dict[int, torch.Tensor], gts: list[np.ndarray], logits: torch.Tensor, out_dir: Path,
                  step: int, history: dict) -> None:
    """Up to four samples of the batch: ground truth (green) and prediction (red) on the stride-8 energy."""
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = []
    for i in range(min(4, len(gts))):
        energy = feats[8][i].norm(dim=0).numpy()
        energy = cv2.resize(energy / max(energy.max(), 1e-6), gts[i].shape[::-1])
        image = np.repeat((energy * 180)[..., None], 3, 2).astype(np.uint8)
        image[gts[i], 1] = 255
        image[logits[i, 0].numpy() > 0, 0] = 255
        panels.append(image)
    cv2.imwrite(str(out_dir / f"predictions_{step:07d}.png"), cv2.cvtColor(np.concatenate(panels, 1), cv2.COLOR_RGB2BGR))
    losses = draw_curves({"train loss": (history["train_step"], history["train_loss"])},
                         "training loss (log scale) vs step", log_y=True)
    metrics = draw_curves({"validation mean IoU": (history["val_step"], history["val_iou"])},
                          "validation IoU (box, 1/3/5 clicks) vs step")
    cv2.imwrite(str(out_dir / "curves.png"), cv2.cvtColor(np.concatenate([losses, metrics], 0), cv2.COLOR_RGB2BGR))


# -- main ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train sam2-lite's click-to-mask network on DAVIS-layout clips.")
    add_run_arguments(p)
    p.add_argument("--eval_only", action="store_true", help="validate the --resume / --init weights and stop")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--crop", default="320x576", help="HxW crop in internal pixels (multiples of 16)")
    p.add_argument("--max_extra_clicks", type=int, default=4, help="correction rounds simulated before the loss")
    p.add_argument("--drop_previous", type=float, default=0.2,
                   help="share of corrections made without the previous answer")
    p.add_argument("--lookalike_prob", type=float, default=0.25,
                   help="share of samples with a mirrored copy of the object pasted beside it")
    p.add_argument("--box_share", type=float, default=0.35, help="share of samples prompted with a box first")
    p.add_argument("--boundary_weight", type=float, default=0.0,
                   help="extra BCE weight on pixels within --boundary_band of an object's boundary (0: none)")
    p.add_argument("--boundary_band", type=float, default=3.0, help="that band's half width, in pixels")
    p.add_argument("--first_weight", type=float, default=0.0,
                   help="weight of the first prompt's answer in the loss where correction rounds follow it (0: none)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max_steps", type=int, default=1500)
    p.add_argument("--val_every", type=int, default=100)
    p.add_argument("--save_every", type=int, default=25)
    p.add_argument("--hidden", type=int, default=ClickNetConfig.hidden)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), train, argv)


def train(args) -> int:
    tune_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    crop16 = parse_crop(args.crop)
    train_clips, val_clips, extra, caches = cached_clips(args)
    sampler = ObjectSampler([caches[c] for c in train_clips], crop16, args.seed, [caches[c] for c in extra],
                            args.extra_share, args.lookalike_prob)
    val_caches = [caches[c] for c in val_clips]
    rng = np.random.default_rng(args.seed + 1)

    config = ClickNetConfig(hidden=args.hidden)
    model = ClickNet(config)
    optimizer, scheduler, save_dir, step, best_val, history = start_run(model, args, "val_iou")
    if args.resume:
        sampler.rng = np.random.default_rng(args.seed + step)  # new samples, not the first run's again
        rng = np.random.default_rng(args.seed + 1 + step)
    if args.eval_only:
        print("validation " + json.dumps(validate(model, val_caches)), flush=True)
        return 0
    writer = ScalarLog(args.log_dir or save_dir / "logs")
    print(f"{len(train_clips)} training (+ {len(extra)} extra) / {len(val_clips)} validation clips "
          f"(validation: {', '.join(c.name for c in val_clips)}), "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f} M parameters", flush=True)

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "best_val": best_val, "history": history,
                "config": {"hidden": config.hidden}, "args": json.dumps(vars(args), default=str)}

    model.train()
    started = time.time()
    running = RunningMeans()
    while step < args.max_steps:
        feats, gts = sampler.batch(args.batch_size)
        losses, logits = train_step(model, feats, gts, rng, args.max_extra_clicks, args.box_share,
                                    args.drop_previous, args.boundary_band, args.boundary_weight,
                                    args.first_weight)
        grad_norm = optimizer_step(losses, model.parameters(), optimizer, scheduler)
        step += 1
        running.add(losses)
        means = running.pop(step, args.max_steps)
        if means is not None:
            log_train_step(writer, history, step, means, scheduler, grad_norm)
            print(f"step {step} loss {means['total']:.3f} bce {means['mask_bce']:.3f} dice {means['dice']:.3f} "
                  f"lr {scheduler.get_last_lr()[0]:.2e} {(time.time() - started) / 60:.1f} min", flush=True)
        if step % args.save_every == 0:
            save_checkpoint(save_dir / "latest.pth", state())
        if step % args.val_every == 0 or step == args.max_steps:
            metrics = validate(model, val_caches)
            for key, value in metrics.items():
                writer.add_scalar(f"val/{key}", value, step)
            history["val_step"].append(step)
            history["val_iou"].append(metrics["mean"])
            print(f"validation step {step}: " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
            if metrics["mean"] > best_val:
                best_val = metrics["mean"]
                save_checkpoint(save_dir / "best.pth", state())
                if args.export:
                    export_click_weights(model, Path(args.export), {"step": step, "val": metrics,
                                                                    "max_side": args.max_side})
                print(f"new best validation mean IoU {best_val:.4f}", flush=True)
            save_checkpoint(save_dir / "latest.pth", state())
            save_pictures(feats, gts, logits, save_dir / "visualizations", step, history)
    writer.close()
    print(f"finished: {step} steps in {(time.time() - started) / 60:.1f} min, best validation {best_val:.4f}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
