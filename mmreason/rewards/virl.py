"""ViRL: per-step rewards for visual actions against ground-truth rationale regions.

ViRL (arXiv 2511.23031) has no public code and only its abstract could be read: process supervision
with ground-truth rationales, step-level reward shaping aligned with the objective, and credit
assignment that tells correct, redundant and erroneous actions apart. The rule below is OUR reading of
that abstract, not the paper's formula; every constant is a keyword argument so the real rule can be
dropped in.

Steps. Each visual action is one step, in order of appearance: a ``<tool_call>`` (its ``bbox_2d`` is the
zoom region; a call without a usable box is an erroneous step) and, with ``inline_boxes=True``, each box
written in the text outside tool calls. A step's span is its character range in the completion, so a
trainer can map it to tokens.

Classification of step k with box b (mapped to original pixels; rationale regions from the
``rationale_regions`` column):

- **correct**    IoU(b, r) >= ``tau`` for some rationale region r not yet visited; the best such r is
                 marked visited;
- **redundant**  otherwise, IoU(b, r) >= ``tau`` for an already visited r, or IoU(b, b_j) >= ``dup_tau`` for
                 an earlier step j (a repeated crop);
- **erroneous**  anything else (no rationale overlap, invalid or unmappable box).

Step score ``s_k`` = ``correct_reward`` / ``redundant_reward`` / ``error_reward``. Shaping toward the final
answer: ``shaped_k = s_k + outcome_weight · gamma^(K-1-k) · acc`` (acc in {0, 1}; later steps, closer to
the answer, share more of its credit). The sequence reward is
``acc_weight·acc + step_weight·mean_k(s_k) + coverage_weight·(visited regions / regions)``; a row with
rationale regions but no visual action gets ``no_action_reward`` for the step term (actions are mandatory
in ViRL); a row without rationale regions gets only the accuracy term.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping, Sequence

from mmreason import geometry
from mmreason.errors import RecipeError
from mmreason.rewards._common import (
    Metrics, StepSpans, answer_of, box_to_pixels, completion_text, floats, gt_boxes, image_frame,
    keyword_options, question_of, resolve_coord_frame, reward_function, samples,
)
from mmreason.rewards.accuracy import correctness
from mmreason.traces import Trace, parse

LABELS = ("correct", "redundant", "erroneous")


@dataclass(frozen=True)
class StepScore:
    """One visual action: its char span ``[start, end)`` in the completion, what it was, and its scores."""

    index: int
    kind: str  # "zoom" (tool call) | "box" (inline box)
    start: int
    end: int
    box: tuple | None  # original pixels; None when the action had no usable box
    label: str  # correct | redundant | erroneous
    iou: float  # best IoU with any rationale region
    region: int | None  # the rationale region it visited (correct steps only)
    score: float  # s_k
    shaped: float  # s_k plus its share of the outcome


@dataclass(frozen=True)
class ViRLParams:
    tau: float = 0.5
    dup_tau: float = 0.7
    correct_reward: float = 1.0
    redundant_reward: float = -0.2
    error_reward: float = -0.5
    outcome_weight: float = 0.5
    gamma: float = 0.9
    inline_boxes: bool = True

    def __post_init__(self):
        if not (0 < self.tau <= 1 and 0 < self.dup_tau <= 1 and 0 <= self.gamma <= 1):
            raise RecipeError("virl: tau and dup_tau must be in (0, 1], gamma in [0, 1]")


def _actions(trace: Trace, inline: bool) -> list[tuple[str, int, int, tuple | None]]:
    """(kind, start, end, box as written) for each visual action, in order."""
    calls = [c for c in trace.tool_calls]
    out = []
    for c in calls:
        inside = [m for m in trace.boxes if c.start <= m.start and m.end <= c.end]
        box = floats(c.arguments.get("bbox_2d"), 4) if c.error is None else None
        if box is None and inside:
            box = inside[0].box
        out.append(("zoom", c.start, c.end, box))
    if inline:
        for m in trace.boxes:
            if not any(c.start <= m.start and m.end <= c.end for c in calls):
                out.append(("box", m.start, m.end, m.box))
    return sorted(out, key=lambda a: a[1])


def score_steps(trace: Trace, regions: Sequence[tuple], to_pixels, params: ViRLParams,
                correct: float | None) -> list[StepScore]:
    """Classify and score every visual action of a parsed trace (rule in the module docstring)."""
    actions = _actions(trace, params.inline_boxes)
    visited: set[int] = set()
    previous: list[tuple] = []
    draft = []
    for k, (kind, start, end, raw) in enumerate(actions):
        boxes = [to_pixels(raw, image) if raw is not None else None for _, _, image in regions] or [None]
        ious = [geometry.iou(b, r[0]) if b is not None else 0.0 for b, r in zip(boxes, regions)]
        best_iou = max(ious, default=0.0)
        candidates = [j for j, v in enumerate(ious) if v >= params.tau and j not in visited]
        own = boxes[0]
        if candidates:
            j = max(candidates, key=lambda j: ious[j])
            visited.add(j)
            label, region = "correct", j
        elif any(v >= params.tau for v in ious) or (
                own is not None and any(geometry.iou(own, p) >= params.dup_tau for p in previous)):
            label, region = "redundant", None
        else:
            label, region = "erroneous", None
        if own is not None:
            previous.append(own)
        draft.append((k, kind, start, end, own, label, best_iou, region))
    reward = {"correct": params.correct_reward, "redundant": params.redundant_reward,
              "erroneous": params.error_reward}
    n = len(draft)
    out = []
    for k, kind, start, end, own, label, best_iou, region in draft:
        s = reward[label]
        share = params.outcome_weight * params.gamma ** (n - 1 - k) * correct if correct is not None else 0.0
        shaped = s + share
        out.append(StepScore(k, kind, start, end, own, label, best_iou, region, s, shaped))
    return out


def _mapper(row: Mapping, frame_name: str, family: str | None, min_pixels, max_pixels):
    frames: dict[int, object] = {}

    def to_pixels(box, image):
        if image not in frames:
            frames[image] = image_frame(row, image, frame_name, family=family, min_pixels=min_pixels,
                                        max_pixels=max_pixels)
        return box_to_pixels(box, frame_name, frames[image])
    return to_pixels


def virl_step_scores(completion: object, rationale_regions: Sequence, *, correct: float | bool | None = None,
                     coord_frame: str | None = None, family: str | None = None,
                     image_frames: Sequence | None = None, image_sizes: Sequence | None = None,
                     min_pixels: int | None = None, max_pixels: int | None = None,
                     **params) -> list[StepScore]:
    """Per-step scores of one completion (string, message list or parsed ``Trace``) for token-level credit.

    ``rationale_regions`` is the schema column's value for this row; ``correct`` (the answer's accuracy)
    switches on the outcome shaping. Never raises on model output.

    >>> call = '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 10, 10]}}</tool_call>'
    >>> text = call + ' then [50, 50, 60, 60]'
    >>> steps = virl_step_scores(text, [{"box": [0, 0, 10, 10]}], correct=1)
    >>> [(s.kind, s.label, s.score, round(s.shaped, 2)) for s in steps]
    [('zoom', 'correct', 1.0, 1.45), ('box', 'erroneous', -0.5, 0.0)]
    """
    p = ViRLParams(**params)
    frame_name = resolve_coord_frame(coord_frame, family, "pixel")
    row = {"rationale_regions": rationale_regions, "image_frames": image_frames, "image_sizes": image_sizes}
    trace = completion if isinstance(completion, Trace) else parse(completion_text(completion))
    regions = gt_boxes(row, "rationale_regions", reward="virl")
    acc = None if correct is None else float(correct)
    return score_steps(trace, regions, _mapper(row, frame_name, family, min_pixels, max_pixels), p, acc)


@reward_function
def virl(completions, *, acc_weight: float = 1.0, step_weight: float = 0.5, coverage_weight: float = 0.5,
         no_action_reward: float = -0.5, judge: object = None, template: str = "equivalence",
         coord_frame: str | None = None, family: str | None = None, min_pixels: int | None = None,
         max_pixels: int | None = None, tau: float = 0.5, dup_tau: float = 0.7, correct_reward: float = 1.0,
         redundant_reward: float = -0.2, error_reward: float = -0.5, inline_boxes: bool = True, **columns):
    """ViRL: accuracy + mean step score of visual actions vs rationale regions + region coverage.

    Rule in the module docstring; logs correct/redundant/erroneous shares and coverage.

    >>> c = '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 10, 10]}}</tool_call><answer>cat'
    >>> regions = [{"box": [0, 0, 10, 10]}, {"box": [20, 20, 30, 30]}]
    >>> virl([c], answer=["cat"], rationale_regions=[regions])  # 1 + 0.5 · 1 (correct step) + 0.5 · 1/2
    [1.75]
    """
    params = ViRLParams(tau=tau, dup_tau=dup_tau, correct_reward=correct_reward,
                        redundant_reward=redundant_reward, error_reward=error_reward,
                        inline_boxes=inline_boxes)
    frame_name = resolve_coord_frame(coord_frame, family, "pixel")
    metrics = Metrics("virl")
    batch = samples(completions, columns)
    rows, trs = [s.row for s in batch], [s.trace for s in batch]
    gts = [answer_of(r) for r in rows]
    accs = correctness([t.answer for t in trs], gts, [question_of(r) for r in rows], judge_config=judge,
                       template=template, metrics=metrics)
    out: list[float | None] = []
    for trace, row, acc in zip(trs, rows, accs):
        regions = gt_boxes(row, "rationale_regions", reward="virl")
        if acc is None and not regions:
            out.append(None)
            continue
        total = acc_weight * (acc or 0.0)
        if regions:
            steps = score_steps(trace, regions, _mapper(row, frame_name, family, min_pixels, max_pixels),
                                params, None)
            for label in LABELS:
                metrics.add(label, sum(s.label == label for s in steps) / len(steps) if steps else None)
            coverage = len({s.region for s in steps if s.region is not None}) / len(regions)
            metrics.add("coverage", coverage)
            metrics.add("steps", len(steps))
            step_term = sum(s.score for s in steps) / len(steps) if steps else no_action_reward
            total += step_weight * step_term + coverage_weight * coverage
        out.append(total)
    metrics.emit(columns.get("log_metric"))
    return out


# `virl`'s options (with their defaults) and those of them that steer the step scores (the judge and the
# term weights do not): read off the signatures, so a new option reaches the step reward by itself.
VIRL_OPTIONS = keyword_options(virl)
STEP_OPTIONS = frozenset(VIRL_OPTIONS) & (frozenset(keyword_options(virl_step_scores))
                                          | {f.name for f in fields(ViRLParams)})


def virl_steps(completion: object, row: Mapping, **options) -> StepSpans:
    """ViRL's step reward: each visual action's char span and its shaped score, the outcome share included
    when the row has an ``answer`` (graded as `virl` grades it). ``options`` are `virl`'s, as a recipe binds
    them; ``completion`` is a string, a message list or its parsed ``Trace``. No rationale regions: no steps.

    >>> call = '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [0, 0, 10, 10]}}</tool_call>'
    >>> virl_steps(call + "<answer>cat", {"answer": "cat", "rationale_regions": [{"box": [0, 0, 10, 10]}]})
    [(0, 81, 1.5)]
    """
    regions = row.get("rationale_regions") or []
    if not regions:
        return []
    trace = completion if isinstance(completion, Trace) else parse(completion_text(completion))
    options = {**VIRL_OPTIONS, **options}
    correct = None
    answer = row.get("answer")
    if answer is not None:  # the same grader as the sequence reward (a judge's verdicts are cached)
        correct = correctness([trace.answer], [str(answer)], [question_of(row)],
                              judge_config=options["judge"], template=options["template"])[0]
    steps = virl_step_scores(trace, regions, correct=correct, image_frames=row.get("image_frames"),
                             **{k: options[k] for k in STEP_OPTIONS})
    return [(s.start, s.end, s.shaped) for s in steps]
