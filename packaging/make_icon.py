"""Draw the TrackStudio icon: resources/icons/trackstudio.png (256x256) and trackstudio.svg.

A film-strip tile with a tracked object: a mask blob inside tracking-box corner brackets at the end
of a trajectory of points. Both files come from the same shapes, so they match.

    python packaging/make_icon.py            # rewrites both files
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
SUPERSAMPLE = 4  # draw large, then downsample: Pillow draws without anti-aliasing
OUT_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"

BACKGROUND = "#1f3a5f"
HOLES = "#34608f"
TRAIL = "#ffb000"
MASK = "#4cc9f0"
BOX = "#ffffff"

TILE = (8, 8, 248, 248)
TILE_RADIUS = 44
HOLE_ROWS = (18, 226)  # top y of the film-strip hole rows
HOLE_XS = range(28, 229, 32)
HOLE_W, HOLE_H = 16, 12
TRAIL_POINTS = [(44, 196, 5), (70, 186, 6), (96, 170, 7), (120, 150, 8), (140, 128, 9), (158, 110, 10)]
MASK_CIRCLE = (184, 88, 24)  # centre x, centre y, radius
BOX_RECT = (146, 50, 222, 126)
BRACKET = 22  # length of each corner bracket arm
STROKE = 8


def _brackets() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Line segments of the four corner brackets of the tracking box."""
    x1, y1, x2, y2 = BOX_RECT
    segments = []
    for x, dx in ((x1, 1), (x2, -1)):
        for y, dy in ((y1, 1), (y2, -1)):
            segments.append(((x, y), (x + dx * BRACKET, y)))
            segments.append(((x, y), (x, y + dy * BRACKET)))
    return segments


def draw_png(path: Path) -> None:
    k = SUPERSAMPLE
    image = Image.new("RGBA", (SIZE * k, SIZE * k), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle([v * k for v in TILE], radius=TILE_RADIUS * k, fill=BACKGROUND)
    for y in HOLE_ROWS:
        for x in HOLE_XS:
            draw.rounded_rectangle([x * k, y * k, (x + HOLE_W) * k, (y + HOLE_H) * k], radius=3 * k, fill=HOLES)
    for x, y, r in TRAIL_POINTS:
        draw.ellipse([(x - r) * k, (y - r) * k, (x + r) * k, (y + r) * k], fill=TRAIL)
    cx, cy, r = MASK_CIRCLE
    draw.ellipse([(cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k], fill=MASK)
    half = STROKE * k // 2
    for (ax, ay), (bx, by) in _brackets():
        draw.rectangle([min(ax, bx) * k - half, min(ay, by) * k - half,
                        max(ax, bx) * k + half, max(ay, by) * k + half], fill=BOX)
    image.resize((SIZE, SIZE), Image.LANCZOS).save(path)


def svg_text() -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">',
             f'<rect x="{TILE[0]}" y="{TILE[1]}" width="{TILE[2] - TILE[0]}" height="{TILE[3] - TILE[1]}" '
             f'rx="{TILE_RADIUS}" fill="{BACKGROUND}"/>']
    parts += [f'<rect x="{x}" y="{y}" width="{HOLE_W}" height="{HOLE_H}" rx="3" fill="{HOLES}"/>'
              for y in HOLE_ROWS for x in HOLE_XS]
    parts += [f'<circle cx="{x}" cy="{y}" r="{r}" fill="{TRAIL}"/>' for x, y, r in TRAIL_POINTS]
    parts.append('<circle cx="{}" cy="{}" r="{}" fill="{}"/>'.format(*MASK_CIRCLE, MASK))
    path = " ".join(f"M{ax} {ay}L{bx} {by}" for (ax, ay), (bx, by) in _brackets())
    parts.append(f'<path d="{path}" stroke="{BOX}" stroke-width="{STROKE}" stroke-linecap="square" fill="none"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    draw_png(OUT_DIR / "trackstudio.png")
    (OUT_DIR / "trackstudio.svg").write_text(svg_text())
    print(f"wrote {OUT_DIR / 'trackstudio.png'} and {OUT_DIR / 'trackstudio.svg'}")


if __name__ == "__main__":
    main()
