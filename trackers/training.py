"""What the project's training commands share (trackers/point/train.py, trackers/mask/sam2_lite/
train.py and click_train.py, trackers/box/train_head.py): the split by clip, the learning-rate
schedule, one optimisation step, the running means and per-step scalars they log, and the command's
error handling."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Callable

import torch


class DataError(ValueError):
    """Training data that does not follow its layout; the message names the file or option."""


def list_davis_clips(data_roots: list[str]) -> list[Path]:
    """DAVIS-layout clips (<clip>/frames/ + <clip>/masks/) under each root, in name order."""
    clips = []
    for root in map(Path, data_roots):
        if not root.is_dir():
            raise DataError(f"--data_root {root} is not a folder")
        clips += sorted(p for p in root.iterdir() if (p / "frames").is_dir() and (p / "masks").is_dir())
    if not clips:
        raise DataError(f"no clips (<clip>/frames/ + <clip>/masks/) under {', '.join(map(str, data_roots))}")
    return clips


def initial_weights(path: str) -> dict:
    """A network's state dict from a training checkpoint ("model") or an exported weights file ("state_dict"):
    the start of a fine-tuning stage (--init)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model", state.get("state_dict")), dict):
        return state.get("model", state.get("state_dict"))
    raise DataError(f"--init {path}: neither a training checkpoint nor exported weights")


def split_by_clip(clips: list, val_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """(train, validation) from a fixed shuffle of whole clips, at least one on each side (from two clips)."""
    order = sorted(clips)
    random.Random(seed).shuffle(order)
    num_val = min(len(order) - 1, max(1, round(val_fraction * len(order)))) if len(order) > 1 else 0
    return sorted(order[num_val:]), sorted(order[:num_val])


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, max_warmup: int,
                  floor: float = 0.02) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over min(max_warmup, total_steps / 20) steps, then a cosine decay to `floor`
    times the base rate at `total_steps`."""
    warmup = min(max_warmup, max(1, total_steps // 20))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


def log_train_step(writer, history: dict, step: int, means: dict[str, float], scheduler, grad_norm) -> None:
    """The running means of one logging interval, the learning rate and the gradient norm: to the
    writer (TensorBoard or the log) and to `history` (train_step / train_loss, for the curves)."""
    for key, value in means.items():
        writer.add_scalar(f"train/{key}", value, step)
    writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
    writer.add_scalar("train/grad_norm", float(grad_norm), step)
    history["train_step"].append(step)
    history["train_loss"].append(means["total"])


def resume_training(path: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict:
    """Restore the model, optimizer and schedule of a `latest.pth` / `best.pth` (weights_only, strict);
    returns the checkpoint for the command's own counters ("step", "best_val", "history", ...)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt["model"], strict=True)
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt


def optimizer_step(losses: dict[str, torch.Tensor], params, optimizer: torch.optim.Optimizer, scheduler) -> torch.Tensor:
    """Backward on losses["total"], gradients clipped at norm 1, one optimizer and scheduler step;
    returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    scheduler.step()
    return grad_norm


class RunningMeans:
    """Loss sums between two log lines: `pop` gives their means every `every` steps and on the last."""

    def __init__(self, every: int = 10):
        self.every = every
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value.detach())
        self.count += 1

    def pop(self, step: int, last_step: int = 0) -> dict[str, float] | None:
        if not self.count or (step % self.every and step != last_step):
            return None
        means = {key: value / self.count for key, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def run_command(parser, train: Callable, argv: list[str] | None = None) -> int:
    """A training command: parse, train, and turn a DataError into one line on stderr and exit code 2."""
    args = parser.parse_args(argv)
    try:
        return train(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
