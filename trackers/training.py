"""What the project's training commands share (trackers/point/train.py, trackers/mask/sam2_lite/
train.py and click_train.py, trackers/box/train_head.py): the split by clip, the learning-rate
schedule, one optimisation step, the running means and per-step scalars they log, the command's
error handling, atomic checkpoint saves, and the mean of exported weights (scripts/average_weights.py)."""
from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Callable

import torch

from .checkpoints import load_state_dict_file


class DataError(ValueError):
    """Training data that does not follow its layout; the message names the file or option."""


def normalised_shares(shares: list[float], count: int, what: str) -> list[float]:
    """shares scaled to sum to 1; what names the option and its items for the error ('--root_share ... --data_root')."""
    if len(shares) != count or min(shares) < 0 or sum(shares) <= 0:
        raise DataError(f"{what} ({count}), none negative and not all 0; got {list(shares)}")
    return [float(v) / sum(shares) for v in shares]


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill mid-save leaves the previous checkpoint intact


def average_weights(paths: list[Path], out: Path, shares: list[float] | None = None) -> None:
    """Write the mean of exported weights of one network ({"config", "state_dict", "meta"}: the point tracker's,
    sam2-lite's propagation or click network's) to `out` in the same format: a weight soup, of checkpoints of one run
    or of stages trained one from another. shares: each file's weight in the mean (default equal); integer buffers are
    taken from the first; the meta keeps what all files' metas agree on (a weights version, an image size)."""
    if len(paths) < 2:
        raise ValueError("averaging needs at least two weight files")
    shares = normalised_shares([1.0] * len(paths) if shares is None else shares, len(paths),
                               "give one share per weight file")
    files = [load_state_dict_file(path) for path in paths]
    for path, file in zip(paths, files):
        if not {"config", "state_dict"} <= file.keys():
            raise ValueError(f"{path} is no exported network weights (--export of a training command)")
        if file["config"] != files[0]["config"] or file["state_dict"].keys() != files[0]["state_dict"].keys():
            raise ValueError(f"{path} is another network than {paths[0]}: only one network's weights average")
    state = {}
    for key, first in files[0]["state_dict"].items():
        if first.is_floating_point():
            state[key] = sum(share * f["state_dict"][key].double() for share, f in zip(shares, files)).to(first.dtype)
        else:
            state[key] = first
    metas = [file.get("meta", {}) for file in files]
    agreed = {key: value for key, value in metas[0].items() if all(meta.get(key) == value for meta in metas[1:])}
    save_checkpoint(out, {"config": files[0]["config"], "state_dict": state,
                          "meta": {**agreed, "averaged": metas, "shares": shares}})


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
