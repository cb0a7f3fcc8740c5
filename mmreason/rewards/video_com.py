"""Video-CoM's ``reasoning_reward``: answer accuracy + the fraction of correct manipulations.

``score = acc + correct / total`` over the manipulations the completion wrote (0 when none can be judged):

- ``FIND_SEGMENT(q) = [ids]``: the distinct segment ids; each is correct if in ``valid_segments``;
- ``FIND_FRAME(q) = [frames]``: the distinct frame numbers; each is correct if inside a ``valid_frames``
  range ``[start, end]`` (inclusive);
- ``SPATIAL_ZOOM(q) = [x1, y1, x2, y2]``: paired with the last frame of the latest ``FIND_FRAME`` before
  it; counted only when that frame has a GT box in ``valid_bounding_box`` (``[[frame, box], ...]``), and
  correct when IoU >= ``zoom_iou`` (0.35). A zoom with no frame before it is not counted.

Each kind counts only when its ground truth is non-empty (as in the release). Accuracy is the option
letter: the first character of the text after the last ``FINAL_ANSWER:`` (the whole completion if there
is none) when it is a letter A-E, upper-cased, compared with the ground truth's; the release compares
the first letter this way even for words ("dog" reads as D), and so does this function.

:func:`video_com_step_scores` scores each manipulation line on its own, with its character span, for
token-level credit assignment; :func:`video_com_steps`, the step reward a trainer uses, judges each
manipulation by the release's rule above.

Ground truth: a ``reasoning_gts`` column (Video-CoM's name) or ``meta["reasoning_gts"]`` with keys
``valid_segments``, ``valid_frames``, ``valid_bounding_box``; the answer from ``answer``. Zoom boxes
and GT boxes are in the same frame pixels. Deviation: the release's single-number ``FIND_SEGMENT(q) = 3``
branch reads the wrong regex group (and then drops every segment of the completion); here only the
bracketed form ``= [..]`` that ``traces`` reads is used.
"""

from __future__ import annotations

import re
from typing import Mapping

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, StepSpans, answer_of, completion_text, decode_json, floats, keyword_options, mapping,
    reward_function, safe_float, score_rows,
)
from mmreason.rewards.virl import StepScore
from mmreason.traces import Trace, parse

_LETTER = re.compile(r"([A-Ea-e])")


def mcq_letter(text: str) -> str:
    """The release's ``normalize_mcq``: the leading letter A-E upper-cased, else the stripped text."""
    match = _LETTER.match(text.strip())
    return match.group(1).upper() if match else text.strip()


def final_answer(text: str) -> str:
    if "FINAL_ANSWER:" not in text:
        return text.strip()
    return text[text.rfind("FINAL_ANSWER:") + len("FINAL_ANSWER:"):].strip()


def reasoning_gts(row) -> dict:
    gts = decode_json(row.get("reasoning_gts"))
    if not isinstance(gts, dict):
        gts = mapping(mapping(row.get("meta")).get("reasoning_gts"))
    return gts


def _ground_truth(gts: dict) -> tuple[list, list, dict]:
    """(valid segment ids, valid frame ranges, frame -> GT box), malformed entries dropped."""
    segments = [v for v in (gts.get("valid_segments") or []) if safe_float(v) is not None]
    ranges = [r for r in (floats(x, 2) for x in (gts.get("valid_frames") or [])
                          if isinstance(x, (list, tuple))) if r is not None]
    boxes: dict[int, tuple] = {}
    for entry in gts.get("valid_bounding_box") or []:
        if isinstance(entry, (list, tuple)) and len(entry) == 2 and safe_float(entry[0]) is not None:
            box = floats(entry[1], 4)
            if box is not None:
                boxes[int(float(entry[0]))] = box
    return segments, ranges, boxes


def _walk(trace):
    """(manipulation, integer values, frame in view) for each manipulation, in order."""
    current = None
    for m in trace.manipulations:
        ints = [int(v) for v in m.values if float(v).is_integer()]
        if m.kind == "FIND_FRAME" and ints:
            current = ints[-1]
        yield m, ints, current


def manipulation_score(trace, gts: dict, zoom_iou: float) -> tuple[float, dict]:
    """(correct / total or 0, per-kind counts) as the release counts them (distinct ids and frames)."""
    segments, ranges, boxes = _ground_truth(gts)
    seg_ids, frame_ids, zooms = set(), set(), []
    for m, ints, current in _walk(trace):
        if m.kind == "FIND_SEGMENT":
            seg_ids.update(ints)
        elif m.kind == "FIND_FRAME":
            frame_ids.update(ints)
        elif m.kind == "SPATIAL_ZOOM" and len(m.values) >= 4:
            for k in range(0, len(m.values) - 3, 4):
                zooms.append((current, tuple(m.values[k:k + 4])))
    counts = {"segments": (0, 0), "frames": (0, 0), "zooms": (0, 0)}
    if segments and seg_ids:
        counts["segments"] = (sum(s in segments for s in seg_ids), len(seg_ids))
    if ranges and frame_ids:
        counts["frames"] = (sum(any(lo <= f <= hi for lo, hi in ranges) for f in frame_ids), len(frame_ids))
    if boxes and zooms:
        judged = [(f, b) for f, b in zooms if f is not None and f in boxes]
        counts["zooms"] = (sum(geometry.iou(b, boxes[f]) >= zoom_iou for f, b in judged), len(judged))
    correct = sum(c for c, _ in counts.values())
    total = sum(t for _, t in counts.values())
    return (correct / total if total else 0.0), counts


def video_com_step_scores(completion: object, reasoning_gts: object, *, zoom_iou: float = 0.35) -> list[StepScore]:
    """Per-manipulation scores with their character spans, for token-level credit (each line is a step).

    A step's score is the share of its values that are right: segment ids in ``valid_segments``, frames
    inside a ``valid_frames`` range, a zoom 1 when its IoU with the GT box of the frame in view is >=
    ``zoom_iou``. A step whose kind has no ground truth (or a zoom with no GT box for its frame) is
    "unjudged" and scores 0. Labels: correct (1), partial, erroneous (0), unjudged. Never raises.

    >>> text = "FIND_FRAME(cup) = [12, 40]\\nSPATIAL_ZOOM(cup) = [0, 0, 10, 10]"
    >>> gts = {"valid_frames": [[10, 20]], "valid_bounding_box": [[40, [0, 0, 10, 12]]]}
    >>> [(s.kind, s.label, s.score) for s in video_com_step_scores(text, gts)]
    [('frame', 'partial', 0.5), ('zoom', 'correct', 1.0)]
    """
    gts = decode_json(reasoning_gts)
    segments, ranges, boxes = _ground_truth(gts if isinstance(gts, dict) else {})
    trace = completion if isinstance(completion, Trace) else parse(completion_text(completion))
    out = []
    for k, (m, ints, current) in enumerate(_walk(trace)):
        box, iou, score = None, 0.0, None
        if m.kind == "FIND_SEGMENT" and segments and ints:
            score = sum(v in segments for v in ints) / len(ints)
        elif m.kind == "FIND_FRAME" and ranges and ints:
            score = sum(any(lo <= f <= hi for lo, hi in ranges) for f in ints) / len(ints)
        elif m.kind == "SPATIAL_ZOOM" and len(m.values) >= 4:
            box = tuple(float(v) for v in m.values[:4])
            if current is not None and current in boxes:
                iou = geometry.iou(box, boxes[current])
                score = float(iou >= zoom_iou)
        label = "unjudged" if score is None else {1.0: "correct", 0.0: "erroneous"}.get(score, "partial")
        kind = {"FIND_SEGMENT": "segment", "FIND_FRAME": "frame", "SPATIAL_ZOOM": "zoom"}[m.kind]
        out.append(StepScore(k, kind, m.start, m.end, box, label, iou, None, score or 0.0, score or 0.0))
    return out


@reward_function
def video_com(completions, *, zoom_iou: float = 0.35, acc_weight: float = 1.0,
              manipulation_weight: float = 1.0, **columns):
    """Video-CoM: answer accuracy + the fraction of correct manipulations (IoU >= 0.35 for zooms).

    ``acc_weight·acc + manipulation_weight·(correct / total)``; rules in the module docstring.

    >>> c = ("FIND_FRAME(cup) = [12]\\nSPATIAL_ZOOM(cup) = [0, 0, 10, 10]\\nFIND_SEGMENT(pour) = [3]\\n"
    ...      "FINAL_ANSWER: B. pour")
    >>> gts = {"valid_segments": [2], "valid_frames": [[10, 20]],
    ...        "valid_bounding_box": [[12, [0, 0, 10, 12]]]}
    >>> video_com([c], answer=["B. pour"], reasoning_gts=[gts])  # 1 + 2/3: frame, zoom (IoU .83) ok
    [1.6666666666666665]
    """
    if not 0 < zoom_iou <= 1:
        raise RecipeError(f"video_com: zoom_iou must be in (0, 1], got {zoom_iou}")
    metrics = Metrics("video_com")

    def one(sample, metrics):
        gt = answer_of(sample.row)
        if gt is None:
            return None
        acc = float(mcq_letter(final_answer(sample.text)) == mcq_letter(gt))
        try:
            fraction, counts = manipulation_score(sample.trace, reasoning_gts(sample.row), zoom_iou)
        except (TypeError, ValueError, OverflowError):  # a malformed GT column: no manipulation credit
            fraction, counts = 0.0, {}
            metrics.add("errors", 1.0)
        metrics.add("acc", acc)
        metrics.add("manipulation", fraction)
        for kind, (ok, total) in counts.items():
            if total:
                metrics.add(f"{kind}_correct", ok / total)
        return acc_weight * acc + manipulation_weight * fraction

    out = score_rows(completions, columns, one, metrics)
    metrics.emit(columns.get("log_metric"))
    return out


VIDEO_COM_OPTIONS = keyword_options(video_com)  # `video_com`'s options and their defaults


def video_com_steps(completion: object, row: Mapping, **options) -> StepSpans:
    """Video-CoM's step reward: each manipulation scores 1 if the release's rule counts it correct, else 0
    (a zoom is judged on the frame the last FIND_FRAME before it picked). ``options`` are `video_com`'s, as
    a recipe binds them; ``completion`` is a string, a message list or its parsed ``Trace``.

    >>> text = "FIND_FRAME(cup) = [12]\\nSPATIAL_ZOOM(cup) = [0, 0, 10, 10]"
    >>> gts = {"valid_frames": [[10, 20]], "valid_bounding_box": [[12, [0, 0, 10, 12]]]}
    >>> video_com_steps(text, {"reasoning_gts": gts})
    [(0, 22, 1.0), (23, 57, 1.0)]
    """
    trace = completion if isinstance(completion, Trace) else parse(completion_text(completion))
    zoom_iou = float({**VIDEO_COM_OPTIONS, **options}["zoom_iou"])
    gts = reasoning_gts(row)
    out, last_frame = [], None
    for m in trace.manipulations:
        context = (m,) if m.kind != "SPATIAL_ZOOM" or last_frame is None else (last_frame, m)
        _, counts = manipulation_score(Trace(trace.text, manipulations=context), gts, zoom_iou)
        key = {"FIND_SEGMENT": "segments", "FIND_FRAME": "frames", "SPATIAL_ZOOM": "zooms"}[m.kind]
        ok, total = counts.get(key, (0, 0))
        out.append((m.start, m.end, ok / total if total else 0.0))
        if m.kind == "FIND_FRAME":
            last_frame = m
    return out
