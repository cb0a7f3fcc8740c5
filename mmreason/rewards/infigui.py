"""InfiGUI-R1 (Actor2Reasoner, paper §3.2/§4.1): gated ``0.1·format + 0.9·accuracy``.

- ``R_total = w_f·R_format + w_a·R_acc`` with ``w_f = 0.1``, ``w_a = 0.9``; ``R_acc`` counts only when
  ``R_format = 1`` (so a malformed completion scores 0).
- ``R_format = 1`` when the completion opens with exactly one closed ``<think>…</think>`` (``<step>`` may
  nest inside) and what follows holds what the task needs: a parseable action (agent steps), a point or
  box (grounding), an answer (other tasks).
- Agent steps (a ``gui.action`` ground truth): ``R_agent = w_t·R_type + w_p·R_param`` if ``R_param = 1``,
  else ``w_t·R_type + w_s·R_subgoal`` (``w_t = 0.2``, ``w_p = 0.8``, ``w_s = 0.2``); parameters are matched
  by the AndroidControl rules of :mod:`mmreason.rewards.gui`. ``R_subgoal`` = a judge's 1-10 rating of the
  sub-goal implied by the ``<think>`` text against ``gui.instruction``, / 10 (template ``infigui_subgoal``).
  Without a judge (``judge=None``) an offline stand-in is used: unigram F1 between the ``<step>`` text (the
  whole think text when there is no ``<step>``) and the instruction, documented as not the paper's scorer.
- Grounding (``task`` gui_grounding/grounding with ``boxes``): a point scores ``1[point in a GT box]``; a box
  scores ``1 if IoU >= tau else IoU / tau`` with ``tau = 0.7``.
- Other rows with an ``answer``: ``1[exact match or math-verify]``.

Coordinates are in ``coord_frame`` (default "resized": pixels of the smart-resized screenshot).
"""

from __future__ import annotations

from collections import Counter

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, answer_of, box_to_pixels, gt_boxes, guarded, image_frame, mapping, point_to_pixels,
    resolve_coord_frame, reward_function, samples,
)
from mmreason.rewards.accuracy import math_equal, normalize_answer
from mmreason.rewards.gui import gt_action, match_action, predicted_action, screen_frame
from mmreason.rewards.judge import JudgeItem, as_judge_config, judge as run_judge, verdict_metrics

GROUNDING_TASKS = ("gui_grounding", "grounding")


def task_kind(row) -> str | None:
    if gt_action(row) is not None:
        return "agent"
    if row.get("task") in GROUNDING_TASKS and gt_boxes(row, reward="infigui"):
        return "grounding"
    if answer_of(row) is not None:
        return "other"
    return None


def format_ok(trace, kind: str) -> bool:
    thinks = trace.blocks_of("think")
    if len(thinks) != 1 or not thinks[0].closed or trace.text[:thinks[0].start].strip():
        return False
    end = thinks[0].end
    if kind == "agent":
        return predicted_action(trace) is not None and all(c.error is None for c in trace.tool_calls)
    if kind == "grounding":
        return any(m.start >= end for m in (*trace.points, *trace.boxes))
    return trace.answer is not None or "\\boxed" in trace.text[end:]


def unigram_f1(pred: str, gold: str) -> float:
    """Token F1 of normalised words (the offline sub-goal stand-in).

    >>> round(unigram_f1("open the settings app", "Open Settings"), 3)
    0.8
    """
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def grounding_score(trace, row, coord_frame, family, min_pixels, max_pixels, tau) -> float | None:
    think_end = max((b.end for b in trace.blocks_of("think")), default=0)
    gts = gt_boxes(row, reward="infigui")
    mentions = sorted([m for m in (*trace.points, *trace.boxes) if m.start >= think_end],
                      key=lambda m: m.start)
    if not mentions:
        return 0.0
    first = mentions[0]
    best = None
    for box, _, image in gts:
        frame = image_frame(row, image, coord_frame, family=family, min_pixels=min_pixels,
                            max_pixels=max_pixels)
        if frame is None and coord_frame != "pixel":
            continue
        if hasattr(first, "point"):
            pixel = point_to_pixels(first.point, coord_frame, frame)
            value = float(geometry.point_in_box(pixel, box))
        else:
            iou = geometry.iou(box_to_pixels(first.box, coord_frame, frame), box)
            value = 1.0 if iou >= tau else iou / tau
        best = value if best is None else max(best, value)
    return best


@reward_function
def infigui(completions, *, format_weight: float = 0.1, accuracy_weight: float = 0.9,
            type_weight: float = 0.2, param_weight: float = 0.8, subgoal_weight: float = 0.2,
            iou_tau: float = 0.7, judge: object = None, coord_frame: str | None = None,
            family: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
            **columns):
    """InfiGUI-R1: gated ``0.1·format + 0.9·accuracy`` for GUI actions, grounding and other tasks.

    Rules in the module docstring; logs format, type, param, subgoal and accuracy.

    >>> gui = {"width": 100, "height": 100, "instruction": "open settings",
    ...        "action": {"action": "click", "coordinate": [50, 50]}}
    >>> ok = ('<think>tap it</think><tool_call>{"name": "mobile_use", '
    ...       '"arguments": {"action": "click", "coordinate": [51, 50]}}</tool_call>')
    >>> infigui([ok, ok.replace("[51, 50]", "[5, 5]"), "no think"], gui=[gui] * 3, coord_frame="pixel")
    [1.0, 0.28, 0.0]
    """
    if not 0 < iou_tau <= 1:
        raise RecipeError(f"infigui: iou_tau must be in (0, 1], got {iou_tau}")
    frame_name = resolve_coord_frame(coord_frame, family, "resized")
    config = as_judge_config(judge)
    metrics = Metrics("infigui")
    batch = samples(completions, columns)
    out: list[float | None] = [None] * len(batch)
    pending = []  # agent rows whose parameters missed: they need a sub-goal score
    for i, sample in enumerate(batch):
        row = sample.row
        kind = task_kind(row)
        if kind is None:
            continue
        trace = sample.trace
        fmt = float(guarded(format_ok, trace, kind, default=False, metrics=metrics))
        metrics.add("format", fmt)
        if not fmt:
            out[i] = 0.0  # gated: accuracy is only computed for well-formed completions
            continue
        if kind == "other":
            pred, gt = trace.answer, answer_of(row)
            hit = pred is not None and (normalize_answer(pred) == normalize_answer(gt)
                                        or bool(math_equal(pred, gt)))
            acc = float(hit)
        elif kind == "grounding":
            acc = guarded(grounding_score, trace, row, frame_name, family, min_pixels, max_pixels, iou_tau,
                          metrics=metrics)
            if acc is None:
                metrics.add("no_frame", 1.0)
                continue
        else:
            pred = predicted_action(trace)
            frame = screen_frame(row, frame_name, family, min_pixels, max_pixels, pred)
            result = guarded(match_action, pred, gt_action(row), mapping(row.get("gui")), frame_name, frame,
                             default=(False, False), metrics=metrics) if frame is not None else None
            if result is None:  # no frame to map the click, or a GT action that cannot be read
                metrics.add("no_frame" if frame is None else "bad_gt", 1.0)
                continue
            type_ok, param_ok = result
            metrics.add("type", float(type_ok))
            metrics.add("param", float(param_ok))
            if param_ok:
                acc = type_weight + param_weight
            else:
                pending.append((i, trace, row, float(type_ok)))
                continue
        metrics.add("accuracy", acc)
        out[i] = format_weight + accuracy_weight * acc

    if pending:
        subgoals = _subgoals(pending, config, metrics)
        for (i, _, _, type_ok), sub in zip(pending, subgoals):
            metrics.add("subgoal", sub)
            acc = type_weight * type_ok + subgoal_weight * sub
            metrics.add("accuracy", acc)
            out[i] = format_weight + accuracy_weight * acc
    metrics.emit(columns.get("log_metric"))
    return out


def _subgoals(pending, config, metrics) -> list[float]:
    items = []
    for _, trace, row, _ in pending:
        gui = mapping(row.get("gui"))
        instruction = gui.get("instruction") if isinstance(gui.get("instruction"), str) else ""
        goal = gui.get("goal") if isinstance(gui.get("goal"), str) else ""
        step = trace.blocks_of("step")
        reasoning = step[0].text if step and config is None else (trace.think or "")
        items.append(JudgeItem(goal, reasoning, instruction))
    if config is None:
        return [unigram_f1(it.prediction, it.reference) if it.reference else 0.0 for it in items]
    verdicts = run_judge(items, config, "infigui_subgoal")
    for name, value in verdict_metrics(verdicts).items():
        metrics.add(name, value)
    return [v.score if v.score is not None else 0.0 for v in verdicts]
