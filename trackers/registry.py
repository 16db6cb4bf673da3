"""Build trackers by name: `build("csrt", config={...}, device="auto", checkpoint=None)`.

Tracker modules register themselves with `@register(...)` when imported; `_load_builtin()` imports
the packages that hold the built-in trackers, so nobody has to import them by hand.

Plugins: an installed distribution that declares an entry point in the group `trackstudio.trackers`
(e.g. `[project.entry-points."trackstudio.trackers"] my-tracker = "my_package.tracker"`) has that
object loaded after the built-ins; loading its module runs its `@register(...)` decorators, so its
trackers show up in `trackstudio models`, the command line and the window. A plugin that fails to
load is skipped with a warning (see `plugin_errors()`); it never stops the built-in trackers.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import Tracker, TrackerConfig
from .device import resolve_device
from .types import KINDS

# Packages whose import registers the built-in trackers.
_BUILTIN_PACKAGES = ("trackstudio.trackers.classical", "trackstudio.trackers.mask", "trackstudio.trackers.box",
                     "trackstudio.trackers.point", "trackstudio.trackers.interpolation")
PLUGIN_GROUP = "trackstudio.trackers"


@dataclass(frozen=True)
class TrackerSpec:
    name: str
    kind: str
    cls: type[Tracker]
    description: str
    priority: int  # the highest-priority tracker of a kind is its default
    weights: tuple = field(default=())  # trackers.checkpoints.WeightsSpec items it can load
    experimental: bool = False
    plugin: str | None = None  # the distribution ("name version") that registered it; None: built in


_REGISTRY: dict[str, TrackerSpec] = {}
_PLUGIN_ERRORS: dict[str, str] = {}  # entry point name -> why it did not load
_loaded = False


def register(name: str, kind: str, description: str, priority: int = 0, weights: tuple = (),
             experimental: bool = False):
    """Class decorator that makes a Tracker buildable by `name`."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")

    def deco(cls: type[Tracker]) -> type[Tracker]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"tracker name {name!r} is registered twice")
        _REGISTRY[name] = TrackerSpec(name, kind, cls, description, priority, tuple(weights), experimental)
        return cls

    return deco


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for pkg in _BUILTIN_PACKAGES:
            importlib.import_module(pkg)
        _load_plugins()


def _load_plugins() -> None:
    for entry_point in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        dist = entry_point.dist
        origin = f"{dist.name} {dist.version}" if dist is not None else entry_point.value
        before = set(_REGISTRY)
        try:
            entry_point.load()
        except Exception as exc:  # a broken plugin must not take the built-in trackers down with it
            _PLUGIN_ERRORS[entry_point.name] = f"{origin}: {type(exc).__name__}: {exc}"
            warnings.warn(f"tracker plugin {entry_point.name!r} ({origin}) failed to load: {exc}", stacklevel=2)
            continue
        for name in set(_REGISTRY) - before:
            _REGISTRY[name] = dataclasses.replace(_REGISTRY[name], plugin=origin)


def plugin_errors() -> dict[str, str]:
    """Tracker plugins that are installed but did not load: entry point name -> reason."""
    _load_builtin()
    return dict(_PLUGIN_ERRORS)


def specs(kind: str | None = None) -> list[TrackerSpec]:
    """Registered trackers, best first (by priority, then name)."""
    _load_builtin()
    out = [s for s in _REGISTRY.values() if kind is None or s.kind == kind]
    return sorted(out, key=lambda s: (-s.priority, s.name))


def names(kind: str | None = None) -> list[str]:
    return [s.name for s in specs(kind)]


def spec(name: str) -> TrackerSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no tracker named {name!r}; available: {', '.join(names())}") from None


def default_name(kind: str) -> str:
    found = specs(kind)
    if not found:
        raise KeyError(f"no tracker is registered for kind {kind!r}")
    return found[0].name


def make_config(cls: type[Tracker], config: TrackerConfig | dict[str, Any] | None) -> TrackerConfig:
    """Accept a config instance, a dict of overrides (unknown keys are an error) or None."""
    config_cls = cls.config_cls
    if config is None:
        return config_cls()
    if isinstance(config, TrackerConfig):
        return config
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(config) - known
    if unknown:
        raise ValueError(f"{cls.__name__} has no option(s) {sorted(unknown)}; known: {sorted(known)}")
    return config_cls(**config)


def config_defaults(name: str) -> dict[str, Any]:
    """Option -> default of tracker `name`'s config."""
    return {f.name: _default(f) for f in dataclasses.fields(spec(name).cls.config_cls)}


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def checked_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Option overrides for tracker `name`, checked as a user gives them (command line, window, saved settings): each
    an option of its config, of its default's type (an int for a float, a list for a tuple, null where the option is
    annotated `| None`), and all of them together accepted by the config's own checks. -> the overrides (lists as
    tuples); KeyError for an unknown tracker, ValueError naming the option otherwise."""
    cls = spec(name).cls
    fields = {f.name: f for f in dataclasses.fields(cls.config_cls)}
    checked = {}
    for option, value in options.items():
        if option not in fields:
            raise ValueError(f"{name} has no option {option!r}; its options: {', '.join(sorted(fields))}")
        default = _default(fields[option])
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)  # JSON has arrays only
        if not (value is None and "None" in str(fields[option].type)) and not _value_fits(value, default):
            raise ValueError(f"{name}.{option} takes {type(default).__name__} values (its default is "
                             f"{json.dumps(default)}), got {json.dumps(value)}")
        checked[option] = value
    try:
        make_config(cls, checked)  # ranges and combinations, as the tracker checks them
    except (TypeError, ValueError) as exc:  # TypeError: a check comparing a value it did not expect
        raise ValueError(f"{name}: {exc}") from None
    return checked


def _value_fits(value: Any, default: Any) -> bool:
    """Whether `value` can stand for an option whose default is `default`: of its type, an int for a float, a bool
    only for a bool; anything where the default is None."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def build(name: str, config: TrackerConfig | dict[str, Any] | None = None, device: str = "auto",
          checkpoint: str | None = None) -> Tracker:
    """A ready tracker. `checkpoint` is a local path or None for the tracker's default weights."""
    s = spec(name)
    return s.cls(make_config(s.cls, config), resolve_device(device), checkpoint)


def build_entries(entries: str, first_config: TrackerConfig | dict[str, Any] | None = None,
                  device: str = "auto") -> Iterator[tuple[str, Tracker]]:
    """(entry, ready tracker) for each of "NAME[=CHECKPOINT],..." in turn, built as it is reached; the first takes
    `first_config` (how the benchmarks compare trackers, weights and settings in one run)."""
    for idx, entry in enumerate(entries.split(",")):
        name, _, checkpoint = entry.partition("=")
        yield entry, build(name, first_config if idx == 0 else None, device, checkpoint or None)
