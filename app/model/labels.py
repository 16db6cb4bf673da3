"""The project's label schema and attribute values (undoable store values, saved in files).

Schema, under "labels": classes (a name and a colour; an object's `label` is one of them, or
empty) and yes/no attributes that apply to a whole object (e.g. "truncated") or to one object on
one frame (e.g. "occluded"). Values, under "attributes": the attributes set per object and per
object-frame. Qt-free; the layout is in docs/formats.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from .colors import is_hex_color
from .errors import FormatError
from .store import AnnotationStore

SCHEMA_KEY = "labels"
VALUES_KEY = "attributes"
SCOPES = ("object", "frame")
# (obj_id, frame_idx) -> names of the attributes set; frame_idx None: object-level attributes
Values = dict[tuple[int, int | None], frozenset[str]]


@dataclass(frozen=True)
class LabelClass:
    name: str
    color: str  # "#rrggbb": objects of the class take it


@dataclass(frozen=True)
class Attribute:
    name: str
    scope: str = "frame"  # "object" (the whole track) or "frame" (one frame of it)


@dataclass(frozen=True)
class LabelSchema:
    classes: tuple[LabelClass, ...] = field(default_factory=tuple)
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    def __post_init__(self):
        for what, items in (("class", self.classes), ("attribute", self.attributes)):
            names = [item.name for item in items]
            for name in names:
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(f"a {what} needs a name")
            if len(set(names)) != len(names):
                twice = ", ".join(sorted({n for n in names if names.count(n) > 1}))
                raise ValueError(f"{what} names must differ: {twice} is used twice")
        for cls in self.classes:
            if not is_hex_color(cls.color):
                raise ValueError(f"class {cls.name!r}: colour must be '#rrggbb', got {cls.color!r}")
        for attribute in self.attributes:
            if attribute.scope not in SCOPES:
                raise ValueError(f"attribute {attribute.name!r}: scope must be object or frame, "
                                 f"got {attribute.scope!r}")

    @property
    def class_names(self) -> list[str]:
        return [cls.name for cls in self.classes]

    def class_color(self, name: str) -> str | None:
        return next((cls.color for cls in self.classes if cls.name == name), None)

    def attribute_names(self, scope: str) -> list[str]:
        return [a.name for a in self.attributes if a.scope == scope]


# ---- reading and editing a store -------------------------------------------------------------
def schema(store: AnnotationStore) -> LabelSchema:
    return store.meta(SCHEMA_KEY) or LabelSchema()


def values(store: AnnotationStore) -> Values:
    return store.meta(VALUES_KEY) or {}


def attributes_of(store: AnnotationStore, obj_id: int, frame_idx: int | None = None) -> frozenset[str]:
    """The attributes set on the object (frame_idx None) or on the object on one frame."""
    return values(store).get((obj_id, frame_idx), frozenset())


def set_schema(store: AnnotationStore, new: LabelSchema, text: str = "Edit labels") -> None:
    """Replace the schema (one undo step). A renamed class (same position, same count) renames the
    objects' labels; objects of a removed class lose their label; values of removed attributes go."""
    old = schema(store)
    renamed = {}
    if len(old.classes) == len(new.classes):
        renamed = {a.name: b.name for a, b in zip(old.classes, new.classes) if a.name != b.name}
    with store.macro(text):
        for obj in store.objects:
            if obj.label and obj.label in old.class_names:
                label = renamed.get(obj.label, obj.label)
                store.update_object(obj.obj_id, label=label if label in new.class_names else "",
                                    color=new.class_color(label) or obj.color)
        kept = {key: names & {a.name for a in new.attributes
                              if a.scope == ("object" if key[1] is None else "frame")}
                for key, names in values(store).items()}
        store.set_meta(VALUES_KEY, {key: names for key, names in kept.items() if names} or None)
        store.set_meta(SCHEMA_KEY, new if new != LabelSchema() else None)


def assign_class(store: AnnotationStore, obj_id: int, name: str) -> None:
    """Give an object a class of the schema ("" for none); it takes the class colour (one undo step)."""
    current = schema(store)
    if name and name not in current.class_names:
        raise ValueError(f"{name!r} is not a class of the label schema "
                         f"({', '.join(current.class_names) or 'none yet'})")
    store.update_object(obj_id, label=name, color=current.class_color(name) or store.get_object(obj_id).color)


def set_attribute(store: AnnotationStore, obj_id: int, name: str, on: bool, frame_idx: int | None = None) -> None:
    """Set or clear a yes/no attribute on an object (frame_idx None) or on one of its frames."""
    scope = "object" if frame_idx is None else "frame"
    if name not in schema(store).attribute_names(scope):
        raise ValueError(f"{name!r} is not a {scope} attribute of the label schema")
    store.get_object(obj_id)
    key = (obj_id, frame_idx)
    value = dict(values(store))
    names = (value.get(key, frozenset()) | {name}) if on else (value.get(key, frozenset()) - {name})
    if names:
        value[key] = frozenset(names)
    else:
        value.pop(key, None)
    where = "" if frame_idx is None else f" on frame {frame_idx}"
    store.set_meta(VALUES_KEY, value or None, f"{'Set' if on else 'Clear'} {name}{where}")


def rename_class(current: LabelSchema, index: int, name: str) -> LabelSchema:
    classes = list(current.classes)
    classes[index] = replace(classes[index], name=name)
    return replace(current, classes=tuple(classes))


# ---- files ---------------------------------------------------------------------------------
def check_object_labels(store: AnnotationStore, field_name: str = "objects") -> None:
    """With classes in the schema, every object's label must be one of them (or empty)."""
    names = schema(store).class_names
    if not names:
        return
    for index, obj in enumerate(store.objects):
        if obj.label and obj.label not in names:
            raise FormatError(f"{obj.label!r} is not a class of the label schema (labels.classes: {', '.join(names)})",
                              f"{field_name}[{index}].label")


def schema_to_json(store: AnnotationStore) -> dict | None:
    current = schema(store)
    if current == LabelSchema():
        return None
    return {"classes": [{"name": c.name, "color": c.color} for c in current.classes],
            "attributes": [{"name": a.name, "scope": a.scope} for a in current.attributes]}


def values_to_json(store: AnnotationStore) -> dict | None:
    out: dict[str, dict] = {}
    for (obj_id, frame_idx), names in sorted(values(store).items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
        if obj_id not in store:
            continue
        entry = out.setdefault(str(obj_id), {})
        if frame_idx is None:
            entry["object"] = sorted(names)
        else:
            entry.setdefault("frames", {})[str(frame_idx)] = sorted(names)
    return out or None


def schema_from_json(value) -> LabelSchema:
    if not isinstance(value, dict):
        raise FormatError(f"expected an object, got {_type(value)}", SCHEMA_KEY)
    unknown = set(value) - {"classes", "attributes"}
    if unknown:
        raise FormatError(f"unknown key(s) {', '.join(sorted(unknown))}; expected classes, attributes", SCHEMA_KEY)
    classes = [LabelClass(_string(item, "name", where), _string(item, "color", where))
               for where, item in _items(value, "classes")]
    attributes = [Attribute(_string(item, "name", where), _string(item, "scope", where))
                  for where, item in _items(value, "attributes")]
    for where, item in _items(value, "classes"):
        if not is_hex_color(item["color"]):
            raise FormatError(f'expected a colour "#rrggbb", got {item["color"]!r}', f"{where}.color")
    for where, item in _items(value, "attributes"):
        if item["scope"] not in SCOPES:
            raise FormatError(f'expected "object" or "frame", got {item["scope"]!r}', f"{where}.scope")
    try:
        return LabelSchema(tuple(classes), tuple(attributes))
    except ValueError as exc:
        raise FormatError(str(exc), SCHEMA_KEY) from None


def values_from_json(value, store: AnnotationStore, current: LabelSchema, num_frames: int) -> Values:
    if not isinstance(value, dict):
        raise FormatError(f"expected an object, got {_type(value)}", VALUES_KEY)
    out: Values = {}
    for key, entry in value.items():
        where = f"{VALUES_KEY}[{json.dumps(key)}]"
        if not (isinstance(key, str) and key.isdigit() and int(key) in store):
            raise FormatError("expected the id of an object in this file", where)
        if not isinstance(entry, dict) or set(entry) - {"object", "frames"}:
            raise FormatError('expected an object with "object" and / or "frames"', where)
        if "object" in entry:
            out[(int(key), None)] = _names(entry["object"], current.attribute_names("object"), f"{where}.object")
        frames = entry.get("frames", {})
        if not isinstance(frames, dict):
            raise FormatError(f"expected an object, got {_type(frames)}", f"{where}.frames")
        for frame_key, names in frames.items():
            frame_where = f"{where}.frames[{json.dumps(frame_key)}]"
            if not (frame_key.isdigit() and int(frame_key) < num_frames):
                raise FormatError(f"expected a frame index below {num_frames}", frame_where)
            out[(int(key), int(frame_key))] = _names(names, current.attribute_names("frame"), frame_where)
    return {k: v for k, v in out.items() if v}


def _items(value: dict, key: str):
    items = value.get(key, [])
    if not isinstance(items, list):
        raise FormatError(f"expected a list, got {_type(items)}", f"{SCHEMA_KEY}.{key}")
    for n, item in enumerate(items):
        where = f"{SCHEMA_KEY}.{key}[{n}]"
        if not isinstance(item, dict):
            raise FormatError(f"expected an object, got {_type(item)}", where)
        yield where, item


def _string(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FormatError(f"expected a non-empty string, got {json.dumps(value)}", f"{where}.{key}")
    return value


def _names(value, allowed: list[str], where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError("expected a list of attribute names", where)
    for name in value:
        if name not in allowed:
            raise FormatError(f"{name!r} is not one of the schema's attributes here ({', '.join(allowed) or 'none'})",
                              where)
    return frozenset(value)


def _type(value) -> str:
    return type(value).__name__
