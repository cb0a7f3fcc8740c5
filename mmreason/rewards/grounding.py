"""Geometric rewards: 2D box IoU / GIoU / IoU>=tau / union IoU / mAP, referring IoU, click-in-box, click
distance, 3D IoU.

Frames are explicit. Ground truth (``boxes``, ``points``) is in ORIGINAL pixels of the image it names;
the completion's coordinates are in ``coord_frame`` ("pixel", "resized", "norm1000", "norm1"), or in
``family``'s output frame (Qwen2-VL/Qwen3-VL 0-1000, Qwen2.5-VL resized pixels) when only ``family`` is
given. Mapping to pixels needs the image sizes from the ``image_frames`` column
(``[{width, height, resized_width, resized_height}, ...]``, one per image, which the collator writes) or
``image_sizes`` (``[[w, h], ...]``; the resized size is then recomputed with ``family``'s smart_resize at
``min_pixels``/``max_pixels``). A row whose frame cannot be known scores None and counts in
``<reward>/no_frame``. A predicted box is read in the frame of the image of the GT box it is compared
with (completions do not say which image they mean).

Which boxes count: ``where="answer"`` takes the boxes inside the last ``<answer>`` block (the whole text
when there is no answer block), ``where="all"`` every box in the completion.

Scenes with several objects (``meta["objects"]``: ``[{"kind", "name", "color", "box"}, ...]`` in original
pixels of the row's first GT image, as the `image_scenes` builder writes them) also say which object a box
matches best: `object_overlap` is that one test, `referring_iou` rewards with it and the eval's
``wrong_object`` rate counts with it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, box_to_pixels, decode_json, floats, gt_boxes, gt_boxes_3d, image_frame, mapping, point_to_pixels,
    resolve_coord_frame, reward_function, safe_float, score_rows, warn_column,
)

WHERE = ("answer", "all")
COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
MAX_DETECTIONS = 100  # COCO's maxDets: a completion listing thousands of boxes is cut, not timed out


def in_scope(trace, where: str, items):
    """The ``items`` (mentions of ``trace``: boxes, points, 3D boxes) a reward reads for ``where``.

    >>> from mmreason.traces import parse
    >>> t = parse('<think>[1, 1, 2, 2]</think><answer>{"bbox_2d": [3, 3, 4, 4]}</answer>')
    >>> [m.box for m in in_scope(t, "answer", t.boxes)]
    [(3.0, 3.0, 4.0, 4.0)]
    """
    if where == "all":
        return list(items)
    answers = trace.blocks_of("answer")
    if not answers:
        return list(items)
    block = answers[-1]
    return [m for m in items if block.start <= m.start and m.end <= block.end]


def _check(name: str, where: str, coord_frame, family) -> str:
    if where not in WHERE:
        raise RecipeError(f"{name}: where must be one of {WHERE}, got {where!r}")
    return resolve_coord_frame(coord_frame, family, "pixel")


class _Geo:
    """Per-row helper that maps a completion's boxes and points to the pixels of a given image."""

    def __init__(self, row, frame_name, family, min_pixels, max_pixels):
        self.row, self.frame_name, self.family = row, frame_name, family
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self._frames: dict[int, object] = {}

    def frame(self, image: int):
        if image not in self._frames:
            self._frames[image] = image_frame(self.row, image, self.frame_name, family=self.family,
                                              min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return self._frames[image]

    def box(self, box, image: int):
        return box_to_pixels(box, self.frame_name, self.frame(image))

    def point(self, point, image: int):
        return point_to_pixels(point, self.frame_name, self.frame(image))


def _run(name, completions, columns, score_one, frame_name, family, min_pixels, max_pixels):
    """`score_rows` with ``score_one(trace, row, geo, metrics)``, ``geo`` mapping to the row's pixels."""
    metrics = Metrics(name)

    def one(sample, metrics):
        geo = _Geo(sample.row, frame_name, family, min_pixels, max_pixels)
        return score_one(sample.trace, sample.row, geo, metrics)

    out = score_rows(completions, columns, one, metrics)
    for value in out:
        metrics.add("mean", value)
    metrics.emit(columns.get("log_metric"))
    return out


IOU_CONVENTIONS = ("continuous", "vlm_r1")


def vlm_r1_iou(a, b) -> float:
    """IoU as VLM-R1 computes it (``iou`` in src/open-r1-multimodal/src/open_r1/grpo_rec.py of
    github.com/om-ai-lab/VLM-R1): the intersection's right and bottom edges are read as the last pixel
    inside (``x2 - 1``, ``y2 - 1``) and the intersection counts only when those lie strictly beyond its left
    and top edges, then the intersection is ``(x2' - x1 + 1)·(y2' - y1 + 1)`` of those edges; areas in the
    union are ``(x2 - x1)·(y2 - y1)``. It equals the continuous IoU except that an overlap 1 px or less wide
    or tall counts 0. 0 for an invalid box or an empty union (where VLM-R1 divides by zero).

    >>> vlm_r1_iou((0, 0, 10, 10), (0, 0, 10, 20)), vlm_r1_iou((0, 0, 10, 10), (9, 0, 20, 10))
    (0.5, 0.0)
    """
    if not (geometry.is_valid_box(a) and geometry.is_valid_box(b)):
        return 0.0
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2] - 1, b[2] - 1), min(a[3] - 1, b[3] - 1)
    inter = (x2 - x1 + 1) * (y2 - y1 + 1) if x1 < x2 and y1 < y2 else 0.0
    union = geometry.box_area(a) + geometry.box_area(b) - inter
    return float(inter / union) if union > 0 and math.isfinite(union) else 0.0


def _iou_metric(name: str, convention: str):
    if convention not in IOU_CONVENTIONS:
        raise RecipeError(f"{name}: iou_convention must be one of {IOU_CONVENTIONS}, got {convention!r}")
    return geometry.iou if convention == "continuous" else vlm_r1_iou


def _best_over_gt(trace, row, geo, metrics, where, name, metric):
    gts = gt_boxes(row, reward=name)
    if not gts:
        return None
    preds = in_scope(trace, where, trace.boxes)
    if not preds:
        metrics.add("no_box", 1.0)
        return 0.0 if metric is not geometry.giou else -1.0
    best = None
    for box, _, image in gts:
        pixel = geo.box(preds[0].box, image)
        if pixel is None:
            continue
        value = metric(pixel, box)
        best = value if best is None else max(best, value)
    if best is None:
        metrics.add("no_frame", 1.0)
    return best


@reward_function
def box_iou(completions, *, where: str = "answer", coord_frame: str | None = None, family: str | None = None,
            min_pixels: int | None = None, max_pixels: int | None = None, iou_convention: str = "continuous",
            **columns):
    """IoU of the first predicted box with the best-matching GT box (0 without a box, None without GT).
    ``iou_convention="vlm_r1"`` computes it as VLM-R1's reward does (`vlm_r1_iou`).

    >>> box_iou(['<answer>{"bbox_2d": [0, 0, 10, 10]}</answer>'],
    ...         boxes=[[{"box": [0, 0, 10, 20], "image": 0}]])
    [0.5]
    """
    frame = _check("box_iou", where, coord_frame, family)
    metric = _iou_metric("box_iou", iou_convention)
    return _run("box_iou", completions, columns,
                lambda t, r, g, m: _best_over_gt(t, r, g, m, where, "box_iou", metric),
                frame, family, min_pixels, max_pixels)


@reward_function
def box_giou(completions, *, where: str = "answer", coord_frame: str | None = None, family: str | None = None,
             min_pixels: int | None = None, max_pixels: int | None = None, **columns):
    """Generalised IoU in [-1, 1] of the first predicted box with the best GT box (-1 without a box)."""
    frame = _check("box_giou", where, coord_frame, family)
    return _run("box_giou", completions, columns,
                lambda t, r, g, m: _best_over_gt(t, r, g, m, where, "box_giou", geometry.giou),
                frame, family, min_pixels, max_pixels)


@reward_function
def box_iou_hit(completions, *, threshold: float = 0.5, where: str = "answer", coord_frame: str | None = None,
                family: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
                iou_convention: str = "continuous", **columns):
    """1.0 when the first predicted box has IoU >= ``threshold`` with a GT box (Acc@tau); ``iou_convention``
    as in `box_iou`.

    >>> box_iou_hit(['<answer>[0, 0, 10, 10]</answer>'], boxes=[[{"box": [0, 0, 10, 20]}]], threshold=0.5)
    [1.0]
    """
    if not 0 < threshold <= 1:
        raise RecipeError(f"box_iou_hit: threshold must be in (0, 1], got {threshold}")
    frame = _check("box_iou_hit", where, coord_frame, family)
    metric = _iou_metric("box_iou_hit", iou_convention)

    def one(t, r, g, m):
        v = _best_over_gt(t, r, g, m, where, "box_iou_hit", metric)
        return None if v is None else float(v >= threshold)
    return _run("box_iou_hit", completions, columns, one, frame, family, min_pixels, max_pixels)


@reward_function
def union_box_iou(completions, *, where: str = "all", coord_frame: str | None = None,
                  family: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
                  **columns):
    """IoU of the union of predicted boxes with the union of GT boxes (GRIT's grounding IoU).

    Computed on each image that has GT boxes and averaged over those images.

    >>> union_box_iou(["[0, 0, 10, 10] and [10, 0, 20, 10]"], boxes=[[{"box": [0, 0, 20, 10]}]])
    [1.0]
    """
    frame = _check("union_box_iou", where, coord_frame, family)

    def one(trace, row, geo, metrics):
        gts = gt_boxes(row, reward="union_box_iou")
        if not gts:
            return None
        preds = [m.box for m in in_scope(trace, where, trace.boxes)]
        per_image = []
        for image in sorted({im for _, _, im in gts}):
            mapped = [geo.box(b, image) for b in preds[:MAX_DETECTIONS]]
            if any(b is None for b in mapped):
                metrics.add("no_frame", 1.0)
                return None
            per_image.append(geometry.union_area_iou(mapped, [b for b, _, im in gts if im == image]))
        return sum(per_image) / len(per_image)
    return _run("union_box_iou", completions, columns, one, frame, family, min_pixels, max_pixels)


# ------------------------------------------------------------------- referring among several objects
# px: an object whose box equals a GT box is the named one (ints on one side, floats on the other)
SAME_BOX = 1e-3


@dataclass(frozen=True)
class Overlap:
    """How one predicted box (original pixels) overlaps a scene: IoU with the named object (the best GT box)
    and the largest IoU with any other object (None when the scene has no other)."""

    named: float
    other: float | None

    @property
    def wrong_object(self) -> bool | None:
        """True when the box overlaps another object more than the named one; None without others."""
        return None if self.other is None else self.other > self.named


def scene_others(row, named: Sequence, *, reward: str = "reward") -> list[tuple]:
    """Boxes of ``meta["objects"]`` that equal none of the ``named`` boxes (malformed entries skipped)."""
    objects = mapping(row.get("meta")).get("objects")
    if not isinstance(objects, (list, tuple)):
        return []
    out = []
    for entry in objects:
        box = floats(entry.get("box"), 4) if isinstance(entry, Mapping) else None
        if box is None or not geometry.is_valid_box(box):
            warn_column(reward, row, "meta", f"object {entry!r:.80} has no valid [x1, y1, x2, y2] box")
            continue
        if not any(all(abs(a - b) <= SAME_BOX for a, b in zip(box, n)) for n in named):
            out.append(box)
    return out


def object_overlap(box: Sequence[float], named: Sequence, others: Sequence) -> Overlap:
    """Which object a box (original pixels) matches best: its IoU with the best ``named`` box and with the
    best of the ``others``. The one home of the wrong-object test (`referring_iou`, the eval's rate).

    >>> o = object_overlap((0, 0, 10, 10), named=[(20, 0, 30, 10)], others=[(0, 0, 10, 20)])
    >>> o, o.wrong_object
    (Overlap(named=0.0, other=0.5), True)
    """
    other = max((geometry.iou(box, b) for b in others), default=None)
    return Overlap(max((geometry.iou(box, b) for b in named), default=0.0), other)


def score_overlaps(name: str, completions, columns, score_one, *, where: str = "answer",
                   coord_frame: str | None = None, family: str | None = None, min_pixels: int | None = None,
                   max_pixels: int | None = None) -> list:
    """Per row, ``score_one(overlap, metrics)`` for the first predicted box mapped to original pixels as
    `box_iou` maps it, with ``overlap`` None when no box parsed; None for rows without GT boxes or whose
    frame cannot be known. The scene is the image of the first GT box (``meta["objects"]`` describe it)."""
    frame = _check(name, where, coord_frame, family)

    def one(trace, row, geo, metrics):
        gts = gt_boxes(row, reward=name)
        if not gts:
            return None
        preds = in_scope(trace, where, trace.boxes)
        if not preds:
            metrics.add("no_box", 1.0)
            return score_one(None, metrics)
        image = gts[0][2]
        pixel = geo.box(preds[0].box, image)
        if pixel is None:
            metrics.add("no_frame", 1.0)
            return None
        named = [b for b, _, im in gts if im == image]
        return score_one(object_overlap(pixel, named, scene_others(row, named, reward=name)), metrics)
    return _run(name, completions, columns, one, frame, family, min_pixels, max_pixels)


@reward_function
def referring_iou(completions, *, margin_weight: float = 1.0, where: str = "answer",
                  coord_frame: str | None = None, family: str | None = None, min_pixels: int | None = None,
                  max_pixels: int | None = None, **columns):
    """IoU with the named object minus ``margin_weight`` x the largest IoU with any other object of the
    scene (``meta["objects"]``), in [-margin_weight, 1]: boxing a distractor scores below boxing nothing,
    and a box straddling the named object and a distractor earns nothing, where plain IoU still pays it.
    Rows without other objects score the plain IoU; 0 without a box, None without GT. Logs
    ``referring_iou/wrong_object``, the share of boxes that overlap a distractor more than the named one.

    >>> meta = {"objects": [{"box": [0, 0, 10, 10]}, {"box": [20, 0, 30, 10]}]}
    >>> referring_iou(['{"bbox_2d": [0, 0, 10, 10]}', '{"bbox_2d": [20, 0, 30, 10]}', '[5, 0, 25, 10]'],
    ...               boxes=[[{"box": [0, 0, 10, 10]}]] * 3, meta=[meta] * 3)
    [1.0, -1.0, 0.0]
    """
    weight = safe_float(margin_weight)
    if weight is None or weight < 0:
        raise RecipeError(f"referring_iou: margin_weight must be a finite number >= 0, got {margin_weight!r}")

    def one(overlap, metrics):
        if overlap is None:
            return 0.0
        metrics.add("named_iou", overlap.named)
        if overlap.wrong_object is not None:
            metrics.add("wrong_object", float(overlap.wrong_object))
        return overlap.named - weight * (overlap.other or 0.0)
    return score_overlaps("referring_iou", completions, columns, one, where=where, coord_frame=coord_frame,
                          family=family, min_pixels=min_pixels, max_pixels=max_pixels)


def average_precision(preds: Sequence, gts: Sequence, threshold: float) -> float:
    """COCO-style 101-point interpolated AP of ``preds`` ranked in the given order (model text has no
    confidences, so earlier = more confident); each GT box matches at most one prediction.

    >>> ranked, truth = [(0, 0, 1, 1), (5, 5, 6, 6), (2, 2, 3, 3)], [(0, 0, 1, 1), (2, 2, 3, 3)]
    >>> round(average_precision(ranked, truth, 0.5), 4)
    0.835
    """
    if not gts:
        return 0.0
    matched: set[int] = set()
    precision, recall, tp = [], [], 0
    for k, p in enumerate(preds[:MAX_DETECTIONS], 1):
        best, best_j = threshold, None
        for j, g in enumerate(gts):
            if j not in matched:
                v = geometry.iou(p, g)
                if v >= best:
                    best, best_j = v, j
        if best_j is not None:
            matched.add(best_j)
            tp += 1
        precision.append(tp / k)
        recall.append(tp / len(gts))
    # interpolated precision at recall r = best precision at any rank reaching recall >= r
    best_after = precision[:]
    for k in range(len(best_after) - 2, -1, -1):
        best_after[k] = max(best_after[k], best_after[k + 1])
    total = 0.0
    for i in range(101):
        k = bisect.bisect_left(recall, i / 100)  # as COCO: searchsorted(recall, thresholds, "left")
        total += best_after[k] if k < len(recall) else 0.0
    return total / 101


@reward_function
def box_map(completions, *, thresholds: Sequence[float] = COCO_THRESHOLDS, match_labels: bool = False,
            where: str = "answer", coord_frame: str | None = None, family: str | None = None,
            min_pixels: int | None = None, max_pixels: int | None = None, **columns):
    """Mean AP over IoU ``thresholds`` (COCO 0.5:0.95) for multi-box answers, boxes ranked in written order.

    With ``match_labels`` the AP is computed per GT label (predicted boxes matched by their ``label``) and
    averaged over labels."""
    if not thresholds or any(not 0 < float(t) <= 1 for t in thresholds):
        raise RecipeError(f"box_map: thresholds must be in (0, 1], got {thresholds!r}")
    frame = _check("box_map", where, coord_frame, family)

    def one(trace, row, geo, metrics):
        gts = gt_boxes(row, reward="box_map")
        if not gts:
            return None
        preds = in_scope(trace, where, trace.boxes)
        image = gts[0][2]
        mapped = [(geo.box(m.box, image), m.label) for m in preds[:MAX_DETECTIONS]]
        if any(b is None for b, _ in mapped):
            metrics.add("no_frame", 1.0)
            return None
        groups = sorted({lb for _, lb, _ in gts}, key=str) if match_labels else [None]
        aps = []
        for label in groups:
            g = [b for b, lb, im in gts if im == image and (not match_labels or lb == label)]
            p = [b for b, lb in mapped if not match_labels or lb == label]
            if g:
                aps.append(sum(average_precision(p, g, float(t)) for t in thresholds) / len(thresholds))
        return sum(aps) / len(aps) if aps else None
    return _run("box_map", completions, columns, one, frame, family, min_pixels, max_pixels)


def first_point(trace, where: str):
    """The first predicted point; else the centre of the first predicted box."""
    points = in_scope(trace, where, trace.points)
    if points:
        return points[0].point
    boxes = in_scope(trace, where, trace.boxes)
    return geometry.box_center(boxes[0].box) if boxes else None


@reward_function
def click_in_box(completions, *, where: str = "all", coord_frame: str | None = None,
                 family: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
                 **columns):
    """1.0 when the first predicted point (or the centre of the first box) lies in a GT box.

    >>> click_in_box(['{"point_2d": [5, 5]}', '[50, 50]'], boxes=[[{"box": [0, 0, 10, 10]}]] * 2)
    [1.0, 0.0]
    """
    frame = _check("click_in_box", where, coord_frame, family)

    def one(trace, row, geo, metrics):
        gts = gt_boxes(row, reward="click_in_box")
        if not gts:
            return None
        point = first_point(trace, where)
        if point is None:
            metrics.add("no_point", 1.0)
            return 0.0
        hit = None
        for box, _, image in gts:
            pixel = geo.point(point, image)
            if pixel is not None:
                hit = bool(hit) or geometry.point_in_box(pixel, box)
        if hit is None:
            metrics.add("no_frame", 1.0)
            return None
        return float(hit)
    return _run("click_in_box", completions, columns, one, frame, family, min_pixels, max_pixels)


@reward_function
def click_distance(completions, *, radius: float = 0.14, shape: str = "step", where: str = "all",
                   coord_frame: str | None = None, family: str | None = None, min_pixels: int | None = None,
                   max_pixels: int | None = None, **columns):
    """Click reward from the distance d of the first predicted point to the nearest GT ``points`` entry.

    d is in image-relative units (x / width, y / height): ``shape="step"`` gives 1[d <= radius] (TON/AITZ
    use 0.14), ``"linear"`` gives max(0, 1 - d / radius). Needs the image size (``image_frames``,
    ``image_sizes`` or ``gui``).

    >>> r = click_distance(['[55, 50]'], points=[[{"point": [50, 50]}]], image_sizes=[[[100, 100]]],
    ...                    shape="linear", radius=0.1)
    >>> [round(v, 6) for v in r]
    [0.5]
    """
    if radius <= 0 or shape not in ("step", "linear"):
        raise RecipeError("click_distance: radius must be > 0 and shape 'step' or 'linear'")
    frame = _check("click_distance", where, coord_frame, family)

    def one(trace, row, geo, metrics):
        value = decode_json(row.get("points"))
        gts = [(floats(e.get("point"), 2), e.get("image", 0)) for e in value if isinstance(e, dict)] \
            if isinstance(value, list) else []
        gts = [(p, im if isinstance(im, int) else 0) for p, im in gts if p is not None]
        if not gts:
            return None
        point = first_point(trace, where)
        if point is None:
            return 0.0
        best = None
        for gt, image in gts:
            size = image_frame(row, image, "norm1")
            pixel = geo.point(point, image)
            if size is None or pixel is None:
                continue
            d = geometry.point_distance(
                (pixel[0] / size.width, pixel[1] / size.height), (gt[0] / size.width, gt[1] / size.height))
            best = d if best is None else min(best, d)
        if best is None:
            metrics.add("no_frame", 1.0)
            return None
        metrics.add("distance", best)
        return float(best <= radius) if shape == "step" else max(0.0, 1.0 - best / radius)
    return _run("click_distance", completions, columns, one, frame, family, min_pixels, max_pixels)


@reward_function
def box_iou_3d(completions, *, threshold: float | None = None, where: str = "answer", **columns):
    """3D axis-aligned IoU of the first predicted ``<bbox>(x1, y1, z1, x2, y2, z2)</bbox>`` with the best GT.

    With ``threshold`` (0.25 / 0.5) the Acc@tau indicator instead.

    >>> box_iou_3d(["<answer>chair 1 <bbox>(0, 0, 0, 1, 1, 2)</bbox></answer>"],
    ...            boxes_3d=[[{"box": [0, 0, 0, 1, 1, 1]}]])
    [0.5]
    """
    if threshold is not None and not 0 < threshold <= 1:
        raise RecipeError(f"box_iou_3d: threshold must be in (0, 1], got {threshold}")
    if where not in WHERE:
        raise RecipeError(f"box_iou_3d: where must be one of {WHERE}")

    def one(trace, row, geo, metrics):
        gts = gt_boxes_3d(row, reward="box_iou_3d")
        if not gts:
            return None
        preds = in_scope(trace, where, trace.boxes_3d)
        if not preds:
            return 0.0
        best = max(geometry.iou_3d(preds[0].box, box) for box, _ in gts)
        return best if threshold is None else float(best >= threshold)
    return _run("box_iou_3d", completions, columns, one, "pixel", None, None, None)


__all__ = ["box_iou", "box_giou", "box_iou_hit", "union_box_iou", "referring_iou", "box_map", "click_in_box",
           "click_distance", "box_iou_3d", "average_precision", "first_point", "in_scope", "Overlap",
           "object_overlap", "scene_others", "score_overlaps"]
