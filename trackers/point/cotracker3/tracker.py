"""CoTracker3 checkpoints as point `Tracker`s, walking clips as the official predictors do.

Every point prompt is a query on its frame; an object follows its latest query passed by the walk
(later prompts re-anchor it). Online: 16-frame windows moving by 8, features of the overlap re-used,
constant memory. Offline: as the official offline model, the whole walk is one window (its 60-frame
time embedding linearly interpolated to the walk's length), so memory and time grow with the clip and
no frame comes out before the whole walk is tracked.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ...base import Tracker, TrackerConfig
from ...checkpoints import CheckpointError, load_state_dict_file, resolve_checkpoint
from ...device import autocast
from ...types import FrameResult, ObjectResult, Prompt
from .model import CORR_LEVELS, CORR_RADIUS, MODEL_RESOLUTION, STRIDE, CoTracker3, TrackEstimate


@dataclass
class CoTracker3Config(TrackerConfig):
    iters: int = 6  # refinement iterations per window (the official predictors use 6)
    # visible when P(visible) (x P(confident)) exceeds the threshold: the official online predictor
    visibility_threshold: float = 0.6
    confidence_in_visibility: bool = True
    support_grid_size: int = 0  # extra grid x grid points tracked alongside the queries (context)


@dataclass
class CoTracker3OfflineConfig(CoTracker3Config):
    # the official offline predictor: P(visible) alone above 0.9, plus a 6 x 6 support grid
    visibility_threshold: float = 0.9
    confidence_in_visibility: bool = False
    support_grid_size: int = 6


@dataclass
class _Query:
    obj_id: int
    walk_pos: int  # index of its frame in the walk
    xy: np.ndarray  # (2,) video pixels


def load_official(model: CoTracker3, path) -> None:
    """Load an official plain state-dict file strictly (its tensors replace the model's, so the
    model may be built on the meta device)."""
    state = load_state_dict_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        detail = str(err).splitlines()[0][:300]
        raise CheckpointError(f"{path} is not a CoTracker3 checkpoint of this kind: {detail}") from None


def prompt_xy(prompt: Prompt) -> np.ndarray | None:
    """Where a prompt puts the point: its point, else the centre of its box or mask."""
    if prompt.point is not None:
        return prompt.point
    if prompt.box is not None:
        return np.array([(prompt.box[0] + prompt.box[2] - 1) / 2, (prompt.box[1] + prompt.box[3] - 1) / 2],
                        np.float32)
    if prompt.mask is not None and prompt.mask.any():
        ys, xs = np.nonzero(prompt.mask)
        return np.array([xs.mean(), ys.mean()], np.float32)
    return None


class CoTracker3Tracker(Tracker):
    kind = "point"
    config_cls = CoTracker3Config
    window_len: ClassVar[int]
    weights_spec: ClassVar[object]

    def __init__(self, config=None, device="cpu", checkpoint=None):
        super().__init__(config, device, checkpoint)
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            self.model = CoTracker3(self.window_len)
        load_official(self.model, resolve_checkpoint(checkpoint or self.weights_spec))
        self.model.eval().to(self.device)

    # -- propagation ---------------------------------------------------------------------------
    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        walk = list(self._frame_range(start_frame_idx, reverse, end_frame_idx))
        queries = [_Query(obj_id, pos, xy) for pos, frame_idx in enumerate(walk)
                   for obj_id, prompt in self.prompts.get(frame_idx, {}).items()
                   if prompt.visible and (xy := prompt_xy(prompt)) is not None]
        video_hw = self.frames[walk[0]].shape[:2]
        for pos, tracks in self._track_walk(walk, queries, video_hw):
            yield self._frame_result(walk[pos], pos, queries, tracks)

    @abstractmethod
    def _track_walk(self, walk: list[int], queries: list[_Query], video_hw):
        """Yield (walk position, per-query (xy (N, 2) video px, visible (N,), score (N,), heat)),
        each walk position once, in order."""

    def _frame_result(self, frame_idx: int, pos: int, queries: list[_Query], tracks) -> FrameResult:
        xy, visible, score, heat = tracks
        results: dict[int, ObjectResult] = {}
        latest: dict[int, int] = {}  # obj_id -> index of its latest query at or before pos
        for i, q in enumerate(queries):
            if q.walk_pos <= pos and (q.obj_id not in latest or queries[latest[q.obj_id]].walk_pos <= q.walk_pos):
                latest[q.obj_id] = i
        for obj_id, i in latest.items():
            if queries[i].walk_pos == pos:  # the prompt itself
                results[obj_id] = ObjectResult(point=queries[i].xy.astype(np.float32), visible=True, score=1.0,
                                               attention=None if heat is None else heat[i])
            else:
                results[obj_id] = ObjectResult(point=xy[i].astype(np.float32), visible=bool(visible[i]),
                                               score=float(score[i]), attention=None if heat is None else heat[i])
        for obj_id, prompt in self.prompts.get(frame_idx, {}).items():
            if not prompt.visible:  # the user says it is hidden here
                results[obj_id] = ObjectResult(point=prompt_xy(prompt), visible=False, score=1.0)
        return FrameResult(frame_idx, results)

    # -- shared steps --------------------------------------------------------------------------
    def _model_frames(self, frame_idxs: list[int]) -> torch.Tensor:
        """-> (T, 3, 384, 512) float [0, 255], resized like the official predictors."""
        stack = np.stack([self.frames[i] for i in frame_idxs])
        video = torch.from_numpy(stack).to(self.device).permute(0, 3, 1, 2).float()
        return F.interpolate(video, size=MODEL_RESOLUTION, mode="bilinear", align_corners=True)

    def _to_model(self, xy: np.ndarray, video_hw) -> np.ndarray:
        """Video pixels -> feature-map units."""
        h, w = video_hw
        scale = np.array([(MODEL_RESOLUTION[1] - 1) / max(w - 1, 1), (MODEL_RESOLUTION[0] - 1) / max(h - 1, 1)])
        return (np.asarray(xy, np.float64) * scale / STRIDE).astype(np.float32)

    def _to_video(self, coords: torch.Tensor, video_hw) -> np.ndarray:
        h, w = video_hw
        scale = torch.tensor([(w - 1) / (MODEL_RESOLUTION[1] - 1), (h - 1) / (MODEL_RESOLUTION[0] - 1)],
                             device=coords.device)
        return (coords.float() * STRIDE * scale).cpu().numpy()

    def _support_grid(self) -> np.ndarray:
        """(G*G, 2) feature-unit points covering the frame with a W/64 margin (official layout)."""
        g = self.config.support_grid_size
        if g <= 0:
            return np.zeros((0, 2), np.float32)
        h, w = MODEL_RESOLUTION
        margin = w / 64
        ys = np.linspace(margin, h - margin, g)
        xs = np.linspace(margin, w - margin, g)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        return (np.stack([xx, yy], -1).reshape(-1, 2) / STRIDE).astype(np.float32)

    def _outputs(self, est: TrackEstimate, video_hw, n: int, heat: list | None, frames: slice):
        """Per window frame in `frames`: (xy (n, 2), visible (n,), score (n,), heat) for the first n tracks."""
        vis = torch.sigmoid(est.vis[0, frames, :n].float())
        conf = torch.sigmoid(est.conf[0, frames, :n].float())
        score = (vis * conf).cpu().numpy()
        visible = (score if self.config.confidence_in_visibility else vis.cpu().numpy()) > self.config.visibility_threshold
        xy = self._to_video(est.coords[0, frames, :n], video_hw)
        heats = heat[frames] if heat is not None else [None] * len(score)
        return [(xy[t], visible[t], score[t], heats[t]) for t in range(len(score))]

    def _heatmaps(self, level0: torch.Tensor, centre_feats: torch.Tensor) -> list:
        """Per frame, per track: cosine similarity of the track's query feature with every
        feature-map position, clipped at 0 and scaled to [0, 1] -> list over frames of (n, h, w)."""
        sims = torch.einsum("nc,tchw->tnhw", centre_feats.float(), level0.float()).clamp(min=0)
        sims = sims / sims.flatten(2).amax(-1)[..., None, None].clamp(min=1e-6)
        return list(sims.cpu().numpy().astype(np.float32))


class CoTracker3OnlineTracker(CoTracker3Tracker):
    window_len = 16

    def _track_walk(self, walk, queries, video_hw):
        S, step = self.window_len, self.window_len // 2
        overlap = S - step
        support = self._support_grid()
        xy0 = np.concatenate([self._to_model(np.stack([q.xy for q in queries]), video_hw) if queries
                              else np.zeros((0, 2), np.float32), support])
        pos0 = np.array([q.walk_pos for q in queries] + [0] * len(support), np.int64)
        n_all, n = len(xy0), len(queries)
        if n_all == 0:
            yield from ((pos, (np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0), None)) for pos in range(len(walk)))
            return
        xy0_t = torch.from_numpy(xy0).to(self.device)
        pos_t = torch.from_numpy(pos0).to(self.device)
        patches = None  # per level (N, r2, r2, C); a query's patch is sampled when its frame arrives
        prev: TrackEstimate | None = None  # last window's estimate
        cached: tuple[int, list[torch.Tensor]] | None = None  # (first walk pos, pyramid) of last window
        num_frames = len(walk)
        starts = list(range(0, max(num_frames - step, 1), step))
        with torch.inference_mode(), autocast(self.device):
            for ind in starts:
                stop = min(ind + S, num_frames)
                pyramid = self._window_pyramid(walk, ind, stop, S, cached)
                cached = (ind, pyramid)
                new = (pos_t >= (0 if ind == 0 else ind + step)) & (pos_t < ind + S)
                if new.any():
                    idx = new.nonzero()[:, 0]
                    sampled = self.model.track_patches(pyramid, pos_t[idx] - ind, xy0_t[idx])
                    if patches is None:
                        patches = [torch.zeros((n_all,) + p.shape[1:], dtype=p.dtype, device=p.device)
                                   for p in sampled]
                    for level, p in enumerate(sampled):
                        patches[level][idx] = p.to(patches[level].dtype)
                if patches is None:  # no query has started yet
                    est = TrackEstimate(xy0_t[None, None].expand(1, S, -1, -1),
                                        xy0_t.new_zeros(1, S, n_all), xy0_t.new_zeros(1, S, n_all))
                else:
                    est = self.model.refine(pyramid, patches, self._window_init(xy0_t, pos_t, prev, ind, S, overlap),
                                            self.config.iters)
                prev = est
                last = ind == starts[-1]
                final = slice(0, (stop - ind) if last else step)
                heat = None
                if self.config.return_attention and patches is not None:
                    heat = self._heatmaps(pyramid[0][final], patches[0][:n, CORR_RADIUS, CORR_RADIUS])
                for t, out in enumerate(self._outputs(est, video_hw, n, heat, final)):
                    yield ind + t, out

    def _window_pyramid(self, walk, ind, stop, S, cached):
        """Feature pyramid of window [ind, ind + S) (padded with its last frame), re-using the
        frames it shares with the previous window."""
        reuse = 0
        if cached is not None:
            prev_ind, prev_pyr = cached
            reuse = max(0, min(prev_ind + S, stop) - ind)
        new_idxs = walk[ind + reuse: stop]
        fresh = self.model.feature_pyramid(self._model_frames(new_idxs)) if new_idxs else None
        levels = []
        for level in range(CORR_LEVELS):
            parts = []
            if reuse:
                offset = ind - cached[0]
                parts.append(cached[1][level][offset: offset + reuse])
            if fresh is not None:
                parts.append(fresh[level])
            fmaps = torch.cat(parts)
            if fmaps.shape[0] < S:  # short last window: repeat the last frame, as the official code
                fmaps = torch.cat([fmaps, fmaps[-1:].expand(S - fmaps.shape[0], -1, -1, -1)])
            levels.append(fmaps)
        return levels

    @staticmethod
    def _window_init(xy0, pos, prev: TrackEstimate | None, ind: int, S: int, overlap: int) -> TrackEstimate:
        """Start from the queries; tracks already running carry over the previous window's estimate on
        the overlapping frames (then its last overlap frame repeated)."""
        coords = xy0[None, None].expand(1, S, -1, -1).clone()
        vis = xy0.new_zeros(1, S, xy0.shape[0])
        conf = xy0.new_zeros(1, S, xy0.shape[0])
        if prev is None or ind == 0:
            return TrackEstimate(coords, vis, conf)
        step = S - overlap

        def carried(x):  # previous window frames [step, S) are this window's [0, overlap)
            part = x[:, step:S]
            return torch.cat([part, part[:, -1:].expand(-1, S - overlap, *part.shape[2:])], dim=1)

        running = (pos < ind + overlap)
        coords = torch.where(running[None, None, :, None], carried(prev.coords).to(coords.dtype), coords)
        vis = torch.where(running[None, None], carried(prev.vis).to(vis.dtype), vis)
        conf = torch.where(running[None, None], carried(prev.conf).to(conf.dtype), conf)
        return TrackEstimate(coords, vis, conf)


class CoTracker3OfflineTracker(CoTracker3Tracker):
    window_len = 60  # the length of the checkpoint's time embedding, not a limit on the clip
    config_cls = CoTracker3OfflineConfig
    feature_chunk_frames = 200  # frames through the CNN at a time (the official fmaps_chunk_size)

    def _track_walk(self, walk, queries, video_hw):
        with torch.inference_mode(), autocast(self.device):
            out = self._track_clip(walk, [q.xy for q in queries], [q.walk_pos for q in queries], video_hw)
        yield from enumerate(out)

    def _track_clip(self, frame_idxs, xys, positions, video_hw):
        """Track points xys (video px) queried at walk positions over all these frames at once."""
        n = len(xys)
        if n == 0:
            return [(np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0), None)] * len(frame_idxs)
        support = self._support_grid()
        xy0 = np.concatenate([self._to_model(np.stack(xys), video_hw), support])
        xy0_t = torch.from_numpy(xy0).to(self.device)
        pos_t = torch.tensor(positions + [0] * len(support), dtype=torch.int64, device=self.device)
        pyramid = self._clip_pyramid(frame_idxs)
        patches = self.model.track_patches(pyramid, pos_t, xy0_t)
        t = len(frame_idxs)
        init = TrackEstimate(xy0_t[None, None].expand(1, t, -1, -1), xy0_t.new_zeros(1, t, len(xy0)),
                             xy0_t.new_zeros(1, t, len(xy0)))
        est = self.model.refine(pyramid, patches, init, self.config.iters)
        heat = None
        if self.config.return_attention:
            heat = self._heatmaps(pyramid[0], patches[0][:n, CORR_RADIUS, CORR_RADIUS])
        return self._outputs(est, video_hw, n, heat, slice(0, t))

    def _clip_pyramid(self, frame_idxs: list[int]) -> list[torch.Tensor]:
        """Feature pyramid of all the frames, the CNN run on chunks of frames (every step is per
        frame, so chunks only bound the memory the CNN needs)."""
        chunk = self.feature_chunk_frames
        parts = [self.model.feature_pyramid(self._model_frames(frame_idxs[i:i + chunk]))
                 for i in range(0, len(frame_idxs), chunk)]
        return [torch.cat(levels) for levels in zip(*parts)]
