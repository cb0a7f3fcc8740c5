"""Rewards for the GRPO loop: the recipe's reward terms called on a batch, their weighted sum, what to log.

The terms are bound once by `mmreason.rewards.build_rewards` (options checked) and called on the whole
batch with the dataset columns by name, TRL-style, plus the ``traces`` column: each completion parsed
once by the step, so no reward parses it again. ``None`` means "not applicable": it is left out of that
completion's weighted sum (TRL's nansum) and out of the component's logged mean.
``rewards.route_by_source`` limits rows of a source to the rewards it names; the others are not even
called on those rows.
A row's ``tool_penalty`` (what its invalid tool calls cost, from the rollout: `grpo_step.reward_rows`) is
added to its total and logged as the ``tool_penalty`` component, in every recipe with a non-zero
``tools.invalid_penalty`` (verl's DeepEyes recipe: -0.05 per invalid zoom, added to the outcome reward).

Step rewards (ViRL's correct/redundant/erroneous actions, Video-CoM's manipulations) are
`mmreason.rewards.STEP_REWARDS`; `step_terms` picks the recipe's terms that have one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mmreason.rewards import STEP_REWARDS, RewardSet, RewardTerm
from mmreason.traces import Trace


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


def score(rewards: RewardSet, completions: Sequence[Any], rows: Sequence[Mapping[str, Any]],
          traces: Sequence[Trace] | None = None) -> Scores:
    """Call every reward on the rows it applies to; weighted sum with None left out (all None -> 0).

    ``traces`` (each completion parsed, aligned with ``completions``) reach every reward as the ``traces``
    column; without them each reward parses what it reads.
    """
    n = len(completions)
    if len(rows) != n or (traces is not None and len(traces) != n):
        raise ValueError(f"{n} completions for {len(rows)} rows"
                         + ("" if traces is None else f" and {len(traces)} traces"))
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
            if traces is not None:
                cols["traces"] = [traces[i] for i in idx]
            got = term.fn([completions[i] for i in idx], **cols, log_metric=log_metric)
            for i, v in zip(idx, got):
                values[i] = v
        components[term.name] = values
        for i, v in enumerate(values):
            if v is not None:
                total[i] += term.weight * v
    penalties = [_penalty(row.get("tool_penalty")) for row in rows]
    if any(penalties):
        components["tool_penalty"] = penalties
        total = [t + p for t, p in zip(total, penalties)]
    metrics = {name: sums[name] / counts[name] for name in sums}
    return Scores(total, components, metrics)


def _penalty(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0


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


def step_terms(rewards: RewardSet) -> list[RewardTerm]:
    """The recipe rewards that have a step reward (`mmreason.rewards.STEP_REWARDS`)."""
    return [t for t in rewards.terms if t.spec in STEP_REWARDS]
