"""`sam2-lite`: SAM2's video-propagation structure, offline, on EfficientNet-Lite0 ImageNet features.

Per frame: image encoder (cached backbone maps) -> per object, the propagation network reads the
object's memory bank (its prompts + its latest tracked frames) and decodes the mask and a presence
score (trained: propagation_net.py, weights in resources/weights/sam2_lite_propagation.pt) ->
optionally fused with the DIS-flow-warped previous mask -> soft aggregation across objects -> the
memory encoder adds the frame to the bank. Prompts (masks, clicks, boxes) go through the prompt
encoder and become conditioning memories.

`propagation="readout"` is the earlier training-free path: a top-k affinity readout of the
remembered masks, a presence check (readout area + object pointer) and the readout/flow fusion.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import torch

from ...base import Tracker, TrackerConfig
from ...device import check_cpu_precision, cpu_inference_dtype
from ...registry import register
from ...types import FrameResult, ObjectResult, Prompt, mask_to_box
from .click_net import load_click_weights
from .image_encoder import EncodedFrame, ImageEncoder
from .mask_decoder import FlowPrior, MaskDecoder, fuse_with_flow
from .memory import MemoryBank, MemoryEncoder, grid_box, prob_to_grid
from .memory_attention import MemoryAttention
from .object_pointer import ObjectPointer
from .prompt_encoder import PromptEncoder, refines
from .propagation_net import normalize_maps
from .trained_propagation import ObjectBank, load_weights, memorise, predict

# objects the trained network decodes as one batch: faster than one at a time (ten objects at 432 px:
# 78 ms against 108 ms), while a batch's stride-4 decoder maps stay small
OBJECTS_PER_BATCH = 8
# a focus window (Sam2LiteConfig.focus_margin) spans at least this many internal pixels each way: the decoder's
# stride-16 blocks see a few cells of context around a small object
FOCUS_MIN_SIDE = 128
# where the backbone runs on the focus windows alone, on their span grown by this many internal pixels per side:
# the maps inside the windows then hardly feel the part's edges
FOCUS_CONTEXT = 32

_FLOW_PRESETS = {"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
_PROPAGATIONS = ("trained", "readout")
_CLICK_MODELS = ("trained", "grabcut")


@dataclass
class Sam2LiteConfig(TrackerConfig):
    max_side: int = 864  # internal resolution: frames are scaled so their long side is at most this
    # smaller frames are scaled up so their long side is this (at most max_side); 0 = never. Low-resolution
    # video gains: the 6 held-out DAVIS train clips at 320x180, J&F 0.740 at 0 (native), 0.813 at 480, 0.861
    # at 640, 0.872 at 864 (the speed of full-size frames). Off by default: on the tests' blocky two-colour
    # synthetic clips (256x176) scaled up to 640 the network loses the objects (11 tests fail)
    min_side: int = 0
    backbone_precision: str = "float32"  # "bfloat16": see EfficientNetLite0.fuse_batchnorm
    # trained: the mask decoder in "bfloat16" where the CPU has it natively (device.cpu_inference_dtype), or
    # "float32". Off by default, as the backbone's: sam2-lite meets its speed target in float32
    decoder_precision: str = "float32"
    propagation: str = "trained"  # "trained" network, or the training-free "readout"
    clicks: str = "trained"  # clicks / boxes -> mask: the "trained" click network, or feature prior + "grabcut"
    # trained clicks: look again at the object's surroundings enlarged to this long side (internal px) and
    # average both answers; 0 = off. Held-out train clips, box / 1 / 3 / 5 clicks: 0.822 / 0.740 / 0.852 /
    # 0.897 off, 0.832 / 0.746 / 0.861 / 0.898 at 480, 0.833 / 0.733 / 0.863 / 0.908 at 640 (slower)
    click_zoom_side: int = 480
    click_zoom_expansion: float = 1.4  # ...the zoomed region is the first answer's box grown by this factor
    # ...and from click_fine_zoom_from clicks on (0 = never) enlarged to click_fine_zoom_side instead. Session
    # 13, same clips, 5 clicks (the others unchanged): 0.908 at 480 throughout; 640 from the 3rd / 4th / 5th
    # click 0.909 / 0.918 / 0.913; 720 from the 4th 0.915. Mean time per prompt 97-106 -> 118-127 ms
    click_fine_zoom_side: int = 640
    click_fine_zoom_from: int = 4
    # trained clicks: guided filter snapping the answer to the frame's edges (internal px; 0 = off) and its
    # regularisation (share of the intensity range, squared). Held-out train clips with zoom-in, box / 1 / 3 /
    # 5 clicks: off 0.832 / 0.746 / 0.861 / 0.898; 2, 0.005: 0.835 / 0.747 / 0.864 / 0.901; 4, 0.02: 0.835 /
    # 0.740 / 0.860 / 0.903; 4, 0.002: 0.837 / 0.747 / 0.864 / 0.907; 8, 0.01: 0.832 / 0.753 / 0.856 / 0.899
    click_edge_radius: int = 4
    click_edge_eps: float = 0.002
    # trained clicks: the answer to a box stays within the box grown by this share of its size per side,
    # unless a positive click lies beyond (PromptEncoder.box_margin); < 0 = unbounded. Session 17, held-out
    # train clips, box alone: unbounded 0.848, 0 0.862, 0.02 0.860, 0.05 0.858 (mallard-water's ripples; a
    # flamingo's reflection and the flamingo behind it); 0.02 leaves room for a hand-drawn box that cuts an edge
    click_box_margin: float = 0.02
    flow_prior: bool = True  # fuse the DIS-flow-warped previous mask where the prediction is unsure
    # trained: recent tracked frames in each object's memory bank. Two, as trained: 0.855 against 0.845 with
    # one on the validation clips. One wins when they are played back and forth (0.830 against 0.814 over
    # 118 frames), but that walk keeps coming back to the prompt frame, which favours a bank leaning on it.
    # Session 8, stage-2 weights, same clips: 2 / 3 / 4 / 6 recent frames 0.893 / 0.909 / 0.909 / 0.910
    # (motorbike 0.755 -> 0.846 with 3); three is the cheapest of the tied
    trained_num_recent: int = 3
    min_presence: float = 0.5  # trained: the object is there when the presence head says at least this
    # readout: recent tracked frames kept in each object's memory bank. One (the previous frame) measured best on
    # the shared DAVIS clips: J&F 0.705 against 0.677 with two, 0.672 with three and 0.655 with six, since
    # every tracked memory also carries its frame's errors (benchmarks/bench_mask_quality.py)
    num_recent: int = 1
    top_k: int = 20  # memory cells each query cell reads from
    temperature: float = 0.05  # softmax temperature over cosine similarities
    search_margin: float = 0.5  # the query region is the previous mask's box grown by this x its size
    readout_trust: float = 0.5  # readout/flow mix: weight of the readout = |2 p - 1| ** this (higher: more flow)
    flow_preset: str = "medium"  # DIS optical flow preset: "fast" or "medium"
    edge_radius: int = 0  # guided-filter radius (internal px) snapping masks to edges; 0 = off (it erodes thin parts)
    edge_eps: float = 0.02  # guided-filter regularisation (fraction of the intensity range, squared)
    min_presence_area: float = 0.05  # present when the readout covers this share of the prompted area...
    min_pointer_similarity: float = 0.3  # ...and looks this much like the object pointer
    feature_cache_mb: int = 64  # backbone features kept (LRU, bounded in bytes)
    # readout: a detached blob smaller than this share of the object's largest part, away from where
    # the object was (flow-warped), is a distractor: dropped. 0 = keep every part
    stray_max_fraction: float = 0.2
    stray_margin: int = 12  # internal px around the warped previous mask where parts are still the object
    # trained: where the caller tells where an object is on the next frame (Tracker.focus, as siamfc-mask's search
    # does), its memory is read and its mask decoded only on the window around that box and the object's mask on
    # the frame before, each grown by this share of its size per side; outside, the object is absent. Where every
    # object on a frame has a window, the backbone runs on their span alone (grown by FOCUS_CONTEXT). Session 26,
    # siamfc-mask on the box selection sets (DAVIS train 30 / procedural / larger / sprites, AUC): off 0.8687 /
    # 0.7314 / 0.7062 / 0.7345, 1.0 0.8698 / 0.7314 / 0.7053 / 0.7369, 0.5 0.8712 / 0.7314 / 0.7047 / 0.7428. Around
    # the caller's box alone (not the last mask; 1.0) the mask tracker could no longer carry a target the search
    # had lost: DAVIS 0.8486 (rollerblade 0.916 -> 0.301)...
    focus_margin: float = 0.5
    # ...unless that window would cover more than this share of the frame: then the whole frame. 0 = never
    focus_max_share: float = 0.5
    # an object the mask tracker lost on the frame before is looked for in the window around the caller's box
    # alone, not on the whole frame (siamfc-mask takes the mask's parts near its box only). Session 27: the box
    # selection sets as above 0.8712 / 0.7314 / 0.7048 / 0.7428 (0.7047 on the whole frame); ten objects 3.0-3.2
    # against 1.8-2.0 frames/s (README)
    focus_lost: bool = True

    def __post_init__(self):
        if self.propagation not in _PROPAGATIONS:
            raise ValueError(f"propagation must be one of {list(_PROPAGATIONS)}, got {self.propagation!r}")
        if self.clicks not in _CLICK_MODELS:
            raise ValueError(f"clicks must be one of {list(_CLICK_MODELS)}, got {self.clicks!r}")
        if self.flow_preset not in _FLOW_PRESETS:
            raise ValueError(f"flow_preset must be one of {sorted(_FLOW_PRESETS)}, got {self.flow_preset!r}")
        if min(self.click_zoom_side, self.click_fine_zoom_side, self.click_fine_zoom_from, self.click_edge_radius) < 0 \
                or self.click_zoom_expansion < 1.0:
            raise ValueError("click_zoom_side, click_fine_zoom_side, click_fine_zoom_from and click_edge_radius must be "
                             f">= 0 (0: off) and click_zoom_expansion >= 1, got {self.click_zoom_side}, "
                             f"{self.click_fine_zoom_side}, {self.click_fine_zoom_from}, {self.click_edge_radius} and "
                             f"{self.click_zoom_expansion}")
        check_cpu_precision(self.backbone_precision)
        check_cpu_precision(self.decoder_precision, "decoder_precision")
        if self.num_recent < 1 or self.top_k < 1 or self.max_side < 32 or min(self.trained_num_recent, self.min_side) < 0:
            raise ValueError("num_recent and top_k must be >= 1, trained_num_recent and min_side >= 0, max_side >= 32")
        if self.focus_margin < 0 or not 0 <= self.focus_max_share <= 1:
            raise ValueError(f"focus_margin must be >= 0 and focus_max_share in [0, 1], got {self.focus_margin} and "
                             f"{self.focus_max_share}")


def drop_stray_parts(prob: np.ndarray, previous: np.ndarray | None, max_fraction: float, margin: int) -> np.ndarray:
    """Push below 0.5 the connected parts of `prob > 0.5` that are small next to the largest part and
    do not touch the (dilated) previous mask: what a look-alike elsewhere in the frame adds."""
    foreground = (prob > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count <= 2:  # background and at most one part
        return prob
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = areas >= max_fraction * areas.max()
    if previous is not None:
        near = cv2.dilate((previous > 0.5).astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
        keep |= np.bincount(labels[near], minlength=count)[1:] > 0
    if keep.all():
        return prob
    stray = np.isin(labels, 1 + np.flatnonzero(~keep))
    return np.where(stray, np.minimum(prob, 0.49), prob).astype(np.float32)


# (rows, columns) slices at internal pixels, on the stride-16 grid; None stands for the whole frame
Window = tuple[slice, slice]


def _groups(obj_ids: list[int], windows: dict[int, Window]) -> Iterator[tuple[list[int], Window | None]]:
    """The objects decoded together: those on the whole frame in runs of OBJECTS_PER_BATCH (the last one
    shorter), each object with a window of its own alone."""
    whole = [obj_id for obj_id in obj_ids if obj_id not in windows]
    for start in range(0, len(whole), OBJECTS_PER_BATCH):
        yield whole[start:start + OBJECTS_PER_BATCH], None
    for obj_id in obj_ids:
        if obj_id in windows:
            yield [obj_id], windows[obj_id]


def _crop(prob: np.ndarray, window: Window | None) -> np.ndarray:
    return prob if window is None else prob[window]


def _paste(prob: np.ndarray, window: Window | None, shape: tuple[int, int]) -> np.ndarray:
    """A window's (h, w) map placed in a frame-sized one, zero outside."""
    if window is None:
        return prob
    full = np.zeros(shape, np.float32)
    full[window] = prob
    return full


def _crop_maps(maps: dict[int, torch.Tensor], keys: torch.Tensor, window: Window | None, origin: tuple[int, int]):
    """An encoding's network inputs {stride: (1, C, h / stride, w / stride)} and keys (1, K, h / 16, w / 16) on a
    window of the frame; `origin`: where the encoding's top-left lies in the frame (EncodedFrame.origin)."""
    if window is None:
        return maps, keys
    rows = slice(window[0].start - origin[0], window[0].stop - origin[0])
    cols = slice(window[1].start - origin[1], window[1].stop - origin[1])

    def cut(fmap: torch.Tensor, stride: int) -> torch.Tensor:
        return fmap[..., rows.start // stride:rows.stop // stride, cols.start // stride:cols.stop // stride]

    return {stride: cut(fmap, stride) for stride, fmap in maps.items()}, cut(keys, 16)


@dataclass
class _ObjectState:
    bank: MemoryBank | ObjectBank  # readout / trained
    pointer: ObjectPointer | None  # readout only
    prob: np.ndarray | None  # (h, w) float32 on the last frame walked, None while hidden


@register("sam2-lite", kind="mask", priority=10,
          description="SAM2-style trained memory attention + mask decoder on EfficientNet-Lite0 features; "
                      "offline, no downloads")
class Sam2LiteTracker(Tracker):
    kind = "mask"
    config_cls = Sam2LiteConfig

    def __init__(self, config: Sam2LiteConfig | None = None, device="cpu", checkpoint: str | None = None):
        super().__init__(config, device, checkpoint)
        cfg = self.config
        self.image_encoder = ImageEncoder(self.device, cfg.max_side, cfg.feature_cache_mb, cfg.min_side,
                                          cfg.backbone_precision)
        self.prompt_encoder = PromptEncoder(load_click_weights() if cfg.clicks == "trained" else None,
                                            encode_image=self.image_encoder.encode_image,
                                            zoom_side=cfg.click_zoom_side, zoom_expansion=cfg.click_zoom_expansion,
                                            fine_zoom_side=cfg.click_fine_zoom_side,
                                            fine_zoom_from=cfg.click_fine_zoom_from,
                                            edge_radius=cfg.click_edge_radius, edge_eps=cfg.click_edge_eps,
                                            box_margin=cfg.click_box_margin)
        self.memory_encoder = MemoryEncoder()
        self.memory_attention = MemoryAttention(cfg.top_k, cfg.temperature)
        self.mask_decoder = MaskDecoder(cfg.readout_trust, cfg.edge_radius, cfg.edge_eps)
        # the trained network (checkpoint: another weights file than the shipped one)
        self.network = load_weights(checkpoint)[0] if cfg.propagation == "trained" else None
        self._decoder_dtype = cpu_inference_dtype(cfg.decoder_precision)  # what its decoder computes in on a CPU
        # (encoded frame, its maps, keys): shared by the objects on a frame
        self._frame_inputs: tuple[EncodedFrame, dict, torch.Tensor] | None = None
        # click and box prompts' probabilities (GrabCut is slow); a mask prompt's is recomputed
        # instead, since keeping one (h, w) float32 map per object would cost 1.6 MB each at 480p
        self._prompt_probs: dict[tuple[int, int], tuple[Prompt, np.ndarray]] = {}
        self._focus: dict[int, np.ndarray] = {}  # obj_id -> box (video px) on the next frame propagated
        self._resting: set[int] = set()  # objects left out of the next frame propagated (Tracker.rest)

    # -- prompts -----------------------------------------------------------------------------------
    def set_video(self, frames) -> None:
        if len(frames) == 0:
            raise ValueError("the video has no frames")
        self.image_encoder.set_video(frames)
        super().set_video(frames)

    def reset(self) -> None:
        super().reset()
        self._prompt_probs = {}
        self._frame_inputs = None
        self._focus = {}
        self._resting = set()

    def focus(self, boxes: dict[int, np.ndarray]) -> None:
        self._focus = {obj_id: np.asarray(box, np.float32) for obj_id, box in boxes.items()}

    def rest(self, obj_ids: set[int]) -> None:
        """A resting object is not tracked on the next frame: no result, nothing remembered, and the mask it had
        on the last frame tracked is what the network starts from next time (its memory just skips a frame)."""
        self._resting = set(obj_ids)

    def remove_prompt(self, frame_idx: int, obj_id: int) -> None:
        super().remove_prompt(frame_idx, obj_id)
        self._prompt_probs.pop((frame_idx, obj_id), None)

    def prompt_result(self, frame_idx: int, obj_id: int, prompt: Prompt) -> ObjectResult:
        prob = self._prompt_prob(frame_idx, obj_id, prompt)
        mask = self._to_video_mask(prob)
        visible = prompt.visible and bool(mask.any())
        return ObjectResult(box=mask_to_box(mask), mask=mask, visible=visible)

    def prepare_frame(self, frame_idx: int) -> None:
        self._features(frame_idx)  # encoded once, then served from the feature cache

    def _prompt_prob(self, frame_idx: int, obj_id: int, prompt: Prompt) -> np.ndarray:
        cached = self._prompt_probs.get((frame_idx, obj_id))
        if cached is not None and cached[0] is prompt:
            return cached[1]
        if prompt.mask is not None and prompt.mask.shape != self._video_shape():
            raise ValueError(f"mask prompt for object {obj_id} on frame {frame_idx} has shape "
                             f"{prompt.mask.shape}, the video is {self._video_shape()}")
        previous = cached[1] if cached is not None and refines(cached[0], prompt) else None
        prob = self.prompt_encoder(self._features(frame_idx), prompt, self._scale(), previous)
        if prompt.mask is None:  # a mask prompt's map is cheap to make again: not kept per object
            self._prompt_probs[(frame_idx, obj_id)] = (prompt, prob)
        else:
            self._prompt_probs.pop((frame_idx, obj_id), None)
        return prob

    # -- propagation -----------------------------------------------------------------------------
    def propagate(self, start_frame_idx: int, reverse: bool = False,
                  end_frame_idx: int | None = None) -> Iterator[FrameResult]:
        objects: dict[int, _ObjectState] = {}
        flow = FlowPrior(_FLOW_PRESETS[self.config.flow_preset])
        prev_gray: np.ndarray | None = None
        for frame_idx in self._frame_range(start_frame_idx, reverse, end_frame_idx):
            anchored = self.prompts.get(frame_idx, {})
            resting, self._resting = self._resting, set()
            tracked = [obj_id for obj_id in objects if obj_id not in anchored and obj_id not in resting]
            if not tracked and not anchored and objects:  # every object rests: nothing to compute on this frame
                self._focus = {}
                yield FrameResult(frame_idx, {})
                continue
            uses_flow = self.network is None or self.config.flow_prior
            focus, self._focus = self._focus, {}
            windows = {obj_id: window for obj_id in tracked if obj_id in focus
                       and (window := self._focus_window(focus[obj_id], objects[obj_id].prob)) is not None}
            region = None
            if tracked and not anchored and not uses_flow and all(obj_id in windows for obj_id in tracked):
                region = self._focus_region(list(windows.values()))
            # the backbone runs where the objects' windows are when every object on the frame has one
            features = self._features(frame_idx) if region is None else self.image_encoder.part(self.frames,
                                                                                                frame_idx, region)
            if uses_flow and prev_gray is not None and any(objects[o].prob is not None for o in tracked):
                flow.set_pair(prev_gray, features.gray)
            probs, scores, attention = {}, {}, {}
            # a few objects at a time: the trained network decodes them as one batch, and each object's map of
            # the last frame is dropped once read (about one map per object in RAM, not two)
            for batch, window in _groups(tracked, windows):
                found = self._track([objects[obj_id] for obj_id in batch], frame_idx, features, flow, window)
                for obj_id, (probs[obj_id], scores[obj_id], attention[obj_id]) in zip(batch, found):
                    objects[obj_id].prob = None
            self._separate(probs, self._prompted_pixels(frame_idx, anchored))
            for obj_id, prompt in anchored.items():
                probs[obj_id] = self._prompt_prob(frame_idx, obj_id, prompt)
                scores[obj_id] = 1.0
                attention[obj_id] = prob_to_grid(probs[obj_id], features.grid_shape)
                if obj_id in objects:  # a correction: re-anchor, forget what led astray
                    objects[obj_id].bank.recent.clear()
                else:
                    objects[obj_id] = self._join(obj_id)
            results, remembered = {}, []
            for obj_id, prob in probs.items():
                state = objects[obj_id]
                visible = bool(prob.max() > 0.5) and scores[obj_id] > 0
                state.prob = prob if visible else None
                if visible and obj_id not in anchored:
                    remembered.append(obj_id)
                results[obj_id] = self._result(prob, visible, scores[obj_id], attention[obj_id], features)
            for batch, window in _groups(remembered, windows):
                self._remember([objects[obj_id].bank for obj_id in batch], frame_idx, features,
                               [probs[obj_id] for obj_id in batch], conditioning=False, window=window)
            prev_gray = features.gray
            yield FrameResult(frame_idx, results)

    def _join(self, obj_id: int) -> _ObjectState:
        """A new object: every prompt it has, on any frame, becomes a conditioning memory."""
        cfg = self.config
        bank = ObjectBank(cfg.trained_num_recent) if self.network is not None else MemoryBank(cfg.num_recent)
        for frame_idx, prompts in sorted(self.prompts.items()):
            if obj_id in prompts:
                prob = self._prompt_prob(frame_idx, obj_id, prompts[obj_id])
                self._remember([bank], frame_idx, self._features(frame_idx), [prob], conditioning=True)
        pointer = ObjectPointer(bank.memories()) if self.network is None else None
        return _ObjectState(bank=bank, pointer=pointer, prob=None)

    def _remember(self, banks: list, frame_idx: int, features: EncodedFrame, probs: list[np.ndarray],
                  conditioning: bool, window: Window | None = None) -> None:
        """Each object's map on this frame goes into its bank (the trained network encodes them as one batch),
        the cells of `window` only where given."""
        if self.network is None:
            for bank, prob in zip(banks, probs):
                bank.add(self.memory_encoder(frame_idx, features, prob, conditioning=conditioning))
            return
        maps, keys = _crop_maps(*self._network_inputs(features), window, features.origin)
        entries = memorise(self.network, maps, [torch.from_numpy(_crop(prob, window)) for prob in probs], keys)
        for bank, entry in zip(banks, entries):
            bank.add(frame_idx, entry, conditioning)

    def _network_inputs(self, features: EncodedFrame) -> tuple[dict, torch.Tensor]:
        """The trained network's normalised maps and keys of an encoded frame, computed once for all objects."""
        if self._frame_inputs is None or self._frame_inputs[0] is not features:
            with torch.no_grad():
                maps = normalize_maps(features.maps)
                self._frame_inputs = (features, maps, self.network.keys(maps))
        return self._frame_inputs[1:]

    def _track(self, states: list[_ObjectState], frame_idx: int, features: EncodedFrame, flow: FlowPrior,
               window: Window | None):
        """[(prob (h, w), presence score, attention grid)] of some objects on this frame (windows: trained only)."""
        if self.network is not None:
            return self._track_trained(states, frame_idx, features, flow, window)
        return [self._track_readout(state, features, flow) for state in states]

    def _focus_window(self, box: np.ndarray, prob: np.ndarray | None) -> Window | None:
        """The window around a focus box (video px) and the object's mask on the frame before (`prob`, internal
        px; None where the object was lost there), each grown by Sam2LiteConfig.focus_margin; None: the whole
        frame. The mask tracker keeps following the object on its own where the caller's box went astray."""
        cfg = self.config
        last = None if prob is None else mask_to_box(prob > 0.5)
        if self.network is None or cfg.focus_max_share == 0 or (last is None and not cfg.focus_lost):
            return None
        told = box * np.tile(self._scale(), 2)  # internal px
        boxes = np.stack([told] if last is None else [told, last])  # (1 or 2, 4)
        centres, sizes = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
        halves = np.maximum((0.5 + cfg.focus_margin) * sizes, FOCUS_MIN_SIDE / 2)
        x1, y1 = (np.floor((centres - halves).min(0) / 16) * 16).astype(int)
        x2, y2 = (np.ceil((centres + halves).max(0) / 16) * 16).astype(int)
        window = self._framed(y1, x1, y2, x2)
        if window is None or min(s.stop - s.start for s in window) < FOCUS_MIN_SIDE / 2:
            return None
        return window

    def _focus_region(self, windows: list[Window]) -> Window | None:
        """The part of the frame the backbone runs on for these windows: their span grown by FOCUS_CONTEXT; None
        (the whole frame) where that covers more than focus_max_share of it."""
        return self._framed(min(rows.start for rows, _ in windows) - FOCUS_CONTEXT,
                            min(cols.start for _, cols in windows) - FOCUS_CONTEXT,
                            max(rows.stop for rows, _ in windows) + FOCUS_CONTEXT,
                            max(cols.stop for _, cols in windows) + FOCUS_CONTEXT)

    def _framed(self, y1: int, x1: int, y2: int, x2: int) -> Window | None:
        """A span at internal px clipped to the frame; None (the whole frame) where that covers more than
        focus_max_share of it."""
        height, width = self.image_encoder.internal_size(*self._video_shape())
        y1, x1, y2, x2 = max(y1, 0), max(x1, 0), min(y2, height), min(x2, width)
        if (y2 - y1) * (x2 - x1) > self.config.focus_max_share * height * width:
            return None
        return slice(int(y1), int(y2)), slice(int(x1), int(x2))

    def _track_readout(self, state: _ObjectState, features: EncodedFrame, flow: FlowPrior):
        cfg = self.config
        grid_shape = features.grid_shape
        region = None
        if state.prob is not None:
            region = grid_box(prob_to_grid(state.prob, grid_shape), cfg.search_margin, 6)
        if region is None:  # hidden or lost: search the whole frame
            region = (0, 0, *grid_shape)
        r1, c1, r2, c2 = region
        query_keys = features.keys[:, r1:r2, c1:c2].reshape(features.keys.shape[0], -1)
        readout = self.memory_attention(query_keys, state.bank.memories())
        readout_grid = np.zeros(grid_shape, np.float32)
        readout_grid[r1:r2, c1:c2] = readout.prob.reshape(r2 - r1, c2 - c1).numpy()
        found = readout.prob > 0.5
        reference = state.bank.reference_fg_cells()
        area_ok = float(found.sum()) >= max(1.0, cfg.min_presence_area * reference)
        pointer_similarity = state.pointer.score(query_keys, readout.prob * found)
        if not (area_ok and pointer_similarity >= cfg.min_pointer_similarity):
            return np.zeros(features.shape, np.float32), 0.0, readout_grid
        warped = flow.warp(state.prob) if state.prob is not None else None
        prob = self.mask_decoder(features, readout_grid, warped)
        if cfg.stray_max_fraction > 0:
            prob = drop_stray_parts(prob, warped, cfg.stray_max_fraction, cfg.stray_margin)
        score = float(readout.prob[found].mean())
        return prob, score, readout_grid

    def _track_trained(self, states: list[_ObjectState], frame_idx: int, features: EncodedFrame, flow: FlowPrior,
                       window: Window | None):
        cfg = self.config
        maps, keys = _crop_maps(*self._network_inputs(features), window, features.origin)
        previous = [None if state.prob is None else torch.from_numpy(_crop(state.prob, window)) for state in states]
        probs, presences, _ = predict(self.network, maps, [state.bank for state in states], previous, keys,
                                      self._decoder_dtype)
        h, w = features.shape
        found = []
        for state, prob_t, presence in zip(states, probs, presences.tolist()):
            prob = _paste(np.ascontiguousarray(prob_t.numpy()[:h, :w], dtype=np.float32), window, (h, w))
            attention = prob_to_grid(prob, features.grid_shape)
            if presence < cfg.min_presence:
                found.append((np.zeros((h, w), np.float32), 0.0, attention))
                continue
            # no stray-part removal here: the network already tells look-alikes apart, and dropping small
            # detached parts cost J&F on the validation clips (0.839 without, 0.833 with)
            warped = flow.warp(state.prob) if cfg.flow_prior and state.prob is not None else None
            found.append((fuse_with_flow(prob, warped, cfg.readout_trust), presence, attention))
        return found

    def _prompted_pixels(self, frame_idx: int, anchored: dict[int, Prompt]) -> np.ndarray | None:
        """(h, w) bool: where a prompt on this frame shows its object; None without prompts."""
        owned = None
        for obj_id, prompt in anchored.items():
            shown = self._prompt_prob(frame_idx, obj_id, prompt) > 0.5
            owned = shown if owned is None else np.logical_or(owned, shown, out=owned)
        return owned

    @staticmethod
    def _separate(probs: dict[int, np.ndarray], owned: np.ndarray | None) -> None:
        """Soft aggregation: each pixel goes to the most likely object, the others' probabilities there drop to at
        most 0.49; prompts own their pixels.

        Only a pixel where some map is over 0.49 can change, so the contest runs on those alone, about the objects'
        masks rather than the frame (ten maps at 864x480 with 100-px masks 17.6 -> 5.8 ms; where the masks cover the
        frame many times over, as 50 such maps do, about 12 % slower). The most likely object is found one map at a
        time (first one on ties, as np.argmax), so memory does not grow by a stack of every object's map; a map that
        loses nowhere is kept as it is."""
        if len(probs) > 1:
            ids = list(probs)
            flat = [probs[obj_id].reshape(-1) for obj_id in ids]
            contested = flat[0] > 0.49
            for values in flat[1:]:
                contested |= values > 0.49
            contested = np.flatnonzero(contested)
            best = flat[0][contested]
            winner = np.zeros(len(contested), np.int32)
            for i, values in enumerate(flat[1:], start=1):
                values = values[contested]
                winner[values > best] = i
                np.maximum(best, values, out=best)
            for i, obj_id in enumerate(ids):
                lost = contested[(winner != i) & (flat[i][contested] > 0.49)]
                if len(lost):
                    probs[obj_id] = probs[obj_id].copy()
                    probs[obj_id].reshape(-1)[lost] = np.float32(0.49)
        if owned is not None:
            for obj_id in probs:
                probs[obj_id] = np.where(owned, 0.0, probs[obj_id]).astype(np.float32)

    # -- frames and sizes --------------------------------------------------------------------------
    def _features(self, frame_idx: int) -> EncodedFrame:
        self._check_frame(frame_idx)
        return self.image_encoder(self.frames, frame_idx)

    def _video_shape(self) -> tuple[int, int]:
        return tuple(self.frames[0].shape[:2])

    def _scale(self) -> np.ndarray:
        """(2,) internal / video pixels along x and y."""
        height, width = self._video_shape()
        internal_h, internal_w = self.image_encoder.internal_size(height, width)
        return np.array([internal_w / width, internal_h / height], np.float32)

    def _to_video_mask(self, prob: np.ndarray) -> np.ndarray:
        height, width = self._video_shape()
        if prob.shape != (height, width):
            prob = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
        return prob > 0.5

    def _result(self, prob, visible, score, readout_grid, features: EncodedFrame) -> ObjectResult:
        mask = self._to_video_mask(prob) if visible else np.zeros(self._video_shape(), bool)
        visible = visible and bool(mask.any())
        attention = None
        if self.config.return_attention:
            rows, cols = (-(-s // 8) for s in features.shape)
            attention = np.clip(readout_grid[:rows, :cols], 0, 1).astype(np.float32)
        return ObjectResult(box=mask_to_box(mask), mask=mask, visible=visible,
                            score=float(np.clip(score, 0, 1)), attention=attention)
