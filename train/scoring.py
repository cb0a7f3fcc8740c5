"""Rewards for the GRPO loop: the recipe's reward terms, their weighted sum, and step rewards as token spans.

Each recipe reward is bound once (`bind_reward`, options checked) and called on the whole batch with the
dataset columns by name, TRL-style. ``None`` means "not applicable": it is left out of that completion's
weighted sum (TRL's nansum) and out of the component's logged mean. ``rewards.route_by_source`` limits
rows of a source to the rewards it names; the others are not even called on those rows.

Step rewards (ViRL's correct/redundant/erroneous actions, Video-CoM's manipulations) come from
`STEP_SCORERS`: per completion, a list of ``(char_start, char_end, score)`` in the completion text,
which `char_span_to_tokens` maps onto the completion's tokens for `mmreason.rl.token_advantages`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from mmreason.config import Recipe
from mmreason.errors import RecipeError


@dataclass(frozen=True)
class RewardTerm:
    name: str  # the key it is logged under: `rewards/<name>`
    spec: str  # the recipe's `name` (what route_by_source refers to)
    fn: Callable[..., list]
    weight: float
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RewardSet:
    terms: tuple[RewardTerm, ...]
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def applies(self, term: RewardTerm, row: Mapping[str, Any]) -> bool:
        source = row.get("source")
        return source not in self.routes or term.spec in self.routes[source]


def build_rewards(recipe: Recipe) -> RewardSet:
    """Bind every reward of ``rewards.funcs`` (a bad option fails here, naming the reward)."""
    from mmreason.rewards import bind_reward

    terms, seen = [], defaultdict(int)
    for i, spec in enumerate(recipe.rewards.funcs):
        try:
            fn = bind_reward(spec.name, **spec.kwargs)
        except RecipeError as exc:
            raise RecipeError(f"rewards.funcs.{i}: {exc}") from None
        base = getattr(fn, "__name__", spec.name).rsplit(":", 1)[-1]
        seen[base] += 1
        name = base if seen[base] == 1 else f"{base}_{seen[base]}"  # the same reward twice with other options
        terms.append(RewardTerm(name, spec.name, fn, spec.weight, dict(spec.kwargs)))
    return RewardSet(tuple(terms), dict(recipe.rewards.route_by_source))


@dataclass(frozen=True)
class Scores:
    total: list[float]  # weighted sum per completion
    components: dict[str, list[float | None]]  # per reward, None where it does not apply
    metrics: dict[str, float]  # sub-scores the rewards reported through `log_metric`


def columns_of(rows: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Column lists from rows (every key any row has; missing values are None)."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    return {k: [row.get(k) for row in rows] for k in keys}


def score(rewards: RewardSet, completions: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> Scores:
    """Call every reward on the rows it applies to; weighted sum with None left out (all None -> 0)."""
    n = len(completions)
    if len(rows) != n:
        raise ValueError(f"{n} completions for {len(rows)} rows")
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)

    def log_metric(name: str, value: float) -> None:
        if isinstance(value, (int, float)) and math.isfinite(value):
            sums[name] += float(value)
            counts[name] += 1

    components: dict[str, list[float | None]] = {}
    total = [0.0] * n
    for term in rewards.terms:
        idx = [i for i in range(n) if rewards.applies(term, rows[i])]
        values: list[float | None] = [None] * n
        if idx:
            cols = columns_of([rows[i] for i in idx])
            got = term.fn([completions[i] for i in idx], **cols, log_metric=log_metric)
            for i, v in zip(idx, got):
                values[i] = v
        components[term.name] = values
        for i, v in enumerate(values):
            if v is not None:
                total[i] += term.weight * v
    metrics = {name: sums[name] / counts[name] for name in sums}
    return Scores(total, components, metrics)


def component_means(scores: Scores) -> dict[str, float]:
    """``rewards/<name>`` (mean where applicable) and ``rewards/<name>/applicable`` (share of completions)."""
    out: dict[str, float] = {}
    for name, values in scores.components.items():
        got = [v for v in values if v is not None]
        if got:
            out[f"rewards/{name}"] = sum(got) / len(got)
        out[f"rewards/{name}/applicable"] = len(got) / max(len(values), 1)
    for name, value in scores.metrics.items():
        out[f"rewards/{name}"] = value
    return out


# ------------------------------------------------------------------------------------ step rewards
Spans = list[tuple[int, int, float]]  # (char start, char end, score) per step


def virl_steps(completion: str, row: Mapping[str, Any], term: RewardTerm) -> Spans:
    """ViRL: each visual action's char span and its shaped score (outcome share included when known)."""
    from mmreason.rewards._common import question_of
    from mmreason.rewards.accuracy import correctness
    from mmreason.rewards.virl import virl_step_scores
    from mmreason.traces import parse

    options = {k: v for k, v in term.kwargs.items()
               if k in ("coord_frame", "family", "min_pixels", "max_pixels", "tau", "dup_tau",
                        "correct_reward", "redundant_reward", "error_reward", "inline_boxes")}
    regions = row.get("rationale_regions") or []
    if not regions:
        return []
    trace = parse(completion)
    answer = row.get("answer")
    correct = None
    if answer is not None:  # the same grader as the sequence reward (a judge's verdicts are cached)
        correct = correctness([trace.answer], [str(answer)], [question_of(row)],
                              judge_config=term.kwargs.get("judge"),
                              template=term.kwargs.get("template", "equivalence"))[0]
    steps = virl_step_scores(trace, regions, correct=correct, image_frames=row.get("image_frames"), **options)
    return [(s.start, s.end, s.shaped) for s in steps]


def video_com_steps(completion: str, row: Mapping[str, Any], term: RewardTerm) -> Spans:
    """Video-CoM: each manipulation scores 1 if the release's rule counts it correct, else 0 (a zoom is judged
    on the frame the last FIND_FRAME before it picked)."""
    from mmreason.rewards.video_com import manipulation_score, reasoning_gts
    from mmreason.traces import Trace, parse

    trace = parse(completion)
    gts = reasoning_gts(row)
    zoom_iou = float(term.kwargs.get("zoom_iou", 0.35))
    out, last_frame = [], None
    for m in trace.manipulations:
        context = (m,) if m.kind != "SPATIAL_ZOOM" or last_frame is None else (last_frame, m)
        _, counts = manipulation_score(Trace(completion, manipulations=context), gts, zoom_iou)
        key = {"FIND_SEGMENT": "segments", "FIND_FRAME": "frames", "SPATIAL_ZOOM": "zooms"}[m.kind]
        ok, total = counts.get(key, (0, 0))
        out.append((m.start, m.end, ok / total if total else 0.0))
        if m.kind == "FIND_FRAME":
            last_frame = m
    return out


# name of the reward in `REWARDS` -> its step scorer
STEP_SCORERS: dict[str, Callable[[str, Mapping[str, Any], RewardTerm], Spans]] = {
    "virl": virl_steps,
    "video_com": video_com_steps,
}


def step_terms(rewards: RewardSet) -> list[RewardTerm]:
    """The recipe rewards that have a step scorer."""
    return [t for t in rewards.terms if t.spec in STEP_SCORERS]


def char_span_to_tokens(prefix_len: Callable[[int], int], n_tokens: int, start: int,
                        end: int) -> tuple[int, int]:
    """Tokens ``[lo, hi)`` covering characters ``[start, end)``: the first token whose text reaches past
    `start` to the first token whose text reaches `end`. ``prefix_len(k)`` is the length of the decoded
    text of the first k tokens (non-decreasing), so a binary search needs O(log n) decodes.

    >>> pieces = ["ab", "cd", "ef"]
    >>> char_span_to_tokens(lambda k: len("".join(pieces[:k])), 3, 2, 5)
    (1, 3)
    """
    def first_reaching(c: int) -> int:
        lo, hi = 0, n_tokens
        while lo < hi:
            mid = (lo + hi) // 2
            if prefix_len(mid + 1) > c:
                hi = mid
            else:
                lo = mid + 1
        return lo

    lo = first_reaching(start)
    hi = first_reaching(max(end - 1, start)) + 1
    return min(lo, n_tokens), min(max(hi, lo), n_tokens)
