"""`trackstudio models`: which weights each tracker needs, and fetching, importing or removing them.

The functions here hold no Qt and print nothing except in `run_models`, so the GUI's Models dialog
uses the same logic: `weights_table()` for the list, `find_weights()` to turn what a user typed into
a WeightsSpec, `missing_weights()` to ask before building a tracker, and `download` / `import_file`
/ `remove` for the actions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trackstudio import resources
from trackstudio.trackers import registry
from trackstudio.trackers.box.siamfc_mask import SiamFCMaskConfig
from trackstudio.trackers.checkpoints import (OFFICIAL_WEIGHTS, CheckpointError, WeightsSpec, cache_dir, cached_path,
                                  import_checkpoint, is_cached, load_state_dict_file, remove_checkpoint,
                                  resolve_checkpoint)
from trackstudio.trackers.types import KINDS

from .commands import CliError

SHIPPED_WEIGHTS_DIR = ("weights",)  # under trackstudio.resources


@dataclass(frozen=True)
class WeightsRow:
    """One line of the models table: a tracker and one set of weights it loads (None: built in)."""

    tracker: str
    kind: str
    default: bool  # the tracker the GUI and `track` use for this kind unless told otherwise
    experimental: bool
    description: str
    plugin: str | None  # "distribution version" of a plugin tracker; None: built in
    weights: WeightsSpec | None  # an official checkpoint, or None for built-in trackers
    shipped: tuple[Path, ...]  # trained files the tracker loads from the installed resources
    cached: bool  # present: in the cache, or (built-in rows) every shipped file installed

    @property
    def weights_name(self) -> str:
        if self.weights is not None:
            return self.weights.filename
        return ", ".join(p.name for p in self.shipped) or "-"

    @property
    def size_bytes(self) -> int | None:
        if self.weights is not None:
            return self.weights.size_bytes
        present = [p for p in self.shipped if p.is_file()]
        return sum(p.stat().st_size for p in present) if present else None

    @property
    def licence(self) -> str:
        if self.weights is not None:
            return self.weights.license
        return f"see {self.plugin.split()[0]}" if self.plugin else "Apache-2.0 (TrackStudio)"

    @property
    def source(self) -> str:
        """Download URL, or the page where a person gets the file, or where built-in files live."""
        if self.weights is None:
            if self.plugin:
                return f"plugin: {self.plugin}"
            if not self.shipped:
                return "no weights file needed"
            return "ships with TrackStudio" if self.cached else "ships with TrackStudio; missing from this install"
        return self.weights.url or f"import only: {self.weights.homepage or 'see the tracker documentation'}"

    @property
    def status(self) -> str:
        if self.weights is None:
            return "built-in" if self.cached else "not installed"
        if self.cached:
            return "cached"
        return "missing" if self.weights.url else "missing (import)"


# The registry records only official (downloadable) weights; these trackers load trained files that
# ship with TrackStudio under resources/weights instead.
SHIPPED_BY_TRACKER = {  # the first file of each is what --checkpoint TRACKER=PATH replaces
    "point_transformer": ("point_tracker.pt",),
    "sam2-lite": ("sam2_lite_propagation.pt", "sam2_lite_clicks.pt"),
    "siamfc-mask": (SiamFCMaskConfig().mask_weights, "sam2_lite_clicks.pt"),
    "mask-box": ("sam2_lite_propagation.pt", "sam2_lite_clicks.pt"),
    "siamfc-stmixer": ("box_head.pt",),
}


def shipped_weights() -> list[Path]:
    """Trained weights files installed with TrackStudio (resources/weights)."""
    folder = resources.path(*SHIPPED_WEIGHTS_DIR)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "__")))


def _shipped_for(tracker: str) -> tuple[Path, ...]:
    """The shipped files `tracker` loads."""
    return tuple(resources.path(*SHIPPED_WEIGHTS_DIR, name) for name in SHIPPED_BY_TRACKER.get(tracker, ()))


def weights_table(cache: str | Path | None = None) -> list[WeightsRow]:
    """Every registered tracker, one row per weights file it can load; defaults first within a kind."""
    rows = []
    for kind in KINDS:
        specs = registry.specs(kind)
        for position, spec in enumerate(specs):
            common = dict(tracker=spec.name, kind=kind, default=position == 0, experimental=spec.experimental,
                          description=spec.description, plugin=spec.plugin)
            if not spec.weights:
                shipped = _shipped_for(spec.name)
                rows.append(WeightsRow(**common, weights=None, shipped=shipped,
                                       cached=all(p.is_file() for p in shipped)))
            for weights in spec.weights:
                rows.append(WeightsRow(**common, weights=weights, shipped=(), cached=is_cached(weights, cache)))
    return rows


def unclaimed_shipped_weights() -> list[Path]:
    """Shipped weights no tracker name claims (listed separately so nothing installed goes unseen)."""
    claimed = {p for row in weights_table() for p in row.shipped}
    return [p for p in shipped_weights() if p not in claimed]


def downloadable_names() -> list[str]:
    """Names `find_weights` accepts for official checkpoints: tracker names that need one file."""
    return [row.tracker for row in weights_table() if row.weights is not None]


def find_weights(name: str) -> WeightsSpec:
    """The official weights a user means by `name`: a tracker, an OFFICIAL_WEIGHTS key or a file name."""
    if not name:
        raise CliError(f"name a tracker or weights file; ones with official weights: {', '.join(downloadable_names())}")
    if name in OFFICIAL_WEIGHTS:
        return OFFICIAL_WEIGHTS[name]
    known = [*OFFICIAL_WEIGHTS.values(), *(w for spec in registry.specs() for w in spec.weights)]
    by_filename = [w for w in known if w.filename == name]
    if by_filename:
        return by_filename[0]
    try:
        spec = registry.spec(name)
    except KeyError:
        raise CliError(f"no tracker or weights named {name!r}; ones with official weights: "
                       f"{', '.join(downloadable_names())}") from None
    if not spec.weights:
        raise CliError(f"{name} is built in: it needs no download")
    if len(spec.weights) > 1:
        raise CliError(f"{name} loads several weights files; name one: "
                       f"{', '.join(w.filename for w in spec.weights)}")
    return spec.weights[0]


def _import_hint(weights: WeightsSpec) -> str:
    return f"`trackstudio models import {weights.filename} FILE`"


def missing_weights(tracker: str, cache: str | Path | None = None) -> list[WeightsSpec]:
    """The official weights `tracker` loads that are not in the cache (empty: it can be built now)."""
    return [w for w in registry.spec(tracker).weights if not is_cached(w, cache)]


def download(weights: WeightsSpec, cache: str | Path | None = None, progress=True) -> Path:
    """Fetch (or find, verified, in the cache) the file; `progress` as in resolve_checkpoint."""
    if weights.url is None:
        raise CheckpointError(f"{weights.filename} has no download address: get it from "
                              f"{weights.homepage or 'its publisher'} ({weights.description}), then run "
                              f"{_import_hint(weights)}")
    try:
        return resolve_checkpoint(weights, cache, download=True, progress=progress)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; or fetch it elsewhere and run {_import_hint(weights)}") from None


def import_file(weights: WeightsSpec, local_file: str | os.PathLike, cache: str | Path | None = None) -> Path:
    """Copy a file the user fetched into the cache, checked by sha256 (or, with no published hash,
    by loading it the way the trackers do)."""
    if weights.sha256 is None and Path(local_file).expanduser().is_file():
        load_state_dict_file(local_file)  # raises a CheckpointError naming the file when it is no checkpoint
    return import_checkpoint(weights, local_file, cache)


def remove(weights: WeightsSpec, cache: str | Path | None = None) -> bool:
    """Delete the cached file (and any partial download); True when something was there."""
    return remove_checkpoint(weights, cache)


def format_size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "?"
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_table(rows: list[WeightsRow]) -> str:
    header = ("TRACKER", "KIND", "DEFAULT", "WEIGHTS", "SIZE", "LICENCE", "STATUS", "SOURCE")
    lines = [header]
    for row in rows:
        name = row.tracker + (" (experimental)" if row.experimental else "")
        size = format_size(row.size_bytes) if row.weights is not None or row.cached and row.shipped else "-"
        lines.append((name, row.kind, "yes" if row.default else "", row.weights_name, size, row.licence,
                      row.status, row.source))
    widths = [max(len(line[col]) for line in lines) for col in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1]
                     for line in lines)


def format_options(name: str) -> str:
    """A tracker's options with their defaults, one `TRACKER.OPTION=VALUE` line each (VALUE in JSON), as `track`
    and `batch` take them with --set."""
    import json

    if not name:
        raise CliError(f"name a tracker: {', '.join(registry.names())}")
    try:
        defaults = registry.config_defaults(name)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None
    return "\n".join(f"{name}.{option}={json.dumps(default, separators=(',', ':'))}"
                     for option, default in defaults.items())


def run_models(action: str, name: str | None, file: str | None) -> int:
    """The `trackstudio models` sub-command; user errors raise CliError (one line, exit 2)."""
    if action == "list":
        if name or file:
            raise CliError("`models list` takes no arguments")
        print(format_table(weights_table()))
        extra = unclaimed_shipped_weights()
        if extra:
            print("\nalso shipped: " + ", ".join(f"{p.name} ({format_size(p.stat().st_size)})" for p in extra))
        for entry_point, why in registry.plugin_errors().items():
            print(f"\nplugin {entry_point} did not load: {why}")
        print(f"\ncache: {cache_dir()} (set TRACKSTUDIO_CACHE to move it)")
        return 0
    if file and action != "import":
        raise CliError(f"`models {action}` takes one name, got an extra argument {file!r}")
    if action == "options":
        print(format_options(name or ""))
        return 0
    weights = find_weights(name or "")
    if action == "download":
        already = is_cached(weights)
        path = download(weights)
        print(f"{weights.filename}: {'already in the cache, verified' if already else 'downloaded and verified'}: {path}")
    elif action == "remove":
        gone = remove(weights)
        print(f"{weights.filename}: {'removed from' if gone else 'was not in'} {cached_path(weights).parent}")
    elif action == "import":
        if not file:
            raise CliError(f"`models import` needs the local file: {_import_hint(weights)}")
        path = import_file(weights, file)
        print(f"{weights.filename}: imported into the cache: {path}")
    else:  # argparse restricts the choices; this guards direct callers
        raise CliError(f"unknown action {action!r}; use list, options, download, remove or import")
    return 0
