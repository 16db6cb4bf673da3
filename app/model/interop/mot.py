"""MOT Challenge ground truth: `gt.txt`, one CSV line per object and frame.

`frame, id, bb_left, bb_top, bb_width, bb_height, conf, class, visibility` with 1-based frames
and 1-based pixel coordinates (MOT16/17 layout; the top-left pixel is (1, 1)). Box objects and mask
objects (their tight box) are written with conf 1 (consider the entry), class 1 and visibility 1;
frames where an object is hidden are left out. Writing to a folder gives the benchmark layout
(`gt/gt.txt` + `seqinfo.ini`) TrackEval reads.

Reading takes 6 to 10 columns (detections with id -1 become one object each); lines with
conf 0 (ignored regions in MOT ground truth) are skipped; visibility 0 becomes a hidden state.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..atomic import atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..schema import check_fits_video
from ..store import AnnotationStore
from .common import ImportedTrack, check_frame, parse_float, parse_int, state_box


def write_mot(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
              frame_times: np.ndarray | None = None) -> None:
    check_fits_video(store, video)
    objects = [obj for obj in store.objects if obj.kind in ("box", "mask")]
    if not objects:
        raise FormatError("MOT holds boxes; this project has no box or mask objects")
    rows = []
    for obj in objects:
        for frame_idx, state in store.states(obj.obj_id).items():
            box = state_box(state)
            if box is not None:
                x1, y1, x2, y2 = (float(v) for v in box)
                # MOT counts pixels from 1: the top-left pixel is (1, 1)
                rows.append((frame_idx + 1, obj.obj_id, f"{x1 + 1:.2f},{y1 + 1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"))
    text = "".join(f"{frame},{obj_id},{box},1,1,1\n" for frame, obj_id, box in sorted(rows))
    out = Path(path)
    if out.suffix.lower() == ".txt":
        atomic_write_bytes(out, text.encode())
        return
    (out / "gt").mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "gt" / "gt.txt", text.encode())
    seqinfo = (f"[Sequence]\nname={out.name}\nimDir=img1\nframeRate={video.fps:g}\nseqLength={video.num_frames}\n"
               f"imWidth={video.width}\nimHeight={video.height}\nimExt=.jpg\n")
    atomic_write_bytes(out / "seqinfo.ini", seqinfo.encode())


def read_mot(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    if path.is_dir():
        path = path / "gt" / "gt.txt" if (path / "gt" / "gt.txt").is_file() else path / "gt.txt"
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise FormatError("not a text file", file=path) from None
    tracks: dict[int, ImportedTrack] = {}
    detections = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {line_no}"
        try:
            values = [v.strip() for v in (line.split(",") if "," in line else line.split())]
            if not 6 <= len(values) <= 10:
                raise FormatError(f"expected 6 to 10 values (frame, id, left, top, width, height, ...), "
                                  f"got {len(values)}", where)
            frame_idx = check_frame(parse_int(values[0], f"{where}: frame", minimum=1) - 1, video, f"{where}: frame")
            track_id = parse_int(values[1], f"{where}: id", minimum=-1)
            left, top, width, height = (parse_float(v, f"{where}: {name}")
                                        for v, name in zip(values[2:6], ("bb_left", "bb_top", "bb_width", "bb_height")))
            if width < 0 or height < 0:
                raise FormatError(f"width and height must be >= 0, got {width:g} x {height:g}", where)
            conf = parse_float(values[6], f"{where}: conf") if len(values) > 6 else 1.0
            visibility = parse_float(values[8], f"{where}: visibility") if len(values) > 8 else 1.0
        except FormatError as exc:
            raise exc.in_file(path) from None
        if conf == 0:
            continue  # MOT ground truth: an entry to ignore
        left, top = left - 1, top - 1  # from MOT's 1-based pixels
        state = FrameState(box=[left, top, left + width, top + height], visible=visibility > 0)
        if track_id == -1:  # a detection file: no identities
            detections.append(ImportedTrack("box", f"detection {len(detections) + 1}", states={frame_idx: state}))
            continue
        track = tracks.setdefault(track_id, ImportedTrack("box", f"track {track_id}"))
        if frame_idx in track.states:
            raise FormatError(f"id {track_id} appears twice on frame {frame_idx + 1}", f"line {line_no}", path)
        track.states[frame_idx] = state
    return [tracks[k] for k in sorted(tracks)] + detections
