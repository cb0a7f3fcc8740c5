"""The math of GRPO-style RL as pure tensor functions: advantages, step credit, surrogate loss, KL.

Shapes: `N` completions (= prompts x group size `G`, grouped contiguously: rows g*G ... g*G+G-1 share a
prompt), `T` completion tokens. `mask` is 1 on tokens the policy generated and 0 on padding and on tool
observations (those are context, not actions). Nothing here touches a model, so every function is
unit-tested against values computed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

ADVANTAGE_ESTIMATORS = ("grpo", "dr_grpo", "rloo")
LOSS_AGGREGATIONS = ("token_mean", "seq_mean", "dr_grpo")


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.reshape(-1, group_size).to(torch.float64)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    # A zero-variance group with eps=0 would give 0/0; its advantage is 0 by definition.
    den = torch.as_tensor(den, dtype=num.dtype).expand_as(num)
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(num))


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, estimator: str = "grpo", eps: float = 1e-6,
    scale: str = "group",
) -> torch.Tensor:
    """Outcome advantage of each completion relative to its group.

    - ``grpo``: ``(r - mean_g) / (std_g + eps)`` (std with Bessel's correction, as TRL and verl use);
      ``scale="batch"`` divides by the std of the whole batch instead, ``scale="none"`` not at all.
    - ``dr_grpo``: ``r - mean_g`` (Dr.GRPO drops the std, which biases toward easy/hard prompts).
    - ``rloo``: ``r_i - mean_{j != i} r_j`` = ``G/(G-1) (r_i - mean_g)`` (InfiGUI-R1's estimator).

    >>> [round(a, 4) for a in group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 4, estimator="rloo").tolist()]
    [1.0, -0.3333, -0.3333, -0.3333]
    """
    if estimator not in ADVANTAGE_ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; choose from {ADVANTAGE_ESTIMATORS}")
    g = _grouped(rewards, group_size)
    centred = g - g.mean(dim=1, keepdim=True)
    if estimator == "rloo":
        if group_size < 2:
            raise ValueError("RLOO needs a group size of at least 2")
        adv = centred * group_size / (group_size - 1)
    elif estimator == "dr_grpo" or scale == "none":
        adv = centred
    elif scale == "group":
        std = g.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(g[:, :1])
        adv = _safe_div(centred, std + eps)
    elif scale == "batch":
        adv = _safe_div(centred, g.std() + eps)
    else:
        raise ValueError(f"unknown reward scaling {scale!r}; choose group, batch or none")
    return adv.reshape(-1).to(rewards.dtype if rewards.is_floating_point() else torch.float32)


def zero_variance_groups(rewards: torch.Tensor, group_size: int, *, tol: float = 1e-8) -> torch.Tensor:
    """Boolean per completion: True where every completion of its group got the same reward.

    Such groups carry no GRPO signal (all advantages are 0); filtering them and logging their share is
    what users expect (TRL's ``frac_reward_zero_std``, EasyR1's online filtering).
    """
    g = _grouped(rewards, group_size)
    flat = (g.max(dim=1).values - g.min(dim=1).values) <= tol
    return flat.repeat_interleave(group_size)


@dataclass(frozen=True)
class StepSegment:
    """A step of a trajectory: completion tokens [start, end) and the step's reward."""

    start: int
    end: int
    reward: float


def normalize_step_rewards(
    steps: Sequence[Sequence[StepSegment]], group_size: int, *, eps: float = 1e-6,
) -> list[list[StepSegment]]:
    """Centre and scale step rewards over all steps of a group (process-supervised GRPO).

    Each group's steps are pooled; a step's reward becomes ``(r - mean) / (std + eps)``. Groups with a
    single step, or steps of equal reward, get 0 (no relative signal), which keeps the step term from
    swamping the outcome advantage.
    """
    out: list[list[StepSegment]] = []
    for g0 in range(0, len(steps), group_size):
        group = steps[g0:g0 + group_size]
        values = torch.tensor([s.reward for traj in group for s in traj], dtype=torch.float64)
        if values.numel() > 1:
            mean, std = values.mean(), values.std()
        else:
            mean, std = (values.mean() if values.numel() else torch.tensor(0.0)), torch.tensor(0.0)
        for traj in group:
            norm = []
            for s in traj:
                z = 0.0 if std <= 1e-12 else float((s.reward - mean) / (std + eps))
                norm.append(StepSegment(s.start, s.end, z))
            out.append(norm)
    return out


def token_advantages(
    outcome: torch.Tensor, seq_len: int, steps: Sequence[Sequence[StepSegment]] | None = None, *,
    step_weight: float = 1.0,
) -> torch.Tensor:
    """Token-level advantages ``[N, T]``: the outcome advantage on every token plus, on the tokens of
    each step segment, ``step_weight`` times that step's (normalised) reward.

    This is the credit assignment ViRL and Video-CoM need: a redundant or erroneous zoom lowers the
    advantage of the tokens that issued it without touching the rest of the trajectory.

    >>> token_advantages(torch.tensor([1.0]), 4, [[StepSegment(1, 3, -0.5)]]).tolist()
    [[1.0, 0.5, 0.5, 1.0]]
    """
    adv = outcome.reshape(-1, 1).expand(-1, seq_len).clone().to(torch.float32)
    if steps is None:
        return adv
    if len(steps) != adv.shape[0]:
        raise ValueError(f"{len(steps)} step lists for {adv.shape[0]} completions")
    for i, traj in enumerate(steps):
        for s in traj:
            lo, hi = max(0, s.start), min(seq_len, s.end)
            if hi > lo:
                adv[i, lo:hi] += step_weight * s.reward
    return adv


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(policy || reference): ``exp(r) - r - 1`` with ``r = ref - logp``; >= 0."""
    r = ref_logp - logp
    return torch.exp(r) - r - 1


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str = "token_mean", *,
              max_len: int | None = None, num_tokens: float | None = None) -> torch.Tensor:
    """Reduce per-token values ``[N, T]`` to a scalar.

    - ``token_mean``: sum over all generated tokens / their count (DAPO; long answers weigh more).
      Pass ``num_tokens`` (the count over the whole accumulated batch) so gradient accumulation over
      micro-batches equals one big batch.
    - ``seq_mean``: mean over sequences of each sequence's token mean (original GRPO; known to favour
      short wrong answers and long right ones, the length-collapse users report).
    - ``dr_grpo``: sum / (N * max_len), a constant normaliser (Dr.GRPO).
    """
    mask = mask.to(values.dtype)
    if mode == "token_mean":
        denom = num_tokens if num_tokens is not None else mask.sum().clamp(min=1.0)
        return (values * mask).sum() / denom
    if mode == "seq_mean":
        per_seq = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return per_seq.mean()
    if mode == "dr_grpo":
        length = max_len if max_len is not None else values.shape[1]
        return (values * mask).sum() / (values.shape[0] * length)
    raise ValueError(f"unknown loss aggregation {mode!r}; choose from {LOSS_AGGREGATIONS}")


@dataclass(frozen=True)
class LossOutput:
    """The loss and what to log about it. `clip_fraction`: share of generated tokens whose surrogate term
    clipping changed; `clip_low` / `clip_high` / `clip_region`: TRL's ``clip_ratio/*`` (tokens whose
    gradient the clip removed: ratio below ``1 - eps`` with a negative advantage, above ``1 + eps_high``
    with a positive one, either)."""

    loss: torch.Tensor
    clip_fraction: float
    kl: float
    ratio_mean: float
    clip_low: float = 0.0
    clip_high: float = 0.0

    @property
    def clip_region(self) -> float:
        return self.clip_low + self.clip_high  # the two never hold on one token


def policy_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
    epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.0,
    ref_logp: torch.Tensor | None = None, agg: str = "token_mean", max_len: int | None = None,
    num_tokens: float | None = None,
) -> LossOutput:
    """Clipped surrogate ``-min(rho A, clip(rho, 1-eps, 1+eps_high) A)`` plus ``beta`` * k3 KL.

    `advantages` is ``[N]`` (sequence-level) or ``[N, T]`` (token-level). ``epsilon_high`` > ``epsilon``
    is DAPO's clip-higher. With one update per generation ``old_logp == logp.detach()`` and the ratio is 1,
    so the loss gradient equals the plain policy gradient (GRIT's and DeepEyes' setting); with several
    (``grpo.num_iterations``) ``old_logp`` is the sampling policy's and the clip bounds each later update.

    >>> out = policy_loss(torch.log(torch.tensor([[1.5, 0.5]])), torch.zeros(1, 2), torch.tensor([1.0]),
    ...                   torch.ones(1, 2))
    >>> out.clip_high, out.clip_low, out.clip_fraction  # ratio 0.5 with A > 0: changed, gradient kept
    (0.5, 0.0, 1.0)
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1).expand_as(logp)
    eps_high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high) * advantages
    per_token = -torch.minimum(unclipped, clipped)
    kl_value = 0.0
    if beta:
        if ref_logp is None:
            raise ValueError("beta > 0 needs reference log-probs")
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
        kl_value = float(aggregate(kl.detach(), mask, "token_mean"))
    loss = aggregate(per_token, mask, agg, max_len=max_len, num_tokens=num_tokens)
    with torch.no_grad():
        m = mask.to(torch.bool)
        was_clipped = (unclipped != clipped) & m
        n = max(int(m.sum()), 1)
        clip_fraction = float(was_clipped.sum()) / n
        low = float(((ratio < 1.0 - epsilon) & (advantages < 0) & m).sum()) / n
        high = float(((ratio > 1.0 + eps_high) & (advantages > 0) & m).sum()) / n
        ratio_mean = float(ratio[m].mean()) if m.any() else 1.0
    return LossOutput(loss, clip_fraction, kl_value, ratio_mean, low, high)


def token_log_probs(logits: torch.Tensor, token_ids: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of each chosen token, ``[N, T]``, one sequence at a time to bound peak memory
    (a full ``log_softmax`` over a 150k vocabulary for a whole batch is the usual OOM)."""
    out = []
    for row_logits, row_ids in zip(logits, token_ids):
        row = row_logits.float() / temperature
        out.append(torch.gather(row, -1, row_ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(row, dim=-1))
    return torch.stack(out)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-token entropy of the sampling distribution, ``[N, T]``."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)
