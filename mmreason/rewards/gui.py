"""GUI rewards: action matching (AndroidControl rules), click-in-target, and UI-Ins' single-point reward.

Ground truth is the ``gui`` column: ``{"width", "height", "elements": [{"box", ...}], "action": {"action":
"click", "coordinate": [x, y], ...}, "instruction", "goal"}`` in ORIGINAL screenshot pixels. Predicted
actions come from ``traces`` (``mobile_use``/``computer_use``/``grounding`` tool calls, ``<action>`` JSON or a
bare action object); their coordinates are in ``coord_frame`` (default "resized": pixels of the
smart-resized screenshot, what Qwen2.5-VL-based GUI agents emit).

Parameter matching is ``mmreason.modalities.gui.match_action``, InfiGUI-R1's AndroidControl evaluation
rules (the best published reference): click/long_press hit when the point lies in a candidate box
enlarged 1.2x or within 0.04 x max(W, H) of the GT point; ``type``/``open`` text matches
case-insensitively as a substring either way; swipes need the same direction; ``system_button`` the same
button; ``wait`` only the type; a ``click`` for a GT ``open`` counts when it hits the app's candidate box.
The type of a ``click`` answering a GT ``open`` matches when the GT has a candidate box (the app's icon),
hit or not, and not otherwise: the convention of InfiGUI-R1's evaluation
(eval/android_control/evaluate_android_control.py in github.com/Reallm-Labs/InfiGUI-R1), applied alike by
`gui_action_type` and the matcher (`types_agree`).
Candidate boxes: ``action["candidate_boxes"]`` when present, else the smallest element of
``gui.elements`` that contains the GT point.
"""

from __future__ import annotations

import re
from typing import Mapping

from mmreason import geometry
from mmreason.geometry import ImageFrame
from mmreason.modalities.gui import ALIASES, convert_action, parse_action
from mmreason.modalities.gui import match_action as gui_match
from mmreason.rewards._common import (
    Metrics, floats, gt_boxes, image_frame, mapping, resolve_coord_frame, reward_function, score_rows,
)

_UI_INS_POINT = re.compile(r"\[(\d+),(\d+)\]")  # UI-Ins' literal rule: integers, no space after the comma


def action_type(action: object) -> str | None:
    """The action's kind, with the aliases other action spaces use mapped to ours ('tap' -> 'click')."""
    if not isinstance(action, Mapping):
        return None
    kind = action.get("action", action.get("action_type"))
    if not isinstance(kind, str):
        return None
    kind = kind.strip()
    return ALIASES.get(kind, ALIASES.get(kind.lower(), kind.lower() if kind != "moveTo" else kind))


def gt_action(row: Mapping) -> dict | None:
    action = mapping(mapping(row.get("gui")).get("action"))
    return action if action_type(action) else None


def candidate_boxes(action: Mapping, gui: Mapping) -> list[tuple]:
    """``action["candidate_boxes"]``, else the smallest ``gui.elements`` box containing the GT point."""
    raw = action.get("candidate_boxes")
    boxes = [b for b in (floats(x, 4) for x in raw) if b is not None and geometry.is_valid_box(b)] \
        if isinstance(raw, list) else []
    if boxes:
        return boxes
    point = floats(action.get("coordinate"), 2)
    elements = gui.get("elements") if isinstance(gui.get("elements"), list) else []
    containing = [b for b in (floats(e.get("box"), 4) for e in elements if isinstance(e, Mapping))
                  if b is not None and point is not None and geometry.point_in_box(point, b)]
    return sorted(containing, key=geometry.box_area)[:1]


def types_agree(pred: object, gt: Mapping, gui: Mapping) -> bool:
    """Whether the predicted action has the GT action's type (module docstring: a click on an open).

    >>> gt = {"action": "open", "text": "Clock", "candidate_boxes": [[0, 0, 10, 10]]}
    >>> types_agree({"action": "click", "coordinate": [50, 50]}, gt, {}), types_agree({"action": "tap"},
    ...     {"action": "open", "text": "Clock"}, {})
    (True, False)
    """
    kind, want = action_type(pred), action_type(gt)
    if want == "open" and kind == "click":
        return bool(candidate_boxes(gt, gui))
    return kind is not None and kind == want


def match_action(pred: Mapping, gt: Mapping, gui: Mapping, coord_frame: str,
                 frame) -> tuple[bool, bool] | None:
    """(type matches, type and all parameters match) by the AndroidControl matcher of
    ``mmreason.modalities.gui``; the predicted coordinates are first mapped from ``coord_frame`` to pixels.
    None when the GT action itself cannot be read."""
    truth = parse_action(dict(gt)).action
    if truth is None:
        return None
    guess = parse_action(dict(pred)).action
    if guess is None:
        return types_agree(pred, gt, gui), False
    if coord_frame != "pixel":
        guess = convert_action(guess, coord_frame, "pixel", frame)
    size = floats([gui.get("width"), gui.get("height")], 2) or (0.0, 0.0)
    return gui_match(guess, truth, candidates=candidate_boxes(gt, gui), screen=size)


def predicted_action(trace) -> dict | None:
    """The action the completion commits to: the first action after the reasoning (``</think>``)."""
    think_end = max((b.end for b in trace.blocks_of("think")), default=0)
    actions = [a for a in trace.actions if isinstance(a, Mapping)]
    if not actions:
        return None
    after = [c.arguments for c in trace.tool_calls if c.start >= think_end and action_type(c.arguments)]
    return dict(after[0]) if after else dict(actions[0])


def action_type_scores(completions, columns: Mapping, extract, metrics: Metrics) -> list:
    """Per completion: 1.0 when the action ``extract(trace)`` reads has the type of ``gui.action``, else 0.0;
    None for rows without a GT action. The body of `gui_action_type` and TON's `ton_gui_type`, which differ
    only in where they read the predicted action."""
    def one(sample, metrics):
        gt = gt_action(sample.row)
        return None if gt is None else float(types_agree(extract(sample.trace), gt, mapping(sample.row.get("gui"))))
    return score_rows(completions, columns, one, metrics)


def screen_frame(row: Mapping, coord_frame: str, family, min_pixels, max_pixels, pred: Mapping | None = None):
    """The screenshot's frame (image 0); None when the predicted action has coordinates and ``coord_frame``
    needs sizes the row does not give (an action without coordinates needs no frame)."""
    if pred is not None and not any(pred.get(k) is not None for k in ("coordinate", "coordinate2")):
        return ImageFrame.identity(1, 1)
    return image_frame(row, 0, coord_frame, family=family, min_pixels=min_pixels, max_pixels=max_pixels)


@reward_function
def gui_action_type(completions, **columns):
    """1.0 when the predicted action's type equals ``gui.action``'s (None without a GT action).

    >>> gui_action_type(['<tool_call>{"name": "mobile_use", "arguments": {"action": "swipe"}}</tool_call>'],
    ...                 gui=[{"action": {"action": "swipe", "direction": "up"}}])
    [1.0]
    """
    metrics = Metrics("gui_action_type")
    out = action_type_scores(completions, columns, predicted_action, metrics)
    for value in out:
        metrics.add("match", value)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def gui_action_match(completions, *, coord_frame: str | None = None, family: str | None = None,
                     min_pixels: int | None = None, max_pixels: int | None = None, **columns):
    """1.0 when type and all parameters match ``gui.action`` by the AndroidControl rules (module docstring).

    >>> gui_action_match(['{"action": "click", "coordinate": [52, 51]}'], coord_frame="pixel",
    ...     gui=[{"width": 100, "height": 100, "action": {"action": "click", "coordinate": [50, 50]}}])
    [1.0]
    """
    frame_name = resolve_coord_frame(coord_frame, family, "resized")
    metrics = Metrics("gui_action_match")

    def one(sample, metrics):
        gt = gt_action(sample.row)
        if gt is None:
            return None
        pred = predicted_action(sample.trace)
        if pred is None:
            return 0.0
        frame = screen_frame(sample.row, frame_name, family, min_pixels, max_pixels, pred)
        if frame is None:
            metrics.add("no_frame", 1.0)
            return None
        result = match_action(pred, gt, mapping(sample.row.get("gui")), frame_name, frame)
        return None if result is None else float(result[1])

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def ui_ins(completions, *, coord_frame: str | None = None, family: str | None = None,
           min_pixels: int | None = None, max_pixels: int | None = None, **columns):
    """UI-Ins' click reward: 1.0 iff exactly one ``[x,y]`` point is written and it lies in a GT box.

    A point is what UI-Ins' regex ``\\[(\\d+),(\\d+)\\]`` finds (integers, no space after the comma); two
    or more points score 0. GT boxes (``boxes`` of image 0, else the ``gui`` target) are mapped into the
    completion's frame and truncated to integers, as UI-Ins does. No format term.

    >>> ui_ins(['click [5,5]', 'click [5, 5]', '[5,5] or [6,6]'], coord_frame="pixel",
    ...        boxes=[[{"box": [0, 0, 10, 10]}]] * 3)
    [1.0, 0.0, 0.0]
    """
    frame_name = resolve_coord_frame(coord_frame, family, "resized")
    metrics = Metrics("ui_ins")

    def one(sample, metrics):
        row = sample.row
        boxes = [b for b, _, im in gt_boxes(row, reward="ui_ins") if im == 0]
        if not boxes:
            gt = gt_action(row)
            boxes = candidate_boxes(gt, mapping(row.get("gui"))) if gt else []
        if not boxes:
            return None
        frame = image_frame(row, 0, frame_name, family=family, min_pixels=min_pixels, max_pixels=max_pixels)
        if frame is None and frame_name != "pixel":
            metrics.add("no_frame", 1.0)
            return None
        matches = _UI_INS_POINT.findall(sample.text)
        metrics.add("multi_point", float(len(matches) > 1))
        if len(matches) != 1:
            return 0.0
        x, y = (int(v) for v in matches[0])
        hit = False
        for box in boxes:
            mapped = box if frame_name == "pixel" else geometry.convert_box(box, "pixel", frame_name, frame)
            x0, y0, x1, y1 = (int(v) for v in mapped)
            hit = hit or (x0 <= x <= x1 and y0 <= y <= y1)
        return float(hit)

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


__all__ = ["gui_action_type", "gui_action_match", "ui_ins", "match_action", "predicted_action",
           "candidate_boxes", "gt_action", "action_type", "action_type_scores", "screen_frame"]
