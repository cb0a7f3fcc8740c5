"""GUI rewards: action matching (AndroidControl rules), click-in-target, and UI-Ins' single-point reward.

Ground truth is the ``gui`` column: ``{"width", "height", "elements": [{"box", ...}], "action": {"action":
"click", "coordinate": [x, y], ...}, "instruction", "goal"}`` in ORIGINAL screenshot pixels. Predicted
actions come from ``traces`` (``mobile_use``/``computer_use``/``grounding`` tool calls, ``<action>`` JSON or a
bare action object); their coordinates are in ``coord_frame`` (default "resized": pixels of the
smart-resized screenshot, what Qwen2.5-VL-based GUI agents emit).

Parameter matching follows InfiGUI-R1's AndroidControl evaluation, the best published reference:
click/long_press hit when the point lies in a candidate box enlarged ``box_enlarge`` (1.2x) or within
``distance_ratio`` (0.04) x max(W, H) of the GT point; ``type``/``open``/``key`` text matches
case-insensitively as a substring either way; ``swipe``/``scroll`` need the same dominant direction;
``system_button`` the same button; ``wait`` only the type; a ``click`` for a GT ``open`` counts when it
hits the app's candidate box. Candidate boxes: ``action["candidate_boxes"]`` when present, else the
smallest element of ``gui.elements`` that contains the GT point.
"""

from __future__ import annotations

import re
from typing import Mapping

from mmreason import geometry
from mmreason.rewards._common import (
    Metrics, completion_text, floats, gt_boxes, guarded, image_frame, mapping, parse, point_to_pixels,
    resolve_coord_frame, reward_function, rows_of,
)

DIRECTIONS = ("up", "down", "left", "right")
_UI_INS_POINT = re.compile(r"\[(\d+),(\d+)\]")  # UI-Ins' literal rule: integers, no space after the comma


def action_type(action: object) -> str | None:
    if not isinstance(action, Mapping):
        return None
    kind = action.get("action", action.get("action_type"))
    return kind.strip().lower() if isinstance(kind, str) else None


def gt_action(row: Mapping) -> dict | None:
    action = mapping(mapping(row.get("gui")).get("action"))
    return action if action_type(action) else None


def _text(action: Mapping, *keys: str) -> str:
    for key in keys:
        value = action.get(key)
        if isinstance(value, str):
            return value.strip().lower()
    return ""


def text_match(pred: str, gt: str) -> bool:
    return bool(pred) and bool(gt) and (pred in gt or gt in pred)


def swipe_direction(action: Mapping) -> str | None:
    """'up'/'down'/'left'/'right' from a ``direction`` field or the dominant axis of coordinate -> coordinate2."""
    direction = _text(action, "direction")
    if direction in DIRECTIONS:
        return direction
    a, b = floats(action.get("coordinate"), 2), floats(action.get("coordinate2"), 2)
    if a is None or b is None or a == b:
        return None
    dx, dy = b[0] - a[0], b[1] - a[1]
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def candidate_boxes(action: Mapping, gui: Mapping) -> list[tuple]:
    boxes = [b for b in (floats(x, 4) for x in action.get("candidate_boxes") or [] if isinstance(x, (list, tuple)))
             if b is not None and geometry.is_valid_box(b)] if isinstance(action.get("candidate_boxes"), list) else []
    if boxes:
        return boxes
    point = floats(action.get("coordinate"), 2)
    elements = gui.get("elements") if isinstance(gui.get("elements"), list) else []
    containing = [b for b in (floats(e.get("box"), 4) for e in elements if isinstance(e, Mapping))
                  if b is not None and point is not None and geometry.point_in_box(point, b)]
    return sorted(containing, key=geometry.box_area)[:1]


def click_hit(point_px: tuple | None, gt: Mapping, gui: Mapping, *, box_enlarge: float = 1.2,
              distance_ratio: float = 0.04) -> bool:
    if point_px is None:
        return False
    if any(geometry.point_in_box(point_px, geometry.enlarge_box(b, box_enlarge)) for b in candidate_boxes(gt, gui)):
        return True
    target = floats(gt.get("coordinate"), 2)
    size = floats([gui.get("width"), gui.get("height")], 2)
    if target is None or size is None:
        return False
    return geometry.point_distance(point_px, target) <= distance_ratio * max(size)


def match_action(pred: Mapping, gt: Mapping, gui: Mapping, point_px: tuple | None, *, box_enlarge: float = 1.2,
                 distance_ratio: float = 0.04) -> tuple[bool, bool]:
    """(type matches, type and all parameters match) for one predicted action; ``point_px`` is the predicted
    ``coordinate`` already mapped to original pixels."""
    p, g = action_type(pred), action_type(gt)
    if p is None or g is None:
        return False, False
    if g == "open" and p == "click" and candidate_boxes(gt, gui):
        hit = click_hit(point_px, {**gt, "coordinate": None}, gui, box_enlarge=box_enlarge)
        return hit, hit
    if p != g:
        return False, False
    if g in ("click", "long_press", "double_click", "right_click", "tap"):
        ok = click_hit(point_px, gt, gui, box_enlarge=box_enlarge, distance_ratio=distance_ratio)
    elif g in ("type", "open", "key", "input_text", "answer"):
        ok = text_match(_text(pred, "text", "value", "app", "key"), _text(gt, "text", "value", "app", "key"))
    elif g in ("swipe", "scroll"):
        ok = swipe_direction(pred) is not None and swipe_direction(pred) == swipe_direction(gt)
    elif g in ("system_button", "navigate_back", "navigate_home"):
        ok = _text(pred, "button") == _text(gt, "button")
    elif g == "terminate":
        ok = _text(pred, "status") == _text(gt, "status") or not _text(gt, "status")
    elif g == "wait":
        ok = True
    else:  # unknown action kinds: every GT argument must be equal
        ok = all(pred.get(k) == v for k, v in gt.items() if k not in ("action", "action_type", "candidate_boxes"))
    return True, ok


def predicted_action(trace) -> dict | None:
    """The action the completion commits to: the first action after the reasoning (``</think>``)."""
    think_end = max((b.end for b in trace.blocks_of("think")), default=0)
    actions = [a for a in trace.actions if isinstance(a, Mapping)]
    if not actions:
        return None
    after = [c.arguments for c in trace.tool_calls if c.start >= think_end and action_type(c.arguments)]
    return dict(after[0]) if after else dict(actions[0])


def pred_point_px(action: Mapping, row: Mapping, coord_frame: str, family, min_pixels, max_pixels):
    point = floats(action.get("coordinate", action.get("point_2d", action.get("position"))), 2)
    if point is None:
        return None, True
    frame = image_frame(row, 0, coord_frame, family=family, min_pixels=min_pixels, max_pixels=max_pixels)
    return point_to_pixels(point, coord_frame, frame), frame is not None


@reward_function
def gui_action_type(completions, **columns):
    """1.0 when the predicted action's type equals ``gui.action``'s (None without a GT action).

    >>> gui_action_type(['<tool_call>{"name": "mobile_use", "arguments": {"action": "swipe"}}</tool_call>'],
    ...                 gui=[{"action": {"action": "swipe", "direction": "up"}}])
    [1.0]
    """
    metrics = Metrics("gui_action_type")
    out = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        gt = gt_action(row)
        pred = predicted_action(parse(completion_text(c))) if gt else None
        out.append(None if gt is None else float(action_type(pred) == action_type(gt)))
        metrics.add("match", out[-1])
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def gui_action_match(completions, *, coord_frame: str | None = None, family: str | None = None,
                     min_pixels: int | None = None, max_pixels: int | None = None, box_enlarge: float = 1.2,
                     distance_ratio: float = 0.04, **columns):
    """1.0 when type and all parameters match ``gui.action`` by the AndroidControl rules (module docstring).

    >>> gui_action_match(['{"action": "click", "coordinate": [52, 51]}'], coord_frame="pixel",
    ...                  gui=[{"width": 100, "height": 100, "action": {"action": "click", "coordinate": [50, 50]}}])
    [1.0]
    """
    frame_name = resolve_coord_frame(coord_frame, family, "resized")
    metrics = Metrics("gui_action_match")
    out: list[float | None] = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        gt = gt_action(row)
        if gt is None:
            out.append(None)
            continue
        pred = predicted_action(parse(completion_text(c)))
        if pred is None:
            out.append(0.0)
            continue
        point, known = pred_point_px(pred, row, frame_name, family, min_pixels, max_pixels)
        if not known:
            metrics.add("no_frame", 1.0)
            out.append(None)
            continue
        _, ok = guarded(match_action, pred, gt, mapping(row.get("gui")), point, box_enlarge=box_enlarge,
                        distance_ratio=distance_ratio, default=(False, False), metrics=metrics)
        out.append(float(ok))
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def ui_ins(completions, *, coord_frame: str | None = None, family: str | None = None, min_pixels: int | None = None,
           max_pixels: int | None = None, **columns):
    """UI-Ins' reward: 1.0 iff exactly one ``[x,y]`` (integers, no space: the regex ``\\[(\\d+),(\\d+)\\]``) is
    found in the completion and it lies inside a GT box (``boxes`` of image 0, else the ``gui`` target).
    GT boxes are mapped into the completion's frame and truncated to integers, as UI-Ins does. No format term.

    >>> ui_ins(['click [5,5]', 'click [5, 5]', '[5,5] or [6,6]'], coord_frame="pixel",
    ...        boxes=[[{"box": [0, 0, 10, 10]}]] * 3)
    [1.0, 0.0, 0.0]
    """
    frame_name = resolve_coord_frame(coord_frame, family, "resized")
    metrics = Metrics("ui_ins")
    out: list[float | None] = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        boxes = [b for b, _, im in gt_boxes(row, reward="ui_ins") if im == 0]
        if not boxes:
            gt = gt_action(row)
            boxes = candidate_boxes(gt, mapping(row.get("gui"))) if gt else []
        if not boxes:
            out.append(None)
            continue
        frame = image_frame(row, 0, frame_name, family=family, min_pixels=min_pixels, max_pixels=max_pixels)
        if frame is None and frame_name != "pixel":
            metrics.add("no_frame", 1.0)
            out.append(None)
            continue
        matches = _UI_INS_POINT.findall(completion_text(c))
        metrics.add("multi_point", float(len(matches) > 1))
        if len(matches) != 1:
            out.append(0.0)
            continue
        x, y = (int(v) for v in matches[0])
        hit = False
        for box in boxes:
            mapped = box if frame_name == "pixel" else geometry.convert_box(box, "pixel", frame_name, frame)
            x0, y0, x1, y1 = (int(v) for v in mapped)
            hit = hit or (x0 <= x <= x1 and y0 <= y <= y1)
        out.append(float(hit))
    metrics.emit(columns.get("log_metric"))
    return out


__all__ = ["gui_action_type", "gui_action_match", "ui_ins", "match_action", "predicted_action", "swipe_direction",
           "candidate_boxes", "click_hit", "gt_action", "action_type"]
