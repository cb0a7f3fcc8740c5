"""Coordinates: 2D boxes and points, 3D axis-aligned boxes, and the frames they live in.

Coordinate confusion is the most reported grounding bug in this field, so every conversion goes
through here. Three 2D frames:

- ``"pixel"``    absolute pixels of the original image;
- ``"resized"``  absolute pixels of the image after the family's ``smart_resize`` (Qwen2.5-VL outputs);
- ``"norm1000"`` relative integers in 0-1000 (Qwen2-VL and Qwen3-VL outputs, UI-TARS v1, OS-Atlas);
- ``"norm1"``    relative floats in 0-1 (ms-swift ``norm1``, GUI-R1 datasets).

Boxes are ``(x1, y1, x2, y2)`` with the top-left corner first; 3D boxes are axis-aligned
``(x1, y1, z1, x2, y2, z2)`` in metres. Every metric here returns a finite float for any input,
including NaN, infinite or inverted boxes (they score 0), because model output reaches these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from mmreason.families import Family, as_family

Box = tuple[float, float, float, float]
Point = tuple[float, float]
Box3D = tuple[float, float, float, float, float, float]

FRAMES = ("pixel", "resized", "norm1000", "norm1")
MAX_ASPECT_RATIO = 200  # qwen-vl-utils rejects images more elongated than this


# ----------------------------------------------------------------------------------------- sizing
def smart_resize(
    height: int, width: int, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 28 * 28 * 16384
) -> tuple[int, int]:
    """Qwen-VL resizing rule: both sides a multiple of `factor`, aspect ratio kept, pixel count clamped.

    Sides round to the nearest multiple of `factor` (at least `factor`); if the area then exceeds
    `max_pixels` the image is scaled down (floor), if under `min_pixels` scaled up (ceil).

    >>> smart_resize(480, 640)
    (476, 644)
    >>> smart_resize(1000, 1000, factor=32, max_pixels=512 * 512)
    (512, 512)
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds {MAX_ASPECT_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@dataclass(frozen=True)
class ImageFrame:
    """Original and resized size of one image as a model saw it: enough to map any box between frames."""

    width: int
    height: int
    resized_width: int
    resized_height: int

    @classmethod
    def for_family(
        cls, width: int, height: int, family: str | Family, *, min_pixels: int | None = None,
        max_pixels: int | None = None,
    ) -> "ImageFrame":
        """The frame an image of `width`x`height` gets from `family`'s processor at the given pixel budget."""
        fam = as_family(family)
        rh, rw = smart_resize(
            height, width, factor=fam.factor,
            min_pixels=fam.min_pixels if min_pixels is None else min_pixels,
            max_pixels=fam.max_pixels if max_pixels is None else max_pixels,
        )
        return cls(width, height, rw, rh)

    @classmethod
    def identity(cls, width: int, height: int) -> "ImageFrame":
        return cls(width, height, width, height)

    def scale(self, frame: str) -> tuple[float, float]:
        """Multipliers (sx, sy) that take original pixels into `frame`."""
        if frame == "pixel":
            return 1.0, 1.0
        if frame == "resized":
            return self.resized_width / self.width, self.resized_height / self.height
        if frame == "norm1000":
            return 1000.0 / self.width, 1000.0 / self.height
        if frame == "norm1":
            return 1.0 / self.width, 1.0 / self.height
        raise ValueError(f"unknown coordinate frame {frame!r}; known: {', '.join(FRAMES)}")


def convert_point(point: Sequence[float], src: str, dst: str, frame: ImageFrame) -> Point:
    """Map a point between frames of the same image."""
    sx0, sy0 = frame.scale(src)
    sx1, sy1 = frame.scale(dst)
    x, y = float(point[0]), float(point[1])
    return (x / sx0 * sx1, y / sy0 * sy1)


def convert_box(box: Sequence[float], src: str, dst: str, frame: ImageFrame) -> Box:
    """Map a box between frames of the same image.

    >>> f = ImageFrame(width=1000, height=500, resized_width=504, resized_height=252)
    >>> convert_box((100, 50, 300, 250), "pixel", "norm1000", f)
    (100.0, 100.0, 300.0, 500.0)
    """
    x1, y1 = convert_point(box[:2], src, dst, frame)
    x2, y2 = convert_point(box[2:4], src, dst, frame)
    return (x1, y1, x2, y2)


def model_frame(family: str | Family) -> str:
    """The frame a family's box and point outputs use."""
    return as_family(family).box_frame


def box_to_model(box: Sequence[float], family: str | Family, frame: ImageFrame) -> Box:
    """Original-pixel box -> the coordinates `family` is trained to emit for it."""
    return convert_box(box, "pixel", model_frame(family), frame)


def box_from_model(box: Sequence[float], family: str | Family, frame: ImageFrame) -> Box:
    """A box emitted by `family` -> original pixels."""
    return convert_box(box, model_frame(family), "pixel", frame)


def point_to_model(point: Sequence[float], family: str | Family, frame: ImageFrame) -> Point:
    return convert_point(point, "pixel", model_frame(family), frame)


def point_from_model(point: Sequence[float], family: str | Family, frame: ImageFrame) -> Point:
    return convert_point(point, model_frame(family), "pixel", frame)


# ------------------------------------------------------------------------------------ 2D metrics
def _finite(values: Iterable[float]) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError, OverflowError):
        return False


def is_valid_box(box: Sequence[float]) -> bool:
    """Four finite numbers with x1 < x2 and y1 < y2."""
    return len(box) == 4 and _finite(box) and box[0] < box[2] and box[1] < box[3]


def box_area(box: Sequence[float]) -> float:
    if not (len(box) == 4 and _finite(box)):
        return 0.0
    return max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))


def clip_box(box: Sequence[float], width: float, height: float) -> Box:
    """Clamp a box to the image; may return an empty box (zero area) when it lies outside."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _safe_ratio(num: float, den: float) -> float:
    if den <= 0 or not math.isfinite(num) or not math.isfinite(den):
        return 0.0
    return min(1.0, max(0.0, num / den))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union in [0, 1]; 0 for any invalid box.

    >>> iou((0, 0, 2, 2), (1, 1, 3, 3))
    0.14285714285714285
    """
    if not (is_valid_box(a) and is_valid_box(b)):
        return 0.0
    inter = _intersection(a, b)
    return _safe_ratio(inter, box_area(a) + box_area(b) - inter)


def giou(a: Sequence[float], b: Sequence[float]) -> float:
    """Generalised IoU in [-1, 1]: IoU minus the share of the enclosing box covered by neither; -1 if invalid."""
    if not (is_valid_box(a) and is_valid_box(b)):
        return -1.0
    inter = _intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    if not (math.isfinite(union) and math.isfinite(hull)) or hull <= 0 or union <= 0:
        return -1.0
    value = inter / union - (hull - union) / hull
    return max(-1.0, min(1.0, value)) if math.isfinite(value) else -1.0


def point_in_box(point: Sequence[float], box: Sequence[float]) -> bool:
    """Inclusive containment test; False for anything non-finite."""
    if len(point) != 2 or len(box) != 4 or not (_finite(point) and _finite(box)):
        return False
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def box_center(box: Sequence[float]) -> Point:
    return ((float(box[0]) + float(box[2])) / 2, (float(box[1]) + float(box[3])) / 2)


def enlarge_box(box: Sequence[float], ratio: float) -> Box:
    """Scale a box about its centre (InfiGUI-R1's AndroidControl matcher uses 1.2x)."""
    cx, cy = box_center(box)
    hw, hh = (box[2] - box[0]) * ratio / 2, (box[3] - box[1]) * ratio / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def union_area_iou(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], *, grid: int = 256) -> float:
    """IoU between the union of predicted boxes and the union of GT boxes (GRIT's grounding IoU).

    Computed exactly on the compressed grid of all box edges, so overlapping boxes are not double counted.
    `grid` caps the number of boxes per side used (model output can hold thousands).
    """
    p = [tuple(map(float, b)) for b in pred if is_valid_box(b)][:grid]
    g = [tuple(map(float, b)) for b in gt if is_valid_box(b)][:grid]
    if not p or not g:
        return 0.0
    xs = sorted({v for b in p + g for v in (b[0], b[2])})
    ys = sorted({v for b in p + g for v in (b[1], b[3])})
    inter = union = 0.0
    for i in range(len(xs) - 1):
        cx = (xs[i] + xs[i + 1]) / 2
        wx = xs[i + 1] - xs[i]
        p_col = [b for b in p if b[0] <= cx <= b[2]]
        g_col = [b for b in g if b[0] <= cx <= b[2]]
        if not p_col and not g_col:
            continue
        for j in range(len(ys) - 1):
            cy = (ys[j] + ys[j + 1]) / 2
            in_p = any(b[1] <= cy <= b[3] for b in p_col)
            in_g = any(b[1] <= cy <= b[3] for b in g_col)
            if in_p or in_g:
                cell = wx * (ys[j + 1] - ys[j])
                union += cell
                if in_p and in_g:
                    inter += cell
    return _safe_ratio(inter, union)


def point_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance; +inf when either point is not two finite numbers."""
    if len(a) != 2 or len(b) != 2 or not (_finite(a) and _finite(b)):
        return math.inf
    d = math.hypot(float(a[0]) - float(b[0]), float(a[1]) - float(b[1]))
    return d if math.isfinite(d) else math.inf


# ------------------------------------------------------------------------------------ 3D boxes
def is_valid_box_3d(box: Sequence[float]) -> bool:
    return len(box) == 6 and _finite(box) and all(box[i] < box[i + 3] for i in range(3))


def box3d_volume(box: Sequence[float]) -> float:
    if not (len(box) == 6 and _finite(box)):
        return 0.0
    return math.prod(max(0.0, float(box[i + 3]) - float(box[i])) for i in range(3))


def iou_3d(a: Sequence[float], b: Sequence[float]) -> float:
    """Axis-aligned 3D IoU in [0, 1]; 0 for any invalid box.

    >>> iou_3d((0, 0, 0, 2, 2, 2), (1, 1, 1, 3, 3, 3))
    0.06666666666666667
    """
    if not (is_valid_box_3d(a) and is_valid_box_3d(b)):
        return 0.0
    inter = math.prod(max(0.0, min(a[i + 3], b[i + 3]) - max(a[i], b[i])) for i in range(3))
    return _safe_ratio(inter, box3d_volume(a) + box3d_volume(b) - inter)


def center_size_to_aabb(center_size: Sequence[float]) -> Box3D:
    """(cx, cy, cz, dx, dy, dz) -> (x1, y1, z1, x2, y2, z2), the conversion GS-Reasoner's data needs."""
    cx, cy, cz, dx, dy, dz = (float(v) for v in center_size)
    return (cx - dx / 2, cy - dy / 2, cz - dz / 2, cx + dx / 2, cy + dy / 2, cz + dz / 2)


def aabb_to_center_size(box: Sequence[float]) -> Box3D:
    x1, y1, z1, x2, y2, z2 = (float(v) for v in box)
    return ((x1 + x2) / 2, (y1 + y2) / 2, (z1 + z2) / 2, x2 - x1, y2 - y1, z2 - z1)


def point_in_box_3d(point: Sequence[float], box: Sequence[float]) -> bool:
    if len(point) != 3 or len(box) != 6 or not (_finite(point) and _finite(box)):
        return False
    return all(box[i] <= point[i] <= box[i + 3] for i in range(3))
