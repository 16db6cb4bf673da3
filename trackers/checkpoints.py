"""Checkpoint manager: find, download (resumably), verify and load model weights.

A checkpoint is either a local file the user names, or a `WeightsSpec` for an official release,
which lives in the cache directory (env TRACKSTUDIO_CACHE, else the user cache dir). Downloads go
to `<file>.part`, resume with an HTTP Range request after an interruption, are checked against the
published sha256 (or, where none is published, the size), then renamed into place. A verified file
gets a `<file>.verified` sidecar so it is hashed only once. Offline, the error says which URL to
fetch and where to put the file.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.error
import urllib.request
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Union

import torch

ProgressCallback = Callable[[int, Union[int, None]], None]  # (done_bytes, total_bytes or None)

CACHE_ENV = "TRACKSTUDIO_CACHE"
UNWRAP_KEYS = ("model", "net", "state_dict")  # where training scripts nest the weights
_CHUNK = 1 << 20
_TIMEOUT_S = 30


class CheckpointError(RuntimeError):
    """A checkpoint could not be found, fetched, verified or read; the message says what to do."""


@dataclass(frozen=True)
class WeightsSpec:
    filename: str  # name in the cache directory
    url: str | None  # None: not downloadable, the user supplies the file
    sha256: str | None  # None: not published; verification is then by size only
    size_bytes: int | None
    license: str
    description: str
    homepage: str | None = None  # where a person can get the file when there is no direct url


_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/{}"
_COTRACKER3_URL = "https://huggingface.co/facebook/cotracker3/resolve/main/{}"

# sha256 and sizes are the Git-LFS records of the same files on the Hugging Face hub
# (facebook/sam2.1-hiera-* and facebook/cotracker3), where they are published.
OFFICIAL_WEIGHTS: dict[str, WeightsSpec] = {
    "sam2.1_hiera_tiny": WeightsSpec(
        "sam2.1_hiera_tiny.pt", _SAM2_URL.format("sam2.1_hiera_tiny.pt"),
        "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", 156_008_466,
        "Apache-2.0", "SAM 2.1 Hiera-Tiny (Meta), video object segmentation"),
    "sam2.1_hiera_small": WeightsSpec(
        "sam2.1_hiera_small.pt", _SAM2_URL.format("sam2.1_hiera_small.pt"),
        "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", 184_416_285,
        "Apache-2.0", "SAM 2.1 Hiera-Small (Meta), video object segmentation"),
    "sam2.1_hiera_base_plus": WeightsSpec(
        "sam2.1_hiera_base_plus.pt", _SAM2_URL.format("sam2.1_hiera_base_plus.pt"),
        "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", 323_606_802,
        "Apache-2.0", "SAM 2.1 Hiera-Base+ (Meta), video object segmentation"),
    "sam2.1_hiera_large": WeightsSpec(
        "sam2.1_hiera_large.pt", _SAM2_URL.format("sam2.1_hiera_large.pt"),
        "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", 898_083_611,
        "Apache-2.0", "SAM 2.1 Hiera-Large (Meta), video object segmentation"),
    "cotracker3_online": WeightsSpec(
        "scaled_online.pth", _COTRACKER3_URL.format("scaled_online.pth"),
        "205d34789f19699d64b22cf93f9b697f15f28d4025240e31532e504109837218", 101_695_610,
        "CC-BY-NC-4.0", "CoTracker3 online (Meta), point tracking; non-commercial licence"),
    "cotracker3_offline": WeightsSpec(
        "scaled_offline.pth", _COTRACKER3_URL.format("scaled_offline.pth"),
        "2670d4562ed69326dda775a26e54883925cd11b6fc9b24cb7aa9f8078bce7834", 101_890_938,
        "CC-BY-NC-4.0", "CoTracker3 offline (Meta), point tracking; non-commercial licence"),
    # The official release is a Google Drive folder (no direct link, no published hash): the user
    # downloads OSTrack_ep0300.pth.tar from .../vitb_256_mae_ce_32x4_ep300/ and imports it.
    "ostrack_vitb_256_mae_ce_32x4_ep300": WeightsSpec(
        "ostrack_vitb_256_mae_ce_32x4_ep300.pth.tar", None, None, None, "MIT",
        "OSTrack ViT-B 256 (MAE, CE, 300 epochs), box tracking; the file is named "
        "OSTrack_ep0300.pth.tar in the release folder vitb_256_mae_ce_32x4_ep300",
        homepage="https://drive.google.com/drive/folders/1ttafo0O5S9DXK2PX0YqPvPrQ-HWJjhSy"),
    "siamfc_alexnet_e50": WeightsSpec(
        "siamfc_alexnet_e50.pth", None, None, None, "MIT (siamfc-pytorch)",
        "SiamFC AlexNet trained on GOT-10k by the siamfc-pytorch project; user-supplied",
        homepage="https://github.com/huanglianghua/siamfc-pytorch"),
}


def cache_dir() -> Path:
    """Where official checkpoints live: $TRACKSTUDIO_CACHE, else <user cache>/trackstudio/checkpoints."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("trackstudio")) / "checkpoints"


def cached_path(spec: WeightsSpec, cache_dir: str | Path | None = None) -> Path:
    return _cache_root(cache_dir) / spec.filename


def is_cached(spec: WeightsSpec, cache_dir: str | Path | None = None) -> bool:
    """The file is in the cache with the expected size (cheap: does not hash)."""
    path = cached_path(spec, cache_dir)
    return path.is_file() and (spec.size_bytes is None or path.stat().st_size == spec.size_bytes)


def resolve_checkpoint(spec_or_path: WeightsSpec | str | os.PathLike, cache_dir: str | Path | None = None,
                       download: bool = True, progress: bool | ProgressCallback = True) -> Path:
    """A local file for these weights.

    A path (or the name of an OFFICIAL_WEIGHTS entry) is used as is and must exist. A spec is taken
    from the cache, verified once, else downloaded (when `download`) with a tqdm bar
    (`progress=True`), silently (`False`) or reporting to `progress(done_bytes, total_bytes)`;
    an exception raised by that callback cancels the download and keeps the part for resuming.
    """
    if not isinstance(spec_or_path, WeightsSpec):
        path = Path(spec_or_path).expanduser()
        if path.is_file():
            return path
        if str(spec_or_path) in OFFICIAL_WEIGHTS and not path.exists():
            return resolve_checkpoint(OFFICIAL_WEIGHTS[str(spec_or_path)], cache_dir, download, progress)
        what = "a directory, not a file" if path.is_dir() else "not found"
        raise CheckpointError(f"checkpoint {path} is {what}")
    spec = spec_or_path
    target = cached_path(spec, cache_dir)
    if target.is_file():
        problem = _verify(spec, target)
        if problem is None:
            return target
        _remove_quietly(target, _sidecar(target))
        if not download or spec.url is None:
            raise CheckpointError(f"cached checkpoint {target} was corrupt ({problem}) and has been removed. "
                                  + _how_to_get(spec, target))
    if spec.url is None or not download:
        reason = "it has no download address" if spec.url is None else "downloading is off"
        raise CheckpointError(f"{spec.filename} is not in the cache ({reason}). " + _how_to_get(spec, target))
    _download(spec, target, progress)
    return target


def import_checkpoint(spec: WeightsSpec, local_file: str | os.PathLike,
                      cache_dir: str | Path | None = None) -> Path:
    """Copy a file the user fetched into the cache as `spec`, after checking it is the right one."""
    source = Path(local_file).expanduser()
    if not source.is_file():
        raise CheckpointError(f"cannot import {source}: no such file")
    problem = _verify(spec, source, remember=False)
    if problem is not None:
        raise CheckpointError(f"{source} is not {spec.filename}: {problem}")
    target = cached_path(spec, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".importing")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except OSError as exc:
        _remove_quietly(temporary)
        raise CheckpointError(f"could not copy {source} to {target}: {exc}") from exc
    _write_sidecar(spec, target)
    return target


def remove_checkpoint(spec: WeightsSpec, cache_dir: str | Path | None = None) -> bool:
    """Delete the cached file, its partial download and its verification record; True if any existed."""
    target = cached_path(spec, cache_dir)
    paths = (target, _part(target), _sidecar(target))
    existed = any(p.exists() for p in paths)
    _remove_quietly(*paths)
    return existed


def load_state_dict_file(path: str | os.PathLike, key: str | tuple[str, ...] | None = None) -> dict:
    """torch.load a checkpoint safely (weights_only, onto the CPU).

    key: unwrap a top-level {key: weights} dict; a tuple tries each name in turn (UNWRAP_KEYS is the
    usual set: "model", "net", "state_dict"); None returns the file's dict as is.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated, corrupt or non-torch files
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt, truncated, another "
                              f"format, or Python objects that safe loading refuses): {_load_detail(exc)}") from exc
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a dict of weights")
    if key is not None:
        names = (key,) if isinstance(key, str) else tuple(key)
        found = next((name for name in names if isinstance(state.get(name), Mapping)), None)
        if found is None:
            raise CheckpointError(f"{path} has no {' / '.join(repr(n) for n in names)} entry holding the "
                                  f"weights; its top-level keys are {sorted(map(str, state))[:10]}")
        state = state[found]
    return dict(state)


def _load_detail(exc: Exception) -> str:
    """The informative line of a torch.load error (its weights_only advice is long and off the point)."""
    text = str(exc)
    match = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    detail = match.group(1) if match else text.strip()
    return detail.splitlines()[0][:200] if detail else type(exc).__name__


# -- downloading ------------------------------------------------------------------------------------

def _download(spec: WeightsSpec, target: Path, progress: bool | ProgressCallback) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _part(target)
    try:
        _fetch_resumable(spec.url, part, spec.size_bytes, progress)
    except CheckpointError:
        raise
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and timeouts are OSErrors
        kept = " The partial download is kept and resumes on the next try." if part.exists() else ""
        raise CheckpointError(f"could not download {spec.filename} from {spec.url} ({_reason(exc)}).{kept} "
                              + _how_to_get(spec, target, name_source=False)) from exc
    problem = _verify(spec, part, remember=False)
    if problem is not None:
        _remove_quietly(part)
        raise CheckpointError(f"the download of {spec.filename} from {spec.url} is damaged ({problem}); "
                              "it has been deleted, try again")
    os.replace(part, target)
    _write_sidecar(spec, target)


def _fetch_resumable(url: str, part: Path, expected_size: int | None, progress) -> None:
    """Download url into part, continuing an existing part with a Range request."""
    done = part.stat().st_size if part.exists() else 0
    if expected_size is not None and done > expected_size:  # not a prefix of this file
        part.unlink()
        done = 0
    if expected_size is not None and done == expected_size:
        return
    headers = {"User-Agent": "trackstudio-checkpoints"}
    if done:
        headers["Range"] = f"bytes={done}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and done:  # the part is not a prefix the server can continue: start over
            part.unlink()
            return _fetch_resumable(url, part, expected_size, progress)
        raise
    with response:
        if done and response.status == 206 and _range_start(response) == done:
            mode = "ab"
        else:  # the server ignored the Range header (or there was none): start from byte 0
            mode, done = "wb", 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else expected_size
        report = _progress_reporter(progress, part.name.removesuffix(".part"), done, total)
        try:
            with open(part, mode) as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    report(done)
        finally:
            report(None)
    if total is not None and done < total:
        raise http.client.IncompleteRead(b"", total - done)


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _progress_reporter(progress, name: str, done: int, total: int | None) -> Callable[[int | None], None]:
    """A function taking the bytes done so far (None when finished)."""
    if callable(progress):
        progress(done, total)
        return lambda now: progress(now, total) if now is not None else None
    if not progress:
        return lambda now: None
    from tqdm import tqdm

    bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024, desc=name)

    def report(now: int | None) -> None:
        if now is None:
            bar.close()
        else:
            bar.update(now - bar.n)

    return report


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed before the whole file arrived"
    return str(exc) or type(exc).__name__


def _how_to_get(spec: WeightsSpec, target: Path, name_source: bool = True) -> str:
    source = spec.url or spec.homepage or "its publisher"
    where = f" from {source}" if name_source else ""
    return (f"Download it on a machine with internet access{where} and put it at {target}, "
            "or pass --checkpoint TRACKER=PATH (e.g. to `trackstudio track`)")


# -- verification -----------------------------------------------------------------------------------

def _verify(spec: WeightsSpec, path: Path, remember: bool = True) -> str | None:
    """None when path is the spec's file, else what is wrong. A recorded verification of the same
    file (size and mtime unchanged) skips hashing."""
    stat = path.stat()
    if spec.size_bytes is not None and stat.st_size != spec.size_bytes:
        return f"size {stat.st_size} bytes, expected {spec.size_bytes}"
    if spec.sha256 is None:
        return None  # no published hash: size is all we can check
    if remember and _sidecar_matches(spec, path, stat):
        return None
    digest = _sha256(path)
    if digest != spec.sha256.lower():
        return f"sha256 {digest}, expected {spec.sha256}"
    if remember:
        _write_sidecar(spec, path)
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _sidecar_matches(spec: WeightsSpec, path: Path, stat: os.stat_result) -> bool:
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return False
    return record == {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_sidecar(spec: WeightsSpec, path: Path) -> None:
    if spec.sha256 is None:
        return
    stat = path.stat()
    record = {"sha256": spec.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        _sidecar(path).write_text(json.dumps(record))
    except OSError:  # a read-only cache still works, it just hashes again next time
        pass


def _cache_root(directory: str | Path | None) -> Path:
    return Path(directory).expanduser() if directory is not None else cache_dir()


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def save_network(model, path: str | os.PathLike, version: int, meta: dict) -> None:
    """A project-trained network as {"config", "state_dict", "meta"} (meta gets "weights_version"),
    written to a temporary file and renamed: a kill mid-save leaves the previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"config": dataclasses.asdict(model.config), "state_dict": model.state_dict(),
                "meta": {"weights_version": version, **meta}}, tmp)
    tmp.replace(path)


def load_network(path: str | os.PathLike, network_cls, config_cls, what: str):
    """(network in eval mode, meta) from a file written by save_network: weights_only, strict. Its weights are
    channels-last, oneDNN's faster layout for convolutions on a CPU (sam2-lite's propagation step 10 % and a click
    15 % faster on a 2-core CPU); it computes the same maps, up to rounding."""
    state = load_state_dict_file(path)
    try:
        model = network_cls(config_cls(**state["config"]))
        model.load_state_dict(state["state_dict"], strict=True)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not {what}: {exc}") from exc
    return model.to(memory_format=torch.channels_last).eval(), dict(state.get("meta", {}))
