"""Point objects as pose data: SLEAP `.slp` and DeepLabCut CSV, through sleap-io.

Point objects map to a skeleton: each object's name is a body part (node) and its label the
individual (animal) it belongs to, so objects labelled "mouse1" named "nose" and "tail" are one
animal with two body parts. Objects without labels make one unnamed individual.

SLEAP (through sleap-io) keeps hidden points with their predicted position (`visible` false) and
tells user labels (`Instance`, our keyframes) from predictions (`PredictedInstance`, our tracked
frames, with scores). DLC CSV keeps x, y and the likelihood (our score, 1 for user points);
hidden points are empty cells.

DLC CSVs are read here rather than with `sleap_io.load_dlc`, which needs the labelled images on
disk and renumbers frames by their position among them; both DLC layouts are read: labelled data
(`labeled-data/<video>/img0012.png` rows, 1 or 3 index columns) and analysis output (frame rows).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from trackstudio.app.video import VideoInfo

from ..atomic import atomic_write_bytes
from ..errors import FormatError
from ..objects import FrameState
from ..schema import check_fits_video
from ..store import AnnotationStore
from .common import ImportedTrack, check_frame, ensure_parent, frame_number_in_name, parse_float


def _individuals(store: AnnotationStore) -> tuple[list[str], dict[str, list]]:
    """Body-part names and point objects grouped by label (individual); names made unique per individual."""
    points = [obj for obj in store.objects if obj.kind == "point"]
    if not points:
        raise FormatError("pose formats hold point objects; this project has none")
    groups: dict[str, list] = {}
    for obj in points:
        groups.setdefault(obj.label, []).append(obj)
    nodes: list[str] = []
    members: dict[str, list] = {}
    for label, objects in groups.items():
        used = set()
        members[label] = []
        for obj in objects:
            node = obj.name if obj.name not in used else f"{obj.name} ({obj.obj_id})"
            used.add(node)
            if node not in nodes:
                nodes.append(node)
            members[label].append((nodes.index(node), obj))
    return nodes, members


def _sleap_io():
    try:
        import sleap_io
    except ImportError:
        raise FormatError("SLEAP files need sleap-io: pip install 'trackstudio[pose]' (or sleap-io)") from None
    return sleap_io


def _labels(store: AnnotationStore, video: VideoInfo):
    sio = _sleap_io()

    check_fits_video(store, video)
    nodes, members = _individuals(store)
    skeleton = sio.Skeleton(nodes)
    sio_video = sio.Video(filename=video.path or "video.mp4", open_backend=False)
    named = len(members) > 1 or "" not in members
    tracks = {label: sio.Track(label or "individual") for label in members} if named else {}
    frames = sorted({f for objs in members.values() for _, obj in objs for f in store.frames(obj.obj_id)})
    labeled_frames = []
    for frame_idx in frames:
        instances = []
        for label, objects in members.items():
            xy = np.full((len(nodes), 2), np.nan)
            visible = np.zeros(len(nodes), bool)
            scores = np.zeros(len(nodes))
            user = False
            for node_idx, obj in objects:
                state = store.get_state(obj.obj_id, frame_idx)
                if state is None or state.point is None:
                    continue
                xy[node_idx] = state.point
                visible[node_idx] = state.visible
                scores[node_idx] = 1.0 if state.score is None else state.score
                user |= state.keyframe
            if np.isnan(xy).all():
                continue
            track = tracks.get(label)
            if user:
                instance = sio.Instance.from_numpy(xy, skeleton=skeleton, track=track)
            else:
                score = float(scores[visible].mean()) if visible.any() else 0.0
                instance = sio.PredictedInstance.from_numpy(xy, skeleton=skeleton, point_scores=scores, score=score,
                                                            track=track)
            instance.points["visible"] = visible & ~np.isnan(xy[:, 0])
            instances.append(instance)
        if instances:
            labeled_frames.append(sio.LabeledFrame(video=sio_video, frame_idx=frame_idx, instances=instances))
    return sio.Labels(labeled_frames=labeled_frames, videos=[sio_video], skeletons=[skeleton],
                      tracks=list(tracks.values()))


def write_slp(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
              frame_times: np.ndarray | None = None) -> None:
    labels = _labels(store, video)
    _write_via_temp(path, lambda tmp: _sleap_io().save_slp(labels, str(tmp)))


def write_dlc(store: AnnotationStore, video: VideoInfo, path: str | os.PathLike,
              frame_times: np.ndarray | None = None) -> None:
    """DLC's labelled-data CSV: a row per frame named `labeled-data/<video>/img0012.png`.

    Written here rather than with sleap-io's DLC writer, which drops the likelihoods and writes
    the multi-animal header only for two individuals or more.
    """
    check_fits_video(store, video)
    nodes, members = _individuals(store)
    multi = len(members) > 1 or "" not in members
    columns = [(label or "individual", nodes[node_idx], obj) for label, objects in members.items()
               for node_idx, obj in objects]
    header = [["scorer"] + ["trackstudio"] * 3 * len(columns)]
    if multi:
        header.append(["individuals"] + [c[0] for c in columns for _ in range(3)])
    header.append(["bodyparts"] + [c[1] for c in columns for _ in range(3)])
    header.append(["coords"] + ["x", "y", "likelihood"] * len(columns))
    stem = Path(video.path).stem or "video"
    digits = max(4, len(str(video.num_frames - 1)))
    frames = sorted({f for _, _, obj in columns for f in store.frames(obj.obj_id)})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(header)
    for frame_idx in frames:
        row = [f"labeled-data/{stem}/img{frame_idx:0{digits}d}.png"]
        for _, _, obj in columns:
            state = store.get_state(obj.obj_id, frame_idx)
            if state is None or state.point is None or not state.visible:
                row += ["", "", ""]  # DLC marks unlabelled and hidden body parts with empty cells
            else:
                score = 1.0 if state.score is None else state.score
                row += [str(float(state.point[0])), str(float(state.point[1])), str(float(score))]
        writer.writerow(row)
    atomic_write_bytes(path, buffer.getvalue().encode())


def _write_via_temp(path, write) -> None:
    """sleap-io writes to a path: write beside the target, then rename (an atomic save)."""
    target = ensure_parent(path)
    tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def read_slp(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    sio = _sleap_io()

    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as exc:  # noqa: BLE001  (h5py / sleap-io raise many kinds for a file that is not SLEAP)
        raise FormatError(f"not a readable SLEAP file ({exc})", file=path) from None
    if len(labels.videos) > 1:
        stems = [Path(v.filename if isinstance(v.filename, str) else v.filename[0]).stem for v in labels.videos]
        if Path(video.path).stem not in stems:
            raise FormatError(f"holds {len(labels.videos)} videos ({', '.join(stems)}); none is "
                              f"{Path(video.path).name}", "videos", path)
        sio_video = labels.videos[stems.index(Path(video.path).stem)]
    else:
        sio_video = labels.videos[0] if labels.videos else None
    tracks: dict[tuple, ImportedTrack] = {}
    for lf in labels.labeled_frames:
        if sio_video is not None and lf.video is not sio_video:
            continue
        try:
            check_frame(lf.frame_idx, video, f"labeled frame {lf.frame_idx}")
        except FormatError as exc:
            raise exc.in_file(path) from None
        for i, instance in enumerate(lf.instances):
            if instance.track is not None:
                individual = instance.track.name
            else:  # untracked: one animal is unnamed, several are told apart by their order
                individual = "" if len(lf.instances) == 1 else str(i)
            predicted = isinstance(instance, sio.PredictedInstance)
            points = instance.points
            for node, row in zip(instance.skeleton.node_names, points):
                xy = np.asarray(row["xy"], np.float64)
                if not np.isfinite(xy).all():
                    continue
                track = tracks.setdefault((individual, node), ImportedTrack(
                    "point", f"{individual} {node}".strip(), individual, prompts=set()))
                score = float(row["score"]) if predicted else None
                track.states[lf.frame_idx] = FrameState(point=xy, visible=bool(row["visible"]), score=score)
                if not predicted:
                    track.prompts.add(lf.frame_idx)
    return list(tracks.values())


def read_dlc(path: Path, video: VideoInfo) -> list[ImportedTrack]:
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise FormatError("not a text file", file=path) from None
    try:
        return _dlc_tracks(rows, video)
    except FormatError as exc:
        raise exc.in_file(path) from None


def _dlc_tracks(rows: list[list[str]], video: VideoInfo) -> list[ImportedTrack]:
    header = {}
    for r, row in enumerate(rows[:4]):
        if row and row[0] in ("scorer", "individuals", "bodyparts", "coords"):
            header[row[0]] = r
    if "bodyparts" not in header or "coords" not in header:
        raise FormatError("expected DeepLabCut header rows (scorer, [individuals,] bodyparts, coords)", "line 1")
    coords_row = rows[header["coords"]]
    index_columns = next((i for i, v in enumerate(coords_row) if i and v), 1)  # 1, or 3 in newer DLC
    columns = {}
    for c in range(index_columns, len(coords_row)):
        individual = rows[header["individuals"]][c] if "individuals" in header else ""
        columns.setdefault((individual, rows[header["bodyparts"]][c]), {})[coords_row[c]] = c
    tracks: dict[tuple, ImportedTrack] = {}
    for r in range(max(header.values()) + 1, len(rows)):
        row = rows[r]
        if not row or not any(row):
            continue
        where = f"line {r + 1}"
        index = row[index_columns - 1]
        frame_idx = int(index) if index.isdigit() else frame_number_in_name(index)
        if frame_idx is None:
            raise FormatError(f"the row's image {index!r} holds no frame number", where)
        check_frame(frame_idx, video, where)
        for (individual, part), coords in columns.items():
            if "x" not in coords or "y" not in coords:
                raise FormatError(f"{part}: expected x and y columns", f"line {header['coords'] + 1}")
            cells = [row[coords[k]] if coords[k] < len(row) else "" for k in ("x", "y")]
            if not all(cells) or any(c.lower() == "nan" for c in cells):
                continue  # not labelled on this frame
            x, y = (parse_float(c, f"{where}: {part} {k}") for c, k in zip(cells, "xy"))
            likelihood = row[coords["likelihood"]] if "likelihood" in coords and coords["likelihood"] < len(row) else ""
            score = parse_float(likelihood, f"{where}: {part} likelihood") if likelihood else None
            track = tracks.setdefault((individual, part), ImportedTrack("point", f"{individual} {part}".strip(),
                                                                        individual))
            track.states[frame_idx] = FrameState(point=[x, y], score=score)
    return list(tracks.values())
