"""One GRPO step: roll out G trajectories per prompt, score them, turn rewards into (token-level)
advantages, and take ``grpo.num_iterations`` optimizer steps (one by default) over `grad_accum`
micro-batches. The math is `mmreason.rl`'s.

Normalisers are global, so the gradient equals one big batch whatever the micro-batching or the number of
processes: token-mean divides by the generated tokens of the whole step (summed over processes), seq-mean
and Dr.GRPO by the number of completions of the whole step. DDP averages gradients over processes, so each
process's loss is scaled by the process count. Zero-variance groups, when filtered, leave the update and
every normaliser (their advantage is 0; what remains is their KL term and their share of the mean).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from mmreason import rl
from mmreason.config import Recipe
from mmreason.modalities.collate import frame_columns
from mmreason.train.distributed import gathered_for_rollout
from mmreason.train.rollout_backend import push_weights
from mmreason.rewards import STEP_REWARDS, RewardSet
from mmreason.train.scoring import component_means, score, step_terms
from mmreason.traces import Trace, parse


@dataclass(frozen=True)
class StepContext:
    """Everything a step touches; built once by `mmreason.train.grpo`."""

    recipe: Recipe
    accelerator: Any
    model: Any  # prepared (DDP/FSDP/DeepSpeed-wrapped) policy
    processor: Any
    rewards: RewardSet
    optimizer: Any
    scheduler: Any
    rollout_config: Any
    media_options: Mapping[str, Any]
    tool_settings: Any = None
    reference: Any = None  # a frozen model when beta > 0 and the policy is not LoRA
    backend: Any = None  # None: HF generate; else a colocated vLLM engine (`mmreason.train.rollout_backend`)


# --------------------------------------------------------------------------------------- rollouts
def generate(ctx: StepContext, rows: Sequence[Mapping[str, Any]], *, group_size: int | None = None,
             **config: Any) -> list:
    """`group_size` (default ``grpo.num_generations``) trajectories per row, grouped contiguously, from the
    current policy; ``config`` overrides the rollout settings (``do_sample=False`` for validation). Rows
    whose tool sets differ (``tools.column``, `mmreason.train.tool_sets`) roll out as separate batches."""
    from dataclasses import replace

    from mmreason.rollout import rollout
    from mmreason.train.tool_sets import split_by_tools

    size = ctx.recipe.grpo.num_generations if group_size is None else group_size
    policy = ctx.accelerator.unwrap_model(ctx.model)
    policy.eval()  # no dropout while sampling
    out: list = [None] * (len(rows) * size)
    try:
        # FSDP: processes sample unequal numbers of forwards, so the rollout runs on gathered parameters
        with gathered_for_rollout(policy, ctx.accelerator):
            for names, picked in split_by_tools(ctx.recipe.tools, rows):
                # a row without tools ends at its first call, as a sample without an environment does
                settings = replace(ctx.rollout_config, tools=names, **config,
                                   **({} if names else {"max_tool_calls": 0}))
                trajs = rollout(policy, ctx.processor, [rows[i] for i in picked], ctx.recipe.model.family,
                                config=settings, group_size=size, media_options=ctx.media_options,
                                tool_settings=ctx.tool_settings, backend=ctx.backend)
                for t in trajs:
                    row = picked[t.group]
                    at = row * size + t.index % size
                    out[at] = replace(t, index=at, group=row)
        return out
    finally:
        policy.train()


def reward_rows(trajs: Sequence[Any], rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The dataset row of each trajectory plus what rewards read from the rollout (TRL's names), and
    ``tool_penalty``: the sum of the penalties its invalid tool calls carried (``tools.invalid_penalty``,
    verl's -0.05 per invalid zoom), which `scoring.score` adds to the reward."""
    frames = frame_columns([t.frames for t in trajs])
    return [{**rows[t.group], "image_frames": f, "completion_ids": list(t.completion_ids),
             "num_tool_calls": t.num_tool_calls, "stop_reason": t.stop_reason,
             "tool_penalty": sum(p for o in t.observations
                                 if isinstance(p := getattr(o, "penalty", 0.0), (int, float)))}
            for t, f in zip(trajs, frames)]


def step_segments(rewards: RewardSet, trajs: Sequence[Any], rows: Sequence[Mapping[str, Any]],
                  traces: Sequence[Trace] | None = None) -> list[list]:
    """Per trajectory, each step reward (weighted by its reward's weight) as a token segment; ``traces``
    are the trajectories' parsed completions (parsed here when not given)."""
    from mmreason.rollout import segments_from_char_spans

    terms = step_terms(rewards)
    out = []
    for k, (traj, row) in enumerate(zip(trajs, rows)):
        applicable = [term for term in terms if rewards.applies(term, row)]
        trace = (traces[k] if traces is not None else parse(traj.completion)) if applicable else None
        segs = []
        for term in applicable:
            try:
                spans = STEP_REWARDS[term.spec](trace, row, **term.kwargs)
            except Exception:  # a step reward never stops training on what a policy wrote
                spans = []
            segs += segments_from_char_spans(traj, [(s, e, term.weight * r) for s, e, r in spans])
        out.append(segs)
    return out


# ------------------------------------------------------------------------------------------ update
def completion_logps(model: Any, batch: Mapping[str, Any], temperature: float, *, entropy: bool = False):
    """Log-probs ``[B, T]`` of the completion tokens of a `collate_trajectories` batch (and their entropy).

    Logits are computed only from the shortest prompt's end on (`logits_to_keep`), then each completion
    token's logits are gathered from the position before it; temperature as at sampling time.
    """
    import torch

    from mmreason.rollout import model_inputs

    device = next(p for p in model.parameters()).device
    inputs = {k: v.to(device) if hasattr(v, "to") else v for k, v in model_inputs(batch).items()}
    length = inputs["input_ids"].shape[1]
    keep = length - int(batch["prompt_lengths"].min()) + 1
    logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits / temperature
    # a model whose forward ignores logits_to_keep (the Omni thinker) returns every position
    offset = length - logits.shape[1]
    pos = (batch["completion_index"].to(device) - 1 - offset).clamp(min=0)
    picked = torch.gather(logits, 1, pos.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    logp = rl.token_log_probs(picked, batch["completion_ids"].to(device))
    ent = None
    if entropy:
        with torch.no_grad():
            ent = rl.entropy_from_logits(picked.detach())
    return logp, ent


def _reference_logps(ctx: StepContext, batch: Mapping[str, Any], temperature: float):
    import torch

    with torch.no_grad():
        if ctx.reference is not None:
            return completion_logps(ctx.reference, batch, temperature)[0]
        policy = ctx.accelerator.unwrap_model(ctx.model)
        with policy.disable_adapter():  # LoRA: the base model is the reference, no second copy
            return completion_logps(policy, batch, temperature)[0]


def _chunks(items: list[int], n: int) -> list[list[int]]:
    size, rest = divmod(len(items), n)
    out, at = [], 0
    for k in range(n):
        step = size + (1 if k < rest else 0)
        out.append(items[at:at + step])
        at += step
    return out


@dataclass
class MicroBatch:
    """One micro-batch of an update, collated once and reused by every pass over the rollout batch."""

    chunk: list[int]  # trajectory indices; empty on a process with fewer kept trajectories (a dummy pass)
    batch: Mapping[str, Any]
    advantages: Any  # [B, T]
    mask: Any  # [B, T] float, 1 on generated tokens
    old_logp: Any = None  # the sampling policy's log-probs, from the first pass (before any update)
    ref_logp: Any = None  # the reference's, computed once (it never changes)


def micro_batches(ctx: StepContext, trajs: Sequence[Any], outcome: Any, steps: list[list] | None,
                  kept: list[int]) -> list[MicroBatch]:
    from mmreason.rollout import collate_trajectories

    g = ctx.recipe.grpo
    pad = ctx.processor.tokenizer.pad_token_id
    out = []
    for chunk in _chunks(kept, g.grad_accum):
        sub = [trajs[i] for i in chunk] or [trajs[0]]
        batch = collate_trajectories(sub, pad)
        width = batch["completion_ids"].shape[1]
        adv = rl.token_advantages(outcome[chunk] if chunk else outcome[:1], width,
                                  [steps[i] for i in chunk] if steps is not None and chunk else None,
                                  step_weight=g.step_reward_weight)
        out.append(MicroBatch(chunk, batch, adv, batch["completion_loss_mask"].float()))
    return out


_PASS_KEYS = ("loss", "clip_fraction", "clip_low", "clip_high", "kl", "ratio", "entropy")


def optimizer_step(ctx: StepContext, micro: Sequence[MicroBatch], tokens: float,
                   completions: float) -> tuple[dict[str, float], float, Any]:
    """One optimizer step over every micro-batch: (token-weighted sums of `_PASS_KEYS` but the loss, which
    is summed as is; the token count; the gradient norm or None)."""
    acc, g = ctx.accelerator, ctx.recipe.grpo
    world = acc.num_processes
    sums = dict.fromkeys(_PASS_KEYS, 0.0)
    weight, grad_norm = 0.0, None
    for mb in micro:
        dummy = not mb.chunk  # every process runs the same number of backward passes (DDP syncs on them)
        with acc.accumulate(ctx.model):
            logp, ent = completion_logps(ctx.model, mb.batch, g.temperature, entropy=True)
            if mb.old_logp is None:  # first pass: the weights are still those that sampled the batch
                mb.old_logp = logp.detach()
            if g.beta and mb.ref_logp is None:
                mb.ref_logp = _reference_logps(ctx, mb.batch, g.temperature)
            adv, mask = mb.advantages.to(logp.device), mb.mask.to(logp.device)
            out = rl.policy_loss(logp, mb.old_logp, adv, mask, epsilon=g.epsilon, epsilon_high=g.epsilon_high,
                                 beta=g.beta, ref_logp=mb.ref_logp if g.beta else None, agg=g.loss_agg,
                                 max_len=g.max_completion_length, num_tokens=max(tokens, 1.0))
            share = 1.0 if g.loss_agg == "token_mean" else len(mb.chunk) / max(completions, 1.0)
            # x world: DDP averages over processes; x grad_accum: accelerate divides by it in backward
            loss = out.loss * share * world * g.grad_accum * (0.0 if dummy else 1.0)
            acc.backward(loss)
            if acc.sync_gradients and g.max_grad_norm is not None:
                grad_norm = acc.clip_grad_norm_(ctx.model.parameters(), g.max_grad_norm)
            ctx.optimizer.step()
            ctx.optimizer.zero_grad()
        if not dummy:
            n = float(mask.sum())
            # this process's share x world: the mean over processes is the loss
            sums["loss"] += float(loss.detach()) / g.grad_accum
            for key, value in (("clip_fraction", out.clip_fraction), ("clip_low", out.clip_low),
                               ("clip_high", out.clip_high), ("kl", out.kl), ("ratio", out.ratio_mean)):
                sums[key] += value * n
            sums["entropy"] += float((ent * mask).sum())
            weight += n
    ctx.scheduler.step()
    return sums, weight, grad_norm


def update(ctx: StepContext, trajs: Sequence[Any], outcome: Any, steps: list[list] | None,
           keep: Sequence[bool]) -> dict[str, float]:
    """``grpo.num_iterations`` optimizer steps over the kept trajectories, each in `grad_accum` micro-batches
    (module docstring). The first pass's log-probs are the old ones of every pass: with one pass the ratio is
    1 (the plain policy gradient); later passes are the clipped PPO-style updates. Metrics are means over
    the passes; ``clip_ratio/*`` are TRL's names."""
    import torch

    acc, g = ctx.accelerator, ctx.recipe.grpo
    kept = [i for i, k in enumerate(keep) if k]
    local = torch.tensor([float(sum(sum(trajs[i].loss_mask) for i in kept)), float(len(kept))],
                         device=acc.device)
    tokens, completions = acc.reduce(local, "sum").tolist()
    micro = micro_batches(ctx, trajs, outcome, steps, kept)
    totals = dict.fromkeys(_PASS_KEYS, 0.0)
    weight, norms = 0.0, []
    for _ in range(g.num_iterations):
        sums, n, grad_norm = optimizer_step(ctx, micro, tokens, completions)
        for key in _PASS_KEYS:
            totals[key] += sums[key]
        weight += n
        if grad_norm is not None:
            norms.append(float(grad_norm))
    push_weights(ctx.backend, acc.unwrap_model(ctx.model))  # the next rollout samples the updated policy
    nonuniform = 0.0
    for mb in micro:
        if mb.chunk:
            adv, mask = mb.advantages, mb.mask
            low = adv.masked_fill(mask == 0, float("inf")).amin(1)
            high = adv.masked_fill(mask == 0, -float("inf")).amax(1)
            nonuniform += float((((high - low) > 1e-6) & (mask.sum(1) > 0)).sum())  # step credit moved some
    mean = {k: totals[k] / max(weight, 1.0) for k in _PASS_KEYS if k != "loss"}
    metrics = {"loss": totals["loss"] / g.num_iterations, "clip_fraction": mean["clip_fraction"],
               "clip_ratio/low_mean": mean["clip_low"], "clip_ratio/high_mean": mean["clip_high"],
               "clip_ratio/region_mean": mean["clip_low"] + mean["clip_high"],
               "kl": mean["kl"], "ratio": mean["ratio"], "entropy": mean["entropy"],
               "advantages/token_nonuniform_frac": nonuniform / max(len(kept), 1)}
    if norms:
        metrics["grad_norm"] = sum(norms) / len(norms)
    return metrics


# -------------------------------------------------------------------------------------------- step
def rollout_metrics(trajs: Sequence[Any]) -> dict[str, float]:
    n = max(len(trajs), 1)
    out = {
        "completion_length": sum(sum(t.loss_mask) for t in trajs) / n,  # generated tokens
        "sequence_length": sum(len(t.completion_ids) for t in trajs) / n,  # observations included
        "tool_calls_per_trajectory": sum(t.num_tool_calls for t in trajs) / n,
        "images_returned_per_trajectory": sum(t.num_images_returned for t in trajs) / n,
        "turns_per_trajectory": sum(len(t.steps) for t in trajs) / n,
    }
    from mmreason.rollout import STOP_REASONS

    for reason in STOP_REASONS:
        out[f"stop/{reason}"] = sum(t.stop_reason == reason for t in trajs) / n
    return out


def completion_samples(trajs: Sequence[Any], rows: Sequence[Mapping[str, Any]], scores: Any, group_size: int,
                       n: int) -> list[dict]:
    """Up to ``n`` decoded completions with their row id and rewards (total and per term), one per prompt
    before a second of any: groups are contiguous, so the first ``n`` would all answer one prompt.

    >>> from types import SimpleNamespace as T
    >>> trajs = [T(group=i // 2, completion=f"c{i}") for i in range(4)]
    >>> scores = T(total=[0.0, 1.0, 0.5, 0.5], components={"acc": [0.0, 1.0, None, 0.5]})
    >>> [(s["prompt_id"], s["completion"], s["rewards"]) for s in completion_samples(
    ...     trajs, [{"id": "a"}, {"id": "b"}], scores, 2, 3)]
    [('a', 'c0', {'acc': 0.0}), ('b', 'c2', {'acc': None}), ('a', 'c1', {'acc': 1.0})]
    """
    order = sorted(range(len(trajs)), key=lambda i: (i % group_size, i // group_size))
    return [{"prompt_id": rows[trajs[i].group].get("id"), "completion": trajs[i].completion,
             "reward": scores.total[i], "rewards": {k: v[i] for k, v in scores.components.items()}}
            for i in order[:n]]


def grpo_step(ctx: StepContext, rows: Sequence[Mapping[str, Any]], *,
              samples: list | None = None) -> dict[str, float]:
    """Roll out, score, compute advantages, update; returns this process's metrics (see `reduce_metrics`).
    When ``samples`` is a list, up to ``grpo.log_completions`` decoded completions are appended to it
    (`completion_samples`), for the run's completions.jsonl."""
    import torch

    g = ctx.recipe.grpo
    t0 = time.perf_counter()
    trajs = generate(ctx, rows)
    t1 = time.perf_counter()
    scored_rows = reward_rows(trajs, rows)
    completions = [t.completion for t in trajs]
    traces = [parse(c) for c in completions]  # the one parse of each completion: every reward reads these
    scores = score(ctx.rewards, completions, scored_rows, traces)
    if samples is not None:
        samples += completion_samples(trajs, rows, scores, g.num_generations, g.log_completions)
    rewards = torch.tensor(scores.total, dtype=torch.float32)
    outcome = rl.group_advantages(rewards, g.num_generations, estimator=g.advantage, scale=g.scale_rewards)
    flat = rl.zero_variance_groups(rewards, g.num_generations)
    keep = [not (g.filter_zero_variance and bool(f)) for f in flat]
    steps = None
    if g.step_rewards:
        steps = rl.normalize_step_rewards(step_segments(ctx.rewards, trajs, scored_rows, traces),
                                          g.num_generations)
    t2 = time.perf_counter()
    metrics = update(ctx, trajs, outcome, steps, keep)
    t3 = time.perf_counter()
    generated = sum(sum(t.loss_mask) for t in trajs)
    metrics.update({
        "reward": float(rewards.mean()), "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "advantages/mean": float(outcome.mean()),
        "advantages/std": float(outcome.std()) if len(outcome) > 1 else 0.0,
        "advantages/abs_mean": float(outcome.abs().mean()),
        "zero_variance_frac": float(flat.float().mean()),
        "lr": float(ctx.scheduler.get_last_lr()[0]),
        "time/rollout": t1 - t0, "time/score": t2 - t1, "time/update": t3 - t2, "time/step": t3 - t0,
        "throughput/generated_tokens_per_s": generated / max(t1 - t0, 1e-9),
        "throughput/tokens_per_s": sum(len(t.prompt_ids) + len(t.completion_ids) for t in trajs)
        / max(t3 - t0, 1e-9),
    })
    if steps is not None:
        metrics["step_rewards/steps_per_trajectory"] = sum(len(s) for s in steps) / max(len(steps), 1)
    metrics.update(component_means(scores))
    metrics.update(rollout_metrics(trajs))
    return metrics


def reduce_metrics(accelerator: Any, metrics: Mapping[str, float]) -> dict[str, float]:
    """Mean over processes of each metric, over the processes that have it (a reward sub-score may be
    reported by some processes only). Every process holds the same number of completions."""
    import math

    import torch
    from accelerate.utils import gather_object

    if accelerator.num_processes == 1:
        return dict(metrics)
    keys = sorted({k for ks in gather_object([sorted(metrics)]) for k in ks})
    values = torch.tensor([float(metrics.get(k, math.nan)) for k in keys], dtype=torch.float64,
                          device=accelerator.device)
    have = ~torch.isnan(values)
    sums = accelerator.reduce(torch.where(have, values, torch.zeros_like(values)), "sum")
    counts = accelerator.reduce(have.to(torch.float64), "sum")
    return {k: float(s / c) for k, s, c in zip(keys, sums.tolist(), counts.tolist()) if c > 0}
