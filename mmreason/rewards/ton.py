"""TON ("Think or Not?"): R1-V-style format and accuracy rewards, and the AITZ GUI rewards.

- :func:`ton_format`: ``re.fullmatch(r"<think>.*?</think>\\s*<answer>.*?</answer>", text, re.DOTALL)``, the
  release's literal rule (an empty thought ``<think>\\n\\n</think>`` passes: skipping thought is allowed).
  Logs ``ton_format/skip_think``, the share of completions whose thought is empty.
- :func:`ton_accuracy`: math-verify of the answer against the solution, else exact string match of the
  ``<answer>`` contents (the solution's own ``<answer>`` tags are stripped). Deviation: math-verify reads the
  extracted answer rather than the whole completion.
- GUI (AITZ): :func:`ton_gui_format` (``<think>.*?</think>\\s*<action>.*?</action>`` full match),
  :func:`ton_gui_type` (action type match) and :func:`ton_gui_value` (both clicks and the predicted
  ``position`` within ``radius`` = 0.14 of the GT point in image-relative units). The GT action is
  ``gui.action`` (coordinate in original pixels, divided by ``gui.width/height``); the predicted
  ``position`` is in ``coord_frame`` (default "norm1", AITZ's 0-1 coordinates).
"""

from __future__ import annotations

import re

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, answer_of, completion_text, floats, image_frame, point_to_pixels, resolve_coord_frame,
    reward_function, samples, score_rows,
)
from mmreason.rewards.accuracy import math_equal
from mmreason.rewards.gui import action_type, action_type_scores, gt_action
from mmreason.traces import parse_blocks

# The methods' format definitions, verbatim: a full match of these patterns is the reward.
_THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
_THINK_ACTION = re.compile(r"<think>.*?</think>\s*<action>.*?</action>", re.DOTALL)


@reward_function
def ton_format(completions, **columns):
    """1.0 when the completion fully matches ``<think>.*?</think>\\s*<answer>.*?</answer>``.

    >>> ton_format(["<think>\\n\\n</think><answer>3</answer>", "<answer>3</answer>"])
    [1.0, 0.0]
    """
    metrics = Metrics("ton_format")
    out = []
    for sample in samples(completions, columns):
        out.append(1.0 if _THINK_ANSWER.fullmatch(sample.text) else 0.0)
        think = sample.trace.think
        metrics.add("skip_think", float(think is not None and not think.strip()))
    metrics.emit(columns.get("log_metric"))
    return out


def _answer_text(text: str, blocks) -> str:
    """The first ``<answer>`` block's content, else the whole text (stripped): read from both sides."""
    answers = [b for b in blocks if b.tag == "answer"]
    return answers[0].text.strip() if answers else text.strip()


@reward_function
def ton_accuracy(completions, **columns):
    """1.0 when math-verify accepts the answer, else when the ``<answer>`` content equals the solution's.

    >>> ton_accuracy(["<think></think><answer>\\\\frac{1}{2}</answer>", "<answer>Cat</answer>"],
    ...              solution=["<answer>0.5</answer>", "cat"])
    [1.0, 0.0]
    """
    metrics = Metrics("ton_accuracy")

    def one(sample, metrics):
        gt = answer_of(sample.row)
        if gt is None:
            return None
        pred = _answer_text(sample.text, sample.blocks)
        gold = _answer_text(gt, parse_blocks(gt))
        return float(pred == gold or bool(math_equal(pred, gold)))  # the release: math first; same result

    out = score_rows(completions, columns, one, metrics)
    for value in out:
        metrics.add("acc", value)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def ton_gui_format(completions, **columns):
    """1.0 when the completion fully matches ``<think>.*?</think>\\s*<action>.*?</action>``."""
    return [1.0 if _THINK_ACTION.fullmatch(completion_text(c)) else 0.0 for c in completions]


def _action_block(trace) -> dict | None:
    block = trace.blocks_of("action")
    if not block:
        return None
    for action in trace.actions:  # the actions read from that block come first in the trace's order
        if isinstance(action, dict):
            return action
    return None


@reward_function
def ton_gui_type(completions, **columns):
    """1.0 when the ``<action>`` JSON's ``action`` equals the GT action type (None without ``gui.action``).

    >>> ton_gui_type(["<think></think><action>{'action': 'click', 'position': [0.5, 0.5]}</action>"],
    ...     gui=[{"width": 100, "height": 100, "action": {"action": "click", "coordinate": [50, 50]}}])
    [1.0]
    """
    metrics = Metrics("ton_gui_type")
    out = action_type_scores(completions, columns, _action_block, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def ton_gui_value(completions, *, radius: float = 0.14, coord_frame: str | None = None,
                  family: str | None = None, **columns):
    """1.0 when both actions are clicks and the positions are within ``radius`` (image-relative units).

    >>> ton_gui_value(["<action>{'action': 'click', 'position': [0.6, 0.5]}</action>"],
    ...     gui=[{"width": 100, "height": 200, "action": {"action": "click", "coordinate": [50, 100]}}])
    [1.0]
    """
    if radius <= 0:
        raise RecipeError(f"ton_gui_value: radius must be > 0, got {radius}")
    frame_name = resolve_coord_frame(coord_frame, family, "norm1")
    metrics = Metrics("ton_gui_value")

    def one(sample, metrics):
        row = sample.row
        gt = gt_action(row)
        if gt is None:
            return None
        pred = _action_block(sample.trace)
        if action_type(pred) != "click" or action_type(gt) != "click":
            return 0.0
        frame = image_frame(row, 0, "norm1", family=family)
        target = floats(gt.get("coordinate", gt.get("position")), 2)
        point = floats(pred.get("position", pred.get("coordinate")), 2)
        if frame is None or target is None or point is None:
            metrics.add("no_frame", float(frame is None))
            return 0.0 if frame is not None else None
        own_frame = image_frame(row, 0, frame_name, family=family)
        pixel = point_to_pixels(point, frame_name, own_frame)
        if pixel is None:
            return None
        w, h = frame.width, frame.height
        d = geometry.point_distance((pixel[0] / w, pixel[1] / h), (target[0] / w, target[1] / h))
        metrics.add("distance", d if d != float("inf") else None)
        return float(d <= radius)

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out
