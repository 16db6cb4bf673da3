"""Training of sam2-lite's propagation network (memory encoder, memory attention, mask decoder,
presence head) on frozen EfficientNet-Lite0 features.

    python -m trackstudio.trackers.mask.sam2_lite.train --data_root ../shared/train/davis2016_train \
        --data_root ../shared/train/davis2017_lowres --cache_dir /work/cache/masktrain ...
    (scripts/train_mask_tracker.py is the same command)

Data: DAVIS-layout clips, <data_root>/<clip>/frames/*.jpg and masks/*.png (binary 0/255, or object
ids 0..K as DAVIS-2017 palette PNGs; each id is one object). Clips are split by clip into training
and validation (a fixed shuffle, --val_fraction).

The backbone maps are computed once per clip at the tracker's internal resolution (frames scaled
so the long side is at most --max_side, as sam2-lite runs) and stored in --cache_dir as float16
(<clip>/s4.npy, s8.npy, s16.npy, masks.npy). Augmentation therefore works on the maps: a crop
(--crop, aligned to the stride-16 grid, placed around the object on the first frame), horizontal
flip, random frame step 1..--max_skip and direction, and 'absent' frames (a frame of another clip
put in the sequence with an empty mask) that teach the presence head.

A sample is --sequence_length frames: the first holds the ground-truth mask (the prompt), every
later frame is predicted from the memory bank (the prompt + the latest --num_recent predictions,
as the tracker runs) and the previous prediction, and its prediction joins the bank (detached).
Loss: BCE + Dice on the mask (at the crop's pixels), BCE on presence. AdamW with cosine decay,
`latest.pth` / `best.pth` (best validation J) with --resume, scalars.jsonl + TensorBoard when
installed, curves and prediction pictures in <save_dir>/visualizations. Validation runs the tracker's
own loop (trained_propagation.track_walk) over whole validation clips at full internal resolution.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...alloc import tune_allocator
from ...backbones import EfficientNetLite0, FeatureExtractor
from ...point.train import ScalarLog
from ...point.visualize import draw_curves
from ...training import (DataError, RunningMeans, initial_weights, list_davis_clips, log_train_step,
                         optimizer_step, resume_training, run_command, save_checkpoint, split_by_clip,
                         warmup_cosine)
from .propagation_net import PropagationNet, PropagationNetConfig, normalize_maps
from .trained_propagation import export_weights, track_walk

STRIDES = (4, 8, 16)


# -- clips and the feature cache -------------------------------------------------------------------
def list_clips(data_roots: list[str]) -> list[Path]:
    """The clips of every root; a root without clips is an error of its own (a mistyped path)."""
    return [clip for root in data_roots for clip in list_davis_clips([root])]


def read_mask(path: Path) -> np.ndarray:
    """(H, W) uint8 object ids: binary 0/255 masks become 0/1; palette PNGs keep their ids."""
    image = Image.open(path)
    mask = np.array(image if image.mode == "P" else image.convert("L"))
    return (mask > 127).astype(np.uint8) if mask.max() > 127 else mask.astype(np.uint8)


class ClipCache:
    """One clip's cached backbone maps (float16, memory-mapped) and masks at internal resolution."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.maps = {s: np.load(folder / f"s{s}.npy", mmap_mode="r") for s in STRIDES}  # (T, C, h, w)
        self.masks = np.load(folder / "masks.npy", mmap_mode="r")  # (T, H, W) object ids
        self.object_ids = json.loads((folder / "meta.json").read_text())["object_ids"]

    def __len__(self) -> int:
        return self.masks.shape[0]

    @property
    def size16(self) -> tuple[int, int]:
        return self.maps[16].shape[2:]


def build_cache(clip: Path, cache_root: Path, max_side: int, extractor_cache: dict) -> Path:
    """Compute (once) the maps of every frame of `clip`; returns its cache folder."""
    folder = cache_root / f"{clip.parent.name}__{clip.name}_{max_side}"
    if (folder / "meta.json").is_file():
        return folder
    frame_paths = sorted((clip / "frames").glob("*.jpg"))
    mask_paths = sorted((clip / "masks").glob("*.png"))
    if not frame_paths or len(mask_paths) != len(frame_paths):
        raise DataError(f"{clip}: {len(frame_paths)} frames but {len(mask_paths)} masks")
    first = cv2.imread(str(frame_paths[0]))
    scale = min(1.0, max_side / max(first.shape[:2]))
    if scale not in extractor_cache:
        backbone = EfficientNetLite0(pretrained=True, out_strides=STRIDES).fuse_batchnorm()
        extractor_cache[scale] = FeatureExtractor(scale=scale, cache_bytes=0, backbone=backbone)
    extractor = extractor_cache[scale]
    height, width = extractor.input_size(first.shape[:2])
    arrays = {s: [] for s in STRIDES}
    masks, ids = [], set()
    for frame_path, mask_path in zip(frame_paths, mask_paths):
        rgb = cv2.cvtColor(cv2.imread(str(frame_path)), cv2.COLOR_BGR2RGB)
        maps = extractor.extract(rgb).maps
        for s in STRIDES:
            arrays[s].append(maps[s][0].half().numpy())
        mask = read_mask(mask_path)
        ids |= set(np.unique(mask).tolist()) - {0}
        masks.append(cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST))
    folder.mkdir(parents=True, exist_ok=True)
    for s in STRIDES:
        np.save(folder / f"s{s}.npy", np.stack(arrays[s]))
    np.save(folder / "masks.npy", np.stack(masks))
    meta = {"clip": str(clip), "max_side": max_side, "input_hw": [height, width], "object_ids": sorted(ids),
            "frame_files": [p.name for p in frame_paths]}
    (folder / "meta.json").write_text(json.dumps(meta))  # written last: it marks a complete cache
    return folder


# -- samples ---------------------------------------------------------------------------------------
class SequenceSampler:
    """Random training sequences of cached maps (see the module docstring for the augmentation)."""

    def __init__(self, clips: list[ClipCache], sequence_length: int, max_skip: int, crop16: tuple[int, int],
                 absent_prob: float, seed: int, extra_clips: list[ClipCache] = (), extra_share: float = 0.0):
        self.real_clips = list(clips)
        self.extra_clips = list(extra_clips)
        self.extra_share = extra_share if self.extra_clips else 0.0
        self.clips = self.real_clips + self.extra_clips
        self.sequence_length = sequence_length
        self.max_skip = max_skip
        self.crop16 = crop16
        self.absent_prob = absent_prob
        self.rng = np.random.default_rng(seed)

    def batch(self, batch_size: int) -> dict:
        samples = [self.sample() for _ in range(batch_size)]
        out = {f"s{s}": torch.stack([x[f"s{s}"] for x in samples], 1) for s in STRIDES}  # (T, B, C, h, w)
        out["masks"] = torch.stack([x["masks"] for x in samples], 1)  # (T, B, 1, H, W)
        out["present"] = torch.stack([x["present"] for x in samples], 1)  # (T, B)
        return out

    def sample(self) -> dict:
        rng = self.rng
        for _ in range(20):
            pool = self.extra_clips if rng.random() < self.extra_share else self.real_clips
            clip = pool[rng.integers(len(pool))]
            obj_id = int(rng.choice(clip.object_ids))
            T = len(clip)
            skip = int(rng.integers(1, self.max_skip + 1))
            span = (self.sequence_length - 1) * skip + 1
            while span > T and skip > 1:
                skip -= 1
                span = (self.sequence_length - 1) * skip + 1
            if span > T:
                continue
            start = int(rng.integers(0, T - span + 1))
            frame_ids = np.arange(start, start + span, skip)
            if rng.random() < 0.5:
                frame_ids = frame_ids[::-1].copy()
            if (clip.masks[frame_ids[0]] == obj_id).sum() >= 64:  # the prompt must show the object
                break
        else:
            raise DataError("no clip has a sequence with the object shown on its first frame")
        h16, w16 = clip.size16
        ch, cw = min(self.crop16[0], h16), min(self.crop16[1], w16)
        ys, xs = np.nonzero(clip.masks[frame_ids[0]] == obj_id)
        cy, cx = ys.mean() / 16 + rng.normal(0, ch / 6), xs.mean() / 16 + rng.normal(0, cw / 6)
        y0 = int(np.clip(round(cy - ch / 2), 0, h16 - ch))
        x0 = int(np.clip(round(cx - cw / 2), 0, w16 - cw))
        flip = rng.random() < 0.5
        maps = {s: [] for s in STRIDES}
        masks, present = [], []
        for t, frame_idx in enumerate(frame_ids):
            source, idx, target_id = clip, int(frame_idx), obj_id
            if t > 0 and rng.random() < self.absent_prob:  # another clip's frame: the object is not there
                others = [c for c in self.clips if c is not clip and c.size16[0] >= ch and c.size16[1] >= cw]
                if others:
                    source = others[rng.integers(len(others))]
                    idx, target_id = int(rng.integers(len(source))), -1
            sy0, sx0 = (y0, x0) if source is clip else (int(rng.integers(0, source.size16[0] - ch + 1)),
                                                           int(rng.integers(0, source.size16[1] - cw + 1)))
            for s in STRIDES:
                f = 16 // s
                crop = source.maps[s][idx, :, sy0 * f:(sy0 + ch) * f, sx0 * f:(sx0 + cw) * f]
                maps[s].append(np.ascontiguousarray(crop[..., ::-1] if flip else crop))
            m = source.masks[idx, sy0 * 16:(sy0 + ch) * 16, sx0 * 16:(sx0 + cw) * 16] == target_id
            masks.append(np.ascontiguousarray(m[:, ::-1] if flip else m))
            present.append(bool(masks[-1].any()))
        out = {f"s{s}": torch.from_numpy(np.stack(maps[s])).float() for s in STRIDES}
        out["masks"] = torch.from_numpy(np.stack(masks))[:, None].float()
        out["present"] = torch.tensor(present, dtype=torch.float32)
        return out


# -- one step --------------------------------------------------------------------------------------
def dice_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Soft Dice per sample, averaged over the samples with weight 1 (frames that show the object)."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    dice = 1 - (2 * (prob * target).sum(1) + 1) / (prob.sum(1) + target.sum(1) + 1)
    return (dice * weight).sum() / weight.sum().clamp(min=1)


def run_sequence(model: PropagationNet, batch: dict, num_recent: int):
    """Predict frames 1.. of a batch of sequences; returns losses and the predicted probabilities."""
    T = batch["masks"].shape[0]
    feats = [normalize_maps({s: batch[f"s{s}"][t] for s in STRIDES}) for t in range(T)]
    size4 = feats[0][4].shape[-2:]
    gt = batch["masks"]  # (T, B, 1, H, W)
    prob4 = F.adaptive_avg_pool2d(gt[0], size4)
    prompt = model.encode_memory(feats[0], prob4)
    recent = []
    prev = prob4
    losses = {"mask_bce": 0.0, "dice": 0.0, "presence": 0.0}
    probs = [gt[0]]
    for t in range(1, T):
        logits4, presence, keys = model(feats[t], [prompt] + recent, prev)
        logits = F.interpolate(logits4, size=gt.shape[-2:], mode="bilinear", align_corners=False)
        present = batch["present"][t]
        losses["mask_bce"] = losses["mask_bce"] + F.binary_cross_entropy_with_logits(logits, gt[t])
        losses["dice"] = losses["dice"] + dice_loss(logits, gt[t], present)
        losses["presence"] = losses["presence"] + F.binary_cross_entropy_with_logits(presence, present)
        with torch.no_grad():
            shown = (torch.sigmoid(presence) > 0.5).float()[:, None, None, None]
            prob4 = torch.sigmoid(logits4) * shown
            probs.append(F.interpolate(prob4, size=gt.shape[-2:], mode="bilinear", align_corners=False))
        memory = model.encode_memory(feats[t], prob4, keys)
        recent = (recent + [memory])[-num_recent:] if num_recent else []
        prev = prob4
    losses = {k: v / (T - 1) for k, v in losses.items()}
    losses["total"] = losses["mask_bce"] + losses["dice"] + 0.5 * losses["presence"]
    return losses, torch.stack(probs)


# -- validation and pictures ---------------------------------------------------------------------
def pingpong_order(num_frames: int, passes: int) -> list[int]:
    """Frame indices of a clip played forward, backward, forward... `passes` times: (num_frames - 1) *
    passes + 1 frames. The training clips hold 40 frames; played back and forth they walk as long as the
    50-100-frame clips users track, with a ground truth on every frame (but every backward pass ends on
    the prompt frame again, which a real long clip does not)."""
    forward = list(range(num_frames))
    order = forward[:1]
    for i in range(passes):
        order += (forward if i % 2 == 0 else forward[::-1])[1:]
    return order


@torch.no_grad()
def validate(model: PropagationNet, clips: list[ClipCache], num_recent: int, max_frames: int,
             passes: int = 1) -> dict:
    """Mean J (IoU) per validation clip and object, tracked from its first frame as the tracker does,
    over the clip's first `max_frames` frames played `passes` times back and forth."""
    model.eval()
    ious = []
    for clip in clips:
        order = pingpong_order(min(len(clip), max_frames), passes)
        for obj_id in clip.object_ids:
            gt = np.asarray(clip.masks[:max(order) + 1])[order] == obj_id
            if not gt[0].any():
                continue
            feats = ({s: torch.from_numpy(np.asarray(clip.maps[s][t], np.float32))[None] for s in STRIDES}
                     for t in order)
            for t, prob in enumerate(track_walk(model, feats, torch.from_numpy(gt[0].astype(np.float32)),
                                                num_recent)):
                if t == 0:
                    continue
                pred = prob.numpy() > 0.5
                union = (pred | gt[t]).sum()
                ious.append(1.0 if union == 0 else (pred & gt[t]).sum() / union)
    model.train()
    return {"J": float(np.mean(ious)) if ious else 0.0}


def save_pictures(batch: dict, probs: torch.Tensor, out_dir: Path, step: int, history: dict) -> None:
    """The first sequence of the batch: each frame's ground truth (green) and prediction (red) on a
    grey map of its stride-8 feature energy (the frames themselves are not in the cache)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = []
    for t in range(probs.shape[0]):
        energy = batch["s8"][t, 0].norm(dim=0).numpy()
        energy = cv2.resize(energy / max(energy.max(), 1e-6), batch["masks"].shape[-1:-3:-1])
        image = np.repeat((energy * 180)[..., None], 3, 2).astype(np.uint8)
        gt = batch["masks"][t, 0, 0].numpy() > 0.5
        pred = probs[t, 0, 0].numpy() > 0.5
        image[gt, 1] = 255
        image[pred, 0] = 255
        panels.append(image)
    cv2.imwrite(str(out_dir / f"predictions_{step:07d}.png"), cv2.cvtColor(np.concatenate(panels, 1), cv2.COLOR_RGB2BGR))
    save_curves(history, out_dir)


def save_curves(history: dict, out_dir: Path) -> None:
    losses = draw_curves({"train loss": (history["train_step"], history["train_loss"])},
                         "training loss (log scale) vs step", log_y=True)
    metrics = draw_curves({"validation J": (history["val_step"], history["val_J"])}, "validation J vs step")
    cv2.imwrite(str(out_dir / "curves.png"), cv2.cvtColor(np.concatenate([losses, metrics], 0), cv2.COLOR_RGB2BGR))


# -- main ------------------------------------------------------------------------------------------
def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The data, cache and checkpoint options of the mask training commands (this one and click_train)."""
    p.add_argument("--data_root", action="append", required=True,
                   help="folder of <clip>/frames/*.jpg + <clip>/masks/*.png (repeat for several)")
    p.add_argument("--extra_train_root", action="append", default=[],
                   help="clips used for training only, never validation (e.g. composites of training clips)")
    p.add_argument("--extra_share", type=float, default=0.3, help="share of samples drawn from --extra_train_root")
    p.add_argument("--cache_dir", required=True, help="where the backbone maps of every clip are stored")
    p.add_argument("--save_dir", default="./checkpoints")
    p.add_argument("--log_dir", default=None, help="scalars.jsonl / TensorBoard (default: <save_dir>/logs)")
    p.add_argument("--resume", default=None, help="checkpoint to resume from (e.g. checkpoints/latest.pth)")
    p.add_argument("--init", default=None,
                   help="start from these weights (a training checkpoint or exported weights) with a new "
                        "optimizer and schedule: a fine-tuning stage with other settings")
    p.add_argument("--export", default=None, help="write the best model in the tracker's format here")
    p.add_argument("--max_side", type=int, default=864, help="internal resolution, as the tracker runs")
    p.add_argument("--val_fraction", type=float, default=0.2)
    p.add_argument("--split_seed", type=int, default=None,
                   help="seed of the train / validation split (default: --seed); another --seed with the same "
                        "split trains a sibling run on the same clips")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train sam2-lite's propagation network on DAVIS-layout clips.")
    add_run_arguments(p)
    p.add_argument("--eval_only", action="store_true",
                   help="print the validation J of the --resume checkpoint (with this --num_recent) and stop")
    p.add_argument("--cache_only", action="store_true", help="build the feature cache and stop")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--sequence_length", type=int, default=5)
    p.add_argument("--max_skip", type=int, default=3)
    p.add_argument("--crop", default="240x432", help="HxW crop in internal pixels (multiples of 16)")
    p.add_argument("--absent_prob", type=float, default=0.1, help="share of frames replaced by another clip's")
    p.add_argument("--num_recent", type=int, default=2, help="recent predictions kept in the memory bank")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max_steps", type=int, default=2000)
    p.add_argument("--val_every", type=int, default=200)
    p.add_argument("--val_frames", type=int, default=40, help="frames per validation clip")
    p.add_argument("--val_passes", type=int, default=1,
                   help="validation clips played this many times forward, backward, ... (drift over longer walks; "
                        "the walk returns to the prompt frame, which favours memories that lean on it)")
    p.add_argument("--save_every", type=int, default=50)
    p.add_argument("--hidden", type=int, default=PropagationNetConfig.hidden)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    return p


def parse_crop(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise DataError(f"--crop must be HxW, got {text!r}") from None
    if h % 16 or w % 16 or h < 64 or w < 64:
        raise DataError(f"--crop sides must be multiples of 16 and >= 64, got {text!r}")
    return h // 16, w // 16


def cached_clips(args) -> tuple[list[Path], list[Path], list[Path], dict[Path, ClipCache]]:
    """(training clips, validation clips, extra training clips, their caches) from --data_root,
    --extra_train_root, --val_fraction and --split_seed (or --seed); the maps of a clip are computed on its
    first use."""
    clips = list_clips(args.data_root)
    train_clips, val_clips = split_by_clip(clips, args.val_fraction,
                                           args.seed if args.split_seed is None else args.split_seed)
    extra = list_clips(args.extra_train_root) if args.extra_train_root else []
    extractors: dict = {}
    started = time.time()
    caches = {}
    for i, clip in enumerate(clips + extra):
        caches[clip] = ClipCache(build_cache(clip, Path(args.cache_dir), args.max_side, extractors))
        print(f"cached {i + 1}/{len(clips) + len(extra)} {clip.name} ({len(caches[clip])} frames) "
              f"{(time.time() - started) / 60:.1f} min", flush=True)
    return train_clips, val_clips, extra, caches


def start_run(model: torch.nn.Module, args, val_key: str):
    """The optimizer, schedule, save folder, step, best validation and history of a run of either
    mask training command: fresh, from --init weights, or restored from --resume.
    -> (optimizer, scheduler, save_dir, step, best_val, history)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    scheduler = warmup_cosine(optimizer, args.max_steps, max_warmup=100)
    save_dir = Path(args.save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    history = {"train_step": [], "train_loss": [], "val_step": [], val_key: []}
    step, best_val = 0, -1.0
    if args.resume:
        ckpt = resume_training(args.resume, model, optimizer, scheduler)
        step, best_val, history = ckpt["step"], ckpt["best_val"], ckpt["history"]
        print(f"resumed from {args.resume} at step {step}", flush=True)
    elif args.init:
        model.load_state_dict(initial_weights(args.init), strict=True)
        print(f"initialised from {args.init}", flush=True)
    return optimizer, scheduler, save_dir, step, best_val, history


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), train, argv)


def train(args) -> int:
    tune_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    crop16 = parse_crop(args.crop)
    train_clips, val_clips, extra, caches = cached_clips(args)
    if args.cache_only:
        return 0
    sampler = SequenceSampler([caches[c] for c in train_clips], args.sequence_length, args.max_skip, crop16,
                              args.absent_prob, args.seed, [caches[c] for c in extra], args.extra_share)
    val_caches = [caches[c] for c in val_clips]

    config = PropagationNetConfig(hidden=args.hidden)
    model = PropagationNet(config)
    optimizer, scheduler, save_dir, step, best_val, history = start_run(model, args, "val_J")
    if args.resume:
        sampler.rng = np.random.default_rng(args.seed + step)  # new sequences, not the first run's again
    if args.eval_only:
        print(f"validation J {validate(model, val_caches, args.num_recent, args.val_frames, args.val_passes)['J']:.4f} "
              f"(num_recent {args.num_recent}, {args.val_frames} frames per clip, {args.val_passes} passes)", flush=True)
        return 0
    writer = ScalarLog(args.log_dir or save_dir / "logs")
    num_params = sum(p.numel() for p in model.parameters())
    print(f"{len(train_clips)} training (+ {len(extra)} extra) / {len(val_clips)} validation clips "
          f"(validation: {', '.join(c.name for c in val_clips)}), {num_params / 1e6:.3f} M parameters", flush=True)

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "best_val": best_val, "history": history,
                "config": dataclasses.asdict(config), "args": json.dumps(vars(args), default=str)}

    model.train()
    started = time.time()
    running = RunningMeans()
    while step < args.max_steps:
        batch = sampler.batch(args.batch_size)
        losses, probs = run_sequence(model, batch, args.num_recent)
        grad_norm = optimizer_step(losses, model.parameters(), optimizer, scheduler)
        step += 1
        running.add(losses)
        means = running.pop(step, args.max_steps)
        if means is not None:
            log_train_step(writer, history, step, means, scheduler, grad_norm)
            print(f"step {step} loss {means['total']:.3f} bce {means['mask_bce']:.3f} dice {means['dice']:.3f} "
                  f"presence {means['presence']:.3f} lr {scheduler.get_last_lr()[0]:.2e} "
                  f"{(time.time() - started) / 60:.1f} min", flush=True)
        if step % args.save_every == 0:
            save_checkpoint(save_dir / "latest.pth", state())
        if step % args.val_every == 0 or step == args.max_steps:
            metrics = validate(model, val_caches, args.num_recent, args.val_frames, args.val_passes)
            writer.add_scalar("val/J", metrics["J"], step)
            history["val_step"].append(step)
            history["val_J"].append(metrics["J"])
            print(f"validation step {step}: J {metrics['J']:.4f}", flush=True)
            if metrics["J"] > best_val:
                best_val = metrics["J"]
                save_checkpoint(save_dir / "best.pth", state())
                if args.export:
                    export_weights(model, Path(args.export), {"step": step, "val_J": best_val,
                                                              "max_side": args.max_side,
                                                              "num_recent": args.num_recent})
                print(f"new best validation J {best_val:.4f}", flush=True)
            save_checkpoint(save_dir / "latest.pth", state())
            save_pictures(batch, probs.detach(), save_dir / "visualizations", step, history)
    writer.close()
    print(f"finished: {step} steps in {(time.time() - started) / 60:.1f} min, best validation J {best_val:.4f}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
