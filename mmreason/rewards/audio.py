"""Audio rewards beyond text accuracy: when things are heard, and whether the model listened there.

- ``audio_span_iou``: the 1D IoU (seconds) of the span the answer cites (its first two numbers, sorted,
  e.g. ``<answer>4.09 to 4.71</answer>``) with the best ground-truth ``time_spans`` entry; None for rows
  without spans. The Charades-STA-style temporal IoU, on audio.
- ``audio_evidence``: coarse-to-fine evidence. The spans the completion played back with the
  ``play_audio`` tool (`mmreason.tools.audio`) are read from its tool calls; the score is the largest
  share of a ground-truth span that one played span covers, counting only played spans at most
  ``max_seconds`` long (a closer listen, not the whole clip again). 0.0 when nothing was played; None
  without spans.
- ``audio_reasoning``: ``answer_weight·answer + evidence_weight·evidence``, where ``answer`` is
  ``audio_span_iou`` on temporal-grounding rows (``task`` temporal_grounding) and a normalised exact match
  with ``answer`` on the others, and ``evidence`` is ``audio_evidence`` (left out on rows without spans).

No audio paper gives these weights or the coverage rule: they are this library's (the answer first, the
evidence as a shaping term at half its weight), stated here so a recipe can set its own.

>>> audio_span_iou(["<answer>4.0 to 5.0</answer>"], time_spans=[[{"start": 4.5, "end": 5.0}]])
[0.5]
>>> call = '<tool_call>{"name": "play_audio", "arguments": {"start": 4.0, "end": 5.0}}</tool_call>'
>>> audio_evidence([call, "no call"], time_spans=[[{"start": 4.5, "end": 5.5}]] * 2)
[0.5, 0.0]
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from mmreason.rewards._common import Metrics, answer_of, decode_json, mapping, reward_function, score_rows
from mmreason.rewards.accuracy import normalize_answer

TOOL = "play_audio"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def gt_spans(row: Mapping) -> list[tuple[float, float]]:
    """The row's ``time_spans`` as sorted (start, end) seconds; malformed entries are skipped."""
    value = decode_json(row.get("time_spans"))
    out = []
    for item in value if isinstance(value, (list, tuple)) else ():
        item = mapping(item)
        try:
            a, b = float(item["start"]), float(item["end"])
        except (KeyError, TypeError, ValueError):
            continue
        out.append((min(a, b), max(a, b)))
    return out


def cited_span(answer: str | None) -> tuple[float, float] | None:
    """The first two numbers of the answer as a sorted span (None with fewer than two).

    >>> cited_span("from 4.7 s to 4.1 s"), cited_span("at 3")
    ((4.1, 4.7), None)
    """
    nums = [float(n) for n in _NUMBER.findall(answer or "")[:2]]
    return (min(nums), max(nums)) if len(nums) == 2 else None


def span_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """1D IoU of two (start, end) spans; two equal moments score 1.

    >>> span_iou((0, 2), (1, 3)), span_iou((1, 1), (1, 1))
    (0.3333333333333333, 1.0)
    """
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(a[0] == b[0])


def played_spans(trace) -> list[tuple[float, float]]:
    """The (start, end) of each well-formed ``play_audio`` call in the completion."""
    out = []
    for call in trace.tool_calls:
        args = call.arguments if isinstance(call.arguments, Mapping) else {}
        if call.name != TOOL:
            continue
        try:
            a, b = float(args["start"]), float(args["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if b > a:
            out.append((a, b))
    return out


def coverage(played: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]],
             max_seconds: float) -> float:
    """The largest share of a GT span covered by one played span no longer than `max_seconds`."""
    best = 0.0
    for a, b in played:
        if b - a > max_seconds:
            continue
        for s, e in spans:
            length = e - s
            inter = max(0.0, min(b, e) - max(a, s))
            best = max(best, inter / length if length > 0 else float(a <= s <= b))
    return best


def _answer_text(sample) -> str | None:
    return sample.trace.answer if sample.trace.answer is not None else sample.text


@reward_function
def audio_span_iou(completions, **columns):
    """Best 1D IoU of the answer's span with a GT ``time_spans`` entry (module docstring)."""
    metrics = Metrics("audio_span_iou")

    def one(sample, metrics):
        spans = gt_spans(sample.row)
        if not spans:
            return None
        pred = cited_span(_answer_text(sample))
        metrics.add("cited", float(pred is not None))
        return 0.0 if pred is None else max(span_iou(pred, s) for s in spans)

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def audio_evidence(completions, *, max_seconds: float = 2.0, **columns):
    """Share of a GT span covered by a played-back span of at most ``max_seconds`` (module docstring)."""
    metrics = Metrics("audio_evidence")

    def one(sample, metrics):
        spans = gt_spans(sample.row)
        if not spans:
            return None
        played = played_spans(sample.trace)
        metrics.add("plays", float(len(played)))
        return coverage(played, spans, float(max_seconds))

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


@reward_function
def audio_reasoning(completions, *, answer_weight: float = 1.0, evidence_weight: float = 0.5,
                    max_seconds: float = 2.0, **columns):
    """``answer_weight·answer + evidence_weight·evidence`` (module docstring); None without a truth."""
    metrics = Metrics("audio_reasoning")

    def one(sample, metrics):
        row, spans = sample.row, gt_spans(sample.row)
        if row.get("task") == "temporal_grounding" and spans:
            pred = cited_span(_answer_text(sample))
            answer = 0.0 if pred is None else max(span_iou(pred, s) for s in spans)
        else:
            gt = answer_of(row)
            if gt is None:
                return None
            pred = sample.trace.answer
            answer = float(pred is not None and normalize_answer(pred) == normalize_answer(gt))
        metrics.add("answer", answer)
        total = answer_weight * answer
        if spans:
            evidence = coverage(played_spans(sample.trace), spans, float(max_seconds))
            metrics.add("evidence", evidence)
            total += evidence_weight * evidence
        return total

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out
