"""Evaluation metrics the reward library does not have, in the same signature, and their aggregation.

Each metric is ``fn(completions, **columns) -> list[float | None]`` like a reward (``None`` = the sample
does not count for it), so `mmreason.eval.scoring` scores every task the same way and the reward library
stays the one home of IoU, MRA and point-in-box. What lives here:

- temporal grounding (Charades-STA style): the span ``start to end`` (seconds) read from the answer,
  its 1D IoU with the best GT ``time_spans`` entry, recall at an IoU threshold, and whether the
  predicted moment (the span's centre) falls inside a GT span;
- VSI-Bench's two halves, multiple-choice accuracy and mean relative accuracy, each counted only on the
  questions of its kind (`rewards.gs_reasoner.vsi_kind` tells the kind, `vsi_score` scores it);
- AndroidControl's grounding accuracy: step success on the steps whose GT action has a coordinate;
- tool calls per trajectory (DeepEyes' training-dynamics signal);
- POPE's yes/no reading (`yes_no`: accuracy, precision, recall, yes-ratio; F1 is derived from the
  precision and recall means by `derive`);
- the format rate every task reports (`output_format`): the share of outputs laid out as the task's
  prompt asks, read by the same parsers the metrics use, so a score of 0 tells "unreadable" from "wrong";
- the wrong-object rate of referring tasks (`wrong_object`), with `rewards.grounding.object_overlap`
  deciding which object a box matches, as `referring_iou` does in training.

>>> temporal_iou(["<answer>2.0 to 4.0</answer>"], time_spans=[[{"start": 3.0, "end": 5.0}]])
[0.3333333333333333]
>>> summarize([{"acc": 1.0}, {"acc": 0.0}, {"acc": None}], ["acc"])
{'acc': {'mean': 0.5, 'n': 2}}
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from mmreason import traces
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, answer_of, completion_text, decode_json, reward_function, rows_of, safe_float, score_rows,
)
from mmreason.rewards.accuracy import choice_letter
from mmreason.rewards.format import tags_full_match
from mmreason.rewards.grounding import first_point, in_scope, score_overlaps
from mmreason.rewards.gs_reasoner import gcot_format_ok, vsi_kind, vsi_score
from mmreason.rewards.gui import gt_action, gui_action_match, predicted_action

_SECONDS = re.compile(r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)")
MAX_SPAN_TEXT = 10_000  # a runaway completion is read only this far


def predicted_span(text: str) -> tuple[float, float] | None:
    """The first two numbers of the answer (the whole text when there is no answer) as a sorted span;
    one number gives a moment ``(t, t)``.

    >>> predicted_span("<answer>from 4.5 s to 2 s</answer>"), predicted_span("at 3"), predicted_span("no")
    ((2.0, 4.5), (3.0, 3.0), None)
    """
    answer = traces.extract_answer(text)
    body = (answer if answer is not None else text)[:MAX_SPAN_TEXT]
    values = [v for v in (safe_float(m) for m in _SECONDS.findall(body)[:2]) if v is not None]
    if not values:
        return None
    return (min(values), max(values))


def span_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """1D IoU of two ``(start, end)`` spans; two equal moments score 1.

    >>> span_iou((0, 2), (1, 3)), span_iou((1, 1), (1, 1)), span_iou((1, 1), (0, 2))
    (0.3333333333333333, 1.0, 0.0)
    """
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if tuple(a) == tuple(b) else 0.0
    return inter / union


def gt_spans(row: Mapping[str, Any]) -> list[tuple[float, float]]:
    value = decode_json(row.get("time_spans"))
    out = []
    for entry in value if isinstance(value, (list, tuple)) else []:
        if isinstance(entry, Mapping):
            start, end = safe_float(entry.get("start")), safe_float(entry.get("end"))
            if start is not None and end is not None and start <= end:
                out.append((start, end))
    return out


def _per_span(completions, columns, score) -> list[float | None]:
    out: list[float | None] = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        spans = gt_spans(row)
        if not spans:
            out.append(None)
            continue
        pred = predicted_span(completion_text(c))
        out.append(0.0 if pred is None else score(pred, spans))
    return out


@reward_function
def temporal_iou(completions, *, threshold: float | None = None, **columns):
    """Best 1D IoU of the predicted span with a GT ``time_spans`` entry; with ``threshold`` the
    recall indicator R@threshold instead (Charades-STA reports R@0.5 and R@0.7).

    >>> temporal_iou(["1 to 3", "5 to 6"], threshold=0.5, time_spans=[[{"start": 1.0, "end": 2.5}]] * 2)
    [1.0, 0.0]
    """
    if threshold is not None and not 0 < threshold <= 1:
        raise RecipeError(f"temporal_iou: threshold must be in (0, 1], got {threshold}")

    def score(pred, spans):
        best = max(span_iou(pred, s) for s in spans)
        return best if threshold is None else float(best >= threshold)
    return _per_span(completions, columns, score)


@reward_function
def temporal_hit(completions, **columns):
    """1.0 when the centre of the predicted span (or the one predicted moment) lies in a GT span.

    >>> temporal_hit(["<answer>0.3</answer>", "<answer>0.9</answer>"],
    ...              time_spans=[[{"start": 0.3, "end": 0.4}]] * 2)
    [1.0, 0.0]
    """
    def score(pred, spans):
        centre = (pred[0] + pred[1]) / 2
        return float(any(s <= centre <= e for s, e in spans))
    return _per_span(completions, columns, score)


def _vsi(completions, columns, kind: str) -> list[float | None]:
    out: list[float | None] = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        gt = answer_of(row)
        out.append(vsi_score(traces.parse(completion_text(c)).answer, gt, kind) if vsi_kind(gt) == kind
                   else None)
    return out


@reward_function
def vsi_mc(completions, **columns):
    """VSI-Bench multiple-choice accuracy: counted only where the GT answer is an option letter.

    >>> vsi_mc(["<answer>B</answer>", "<answer>3</answer>"], answer=["B", "3"])
    [1.0, None]
    """
    return _vsi(completions, columns, "mc")


@reward_function
def vsi_mra(completions, **columns):
    """VSI-Bench mean relative accuracy: counted only where the GT answer is a number.

    >>> vsi_mra(["<answer>B</answer>", "<answer>2.2</answer>"], answer=["B", "2"])
    [None, 0.8]
    """
    return _vsi(completions, columns, "mra")


@reward_function
def gui_grounding_match(completions, *, coord_frame: str | None = None, family: str | None = None,
                        min_pixels: int | None = None, max_pixels: int | None = None,
                        actions: Sequence[str] | None = None, **columns):
    """AndroidControl grounding accuracy: `gui_action_match` on the steps whose GT action has a
    ``coordinate`` (click, long press...), None on the others; with ``actions`` only on steps whose GT
    action is one of those (InfiGUI-R1's number counts GT clicks alone: ``actions=["click"]``).

    >>> gt = [{"width": 100, "height": 100, "action": {"action": a, "coordinate": [50, 50]}}
    ...       for a in ("click", "long_press")]
    >>> gui_grounding_match(['{"action": "click", "coordinate": [51, 50]}'] * 2, coord_frame="pixel",
    ...                     actions=["click"], gui=gt)
    [1.0, None]
    """
    matched = gui_action_match(completions, coord_frame=coord_frame, family=family, min_pixels=min_pixels,
                               max_pixels=max_pixels, **columns)
    rows = rows_of(len(completions), columns)
    out: list[float | None] = []
    for m, r in zip(matched, rows):
        gt = gt_action(r) or {}
        counted = gt.get("coordinate") is not None and (actions is None or gt.get("action") in actions)
        out.append(m if counted else None)
    return out


@reward_function
def tool_calls(completions, **columns):
    """Tool calls the trajectory made (the ``num_tool_calls`` column a rollout writes).

    >>> tool_calls(["a", "b"], num_tool_calls=[2, 0])
    [2.0, 0.0]
    """
    return [safe_float(r.get("num_tool_calls")) for r in rows_of(len(completions), columns)]


# -------------------------------------------------------------------------------------------- POPE
_YES_NO_STATS = ("accuracy", "precision", "recall", "yes_ratio")


def read_yes_no(text: str) -> str | None:
    """POPE's reading of a reply (its evaluate script): "no" when the answer's words hold "no" or "not",
    else "yes"; None for an empty answer.

    >>> read_yes_no("<answer>No, there is not.</answer>"), read_yes_no("Yes."), read_yes_no("")
    ('no', 'yes', None)
    """
    from mmreason.rewards.accuracy import normalize_answer

    answer = traces.extract_answer(text)
    words = normalize_answer((answer if answer is not None else text)[:MAX_SPAN_TEXT]).split()
    if not words:
        return None
    return "no" if {"no", "not"} & set(words) else "yes"


@reward_function
def yes_no(completions, *, stat: str = "accuracy", **columns):
    """POPE's per-sample statistics of a yes/no answer against the GT ``answer``: ``accuracy`` (every
    sample), ``precision`` (correct among samples answered yes), ``recall`` (answered yes among GT yes),
    ``yes_ratio`` (answered yes, every sample). An empty reply counts as wrong and not yes.

    >>> outs = ["yes", "no", "yes", ""]
    >>> [yes_no(outs, stat=s, answer=["yes", "yes", "no", "no"]) for s in ("accuracy", "precision")]
    [[1.0, 0.0, 0.0, 0.0], [1.0, None, 0.0, None]]
    """
    if stat not in _YES_NO_STATS:
        raise RecipeError(f"yes_no: stat must be one of {_YES_NO_STATS}, got {stat!r}")
    out: list[float | None] = []
    for c, row in zip(completions, rows_of(len(completions), columns)):
        gt, pred = str(row.get("answer") or "").strip().lower(), read_yes_no(completion_text(c))
        if gt not in ("yes", "no"):
            out.append(None)
        elif stat == "accuracy":
            out.append(float(pred == gt))
        elif stat == "yes_ratio":
            out.append(float(pred == "yes"))
        elif stat == "precision":
            out.append(None if pred != "yes" else float(gt == "yes"))
        else:
            out.append(None if gt != "yes" else float(pred == "yes"))
    return out


# ------------------------------------------------------------------------------- format and objects
# Video-CoM's release ends an answer with a `FINAL_ANSWER: <letter>. <option>` line; something must follow.
_FINAL_LINE = re.compile(r"FINAL_ANSWER\s*:[ \t]*\S")

# kind -> check(trace): does the output parse as that format? Each reads what the task's metric reads.
FORMATS = {
    "answer": lambda t: bool(t.answer),  # a non-empty <answer> block (an open last one counts)
    "box": lambda t: bool(in_scope(t, "answer", t.boxes)),  # a 2D box where box_iou reads it
    "point": lambda t: first_point(t, "all") is not None,  # what click_in_box reads
    "action": lambda t: predicted_action(t) is not None,  # an action gui_action_match can read
    "box_3d": lambda t: bool(in_scope(t, "answer", t.boxes_3d)),  # a `<bbox>(6 numbers)</bbox>` answer
    "gcot": lambda t: gcot_format_ok(t.text, t),  # GS-Reasoner's layout, as gs_format checks it
    # GRIT's think / rethink / answer layout; `</answer>` may stay open (a stop string in its recipe)
    "grit": lambda t: tags_full_match(t.text, ("think", "rethink", "answer"), allow_open_last=True,
                                      blocks=t.blocks),
    "span": lambda t: predicted_span(t.text) is not None,  # what temporal_iou reads
    "final_answer": lambda t: _FINAL_LINE.search(t.text) is not None,
    "yes_no": lambda t: read_yes_no(t.text) is not None,  # a non-empty reply POPE can read
    "letter": lambda t: choice_letter(t.answer if t.answer is not None else t.text) is not None,
}


@reward_function
def output_format(completions, *, kind: str = "answer", **columns):
    """1.0 when the output parses as the format ``kind`` (a key of `FORMATS`), else 0.0: the format rate.

    >>> output_format(["<answer>4</answer>", "four"])
    [1.0, 0.0]
    >>> output_format(['{"bbox_2d": [1, 2, 3, 4]}', "<answer>4</answer>"], kind="box")
    [1.0, 0.0]
    """
    if kind not in FORMATS:
        raise RecipeError(f"output_format: kind must be one of {sorted(FORMATS)}, got {kind!r}")
    check = FORMATS[kind]
    metrics = Metrics("output_format")
    return score_rows(completions, columns, lambda s, _: float(bool(check(s.trace))), metrics)


@reward_function
def wrong_object(completions, *, where: str = "answer", coord_frame: str | None = None,
                 family: str | None = None, min_pixels: int | None = None, max_pixels: int | None = None,
                 **columns):
    """1.0 when the first predicted box overlaps another object of the scene (``meta["objects"]``) more
    than the named one, else 0.0; None for one-object scenes and when no box parsed (the format rate
    counts those). Boxes are mapped to original pixels as `box_iou` maps them.

    >>> meta = {"objects": [{"box": [0, 0, 10, 10]}, {"box": [20, 0, 30, 10]}]}
    >>> wrong_object(["[18, 0, 30, 10]", "[0, 0, 9, 10]", "none", "[0, 0, 9, 10]"],
    ...              boxes=[[{"box": [0, 0, 10, 10]}]] * 4, meta=[meta] * 3 + [{}])
    [1.0, 0.0, None, None]
    """
    def one(overlap, metrics):
        return None if overlap is None or overlap.wrong_object is None else float(overlap.wrong_object)
    return score_overlaps("wrong_object", completions, columns, one, where=where, coord_frame=coord_frame,
                          family=family, min_pixels=min_pixels, max_pixels=max_pixels)


# ----------------------------------------------------------------------------------- aggregation
def summarize(scores: Sequence[Mapping[str, float | None]], names: Sequence[str]) -> dict[str, dict]:
    """Per metric, the mean over the samples it applies to and how many those are (mean None when none)."""
    out = {}
    for name in names:
        values = [v for v in (s.get(name) for s in scores) if v is not None]
        out[name] = {"mean": sum(values) / len(values) if values else None, "n": len(values)}
    return out


def derive(summary: Mapping[str, Mapping[str, Any]], derived: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """Numbers computed from metric means, not averaged per sample: ``name: ("f1", precision, recall)``
    is their harmonic mean (None when either is missing), ``n`` the precision's.

    >>> derive({"p": {"mean": 0.5, "n": 4}, "r": {"mean": 1.0, "n": 2}}, {"f1": ("f1", "p", "r")})
    {'f1': {'mean': 0.6666666666666666, 'n': 4}}
    """
    out = {}
    for name, (kind, *args) in derived.items():
        if kind != "f1":
            raise RecipeError(f"derived metric {name!r}: unknown kind {kind!r} (known: f1)")
        p, r = (summary.get(a, {}).get("mean") for a in args)
        value = None if p is None or r is None else (0.0 if p + r == 0 else 2 * p * r / (p + r))
        out[name] = {"mean": value, "n": summary.get(args[0], {}).get("n", 0)}
    return out


def group_key(meta: Mapping[str, Any], key: str) -> str | None:
    """The group a row falls in for a breakdown key: a ``meta`` value, or ``a+b`` values joined by "/".

    >>> group_key({"device": "web", "element": "icon"}, "device+element"), group_key({}, "x")
    ('web/icon', None)
    """
    values = [meta.get(k) for k in key.split("+")]
    return None if any(v is None for v in values) else "/".join(map(str, values))


def breakdown(scores: Sequence[Mapping[str, float | None]], metas: Sequence[Mapping[str, Any]],
              keys: Sequence[str], names: Sequence[str],
              derived: Mapping[str, Sequence[str]] | None = None) -> dict[str, dict[str, dict]]:
    """Per breakdown key and group value, `summarize` of the samples in that group (plus `derive`)."""
    out: dict[str, dict[str, dict]] = {}
    for key in keys:
        groups: dict[str, list] = {}
        for s, meta in zip(scores, metas):
            value = group_key(meta or {}, key)
            if value is not None:
                groups.setdefault(value, []).append(s)
        out[key] = {}
        for value in sorted(groups):
            summary = summarize(groups[value], names)
            out[key][value] = {**summary, **derive(summary, derived or {})}
    return out


__all__ = ["temporal_iou", "temporal_hit", "vsi_mc", "vsi_mra", "gui_grounding_match", "tool_calls",
           "output_format", "wrong_object", "FORMATS", "predicted_span", "span_iou", "summarize", "yes_no",
           "read_yes_no", "derive", "breakdown", "group_key"]
