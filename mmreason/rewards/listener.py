"""Listener-augmented reward (arXiv 2506.22832): a frozen second model re-reads the reasoning with the
answer masked and says how likely the right answer is.

``reward = format_weight·format + em_weight·EM + listener_weight·p_listener(correct choice | masked trace)``
with ``em_weight = listener_weight = 0.5`` (Eq. 3 as the reviewers quote it). ``format`` is the
``<think>…</think><answer>…</answer>`` full match; EM is the normalised match of the answer with the truth.

The listener is any local causal LM or VLM checkpoint (text path only: the trace and question are text).
Its probability is a softmax over the candidate answers of the summed log-probabilities of each
candidate's tokens after the prompt. Candidates come from the ``choices`` column, ``meta.choices`` /
``meta.options``, ``ListenerConfig.choices``, or, for a letter answer, the letters A to that letter (at
least A, B). The reasoning is the completion with every ``<answer>`` block's content replaced by
``mask``. A row whose truth is not among its candidates gets no listener term (its EM and format still count).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

from mmreason.errors import RecipeError
from mmreason.rewards._common import (Metrics, answer_of, mapping, question_of, readable_text, reward_function,
                                      samples)
from mmreason.rewards.accuracy import choice_letter, gt_letter, normalize_answer
from mmreason.rewards.format import tags_full_match
from mmreason.traces import Block, parse_blocks

DEFAULT_PROMPT = ("Here is a question and someone's reasoning about it, with their final answer hidden.\n\n"
                  "Question: {question}\n\nReasoning:\n{reasoning}\n\nWhat is their final answer?")


@dataclass(frozen=True)
class ListenerConfig:
    model: str  # local checkpoint directory
    choices: tuple[str, ...] | None = None
    prompt: str = DEFAULT_PROMPT
    mask: str = "[hidden]"
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int = 8
    max_reasoning_chars: int = 4000

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise RecipeError("listener: `model` must be a checkpoint directory")
        if self.batch_size < 1:
            raise RecipeError("listener: batch_size must be >= 1")


def as_listener_config(value: object) -> ListenerConfig:
    if isinstance(value, ListenerConfig):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {f.name for f in fields(ListenerConfig)})
        if unknown:
            raise RecipeError(f"listener: unknown keys {unknown}")
        data = dict(value)
        if data.get("choices") is not None:
            data["choices"] = tuple(str(c) for c in data["choices"])
        return ListenerConfig(**data)
    raise RecipeError("listener: set `listener` to a mapping with at least `model` (a checkpoint directory)")


def mask_answer(text: str, mask: str = "[hidden]", blocks: Sequence[Block] | None = None) -> str:
    """The completion with each ``<answer>`` block's content replaced by ``mask`` (``blocks``: the text's,
    when already parsed).

    >>> mask_answer("<think>it is red</think><answer>A</answer>")
    '<think>it is red</think><answer>[hidden]</answer>'
    """
    out, cursor = [], 0
    for block in (b for b in (parse_blocks(text) if blocks is None else blocks) if b.tag == "answer"):
        out.append(text[cursor:block.start])
        out.append(f"<answer>{mask}</answer>" if block.closed else f"<answer>{mask}")
        cursor = block.end
    out.append(text[cursor:])
    return "".join(out)


def candidates(row: Mapping, gt: str | None, config: ListenerConfig) -> list[str] | None:
    for value in (row.get("choices"), mapping(row.get("meta")).get("choices"),
                  mapping(row.get("meta")).get("options"), config.choices):
        if isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value):
            return list(value)
    letter = gt_letter(gt) if isinstance(gt, str) else None
    if letter is not None:
        return [chr(c) for c in range(ord("A"), max(ord(letter), ord("B")) + 1)]
    return None


def correct_index(options: Sequence[str], gt: str) -> int | None:
    letter = gt_letter(gt)
    for i, option in enumerate(options):
        if normalize_answer(option) == normalize_answer(gt) or (letter and choice_letter(option) == letter):
            return i
    return None


_MODELS: dict[tuple, tuple[Any, Any]] = {}
_LOCK = threading.Lock()


def _load(config: ListenerConfig):
    key = (config.model, config.device, config.dtype)
    with _LOCK:
        if key not in _MODELS:
            import torch
            import transformers

            dtype = getattr(torch, config.dtype, None)
            if not isinstance(dtype, torch.dtype):
                raise RecipeError(f"listener: unknown dtype {config.dtype!r}")
            try:
                tokenizer = transformers.AutoTokenizer.from_pretrained(config.model)
                try:
                    model = transformers.AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
                except ValueError:  # a VLM checkpoint: its language model reads text-only prompts
                    auto = transformers.AutoModelForImageTextToText
                    model = auto.from_pretrained(config.model, dtype=dtype)
            except (OSError, ValueError) as exc:  # a listener that cannot load is a recipe error
                raise RecipeError(f"listener: cannot load {config.model!r}: {exc}") from exc
            model.to(config.device).eval().requires_grad_(False)
            _MODELS[key] = (tokenizer, model)
        return _MODELS[key]


def choice_probabilities(reasonings: Sequence[str], questions: Sequence[str],
                         options: Sequence[Sequence[str]], config: ListenerConfig) -> list[list[float]]:
    """For each sample, the listener's softmax over its options (sums to 1)."""
    import torch

    tokenizer, model = _load(config)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sequences: list[tuple[int, list[int], int]] = []  # (sample, ids, number of option tokens)
    for i, (reasoning, question, opts) in enumerate(zip(reasonings, questions, options)):
        # the tokenizer rejects a lone surrogate (half a pair, as decoding can leave): read it as U+FFFD
        user = readable_text(config.prompt.format(question=question,
                                                  reasoning=reasoning[-config.max_reasoning_chars:]))
        prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                                   add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"]
        for option in opts:
            option_ids = tokenizer(readable_text(option), add_special_tokens=False)["input_ids"] or [pad]
            sequences.append((i, list(prompt_ids) + list(option_ids), len(option_ids)))
    scores: list[float] = []
    with torch.inference_mode():
        for lo in range(0, len(sequences), config.batch_size):
            batch = sequences[lo:lo + config.batch_size]
            width = max(len(ids) for _, ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (_, ids, _) in enumerate(batch):
                input_ids[r, :len(ids)] = torch.tensor(ids)
                attention[r, :len(ids)] = 1
            logits = model(input_ids=input_ids.to(config.device),
                           attention_mask=attention.to(config.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for r, (_, ids, k) in enumerate(batch):
                n = len(ids)
                targets = torch.tensor(ids[n - k:])
                scores.append(float(logp[r, n - k - 1:n - 1].gather(1, targets[:, None]).sum()))
    out: list[list[float]] = [[] for _ in reasonings]
    for (i, _, _), s in zip(sequences, scores):
        out[i].append(s)
    probs = []
    for row in out:
        top = max(row) if row else 0.0
        exp = [math.exp(s - top) for s in row]
        total = sum(exp) or 1.0
        probs.append([e / total for e in exp])
    return probs


@reward_function
def listener(completions, *, listener: object, format_weight: float = 1.0, em_weight: float = 0.5,
             listener_weight: float = 0.5, **columns):
    """Format + 0.5·exact match + 0.5·listener probability of the right answer (module docstring)."""
    config = as_listener_config(listener)
    metrics = Metrics("listener")
    todo, reasonings, questions, options, targets = [], [], [], [], []
    out: list[float | None] = []
    for i, sample in enumerate(samples(completions, columns)):
        row, text = sample.row, sample.text
        gt = answer_of(row)
        if gt is None:
            out.append(None)
            continue
        pred = sample.trace.answer
        letter = gt_letter(gt)
        em = float(pred is not None and (normalize_answer(pred) == normalize_answer(gt)
                                         or (letter is not None and choice_letter(pred) == letter)))
        fmt = float(tags_full_match(text, ("think", "answer"), blocks=sample.blocks))
        metrics.add("em", em)
        metrics.add("format", fmt)
        out.append(format_weight * fmt + em_weight * em)
        opts = candidates(row, gt, config)
        target = correct_index(opts, gt) if opts else None
        if target is not None:
            todo.append(i)
            reasonings.append(mask_answer(text, config.mask, sample.blocks))
            questions.append(question_of(row))
            options.append(opts)
            targets.append(target)
    if todo:
        probs = choice_probabilities(reasonings, questions, options, config)
        for i, p, t in zip(todo, probs, targets):
            metrics.add("p_listener", p[t])
            out[i] += listener_weight * p[t]
    metrics.emit(columns.get("log_metric"))
    return out
