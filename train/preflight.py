"""Checks that run before the first step, so a run that cannot work fails in seconds with what to change.

- the batch shape: prompts per step split over the processes, completions over the micro-batches;
- every judge (LLM-as-judge endpoint or local model) answers a real request and every listener model
  loads and scores, so an unreachable judge fails before step 1 instead of scoring every answer 0;
- every reward applies to some rows (a reward that returns None for all of them is missing its column);
- step rewards have a reward that produces steps;
- prompts fit ``data.max_prompt_length`` with their media tokens (cutting would drop image tokens), and
  prompt + completion fit the model's context;
- for SFT, every checked row collates (media readable, no media token cut by ``sft.max_length``).

Rows beyond `MAX_CHECKED_ROWS` are not collated here (they still are when their batch comes).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from mmreason.config import GRPOConfig, Recipe
from mmreason.errors import MMReasonError, RecipeError
from mmreason.rewards import STEP_REWARDS, RewardSet
from mmreason.schema import GT_FIELDS
from mmreason.train.scoring import columns_of, step_terms

log = logging.getLogger("mmreason.train")

MAX_CHECKED_ROWS = 512
PROBE_ROWS = 64
CHUNK = 8


def check_batch_shape(g: GRPOConfig, world_size: int = 1) -> int:
    """Prompts per process; raises when the groups do not divide evenly. (Every group stays on one process,
    so advantages never need a cross-process gather.)"""
    if g.batch_size % world_size:
        raise RecipeError(f"grpo.batch_size={g.batch_size} prompts do not split over {world_size} processes: "
                          f"set grpo.batch_size to a multiple of {world_size} (a process takes whole groups)")
    local = g.batch_size // world_size
    completions = local * g.num_generations
    if completions % g.grad_accum:
        fits = [d for d in range(1, completions + 1) if completions % d == 0]
        raise RecipeError(
            f"grpo.batch_size={g.batch_size} x grpo.num_generations={g.num_generations} gives {completions} "
            f"completions per process, which do not split into grpo.grad_accum={g.grad_accum} equal "
            f"micro-batches: set grpo.grad_accum to one of {fits}, or change grpo.batch_size")
    return local


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {}, ())


def check_reward_columns(rewards: RewardSet, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each reward must apply (not return None) to at least one probed row it is routed to."""
    if not rewards.terms:
        raise RecipeError("rewards.funcs is empty: GRPO needs at least one reward (e.g. rewards: [accuracy])")
    for term in rewards.terms:
        probe = [r for r in rows if rewards.applies(term, r)][:PROBE_ROWS]
        if not probe:
            continue  # routed away from every checked row; rows further on may have its source
        got = term.fn([""] * len(probe), **columns_of(probe))
        if any(v is not None for v in got):
            continue
        have = sorted({k for r in probe for k, v in r.items() if _filled(v)})
        empty = [k for k in ("answer", *GT_FIELDS) if k not in have]
        raise RecipeError(
            f"rewards: {term.name!r} does not apply to any of the first {len(probe)} training rows it is "
            "routed to (it returned None for each): the dataset lacks the column it scores against. Empty or "
            f"missing here: {', '.join(empty) or 'none of the usual ground-truth columns'}; columns with "
            f"values: {', '.join(have)}. Add that column to the data, route the reward to the sources that "
            f"have it (rewards.route_by_source), or remove {term.spec!r} from rewards.funcs")


def _judge_hint(config: Any, where: str, exc: Exception) -> str:
    if config.base_url is None:
        return (f"the local judge {config.hf_model!r} cannot answer ({type(exc).__name__}: {exc}). Set "
                f"{where}.hf_model to a checkpoint directory of a chat model")
    url = config.base_url.rstrip("/") + "/chat/completions"
    text = str(exc)
    if "HTTP 404" in text or "HTTP 405" in text:
        fix = f"the path is wrong: {where}.base_url should be the server's API root, usually ending in /v1"
    elif "HTTP 401" in text or "HTTP 403" in text:
        fix = (f"the server refused the key: set {where}.api_key_env to the name of the environment variable "
               "that holds it, and export it")
    elif "malformed response" in text:
        fix = f"what answers there is not an OpenAI-compatible chat server: check {where}.base_url"
    else:
        fix = (f"start an OpenAI-compatible server there (e.g. `vllm serve MODEL --port PORT`; "
               f"{where}.model names the model it serves), or set {where}.base_url to where one runs")
    return f"the judge at {url} did not answer ({text}): {fix}"


def check_services(rewards: RewardSet) -> None:
    """Ask every judge of the recipe's rewards one real question and run every listener once (each loads
    once and is reused by training). Without this a dead judge only logs ``judge_failed`` while every
    judged answer scores 0, for the whole run."""
    from mmreason.rewards.judge import as_judge_config, ask_once
    from mmreason.rewards.listener import as_listener_config, choice_probabilities

    checked: set[str] = set()
    for i, term in enumerate(rewards.terms):
        where = f"rewards.funcs.{i}.kwargs"
        judge, listener = term.kwargs.get("judge"), term.kwargs.get("listener")
        if judge is not None:
            config = as_judge_config(judge)
            if config.model_id not in checked:
                try:
                    ask_once(config)
                except Exception as exc:  # any failure: the run must not start
                    hint = _judge_hint(config, f"{where}.judge", exc)
                    raise RecipeError(f"{where}.judge ({term.name!r}): {hint}. Or remove the judge to grade "
                                      "with the offline rule") from None
                checked.add(config.model_id)
        if listener is not None:
            config = as_listener_config(listener)
            if config.model not in checked:
                try:
                    choice_probabilities(["probe"], ["probe"], [["A", "B"]], config)
                except Exception as exc:
                    raise RecipeError(f"{where}.listener ({term.name!r}): the listener {config.model!r} "
                                      f"cannot score ({type(exc).__name__}: {exc}); set "
                                      f"{where}.listener.model to a checkpoint directory of a causal LM "
                                      "or VLM") from None
                checked.add(config.model)


def check_step_rewards(recipe: Recipe, rewards: RewardSet) -> None:
    if recipe.grpo is not None and recipe.grpo.step_rewards and not step_terms(rewards):
        raise RecipeError(f"grpo.step_rewards is on but no reward in rewards.funcs produces steps: add one "
                          f"of {', '.join(STEP_REWARDS)} or set grpo.step_rewards=false")


def _context_limit(model: Any) -> int | None:
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text, "max_position_embeddings", None)


def check_prompts(recipe: Recipe, rows: Sequence[Mapping[str, Any]], processor: Any, *, model: Any = None,
                  media_options: Mapping[str, Any] | None = None) -> list[int]:
    """Prompt token counts of the checked rows; raises for one longer than ``data.max_prompt_length`` (a cut
    would drop media tokens or the question) or one that leaves no room for the completion in the context."""
    import torch

    from mmreason.modalities.collate import collate
    from mmreason.modalities.guards import media_token_ids

    family = recipe.model.family
    limit = recipe.data.max_prompt_length
    completion = recipe.grpo.max_completion_length if recipe.grpo is not None else 0
    context = _context_limit(model) if model is not None else None
    lengths = []
    checked = rows[:MAX_CHECKED_ROWS]
    for i in range(0, len(checked), CHUNK):
        chunk = checked[i:i + CHUNK]
        batch = collate(chunk, processor, family, mode="generate", on_error=recipe.data.on_error,
                        media_options=media_options)
        for sid, ids, mask in zip(batch["ids"], batch["input_ids"], batch["attention_mask"]):
            n = int(mask.sum())
            lengths.append(n)
            if limit is not None and n > limit:
                media_ids = torch.tensor(media_token_ids(processor, family))
                media = int(torch.isin(ids[mask.bool()], media_ids).sum())
                raise RecipeError(
                    f"sample {sid!r}: its prompt is {n} tokens ({media} of them media tokens) but "
                    f"data.max_prompt_length is {limit}; cutting it would drop image tokens or the question. "
                    f"Raise data.max_prompt_length to at least {n}, or lower model.max_pixels (now "
                    f"{recipe.model.max_pixels}) / data.video settings so the media take fewer tokens")
            if context is not None and n + completion > context:
                raise RecipeError(
                    f"sample {sid!r}: prompt ({n} tokens) + grpo.max_completion_length ({completion}) "
                    f"exceeds the model's context of {context} tokens: lower grpo.max_completion_length or "
                    "the pixel budget")
    if len(rows) > MAX_CHECKED_ROWS:
        log.info("preflight: checked the prompts of the first %d of %d rows", MAX_CHECKED_ROWS, len(rows))
    return lengths


def check_completion_room(recipe: Recipe, rows: Sequence[Mapping[str, Any]], processor: Any) -> list[str]:
    """Warns when the data's own single-turn answers do not fit in ``grpo.max_completion_length`` tokens
    (with the end-of-turn token); returns the ids of those rows. Why: a completion cut before it ends is
    scored as cut, so the policy learns to avoid the long answers (in the quickstart, boxes with 3-digit
    coordinates) and nothing says so. A warning, not an error: the reference answer need not be what the
    policy writes."""
    if recipe.grpo is None:
        return []
    from mmreason.schema import text_of

    tokenizer = getattr(processor, "tokenizer", processor)
    room = recipe.grpo.max_completion_length
    long: dict[str, int] = {}
    for row in rows[:MAX_CHECKED_ROWS]:
        messages = row.get("messages") or []
        roles = [m.get("role") for m in messages]
        if not roles or roles[-1] != "assistant" or roles.count("assistant") != 1 or "tool" in roles:
            continue  # a conversation's later turns are the rollout's to write, not a reference
        n = len(tokenizer(text_of(messages[-1]), add_special_tokens=False)["input_ids"]) + 1
        if n > room:
            long[str(row.get("id"))] = n
    if long:
        worst = max(long, key=long.get)
        log.warning("grpo.max_completion_length is %d tokens, but %d of the first %d rows' own answers are "
                    "longer (sample %r: %d tokens with the end of turn): a completion cut there is scored as "
                    "cut, so the policy learns to avoid those answers. Raise grpo.max_completion_length to at "
                    "least %d.", room, len(long), min(len(rows), MAX_CHECKED_ROWS), worst, long[worst],
                    long[worst])
    return list(long)


def check_sft(recipe: Recipe, rows: Any, collator: Any) -> None:
    """Collate the checked rows as training will: unreadable media, or media sft.max_length would cut,
    fail here."""
    data = list(getattr(rows, "rows", rows))[:MAX_CHECKED_ROWS]
    for i in range(0, len(data), CHUNK):
        try:
            collator(data[i:i + CHUNK])
        except ValueError as exc:
            if "max_length" in str(exc):
                raise RecipeError(f"sft.max_length: {exc}") from None
            raise
        except MMReasonError:
            raise


def check_recipe(recipe: Recipe, rewards: RewardSet, *, world_size: int = 1) -> int:
    """The checks that need no model or data (run first: loading a large model takes minutes);
    returns prompts per process. `check_services` follows, asking the judges and listeners."""
    local = check_batch_shape(recipe.grpo, world_size)
    check_step_rewards(recipe, rewards)
    return local


def check_data(recipe: Recipe, rows: Sequence[Mapping[str, Any]], processor: Any, rewards: RewardSet, *,
               model: Any = None, media_options: Mapping[str, Any] | None = None) -> None:
    """Rewards against the data's columns (with the image frames training passes), then prompt lengths."""
    from mmreason.modalities.collate import collate, frame_columns

    probe = list(rows[:PROBE_ROWS])
    frames = {}
    for i in range(0, len(probe), CHUNK):
        batch = collate(probe[i:i + CHUNK], processor, recipe.model.family, mode="generate",
                        on_error=recipe.data.on_error, media_options=media_options)
        frames.update(zip(batch["ids"], frame_columns(batch["frames"])))
    framed = [{**r, "image_frames": frames[str(r["id"])]} for r in probe if str(r["id"]) in frames]
    check_reward_columns(rewards, framed)
    check_prompts(recipe, rows, processor, model=model, media_options=media_options)
    check_completion_room(recipe, rows, processor)
