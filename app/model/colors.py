"""Colours: the default object palette and the DAVIS mask palette."""
from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

# 20 colours that stay apart from each other and from typical video content (a Glasbey-like pick,
# bright first); objects beyond 20 reuse them in order.
OBJECT_PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#a9a9a9",
)

_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def is_hex_color(value: object) -> bool:
    return isinstance(value, str) and _HEX_COLOR.fullmatch(value) is not None


def next_color(used: Iterable[str]) -> str:
    """The first palette colour not in `used`; when all are taken, the least used one."""
    counts = {color: 0 for color in OBJECT_PALETTE}
    for color in used:
        if color in counts:
            counts[color] += 1
    return min(OBJECT_PALETTE, key=lambda color: counts[color])


def davis_palette() -> np.ndarray:
    """(256, 3) uint8: the PASCAL VOC / DAVIS colour map (index bits spread over R, G, B)."""
    index = np.arange(256)
    palette = np.zeros((256, 3), np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            palette[:, channel] |= bit << (7 - shift)
    return palette.astype(np.uint8)
