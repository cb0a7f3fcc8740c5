"""Listener-augmented reward (arXiv 2506.22832): a frozen second model re-reads the reasoning with the
answer masked and says how likely the right answer is.

``reward = format_weight·format + em_weight·EM + listener_weight·p_listener(correct choice | masked trace)``
with ``em_weight = listener_weight = 0.5`` (Eq. 3 as the reviewers quote it). ``format`` is the
``<think>…</think><answer>…</answer>`` full match; EM is the normalised match of the answer with the truth.

The listener is a local VLM checkpoint that sees the row's pictures with the masked reasoning, as the
paper's listener does (``sees_images``, the default; `mmreason.rewards.listener_vision`), or any causal LM or
VLM reading the text alone (``sees_images: false``, and for rows without pictures). Its probability is a softmax over the candidate answers of the summed log-probabilities of each
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
from mmreason.rewards.listener_vision import row_images
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
    sees_images: bool = True  # the paper's listener is a VLM shown the images (false: text only)
    image_root: str | None = None  # where relative image paths of the rows are (the trainer's are absolute)
    max_pixels: int | None = None  # the listener's image budget (None: its family's default)

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise RecipeError("listener: `model` must be a checkpoint directory")
        if self.batch_size < 1:
            raise RecipeError("listener: batch_size must be >= 1")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise RecipeError("listener: max_pixels must be >= 1 (or left out)")


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


_MODELS: dict[tuple, tuple[Any, ...]] = {}
_LOCK = threading.Lock()


def _dtype(config: ListenerConfig):
    import torch

    dtype = getattr(torch, config.dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise RecipeError(f"listener: unknown dtype {config.dtype!r}")
    return dtype


def _load_vision(config: ListenerConfig):
    """(processor, model, family) of a VLM listener, loaded once."""
    from mmreason.rewards.listener_vision import family_of

    key = ("vision", config.model, config.device, config.dtype)
    with _LOCK:
        if key not in _MODELS:
            import transformers

            family = family_of(config.model)
            try:
                processor = transformers.AutoProcessor.from_pretrained(config.model)
                model = transformers.AutoModelForImageTextToText.from_pretrained(config.model, dtype=_dtype(config))
            except (OSError, ValueError) as exc:
                raise RecipeError(f"listener: cannot load {config.model!r} as a VLM: {exc}") from exc
            model.to(config.device).eval().requires_grad_(False)
            _MODELS[key] = (processor, model, family)
        return _MODELS[key]


def _load(config: ListenerConfig):
    key = (config.model, config.device, config.dtype)
    with _LOCK:
        if key not in _MODELS:
            import transformers

            dtype = _dtype(config)
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
                         options: Sequence[Sequence[str]], config: ListenerConfig,
                         images: Sequence[Sequence[Any]] | None = None) -> list[list[float]]:
    """For each sample, the listener's softmax over its options (sums to 1). ``images``: each sample's
    pictures (PIL images or paths); a sample with pictures is scored by the listener seeing them."""
    users = [config.prompt.format(question=q, reasoning=r[-config.max_reasoning_chars:])
             for r, q in zip(reasonings, questions)]
    pictures = list(images) if images is not None else [[] for _ in users]
    seen = [i for i, p in enumerate(pictures) if p]
    raw: list[list[float]] = [[] for _ in users]
    if seen:
        from mmreason.rewards.listener_vision import vision_scores

        processor, model, family = _load_vision(config)
        for i, s in zip(seen, vision_scores([(list(pictures[i]), users[i], options[i]) for i in seen], config,
                                            processor, model, family)):
            raw[i] = s
    blind = [i for i, p in enumerate(pictures) if not p]
    if blind:
        for i, s in zip(blind, _text_scores([users[i] for i in blind], [options[i] for i in blind], config)):
            raw[i] = s
    probs = []
    for row in raw:
        top = max(row) if row else 0.0
        exp = [math.exp(s - top) for s in row]
        total = sum(exp) or 1.0
        probs.append([e / total for e in exp])
    return probs


def _text_scores(users: Sequence[str], options: Sequence[Sequence[str]], config: ListenerConfig) -> list[list[float]]:
    """Each option's summed log-probability after the text-only prompt."""
    import torch

    tokenizer, model = _load(config)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sequences: list[tuple[int, list[int], int]] = []  # (sample, ids, number of option tokens)
    for i, (text, opts) in enumerate(zip(users, options)):
        # the tokenizer rejects a lone surrogate (half a pair, as decoding can leave): read it as U+FFFD
        user = readable_text(text)
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
    out: list[list[float]] = [[] for _ in users]
    for (i, _, _), s in zip(sequences, scores):
        out[i].append(s)
    return out


@reward_function
def listener(completions, *, listener: object, format_weight: float = 1.0, em_weight: float = 0.5,
             listener_weight: float = 0.5, **columns):
    """Format + 0.5·exact match + 0.5·listener probability of the right answer (module docstring)."""
    config = as_listener_config(listener)
    metrics = Metrics("listener")
    todo, reasonings, questions, options, targets, pictures = [], [], [], [], [], []
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
            pictures.append(row_images(row, config.image_root) if config.sees_images else [])
    if todo:
        metrics.add("saw_images", sum(bool(p) for p in pictures) / len(pictures))
        probs = choice_probabilities(reasonings, questions, options, config, pictures)
        for i, p, t in zip(todo, probs, targets):
            metrics.add("p_listener", p[t])
            out[i] += listener_weight * p[t]
    metrics.emit(columns.get("log_metric"))
    return out
