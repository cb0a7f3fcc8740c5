"""Log-likelihood of a continuation on an mmreason checkpoint, for lmms-eval's loglikelihood requests
(`mmreason.eval.lmms_eval_model`; its ``multiple_choice`` tasks send one per choice).

The context is tokenised as `mmreason eval` prompts are (`rollout.prepare_prompt`: the family's chat
template with the generation prompt, the collator, the pixel budget), the continuation's tokens follow it
as the first words of the assistant turn, and one forward pass over both gives each continuation token's
log-probability from the position before it, and whether it is the greedy choice there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class ContinuationScore:
    """Per continuation token: its id and log-probability given everything before it; `greedy`: every
    token is the arg-max of the model's distribution at its position."""

    token_ids: tuple[int, ...]
    token_logprobs: tuple[float, ...]
    greedy: bool

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))


@dataclass(frozen=True)
class PreparedContext:
    """A context tokenised once, scored against several continuations (a question's choices)."""

    ids: tuple[int, ...]
    vision: Mapping[str, Any]
    token_types: tuple[int, ...] | None


def prepare_context(processor: Any, family: str, messages: Sequence[dict], *,
                    media_options: Mapping[str, Mapping[str, Any]] | None = None, model: Any = None,
                    sample: str = "context") -> PreparedContext:
    """`messages` (canonical mmreason messages ending with a user turn) as the prompt `mmreason eval`
    would generate from: the assistant header last."""
    from mmreason.rollout import prepare_prompt

    extras = getattr(model, "vision_extras", None)
    _, segment, _ = prepare_prompt({"id": sample, "messages": list(messages)}, processor, family,
                                   media_options=media_options, vision_extras=extras)
    return PreparedContext(segment.ids, segment.vision, segment.token_types)


def continuation_ids(tokenizer: Any, continuation: str) -> list[int]:
    """The continuation's tokens as the start of an assistant turn. The whitespace lmms-eval puts before a
    choice (its ``target_delimiter``, for plain-text prompts) is dropped: the chat template's assistant
    header ends in a newline, after which a reply never starts with a space."""
    return list(tokenizer(continuation.lstrip(), add_special_tokens=False).input_ids)


def score_continuation(model: Any, context: PreparedContext, token_ids: Sequence[int]) -> ContinuationScore:
    """One forward pass over context + continuation (no padding, no cache)."""
    import torch

    from mmreason.rl import token_log_probs

    if not token_ids:
        raise ValueError("the continuation has no tokens")
    device = next(p for p in model.parameters()).device
    ids = list(context.ids) + list(token_ids)
    inputs: dict[str, Any] = {"input_ids": torch.tensor([ids], device=device),
                              "attention_mask": torch.ones((1, len(ids)), dtype=torch.long, device=device)}
    inputs.update({k: v.to(device) if hasattr(v, "to") else v for k, v in context.vision.items()})
    if context.token_types is not None:  # continuation tokens are text (0)
        types = list(context.token_types) + [0] * len(token_ids)
        inputs["mm_token_type_ids"] = torch.tensor([types], device=device)
    start, end = len(context.ids) - 1, len(ids) - 1  # the logits predicting the continuation
    with torch.inference_mode():
        logits = model(**inputs, use_cache=False).logits[:, start:end].float()
        target = torch.tensor([list(token_ids)], device=device)
        logprobs = token_log_probs(logits, target)[0]
        greedy = bool((logits.argmax(-1) == target).all())
    return ContinuationScore(tuple(int(t) for t in token_ids), tuple(float(x) for x in logprobs.cpu()), greedy)
