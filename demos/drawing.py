"""What the demos draw beyond boxes: a GUI action on its screenshot (click point, swipe arrow, typed text),
time spans shaded on a picture whose x axis is time (a timeline, a waveform, a spectrogram), and the colours
that tell ground truth from prediction. Boxes and points of a dataset row are drawn by the dataset card's
own `draw_boxes` (`mmreason.data_builders.card`); here only what it does not draw.

>>> from PIL import Image
>>> im = draw_action(Image.new("RGB", (100, 100), "white"), {"action": "click", "coordinate": [50, 50]}, GT)
>>> im.getpixel((50, 50 - 12)) == GT
True
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

GT = (0, 200, 0)  # ground truth: the dataset card's green
PREDICTED = (230, 0, 120)  # what the model wrote
SPAN = (255, 200, 0)  # a cited time span
# screen-space unit vectors of the directions a swipe or scroll names (y grows downwards)
DIRECTIONS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def _font(image: Image.Image) -> Any:
    return ImageFont.load_default(size=max(12, round(max(image.size) / 45)))


def _arrow(draw: ImageDraw.ImageDraw, start: Sequence[float], end: Sequence[float], colour, width: int) -> None:
    draw.line((*start, *end), fill=colour, width=width)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = 4 * width
    for turn in (2.6, -2.6):  # two barbs, about 150 degrees off the shaft
        draw.line((*end, end[0] + head * math.cos(angle + turn), end[1] + head * math.sin(angle + turn)),
                  fill=colour, width=width)


def draw_action(image: Image.Image, action: Mapping[str, Any] | None, colour=GT) -> Image.Image:
    """A copy of `image` with the action drawn in original pixels: a crosshair in a ring at a click's (or
    long press's) point, an arrow for a swipe/scroll/drag (to ``coordinate2``, else a fifth of the screen in
    its ``direction``), the text of a ``type``/``open``/``key``, and the action's name at its point."""
    out = image.convert("RGB").copy()
    if not isinstance(action, Mapping) or not isinstance(action.get("action"), str):
        return out
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 250))
    kind, point = action["action"], action.get("coordinate")
    valid = isinstance(point, (list, tuple)) and len(point) == 2 and all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in point)
    x, y = (float(point[0]), float(point[1])) if valid else (out.width / 2, out.height / 2)
    end = action.get("coordinate2")
    direction = DIRECTIONS.get(str(action.get("direction", "")).lower())
    if kind in ("swipe", "scroll", "drag") and (end is not None or direction is not None):
        if end is None:
            reach = max(out.size) / 5
            end = (x + direction[0] * reach, y + direction[1] * reach)
        _arrow(draw, (x, y), (float(end[0]), float(end[1])), colour, width)
    elif valid:
        r = 4 * width
        draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=width)
        draw.line((x - 2 * r, y, x + 2 * r, y), fill=colour, width=max(1, width // 2))
        draw.line((x, y - 3 * r, x, y + 3 * r), fill=colour, width=max(1, width // 2))
    label = kind + (f": {action['text']!s}" if action.get("text") else "") + \
        (f" {action['button']}" if action.get("button") else "")
    draw.text((x + 5 * width, y + 2 * width), label[:60], fill=colour, font=_font(out),
              stroke_width=2, stroke_fill=(255, 255, 255))
    return out


def shade_spans(image: Image.Image, spans: Iterable[Mapping[str, Any]], x_of, colour=SPAN,
                alpha: float = 0.35) -> Image.Image:
    """A copy of `image` whose x axis is time, with each ``{"start", "end"}`` span (seconds) shaded and
    edged; `x_of(seconds) -> pixel x` is the picture's own time axis (a spectrogram's `x_at`)."""
    base = image.convert("RGB")
    layer = Image.new("RGB", base.size, colour)
    mask = Image.new("L", base.size, 0)
    edges = []
    draw = ImageDraw.Draw(mask)
    for span in spans:
        try:
            x1, x2 = sorted((x_of(float(span["start"])), x_of(float(span["end"]))))
        except (KeyError, TypeError, ValueError):
            continue  # a span the model wrote badly is skipped, never fatal
        x1, x2 = max(0, round(x1)), min(base.width - 1, round(x2))
        if x2 < 0 or x1 > base.width - 1:
            continue
        draw.rectangle((x1, 0, max(x1, x2), base.height), fill=round(255 * alpha))
        edges.append((x1, max(x1, x2)))
    out = Image.composite(layer, base, mask)
    lines = ImageDraw.Draw(out)
    for x1, x2 in edges:
        for x in (x1, x2):
            lines.line((x, 0, x, base.height), fill=colour, width=2)
    return out
