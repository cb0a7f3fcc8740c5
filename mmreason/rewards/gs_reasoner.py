"""GS-Reasoner: grounded-CoT format, 3D IoU of the objects a trace names, VSI-Bench answer scoring.

GS-Reasoner itself is trained by SFT only; these are its evaluation criteria turned into rewards, which is
what an RL extension of it would optimise (the combination :func:`gs_reasoner` is ours, not published).

- Format: ``<think>…</think><answer>…</answer>`` and nothing else, every ``<bbox>`` a well-formed
  ``(x1, y1, z1, x2, y2, z2)`` preceded by ``name count`` (the GCoT grammar, name one ``\\w+`` token).
- Grounding: each named 3D box in the trace is scored by its best axis-aligned 3D IoU with the GT
  ``boxes_3d`` of the same label (labels compared lower-cased, spaces as underscores, since the grammar
  writes ``coffee_table``); a box whose name has no GT object scores 0; the reward is the mean.
- VSI-Bench: multiple choice = option letter match; numeric = mean relative accuracy
  ``MRA = mean_{θ in {0.50, 0.55, …, 0.95}} 1[|pred − gt| / gt < 1 − θ]`` (gt = 0: exact match).
"""

from __future__ import annotations

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, answer_of, gt_boxes_3d, guarded, reward_function, score_rows,
)
from mmreason.rewards.accuracy import NUMBER, choice_letter, gt_letter, normalize_answer, parse_number
from mmreason.rewards.format import tags_full_match
from mmreason.traces import Trace, parse

MRA_THRESHOLDS = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))
MODES = ("auto", "mc", "mra", "exact")


def mean_relative_accuracy(pred: float | None, gt: float | None, thresholds=MRA_THRESHOLDS) -> float:
    """VSI-Bench's MRA.

    >>> mean_relative_accuracy(2.2, 2.0)   # relative error 0.1 < 1 - θ for θ in 0.50 … 0.85
    0.8
    """
    if pred is None or gt is None:
        return 0.0
    if gt == 0:
        return 1.0 if pred == 0 else 0.0
    err = abs(pred - gt) / abs(gt)
    return sum(err < 1 - t for t in thresholds) / len(thresholds)


def vsi_kind(gt: str | None) -> str | None:
    """The kind of a VSI-Bench reference answer: "mc" (an option letter), "mra" (a number), else None.

    >>> vsi_kind("(B)"), vsi_kind("2.5"), vsi_kind("chair"), vsi_kind(None)
    ('mc', 'mra', None, None)
    """
    if gt is None:
        return None
    if gt_letter(gt) is not None:
        return "mc"
    return "mra" if NUMBER.fullmatch(gt.strip()) else None


def vsi_score(pred: str | None, gt: str | None, mode: str = "auto") -> float | None:
    """One VSI-Bench answer: letter match for options, MRA for numbers, normalised match otherwise."""
    if gt is None:
        return None
    if pred is None:
        return 0.0
    kind = vsi_kind(gt) if mode == "auto" else mode
    if kind == "mc":
        return float(choice_letter(pred) == (gt_letter(gt) or gt.strip().upper()[:1]))
    if kind == "mra":
        return mean_relative_accuracy(parse_number(pred), parse_number(gt))
    return float(normalize_answer(pred) == normalize_answer(gt))


def _label(name: str | None) -> str:
    return "_".join(name.lower().split()) if isinstance(name, str) else ""


def grounding_score(trace, gts) -> float:
    if not trace.boxes_3d:
        return 0.0
    by_label: dict[str, list] = {}
    for box, label in gts:
        by_label.setdefault(_label(label), []).append(box)
    scores = [max((geometry.iou_3d(m.box, g) for g in by_label.get(_label(m.name), [])), default=0.0)
              for m in trace.boxes_3d]
    return sum(scores) / len(scores)


def gcot_format_ok(text: str, trace: Trace | None = None) -> bool:
    """GCoT's layout: think then answer, every ``<bbox>`` closed, read as a 3D box and named
    (``trace`` is the text's, when already parsed)."""
    trace = parse(text) if trace is None else trace
    if not tags_full_match(text, ("think", "answer"), blocks=trace.blocks):
        return False
    n = text.count("<bbox>")
    named = all(m.name is not None for m in trace.boxes_3d)
    return n == text.count("</bbox>") == len(trace.boxes_3d) and named


@reward_function
def gs_format(completions, **columns):
    """1.0 for a well-formed GCoT completion (module docstring).

    >>> gs_format(["<think>chair 1 <bbox>(0, 0, 0, 1, 1, 1)</bbox></think><answer>B</answer>",
    ...            "<think><bbox>(0, 0, 0, 1, 1)</bbox></think><answer>B</answer>"])
    [1.0, 0.0]
    """
    metrics = Metrics("gs_format")
    out = score_rows(completions, columns, lambda s, _: float(gcot_format_ok(s.text, s.trace)), metrics)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def gs_grounding(completions, **columns):
    """Mean over named 3D boxes of the best 3D IoU with GT boxes of that label (None without ``boxes_3d``).

    >>> trace = "<think>chair 2 <bbox>(0, 0, 0, 1, 1, 1)</bbox><bbox>(5, 5, 5, 6, 6, 6)</bbox></think>"
    >>> gs_grounding([trace], boxes_3d=[[{"label": "chair", "box": [0, 0, 0, 1, 1, 2]}]])
    [0.25]
    """
    metrics = Metrics("gs_grounding")

    def one(sample, metrics):
        gts = gt_boxes_3d(sample.row, reward="gs_grounding")
        return grounding_score(sample.trace, gts) if gts else None

    out = score_rows(completions, columns, one, metrics)
    for value in out:
        metrics.add("iou", value)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def vsi_accuracy(completions, *, mode: str = "auto", **columns):
    """VSI-Bench answer score of the ``<answer>`` content: option letter or MRA (``mode`` forces one).

    >>> vsi_accuracy(["<answer>B</answer>", "<answer>2.2</answer>", "<answer>4</answer>"],
    ...              answer=["B", "2", "2"])
    [1.0, 0.8, 0.0]
    """
    if mode not in MODES:
        raise RecipeError(f"vsi_accuracy: mode must be one of {MODES}, got {mode!r}")
    metrics = Metrics("vsi_accuracy")
    out = score_rows(completions, columns, lambda s, _: vsi_score(s.trace.answer, answer_of(s.row), mode),
                     metrics)
    for v in out:
        metrics.add("score", v)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def gs_reasoner(completions, *, format_weight: float = 0.5, answer_weight: float = 1.0,
                grounding_weight: float = 1.0, mode: str = "auto", **columns):
    """GS-Reasoner as a reward: ``format_weight·format + answer_weight·VSI + grounding_weight·3D IoU``.

    A term whose ground truth is missing is left out (None when all are). Not part of the published
    method, which is trained by SFT only."""
    if mode not in MODES:
        raise RecipeError(f"gs_reasoner: mode must be one of {MODES}, got {mode!r}")
    metrics = Metrics("gs_reasoner")

    def one(sample, metrics):
        row, trace = sample.row, sample.trace
        fmt = float(guarded(gcot_format_ok, sample.text, trace, default=False, metrics=metrics))
        ans = guarded(vsi_score, trace.answer, answer_of(row), mode, metrics=metrics)
        gts = gt_boxes_3d(row, reward="gs_reasoner")
        ground = guarded(grounding_score, trace, gts, metrics=metrics) if gts else None
        for k, v in (("format", fmt), ("answer", ans), ("grounding", ground)):
            metrics.add(k, v)
        if ans is None and ground is None:
            return None
        return format_weight * fmt + answer_weight * (ans or 0.0) + grounding_weight * (ground or 0.0)

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out
