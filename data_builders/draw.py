"""Pixel-exact drawing for procedural scenes: every item is drawn through its own mask, so its box is exact.

An item is rasterised onto a small local ``L`` mask, its tight box is the mask's bounding box, and the
colour is pasted into the canvas through that same mask. The drawn pixels and the recorded box can
therefore never disagree, which is what lets tests check boxes against the saved pixels. Colours are
fully saturated and distinct from every background, so "pixels of the object's colour" is well defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Object colours: far apart in RGB so a colour test with a small tolerance never confuses two of them.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 200, 20),
    "orange": (245, 130, 20),
    "purple": (140, 50, 180),
    "pink": (240, 100, 180),
    "cyan": (20, 190, 200),
    "brown": (120, 70, 20),
    "black": (20, 20, 20),
}
# Light backgrounds, none of them close to an object colour.
BACKGROUNDS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255), (245, 245, 235), (235, 240, 250), (240, 236, 228))

SHAPES = ("circle", "square", "triangle", "diamond", "hexagon")
ICONS = ("star", "heart", "arrow", "cross", "house")
ALL_SHAPES = SHAPES + ICONS


def _polygon(n: int, w: int, h: int, phase: float) -> list[tuple[float, float]]:
    cx, cy, rx, ry = (w - 1) / 2, (h - 1) / 2, (w - 1) / 2, (h - 1) / 2
    return [(cx + rx * math.cos(phase + 2 * math.pi * i / n), cy + ry * math.sin(phase + 2 * math.pi * i / n))
            for i in range(n)]


def shape_mask(shape: str, w: int, h: int) -> Image.Image:
    """A filled `shape` fitting a `w` x `h` box, as a binary ``L`` mask (0 or 255, no anti-aliasing)."""
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    x2, y2 = w - 1, h - 1
    if shape == "circle":
        d.ellipse((0, 0, x2, y2), fill=255)
    elif shape == "square":
        d.rectangle((0, 0, x2, y2), fill=255)
    elif shape == "triangle":
        d.polygon([(x2 / 2, 0), (x2, y2), (0, y2)], fill=255)
    elif shape == "diamond":
        d.polygon([(x2 / 2, 0), (x2, y2 / 2), (x2 / 2, y2), (0, y2 / 2)], fill=255)
    elif shape == "hexagon":
        d.polygon(_polygon(6, w, h, 0.0), fill=255)
    elif shape == "star":
        outer = _polygon(5, w, h, -math.pi / 2)
        cx, cy = x2 / 2, y2 / 2
        inner = [(cx + 0.4 * (x - cx), cy + 0.4 * (y - cy))
                 for x, y in _polygon(5, w, h, -math.pi / 2 + math.pi / 5)]
        d.polygon([p for pair in zip(outer, inner) for p in pair], fill=255)
    elif shape == "heart":
        d.ellipse((0, 0, x2 * 0.55, y2 * 0.55), fill=255)
        d.ellipse((x2 * 0.45, 0, x2, y2 * 0.55), fill=255)
        d.polygon([(x2 * 0.02, y2 * 0.36), (x2 * 0.98, y2 * 0.36), (x2 / 2, y2)], fill=255)
    elif shape == "arrow":
        d.rectangle((0, y2 * 0.35, x2 * 0.55, y2 * 0.65), fill=255)
        d.polygon([(x2 * 0.5, 0), (x2, y2 / 2), (x2 * 0.5, y2)], fill=255)
    elif shape == "cross":
        d.rectangle((x2 * 0.33, 0, x2 * 0.67, y2), fill=255)
        d.rectangle((0, y2 * 0.33, x2, y2 * 0.67), fill=255)
    elif shape == "house":
        d.polygon([(x2 / 2, 0), (x2, y2 * 0.45), (0, y2 * 0.45)], fill=255)
        d.rectangle((x2 * 0.15, y2 * 0.45, x2 * 0.85, y2), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(ALL_SHAPES)}")
    return m


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font: the same glyphs on every machine, so renders are reproducible."""
    return ImageFont.load_default(size=size)


def text_mask(text: str, size: int) -> Image.Image:
    """Anti-aliased text as an ``L`` mask cropped to its ink."""
    f = font(size)
    left, top, right, bottom = f.getbbox(text)
    m = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(m).text((2 - left, 2 - top), text, font=f, fill=255)
    return m.crop(m.getbbox())


def pie_mask(size: int, start_deg: float, end_deg: float) -> Image.Image:
    m = Image.new("L", (size, size), 0)
    ImageDraw.Draw(m).pieslice((0, 0, size - 1, size - 1), start_deg, end_deg, fill=255)
    return m


@dataclass(frozen=True)
class Item:
    """One drawn thing and its exact tight box in canvas pixels (x2, y2 exclusive)."""

    kind: str  # "shape" | "text" | "bar" | "slice"
    name: str  # shape name, the text, or the chart category
    color: str
    box: tuple[int, int, int, int]

    @property
    def label(self) -> str:
        if self.kind == "shape":
            return f"{self.color} {self.name}"
        if self.kind == "slice":
            return f"{self.color} slice"
        return self.name if self.kind == "text" else f"{self.name} {self.kind}"


def paste(canvas: Image.Image, mask: Image.Image, xy: tuple[int, int], color: str | tuple[int, int, int],
          kind: str, name: str, color_name: str | None = None) -> Item:
    """Paint `color` through `mask` at `xy`; returns the item with its tight box."""
    rgb = COLORS[color] if isinstance(color, str) else color
    canvas.paste(rgb, xy, mask)
    bx = mask.getbbox()
    if bx is None:
        raise ValueError(f"empty mask for {kind} {name!r}")
    x, y = xy
    return Item(kind, name, color_name or str(color), (x + bx[0], y + bx[1], x + bx[2], y + bx[3]))


def draw_shape(canvas: Image.Image, shape: str, color: str, box: tuple[int, int, int, int]) -> Item:
    x1, y1, x2, y2 = box
    return paste(canvas, shape_mask(shape, x2 - x1, y2 - y1), (x1, y1), color, "shape", shape, color)


def draw_text(canvas: Image.Image, text: str, color: str, xy: tuple[int, int], size: int) -> Item:
    return paste(canvas, text_mask(text, size), xy, color, "text", text, color)


def color_pixels(image: np.ndarray, color: str | tuple[int, int, int], tol: int = 0) -> np.ndarray:
    """Boolean H x W mask of pixels within `tol` (per channel) of `color`."""
    rgb = np.asarray(COLORS[color] if isinstance(color, str) else color, dtype=np.int16)
    return (np.abs(image[..., :3].astype(np.int16) - rgb) <= tol).all(axis=-1)


def place(rng: np.random.Generator, w: int, h: int, size: tuple[int, int], taken: list[tuple[int, int, int, int]],
          *, margin: int = 6, region: tuple[int, int, int, int] | None = None, tries: int = 200
          ) -> tuple[int, int, int, int] | None:
    """A random free box of `size` inside `region` (default: the canvas) at least `margin` px from `taken`."""
    bw, bh = size
    rx1, ry1, rx2, ry2 = region or (margin, margin, w - margin, h - margin)
    if rx2 - rx1 < bw or ry2 - ry1 < bh:
        return None
    for _ in range(tries):
        x = int(rng.integers(rx1, rx2 - bw + 1))
        y = int(rng.integers(ry1, ry2 - bh + 1))
        cand = (x, y, x + bw, y + bh)
        if all(cand[2] + margin <= t[0] or t[2] + margin <= cand[0] or cand[3] + margin <= t[1]
               or t[3] + margin <= cand[1] for t in taken):
            return cand
    return None
