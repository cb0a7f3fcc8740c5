"""Validation during GRPO: the recipe's own reward terms on ``data.eval``, greedy, one completion per row.

Settings follow TRL's names (`mmreason.config.GRPOConfig`): ``grpo.eval_strategy`` ("steps", or "no"),
``grpo.eval_steps`` (None: ``grpo.save_steps``, so every checkpoint has a score; the last step is always
evaluated, as it is always saved), ``grpo.eval_on_start`` (step 0, before any update) and
``grpo.max_eval_samples`` (the first rows of ``data.eval``, to bound the cost). Each process rolls out its
share of the rows with the policy's tools, exactly as training does, but with greedy decoding; the sums are
reduced over processes, so the means are over every row. Logged into the step's record (metrics.jsonl and
tensorboard): ``eval/reward`` (the weighted total), ``eval/<term>`` per reward term (mean where it applies),
``eval/<sub-score>`` where a reward reports some, ``eval/completion_length``,
``eval/tool_calls_per_trajectory``, ``eval/samples`` and ``time/eval``.

>>> from types import SimpleNamespace as G
>>> [s for s in range(1, 6) if is_eval_step(s, G(eval_strategy="steps", eval_steps=2, save_steps=50, max_steps=5))]
[2, 4, 5]
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

from mmreason.config import Recipe
from mmreason.train.grpo_step import StepContext, generate, reward_rows
from mmreason.train.scoring import score
from mmreason.traces import parse


def enabled(recipe: Recipe) -> bool:
    return bool(recipe.data.eval) and recipe.grpo.eval_strategy != "no"


def is_eval_step(step: int, g: Any) -> bool:
    """True on the steps after which `evaluate` runs (module docstring)."""
    every = g.eval_steps or g.save_steps
    return g.eval_strategy == "steps" and (step % every == 0 or step == g.max_steps)


def eval_rows(recipe: Recipe, accelerator: Any = None) -> list[dict]:
    """The first ``grpo.max_eval_samples`` rows of ``data.eval`` (none when validation is off), read and
    checked before training starts, so a bad eval set fails before any step is spent."""
    from mmreason.train.data import load_data
    from mmreason.train.tool_sets import check_rows

    if not enabled(recipe):
        return []
    rows = list(load_data(recipe, split="eval", accelerator=accelerator).rows)
    rows = rows[:recipe.grpo.max_eval_samples] if recipe.grpo.max_eval_samples else rows
    check_rows(recipe.tools, rows, split="eval")
    return rows


def _sums(ctx: StepContext, rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per metric name, (sum, count) over this process's rows."""
    if not rows:
        return {}
    trajs = generate(ctx, rows, group_size=1, do_sample=False)
    completions = [t.completion for t in trajs]
    scores = score(ctx.rewards, completions, reward_rows(trajs, rows), [parse(c) for c in completions])
    n = float(len(trajs))
    out = {"reward": (float(sum(scores.total)), n),
           "completion_length": (float(sum(sum(t.loss_mask) for t in trajs)), n),
           "tool_calls_per_trajectory": (float(sum(t.num_tool_calls for t in trajs)), n),
           "samples": (n, 1.0)}
    for name, values in scores.components.items():
        got = [v for v in values if v is not None]
        if got:
            out[name] = (float(sum(got)), float(len(got)))
    for name, value in scores.metrics.items():  # sub-scores are means already: weigh them by the rows
        out.setdefault(name, (value * n, n))
    return out


def evaluate(ctx: StepContext, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``eval/*`` metrics of the current policy on `rows` (every process calls this with the same rows)."""
    import torch
    from accelerate.utils import gather_object

    acc = ctx.accelerator
    t0 = time.perf_counter()
    local = _sums(ctx, list(rows)[acc.process_index::acc.num_processes])
    keys = sorted(local) if acc.num_processes == 1 else sorted(
        {k for ks in gather_object([sorted(local)]) for k in ks})
    values = torch.tensor([local.get(k, (0.0, 0.0)) for k in keys], dtype=torch.float64, device=acc.device)
    if acc.num_processes > 1:
        values = acc.reduce(values, "sum")
    out = {}
    for key, (total, count) in zip(keys, values.reshape(-1, 2).tolist()):
        if count > 0:
            out[f"eval/{key}"] = total if key == "samples" else total / count
    out["time/eval"] = time.perf_counter() - t0
    return out
